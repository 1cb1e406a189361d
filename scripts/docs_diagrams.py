"""Write the docs' diagrams (self-contained SVG) into docs/img/.

Usage: python scripts/docs_diagrams.py

The SVGs are committed; run this after changing a diagram here. Standard library only, system
fonts, no external references, so the pictures render offline and in any viewer.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

OUT = Path(__file__).resolve().parent.parent / "docs" / "img"
SANS = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
MONO = (
    "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', 'Liberation Mono', "
    "monospace"
)
INK = "#111827"
MUTED = "#374151"
LINE = "#4b5563"
BLUE = "#dbeafe"
BLUE_EDGE = "#1d4ed8"
GREEN = "#dcfce7"
GREEN_EDGE = "#15803d"
AMBER = "#fef3c7"
AMBER_EDGE = "#b45309"
RED = "#fee2e2"
RED_EDGE = "#b91c1c"
GREY = "#f3f4f6"
PURPLE = "#ede9fe"
PURPLE_EDGE = "#6d28d9"


class Svg:
    """A small SVG writer: boxes, text, arrows."""

    def __init__(self, width: int, height: int, title: str, desc: str) -> None:
        self.width, self.height = width, height
        self.parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="title desc">',
            f'<title id="title">{escape(title)}</title>',
            f'<desc id="desc">{escape(desc)}</desc>',
            "<defs>"
            f'<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            f'fill="{LINE}"/></marker>'
            "</defs>",
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        ]

    def rect(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        fill: str = "#ffffff",
        stroke: str = LINE,
        rx: float = 4,
        dash: bool = False,
        width: float = 1.2,
    ) -> None:
        extra = ' stroke-dasharray="5 4"' if dash else ""
        self.parts.append(
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="{rx}" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{width}"{extra}/>'
        )

    def text(
        self,
        x: float,
        y: float,
        s: str,
        size: float = 13,
        anchor: str = "start",
        bold: bool = False,
        mono: bool = False,
        color: str = INK,
        italic: bool = False,
    ) -> None:
        family = MONO if mono else SANS
        weight = ' font-weight="700"' if bold else ""
        style = ' font-style="italic"' if italic else ""
        self.parts.append(
            f'<text x="{x}" y="{y}" font-family="{family}" font-size="{size}" fill="{color}" '
            f'text-anchor="{anchor}"{weight}{style}>{escape(s)}</text>'
        )

    def arrow(self, *points: tuple[float, float], dash: bool = False, color: str = LINE) -> None:
        extra = ' stroke-dasharray="5 4"' if dash else ""
        path = " ".join(f"{x},{y}" for x, y in points)
        self.parts.append(
            f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.6"'
            f'{extra} marker-end="url(#arrow)"/>'
        )

    def line(self, x1: float, y1: float, x2: float, y2: float, color: str = LINE) -> None:
        self.parts.append(
            f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{color}" stroke-width="1"/>'
        )

    def render(self) -> str:
        return "\n".join([*self.parts, "</svg>"]) + "\n"


# ---------------------------------------------------------------------------------------------
# 1. Single-table layout: the tracker of docs/design.md, the table and its gsi1 view.

ROWS = [
    # pk, sk, _type, gsi1pk, gsi1sk, attributes
    ("ORG#acme", "MEMBER#ann", "Member", "USER#ann", "ORG#acme", "role: owner"),
    ("ORG#acme", "MEMBER#bob", "Member", "USER#bob", "ORG#acme", "role: member"),
    ("ORG#acme", "ORG", "Org", "", "", "name: Acme"),
    ("ORG#acme", "PROJECT#api", "Project", "", "", "name: API"),
    ("ORG#acme", "PROJECT#web", "Project", "", "", "name: WEB"),
    ("PROJECT#api", "TASK#0…03", "Task", "USER#ann", "DUE#2026-04-30#api#0…03", "title: Fix bug"),
    ("PROJECT#web", "TASK#0…07", "Task", "USER#ann", "DUE#2026-05-04#web#0…07", "title: Ship it"),
    ("PROJECT#web", "TASK#0…08", "Task", "", "", "title: Write docs"),
]

GSI_ROWS = [
    ("USER#ann", "DUE#2026-04-30#api#0…03", "Task", "PROJECT#api", "TASK#0…03", "Fix bug"),
    ("USER#ann", "DUE#2026-05-04#web#0…07", "Task", "PROJECT#web", "TASK#0…07", "Ship it"),
    ("USER#ann", "ORG#acme", "Member", "ORG#acme", "MEMBER#ann", "owner"),
    ("USER#bob", "ORG#acme", "Member", "ORG#acme", "MEMBER#bob", "member"),
]

BANDS = [BLUE, GREEN, AMBER]
BAND_EDGES = [BLUE_EDGE, GREEN_EDGE, AMBER_EDGE]


def _table(
    svg: Svg,
    top: float,
    columns: list[tuple[str, float]],
    rows: list[tuple[str, ...]],
    key_cols: int,
) -> float:
    """Draw a table; rows sharing their first column share a coloured band. Returns the bottom."""
    left = 20
    row_h = 24
    total = sum(w for _, w in columns)
    svg.rect(left, top, total, row_h, fill="#e5e7eb", stroke=LINE, rx=0)
    x = left
    for i, (name, w) in enumerate(columns):
        svg.text(x + 6, top + 16, name, size=12, bold=True, mono=i < key_cols + 1)
        x += w
    y = top + row_h
    partitions: list[str] = []
    for row in rows:
        if row[0] not in partitions:
            partitions.append(row[0])
        band = partitions.index(row[0]) % len(BANDS)
        svg.rect(left, y, total, row_h, fill=BANDS[band], stroke="#9ca3af", rx=0, width=0.8)
        x = left
        for i, (value, (_, w)) in enumerate(zip(row, columns, strict=True)):
            if value == "" and i < len(columns) - 1:
                svg.text(x + 6, y + 16, "\u2013", size=12, color="#6b7280")
            else:
                svg.text(x + 6, y + 16, value, size=12, mono=i < len(columns) - 1, bold=i == 0)
            x += w
        y += row_h
    # partition brackets on the left edge
    y = top + row_h
    for name in partitions:
        count = sum(1 for r in rows if r[0] == name)
        band = partitions.index(name) % len(BANDS)
        svg.parts.append(
            f'<rect x="{left - 6}" y="{y + 2}" width="4" height="{count * row_h - 4}" '
            f'fill="{BAND_EDGES[band]}"/>'
        )
        y += count * row_h
    svg.rect(left, top, total, y - top, fill="none", stroke=INK, rx=0, width=1.4)
    return y


def single_table() -> str:
    svg = Svg(
        800,
        520,
        "Single-table layout: the project tracker's items and their gsi1 view",
        "One DynamoDB table holds items of four entity types. The partition ORG#acme holds "
        "the Org, its two Members and its two Projects, sorted by sort key, so one query reads "
        "them all; tasks live in their project's partition. The same items seen through the "
        "gsi1 index are grouped by gsi1pk (USER#ann, USER#bob); the unassigned task has no "
        "gsi1 keys, so it is not in the index.",
    )
    svg.text(20, 24, "Table design-tracker", size=16, bold=True)
    svg.text(
        20,
        44,
        "one table, every entity type; rows grouped by partition key (pk)",
        size=13,
        color=MUTED,
    )
    columns = [
        ("pk", 100),
        ("sk", 104),
        ("_type", 70),
        ("gsi1pk", 80),
        ("gsi1sk", 196),
        ("attributes", 210),
    ]
    bottom = _table(svg, 54, columns, ROWS, key_cols=1)
    svg.text(
        20,
        bottom + 18,
        "Query pk = ORG#acme: one request returns Member, Member, Org, Project, Project "
        "(sort key order).",
        size=12.5,
        color=MUTED,
    )
    svg.text(
        20,
        bottom + 36,
        "Task numbers are zero-padded to 20 digits (shortened to 0…07 here). "
        "Write docs has no assignee: no gsi1 keys.",
        size=12.5,
        color=MUTED,
    )
    top = bottom + 68
    svg.text(20, top, "Index gsi1", size=16, bold=True)
    svg.text(
        20,
        top + 20,
        "the same items, keyed by gsi1pk / gsi1sk (items without them are left out)",
        size=13,
        color=MUTED,
    )
    gsi_columns = [
        ("gsi1pk", 90),
        ("gsi1sk", 196),
        ("_type", 70),
        ("pk", 110),
        ("sk", 110),
        ("attributes", 184),
    ]
    bottom = _table(svg, top + 30, gsi_columns, GSI_ROWS, key_cols=1)
    svg.text(
        20,
        bottom + 18,
        "Query gsi1 USER#ann, sk begins_with DUE#: Ann's tasks by due date;  "
        "begins_with ORG#: her organisations.",
        size=12.5,
        color=MUTED,
    )
    svg.height = int(bottom + 30)
    svg.parts[0] = svg.parts[0].replace(
        'height="520" viewBox="0 0 800 520"',
        f'height="{svg.height}" viewBox="0 0 800 {svg.height}"',
    )
    svg.parts[4] = svg.parts[4].replace('height="520"', f'height="{svg.height}"')
    return svg.render()


# ---------------------------------------------------------------------------------------------
# 2. Write sharding: scatter on write, gather on read.


def sharding() -> str:
    svg = Svg(
        800,
        560,
        "Write sharding: one logical key, four physical keys, one merged read",
        "Events for the logical partition key EVENTS#acme are written to four physical keys, "
        "EVENTS#acme.0 to EVENTS#acme.3, each write picking one shard. A query of the logical "
        "key sends four queries concurrently, one per shard, and a k-way merge returns the "
        "items in sort-key order.",
    )
    svg.text(20, 26, 'Writes: Event(org_id="acme", ...).save()', size=15, bold=True)
    svg.text(
        20,
        46,
        "each write picks one shard: random, or a hash of the by= fields, modulo N = 4",
        size=13,
        color=MUTED,
    )
    events = [(f"09:0{n}#e{n}", shard) for n, shard in enumerate([2, 0, 3, 1, 0, 2, 1, 3])]
    ew, gap = 84, 10
    sw, sgap, stop = 170, 20, 172
    for i, (sk, _) in enumerate(events):
        x = 20 + i * (ew + gap)
        svg.rect(x, 60, ew, 26, fill=GREY, stroke=LINE)
        svg.text(x + ew / 2, 78, sk, size=12, anchor="middle", mono=True)
    # the logical key: a dashed frame around its physical keys
    svg.rect(12, 122, 776, 210, fill="none", stroke=PURPLE_EDGE, dash=True, width=1.6)
    placed = [0, 0, 0, 0]
    for i, (_, shard) in enumerate(events):
        x = 20 + i * (ew + gap) + ew / 2
        target = 20 + shard * (sw + sgap) + 60 + placed[shard] * 50
        placed[shard] += 1
        svg.arrow((x, 87), (target, stop - 2))
    svg.rect(150, 111, 500, 24, fill="#ffffff", stroke=PURPLE_EDGE, width=1.6)
    svg.text(
        400,
        128,
        "logical key EVENTS#acme = N = 4 physical partition keys",
        size=13,
        anchor="middle",
        bold=True,
    )
    for s in range(4):
        x = 20 + s * (sw + sgap)
        svg.rect(x, stop, sw, 124, fill=BLUE, stroke=BLUE_EDGE, width=1.6)
        svg.text(
            x + sw / 2,
            stop + 20,
            f"pk EVENTS#acme.{s}",
            size=13,
            anchor="middle",
            mono=True,
            bold=True,
        )
        svg.line(x, stop + 30, x + sw, stop + 30, color=BLUE_EDGE)
        held = [sk for sk, shard in events if shard == s]
        for j, sk in enumerate(held):
            svg.text(x + 12, stop + 52 + j * 20, f"sk {sk}", size=12, mono=True)
        svg.text(x + 12, stop + 114, "sorted within the shard", size=11, color=MUTED, italic=True)
    svg.text(
        20, 350, 'pk = rendered template + "." + shard number (0 to N-1)', size=13, color=MUTED
    )
    # read side
    rtop = 372
    svg.text(20, rtop + 10, "Reads:", size=15, bold=True)
    for s in range(4):
        x = 20 + s * (sw + sgap) + sw / 2
        svg.arrow((x, stop + 125), (x, rtop + 32))
        svg.rect(x + 6, rtop - 2, 72, 18, fill="#ffffff", stroke="none", rx=0)
        svg.text(x + 10, rtop + 12, f"Query .{s}", size=12, mono=True, color=MUTED)
    svg.rect(20, rtop + 34, 740, 36, fill=GREEN, stroke=GREEN_EDGE, width=1.6)
    svg.text(
        390,
        rtop + 57,
        'Event.query(org_id="acme"): 4 queries in flight at once, k-way merge by sort key',
        size=13.5,
        anchor="middle",
        bold=True,
    )
    svg.arrow((390, rtop + 71), (390, rtop + 94))
    y = rtop + 98
    for i in range(len(events)):
        x = 20 + i * (ew + gap)
        svg.rect(x, y, ew, 26, fill="#ffffff", stroke=GREEN_EDGE)
        svg.text(x + ew / 2, y + 18, f"09:0{i}#e{i}", size=12, anchor="middle", mono=True)
    svg.text(
        20,
        y + 48,
        "one result in exact sort-key order (or reversed); the cursor "
        "remembers each shard's position",
        size=13,
        color=MUTED,
    )
    height = int(y + 62)
    svg.parts[0] = svg.parts[0].replace(
        'height="560" viewBox="0 0 800 560"', f'height="{height}" viewBox="0 0 800 {height}"'
    )
    svg.parts[4] = svg.parts[4].replace('height="560"', f'height="{height}"')
    return svg.render()


# ---------------------------------------------------------------------------------------------
# 3. The layers of the package (the order .ci/import_graph.py checks).

LAYERS = [
    (
        "tooling",
        "cli/  migrations/  local.py  demo.py  testing.py  inprocess.py  pytest_plugin.py",
        "may import anything below",
        GREY,
        LINE,
    ),
    (
        "facade",
        "__init__.py (the public names)   model.py (Model: sync and async methods)",
        "resolves the connection, builds a flow, hands it to an executor",
        PURPLE,
        PURPLE_EDGE,
    ),
    (
        "operations",
        "ops/  items, query, scan, collection, batch, transactions, shard_reads, ...",
        "schema/  shapes, changes, live, export, policy",
        GREEN,
        GREEN_EDGE,
    ),
    (
        "modelling",
        "modelling/  table, spec, base, item_keys, compiled, sharding, ttl, ...",
        "a class becomes a ModelSpec once; instances become items and back",
        AMBER,
        AMBER_EDGE,
    ),
    (
        "io",
        "io/  clients (Connection), scope, executors, middleware, cache, dax, lean/",
        "runs flows: sends their requests, answers their questions",
        BLUE,
        BLUE_EDGE,
    ),
    (
        "core",
        "core/  codec, keys, expressions, flows, errors, retry, cursors, ...",
        "pure: no I/O, no models, no clock, no process-wide state",
        RED,
        RED_EDGE,
    ),
]


def layers() -> str:
    svg = Svg(
        800,
        470,
        "The layers of dynamodel",
        "Six layers, top to bottom: tooling, facade, operations (ops and schema), modelling, "
        "io, core. Each layer imports only its own layer and the ones below it; "
        ".ci/import_graph.py checks this and the absence of import cycles on every CI run.",
    )
    svg.text(20, 26, "Each layer imports only the layers below it", size=16, bold=True)
    svg.text(
        20,
        46,
        "checked on every CI run by .ci/import_graph.py (no upward imports, no cycles)",
        size=13,
        color=MUTED,
    )
    top, h, gap = 62, 56, 14
    for i, (name, modules, note, fill, edge) in enumerate(LAYERS):
        y = top + i * (h + gap)
        svg.rect(20, y, 696, h, fill=fill, stroke=edge, width=1.6)
        svg.text(34, y + 23, name, size=15, bold=True)
        svg.text(140, y + 23, modules, size=12, mono=True)
        svg.text(140, y + 44, note, size=12.5, mono=note.startswith("schema/"), color=MUTED)
        if i < len(LAYERS) - 1:
            svg.arrow((368, y + h + 1), (368, y + h + gap - 1))
    bottom = top + len(LAYERS) * (h + gap) - gap
    svg.arrow((738, top + 6), (738, bottom - 4))
    for k, word in enumerate(["imports", "point", "down"]):
        svg.text(746, top + 150 + k * 18, word, size=12, color=MUTED)
    height = bottom + 16
    svg.parts[0] = svg.parts[0].replace(
        'height="470" viewBox="0 0 800 470"', f'height="{height}" viewBox="0 0 800 {height}"'
    )
    svg.parts[4] = svg.parts[4].replace('height="470"', f'height="{height}"')
    return svg.render()


# ---------------------------------------------------------------------------------------------
# 4. Migration states.


def migrations() -> str:
    svg = Svg(
        800,
        600,
        "Migration states, the lock and the checkpoints",
        "A migration starts pending. up records it as running, then applied, or failed with "
        "the error; running up again on a failed migration resumes its backfills from their "
        "checkpoints and retries the failed items first. down records reverting, then removes "
        "the record (pending again) or marks it revert_failed. Every up and down holds the "
        "table's migration lock, and all state lives in the reserved partition "
        "_dynamodel#migrations.",
    )
    svg.text(20, 26, "States of one migration (dynamodel migrate status)", size=16, bold=True)
    w, h = 130, 44

    def node(x: float, y: float, name: str, fill: str, edge: str) -> None:
        svg.rect(x, y, w, h, fill=fill, stroke=edge, rx=22, width=2)
        svg.text(x + w / 2, y + 27, name, size=14, anchor="middle", bold=True, mono=True)

    px, py = 30, 70  # pending
    rx, ry = 330, 70  # running
    ax, ay = 630, 70  # applied
    fx, fy = 330, 230  # failed
    vx, vy = 630, 230  # reverting
    bx, by = 630, 380  # revert_failed
    node(px, py, "pending", GREY, LINE)
    node(rx, ry, "running", BLUE, BLUE_EDGE)
    node(ax, ay, "applied", GREEN, GREEN_EDGE)
    node(fx, fy, "failed", RED, RED_EDGE)
    node(vx, vy, "reverting", AMBER, AMBER_EDGE)
    node(bx, by, "revert_failed", RED, RED_EDGE)
    # pending -> running -> applied
    svg.arrow((px + w, py + 22), (rx - 2, ry + 22))
    svg.text((px + w + rx) / 2, py + 16, "up", size=13, anchor="middle", bold=True, mono=True)
    svg.arrow((rx + w, ry + 22), (ax - 2, ay + 22))
    svg.text((rx + w + ax) / 2, ay + 16, "up returns", size=13, anchor="middle")
    # running <-> failed
    svg.arrow((rx + 40, ry + h), (fx + 40, fy - 2))
    svg.text(rx + 34, ry + h + 62, "up raises", size=13, anchor="end")
    svg.text(rx + 34, ry + h + 78, "(error recorded)", size=12, anchor="end", color=MUTED)
    svg.arrow((fx + 90, fy), (rx + 90, ry + h + 2))
    svg.text(rx + 98, ry + h + 40, "up again:", size=13, bold=True)
    svg.text(rx + 98, ry + h + 56, "backfills resume from", size=12, color=MUTED)
    svg.text(rx + 98, ry + h + 71, "their checkpoints, failed", size=12, color=MUTED)
    svg.text(rx + 98, ry + h + 86, "items are retried first", size=12, color=MUTED)
    # applied -> reverting, failed -> reverting
    svg.arrow((ax + w / 2, ay + h), (vx + w / 2, vy - 2))
    svg.text(ax + w / 2 + 8, ay + h + 62, "down", size=13, bold=True, mono=True)
    svg.arrow((fx + w, fy + 22), (vx - 2, vy + 22))
    svg.text((fx + w + vx) / 2, fy + 16, "down", size=13, anchor="middle", bold=True, mono=True)
    # reverting <-> revert_failed
    svg.arrow((vx + 40, vy + h), (bx + 40, by - 2))
    svg.text(vx + 34, vy + h + 56, "down raises", size=13, anchor="end")
    svg.arrow((bx + 90, by), (vx + 90, vy + h + 2))
    svg.text(vx + 98, vy + h + 56, "down", size=13, bold=True, mono=True)
    svg.text(vx + 98, vy + h + 72, "again", size=12, color=MUTED)
    # reverting -> pending (record removed)
    svg.arrow(
        (vx, vy + 36), (560, vy + 36), (560, 330), (px + w / 2, 330), (px + w / 2, py + h + 2)
    )
    svg.text(px + w / 2 + 10, 322, "down returns: the record is removed (pending again)", size=13)
    svg.text(
        30,
        420,
        "A killed run stays running: up resumes it, down reverts it.",
        size=12.5,
        color=MUTED,
    )
    svg.text(30, 438, "reverting / revert_failed: up runs up again.", size=12.5, color=MUTED)
    # the reserved partition
    top = 470
    svg.rect(20, top, 760, 112, fill="#ffffff", stroke=INK, rx=4, width=1.4)
    svg.text(34, top + 22, "In the table, partition _dynamodel#migrations", size=14, bold=True)
    items = [
        (
            "LOCK",
            "held by every up / down: conditional put, lease renewed every third of "
            "--lease; a dead run's lock expires",
        ),
        ("STATE", "one record per migration: its state, when, its error, a revision"),
        ("CHECKPOINT#<version>#<run>#<backfill>#<segment>", ""),
        (
            "",
            "where a scan segment stopped, counts, failed items; saved after each page, "
            "deleted once applied",
        ),
    ]
    for i, (sk, what) in enumerate(items):
        y = top + 44 + i * 18
        if sk:
            svg.text(34, y, sk, size=12, mono=True, bold=True)
        svg.text(34 if not sk else 110, y, what, size=12, color=MUTED)
    return svg.render()


DIAGRAMS = {
    "single-table.svg": single_table,
    "sharding.svg": sharding,
    "layers.svg": layers,
    "migration-states.svg": migrations,
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, build in DIAGRAMS.items():
        (OUT / name).write_text(build())
        print(OUT / name)


if __name__ == "__main__":
    main()
