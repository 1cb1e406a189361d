"""The benchmark command works: ``python -m benchmarks --quick`` runs every case with tiny
sizes, prints the table and writes the page, on moto and (where its binary is built) on
dynoxide. Speed targets are not asserted here (machines are noisy); the full
``python -m benchmarks`` run checks them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from backends import DYNOXIDE_VERSION, BackendUnavailable, dynoxide_binary

ROOT = Path(__file__).resolve().parent.parent
CASES = ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l")
FIGURE = r"[\d,]+(\.\d+)?"


def _measured(out: str, op: str, peer: str, unit: str) -> bool:
    """Whether the console table has a figure (not "-") for this operation and peer."""
    return (
        re.search(rf"^{re.escape(op)}\s+{re.escape(peer)}\s+{FIGURE} {unit}", out, re.M) is not None
    )


def _target(out: str, text: str) -> re.Match[str] | None:
    """The target's line when it has a value this run."""
    return re.search(rf"^{re.escape(text)}\s+(\d+\.\d\d)x\s", out, re.M)


def _dynoxide_missing() -> str | None:
    """Why the dynoxide run cannot happen here, or None (this test never builds it)."""
    try:
        dynoxide_binary(build=False)
    except BackendUnavailable as error:
        return f"{error} (python tests/backends.py build-dynoxide builds it)"
    return None


DYNOXIDE_MISSING = _dynoxide_missing()


@pytest.mark.parametrize(
    "server",
    [
        "moto",
        pytest.param(
            "dynoxide",
            marks=pytest.mark.skipif(DYNOXIDE_MISSING is not None, reason=str(DYNOXIDE_MISSING)),
        ),
    ],
)
def test_quick_benchmark_run_prints_the_table_and_writes_the_page(
    tmp_path: Path, server: str
) -> None:
    page = tmp_path / "benchmarks.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--server", server, "--out", str(page)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout
    assert done.returncode == 0, out[-2000:] + done.stderr[-4000:]
    assert "\nTargets\n" in out
    for case in CASES:
        assert f"\n({case}) " in out, case

    # (b): dynamodel through boto3 and through the lean transport, sync and async
    for peer in ("dynamodel sync", "dynamodel async"):
        for transport in ("", " (lean transport)"):
            for op in ("get", "put", "query"):
                assert _measured(out, op, peer + transport, "µs CPU/call"), (op, peer, transport)
    # (c): dynamodel's own batch runs by default and the target compares it with batch_writer()
    for peer in ("dynamodel sync batch", "dynamodel async batch"):
        for op in ("batch write", "batch get"):
            assert _measured(out, op, peer, "items/s"), (op, peer)
    assert _target(out, "(c) batch write: dynamodel async items/s / batch_writer()")
    # (d): both partitions read whole, sync and async; the sharded read fans out to 16 queries
    for peer in ("one partition", "16 shards"):
        for api in ("sync", "async"):
            line = re.search(rf"^read whole partition\s+dynamodel {api}, {peer}\s+.*$", out, re.M)
            assert line is not None and re.search(rf"{FIGURE} ms/read", line.group()), line
            assert ("16 Query requests" if peer == "16 shards" else "1 Query request") in (
                line.group()
            )
    for api in ("sync", "async"):
        assert _target(out, f"(d) {api}: sharded query N=16 / single partition (wall time)")
    # (g) cache hits and (h) transports, with their targets
    assert _measured(out, "get", "dynamodel sync + LocalCache (hit)", "ms latency")
    assert _target(out, "(g) get: sync cache hit latency / request latency")
    for peer in ("boto3 client", "lean client", "aioboto3 client", "lean async client"):
        assert _measured(out, "put", peer, "µs CPU/call"), peer
    assert _target(out, "(h) get: lean client CPU / boto3 client")
    # (i) reads with a limit: dynamodel's first() and limit(10) send Limit = what they return and
    # DynamoDB evaluates that many items of the 300; the raw no-Limit read evaluates them all
    for op, n in (("first()", 1), ("limit(10)", 10)):
        for peer in ("dynamodel sync", "raw boto3 client, Limit=n", "dynamodel async"):
            assert _measured(out, op, peer, "ms latency"), (op, peer)
        line = re.search(rf"^{re.escape(op)}\s+dynamodel sync\s+.*$", out, re.M)
        assert line is not None and f"1 request (Limit {n}), ScannedCount {n}," in line.group()
        whole = re.search(rf"^{re.escape(op)}\s+raw boto3 client, no Limit .*$", out, re.M)
        assert whole is not None and "(Limit none), ScannedCount 300," in whole.group()
    for text in ("(i) first(): ScannedCount of dynamodel sync's requests", "(i) limit(10): "):
        assert re.search(rf"^{re.escape(text)}.*\s+\d+\.\d\d", out, re.M), text

    # (j) cold start: whole processes, wall time (split in the notes) and peak RSS; the lean
    # transport is the default, so the boto3 transport is the row named explicitly
    for peer in ("raw boto3 client", "dynamodel (default transport)", "dynamodel boto3 transport"):
        wall = re.search(rf"^process: start.*?  {re.escape(peer)}\s+{FIGURE} ms .*$", out, re.M)
        assert wall is not None and "first GetItem" in wall.group(), peer
        assert re.search(
            rf"^peak RSS of that process\s+{re.escape(peer)}\s+{FIGURE} MiB", out, re.M
        )
    for text in (
        "(j) cold start: dynamodel lean / raw boto3 client",
        "(j) cold start: dynamodel default / raw boto3 client",
        "(j) peak RSS: dynamodel lean / raw boto3 client",
    ):
        assert _target(out, text), text

    # (l) distributed backfill: worker processes migrate every item; 2 workers against 1
    for peer in ("1 worker", "2 workers"):
        items = "1,000" if server == "dynoxide" else "100"
        line = re.search(rf"^migrate {items} items\s+{peer}\s+{FIGURE} items/s .*$", out, re.M)
        assert line is not None and "s per 1M items" in line.group(), peer
    assert _target(out, "(l) 2 workers >= 0.7x the items/s of 1 worker")

    # (d)'s targets say which server applied the shards' queries one at a time
    sharded = _target(out, "(d) sync: sharded query N=16 / single partition (wall time)")
    assert sharded is not None
    sharded_line = out[sharded.start() :].split("\n", 1)[0]
    assert "applies one request at a time" in sharded_line
    assert ("dynoxide applies" in sharded_line) == (server == "dynoxide")

    text = page.read_text(encoding="utf-8")
    assert "## Targets" in text
    assert f"Command: `python -m benchmarks --quick --server {server}" in text
    server_line = re.search(r"^- Server: (.*)$", text, re.M)
    assert server_line is not None
    if server == "dynoxide":
        assert f"dynoxide {DYNOXIDE_VERSION} " in server_line.group(1)
        assert "`python -m benchmarks.server dynoxide`" in server_line.group(1)
    else:
        assert "moto server" in server_line.group(1)
    assert "s of CPU" in server_line.group(1)
    assert "Not measured" not in text
    for case in CASES:
        assert f"## ({case})" in text, case
        assert f"Rerun: `python -m benchmarks --cases {case}`." in text, case
    assert "| dynamodel" in text
    # the charts are drawn next to the page and embedded in it
    for name in ("benchmarks-targets.svg", "benchmarks-cold-start.svg"):
        assert f"](img/{name})" in text, name
        assert (tmp_path / "img" / name).read_text(encoding="utf-8").startswith("<svg"), name
    assert "applies one request at a time" in text  # (d) says what its ratio means


