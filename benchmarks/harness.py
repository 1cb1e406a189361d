"""Measurement helpers, result rows, target checks and the machine description."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

FLOOR = "floor (raw boto3 + hand-written)"


@dataclass
class Settings:
    """How much work each case does (``--quick`` shrinks everything)."""

    quick: bool
    codec_items: int = 3000  # (a) items per round
    codec_rounds: int = 11
    call_count: int = 60  # (b) calls per op per peer per round
    call_rounds: int = 5
    paired_pairs: int = 60  # (b) targets: alternating dynamodel/floor batches of paired_calls
    paired_calls: int = 10
    batch_items: int = 10_000  # (c)
    batch_rounds: int = 1  # moto writes ~1,500 and reads ~500 items/s: one round is ~2 min
    batch_stub_rounds: int = 3  # the stub's rounds take ~50 s each; the 3x target reads them
    # (d) items in each partition (one, and 16 shards): moto answers a Query at about 2 ms per
    # item, so a full read of 3,200 (about one 1 MB page) takes ~7 s and the case ~2 min
    shard_items: int = 3_200
    shard_rounds: int = 3
    stream_items: int = 100_000  # (e)
    import_runs: int = 21  # (f) fresh interpreters per peer
    cold_runs: int = 15  # (j) whole processes per peer
    fastapi_requests: int = 1000  # (k) timed requests per app and round
    fastapi_rounds: int = 8
    dist_items: int = 40_000  # (l) items each distributed backfill migrates
    dist_items_moto: int = 400  # (l) on moto (its segmented Scan reads the whole table per page)
    dist_workers: tuple[int, ...] = (1, 2, 4, 8)  # (l) worker processes, one run each
    dist_segments: int = 64  # (l) segments of each job

    @classmethod
    def make(cls, quick: bool) -> Settings:
        if not quick:
            return cls(quick=False)
        return cls(
            quick=True,
            codec_items=200,
            codec_rounds=3,
            call_count=3,
            call_rounds=1,
            paired_pairs=2,
            paired_calls=2,
            batch_items=50,
            batch_rounds=1,
            batch_stub_rounds=1,
            shard_items=160,
            shard_rounds=2,
            stream_items=500,
            import_runs=1,
            cold_runs=1,
            fastapi_requests=100,
            fastapi_rounds=1,
            dist_items=1000,
            dist_items_moto=100,
            dist_workers=(1, 2),
            dist_segments=16,
        )


@dataclass
class Row:
    """One figure of the table."""

    case: str
    op: str
    peer: str
    value: float | None  # None: not measured (see note)
    unit: str
    ratio: float | None = None  # value / floor's value in the same run
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)  # secondary figures (latency...)


@dataclass
class Target:
    """A speed target, checked on this run's figures."""

    case: str
    text: str
    value: float | None
    limit: float
    kind: str  # "max": value <= limit; "min": value >= limit
    note: str = ""
    unit: str = "x"  # how value and limit print: a ratio ("x") or e.g. " ms"

    @property
    def holds(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.limit if self.kind == "max" else self.value >= self.limit

    @property
    def status(self) -> str:
        holds = self.holds
        return "not measured" if holds is None else ("holds" if holds else "MISSED")


@contextmanager
def settled_heap() -> Iterator[None]:
    """Collect garbage and freeze what exists (fixtures: thousands of models) while timing.

    Otherwise a full collection over every fixture lands in whichever peer runs first.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def rotate(peers: Sequence[Any], round_number: int) -> list[Any]:
    """The peers in a different order each round (interleaving spreads drift over all)."""
    if not peers:
        return []
    shift = round_number % len(peers)
    ordered = list(peers[shift:]) + list(peers[:shift])
    return ordered if round_number % 2 == 0 else ordered[::-1]


def cpu_per_call(fn: Callable[[], Any], count: int) -> float:
    """Client-process CPU seconds per call (all threads of this process)."""
    start = time.process_time()
    for _ in range(count):
        fn()
    return (time.process_time() - start) / count


def timed_calls(
    fn: Callable[[int], Any], count: int, is_async: bool, runner: Any
) -> tuple[float, list[float]]:
    """Call ``fn(0)`` ... ``fn(count - 1)`` (awaited on the ``asyncio.Runner`` when
    ``is_async``): (client CPU seconds per call, each call's wall-time latency)."""
    start = time.process_time()
    latencies = runner.run(_awaited_latencies(fn, count)) if is_async else _latencies(fn, count)
    return (time.process_time() - start) / count, latencies


def _latencies(fn: Callable[[int], Any], count: int) -> list[float]:
    latencies = []
    clock = time.perf_counter
    for i in range(count):
        t0 = clock()
        fn(i)
        latencies.append(clock() - t0)
    return latencies


async def _awaited_latencies(fn: Callable[[int], Awaitable[Any]], count: int) -> list[float]:
    latencies = []
    clock = time.perf_counter
    for i in range(count):
        t0 = clock()
        await fn(i)
        latencies.append(clock() - t0)
    return latencies


def with_ratios(rows: list[Row], floor_of: Callable[[Row], Row | None]) -> list[Row]:
    """Fill ``ratio`` of each row from the floor row ``floor_of`` picks for it."""
    for row in rows:
        base = floor_of(row)
        if base is not None and base.value and row.value is not None:
            row.ratio = row.value / base.value
    return rows


def find(rows: Sequence[Row], op: str, peer: str) -> Row | None:
    for row in rows:
        if row.op == op and row.peer == peer:
            return row
    return None


def ratio_between(rows: Sequence[Row], op: str, slow: str, fast: str) -> float | None:
    """How many times ``fast``'s value is below ``slow``'s (None if either is missing)."""
    a, b = find(rows, op, slow), find(rows, op, fast)
    if a is None or b is None or a.value is None or not b.value:
        return None
    return a.value / b.value


def machine() -> dict[str, str]:
    """nproc, CPU model, memory, OS and Python."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = "unknown"
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    except OSError:
        pass
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return {
        "load": load,
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
    }
