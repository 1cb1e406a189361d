"""examples/migrations runs against the local backend: sync adds the index, the backfill
migration fills it, and a second `migrate up` has nothing to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from backends import Backend

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "migrations"


def test_migrations_example(fresh_db: Backend) -> None:
    env = {**os.environ, **fresh_db.env(), "COLUMNS": "200"}
    env.pop("DYNAMODEL_APP", None)
    done = subprocess.run(
        [sys.executable, "walkthrough.py"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "GSI gsi2" in out and "create GSI gsi2" in out
    assert "open orders in gsi2 before the backfill: 0" in out
    assert "applied 0001_index_orders_by_status" in out
    assert "indexed 40 orders by status" in out
    assert "after the backfill: 14 open, 26 shipped" in out
    assert "Nothing to do: all migrations are applied." in out
