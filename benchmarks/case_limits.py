"""(i) Reads with a limit on a 300-item partition: what ``first()`` and ``limit(10)`` cost.

One partition holds ``ITEMS`` items of ``DStreamUser`` (written with `dynamodel.batch_write`)
and, as single-table partitions do, one item of another entity (a profile, sort key
``PROFILE``, outside the items' sort-key prefix). Each operation runs per peer:

* ``first()``: dynamodel's ``DStreamUser.query(...).first()`` (sync) and ``.afirst()`` (async)
  against the raw boto3 client (the very client object dynamodel sync uses) and raw aioboto3
  sending the same request dynamodel sends (`peers.floor_query_params`: the sort-key prefix
  and the type filter) with ``Limit=1``, parsing the item by hand into the plain model;
* ``limit(10)``: ``.limit(10).all()`` / ``.aall()`` against the raw clients with ``Limit=10``;
* for context, in both operations, the raw boto3 client sending that request without
  ``Limit`` (first page only: the whole 300-item partition) and parsing the items it needs:
  what a read with a limit costs when it does not tell DynamoDB.

Per round and peer, ``call_count`` calls of each operation run back to back (a tenth as many
of the no-Limit read, which moto takes ~0.7 s to answer); latency is each call's wall time
(median over all rounds), client CPU is ``time.process_time()`` per call (median round).
Rounds interleave the peers (rotated order). The ratio is each row's latency against the raw
client with the same ``Limit`` (aioboto3's for the async rows, boto3's for the rest).

The server-side work is read after the rounds, untimed, asking with
``ReturnConsumedCapacity=TOTAL``: for dynamodel sync the very ``first()`` / ``limit(10).all()``
call (with ``.return_consumed_capacity("TOTAL")``), its requests seen through the boto3 client's
event hooks (how many, the ``Limit`` each sent, ``ScannedCount``, ``ConsumedCapacity``); for
dynamodel async the pages of the same read (`Page.scanned_count`, `Page.consumed_capacity`);
for the raw peers their one response. moto reports capacity crudely; dynoxide
(``--server dynoxide``) computes it as DynamoDB does (0.5 read units per 4 KB read,
eventually consistent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from . import peers
from .harness import Row, Settings, Target, find, median, rotate, settled_heap, timed_calls
from .server import REGION

CASE = "i"
ITEMS = 300  # items of the queried partition (plus one item of another entity)
TAG = "li"  # the partition: STREAM#li
OPS = {"first()": 1, "limit(10)": 10}  # operation -> the items it returns (the raw Limit)
SYNC = "dynamodel sync"
ASYNC = "dynamodel async"
RAW = "raw boto3 client, Limit=n"
RAW_ASYNC = "raw aioboto3 client, Limit=n"
RAW_NO_LIMIT = "raw boto3 client, no Limit (first page)"
#: the no-Limit read is context, and moto takes ~0.7 s to answer it: a tenth of the calls
NO_LIMIT_SHARE = 10
#: the row each row's ratio is taken against
BASELINE = {SYNC: RAW, RAW: RAW, RAW_NO_LIMIT: RAW, ASYNC: RAW_ASYNC, RAW_ASYNC: RAW_ASYNC}
#: the issue's bounds per operation: most items DynamoDB may evaluate, latency / raw with Limit
SCANNED_MAX = {"first()": 2, "limit(10)": 11}
LATENCY_MAX = 1.2

TITLE = f"(i) Reads with a limit on a {ITEMS}-item partition"
RATIO_MEANING = (
    "ratio = peer latency / the raw client's with the same Limit (aioboto3's for async; "
    "lower is better)"
)


@dataclass
class Peer:
    name: str
    ops: dict[str, Callable[[int], Any]]  # op -> fn(call index)
    is_async: bool = False
    share: int = 1  # runs call_count // share calls a batch (the no-Limit read is slow on moto)


@dataclass
class Work:
    """What one call of an operation asked of the server."""

    requests: int = 0
    scanned: int = 0
    capacity: float | None = None  # read units in all (None: the server reported none)
    limits: list[int | None] = field(default_factory=list)  # the Limit each request sent

    def add(self, scanned: int, consumed: Any, *limit: int | None) -> None:
        """One response; ``limit``: the Limit its request sent (none given: not known)."""
        self.requests += 1
        self.scanned += scanned
        self.limits += limit
        units = (consumed or {}).get("CapacityUnits")
        if units is not None:
            self.capacity = (self.capacity or 0.0) + float(units)

    def text(self) -> str:
        capacity = "no capacity reported" if self.capacity is None else f"{self.capacity:g} RCU"
        plural = "s" if self.requests != 1 else ""
        sent = ""
        if self.limits:
            sent = " (Limit " + ", ".join("none" if x is None else str(x) for x in self.limits)
            sent += ")"
        return f"{self.requests} request{plural}{sent}, ScannedCount {self.scanned}, {capacity}"


def _query(n: int | None = None) -> Any:
    query = peers.DStreamUser.query(stream_id=TAG)
    return query if n is None else query.limit(n)


def prepare(client: Any) -> None:
    """The partition: ``ITEMS`` models and one profile item of another entity."""
    from dynamodel import batch_write

    with batch_write() as batch:
        for i in range(ITEMS):
            batch.put(peers.dynamodel_make(i, TAG, stream=TAG))
    if len(batch.result.written) != ITEMS:
        raise RuntimeError(f"wrote {len(batch.result.written)} of {ITEMS} items")
    client.put_item(
        TableName=peers.TABLE,
        Item={
            peers.PK: {"S": f"STREAM#{TAG}"},
            peers.SK: {"S": "PROFILE"},
            peers.TYPE: {"S": "StreamProfile"},
            "title": {"S": "The stream's profile"},
        },
    )


def _sync_peers(client: Any) -> list[Peer]:
    params = peers.floor_query_params(TAG)
    parse = peers.floor_parse

    def raw(n: int) -> Callable[[int], Any]:
        return lambda i: [parse(x) for x in client.query(**params, Limit=n)["Items"]]

    def no_limit(n: int) -> Callable[[int], Any]:
        return lambda i: [parse(x) for x in client.query(**params)["Items"][:n]]

    return [
        Peer(
            SYNC,
            {"first()": lambda i: _query().first(), "limit(10)": lambda i: _query(10).all()},
        ),
        Peer(RAW, {op: raw(n) for op, n in OPS.items()}),
        Peer(RAW_NO_LIMIT, {op: no_limit(n) for op, n in OPS.items()}, share=NO_LIMIT_SHARE),
    ]


def _async_peers(client: Any) -> list[Peer]:
    params = peers.floor_query_params(TAG)
    parse = peers.floor_parse

    def raw(n: int) -> Callable[[int], Awaitable[Any]]:
        async def call(i: int) -> Any:
            return [parse(x) for x in (await client.query(**params, Limit=n))["Items"]]

        return call

    return [
        Peer(
            ASYNC,
            {"first()": lambda i: _query().afirst(), "limit(10)": lambda i: _query(10).aall()},
            is_async=True,
        ),
        Peer(RAW_ASYNC, {op: raw(n) for op, n in OPS.items()}, is_async=True),
    ]


# -- what each call asks of the server (untimed) ------------------------------------------------


def _dynamodel_sync_work(client: Any, op: str) -> tuple[Work, int]:
    """dynamodel sync's very call (asking for capacity), seen through the client's hooks."""
    work = Work()
    sent: list[int | None] = []

    def before(params: dict[str, Any], **_: Any) -> None:
        sent.append(params.get("Limit"))

    def after(parsed: dict[str, Any], **_: Any) -> None:
        work.add(
            int(parsed.get("ScannedCount", 0)),
            parsed.get("ConsumedCapacity"),
            sent[-1] if sent else None,
        )

    events = client.meta.events
    events.register("before-parameter-build.dynamodb.Query", before)
    events.register("after-call.dynamodb.Query", after)
    try:
        query = _query().return_consumed_capacity("TOTAL")
        found = query.first() if op == "first()" else query.limit(OPS[op]).all()
    finally:
        events.unregister("before-parameter-build.dynamodb.Query", before)
        events.unregister("after-call.dynamodb.Query", after)
    got = (0 if found is None else 1) if op == "first()" else len(found)
    return work, got


async def _dynamodel_async_work(op: str) -> tuple[Work, int]:
    """dynamodel async's read, page by page (`Page.scanned_count`, `Page.consumed_capacity`)."""
    work = Work()
    got = 0
    async for page in _query(OPS[op]).return_consumed_capacity("TOTAL").apages():
        # a page does not say what Limit its request sent (the sync row shows it)
        work.add(page.scanned_count, page.consumed_capacity)
        got += len(page.items)
    return work, got


