"""The console table and docs/benchmarks.md."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .harness import Row, Target

MARKER = "<!-- Everything below is written by `python -m benchmarks`; edit the intro above. -->"

DEFAULT_INTRO = """# Benchmarks

How dynamodel compares with what you would use instead, measured in one run on one machine.
"""

CASES = {
    "a": "(a) CPU per item: model -> PutItem request, GetItem response -> model",
    "b": "(b) Client CPU and latency per call (local server in another process)",
    "c": "(c) Batch write and batch get throughput",
    "d": "(d) Sharded query, N=16 shards vs one partition",
    "e": "(e) Streaming a large query: peak memory",
    "f": "(f) Import time on top of `import boto3, pydantic`",
}

RATIO_MEANING = {
    "a": "ratio = peer / floor (CPU; lower is better)",
    "b": "ratio = peer / floor (CPU; lower is better)",
    "c": "ratio = peer / floor (items/s; higher is better)",
    "e": "ratio = streaming peak / the same peer's one-page peak (lower is better)",
    "f": "",
}

D_NOT_MEASURED = (
    "Not measured yet: dynamodel has no sharded queries in this release. The case will be "
    "added to the suite together with the feature."
)


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _extra(row: Row) -> str:
    parts = []
    if "latency_ms" in row.extra:
        parts.append(f"latency {row.extra['latency_ms']:.2f} ms")
    if "page_mb" in row.extra:
        parts.append(
            f"one page {row.extra['page_mb']:.1f} MB ({row.extra['page_items']:.0f} items)"
        )
    if "items_per_s_traced" in row.extra:
        parts.append(f"{row.extra['items_per_s_traced']:,.0f} items/s under tracemalloc")
    if row.note:
        parts.append(row.note)
    return "; ".join(parts)


def _case_rows(rows: Sequence[Row], case: str) -> list[list[str]]:
    out = []
    for row in rows:
        if row.case != case:
            continue
        out.append(
            [
                row.op,
                row.peer,
                f"{_num(row.value, 2 if case == 'a' else 1)} {row.unit}"
                if row.value is not None
                else "-",
                f"{row.ratio:.2f}x" if row.ratio is not None else "-",
                _extra(row),
            ]
        )
    return out


HEADER = ["operation", "peer", "figure", "ratio", "notes"]


def _text_table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body]
    return "\n".join(lines)


def _md_table(header: list[str], body: list[list[str]]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in body]
    return "\n".join(lines)


def _target_rows(targets: Sequence[Target]) -> list[list[str]]:
    out = []
    for t in targets:
        bound = ("<= " if t.kind == "max" else ">= ") + f"{t.limit:g}x"
        value = f"{t.value:.2f}x" if t.value is not None else "-"
        out.append(
            [f"({t.case}) {t.text}", value, bound, t.status + (f" ({t.note})" if t.note else "")]
        )
    return out


TARGET_HEADER = ["target", "this run", "required", "status"]


def console(rows: Sequence[Row], targets: Sequence[Target], cases: Sequence[str]) -> str:
    parts = []
    for case in CASES:
        if case not in cases and case != "d":
            continue
        parts.append(f"\n{CASES[case]}")
        if case == "d":
            parts.append(D_NOT_MEASURED)
            continue
        if RATIO_MEANING[case]:
            parts.append(RATIO_MEANING[case])
        parts.append(_text_table(HEADER, _case_rows(rows, case)))
    if targets:
        parts.append("\nTargets (issue 9)")
        parts.append(_text_table(TARGET_HEADER, _target_rows(targets)))
    return "\n".join(parts)


def markdown(
    rows: Sequence[Row],
    targets: Sequence[Target],
    cases: Sequence[str],
    info: dict[str, str],
    versions: dict[str, str],
    settings_text: str,
    intro: str,
) -> str:
    parts = [intro.rstrip(), "", MARKER, ""]
    parts.append("## This run\n")
    parts.append(f"- Date: {info['date']}")
    parts.append(f"- Command: `{info['command']}` (took {info['duration']})")
    parts.append(
        f"- Machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']} memory, "
        f"{info['os']}, Python {info['python']}; load average at the end {info['load']} "
        "(1, 5, 15 min: other work on the machine shows here)"
    )
    parts.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    parts.append(f"- Work: {settings_text}")
    parts.append(f"- Server: {info['server']}")
    parts.append("")
    if targets:
        parts.append("## Targets\n")
        parts.append(_md_table(TARGET_HEADER, _target_rows(targets)))
        parts.append("")
    for case in CASES:
        if case not in cases and case != "d":
            continue
        parts.append(f"## {CASES[case]}\n")
        if case == "d":
            parts.append(D_NOT_MEASURED + "\n")
            continue
        if RATIO_MEANING[case]:
            parts.append(f"{RATIO_MEANING[case][0].upper()}{RATIO_MEANING[case][1:]}.\n")
        parts.append(_md_table(HEADER, _case_rows(rows, case)))
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def write(path: Path, text_after_intro: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text_after_intro, encoding="utf-8")


def existing_intro(path: Path) -> str:
    """The hand-written part of the page (above the marker), or the default."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return DEFAULT_INTRO
    if MARKER in text:
        return text.split(MARKER, 1)[0]
    return DEFAULT_INTRO
