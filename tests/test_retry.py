"""Unit tests for the retry policy, driving ``flows.call`` by hand (a flow is a generator: send it
responses, throw errors into it, read the Sleep steps it asks for)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from dynamodel import (
    ConditionFailed,
    RetryPolicy,
    ServiceError,
    ThrottledError,
    ValidationError,
)
from dynamodel.core.errors import DynamodelError, map_client_error
from dynamodel.core.flows import Request, Sleep, call


def throttled(retry_attempts: int = 0) -> ThrottledError:
    error = ThrottledError("slow down", code="ProvisionedThroughputExceededException")
    error.retry_attempts = retry_attempts
    return error


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_success_returns_the_response() -> None:
    request = Request("get_item", {"TableName": "t"})
    flow = call(request, RetryPolicy())
    assert next(flow) is request
    with pytest.raises(StopIteration) as done:
        flow.send({"Item": {"a": {"S": "b"}}})
    assert done.value.value == {"Item": {"a": {"S": "b"}}}


def test_retry_then_success() -> None:
    request = Request("put_item")
    flow = call(request, RetryPolicy(base=0.5, cap=10))
    assert next(flow) is request
    step = flow.throw(throttled())
    assert isinstance(step, Sleep)
    assert 0 <= step.seconds <= 0.5
    assert flow.send(None) is request  # sent again after the sleep
    with pytest.raises(StopIteration) as done:
        flow.send({"ok": True})
    assert done.value.value == {"ok": True}


def _sleeps_until_give_up(
    policy: RetryPolicy, error_factory: Any = throttled
) -> tuple[list[float], int]:
    """Throw errors until the flow gives up; return the sleeps and the number of sends."""
    flow = call(Request("put_item"), policy)
    step = next(flow)
    sends = 1
    sleeps: list[float] = []
    while True:
        assert isinstance(step, Request)
        try:
            step = flow.throw(error_factory())
        except DynamodelError:
            return sleeps, sends
        assert isinstance(step, Sleep)
        sleeps.append(step.seconds)
        step = flow.send(None)
        sends += 1


@pytest.mark.parametrize("max_attempts", [1, 2, 5, 10])
def test_max_attempts_bounds_total_sends(max_attempts: int) -> None:
    sleeps, sends = _sleeps_until_give_up(RetryPolicy(base=0.01, max_attempts=max_attempts))
    assert sends == max_attempts
    assert len(sleeps) == max_attempts - 1


def test_full_jitter_bounds() -> None:
    random.seed(1234)
    base, cap = 0.1, 1.0
    policy = RetryPolicy(base=base, cap=cap, max_attempts=8)
    ceilings = [min(cap, base * 2 ** (n - 1)) for n in range(1, 8)]
    maxima = [0.0] * 7
    minima = [float("inf")] * 7
    for _ in range(300):
        sleeps, _sends = _sleeps_until_give_up(policy)
        assert len(sleeps) == 7
        for i, (seconds, ceiling) in enumerate(zip(sleeps, ceilings, strict=True)):
            assert 0 <= seconds <= ceiling
            maxima[i] = max(maxima[i], seconds)
            minima[i] = min(minima[i], seconds)
    # full jitter: the whole [0, ceiling] range is used, not just the top of it
    for low, high, ceiling in zip(minima, maxima, ceilings, strict=True):
        assert high > 0.9 * ceiling
        assert low < 0.1 * ceiling


def test_backoff_ceilings_directly() -> None:
    random.seed(5)
    policy = RetryPolicy(base=0.05, cap=5.0)
    for attempt, ceiling in [(1, 0.05), (2, 0.1), (3, 0.2), (7, 3.2), (8, 5.0), (30, 5.0)]:
        samples = [policy.backoff(attempt) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > 0.8 * ceiling


def test_botocore_retry_attempts_count_against_max_attempts() -> None:
    # botocore already sent the request 3 times (1 + 2 retries) inside the failed call
    policy = RetryPolicy(base=0, max_attempts=3)
    flow = call(Request("put_item"), policy)
    next(flow)
    with pytest.raises(ThrottledError):
        flow.throw(throttled(retry_attempts=2))

    # each failed call stands for 3 sends: attempts 3, 6, 9 are retried; 12 >= 10 gives up
    policy = RetryPolicy(base=0, max_attempts=10)
    sleeps, sends = _sleeps_until_give_up(policy, lambda: throttled(retry_attempts=2))
    assert sends == 4
    assert len(sleeps) == 3

    # without botocore retries the same policy sends 10 times
    assert _sleeps_until_give_up(policy)[1] == 10


def test_botocore_retry_attempts_are_added_each_time() -> None:
    attempts = iter([0, 2, 1, 0, 0])
    sleeps, sends = _sleeps_until_give_up(
        RetryPolicy(base=0, max_attempts=7), lambda: throttled(next(attempts))
    )
    # real sends after each failure: 1, 4, 6, 7 -> the fourth failure reaches 7 and gives up
    assert sends == 4
    assert len(sleeps) == 3


@pytest.mark.parametrize(
    "error",
    [
        ConditionFailed("no"),
        ValidationError("bad"),
        ServiceError("denied", code="AccessDeniedException"),
        DynamodelError("generic"),
    ],
)
def test_non_retryable_errors_raise_at_once(error: DynamodelError) -> None:
    flow = call(Request("put_item"), RetryPolicy(base=0))
    next(flow)
    with pytest.raises(type(error)) as info:
        flow.throw(error)
    assert info.value is error


@pytest.mark.parametrize(
    "code",
    [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
    ],
)
def test_retryable_codes(code: str) -> None:
    error = ServiceError("x", code=code)
    assert RetryPolicy().retryable(error)
    flow = call(Request("put_item"), RetryPolicy(base=0))
    next(flow)
    assert isinstance(flow.throw(error), Sleep)


def test_custom_retry_codes() -> None:
    policy = RetryPolicy(base=0, retry_codes=frozenset({"AccessDeniedException"}))
    flow = call(Request("put_item"), policy)
    next(flow)
    assert isinstance(flow.throw(ServiceError("x", code="AccessDeniedException")), Sleep)
    flow = call(Request("put_item"), policy)
    next(flow)
    with pytest.raises(ThrottledError):
        flow.throw(throttled())


def test_max_elapsed_gives_up() -> None:
    clock = FakeClock()
    policy = RetryPolicy(base=0.01, max_attempts=100, max_elapsed=5.0, clock=clock)
    flow = call(Request("put_item"), policy)
    next(flow)
    assert isinstance(flow.throw(throttled()), Sleep)  # first failure starts the clock
    flow.send(None)
    clock.now += 4.9
    assert isinstance(flow.throw(throttled()), Sleep)
    flow.send(None)
    clock.now += 0.2
    with pytest.raises(ThrottledError):
        flow.throw(throttled())


def test_policy_validation_and_replace() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base=-1)
    policy = RetryPolicy().replace(max_attempts=2)
    assert policy.max_attempts == 2 and policy.base == RetryPolicy().base


def test_map_client_error_reads_retry_attempts() -> None:
    class FakeClientError(Exception):
        def __init__(self, response: dict[str, Any]) -> None:
            super().__init__("x")
            self.response = response

    error = map_client_error(
        FakeClientError(
            {
                "Error": {"Code": "com.amazonaws#ThrottlingException", "Message": "slow"},
                "ResponseMetadata": {"RetryAttempts": 2, "HTTPStatusCode": 400},
            }
        ),
        "put_item",
    )
    assert isinstance(error, ThrottledError)
    assert error.code == "ThrottlingException"
    assert error.retry_attempts == 2
    assert map_client_error(ValueError("not a client error"), "put_item") is None


def test_any_5xx_is_retried() -> None:
    class FakeClientError(Exception):
        def __init__(self, response: dict[str, Any]) -> None:
            super().__init__("x")
            self.response = response

    server = map_client_error(
        FakeClientError({"Error": {"Code": "Weird"}, "ResponseMetadata": {"HTTPStatusCode": 503}}),
        "get_item",
    )
    assert isinstance(server, ServiceError)
    assert RetryPolicy().retryable(server)
    client = map_client_error(
        FakeClientError({"Error": {"Code": "Weird"}, "ResponseMetadata": {"HTTPStatusCode": 400}}),
        "get_item",
    )
    assert not RetryPolicy().retryable(client)
    flow = call(Request("get_item"), RetryPolicy(base=0))
    next(flow)
    assert isinstance(flow.throw(server), Sleep)
