"""(k) The FastAPI example under load: requests/s and p99 against a hand-written aioboto3 app.

Two apps serve the same routes against the benchmark server, each in its own uvicorn process
(one worker, no access log, port chosen free; started by `benchmarks.fastapi_serve`, which
also records the pause of each full garbage collection the app makes):

* the example, ``examples/fastapi_app`` as it ships (dynamodel's default transport: the
  ``DYNAMODEL_TRANSPORT`` variable is removed from its environment), and, as extra rows, the
  example with ``DYNAMODEL_TRANSPORT=boto3`` and ``=lean`` and with a connection pool twice
  its default (``SHOP_MAX_CONNECTIONS``: if the pool were the bottleneck, doubling it would
  show);
* the floor, `benchmarks.fastapi_floor`: FastAPI and aioboto3 by hand, the same routes,
  statuses, DynamoDB requests and JSON bodies (checked before the rounds: the same request to
  both apps returns the same body).

Before the apps start, ``CUSTOMERS`` customers with ``ORDERS`` orders of two lines each are
written with the example's own models (`dynamodel.batch_write`). A load generator in a third
process (`benchmarks.fastapi_load`: raw asyncio keep-alive connections, so its CPU per request
is small; its CPU share is in the notes) keeps ``CONCURRENCY`` requests in flight: a fixed mix
of an order's detail (GetItem and Query, concurrently), a customer's newest 5 orders (Query
with ``Limit``, and a signed cursor) and, one request in ten, a sign-up (PutItem with a
condition). Every round runs each app once (warm-up, then ``fastapi_requests`` timed
requests), in a rotated order; the rows are medians over the rounds, the ratios paired per
round (median of the rounds' ratios).

While each app is loaded, its established TCP connections to the DynamoDB server are counted
every 20 ms (from ``/proc``): the peak is in the notes, with the app's CPU per request (its
process's CPU over the warm-up and the timed requests: steadier than requests/s when other
work shares the cores). The peak counts idle pooled connections too, so the evidence that the
pool does not limit the example is the doubled pool's row: given ``2 * POOL`` connections it
neither opens more than ``POOL`` at once nor serves more requests.

On 2 cores the server, the app and the load generator share the machine, so the app's CPU
is the bottleneck of both apps (as intended: the case compares what each spends per request)
and requests/s moves by +-30% between rounds when anything else runs; the paired, rotated
rounds and the medians absorb most of it.

Where the example's tail comes from (measured with gc callbacks in both apps under this load):
full (generation 2) collections of the ~100,000 objects the imports leave take 50-60 ms here
and stall every request in flight. The example allocates about twice as many container
objects per request as the floor (twice the generation-0 collections), so a full collection
lands about every 1,100 requests in it against every 2,200 in the floor: whether one falls in
a round's 1,000 timed requests moves that round's p99 by ~50 ms. dynamodel leaves no reference
cycles per request (served in-process, a request of either app leaves the same garbage:
aiobotocore's parsers and the HTTP layer's objects). ``gc.freeze()`` after start-up cuts
those collections to ~20 ms in both apps; neither app does it here (both run as written).
The notes give the full collections each app made during its runs (warm-ups included) and
their median pause.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .harness import Row, Settings, Target, median, rotate
from .server import CREDENTIALS, REGION, ROOT

CASE = "k"
CONCURRENCY = 32  # requests in flight (the documented concurrency of the example's pool)
POOL = 64  # the example's default SHOP_MAX_CONNECTIONS (deps.Settings.max_connections)
CUSTOMERS = 50  # (10 in quick runs)
ORDERS = 8  # per customer; the list reads 5, so it returns a cursor
TABLE_NAME = "fastapi-bench-shop"
CURSOR_KEY = "case-k-cursor-key-0123456789abcdef"
FLOOR = "floor (FastAPI + aioboto3 by hand)"
EXAMPLE = "example app"
TRANSPORTS = ("boto3", "lean")  # the extra rows' DYNAMODEL_TRANSPORT (not the default's)
RPS_MIN = 0.8
P99_MAX = 1.25

TITLE = f"(k) The FastAPI example under load ({CONCURRENCY} requests in flight)"
RATIO_MEANING = (
    "ratio = app / the hand-written aioboto3 app (requests/s: higher is better; "
    "p99: lower is better)"
)
ABOUT = (
    "Requests per second and latency (p50, p99) of the example app (`examples/fastapi_app`, "
    "uvicorn, one worker) under a bounded concurrent load, against a minimal hand-written "
    "FastAPI + aioboto3 app serving the same routes with the same DynamoDB requests and "
    "responses (`benchmarks/fastapi_floor.py`), both on the same server. The load "
    f"(`benchmarks/fastapi_load.py`, its own process) keeps {CONCURRENCY} requests in flight: "
    "an order's detail (GetItem + Query), a customer's newest 5 orders (Query with Limit) and, "
    "one in ten, a sign-up (conditional PutItem). Rounds alternate the apps; the ratios are "
    "the median of each round's ratio. The target reads the example with dynamodel's default "
    "transport; the other transport is an extra row. Notes: the app's CPU per request, the "
    "load generator's CPU share (small: it is not the bottleneck), the app's full garbage "
    "collections (each stalls every request in flight: they drive p99) and the most connections "
    "each app held open to DynamoDB at once, idle ones included. The example's pool is "
    f"{POOL} connections (`SHOP_MAX_CONNECTIONS`); the row with twice that is the check that "
    "the pool is not the limit: it neither opens more than "
    f"{POOL} connections nor serves more requests."
)


@dataclass
class App:
    name: str
    target: str
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log: Any = None  # the app's standard error (a temporary file, shown if it fails)
    gc_file: Path | None = None  # where the app writes the pause of each full collection
    port: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)

    def start(self, endpoint: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DYNAMODEL_TRANSPORT"}
        env.update(CREDENTIALS)
        env.update(
            {
                "SHOP_TABLE": TABLE_NAME,
                "SHOP_ENDPOINT_URL": endpoint,
                "SHOP_REGION": REGION,
                "SHOP_CURSOR_KEY": CURSOR_KEY,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            }
        )
        env.update(self.env)
        self.port = free_port()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop)
        stats = tempfile.NamedTemporaryFile(prefix="case-k-gc-", delete=False)  # noqa: SIM115
        stats.close()
        self.gc_file = Path(stats.name)
        command = [sys.executable, "-m", "benchmarks.fastapi_serve", self.target]
        command += [str(self.port), str(self.gc_file)]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=self.log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}: {self.said()}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not listen within 60 s")

    def said(self) -> str:
        """The end of what the app wrote to its standard error."""
        if self.log is None:
            return ""
        self.log.seek(0)
        text: str = self.log.read().decode(errors="replace")
        return text[-2000:]

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.log is not None:
            self.log.close()
            self.log = None
        if self.gc_file is not None:
            self.gc_file.unlink(missing_ok=True)
            self.gc_file = None

    def full_collections(self) -> list[float]:
        """The pauses (s) of every full collection the app has made so far."""
        if self.gc_file is None:
            return []
        return [float(x) for x in self.gc_file.read_text().split()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def warmup(settings: Settings) -> int:
    """Untimed requests before each timed run."""
    return CONCURRENCY * (1 if settings.quick else 4)


def customers(settings: Settings) -> int:
    return 10 if settings.quick else CUSTOMERS


def missing_packages() -> list[str]:
    return [m for m in ("uvicorn", "fastapi", "aioboto3") if find_spec(m) is None]


def seed(endpoint: str, customers: int) -> None:
    """The table and its customers, orders and order lines, through the example's models."""
    from dynamodel import Connection, batch_write
    from examples.fastapi_app.models import TABLE, Customer, Order, OrderItem

    TABLE.bind(name=TABLE_NAME, connection=Connection(endpoint_url=endpoint, region=REGION))
    try:
        TABLE.create(exist_ok=True)
        # the orders are new (version 1 as `create` stores them): no version to check
        with batch_write(skip_version_check=True) as batch:
            for c in range(customers):
                customer = f"c{c}"
                batch.put(Customer(customer_id=customer, name=f"Customer {c}", email=f"{c}@x.io"))
                for o in range(ORDERS):
                    at = f"2026-03-01T09:{o:02d}:00Z"
                    lines = [
                        OrderItem(
                            customer_id=customer,
                            order_id=f"o{o}",
                            product_id=f"p{p}",
                            quantity=p + 1,
                            unit_price=Decimal("2.50"),
                        )
                        for p in range(2)
                    ]
                    total = sum((x.unit_price * x.quantity for x in lines), Decimal(0))
                    batch.put(
                        Order(
                            customer_id=customer,
                            order_id=f"o{o}",
                            placed_at=at,
                            total=total,
                            lines=2,
                            version=1,
                        )
                    )
                    for line in lines:
                        batch.put(line)
        wanted = customers * (1 + ORDERS * 3)
        if len(batch.result.written) != wanted:
            raise RuntimeError(f"seeding wrote {len(batch.result.written)} of {wanted} items")
    finally:
        TABLE.unbind()


