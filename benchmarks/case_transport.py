"""(h) The transport alone: client CPU and latency per low-level GetItem, PutItem and Query.

Each peer makes the same calls with its own low-level client against one local server, without
models: boto3's client and the lean client send AttributeValue dicts and get the response dict
back; pydynox's client takes and returns plain Python values (its Rust core converts them);
aioboto3 and the async lean client are measured the same way. A get reads one of 10 items, a
put writes one of 50 prepared items (under the peer's own keys), a query reads a 10-item
partition. Client CPU is ``time.process_time()`` of this process (the server runs in another
one) divided by the calls; latency is each call's wall time. Rounds interleave the peers
(rotated order); figures are the median round's CPU per call and the median latency.

Targets (issue 11): lean CPU per call <= 0.5x boto3's, lean latency <= pydynox's.

Run alone: ``python -m benchmarks.case_transport [--quick]`` (starts its own moto server).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import peers
from .harness import Row, Settings, Target, find, median, rotate, settled_heap, timed_calls
from .server import REGION

CASE = "h"
OPS = ("get", "put", "query")
BOTO3 = "boto3 client"
LEAN = "lean client"
PYDYNOX = "pydynox client"
AIOBOTO3 = "aioboto3 client"
LEAN_ASYNC = "lean async client"
PREPARED = 10
POOL = 50
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass
class Peer:
    name: str
    ops: dict[str, Callable[[int], Any]]
    is_async: bool = False


def _config() -> Any:
    from .case_calls import botocore_config

    return botocore_config()


def prepare(endpoint: str, tag: str) -> None:
    """The shared data every peer reads: 10 profiles and a 10-item partition."""
    import boto3

    client = boto3.session.Session().client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    for i in range(PREPARED):
        client.put_item(**peers.floor_put_params(peers.plain_make(i, tag)))
        client.put_item(**peers.floor_put_params(peers.plain_make(i, tag, stream=tag)))
    client.close()


def _lowlevel_ops(client: Any, tag: str, own: str) -> dict[str, Callable[[int], Any]]:
    keys = [peers.floor_key(f"{tag}{i:07d}") for i in range(PREPARED)]
    items = [peers.floor_put_params(peers.plain_make(PREPARED + i, own)) for i in range(POOL)]
    query = peers.floor_query_params(tag)
    return {
        "get": lambda i: client.get_item(TableName=peers.TABLE, Key=keys[i % PREPARED])["Item"],
        "put": lambda i: client.put_item(**items[i % POOL]),
        "query": lambda i: client.query(**query)["Items"],
    }


def _boto3(endpoint: str, tag: str) -> tuple[Peer, Any]:
    import boto3

    client = boto3.session.Session().client(
        "dynamodb", endpoint_url=endpoint, region_name=REGION, config=_config(), **CREDENTIALS
    )
    return Peer(BOTO3, _lowlevel_ops(client, tag, "bo")), client


def _lean(endpoint: str, tag: str) -> tuple[Peer, Any]:
    from dynamodel.io.lean import create_client

    client = create_client(endpoint, REGION, config=_config(), **CREDENTIALS)
    return Peer(LEAN, _lowlevel_ops(client, tag, "le")), client


def _pydynox(endpoint: str, tag: str) -> Peer | None:
    try:
        from pydynox import DynamoDBClient
    except ImportError:
        return None
    client = DynamoDBClient(
        endpoint_url=endpoint, region=REGION, access_key="testing", secret_key="testing"
    )
    keys = [{"pk": f"USER#{tag}{i:07d}", "sk": "PROFILE"} for i in range(PREPARED)]
    items = [peers.plain_item(peers.plain_make(PREPARED + i, "px")) for i in range(POOL)]
    values = {":pk": f"STREAM#{tag}"}
    names = {"#pk": peers.PK}

    def query(i: int) -> Any:
        return list(
            client.sync_query(
                peers.TABLE,
                key_condition_expression="#pk = :pk",
                expression_attribute_names=names,
                expression_attribute_values=values,
            )
        )

    return Peer(
        PYDYNOX,
        {
            "get": lambda i: client.sync_get_item(peers.TABLE, keys[i % PREPARED]),
            "put": lambda i: client.sync_put_item(peers.TABLE, items[i % POOL]),
            "query": query,
        },
    )


def _async_ops(client: Any, tag: str, own: str) -> dict[str, Callable[[int], Any]]:
    keys = [peers.floor_key(f"{tag}{i:07d}") for i in range(PREPARED)]
    items = [peers.floor_put_params(peers.plain_make(PREPARED + i, own)) for i in range(POOL)]
    query = peers.floor_query_params(tag)

    async def get(i: int) -> Any:
        return (await client.get_item(TableName=peers.TABLE, Key=keys[i % PREPARED]))["Item"]

    async def put(i: int) -> Any:
        return await client.put_item(**items[i % POOL])

    async def run_query(i: int) -> Any:
        return (await client.query(**query))["Items"]

    return {"get": get, "put": put, "query": run_query}


def _aioboto3(endpoint: str, tag: str, runner: asyncio.Runner) -> tuple[Peer | None, Any]:
    try:
        import aioboto3
    except ImportError:
        return None, None
    manager = aioboto3.Session().client(
        "dynamodb", endpoint_url=endpoint, region_name=REGION, config=_config(), **CREDENTIALS
    )
    client = runner.run(manager.__aenter__())
    return Peer(AIOBOTO3, _async_ops(client, tag, "ab"), is_async=True), manager


def _lean_async(endpoint: str, tag: str) -> tuple[Peer, Any]:
    from dynamodel.io.lean import create_async_client

    client = create_async_client(endpoint, REGION, config=_config(), **CREDENTIALS)
    return Peer(LEAN_ASYNC, _async_ops(client, tag, "la"), is_async=True), client


def _run_op(peer: Peer, op: str, count: int, runner: asyncio.Runner) -> tuple[float, list[float]]:
    return timed_calls(peer.ops[op], count, peer.is_async, runner)


def run(
    settings: Settings, endpoint: str, log: Callable[[str], None]
) -> tuple[list[Row], list[Target]]:
    """Measure every peer on the server at ``endpoint`` (its ``bench`` table must exist)."""
    logging.getLogger("pydynox").setLevel(logging.ERROR)
    tag = "tx"
    prepare(endpoint, tag)
    missing: dict[str, str] = {}
    with asyncio.Runner() as runner:
        boto3_peer, boto3_client = _boto3(endpoint, tag)
        lean_peer, lean_client = _lean(endpoint, tag)
        peer_list = [boto3_peer, lean_peer]
        pydynox_peer = _pydynox(endpoint, tag)
        if pydynox_peer is None:
            missing[PYDYNOX] = "not installed"
        else:
            peer_list.append(pydynox_peer)
        aioboto3_peer, manager = _aioboto3(endpoint, tag, runner)
        if aioboto3_peer is None:
            missing[AIOBOTO3] = "not installed"
        else:
            peer_list.append(aioboto3_peer)
        lean_async_peer, lean_async_client = _lean_async(endpoint, tag)
        peer_list.append(lean_async_peer)

        for peer in peer_list:  # warm-up: connections, caches, lazy imports
            for op in OPS:
                _run_op(peer, op, 3, runner)
        cpu: dict[tuple[str, str], list[float]] = {}
        latency: dict[tuple[str, str], list[float]] = {}
        with settled_heap():
            for round_number in range(settings.call_rounds):
                for peer in rotate(peer_list, round_number):
                    for op in OPS:
                        calls = settings.call_count if op != "query" else settings.call_count // 2
                        per_call, latencies = _run_op(peer, op, max(1, calls), runner)
                        cpu.setdefault((op, peer.name), []).append(per_call)
                        latency.setdefault((op, peer.name), []).extend(latencies)
                log(f"  ({CASE}) round {round_number + 1}/{settings.call_rounds}")
        if manager is not None:
            runner.run(manager.__aexit__(None, None, None))
        runner.run(lean_async_client.aclose())
        boto3_client.close()
        lean_client.close()

    rows: list[Row] = []
    for op in OPS:
        for peer in peer_list:
            rows.append(
                Row(
                    CASE,
                    op,
                    peer.name,
                    median(cpu[(op, peer.name)]) * 1e6,
                    "µs CPU/call",
                    extra={"latency_ms": median(latency[(op, peer.name)]) * 1e3},
                )
            )
        for name, why in missing.items():
            rows.append(Row(CASE, op, name, None, "µs CPU/call", note=why))
    for row in rows:
        base = find(rows, row.op, AIOBOTO3 if row.peer == LEAN_ASYNC else BOTO3)
        if base is not None and base.value and row.value is not None:
            row.ratio = row.value / base.value
        if row.peer == LEAN_ASYNC and row.ratio is not None:
            row.note = "ratio to aioboto3"
    return rows, targets(rows)


def targets(rows: list[Row]) -> list[Target]:
    """Issue 11's targets for each operation."""
    out = []
    for op in OPS:
        lean = find(rows, op, LEAN)
        out.append(
            Target(CASE, f"{op}: lean client CPU / boto3 client", lean and lean.ratio, 0.5, "max")
        )
        other = find(rows, op, PYDYNOX)
        ratio = None
        note = ""
        if lean is not None and other is not None and other.value is not None:
            ratio = lean.extra["latency_ms"] / other.extra["latency_ms"]
        else:
            note = "pydynox not installed"
        out.append(Target(CASE, f"{op}: lean latency / pydynox latency", ratio, 1.0, "max", note))
    return out


