"""The console table and docs/benchmarks.md."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from . import case_cache, case_cold, case_distributed, case_fastapi, case_limits, case_sharded
from .harness import Row, Target

MARKER = "<!-- Everything below is written by `python -m benchmarks`; edit the intro above. -->"

DEFAULT_INTRO = """# Benchmarks

How dynamodel compares with what you would use instead, measured in one run on one machine.
"""

CASES = {
    "a": "(a) CPU per item: model -> PutItem request, GetItem response -> model",
    "b": "(b) Client CPU and latency per call (local server in another process)",
    "c": "(c) Batch write and batch get throughput",
    "d": case_sharded.TITLE,
    "e": "(e) Streaming a large query: peak memory",
    "f": "(f) Import time on top of `import boto3, pydantic`",
    "g": case_cache.TITLE,
    "h": "(h) Transport alone: client CPU and latency per low-level call",
    "i": case_limits.TITLE,
    "j": case_cold.TITLE,
    "k": case_fastapi.TITLE,
    "l": case_distributed.TITLE,
}

RATIO_MEANING = {
    "a": "ratio = peer / floor (CPU; lower is better)",
    "b": "ratio = peer / floor (CPU; lower is better)",
    "c": "ratio = peer / floor (items/s; higher is better)",
    "d": case_sharded.RATIO_MEANING,
    "e": "ratio = streaming peak / the same peer's one-page peak (lower is better)",
    "f": "",
    "g": case_cache.RATIO_MEANING,
    "h": "ratio = peer / boto3 client (CPU; lower is better); the lean async client's is "
    "to aioboto3's",
    "i": case_limits.RATIO_MEANING,
    "j": case_cold.RATIO_MEANING,
    "k": case_fastapi.RATIO_MEANING,
    "l": case_distributed.RATIO_MEANING,
}

#: what each case measures (a sentence on the page, followed by the command to rerun it)
ABOUT = {
    "a": "Client CPU (`time.process_time()`) per item to turn a model into a PutItem request "
    "and a GetItem response item back into a model, with no I/O.",
    "b": "Client CPU and wall-time latency per GetItem, PutItem and 10-item Query call "
    "through each peer's own API against the local server, which runs in another process "
    "(its CPU is not counted). dynamodel runs through boto3/aioboto3 and through its lean "
    'transport (`Connection(transport="lean")`). The 1.1x targets read a paired A/B of '
    "dynamodel sync and the floor (alternating 10-call batches, median of the pairs' "
    "ratios, in the dynamodel rows' notes): on 2 cores shared with the server, one peer's "
    "CPU per call drifts by +-20% between rounds a minute apart. The floor calls the same "
    "boto3 client object as dynamodel sync (two identical clients differ by up to ~3% here), "
    "and its query is the request dynamodel sends: the entity's sort-key prefix and a filter "
    "on the type attribute, which a single-table query needs when other entities can share "
    "the prefix (the Table resource sends it too; PynamoDB and pydynox query the partition "
    "their own way).",
    "c": "Items per second of wall time to batch-write items and batch-get them back into "
    "models; dynamodel uses `dynamodel.ops.batch` (`with batch_write()` and `batch_get`; "
    "`async with batch_write()` and `abatch_get`) with its default concurrency. Twice: "
    "against the local server, and against `benchmarks/batch_stub.py` (rows marked "
    '"batch stub"), which answers each batch request after a fixed 5 ms on its own thread, '
    "as DynamoDB serves requests concurrently in roughly constant time. A local emulator on a "
    "small machine is the bottleneck of the first run (moto and dynoxide each apply one "
    "request at a time, on the cores they share with the client), so only the stub shows "
    "what chunks in flight buy; the 3x target reads the stub's rows (the median of 3 rounds) "
    "and its note gives the local server's ratio.",
    "d": "Wall time to read one logical partition whole into models (`Model.query(...).all()` "
    "and `.aall()`): the same items once in one partition and once spread over 16 shards "
    "(`Meta.shards = Shards(16)`: 16 concurrent Queries merged back into sort-key order), "
    "both written with `dynamodel.batch_write`. The shard-count record (one GetItem per "
    "model and process) is read in an untimed warm-up. The local server applies one request "
    "at a time, so the shards' queries cannot overlap there: the ratio is the fan-out's "
    "overhead, not the parallel speed-up DynamoDB gives.",
    "e": "Peak memory (`tracemalloc`) while iterating a large query one item at a time, "
    "against the same peer's peak for one page of items, served by a stub that replays "
    "pre-rendered 1 MB pages.",
    "f": "Wall time of the import in fresh interpreters that have already imported boto3 "
    "and pydantic (a Lambda cold start's share). dynamodel's modules are byte-compiled first, "
    "as installing a wheel does (the peers come compiled from site-packages); ship `.pyc` "
    "files in a Lambda package too, or every cold start compiles dynamodel (about 30 ms). "
    "Most of the figure is pydantic's own first model class (its row): dynamodel's own "
    "share is the row measured after one.",
    "g": "Latency and client CPU of dynamodel's `get` and 10-item `query` answered by a "
    "`LocalCache` hit, against the same call sent to the local server without a cache.",
    "h": "Client CPU and latency per low-level GetItem, PutItem and Query call, without "
    "models: boto3's client, dynamodel's lean client (`dynamodel.io.lean`), pydynox's client, "
    "aioboto3 and the async lean client, all on the same server.",
    "i": "Latency, client CPU and server-side work (requests, the `Limit` each sent, "
    "`ScannedCount` and consumed read capacity, asked for with `ReturnConsumedCapacity=TOTAL` "
    "in one untimed call after the rounds) of reads with a limit on one partition of 300 items "
    "plus one item of another entity: dynamodel's `first()`/`afirst()` and "
    "`limit(10).all()`/`.aall()` against the raw boto3 client and raw aioboto3 sending the "
    "same request (sort-key prefix and type filter) with `Limit=1` and `Limit=10`, and, for "
    "context, the raw client sending it without `Limit` (its first page: the whole partition; "
    "a tenth as many calls), which is what a read with a limit costs when it does not tell "
    "DynamoDB. moto reports 1 capacity unit for each of these queries; dynoxide computes "
    "capacity as DynamoDB does.",
    "j": case_cold.ABOUT,
    "k": case_fastapi.ABOUT,
    "l": case_distributed.ABOUT,
}


#: digits after the point of a case's figures (default 1)
DIGITS = {"a": 2, "g": 3, "i": 3, "j": 0}


def rerun_command(case: str) -> str:
    """The command that runs one case alone."""
    return f"python -m benchmarks --cases {case}"


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
    if "items_per_s" in row.extra:
        parts.append(f"{row.extra['items_per_s']:,.0f} items/s")
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
                f"{_num(row.value, DIGITS.get(case, 1))} {row.unit}"
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
    """One line per target, in case order (cases run in another order)."""
    order = list(CASES)
    out = []
    for t in sorted(targets, key=lambda t: order.index(t.case) if t.case in order else len(order)):
        bound = ("<= " if t.kind == "max" else ">= ") + f"{t.limit:g}{t.unit}"
        value = f"{t.value:.2f}{t.unit}" if t.value is not None else "-"
        out.append(
            [
                f"({t.case}) {t.text}",
                value,
                bound,
                t.status + (f" ({t.note})" if t.note else ""),
            ]
        )
    return out


TARGET_HEADER = ["target", "this run", "required", "status"]


def console(rows: Sequence[Row], targets: Sequence[Target], cases: Sequence[str]) -> str:
    parts = []
    for case in CASES:
        if case not in cases:
            continue
        parts.append(f"\n{CASES[case]}")
        if RATIO_MEANING[case]:
            parts.append(RATIO_MEANING[case])
        parts.append(_text_table(HEADER, _case_rows(rows, case)))
    if targets:
        parts.append("\nTargets")
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
    charts: dict[str, str] | None = None,
) -> str:
    """The page: ``intro``, this run, targets and every case's table.

    ``charts`` maps a chart's name (``targets``, ``cold start``) to its SVG file, relative to
    the page's ``img/`` folder (`benchmarks.charts`).
    """
    charts = charts or {}
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
        parts.append(
            "The speed targets dynamodel holds itself to, checked on this run's figures: each "
            "compares dynamodel with what you would use instead (or with itself, another way), "
            "and `python -m benchmarks` exits non-zero when one is missed.\n"
        )
        parts.append(_md_table(TARGET_HEADER, _target_rows(targets)))
        parts.append("")
        if "targets" in charts:
            parts.append(
                f"![Each ratio target of this run against its bound](img/{charts['targets']})\n"
            )
    for case in CASES:
        if case not in cases:
            continue
        parts.append(f"## {CASES[case]}\n")
        parts.append(f"{ABOUT[case]} Rerun: `{rerun_command(case)}`.\n")
        if RATIO_MEANING[case]:
            parts.append(f"{RATIO_MEANING[case][0].upper()}{RATIO_MEANING[case][1:]}.\n")
        parts.append(_md_table(HEADER, _case_rows(rows, case)))
        parts.append("")
        if case == "j" and "cold start" in charts:
            parts.append(f"![Cold start to the first item, per peer](img/{charts['cold start']})\n")
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
