"""(l) Distributed backfill throughput by worker count, on the local server.

What runs, for each worker count ``w`` in ``Settings.dist_workers`` (1, 2, 4, 8; quick: 1, 2):

* a fresh table (``bench-dist-<w>``) is created on the suite's local server and loaded with
  ``Settings.dist_items`` items (40,000; quick: 1,000) by 8 threads of BatchWriteItem,
  untimed; every run therefore migrates all the items. On moto (``--server moto``), whose
  segmented Scan reads the whole table for every page (about 30 items/s on 1,000 items), it
  loads ``Settings.dist_items_moto`` (400; quick: 100) instead: run this case on dynoxide;
* a project folder holds an app module (one model on that table) and one migration whose
  ``up(ctx)`` calls ``ctx.backfill(Thing, tag, distributed=True, segments=..., page_size=200)``
  with no rate limit (segments: 64; quick: 16). The transform sets one attribute;
* ``python -m dynamodel.cli migrate up`` starts the job and exits 4 (waiting for workers):
  from then on the job is claimable. The clock starts when that process has exited;
* ``w`` worker processes (``python -m dynamodel.cli migrate worker``, the server's endpoint
  and dummy credentials in their environment) are started at once; the clock stops when the
  last one exits (all segments done). **The figure (items/s) is items / that wall time, so
  it includes the workers' process start-up** (Python, dynamodel, boto3 and the app: about
  a second on this machine, reported in the note as "first item after"), and the tail where
  the last segments finish while other workers have exited;
* the steady-state figure (note and ``extra``) comes from the transform's own clock: each
  worker keeps the ``time.time()`` of every transform call and writes them when it exits.
  From the moment the last worker transformed its first item (all ``w`` workers running) to
  the moment the first worker transformed its last item (none has run out of work yet),
  items transformed in that window / its length. The transform runs when a page has been
  read, before its writes and checkpoint commit in one transaction, so this is pages' pace,
  not start-up or tail;
* the server's CPU seconds during the timed part (the server process and its children, from
  /proc, given by the suite as `SERVER_CPU`) and the workers' CPU (``RUSAGE_CHILDREN`` of this
  process, which only these workers and ``migrate up`` add to) are in the note, as a share of
  one core: with ``os.cpu_count()`` cores shared by the server and the workers, throughput
  stops scaling once the server (dynoxide: one SQLite database behind one lock) or the cores
  are saturated.

The ratio is each count's items/s against 1 worker's in the same run. Seconds per million
items (1e6 / items/s) are in the note, for estimating long backfills; on DynamoDB the server
does not saturate, so these local figures are a floor for the per-worker pace, not a
prediction of a real table's.

The table is deleted after each run (dynoxide keeps it in memory).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .harness import Row, Settings, Target
from .server import REGION

CASE = "l"
PAGE = 200
TITLE = "(l) Distributed backfill throughput by worker count"
RATIO_MEANING = "ratio = items/s / 1 worker's items/s in the same run (higher is better)"
ABOUT = (
    "Items per second of wall time to migrate every item of a freshly loaded table with a "
    "distributed backfill (`ctx.backfill(..., distributed=True)`, 200-item pages, no rate "
    "limit), run by 1, 2, 4 and 8 `dynamodel migrate worker` processes on the same machine as "
    "the local server: from the moment `dynamodel migrate up` has started the job (exit 4) to "
    "the exit of the last worker, so the workers' start-up (about a second) is included. The "
    "notes give the steady-state pace (items transformed while every worker was running), "
    "seconds per million items, the server's and the workers' CPU as a share of one core, "
    "and the machine's core count: throughput scales with workers until the local server or "
    "the cores saturate."
)
#: the bound of the target: 2 workers' items/s against 1 worker's. Measured on 2 shared cores
#: with dynoxide (5 runs, 2026-12-04): 0.81x to 1.12x, because one worker already keeps the
#: server busy (its CPU plus its threads' run-queue wait is about 100% of the wall time). So
#: the target guards the coordination's cost (claims, leases, the end-of-job poll), not a
#: speed-up, which this machine cannot show: adding a worker loses at most 30%.
TWO_WORKERS_MIN = 0.7
#: the suite sets this to the server's ``cpu_seconds`` (None: not measured)
SERVER_CPU: Callable[[], float | None] | None = None
#: the suite sets this to the server's kind: on moto, whose segmented Scan reads the whole table
#: for every page (about 30 items/s here), the case migrates ``Settings.dist_items_moto`` items
SERVER_KIND = "dynoxide"
#: and to its ``run_queue_seconds`` (time runnable but waiting for a core)
SERVER_WAIT: Callable[[], float | None] | None = None

APP = """
from dynamodel import Model, Table

