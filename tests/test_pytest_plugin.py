"""The fixtures users import (``pytest_plugins = ["dynamodel.pytest_plugin"]``) work in a
user's own test suite: run one in a subprocess, as a user would."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

USER_TESTS = """
import pytest
from dynamodel import Model, Table
from dynamodel.batch import batch_write

pytest_plugins = ["dynamodel.pytest_plugin"]

app = Table("plugin-app")


class Note(Model):
    class Meta:
        table = app
        pk = "NOTE#{note_id}"
        sk = "NOTE"

    note_id: int
    text: str


def test_tables_start_empty(dynamodel_tables):
    dynamodel_tables(app)
    assert Note.scan().count() == 0
    Note(note_id=1, text="a").save()
    assert Note.get(note_id=1).text == "a"


def test_each_test_gets_fresh_tables(dynamodel_tables):
    dynamodel_tables(app)
    assert Note.scan().count() == 0


def test_faults_are_injected_and_survived(dynamodel_tables, dynamodel_faults):
    dynamodel_tables(app)
    faults = dynamodel_faults(app, seed=7, unprocessed=0.3, throttle=0.1)
    with batch_write() as batch:
        for n in range(200):
            batch.put(Note(note_id=n, text="x"))
    assert faults.stats.unprocessed > 0 and faults.stats.throttled > 0
    assert Note.scan().count() == 200


async def test_async_too(dynamodel_tables):
    dynamodel_tables(app)
    await Note(note_id=5, text="b").asave()
    assert (await Note.aget(note_id=5)).text == "b"
"""


def test_user_suite_with_the_plugin_passes(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "4 passed" in done.stdout