def table(rows: list[Row], found: list[Target]) -> str:
    """The rows and targets as plain text."""
    lines = [f"{'op':6} {'peer':18} {'CPU/call':>12} {'ratio':>7} {'latency':>10}  notes"]
    for row in rows:
        value = f"{row.value:,.0f} µs" if row.value is not None else "-"
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        ms = row.extra.get("latency_ms")
        latency = f"{ms:.2f} ms" if ms is not None else "-"
        lines.append(f"{row.op:6} {row.peer:18} {value:>12} {ratio:>7} {latency:>10}  {row.note}")
    lines.append("")
    for t in found:
        value = f"{t.value:.2f}x" if t.value is not None else "-"
        lines.append(f"({t.case}) {t.text}: {value} (required <= {t.limit:g}x): {t.status}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.case_transport")
    parser.add_argument("--quick", action="store_true", help="few calls (about 20 s)")
    parser.add_argument("--calls", type=int, help="calls per op, peer and round")
    parser.add_argument("--rounds", type=int, help="rounds")
    args = parser.parse_args(argv)
    settings = Settings(quick=args.quick, call_count=40, call_rounds=3)
    if not args.quick:
        settings = Settings(quick=False, call_count=200, call_rounds=5)
    settings.call_count = args.calls or settings.call_count
    settings.call_rounds = args.rounds or settings.call_rounds
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:5.0f}s] {message}", file=sys.stderr, flush=True)

    import boto3

    from .server import ServerProcess, create_table

    with ServerProcess() as server:
        server.apply_env()
        client = boto3.client("dynamodb", endpoint_url=server.endpoint_url)
        create_table(client, peers.TABLE)
        rows, found = run(settings, server.endpoint_url, log)
    print(table(rows, found))
    print(
        f"\n{settings.call_count} calls x {settings.call_rounds} rounds; took "
        f"{time.perf_counter() - started:.0f} s"
    )
    return 0 if args.quick or all(t.holds is not False for t in found) else 1


if __name__ == "__main__":
    raise SystemExit(main())
