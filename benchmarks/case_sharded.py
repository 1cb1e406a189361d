"""(d) Sharded query: reading one logical partition spread over N=16 shards vs one partition.

The same ``shard_items`` items (the 10-attribute benchmark item) are written once into one
unsharded partition and once into a partition of a model declared with ``Meta.shards =
Shards(16)`` (about ``shard_items / 16`` items per shard), both with `dynamodel.batch_write`.
Then ``Model.query(...).all()`` (sync) and ``.aall()`` (async) read the whole logical partition
into models: one paginated Query for the single partition, 16 concurrent Queries merged back
into sort-key order for the sharded one. Every read must return every item, and the sharded
read must return them in the same order as the single one. Figures are the median wall time of
a full read over interleaved rounds (the order of the four peers rotates every round), after an
untimed warm-up read of each that also warms the shard-count check (one consistent GetItem of
the shard record per model and process) and counts the Query requests a read sends. The rows
also give the client CPU per read (``time.process_time()``, every thread of this process).

The local server applies one request at a time, so the 16 shard queries cannot overlap on the
server: the ratio measures the fan-out's overhead (more requests, the merge), not the parallel
speed-up DynamoDB gives, where each shard is read concurrently.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dynamodel import Model, Shards

from . import peers
from .harness import Row, Settings, Target, find, median, rotate, settled_heap
from .server import REGION

CASE = "d"
SHARDS = 16
TITLE = f"(d) Sharded query: N={SHARDS} shards vs one partition of the same size"
RATIO_MEANING = (
    "ratio = sharded read / the same API's single-partition read (wall time; lower is better)"
)
SYNC_SINGLE = "dynamodel sync, one partition"
SYNC_SHARDED = f"dynamodel sync, {SHARDS} shards"
ASYNC_SINGLE = "dynamodel async, one partition"
ASYNC_SHARDED = f"dynamodel async, {SHARDS} shards"
#: the single-partition read each read is compared with
BASELINE = {
    SYNC_SINGLE: SYNC_SINGLE,
    SYNC_SHARDED: SYNC_SINGLE,
    ASYNC_SINGLE: ASYNC_SINGLE,
    ASYNC_SHARDED: ASYNC_SINGLE,
}
#: the sync read that sends the same requests as an async one
SYNC_OF = {ASYNC_SINGLE: SYNC_SINGLE, ASYNC_SHARDED: SYNC_SHARDED}
OP = "read whole partition"
#: "well under 16x" (issue 9): the fan-out may cost overhead, never anything near N times
LIMIT = 4.0


class _ShardRow(Model):
    """The benchmark item's fields, with the partition they belong to (abstract: no Meta)."""

    group: str
    user_id: str
    name: str
    age: int
    balance: Decimal
    created: dt.datetime
    active: bool
    tags: set[str]
    scores: list[int]
    address: peers.Address
    nickname: str | None = None


class SingleRow(_ShardRow):
    """The items in one ordinary partition."""

    class Meta:
        table = peers.BENCH
        entity = "ShardBenchSingle"
        pk = "SHARDQ#{group}"
        sk = "ITEM#{user_id}"


class ShardedRow(_ShardRow):
    """The same items in a partition sharded 16 ways (random shards)."""

    class Meta:
        table = peers.BENCH
        entity = "ShardBenchSharded"
        pk = "SHARDQ#{group}"
        sk = "ITEM#{user_id}"
        shards = Shards(SHARDS)


@dataclass
class Peer:
    name: str
    read: Callable[[], list[Any]]  # one full read of the logical partition
    is_async: bool = False
    requests: int | None = None  # Query requests one read sends (counted in the warm-up)
    shards: int = 1  # how many shards the items read were on


def write_partitions(count: int, group: str) -> None:
    """``count`` items into each model's partition ``group`` (one batch write each)."""
    from dynamodel import batch_write

    for model in (SingleRow, ShardedRow):
        with batch_write() as batch:
            for i in range(count):
                batch.put(model(group=group, **peers.values(i)))
        if len(batch.result.written) != count:
            raise RuntimeError(f"{model.__name__}: wrote {len(batch.result.written)} of {count}")


def _peers(group: str, runner: asyncio.Runner) -> list[Peer]:
    def aread(model: type[_ShardRow]) -> Callable[[], list[Any]]:
        return lambda: runner.run(model.query(group=group).aall())

    return [
        Peer(SYNC_SINGLE, lambda: SingleRow.query(group=group).all()),
        Peer(SYNC_SHARDED, lambda: ShardedRow.query(group=group).all()),
        Peer(ASYNC_SINGLE, aread(SingleRow), is_async=True),
        Peer(ASYNC_SHARDED, aread(ShardedRow), is_async=True),
    ]


