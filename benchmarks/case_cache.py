"""(g) Local read cache: latency and client CPU of a cache hit against a server round trip.

dynamodel's ``DUser.get`` (one item) and ``DStreamUser.query`` (a 10-item partition into
models) through two connections on the same local server: one without a cache (every call is a
request) and one with a `dynamodel.io.cache.LocalCache` (one untimed call fills it, then every
timed call is a hit: no request, the cached item is copied and parsed into models). Sync and
async. Per round and peer, ``call_count`` calls of each operation run back to back; latency is
each call's wall time (median over all rounds), CPU is ``time.process_time()`` per call (median
round). Rounds interleave the peers. The ratio is each row against the same API without cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import peers
from .harness import Row, Settings, Target, find, median, rotate, settled_heap, timed_calls
from .server import REGION

CASE = "g"
OPS = ("get", "query")
PREPARED = 10  # items read by get, and the size of the queried partition
SYNC = "dynamodel sync, no cache"
SYNC_CACHED = "dynamodel sync + LocalCache (hit)"
ASYNC = "dynamodel async, no cache"
ASYNC_CACHED = "dynamodel async + LocalCache (hit)"
BASELINE = {SYNC_CACHED: SYNC, ASYNC_CACHED: ASYNC, SYNC: SYNC, ASYNC: ASYNC}

#: how a report should present the case (for report.CASES / RATIO_MEANING)
TITLE = "(g) Local read cache: a hit against a request to the local server"
RATIO_MEANING = "ratio = peer / the same API without cache (lower is better)"


@dataclass
class Peer:
    name: str
    connection: Any
    ops: dict[str, Callable[[int], Any]]
    is_async: bool = False


def _ops(tag: str, is_async: bool) -> dict[str, Callable[[int], Any]]:
    user, stream = peers.DUser, peers.DStreamUser
    if is_async:
        return {
            "get": lambda i: user.aget(user_id=f"{tag}{i % PREPARED:07d}"),
            "query": lambda i: stream.query(stream_id=tag).aall(),
        }
    return {
        "get": lambda i: user.get(user_id=f"{tag}{i % PREPARED:07d}"),
        "query": lambda i: stream.query(stream_id=tag).all(),
    }


def _prepare(tag: str) -> None:
    for i in range(PREPARED):
        peers.dynamodel_make(i, tag).save()
        peers.dynamodel_make(i, tag, stream=tag).save()


def _run_op(peer: Peer, op: str, count: int, runner: asyncio.Runner) -> tuple[float, list[float]]:
    peers.BENCH.bind(connection=peer.connection)
    return timed_calls(peer.ops[op], count, peer.is_async, runner)


def run(
    settings: Settings, endpoint: str, log: Callable[[str], None]
) -> tuple[list[Row], list[Target]]:
    from dynamodel import Connection
    from dynamodel.io.cache import LocalCache

    plain = Connection(endpoint_url=endpoint, region=REGION)
    cache = LocalCache(item_ttl=3600, query_ttl=3600)
    cached = Connection(endpoint_url=endpoint, region=REGION, cache=cache)
    peers.BENCH.bind(connection=plain)
    _prepare("cg")
    peer_list = [
        Peer(SYNC, plain, _ops("cg", False)),
        Peer(SYNC_CACHED, cached, _ops("cg", False)),
        Peer(ASYNC, plain, _ops("cg", True), is_async=True),
        Peer(ASYNC_CACHED, cached, _ops("cg", True), is_async=True),
    ]
    cpu: dict[tuple[str, str], list[float]] = {}
    latency: dict[tuple[str, str], list[float]] = {}
    with asyncio.Runner() as runner:
        # untimed warm-up: connections, and every key and the query into the cache
        for peer in peer_list:
            for op in OPS:
                _run_op(peer, op, PREPARED, runner)
        with settled_heap():
            for round_number in range(settings.call_rounds):
                for peer in rotate(peer_list, round_number):
                    for op in OPS:
                        per_call, latencies = _run_op(peer, op, settings.call_count, runner)
                        cpu.setdefault((op, peer.name), []).append(per_call)
                        latency.setdefault((op, peer.name), []).extend(latencies)
                log(f"  ({CASE}) round {round_number + 1}/{settings.call_rounds}")
        for connection in (plain, cached):
            runner.run(connection.aclose())
            connection.close()
    peers.BENCH.unbind()
    misses = cache.stats.item_misses + cache.stats.query_misses
    rows: list[Row] = []
    for op in OPS:
        for peer in peer_list:
            key = (op, peer.name)
            rows.append(
                Row(
                    CASE,
                    op,
                    peer.name,
                    median(latency[key]) * 1e3,
                    "ms latency",
                    extra={"cpu_us": median(cpu[key]) * 1e6},
                )
            )
    for row in rows:
        base = find(rows, row.op, BASELINE[row.peer])
        if base is not None and base.value and row.value is not None:
            row.ratio = row.value / base.value
        row.note = f"{row.extra['cpu_us']:.0f} µs CPU/call"
        if row.peer in (SYNC_CACHED, ASYNC_CACHED):
            row.note += f"; {misses} misses in all (the warm-up)"
    return rows, targets(rows)


def targets(rows: list[Row]) -> list[Target]:
    """A hit must take a small fraction of a request's time (generous: noise-proof)."""
    out = []
    for op in OPS:
        hit = find(rows, op, SYNC_CACHED)
        out.append(
            Target(
                CASE,
                f"{op}: sync cache hit latency / request latency",
                hit.ratio if hit is not None else None,
                0.25,
                "max",
            )
        )
    return out


def main() -> None:  # pragma: no cover - a manual run: python -m benchmarks.case_cache
    import sys

    from .server import ServerProcess, create_table

    quick = "--quick" in sys.argv
    with ServerProcess() as server:
        server.apply_env()
        import boto3

        create_table(boto3.client("dynamodb", endpoint_url=server.endpoint_url), peers.TABLE)
        rows, found = run(Settings.make(quick), server.endpoint_url, print)
    for row in rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        print(f"{row.op:6} {row.peer:40} {row.value:8.3f} {row.unit}  {ratio:>6}  {row.note}")
    for target in found:
        print(f"target: {target.text}: {target.value} (<= {target.limit}) {target.status}")


if __name__ == "__main__":  # pragma: no cover
    main()
