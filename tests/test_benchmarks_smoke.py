"""The benchmark command works: ``python -m benchmarks --quick`` runs every case with tiny
sizes, prints the table and writes the page. Speed targets are not asserted here (machines are
noisy); the full ``python -m benchmarks`` run checks them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_run_prints_the_table_and_writes_the_page(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(page)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "Targets (issue 9)" in done.stdout
    for case in ("(a)", "(b)", "(c)", "(d)", "(e)", "(f)"):
        assert f"\n{case} " in done.stdout
    text = page.read_text(encoding="utf-8")
    assert "## Targets" in text
    assert "Command: `python -m benchmarks --quick" in text
    assert "sharded queries" in text  # (d) is explained, not silently missing
    for case in ("(a)", "(b)", "(c)", "(e)", "(f)"):
        assert f"## {case}" in text
    assert "| dynamodel" in text


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
