"""The benchmark page's SVG charts (`benchmarks.charts`): valid SVG, one bar per figure, the
bound drawn, a missed target shown as missed, labels escaped."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import charts  # noqa: E402
from benchmarks.harness import Row, Target  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"


def _bars(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    return [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]


def test_targets_chart_draws_each_ratio_target_with_its_bound() -> None:
    targets = [
        Target("j", "cold start: lean / boto3 <client>", 0.66, 0.8, "max"),
        Target("k", "req/s: example / floor", 0.7, 0.8, "min"),
        Target("f", "import share (ms)", 9.6, 10.0, "max", unit=" ms"),  # not a ratio: left out
        Target("b", "not measured", None, 1.1, "max"),
    ]
    svg = charts.targets_chart(targets)
    assert svg is not None
    bars = _bars(svg)
    assert len(bars) == 2
    assert bars[0].get("fill") == charts.HOLDS and bars[1].get("fill") == charts.MISSED
    assert "&lt;client&gt;" in svg  # escaped, still valid XML
    root = ET.fromstring(svg)
    assert root.get("role") == "img" and root.find(f"{SVG}title") is not None  # accessible name
    ticks = list(ET.fromstring(svg).iter(f"{SVG}line"))
    assert len(ticks) == 2
    # the bar of 0.66 ends left of its 0.8 tick; the bar of 0.7 left of its 0.8 tick too
    for bar, tick in zip(bars, ticks, strict=True):
        end = float(bar.get("x", 0)) + float(bar.get("width", 0))
        assert end < float(tick.get("x1", 0))


def test_cold_start_chart_and_write(tmp_path: Path) -> None:
    rows = [
        Row("j", "op", "raw boto3 client", 300.0, "ms", ratio=1.0),
        Row("j", "op", "dynamodel (default transport)", 200.0, "ms", ratio=0.66),
        Row("j", "op", "PynamoDB", None, "ms", note="not installed"),
        Row("j", "rss", "raw boto3 client", 43.0, "MiB"),
    ]
    svg = charts.cold_start_chart(rows, "op")
    assert svg is not None
    widths = [float(b.get("width", 0)) for b in _bars(svg)]
    assert len(widths) == 2 and widths[1] < widths[0]
    assert "200 ms (0.66x boto3)" in svg
    written = charts.write(tmp_path / "img", rows, [], "op")
    assert written == {"cold start": "benchmarks-cold-start.svg"}  # no targets: no chart
    assert (tmp_path / "img" / "benchmarks-cold-start.svg").read_text().startswith("<svg")
    assert charts.cold_start_chart(rows, "another op") is None
