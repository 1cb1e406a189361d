"""Command line, orchestration and the target check of the benchmark suite."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import report
from .harness import Row, Settings, Target, machine
from .peers import installed_version
from .server import ROOT, ServerProcess, ServerUnavailable, create_table, dynoxide_version

ALL_CASES = ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l")
#: the cases that run against the shared local server, in this order, and their modules
SERVER_CASE_MODULES = {
    "b": "case_calls",
    "h": "case_transport",
    "c": "case_batch",
    "d": "case_sharded",
    "g": "case_cache",
    "i": "case_limits",
    "j": "case_cold",
    "k": "case_fastapi",
    "l": "case_distributed",
}
SERVER_CASES = tuple(SERVER_CASE_MODULES)
DEFAULT_OUT = ROOT / "docs" / "benchmarks.md"
#: the local DynamoDB servers ``--server`` offers (AWS's DynamoDB Local is not one of them: it
#: is distributed under AWS's own licence, not an open-source one)
SERVER_KINDS = ("moto", "dynoxide")
VERSIONS = (
    "dynamodel",
    "boto3",
    "botocore",
    "aioboto3",
    "pydantic",
    "moto",
    "pynamodb",
    "pydynox",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark dynamodel against its peers and check the speed targets "
        "(every target is listed on docs/benchmarks.md).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes (seconds): proves the suite runs; targets are reported, not enforced, "
        "and nothing is written unless --out is given",
    )
    parser.add_argument(
        "--cases",
        default=",".join(ALL_CASES),
        help=f"comma-separated cases to run (default: all of {','.join(ALL_CASES)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"markdown page to write (default: {DEFAULT_OUT.relative_to(ROOT)}, full runs only)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--server",
        choices=SERVER_KINDS,
        default="moto",
        help="the local DynamoDB every server case talks to: moto (default; a Python server "
        "that applies one request at a time) or dynoxide (a native binary, the dynoxide-rs "
        "crate, on SQLite in memory: it serves requests concurrently, but runs their database "
        "work one at a time behind one lock; built with cargo once, see tests/backends.py)",
    )
    return parser.parse_args(argv)


def _versions() -> dict[str, str]:
    import platform

    out = {"python": platform.python_version()}
    for name in VERSIONS:
        out[name] = installed_version(name) or "not installed"
    return out


def _settings_text(s: Settings) -> str:
    return (
        f"(a) {s.codec_items:,} items x {s.codec_rounds} rounds; "
        f"(b) {s.call_count} gets, {s.call_count} puts and {max(1, s.call_count // 2)} queries "
        f"per peer x {s.call_rounds} rounds; "
        f"(c) {s.batch_items:,} items x {s.batch_rounds} round(s) on the server, "
        f"x {s.batch_stub_rounds} on the batch stub; "
        f"(d) {s.shard_items:,} items in each partition x {s.shard_rounds} rounds; "
        f"(e) {s.stream_items:,} items; (f) {s.import_runs} interpreters per peer; "
        f"(g) {s.call_count} gets and {s.call_count} queries per peer x {s.call_rounds} rounds; "
        f"(h) {s.call_count} gets, {s.call_count} puts and {max(1, s.call_count // 2)} queries "
        f"per peer x {s.call_rounds} rounds; "
        f"(i) {s.call_count} calls of each read per peer x {s.call_rounds} rounds; "
        f"(j) {s.cold_runs} processes per peer; "
        f"(k) {s.fastapi_requests} requests per app x {s.fastapi_rounds} rounds; "
        f"(l) {s.dist_items:,} items ({s.dist_items_moto:,} on moto), {s.dist_segments} "
        "segments, with "
        f"{', '.join(str(w) for w in s.dist_workers)} worker processes"
    )


def _server_cases(
    settings: Settings,
    cases: list[str],
    rows: list[Row],
    targets: list[Target],
    log: Callable[[str], None],
    server_kind: str = "moto",
) -> str:
    """Run the cases that need the local server (one server process for all of them)."""
    import boto3

    from .peers import TABLE

    args = (server_kind,) if server_kind != "moto" else ()
    with ServerProcess("benchmarks.server", *args) as server:
        server.apply_env()
        endpoint = server.endpoint_url
        client = boto3.client("dynamodb", endpoint_url=endpoint)
        create_table(client, TABLE)
        client.close()
        for case in SERVER_CASES:
            if case not in cases:
                continue
            log(report.CASES[case])
            module = importlib.import_module(f".{SERVER_CASE_MODULES[case]}", __package__)
            if hasattr(module, "SERVER_CPU"):  # (l) reads the server's CPU around each run
                module.SERVER_CPU = server.cpu_seconds
                module.SERVER_WAIT = server.run_queue_seconds
                module.SERVER_KIND = server_kind
            r, t = module.run(settings, endpoint, log)
            for found in (*r, *t):
                found.case = case  # the case letter is the suite's (a module may say another)
            if server_kind == "dynoxide":  # the cases' notes name no server; say which
                for target in t:
                    target.note = target.note.replace(
                        "server applies one request at a time",
                        "dynoxide applies one request at a time (its SQLite database is behind "
                        "one lock)",
                    )
            rows += r
            targets += t
        cpu = server.cpu_seconds()
    what = (
        f"dynoxide {dynoxide_version()} (the dynoxide-rs crate, MIT OR Apache-2.0: a native "
        "DynamoDB emulator on SQLite, in memory, which accepts requests concurrently but runs "
        "their database work one at a time behind one lock) in a separate process "
        "(`python -m benchmarks.server dynoxide`)"
        if server_kind == "dynoxide"
        else "dynamodel.local.LocalDynamoDB (moto server, which applies one request at a time) "
        "in a separate process (`python -m benchmarks.server`)"
    )
    return (
        what
        + ", shared by every peer of cases "
        + ", ".join(f"({c})" for c in sorted(SERVER_CASES) if c in cases)
        + (f"; it used {cpu:.0f} s of CPU" if cpu is not None else "")
        + ". Case (e) uses a Query-only stub server in another process "
        "(`benchmarks/stub_server.py`)"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(ALL_CASES))
    if unknown:
        print(f"unknown cases {unknown}; choose from {', '.join(ALL_CASES)}", file=sys.stderr)
        return 2
    settings = Settings.make(args.quick)
    started = time.perf_counter()
    logging.getLogger("pydynox").setLevel(logging.ERROR)  # its slow-query warnings

    def log(message: str) -> None:
        elapsed = time.perf_counter() - started
        print(f"[{elapsed:5.0f}s] {message}", file=sys.stderr, flush=True)

    rows: list[Row] = []
    targets: list[Target] = []
    server_text = "not used"
    if "a" in cases:
        from . import case_codec

        log("(a) codec CPU per item")
        r, t = case_codec.run(settings, log)
        rows += r
        targets += t
    if set(SERVER_CASES) & set(cases):
        try:
            server_text = _server_cases(settings, cases, rows, targets, log, args.server)
        except ServerUnavailable as error:
            print(error, file=sys.stderr)
            return 2
    if "e" in cases:
        from . import case_stream

        log("(e) streaming peak memory")
        r, t = case_stream.run(settings, log)
        rows += r
        targets += t
    if "f" in cases:
        from . import case_import

        log("(f) import time")
        r, t = case_import.run(settings, log)
        rows += r
        targets += t

    duration = time.perf_counter() - started
    print(report.console(rows, targets, cases))
    missed = [t for t in targets if t.holds is False]
    print(
        f"\n{len(targets) - len(missed)} of {len(targets)} targets hold or are not measured; "
        f"{len(missed)} missed. Took {duration:.0f} s."
    )

    out = args.out if args.out is not None else (None if args.quick else DEFAULT_OUT)
    if out is not None and not args.no_write:
        command = "python -m benchmarks" + (" " + " ".join(argv) if argv else "")
        if argv is None and len(sys.argv) > 1:
            command = "python -m benchmarks " + " ".join(sys.argv[1:])
        info = {
            **machine(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command,
            "duration": f"{duration / 60:.1f} min",
            "server": server_text,
        }
        from . import case_cold, charts

        drawn = charts.write(out.parent / "img", rows, targets, case_cold.OP)
        page = report.markdown(
            rows,
            targets,
            cases,
            info,
            _versions(),
            _settings_text(settings),
            report.existing_intro(out),
            drawn,
        )
        report.write(out, page)
        print(f"wrote {out}")

    if args.quick:
        print("quick mode: tiny sizes, figures not meaningful; targets not enforced")
        return 0
    return 1 if missed else 0