def _counting_queries(
    connection: Any, read: Callable[[], list[Any]]
) -> tuple[list[Any], int | None]:
    """One read, and how many Query requests it sent (None when the client has no boto3
    event hooks)."""
    events = getattr(getattr(connection.client(), "meta", None), "events", None)
    if events is None:
        return read(), None
    calls: list[int] = []

    def count(**_: Any) -> None:
        calls.append(1)

    events.register("before-call.dynamodb.Query", count)
    try:
        found = read()
    finally:
        events.unregister("before-call.dynamodb.Query", count)
    return found, len(calls)


def _warm_up(peer_list: list[Peer], count: int, connection: Any) -> None:
    """One untimed read of each (connections, thread pool, the shard-count check) that also
    counts its requests, checks that it returns every item, and that the sharded reads
    return the single read's order."""
    expected: list[str] | None = None
    for peer in peer_list:
        if peer.is_async:
            found = peer.read()
        else:
            found, peer.requests = _counting_queries(connection, peer.read)
        ids = [row.user_id for row in found]
        peer.shards = len({row.shard_number() for row in found})
        if len(ids) != count:
            raise RuntimeError(f"{peer.name} read {len(ids)} of {count} items")
        if expected is None:
            expected = ids
        elif ids != expected:
            raise RuntimeError(f"{peer.name} returned the items in another order")
    for peer in peer_list:  # the async reads send the same requests as the sync ones
        if peer.is_async:
            peer.requests = next(p.requests for p in peer_list if p.name == SYNC_OF[peer.name])


def run(
    settings: Settings, endpoint: str, log: Callable[[str], None]
) -> tuple[list[Row], list[Target]]:
    """Write both partitions on the server at ``endpoint`` (its ``bench`` table must exist),
    then time full reads of each."""
    from dynamodel import Connection

    count = settings.shard_items
    group = "g1"
    connection = Connection(endpoint_url=endpoint, region=REGION, transport="boto3")
    peers.BENCH.bind(connection=connection)
    try:
        start = time.perf_counter()
        write_partitions(count, group)
        log(f"  ({CASE}) wrote 2 x {count:,} items in {time.perf_counter() - start:.0f} s")
        wall: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        with asyncio.Runner() as runner:
            peer_list = _peers(group, runner)
            _warm_up(peer_list, count, connection)
            with settled_heap():
                for round_number in range(settings.shard_rounds):
                    for peer in rotate(peer_list, round_number):
                        start, start_cpu = time.perf_counter(), time.process_time()
                        found = len(peer.read())
                        wall.setdefault(peer.name, []).append(time.perf_counter() - start)
                        cpu.setdefault(peer.name, []).append(time.process_time() - start_cpu)
                        if found != count:
                            raise RuntimeError(f"{peer.name} read {found} of {count} items")
                    log(f"  ({CASE}) round {round_number + 1}/{settings.shard_rounds}")
            runner.run(connection.aclose())
    finally:
        connection.close()
        peers.BENCH.unbind()
    return rows_of(peer_list, wall, cpu, count), targets_of(wall)


def rows_of(
    peer_list: list[Peer], wall: dict[str, list[float]], cpu: dict[str, list[float]], count: int
) -> list[Row]:
    """Median wall time per read (the figure), items/s, client CPU and requests per read."""
    rows: list[Row] = []
    for peer in peer_list:
        seconds = median(wall[peer.name])
        row = Row(
            CASE,
            OP,
            peer.name,
            seconds * 1e3,
            "ms/read",
            extra={"items_per_s": count / seconds, "cpu_ms": median(cpu[peer.name]) * 1e3},
        )
        notes = [f"client CPU {row.extra['cpu_ms']:,.0f} ms/read"]
        if peer.requests is not None:
            notes.append(f"{peer.requests} Query request{'s' if peer.requests != 1 else ''}")
        if peer.shards > 1:
            notes.append(f"items on {peer.shards} shards")
        row.note = "; ".join(notes)
        rows.append(row)
    for row in rows:
        base = find(rows, OP, BASELINE[row.peer])
        if base is not None and base.value and row.value is not None:
            row.ratio = row.value / base.value
    return rows


def targets_of(seconds: dict[str, list[float]]) -> list[Target]:
    """Sharded / single-partition wall time, sync and async (issue 9: well under 16x)."""
    out = []
    pairs = (("sync", SYNC_SHARDED, SYNC_SINGLE), ("async", ASYNC_SHARDED, ASYNC_SINGLE))
    for api, sharded, single in pairs:
        value = None
        if seconds.get(sharded) and seconds.get(single):
            value = median(seconds[sharded]) / median(seconds[single])
        out.append(
            Target(
                CASE,
                f"{api}: sharded query N={SHARDS} / single partition (wall time)",
                value,
                LIMIT,
                "max",
                "server applies one request at a time: fan-out overhead, not speed-up",
            )
        )
    return out
