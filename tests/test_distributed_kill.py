"""Acceptance: a 200,000-item distributed backfill run by 8 worker processes that are killed at
random (SIGKILL) and restarted, against dynoxide, migrates every item exactly once, and the
shared rate holds across all workers.

* ``dynamodel migrate up`` starts the job and exits with 4 (waiting for workers).
* 8 ``dynamodel migrate worker`` processes work on it; every second or two one of them is
  killed with SIGKILL (no chance to hand anything back) and a new one started, so segments are
  taken over from dead workers' checkpoints once their 3 s lease expires.
* The transform is deliberately *not* idempotent (``times = times + 1``, no marker check):
  only the transaction that commits a page's writes with its checkpoint keeps an item from
  being migrated twice when a worker dies after writing part of its work. The table must end
  with every item at ``times == 1``.
* Every transform call is logged with its time; the calls in any 10 s window stay within the
  shared rate (plus one page per worker in flight), and the whole run takes at least
  ``items / rate`` seconds.
* ``dynamodel migrate up`` then finds the job done and applies the migration.

It runs on dynoxide only (the backend whose behaviour is conformance-checked against
DynamoDB); on moto it skips. ``DIST_ITEMS`` overrides the item count for a quicker local run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from backends import Backend

ITEMS = int(os.environ.get("DIST_ITEMS", "200000"))
WORKERS = 8
SEGMENTS = 64
PAGE = 200
RATE = 2_000  # items scanned per second, all workers together
LEASE = 3
TABLE = "dist-backfill"
WINDOW = 10.0

APP = f'''
from dynamodel import Model, Table

table = Table("{TABLE}")


class Thing(Model):
    class Meta:
        table = table
        pk = "THING#{{n}}"
        sk = "T"

    n: int
    tag: str | None = None
    times: int = 0
'''

MIGRATION = f'''"""Tag every thing; count how often each is migrated (not idempotent on purpose)."""

import os
import time

from distapp import Thing

LOG = os.open(os.environ["DIST_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def tag(thing):
    os.write(LOG, f"{{os.getpid()}} {{time.time():.3f}} {{thing.n}}\\n".encode())
    return thing.model_copy(update={{"tag": "v2", "times": thing.times + 1}})


def up(ctx):
    ctx.backfill(
        Thing, tag, distributed=True, segments={SEGMENTS}, page_size={PAGE}, rate={RATE},
        lease={LEASE},
    )
'''


def _load(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("pk", "sk")],
        BillingMode="PAY_PER_REQUEST",
    )

    def chunk(start: int) -> None:
        requests = [
            {
                "PutRequest": {
                    "Item": {
                        "pk": {"S": f"THING#{n}"},
                        "sk": {"S": "T"},
                        "_type": {"S": "Thing"},
                        "n": {"N": str(n)},
                    }
                }
            }
            for n in range(start, min(start + 25, ITEMS))
        ]
        pending: dict[str, Any] = {TABLE: requests}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(chunk, range(0, ITEMS, 25)))


def _count(client: Any, condition: str, values: dict[str, Any]) -> int:
    total = 0
    params: dict[str, Any] = {
        "TableName": TABLE,
        "Select": "COUNT",
        "FilterExpression": f"#type = :thing AND ({condition})",
        "ExpressionAttributeNames": {"#type": "_type", "#times": "times"},
        "ExpressionAttributeValues": {":thing": {"S": "Thing"}, **values},
    }
    if "#tag" in condition:
        params["ExpressionAttributeNames"]["#tag"] = "tag"
    while True:
        response = client.scan(**params)
        total += response["Count"]
        if "LastEvaluatedKey" not in response:
            return total
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _log(path: Path) -> list[tuple[int, float, int]]:
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:  # a line cut by a kill is incomplete: ignored
            out.append((int(parts[0]), float(parts[1]), int(parts[2])))
    return out


@pytest.mark.slow
def test_distributed_backfill_with_killed_workers_migrates_each_item_once(
    fresh_db: Backend, ddb: Any, tmp_path: Path
) -> None:
    if fresh_db.name != "dynoxide":
        pytest.skip("the distributed-backfill acceptance test runs on dynoxide (--backend)")
    try:
        _run(fresh_db, ddb, tmp_path)
    finally:
        ddb.delete_table(TableName=TABLE)


def _run(backend: Backend, ddb: Any, tmp_path: Path) -> None:
    (tmp_path / "distapp.py").write_text(APP)
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_tag_things.py").write_text(MIGRATION)
    log = tmp_path / "transform.log"
    began = time.monotonic()
    _load(ddb)
    loaded = time.monotonic()
    env = {**os.environ, **backend.env(), "DIST_LOG": str(log), "COLUMNS": "150"}
    cli = [sys.executable, "-m", "dynamodel.cli", "migrate"]
    common = ["--app", "distapp"]

    start = subprocess.run(
        [*cli, "up", *common], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert start.returncode == 4, start.stdout + start.stderr  # waiting for workers
    assert "Waiting for workers" in start.stdout or "waiting for workers" in start.stderr

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*cli, "worker", *common],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    chaos = random.Random(24)
    workers = [spawn() for _ in range(WORKERS)]
    born = {id(w): time.monotonic() for w in workers}
    started = time.monotonic()
    kills = 0
    deadline = started + 2 * ITEMS / RATE + 120
    while any(w.poll() is None for w in workers):
        assert time.monotonic() < deadline, "the workers did not finish in time"
        time.sleep(chaos.uniform(1.0, 2.0))
        now = time.monotonic()
        # a victim has had time to start and claim work (Python start-up takes about a second)
        live = [w for w in workers if w.poll() is None and now - born[id(w)] > 3]
        # kill while there is work left (a worker that exits 0 found the job complete)
        if live and all(w.returncode in (None, -signal.SIGKILL) for w in workers):
            victim = chaos.choice(live)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            kills += 1
            workers.append(spawn())
            born[id(workers[-1])] = time.monotonic()
    finished = time.monotonic()
    for worker in workers:
        stderr = worker.stderr.read().decode() if worker.stderr else ""
        assert worker.returncode in (0, -signal.SIGKILL), stderr[-3000:]
    assert kills >= 5, f"only {kills} kills: the run was too short to test takeovers"

    # every item migrated exactly once (times == 1), none skipped or migrated twice
    assert _count(
        ddb, "#times = :one AND #tag = :v2", {":one": {"N": "1"}, ":v2": {"S": "v2"}}
    ) == (ITEMS)
    assert _count(ddb, "#times <> :one", {":one": {"N": "1"}}) == 0

    calls = _log(log)
    seen = Counter(n for _, _, n in calls)
    assert set(seen) == set(range(ITEMS))
    repeated = sum(c - 1 for c in seen.values())  # transformed again after a kill, not written
    # the shared rate: the whole run, and every 10 s window
    times = sorted(t for _, t, _ in calls)
    assert times[-1] - times[0] >= (len(calls) - WORKERS * PAGE) / RATE
    slack = WORKERS * PAGE
    j = 0
    for i, t in enumerate(times):
        while times[j] < t - WINDOW:
            j += 1
        assert i - j + 1 <= RATE * WINDOW + slack, f"{i - j + 1} calls in {WINDOW} s at {t}"

    done = subprocess.run(
        [*cli, "up", *common], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Applied 1 migration(s)" in done.stdout
    rate = ITEMS / (finished - started)
    print(
        f"\nload {loaded - began:.1f}s; {ITEMS:,} items by {WORKERS} workers in "
        f"{finished - started:.1f}s ({rate:,.0f} items/s, limit {RATE:,}); {kills} kills, "
        f"{len(set(p for p, _, _ in calls))} worker processes, {repeated:,} transforms repeated "
        "after kills (never written twice)"
    )
