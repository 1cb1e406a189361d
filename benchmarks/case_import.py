"""(f) Import time on top of ``import boto3, pydantic`` (a Lambda cold start's share).

Target (issue 22): dynamodel's own share, measured after ``import boto3, pydantic`` and a first
pydantic model class (which every pydantic library pays), is at most 10 ms.

Each figure is the median over ``import_runs`` fresh interpreters (``sys.executable -c``) of
``time.perf_counter()`` around the import, after ``import boto3, pydantic`` in the same
interpreter; peers interleaved. The floor imports nothing more (0 ms), so the row for
``import boto3, pydantic`` itself gives the scale.

dynamodel's own modules are byte-compiled first (``compileall``), as installing a wheel does:
the peers come from site-packages, compiled at install. Without this, a checkout run under
``PYTHONDONTWRITEBYTECODE`` compiles dynamodel from source on every start (about 30 ms).
"""

from __future__ import annotations

import compileall
import subprocess
import sys
from collections.abc import Callable

from .harness import Row, Settings, Target, median, rotate
from .server import ROOT

OP = "import on top of boto3 + pydantic"
BASE = "import boto3, pydantic (itself)"
PYDANTIC_FIRST_MODEL = "first pydantic model class (what any pydantic library pays)"
IMPORTS = {
    "dynamodel": "import dynamodel",
    PYDANTIC_FIRST_MODEL: "from pydantic import BaseModel\nclass First(BaseModel):\n    a: int",
    "PynamoDB": "from pynamodb.models import Model",
    "pydynox": "import pydynox",
}
PRELOAD = "import boto3, pydantic"
OWN_SHARE = "dynamodel's own share (after boto3, pydantic and a first pydantic model)"


def _code(statement: str, preload: str) -> str:
    return (
        f"import time\n{preload}\nt = time.perf_counter()\n{statement}\n"
        "print(time.perf_counter() - t)\n"
    )


def _seconds(statement: str, preload: str = PRELOAD) -> float | None:
    done = subprocess.run(
        [sys.executable, "-c", _code(statement, preload)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        return None
    return float(done.stdout.strip().splitlines()[-1])


def run(settings: Settings, log: Callable[[str], None]) -> tuple[list[Row], list[Target]]:
    compileall.compile_dir(ROOT / "dynamodel", quiet=1)  # as pip does for an installed wheel
    cases = {name: (statement, PRELOAD) for name, statement in IMPORTS.items()}
    cases[BASE] = (PRELOAD, "")
    cases["dynamodel (fresh interpreter, nothing preloaded)"] = ("import dynamodel", "")
    cases[OWN_SHARE] = ("import dynamodel", PRELOAD + "\n" + IMPORTS[PYDANTIC_FIRST_MODEL])
    times: dict[str, list[float]] = {name: [] for name in cases}
    failed: set[str] = set()
    names = list(cases)
    for round_number in range(settings.import_runs):
        for name in rotate(names, round_number):
            if name in failed:
                continue
            seconds = _seconds(*cases[name])
            if seconds is None:
                failed.add(name)
            else:
                times[name].append(seconds)
    log(f"  (f) {settings.import_runs} fresh interpreters per peer")
    rows = []
    for name in names:
        if name in failed or not times[name]:
            rows.append(Row("f", OP, name, None, "ms", note="not installed"))
        else:
            rows.append(Row("f", OP, name, median(times[name]) * 1e3, "ms"))
    value = {r.peer: r.value for r in rows}
    own, first_model = value.get(OWN_SHARE), value.get(PYDANTIC_FIRST_MODEL)
    whole = value.get("dynamodel")
    note = "the whole import on top of boto3 + pydantic: " + (f"{whole:.1f} ms" if whole else "-")
    note += "; pydantic's first model class: " + (f"{first_model:.1f} ms" if first_model else "-")
    # what dynamodel itself adds: every pydantic library pays pydantic's first model class
    # (about 60 ms, its validator machinery), so the target is on what comes after it (#22)
    target = Target(
        "f",
        "dynamodel's own import share, after boto3, pydantic and a first model class (ms)",
        own,
        10.0,
        "max",
        note,
        unit=" ms",
    )
    return rows, [target]