def test_targets_are_listed_in_case_order() -> None:
    from benchmarks import report
    from benchmarks.harness import Target

    targets = [
        Target("h", "lean", 0.2, 0.5, "max"),
        Target("d", "sharded", 5.0, 4.0, "max", "why"),
        Target("c", "batch", None, 3.0, "min"),
    ]
    text = report.console([], targets, ["c", "d", "h"])
    lines = text.split("\nTargets\n", 1)[1].splitlines()[2:]
    assert [line.split()[0] for line in lines] == ["(c)", "(d)", "(h)"]
    assert re.match(r"\(c\) batch\s+-\s+>= 3x\s+not measured$", lines[0])
    assert re.match(r"\(d\) sharded\s+5\.00x\s+<= 4x\s+MISSED \(why\)$", lines[1])
    assert re.match(r"\(h\) lean\s+0\.20x\s+<= 0\.5x\s+holds$", lines[2])
    assert "issue" not in text.lower() and "#" not in text  # the page speaks to users


def test_only_moto_and_dynoxide_are_offered() -> None:
    from benchmarks import suite

    assert suite.SERVER_KINDS == ("moto", "dynoxide")
    assert suite.parse_args(["--server", "dynoxide"]).server == "dynoxide"
    with pytest.raises(SystemExit):
        suite.parse_args(["--server", "java"])


def test_a_server_that_cannot_start_is_reported_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-dynoxide"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--cases", "b", "--server", "dynoxide", "--no-write"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DYNAMODEL_DYNOXIDE": str(missing)},
    )
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "dynoxide did not start" in done.stderr
    assert f"DYNAMODEL_DYNOXIDE={missing} is not an executable file" in done.stderr


def test_unknown_case_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--cases", "z", "--no-write"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown cases" in done.stderr
