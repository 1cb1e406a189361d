"""The retry policy shared by every flow: exponential backoff with full jitter (tenacity).

The wait before retry *n* is ``uniform(0, min(cap, base * 2 ** (n - 1)))`` (AWS's "full jitter"),
computed with tenacity's ``wait_random_exponential``. Attempts made by botocore inside a failed
call (``ResponseMetadata.RetryAttempts``) count against ``max_attempts``, so the two retry layers
never multiply: ``max_attempts`` bounds the total number of times a request is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import RETRYABLE_CODES, DynamodelError


@dataclass(frozen=True)
class _AttemptState:
    """The part of tenacity's RetryCallState its wait strategies read."""

    attempt_number: int


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before resending a failed request.

    Args:
        base: first backoff ceiling in seconds.
        cap: largest backoff ceiling in seconds.
        max_attempts: total sends of one request (botocore's own retries included).
        max_elapsed: give up once this many seconds have passed since the first failure.
        retry_codes: DynamoDB error codes worth retrying.
    """

    base: float = 0.05
    cap: float = 5.0
    max_attempts: int = 10
    max_elapsed: float | None = None
    retry_codes: frozenset[str] = RETRYABLE_CODES
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be >= 1")
        if self.base < 0 or self.cap < 0:
            raise ValueError("RetryPolicy.base and cap must be >= 0")

    def retryable(self, error: BaseException) -> bool:
        """Whether the error's code is one this policy retries."""
        return isinstance(error, DynamodelError) and error.code in self.retry_codes

    def backoff(self, attempt: int) -> float:
        """Full-jitter wait before retry number ``attempt`` (1-based)."""
        from tenacity import wait_random_exponential

        wait = wait_random_exponential(multiplier=self.base, max=self.cap)
        return float(wait(_AttemptState(attempt)))  # type: ignore[arg-type]

    def next_delay(self, error: BaseException, attempt: int, elapsed: float) -> float | None:
        """Seconds to wait before sending again, or None to give up and raise ``error``.

        ``attempt`` counts failed sends so far, botocore's internal retries included.
        """
        if not self.retryable(error):
            return None
        if attempt >= self.max_attempts:
            return None
        if self.max_elapsed is not None and elapsed >= self.max_elapsed:
            return None
        return self.backoff(attempt)

    def replace(self, **changes: Any) -> RetryPolicy:
        """A copy with some settings changed."""
        from dataclasses import replace

        return replace(self, **changes)


_DEFAULT = RetryPolicy()


def default_policy() -> RetryPolicy:
    """The policy used when none is configured."""
    return _DEFAULT
