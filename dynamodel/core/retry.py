"""The retry policy shared by every flow: exponential backoff with full jitter (tenacity).

The wait before retry *n* is ``uniform(0, min(cap, base * 2 ** (n - 1)))`` (AWS's "full jitter"),
computed with tenacity's ``wait_exponential`` ceiling and the policy's random source (``random``:
default the ``random`` module's shared generator, as tenacity's ``wait_random_exponential`` uses;
a seeded ``random.Random`` makes the jitter deterministic).

Two layers retry: botocore inside one call, dynamodel around calls. They do not multiply:
sends made by botocore inside a failed call (``ResponseMetadata.RetryAttempts``) count against
``max_attempts``, and dynamodel stops retrying once that many sends have been made. Because one
call may itself send up to botocore's ``total_max_attempts`` times, the total can exceed
``max_attempts`` by at most that number minus one.
"""

from __future__ import annotations

import random as _random_module
import time
from collections.abc import Callable

from dynamodel.core.errors import RETRYABLE_CODES, DynamodelError
from dynamodel.core.frozen import Frozen


class _AttemptState:
    """The part of tenacity's RetryCallState its wait strategies read."""

    __slots__ = ("attempt_number",)

    def __init__(self, attempt_number: int) -> None:
        self.attempt_number = attempt_number


class RetryPolicy(Frozen):
    """When and how long to wait before resending a failed request (immutable).

    Args:
        base: first backoff ceiling in seconds.
        cap: largest backoff ceiling in seconds.
        max_attempts: total sends of one request (botocore's own retries included).
        max_elapsed: give up once this many seconds have passed since the first failure.
        retry_codes: DynamoDB error codes worth retrying.
        clock: the monotonic clock ``max_elapsed`` is measured with (for tests).
        random: the ``random.Random`` the jitter is drawn from (default: the ``random``
            module's shared generator); seed one for deterministic backoff.
    """

    _fields = ("base", "cap", "max_attempts", "max_elapsed", "retry_codes", "clock", "random")
    __slots__ = _fields
    _private = frozenset({"clock", "random"})
    base: float
    cap: float
    max_attempts: int
    max_elapsed: float | None
    retry_codes: frozenset[str]
    clock: Callable[[], float]
    random: _random_module.Random | None

    def __init__(
        self,
        base: float = 0.05,
        cap: float = 5.0,
        max_attempts: int = 10,
        max_elapsed: float | None = None,
        retry_codes: frozenset[str] = RETRYABLE_CODES,
        clock: Callable[[], float] = time.monotonic,
        random: _random_module.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be >= 1")
        if base < 0 or cap < 0:
            raise ValueError("RetryPolicy.base and cap must be >= 0")
        if random is not None and not isinstance(random, _random_module.Random):
            raise ValueError("RetryPolicy.random must be a random.Random")
        self._set(
            base=base,
            cap=cap,
            max_attempts=max_attempts,
            max_elapsed=max_elapsed,
            retry_codes=retry_codes,
            clock=clock,
            random=random,
        )

    def retryable(self, error: BaseException) -> bool:
        """Whether this policy retries the error: a listed code, or any HTTP 5xx."""
        if not isinstance(error, DynamodelError):
            return False
        return error.code in self.retry_codes or (error.status or 0) >= 500

    def backoff(self, attempt: int) -> float:
        """Full-jitter wait before retry number ``attempt`` (1-based)."""
        from tenacity import wait_exponential

        ceiling = wait_exponential(multiplier=self.base, max=self.cap)
        high = float(ceiling(_AttemptState(attempt)))  # type: ignore[arg-type]
        return (self.random or _random_module).uniform(0, high)

    def next_delay(
        self, error: BaseException, retry: int, sends: int, elapsed: float
    ) -> float | None:
        """Seconds to wait before retry number ``retry``, or None to give up and raise ``error``.

        ``sends`` counts the sends made so far, botocore's internal retries included;
        ``elapsed`` is the time since the first failure.
        """
        if not self.retryable(error) or self.exhausted(sends, elapsed):
            return None
        return self.backoff(retry)

    def exhausted(self, sends: int, elapsed: float) -> bool:
        """Whether the budget is spent: ``max_attempts`` sends made, or ``max_elapsed`` passed.

        Used directly where a retry is due without an error (unprocessed batch items).
        """
        if sends >= self.max_attempts:
            return True
        return self.max_elapsed is not None and elapsed >= self.max_elapsed


_DEFAULT = RetryPolicy()


def default_policy() -> RetryPolicy:
    """The policy used when none is configured."""
    return _DEFAULT
