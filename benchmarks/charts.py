"""SVG bar charts of a run's main figures, for docs/benchmarks.md (no plotting library).

Two charts: every ratio target of the run (its value against the bound it must meet), and the
cold-start case (j), wall time per peer. Each is a self-contained SVG file with a title, the
figures written on the bars, and a ``<title>`` per bar for a tooltip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from .harness import Row, Target

WIDTH = 760
LABEL_WIDTH = 360
BAR_HEIGHT = 18
GAP = 8
TOP = 44
FONT = "font-family='system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif'"
HOLDS, MISSED, NEUTRAL, BOUND = "#2e7d32", "#c62828", "#1565c0", "#424242"


@dataclass
class Bar:
    label: str
    value: float
    text: str  # written at the bar's end
    color: str
    bound: float | None = None  # a vertical tick: the target's bound


def _svg(title: str, subtitle: str, bars: Sequence[Bar], scale_max: float) -> str:
    plot = WIDTH - LABEL_WIDTH - 130  # room for the figure after the longest bar
    height = TOP + len(bars) * (BAR_HEIGHT + GAP) + 16
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
        f"viewBox='0 0 {WIDTH} {height}' role='img' aria-label='{escape(title, quote=True)}'>",
        f"<title>{escape(title)}</title>",
        f"<rect width='{WIDTH}' height='{height}' fill='white'/>",
        f"<text x='8' y='18' font-size='14' font-weight='bold' {FONT}>{escape(title)}</text>",
        f"<text x='8' y='34' font-size='11' fill='#555' {FONT}>{escape(subtitle)}</text>",
    ]
    for i, bar in enumerate(bars):
        y = TOP + i * (BAR_HEIGHT + GAP)
        length = max(1.0, plot * min(bar.value, scale_max) / scale_max)
        tip = escape(f"{bar.label}: {bar.text}")
        parts.append(
            f"<text x='{LABEL_WIDTH - 8}' y='{y + 13}' font-size='11' text-anchor='end' "
            f"{FONT}>{escape(bar.label)}</text>"
        )
        parts.append(
            f"<rect x='{LABEL_WIDTH}' y='{y}' width='{length:.1f}' height='{BAR_HEIGHT}' "
            f"fill='{bar.color}'><title>{tip}</title></rect>"
        )
        text_x = LABEL_WIDTH + length + 4
        if bar.bound is not None:
            x = LABEL_WIDTH + plot * min(bar.bound, scale_max) / scale_max
            text_x = max(text_x, x + 6)  # never under the tick
            parts.append(
                f"<line x1='{x:.1f}' y1='{y - 2}' x2='{x:.1f}' y2='{y + BAR_HEIGHT + 2}' "
                f"stroke='{BOUND}' stroke-width='2'/>"
            )
        parts.append(
            f"<text x='{text_x:.1f}' y='{y + 13}' font-size='11' {FONT}>{escape(bar.text)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


#: how far past its bound a bar of the targets chart may reach (longer ones are cut there)
TARGETS_SCALE = 3.0


def targets_chart(targets: Sequence[Target]) -> str | None:
    """Every measured ratio target, in case order, as its value divided by its bound: the tick
    (the bound) is then at the same place on every line. Green holds, red missed."""
    bars = []
    for t in sorted(targets, key=lambda t: t.case):
        if t.value is None or t.unit != "x" or not t.limit:
            continue
        bars.append(
            Bar(
                f"({t.case}) {t.text}"[:64],
                t.value / t.limit,
                f"{t.value:.2f}x ({'<=' if t.kind == 'max' else '>='} {t.limit:g}x)",
                HOLDS if t.holds else MISSED,
                1.0,
            )
        )
    if not bars:
        return None
    scale = min(max(max(b.value for b in bars) * 1.05, 1.5), TARGETS_SCALE)
    return _svg(
        "Targets: this run's figure against the bound it must meet (the tick)",
        "bar = figure / bound; green holds, red missed; a '<=' target holds left of the tick, "
        "a '>=' one right of it",
        bars,
        scale,
    )


def cold_start_chart(rows: Sequence[Row], op: str) -> str | None:
    """Case (j): the median wall time of each peer's whole process, with its ratio to boto3."""
    bars = []
    for row in rows:
        if row.case != "j" or row.op != op or row.value is None:
            continue
        ratio = f" ({row.ratio:.2f}x boto3)" if row.ratio is not None else ""
        color = NEUTRAL if row.peer.startswith("dynamodel") else "#9e9e9e"
        bars.append(Bar(row.peer, row.value, f"{row.value:.0f} ms{ratio}", color))
    if not bars:
        return None
    return _svg(
        "Cold start to the first item: one whole process (ms, lower is better)",
        "start, import, declare the model, GetItem from a local server, exit; median of the runs",
        bars,
        max(b.value for b in bars) * 1.05,
    )


def write(
    folder: Path, rows: Sequence[Row], targets: Sequence[Target], cold_op: str
) -> dict[str, str]:
    """Write the charts this run has into ``folder``; {chart name: file name}."""
    charts = {
        "targets": ("benchmarks-targets.svg", targets_chart(targets)),
        "cold start": ("benchmarks-cold-start.svg", cold_start_chart(rows, cold_op)),
    }
    written = {}
    for name, (file_name, svg) in charts.items():
        if svg is None:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        (folder / file_name).write_text(svg, encoding="utf-8")
        written[name] = file_name
    return written