def _raw_work(response: dict[str, Any], limit: int | None) -> Work:
    work = Work()
    work.add(
        int(response.get("ScannedCount", 0)),
        response.get("ConsumedCapacity"),
        limit,
    )
    return work


def _server_work(
    client: Any, aclient: Any, runner: asyncio.Runner
) -> dict[tuple[str, str], tuple[Work, int]]:
    params = dict(peers.floor_query_params(TAG), ReturnConsumedCapacity="TOTAL")
    out: dict[tuple[str, str], tuple[Work, int]] = {}
    for op, n in OPS.items():
        out[op, SYNC] = _dynamodel_sync_work(client, op)
        out[op, ASYNC] = runner.run(_dynamodel_async_work(op))
        raw = client.query(**params, Limit=n)
        out[op, RAW] = (_raw_work(raw, n), len(raw["Items"]))
        araw = runner.run(aclient.query(**params, Limit=n))
        out[op, RAW_ASYNC] = (_raw_work(araw, n), len(araw["Items"]))
        whole = client.query(**params)
        out[op, RAW_NO_LIMIT] = (_raw_work(whole, None), min(n, len(whole["Items"])))
    for (op, name), (_, got) in out.items():
        if got != OPS[op]:
            raise RuntimeError(f"{op} {name} returned {got} items, not {OPS[op]}")
    return out


