"""A thread-safe rate limiter for backfills (items or capacity units per second)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Spreads work so that, on average, at most ``per_second`` units are used per second.

    Every worker reports what it just used with `charge`, which returns how long that worker
    should wait before its next request. Shared by all segments of a backfill.
    """

    def __init__(self, per_second: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not per_second > 0:
            raise ValueError(f"rate must be > 0 per second, got {per_second}")
        self.per_second = float(per_second)
        self.clock = clock
        self._next = clock()
        self._lock = threading.Lock()

    def charge(self, amount: float) -> float:
        """Record ``amount`` units used now; return the seconds to wait before going on."""
        if amount <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            self._next = max(now, self._next) + amount / self.per_second
            return max(0.0, self._next - now)
