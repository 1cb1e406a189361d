"""Every script in examples/ runs to completion against the local backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dynamodel.local import LocalDynamoDB

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script: Path) -> None:
    with LocalDynamoDB() as server:
        env = {**os.environ, **server.env()}
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), "the example printed nothing"


def test_shop_example_answers_its_access_patterns() -> None:
    with LocalDynamoDB() as server:
        env = {**os.environ, **server.env()}
        script = Path(__file__).resolve().parent.parent / "examples" / "single_table_shop.py"
        out = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
        ).stdout
    assert "2. newest orders: ['o3', 'o2']" in out
    assert "5. open orders: ['o0', 'o3']" in out  # o2 is a draft: absent from the sparse GSI
    assert "placing it twice fails; stored status is open" in out
