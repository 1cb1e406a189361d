"""A fake migrations worker for the local Step Functions runner's tests.

It follows the distributed-backfill Lambda contract with its state in files under the folder
named by ``ASL_FAKE_DIR``; ``plan.json`` there says what to do (see test_asl_runner.py).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any


class SegmentLeased(Exception):
    pass


class VerificationFailed(Exception):
    pass


class Boom(Exception):
    pass


def _once(root: Path, marker: str) -> bool:
    """True the first time ``marker`` is asked for, across processes."""
    try:
        (root / marker).open("x").close()
    except FileExistsError:
        return False
    return True


def make() -> Any:
    root = Path(os.environ["ASL_FAKE_DIR"])
    plan = json.loads((root / "plan.json").read_text())

    def log(event: dict[str, Any]) -> None:
        line = json.dumps({**event, "pid": os.getpid()}) + "\n"
        with (root / "calls.log").open("a") as file:
            file.write(line)

    def start(event: dict[str, Any]) -> dict[str, Any]:
        if "start" in plan.get("boom", []):
            raise Boom("start failed")
        round_ = sum(1 for _ in root.glob("started-*"))
        (root / f"started-{round_}").touch()
        if round_ < plan["backfills"]:
            return {
                "state": "waiting",
                "job": f"job-{round_}",
                "segments": list(range(plan["segments"])),
                "migration": f"000{round_ + 1}_backfill",
                "backfill": "backfill1",
            }
        return {"state": "applied", "applied": [f"000{i + 1}_backfill" for i in range(round_)]}

    def work(event: dict[str, Any], context: Any) -> dict[str, Any]:
        job, segment = event["job"], event["segment"]
        assert context.get_remaining_time_in_millis() > 0
        if segment in plan.get("leased", []) and _once(root, f"leased-{job}-{segment}"):
            raise SegmentLeased(f"segment {segment} of {job} is leased")
        if segment in plan.get("kill", []) and _once(root, f"killed-{job}-{segment}"):
            os.kill(os.getpid(), signal.SIGKILL)
        if segment in plan.get("boom", []):
            raise Boom(f"segment {segment}")
        if segment in plan.get("slow", []) and _once(root, f"slow-{job}-{segment}"):
            time.sleep(30)  # past the runner's timeout: the process is killed
        progress = root / f"progress-{job}-{segment}"
        calls = int(progress.read_text()) + 1 if progress.exists() else 1
        progress.write_text(str(calls))
        done = calls >= plan["calls"].get(str(segment), 1)
        if done:
            (root / f"done-{job}-{segment}").touch()
        return {
            "job": job,
            "segment": segment,
            "done": done,
            "scanned": 10,
            "written": 5,
            "remaining_ms": context.get_remaining_time_in_millis(),
        }

    def verify(event: dict[str, Any]) -> dict[str, Any]:
        expected = plan["backfills"] * plan["segments"]
        if sum(1 for _ in root.glob("done-*")) != expected:
            raise VerificationFailed("segments left")
        return {"state": "applied", "migrations": ["0001_backfill"], "failed": 0}

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        log(event)
        action = event["action"]
        if action == "start":
            return start(event)
        if action == "work":
            return work(event, context)
        if action == "verify":
            return verify(event)
        raise ValueError(f"unknown action {action!r}")

    return handler
