"""Serve one app of case (k) with uvicorn, recording its full garbage collections.

    python -m benchmarks.fastapi_serve MODULE:APP PORT STATS_FILE

As ``uvicorn MODULE:APP --port PORT --no-access-log`` (one worker), plus: every generation 2
collection appends its pause in seconds, one line, to ``STATS_FILE``. Those pauses stall every
request in flight, so case (k) reports how many fell in each app's load.
"""

from __future__ import annotations

import gc
import sys
import time
from typing import Any

import uvicorn


def main(argv: list[str]) -> None:
    target, port, stats = argv[0], int(argv[1]), argv[2]
    began = 0.0

    def on_collection(phase: str, info: dict[str, Any]) -> None:
        nonlocal began
        if info["generation"] != 2:
            return
        if phase == "start":
            began = time.perf_counter()
            return
        with open(stats, "a", encoding="utf-8") as f:
            f.write(f"{time.perf_counter() - began:.6f}\n")

    gc.callbacks.append(on_collection)
    uvicorn.run(target, host="127.0.0.1", port=port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