def fetch(port: int, path: str, customer: str, body: Any = None) -> tuple[int, Any]:
    """GET ``path`` (POST ``body`` as JSON) as ``customer``: the status and the JSON body."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"X-Customer-Id": customer}
    try:
        if body is None:
            connection.request("GET", path, headers=headers)
        else:
            headers["Content-Type"] = "application/json"
            connection.request("POST", path, json.dumps(body), headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def check_same(floor: App, others: list[App]) -> None:
    """The same requests to every app: the same statuses and bodies (cursors aside)."""
    paths = [
        ("/customers/c1/orders/o3", "c1"),
        ("/customers/c1/orders?limit=5", "c1"),
        ("/customers/c1/orders/nope", "c1"),
        ("/customers/c2/orders/o1", "c1"),
    ]
    for path, who in paths:
        want = fetch(floor.port, path, who)
        if isinstance(want[1], dict) and want[1].get("cursor"):
            want[1]["cursor"] = "..."
        for app in others:
            got = fetch(app.port, path, who)
            if isinstance(got[1], dict) and got[1].get("cursor"):
                got[1]["cursor"] = "..."
            if got != want:
                raise RuntimeError(f"{app.name} answered {path} with {got}, the floor {want}")
    # sign-ups: a new customer (201, the stored profile), then the same again (409)
    for number, app in enumerate([floor, *others]):
        new = f"check-{number}"
        body = {"customer_id": new, "name": "New", "email": "new@x.example"}
        created = fetch(app.port, "/customers", new, body)
        again = fetch(app.port, "/customers", new, body)
        if created[0] != 201 or set(created[1]) != {*body, "created_at"} or again[0] != 409:
            raise RuntimeError(f"{app.name} signed up {new} with {created}, then {again}")
        if again[1] != {"detail": f"customer {new!r} exists"}:
            raise RuntimeError(f"{app.name} answered a second sign-up with {again}")


def _socket_inodes(pid: int) -> set[str]:
    out = set()
    try:
        for fd in os.scandir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(fd.path)
            except OSError:
                continue
            if link.startswith("socket:["):
                out.add(link[8:-1])
    except OSError:
        pass
    return out


def connections_to(pid: int, port: int) -> int:
    """Established TCP connections of process ``pid`` to local port ``port`` (Linux)."""
    inodes = _socket_inodes(pid)
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port and inode in inodes:
                count += 1
    return count


def load(app: App, settings: Settings, tag: str, db_port: int) -> dict[str, Any]:
    """One timed run of the load generator against ``app``; its figures."""
    assert app.process is not None
    command = [sys.executable, "-m", "benchmarks.fastapi_load", str(app.port), str(CONCURRENCY)]
    count = settings.fastapi_requests
    command += [str(count), str(warmup(settings)), tag]
    command += [str(customers(settings)), str(ORDERS)]
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, connections_to(app.process.pid, db_port))  # type: ignore[union-attr]

    sampler = threading.Thread(target=sample, daemon=True)
    cpu = process_cpu(app.process.pid)
    collections = len(app.full_collections())
    sampler.start()
    try:
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"the load on {app.name} failed: {out.stderr}\n{app.said()}")
    finally:
        done.set()
        sampler.join()
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if figures["unexpected"]:
        raise RuntimeError(f"{app.name}: unexpected statuses {figures['statuses']}")
    figures["peak_connections"] = peak
    figures["full_gc"] = app.full_collections()[collections:]
    # the app's CPU over the warm-up and the timed requests alike
    figures["app_cpu_ms"] = (process_cpu(app.process.pid) - cpu) * 1000 / (count + warmup(settings))
    return figures


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used (Linux; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(
    settings: Settings, endpoint: str, log: Callable[[str], None]
) -> tuple[list[Row], list[Target]]:
    missing = missing_packages()
    from dynamodel.io.lean import DEFAULT_TRANSPORT as default  # when nothing says

    floor = App(FLOOR, "benchmarks.fastapi_floor:app")
    target = "examples.fastapi_app.app:app"
    example = App(f"{EXAMPLE} (default transport: {default})", target)
    extras = []
    if not settings.quick:  # quick runs: the two apps the targets compare
        extras = [
            App(f"{EXAMPLE}, DYNAMODEL_TRANSPORT={name}", target, {"DYNAMODEL_TRANSPORT": name})
            for name in TRANSPORTS
            if name != default
        ]
        pool = {"SHOP_MAX_CONNECTIONS": str(2 * POOL)}
        extras.append(App(f"{EXAMPLE}, pool {2 * POOL} (twice the default)", target, pool))
    apps = [floor, example, *extras]
    if missing:
        note = "not installed: " + ", ".join(missing)
        rows = [Row(CASE, op, a.name, None, u, note=note) for a in apps for op, u in OPS]
        return rows, _targets(None, None, settings, note)
    seed(endpoint, customers(settings))
    db_port = urlsplit(endpoint).port or 80
    try:
        for app in apps:
            app.start(endpoint)
        check_same(floor, apps[1:])
        for number in range(settings.fastapi_rounds):
            for app in rotate(apps, number):
                figures = load(app, settings, f"r{number}{apps.index(app)}", db_port)
                app.runs.append(figures)
            log(
                f"  round {number + 1}/{settings.fastapi_rounds}: "
                + ", ".join(f"{a.name} {a.runs[-1]['requests_per_s']:.0f}/s" for a in apps)
            )
    finally:
        for app in apps:
            app.stop()
    rows = []
    for app in apps:
        rps = median([r["requests_per_s"] for r in app.runs])
        p50 = median([r["p50_ms"] for r in app.runs])
        p99 = median([r["p99_ms"] for r in app.runs])
        load_cpu = median([r["cpu_s"] / r["wall_s"] for r in app.runs])
        app_cpu = median([r["app_cpu_ms"] for r in app.runs])
        pauses = [p for r in app.runs for p in r["full_gc"]]
        served = len(app.runs) * (settings.fastapi_requests + warmup(settings))
        full_gc = f"{len(pauses)} full collections in {served:,} requests" + (
            f" ({median(pauses) * 1000:.0f} ms each, median)" if pauses else ""
        )
        peak = max(r["peak_connections"] for r in app.runs)
        paired_rps = median(
            [
                a["requests_per_s"] / b["requests_per_s"]
                for a, b in zip(app.runs, floor.runs, strict=True)
            ]
        )
        paired_p99 = median(
            [a["p99_ms"] / b["p99_ms"] for a, b in zip(app.runs, floor.runs, strict=True)]
        )
        note = (
            f"p50 {p50:.1f} ms; app CPU {app_cpu:.2f} ms per request; "
            f"at most {peak} connections to DynamoDB at once; {full_gc}; "
            f"load generator CPU {load_cpu:.0%} of one core"
        )
        extra = {"p50_ms": p50, "p99_ms": p99, "peak_connections": peak, "app_cpu_ms": app_cpu}
        rows.append(Row(CASE, OPS[0][0], app.name, rps, OPS[0][1], paired_rps, note, extra))
        rows.append(Row(CASE, OPS[1][0], app.name, p99, OPS[1][1], paired_p99, extra=extra))
    ratio_rps = next(r.ratio for r in rows if r.peer == example.name and r.op == OPS[0][0])
    ratio_p99 = next(r.ratio for r in rows if r.peer == example.name and r.op == OPS[1][0])
    return rows, _targets(ratio_rps, ratio_p99, settings)


OPS = (("requests/s", "req/s"), ("p99 latency", "ms"))


def _targets(
    rps: float | None, p99: float | None, settings: Settings, why: str = ""
) -> list[Target]:
    note = why or (
        f"{CONCURRENCY} requests in flight, {settings.fastapi_requests} timed requests per app "
        f"and round, {settings.fastapi_rounds} rounds; median of the rounds' ratios"
    )
    return [
        Target(
            CASE,
            "FastAPI example: requests/s vs hand-written aioboto3 app",
            rps,
            RPS_MIN,
            "min",
            note,
        ),
        Target(
            CASE,
            "FastAPI example: p99 latency vs hand-written aioboto3 app",
            p99,
            P99_MAX,
            "max",
            note,
        ),
    ]
