"""The transport benchmark runs: ``python -m benchmarks.case_transport --quick`` measures every
peer and reports issue 11's targets. Speed is not asserted here (machines are noisy)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_transport_benchmark_reports_every_peer_and_target() -> None:
    command = ["-m", "benchmarks.case_transport", "--quick", "--calls", "2", "--rounds", "1"]
    done = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    out = done.stdout
    for op in ("get", "put", "query"):
        for peer in ("boto3 client", "lean client", "aioboto3 client", "lean async client"):
            assert re.search(rf"^{op}\s+{peer}\s+[\d,]+ µs", out, re.M), (op, peer, out)
        assert re.search(rf"^{op}\s+pydynox client\s+", out, re.M)
        assert f"(h) {op}: lean client CPU / boto3 client: " in out
        assert f"(h) {op}: lean latency / pydynox latency: " in out
    assert "2 calls x 1 rounds" in out
