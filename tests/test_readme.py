"""The README's usage example runs as written, and its quick start names real commands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from dynamodel.local import LocalDynamoDB

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_usage_example_runs_against_local_backend(tmp_path: Path) -> None:
    (code,) = _blocks("python")
    script = tmp_path / "readme_example.py"
    script.write_text(code)
    with LocalDynamoDB() as server:
        env = {**os.environ, **server.env()}
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr


def test_readme_quick_start_is_two_commands() -> None:
    (quick_start, *_) = _blocks("bash")
    commands = [line for line in quick_start.splitlines() if line.strip()]
    assert len(commands) == 2
    assert commands[0].endswith("dynamodel demo")
    assert "pytest" in commands[1]


def test_readme_and_getting_started_run_twice_against_the_same_server(tmp_path: Path) -> None:
    """A newcomer runs the examples again against the `dynamodel local` they left running: the
    leftovers of the first run must not break the second."""
    from test_docs import DOCS, executable_blocks

    scripts = {
        "readme_again.py": "\n".join(_blocks("python")),
        "getting_started_again.py": "\n".join(
            executable_blocks((DOCS / "getting-started.md").read_text())
        ),
    }
    with LocalDynamoDB() as server:
        env = {**os.environ, **server.env()}
        for name, code in scripts.items():
            script = tmp_path / name
            script.write_text(code)
            for run in (1, 2):
                done = subprocess.run(
                    [sys.executable, str(script)],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert done.returncode == 0, f"{name}, run {run}:\n{done.stderr[-4000:]}"