table = Table("{table}")


class Thing(Model):
    class Meta:
        table = table
        pk = "THING#{{n}}"
        sk = "T"

    n: int
    tag: str | None = None
"""

MIGRATION = '''"""Tag every thing (benchmark (l)); log each transform call's time."""

import os
import time

from distapp import Thing

FILES = {{}}


def tag(thing):
    pid = os.getpid()
    if pid not in FILES:
        path = os.path.join(os.environ["DIST_TIMES"], f"{{pid}}.txt")
        FILES[pid] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(FILES[pid], f"{{time.time():.6f}}\\n".encode())
    return thing.model_copy(update={{"tag": "v2"}})


def up(ctx):
    ctx.backfill(Thing, tag, distributed=True, segments={segments}, page_size={page})
'''


def _load(client: Any, table: str, items: int) -> None:
    client.create_table(
        TableName=table,
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
            for n in range(start, min(start + 25, items))
        ]
        pending: dict[str, Any] = {table: requests}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(chunk, range(0, items, 25)))


def _worker_main(folder: str, env: dict[str, str], go: Any, ready: Any, results: Any) -> None:
    """One worker process (spawned): import dynamodel and the app, say so, wait for ``go``,
    work on the job until it is complete, and put (error or "", CPU seconds while working)."""
    os.environ.update(env)
    os.chdir(folder)
    sys.path.insert(0, folder)
    import boto3

    from dynamodel.migrations.worker import Worker

    app = importlib.import_module("distapp")
    boto3.client("dynamodb").close()  # botocore's service model, loaded before the clock
    worker = Worker(app.table, Path(folder) / "migrations")
    ready.put(os.getpid())
    go.wait()
    cpu = time.process_time()
    try:
        worker.work()
    except Exception as error:  # the parent raises it
        results.put((f"{type(error).__name__}: {error}", time.process_time() - cpu))
        return
    results.put(("", time.process_time() - cpu))


def _steady(per_worker: list[list[float]]) -> tuple[float | None, float]:
    """Items/s while every worker was transforming, and that window's length in seconds."""
    if not per_worker:
        return None, 0.0
    begin = max(times[0] for times in per_worker)
    end = min(times[-1] for times in per_worker)
    if end - begin <= 0:
        return None, 0.0
    count = sum(sum(1 for t in times if begin <= t <= end) for times in per_worker)
    return count / (end - begin), end - begin


def _one(
    client: Any, endpoint: str, workers: int, items: int, segments: int, log: Callable[[str], None]
) -> dict[str, Any]:
    table = f"bench-dist-{workers}"
    with tempfile.TemporaryDirectory(prefix="bench-dist-") as tmp:
        folder = Path(tmp)
        (folder / "distapp.py").write_text(APP.format(table=table))
        (folder / "migrations").mkdir()
        (folder / "migrations" / "0001_tag_things.py").write_text(
            MIGRATION.format(segments=segments, page=PAGE)
        )
        times_dir = folder / "times"
        times_dir.mkdir()
        _load(client, table, items)
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "DIST_TIMES": str(times_dir),
        }
        cli = [sys.executable, "-m", "dynamodel.cli", "migrate"]
        spawn = multiprocessing.get_context("spawn")
        go = spawn.Event()
        ready = spawn.Queue()
        results = spawn.Queue()
        procs = [
            spawn.Process(target=_worker_main, args=(str(folder), env, go, ready, results))
            for _ in range(workers)
        ]
        for p in procs:
            p.start()
        try:
            for _ in procs:  # every worker has imported dynamodel and the app, and waits
                ready.get(timeout=300)
            start = subprocess.run(
                [*cli, "up", "--app", "distapp"],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if start.returncode != 4:
                raise RuntimeError(
                    f"(l) migrate up exited {start.returncode}, not 4: "
                    + start.stdout
                    + start.stderr
                )
            cpu0 = SERVER_CPU() if SERVER_CPU is not None else None
            wait0 = SERVER_WAIT() if SERVER_WAIT is not None else None
            began_wall = time.time()
            began = time.perf_counter()
            go.set()  # the job is claimable: the clock runs
            outcomes = [results.get(timeout=3600) for _ in procs]
            for p in procs:
                p.join()
            elapsed = time.perf_counter() - began
            cpu1 = SERVER_CPU() if SERVER_CPU is not None else None
            wait1 = SERVER_WAIT() if SERVER_WAIT is not None else None
        finally:
            for p in procs:
                if p.is_alive():
                    p.kill()
                    p.join()
        failed = [error for error, _ in outcomes if error]
        if failed:
            raise RuntimeError(f"(l) a worker failed: {failed[0]}")
        workers_cpu = sum(cpu for _, cpu in outcomes)
        per_worker = []
        for path in times_dir.glob("*.txt"):
            times = sorted(float(t) for t in path.read_text().split())
            if times:
                per_worker.append(times)
        transformed = sum(len(t) for t in per_worker)
        client.delete_table(TableName=table)
    if transformed != items:
        raise RuntimeError(f"(l) {transformed} items transformed, not {items}")
    steady, window = _steady(per_worker)
    first = min(t[0] for t in per_worker) - began_wall
    last = max(t[-1] for t in per_worker) - began_wall
    server_cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    server_wait = wait1 - wait0 if wait0 is not None and wait1 is not None else None
    log(
        f"  {workers} worker(s): {items / elapsed:,.0f} items/s in {elapsed:.1f} s"
        + (f", steady {steady:,.0f} items/s" if steady else "")
        + (f", server CPU {server_cpu / elapsed:.0%}" if server_cpu is not None else "")
        + (f", server waited {server_wait / elapsed:.0%}" if server_wait is not None else "")
    )
    return {
        "elapsed": elapsed,
        "steady": steady,
        "window": window,
        "first": first,
        "last": last,
        "active": len(per_worker),
        "server_cpu": server_cpu,
        "server_wait": server_wait,
        "workers_cpu": workers_cpu,
    }


def run(
    settings: Settings, endpoint: str, log: Callable[[str], None]
) -> tuple[list[Row], list[Target]]:
    import boto3

    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    items = settings.dist_items if SERVER_KIND != "moto" else settings.dist_items_moto
    op = f"migrate {items:,} items"
    cores = os.cpu_count() or 1
    rows: list[Row] = []
    try:
        for workers in settings.dist_workers:
            m = _one(client, endpoint, workers, items, settings.dist_segments, log)
            rate = items / m["elapsed"]
            parts = [
                f"{m['elapsed']:.1f} s wall, first item after {m['first']:.1f} s, last at "
                f"{m['last']:.1f} s",
                f"{1e6 / rate:,.0f} s per 1M items",
            ]
            if m["steady"]:
                parts.append(
                    f"steady {m['steady']:,.0f} items/s over {m['window']:.1f} s "
                    f"({1e6 / m['steady']:,.0f} s per 1M items)"
                )
            if m["active"] < workers:
                parts.append(f"only {m['active']} of {workers} workers got work")
            if m["server_cpu"] is not None:
                parts.append(f"server CPU {m['server_cpu'] / m['elapsed']:.0%} of a core")
            if m["server_wait"] is not None:
                parts.append(
                    f"server threads' run-queue wait {m['server_wait'] / m['elapsed']:.0%} "
                    "of the wall time"
                )
            parts.append(f"workers' CPU {m['workers_cpu'] / m['elapsed']:.0%} of a core")
            parts.append(f"{cores} cores")
            extra = {
                "seconds": m["elapsed"],
                "first_item_s": m["first"],
                "last_item_s": m["last"],
                "s_per_million": 1e6 / rate,
                "workers_cpu_s": m["workers_cpu"],
                "cores": float(cores),
            }
            if m["steady"]:
                extra["steady_items_per_s"] = m["steady"]
                extra["steady_s_per_million"] = 1e6 / m["steady"]
            if m["server_cpu"] is not None:
                extra["server_cpu_s"] = m["server_cpu"]
            if m["server_wait"] is not None:
                extra["server_run_queue_s"] = m["server_wait"]
            rows.append(
                Row(
                    CASE,
                    op,
                    f"{workers} worker" + ("s" if workers > 1 else ""),
                    rate,
                    "items/s",
                    note="; ".join(parts),
                    extra=extra,
                )
            )
    finally:
        client.close()
    base = rows[0].value if rows and rows[0].peer == "1 worker" else None
    for row in rows:
        if base and row.value is not None:
            row.ratio = row.value / base
    two = next((r for r in rows if r.peer == "2 workers"), None)
    more = ", ".join(
        f"{r.peer} {r.ratio:.2f}x"
        for r in rows
        if r.ratio
        and r.peer
        not in (
            "1 worker",
            "2 workers",
        )
    )
    target = Target(
        CASE,
        f"2 workers >= {TWO_WORKERS_MIN}x the items/s of 1 worker",
        two.ratio if two is not None else None,
        TWO_WORKERS_MIN,
        "min",
        note=f"not a speed-up: on {cores} cores shared by the server and the workers, one worker "
        "already keeps the local server busy (see the rows' server CPU and run-queue wait)"
        + (f"; {more}" if more else ""),
    )
    return rows, [target]
