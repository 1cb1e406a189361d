"""SIGTERM (``kill``, ``docker stop``) stops ``dynamodel migrate up`` cleanly: segments finish
their page and store their checkpoint, the interruption is recorded, the lock is released, and
the next run resumes at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from backends import Backend

APP = """
from dynamodel import Model, Table

table = Table("sigterm-backfill")


class Thing(Model):
    class Meta:
        table = table
        pk = "THING#{n}"
        sk = "T"

    n: int
    done: bool = False
"""

MIGRATION = """
def up(ctx):
    ctx.backfill(
        ctx.model("Thing"),
        lambda t: None if t.done else t.model_copy(update={"done": True}),
        rate=300,
    )
"""


def _records(ddb: Any) -> dict[str, Any]:
    items = ddb.query(
        TableName="sigterm-backfill",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "_dynamodel#migrations"}},
        ConsistentRead=True,
    )["Items"]
    return {item["sk"]["S"]: json.loads(item["data"]["S"]) for item in items if "data" in item}


def test_sigterm_stops_at_a_checkpoint_and_the_next_run_resumes(
    fresh_db: Backend, ddb: Any, tmp_path: Path
) -> None:
    (tmp_path / "sigapp.py").write_text(APP)
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_mark.py").write_text(MIGRATION)
    sys.path.insert(0, str(tmp_path))
    try:
        import sigapp  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    sigapp.table.create(poll=0.01)
    from dynamodel import batch_write

    with batch_write() as batch:
        batch.put(*(sigapp.Thing(n=n) for n in range(1200)))
    command = [sys.executable, "-m", "dynamodel.cli", "migrate", "up", "--app", "sigapp"]
    command += ["--segments", "2", "--page-size", "50"]
    env = {**os.environ, **fresh_db.env(), "COLUMNS": "200"}
    first = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 60
    while True:  # wait until some pages are checkpointed (300 items/s: about 4 s in all)
        checkpoints = [v for k, v in _records(ddb).items() if k.startswith("CHECKPOINT#")]
        if sum(c["written"] for c in checkpoints) >= 200:
            break
        assert first.poll() is None, first.communicate()[0]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.send_signal(signal.SIGTERM)
    output = first.communicate(timeout=30)[0]
    assert first.returncode == 130, output
    assert "Interrupted" in output

    records = _records(ddb)
    record = records["STATE"]["versions"]["1"]
    assert record["state"] == "failed" and record["error"].startswith("interrupted")
    assert "LOCK" not in records  # released: the next run need not wait for the lease
    written = sum(v["written"] for k, v in records.items() if k.startswith("CHECKPOINT#"))
    assert 200 <= written < 1200

    second = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resuming" in second.stdout
    assert all(thing.done for thing in sigapp.Thing.scan())
    assert len(sigapp.Thing.scan().all()) == 1200
