"""Benchmark case (k) runs: ``python -m benchmarks --quick --cases k`` on dynoxide starts the
example app and the hand-written floor app under uvicorn, checks they answer alike, loads
both and prints their rows and targets (about 10 s). Skipped without uvicorn or a built
dynoxide; the speed targets are not asserted here (the full run checks them)."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
from backends import BackendUnavailable, dynoxide_binary

ROOT = Path(__file__).resolve().parent.parent


def _why_not() -> str | None:
    missing = [m for m in ("uvicorn", "fastapi", "aioboto3") if find_spec(m) is None]
    if missing:
        return f"not installed: {', '.join(missing)} (the bench extra)"
    try:
        dynoxide_binary(build=False)
    except BackendUnavailable as error:
        return f"{error} (python tests/backends.py build-dynoxide builds it)"
    return None


WHY_NOT = _why_not()


@pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))
def test_quick_fastapi_case_measures_both_apps() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--cases", "k", "--server", "dynoxide"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout
    assert done.returncode == 0, out[-2000:] + done.stderr[-4000:]
    for peer in ("floor (FastAPI + aioboto3 by hand)", "example app (default transport: "):
        for op, unit in (("requests/s", "req/s"), ("p99 latency", "ms")):
            line = rf"^{re.escape(op)}\s+{re.escape(peer)}.*?\s[\d,]+\.?\d* {unit}\s"
            assert re.search(line, out, re.M), (op, peer, out)
    assert "at most" in out and "connections to DynamoDB at once" in out
    for text in ("requests/s", "p99 latency"):
        target = rf"^\(k\) FastAPI example: {text} vs hand-written aioboto3 app\s+\d+\.\d\dx"
        assert re.search(target, out, re.M), (text, out)
