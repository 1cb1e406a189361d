"""A 50,000-item backfill killed with SIGKILL mid-run, then restarted, migrates every item
exactly once.

The migration runs in a real subprocess (``python -m dynamodel.cli migrate up``) against the
session's local DynamoDB. The test kills it with SIGKILL once it has migrated a good part of
the table, starts it again, and checks:

* the first run really was killed mid-run (its migration is still recorded ``running`` and its
  checkpoints hold progress), and the second run waited for the dead run's lock to expire;
* every one of the 50,000 items was migrated, and migrated once: the migration stores
  ``times = times + 1`` next to its marker, so an item skipped keeps ``times = 0`` and an
  item migrated twice has ``times = 2``;
* the second run resumed from the checkpoints instead of starting over: it re-read at most one
  page per segment (the pages in flight when the first run died), and transformed each item at
  most once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from backends import Backend

ITEMS = 50_000
SEGMENTS = 4
PAGE = 2_500
KILL_AFTER = 20_000  # items transformed by the first run before it is killed
TABLE = "kill-backfill"

APP = f'''
from dynamodel import GSI, Model, Table

table = Table("{TABLE}", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])


class Thing(Model):
    class Meta:
        table = table
        pk = "THING#{{n}}"
        sk = "T"
        indexes = {{"gsi1": ("MIGRATED#{{tag}}", "{{n}}")}}

    n: int
    tag: str | None = None
    times: int = 0
'''

MIGRATION = '''"""Tag every thing (which puts it in gsi1); count how often each is migrated."""

import os

from killapp import Thing


def up(ctx):
    log = os.open(os.environ["KILL_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    run = os.environ["KILL_RUN"]

    def migrate(thing):
        if thing.tag is not None:  # migrated already: leave it (idempotent)
            os.write(log, f"{run} seen {thing.n}\\n".encode())
            return None
        os.write(log, f"{run} write {thing.n}\\n".encode())
        return thing.model_copy(update={"tag": "v2", "times": thing.times + 1})

    ctx.backfill(Thing, migrate)
'''


def _create(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": k, "AttributeType": "S"} for k in ("pk", "sk", "gsi1pk", "gsi1sk")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def _old_item(n: int) -> dict[str, Any]:
    """A thing as an older version of the app wrote it: no tag, no times, no index keys."""
    return {
        "pk": {"S": f"THING#{n}"},
        "sk": {"S": "T"},
        "_type": {"S": "Thing"},
        "n": {"N": str(n)},
    }


def _load(backend: Backend, client: Any) -> None:
    """Create the table and its 50,000 items.

    Loading is set-up, not what is tested: on moto (served from this process) the items go
    straight into moto's in-memory table, which takes a second instead of the half minute
    2,000 BatchWriteItem calls take; other backends get the BatchWriteItem calls.
    """
    _create(client)
    if backend.name == "moto":
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        region = client.meta.region_name
        moto_table = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].get_table(TABLE)
        for n in range(ITEMS):
            moto_table.put_item(_old_item(n))
        return
    for start in range(0, ITEMS, 25):
        requests = [{"PutRequest": {"Item": _old_item(n)}} for n in range(start, start + 25)]
        pending: dict[str, Any] = {TABLE: requests}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def _count(client: Any, condition: str, values: dict[str, Any]) -> int:
    """Items of Thing matching a filter, counted server-side (Select=COUNT)."""
    total = 0
    params: dict[str, Any] = {
        "TableName": TABLE,
        "Select": "COUNT",
        "FilterExpression": f"#type = :thing AND ({condition})",
        "ExpressionAttributeNames": {
            name: attribute
            for name, attribute in {"#type": "_type", "#times": "times", "#tag": "tag"}.items()
            if name == "#type" or name in condition
        },
        "ExpressionAttributeValues": {":thing": {"S": "Thing"}, **values},
    }
    while True:
        response = client.scan(**params)
        total += response["Count"]
        if "LastEvaluatedKey" not in response:
            return total
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _state(client: Any) -> tuple[Any, list[Any]]:
    """The migration record and the checkpoint items, read with a plain client."""
    import json

    items = client.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "_dynamodel#migrations"}},
        ConsistentRead=True,
    )["Items"]
    by_sk = {item["sk"]["S"]: item for item in items}
    state = json.loads(by_sk["STATE"]["data"]["S"]) if "STATE" in by_sk else None
    checkpoints = [
        json.loads(item["data"]["S"]) for sk, item in by_sk.items() if sk.startswith("CHECKPOINT#")
    ]
    return state, checkpoints


def _log(path: Path) -> list[tuple[str, str, int]]:
    lines = path.read_text().splitlines() if path.exists() else []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3:  # a line cut by the kill is incomplete: ignore it
            out.append((parts[0], parts[1], int(parts[2])))
    return out


@pytest.mark.slow
def test_backfill_killed_mid_run_resumes_and_migrates_each_item_once(
    fresh_db: Backend, ddb: Any, tmp_path: Path
) -> None:
    try:
        _kill_and_resume(fresh_db, ddb, tmp_path)
    finally:
        ddb.delete_table(TableName=TABLE)  # keeps the next reset of the backend quick


def _kill_and_resume(fresh_db: Backend, ddb: Any, tmp_path: Path) -> None:
    started = time.monotonic()
    (tmp_path / "killapp.py").write_text(APP)
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_tag_things.py").write_text(MIGRATION)
    log = tmp_path / "transform.log"
    _load(fresh_db, ddb)
    assert _count(ddb, "attribute_not_exists(#times)", {}) == ITEMS  # all 50,000, unmigrated
    loaded = time.monotonic()

    command = [
        sys.executable,
        "-m",
        "dynamodel.cli",
        "migrate",
        "up",
        "--app",
        "killapp",
        "--segments",
        str(SEGMENTS),
        "--page-size",
        str(PAGE),
        "--lease",
        "2",
        "--wait",
        "60",
    ]
    env = {**os.environ, **fresh_db.env(), "KILL_LOG": str(log), "COLUMNS": "120"}

    # run 1: killed (SIGKILL, no chance to clean up) once it has transformed KILL_AFTER items
    first = subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**env, "KILL_RUN": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while sum(1 for r, what, _ in _log(log) if what == "write") < KILL_AFTER:
        assert first.poll() is None, first.communicate()[0].decode()[-3000:]
        assert time.monotonic() < deadline, "the first run made too little progress"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL

    state, checkpoints = _state(ddb)
    record = state["versions"]["1"]
    assert record["state"] == "running"  # killed mid-run: nothing recorded it as done
    checkpointed = sum(c["scanned"] for c in checkpoints)
    assert 0 < checkpointed < ITEMS  # some progress was checkpointed, not all of it
    run1 = _log(log)
    killed = time.monotonic()

    # run 2: the dead run's lock expires after its 2 s lease; this run takes over and resumes
    second = subprocess.run(
        command,
        cwd=tmp_path,
        env={**env, "KILL_RUN": "2"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    resumed = time.monotonic()
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "resuming" in second.stdout
    assert "applied 0001_tag_things" in second.stdout

    everything = _log(log)
    run2 = everything[len(run1) :]
    assert {r for r, _, _ in run2} == {"2"}
    writes1 = [n for _, what, n in run1 if what == "write"]
    writes2 = [n for _, what, n in run2 if what == "write"]
    seen2 = [n for _, what, n in run2 if what == "seen"]
    # within one run, each item is transformed at most once
    assert max(Counter(writes1).values()) == 1
    assert max(Counter(writes2 + seen2).values()) == 1
    # every item got a write from one run or the other...
    assert set(writes1) | set(writes2) == set(range(ITEMS))
    # ...and the second run resumed: it read exactly the items after the checkpoints (the
    # runner's own few items in the table count as scanned too), so it redid at most the
    # pages in flight at the kill
    assert ITEMS - checkpointed <= len(writes2) + len(seen2) <= ITEMS - checkpointed + 10
    assert len(set(writes1) & (set(writes2) | set(seen2))) <= SEGMENTS * PAGE

    # the table: all 50,000 things (and no others) are migrated exactly once: times == 1
    # (0: skipped; 2: migrated twice), with the marker that puts them in the index
    once = _count(ddb, "#times = :one AND #tag = :v2", {":one": {"N": "1"}, ":v2": {"S": "v2"}})
    assert once == ITEMS

    state, checkpoints = _state(ddb)
    assert state["versions"]["1"]["state"] == "applied"
    assert checkpoints == []  # cleaned up once applied
    print(
        f"\nload {loaded - started:.1f}s, run 1 {killed - loaded:.1f}s, run 2 "
        f"{resumed - killed:.1f}s, checks {time.monotonic() - resumed:.1f}s; run 1 transformed "
        f"{len(writes1):,}, run 2 {len(writes2):,} (+{len(seen2):,} re-read)"
    )