def _run_op(peer: Peer, op: str, count: int, runner: asyncio.Runner) -> tuple[float, list[float]]:
    return timed_calls(peer.ops[op], count, peer.is_async, runner)


def run(
    settings: Settings, endpoint: str, log: Callable[[str], None]
) -> tuple[list[Row], list[Target]]:
    import aioboto3

    from dynamodel import Connection

    from .case_calls import botocore_config

    connection = Connection(endpoint_url=endpoint, region=REGION, transport="boto3")
    peers.BENCH.bind(connection=connection)
    client = connection.client()  # the raw peer calls the very client dynamodel sync uses
    prepare(client)
    cpu: dict[tuple[str, str], list[float]] = {}
    latency: dict[tuple[str, str], list[float]] = {}
    with asyncio.Runner() as runner:
        manager = aioboto3.Session().client(
            "dynamodb", endpoint_url=endpoint, region_name=REGION, config=botocore_config()
        )
        aclient = runner.run(manager.__aenter__())
        peer_list = _sync_peers(client) + _async_peers(aclient)
        for peer in peer_list:  # untimed warm-up: connections, the models' first reads
            for op in OPS:
                _run_op(peer, op, 1 if peer.share > 1 else 2, runner)
        with settled_heap():
            for round_number in range(settings.call_rounds):
                for peer in rotate(peer_list, round_number):
                    for op in OPS:
                        calls = max(1, settings.call_count // peer.share)
                        per_call, latencies = _run_op(peer, op, calls, runner)
                        cpu.setdefault((op, peer.name), []).append(per_call)
                        latency.setdefault((op, peer.name), []).extend(latencies)
                log(f"  ({CASE}) round {round_number + 1}/{settings.call_rounds}")
        work = _server_work(client, aclient, runner)
        runner.run(manager.__aexit__(None, None, None))
        runner.run(connection.aclose())
    connection.close()
    peers.BENCH.unbind()

    rows: list[Row] = []
    for op in OPS:
        for peer in peer_list:
            key = (op, peer.name)
            done, _ = work[key]
            extra = {"cpu_us": median(cpu[key]) * 1e6, "scanned": float(done.scanned)}
            extra["requests"] = float(done.requests)
            if done.capacity is not None:
                extra["capacity"] = done.capacity
            rows.append(
                Row(
                    CASE,
                    op,
                    peer.name,
                    median(latency[key]) * 1e3,
                    "ms latency",
                    note=f"{extra['cpu_us']:.0f} µs CPU/call; {done.text()}",
                    extra=extra,
                )
            )
    for row in rows:
        base = find(rows, row.op, BASELINE[row.peer])
        if base is not None and base.value and row.value is not None:
            row.ratio = row.value / base.value
    return rows, targets(rows)


def targets(rows: list[Row]) -> list[Target]:
    """Issue 22: dynamodel sync's reads evaluate about what they return, and cost about what
    the raw client's request with the same Limit costs."""
    out = []
    for op, n in OPS.items():
        ours = find(rows, op, SYNC)
        out.append(
            Target(
                CASE,
                f"{op}: ScannedCount of dynamodel sync's requests",
                ours.extra.get("scanned") if ours is not None else None,
                SCANNED_MAX[op],
                "max",
                unit=" items",
            )
        )
        out.append(
            Target(
                CASE,
                f"{op}: dynamodel sync latency / raw boto3 with Limit={n}",
                ours.ratio if ours is not None else None,
                LATENCY_MAX,
                "max",
            )
        )
    return out


def main() -> None:  # pragma: no cover - a manual run: python -m benchmarks.case_limits
    import sys

    import boto3

    from .server import ServerProcess, create_table

    quick = "--quick" in sys.argv
    args = ("dynoxide",) if "dynoxide" in sys.argv else ()
    with ServerProcess("benchmarks.server", *args) as server:
        server.apply_env()
        create_table(boto3.client("dynamodb", endpoint_url=server.endpoint_url), peers.TABLE)
        rows, found = run(Settings.make(quick), server.endpoint_url, print)
    for row in rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        print(f"{row.op:9} {row.peer:40} {row.value:8.3f} {row.unit}  {ratio:>6}  {row.note}")
    for target in found:
        print(f"target: {target.text}: {target.value} (<= {target.limit}) {target.status}")


if __name__ == "__main__":  # pragma: no cover
    main()
