"""The fixtures users import (``pytest_plugins = ["dynamodel.pytest_plugin"]``) work in a
user's own test suite: run one in a subprocess, as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

USER_TESTS = """
import pytest
from dynamodel import Model, Table
from dynamodel.ops.batch import batch_write

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


SERVER_FREE_TESTS = """
import socket

import pytest
from dynamodel import Attr, Model, Table
from dynamodel.ops.batch import batch_write

pytest_plugins = ["dynamodel.pytest_plugin"]

app = Table("plugin-app")


class Note(Model):
    class Meta:
        table = app
        pk = "NOTE#{note_id}"
        sk = "NOTE"

    note_id: int
    text: str
    likes: int = 0


@pytest.fixture(autouse=True)
def notes(dynamodel_inprocess):
    dynamodel_inprocess.create_tables(app)
    return dynamodel_inprocess


def test_round_trip(notes):
    Note(note_id=1, text="a").save()
    assert Note.get(note_id=1).text == "a"
    # the note, and (first write of the entity in a process) its shard-layout record
    assert notes.calls["PutItem"] == 2 and notes.calls["GetItem"] == 1


def test_each_test_starts_empty():
    assert Note.scan().count() == 0


def test_batches_and_updates():
    with batch_write() as batch:
        batch.put(*(Note(note_id=n, text="x") for n in range(60)))
    note = Note.get(note_id=7).update(Attr("likes").add(3))
    assert note.likes == 3 and Note.scan().count() == 60


async def test_async_too():
    await Note(note_id=5, text="b").asave()
    assert (await Note.aget(note_id=5)).text == "b"
    assert [n.note_id async for n in Note.scan()] == [5]


def test_no_server_thread_was_started():
    import threading

    assert [t.name for t in threading.enumerate()] == ["MainThread"]
"""

# sockets refused in the user's whole run, whether or not a network namespace is available
NO_NETWORK_CONFTEST = """
import socket


def _refuse(*args, **kwargs):
    raise OSError(f"network use in a server-free test: {args!r}")


socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.socket.bind = _refuse
socket.getaddrinfo = _refuse
"""


def _without_network() -> list[str]:
    """``unshare -n`` (a network namespace with no interfaces) where this user may make one."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


def test_a_user_suite_on_the_in_process_fixture_needs_no_server_and_no_network(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(SERVER_FREE_TESTS))
    (tmp_path / "conftest.py").write_text(textwrap.dedent(NO_NETWORK_CONFTEST))
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [*_without_network(), sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "5 passed" in done.stdout
