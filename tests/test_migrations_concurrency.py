"""Two ``dynamodel migrate up`` processes at once: one applies, the other refuses (exit 3) or
waits and then finds nothing to do. The migration never applies twice.

The processes report the points the tests wait for with marker files: ``inside-<pid>`` when
a run is inside ``up()`` (holding the lock), ``refused-<pid>`` when a run found the lock held.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from backends import Backend

APP = """
from dynamodel import Model, Table

table = Table("lock-race")


class Counter(Model):
    class Meta:
        table = table
        pk = "COUNTER#{name}"
        sk = "C"

    name: str
"""

# Holds the lock inside up() until the test releases it, then records that it applied by
# adding 1 to a counter: applying twice would leave 2.
MIGRATION = """
import os
import pathlib
import time


def up(ctx):
    markers = pathlib.Path(os.environ["MARKERS"])
    (markers / f"inside-{os.getpid()}").write_text("")
    deadline = time.monotonic() + 60
    while not (markers / "release").exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the test never released this run")
        time.sleep(0.05)
    ctx.table.connection.client().update_item(
        TableName=ctx.table.physical_name,
        Key={"pk": {"S": "COUNTER#applied"}, "sk": {"S": "C"}},
        UpdateExpression="ADD applied :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
"""


# The ``dynamodel`` command, noting each attempt that finds the lock held (then going on as
# before: refusing, or waiting and trying again).
CLI = """
import os
import pathlib

from dynamodel.cli import main
from dynamodel.migrations import LockHeld, MigrationLock

markers = pathlib.Path(os.environ["MARKERS"])
attempt = MigrationLock.acquire_flow


def noted(self):
    try:
        return (yield from attempt(self))
    except LockHeld:
        (markers / f"refused-{os.getpid()}").write_text("")
        raise


MigrationLock.acquire_flow = noted
main()
"""


@pytest.fixture
def project(fresh_db: Backend, ddb: Any, tmp_path: Path) -> Path:
    (tmp_path / "lockapp.py").write_text(APP)
    (tmp_path / "dynamodel_cli.py").write_text(CLI)
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_slow.py").write_text(MIGRATION)
    (tmp_path / "markers").mkdir()
    ddb.create_table(
        TableName="lock-race",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return tmp_path


def _start(project: Path, backend: Backend, wait: float) -> subprocess.Popen[str]:
    command = [sys.executable, "dynamodel_cli.py", "migrate", "up", "--app", "lockapp"]
    command += ["--wait", str(wait)]
    env = {**os.environ, **backend.env(), "MARKERS": str(project / "markers"), "COLUMNS": "200"}
    return subprocess.Popen(
        command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _inside(project: Path) -> list[Path]:
    return sorted((project / "markers").glob("inside-*"))


def _refused(project: Path) -> list[Path]:
    return sorted((project / "markers").glob("refused-*"))


def _run_of(marker: Path, runs: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    (run,) = [r for r in runs if marker.name.endswith(f"-{r.pid}")]
    return run


def _wait_for(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def _applied_count(ddb: Any) -> int:
    item = ddb.get_item(
        TableName="lock-race", Key={"pk": {"S": "COUNTER#applied"}, "sk": {"S": "C"}}
    ).get("Item")
    return int(item["applied"]["N"]) if item else 0


def _finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = process.communicate(timeout=90)
    return process.returncode, out + err


def test_the_second_run_refuses_while_the_first_holds_the_lock(
    project: Path, fresh_db: Backend, ddb: Any
) -> None:
    runs = [_start(project, fresh_db, wait=0), _start(project, fresh_db, wait=0)]
    try:
        # whichever takes the lock enters up(); the other finds the lock held and exits 3
        _wait_for(lambda: any(r.poll() is not None for r in runs), "one run gives up")
        _wait_for(lambda: len(_inside(project)) == 1, "one run is inside up()")
        refused = next(r for r in runs if r.poll() is not None)
        holder = next(r for r in runs if r is not refused)
        code, output = _finish(refused)
        assert code == 3, output
        assert [_run_of(m, runs) for m in _refused(project)] == [refused]  # found it held
        assert "migrations are locked" in output and "--wait" in output
        assert holder.poll() is None  # still holding the lock, inside up()
    finally:
        (project / "markers" / "release").write_text("")
    code, output = _finish(holder)
    assert code == 0, output
    assert "applied 0001_slow" in output
    assert len(_inside(project)) == 1
    assert _applied_count(ddb) == 1


def test_a_waiting_run_finds_nothing_left_to_do(project: Path, fresh_db: Backend, ddb: Any) -> None:
    runs = [_start(project, fresh_db, wait=60), _start(project, fresh_db, wait=60)]
    try:
        _wait_for(lambda: len(_inside(project)) == 1, "one run is inside up()")
        _wait_for(lambda: len(_refused(project)) == 1, "the other run finds the lock held")
        holder, waiter = _run_of(_inside(project)[0], runs), _run_of(_refused(project)[0], runs)
        assert holder is not waiter
        assert all(r.poll() is None for r in runs)  # the other one waits for the lock
        assert len(_inside(project)) == 1
    finally:
        (project / "markers" / "release").write_text("")
    (held_code, held_output), (waited_code, waited_output) = _finish(holder), _finish(waiter)
    assert (held_code, waited_code) == (0, 0), (held_output, waited_output)
    assert "applied 0001_slow" in held_output
    assert "Nothing to do: all migrations are applied" in waited_output
    assert "applied 0001_slow" not in waited_output
    assert len(_inside(project)) == 1  # up() ran once
    assert _applied_count(ddb) == 1
