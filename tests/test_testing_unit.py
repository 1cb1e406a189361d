"""`dynamodel.testing.FaultInjector` without a server: seeded faults, unprocessed batch items
and keys, 500s before and after the real call, pass-through, sync and async clients."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dynamodel import ValidationError
from dynamodel.core.errors import ServiceError, ThrottledError, map_client_error
from dynamodel.testing import DATA_OPERATIONS, FaultInjector, FaultStats


class Recorder:
    """Answers every data call with an empty success and records it."""

    def __init__(self, unprocessed: dict[str, Any] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.unprocessed = unprocessed or {}
        self.meta = "client meta"

    def _answer(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((op, params))
        if op == "batch_write_item":
            return {"UnprocessedItems": dict(self.unprocessed), "ResponseMetadata": {}}
        if op == "batch_get_item":
            return {"Responses": {"t": []}, "UnprocessedKeys": dict(self.unprocessed)}
        return {"op": op}

    def __getattr__(self, op: str) -> Any:
        if op not in DATA_OPERATIONS and op != "create_table":
            raise AttributeError(op)
        return lambda **params: self._answer(op, params)


class AsyncRecorder(Recorder):
    def __getattr__(self, op: str) -> Any:
        answer = super().__getattr__(op)

        async def call(**params: Any) -> Any:
            await asyncio.sleep(0)
            return answer(**params)

        return call


def writes(n: int, table: str = "t") -> dict[str, Any]:
    return {
        "RequestItems": {table: [{"PutRequest": {"Item": {"pk": {"S": str(i)}}}} for i in range(n)]}
    }


def test_no_faults_passes_everything_through() -> None:
    real = Recorder()
    faulty = FaultInjector(real)
    assert faulty.put_item(TableName="t", Item={}) == {"op": "put_item"}
    assert faulty.create_table(TableName="t") == {"op": "create_table"}
    assert faulty.meta == "client meta"
    assert [op for op, _ in real.calls] == ["put_item", "create_table"]
    assert faulty.stats == FaultStats(calls=1, forwarded=1)  # create_table is not disturbed


def test_throttling_never_reaches_the_client() -> None:
    real = Recorder()
    faulty = FaultInjector(real, throttle=1.0)
    with pytest.raises(ClientError) as caught:
        faulty.batch_write_item(**writes(3))
    response = caught.value.response
    assert response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert response["ResponseMetadata"] == {"HTTPStatusCode": 400, "RetryAttempts": 0}
    assert caught.value.operation_name == "BatchWriteItem"
    assert real.calls == [] and faulty.stats.throttled == 1
    mapped = map_client_error(caught.value, "batch_write_item")
    assert isinstance(mapped, ThrottledError)
    custom = FaultInjector(real, throttle=1.0, throttle_code="ThrottlingException")
    with pytest.raises(ClientError, match="ThrottlingException"):
        custom.query(TableName="t")


def test_server_errors_before_and_after_the_real_call() -> None:
    real = Recorder()
    before = FaultInjector(real, server_error=1.0)
    with pytest.raises(ClientError) as caught:
        before.put_item(TableName="t")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert real.calls == []
    mapped = map_client_error(caught.value, "put_item")
    assert isinstance(mapped, ServiceError) and mapped.status == 500
    after = FaultInjector(real, server_error=1.0, server_error_after_apply=1.0)
    with pytest.raises(ClientError, match="InternalServerError"):
        after.put_item(TableName="t")
    assert [op for op, _ in real.calls] == ["put_item"]  # it was applied, the answer was lost
    assert after.stats.server_errors == after.stats.server_errors_after_apply == 1


def test_unprocessed_items_are_held_back_and_returned() -> None:
    real = Recorder()
    faulty = FaultInjector(real, seed=3, unprocessed=0.5)
    response = faulty.batch_write_item(**writes(40))
    held = response["UnprocessedItems"]["t"]
    (_, forwarded), *_ = real.calls
    sent = forwarded["RequestItems"]["t"]
    assert 0 < len(held) < 40 and len(held) + len(sent) == 40
    assert faulty.stats.unprocessed == len(held)
    assert sorted(e["PutRequest"]["Item"]["pk"]["S"] for e in held + sent) == sorted(
        str(i) for i in range(40)
    )


def test_everything_held_back_sends_nothing() -> None:
    real = Recorder()
    faulty = FaultInjector(real, unprocessed=1.0)
    response = faulty.batch_write_item(**writes(5))
    assert real.calls == [] and len(response["UnprocessedItems"]["t"]) == 5
    response = faulty.batch_get_item(RequestItems={"t": {"Keys": [{"pk": {"S": "1"}}]}})
    assert response["Responses"] == {} and response["UnprocessedKeys"]["t"]["Keys"]
    assert faulty.stats.forwarded == 0


def test_held_back_keys_keep_their_read_options_and_merge_with_real_ones() -> None:
    real_left = {"t": {"Keys": [{"pk": {"S": "real"}}], "ConsistentRead": True}}
    real = Recorder(unprocessed=real_left)
    faulty = FaultInjector(real, seed=1, unprocessed=0.5)
    keys = [{"pk": {"S": str(i)}} for i in range(20)]
    response = faulty.batch_get_item(
        RequestItems={"t": {"Keys": keys, "ConsistentRead": True}}, ReturnConsumedCapacity="TOTAL"
    )
    left = response["UnprocessedKeys"]["t"]
    assert left["ConsistentRead"] is True
    assert {"pk": {"S": "real"}} in left["Keys"] and len(left["Keys"]) > 1
    (_, forwarded), *_ = real.calls
    assert forwarded["ReturnConsumedCapacity"] == "TOTAL"
    assert forwarded["RequestItems"]["t"]["ConsistentRead"] is True


def test_unprocessed_writes_merge_with_real_ones() -> None:
    real = Recorder(unprocessed={"t": [{"DeleteRequest": {"Key": {"pk": {"S": "x"}}}}]})
    faulty = FaultInjector(real, seed=2, unprocessed=0.5)
    left = faulty.batch_write_item(**writes(20))["UnprocessedItems"]["t"]
    assert left[0] == {"DeleteRequest": {"Key": {"pk": {"S": "x"}}}} and len(left) > 1


def fault_pattern(seed: int) -> list[str]:
    faulty = FaultInjector(Recorder(), seed=seed, throttle=0.3, server_error=0.2, unprocessed=0.3)
    out = []
    for _ in range(60):
        try:
            response = faulty.batch_write_item(**writes(5))
            out.append(f"ok{len(response['UnprocessedItems'].get('t', []))}")
        except ClientError as error:
            out.append(error.response["Error"]["Code"])
    return out


def test_the_same_seed_gives_the_same_faults() -> None:
    assert fault_pattern(7) == fault_pattern(7)
    assert fault_pattern(7) != fault_pattern(8)
    pattern = fault_pattern(7)
    assert 5 < pattern.count("ProvisionedThroughputExceededException") < 35
    assert "InternalServerError" in pattern and "ok0" in pattern


def test_rates_follow_the_probabilities() -> None:
    faulty = FaultInjector(Recorder(), seed=0, throttle=0.1, unprocessed=0.3)
    for _ in range(2000):
        with contextlib.suppress(ClientError):
            faulty.batch_write_item(**writes(10))
    stats = faulty.stats
    assert 150 < stats.throttled < 250
    assert 0.27 < stats.unprocessed / ((stats.calls - stats.throttled) * 10) < 0.33


def test_only_chosen_operations_are_disturbed() -> None:
    real = Recorder()
    faulty = FaultInjector(real, throttle=1.0, operations={"batch_write_item"})
    assert faulty.get_item(TableName="t") == {"op": "get_item"}
    with pytest.raises(ClientError):
        faulty.batch_write_item(**writes(1))


def test_settings_can_change_at_any_time() -> None:
    faulty = FaultInjector(Recorder(), throttle=1.0)
    with pytest.raises(ClientError):
        faulty.get_item(TableName="t")
    faulty.throttle = 0.0
    assert faulty.get_item(TableName="t") == {"op": "get_item"}


def test_probabilities_are_checked() -> None:
    with pytest.raises(ValidationError, match=r"throttle must be in \[0, 1\], got 1.5"):
        FaultInjector(Recorder(), throttle=1.5)
    with pytest.raises(ValidationError, match="unprocessed"):
        FaultInjector(Recorder(), unprocessed=-0.1)


async def test_async_clients_get_coroutine_methods() -> None:
    real = AsyncRecorder()
    faulty = FaultInjector(real, seed=1, unprocessed=0.5, is_async=True)
    assert faulty.is_async
    response = await faulty.batch_write_item(**writes(10))
    assert response["UnprocessedItems"]["t"]
    throttled = FaultInjector(real, throttle=1.0, is_async=True)
    call = throttled.put_item(TableName="t")  # the error comes when awaited, as with aioboto3
    with pytest.raises(ClientError):
        await call


async def test_async_detection() -> None:
    class CoroutineMethods:
        async def get_item(self, **params: Any) -> Any:
            return {"Item": None}

    class LikeAiobotocore:
        """Plain methods returning coroutines, and an async context manager."""

        async def __aenter__(self) -> Any:
            return self

        async def __aexit__(self, *exc: Any) -> None:
            return None

        def get_item(self, **params: Any) -> Any:
            async def answer() -> Any:
                return {"Item": None}

            return answer()

    assert FaultInjector(CoroutineMethods()).is_async
    assert FaultInjector(LikeAiobotocore()).is_async
    assert await FaultInjector(LikeAiobotocore()).get_item(TableName="t") == {"Item": None}
    assert not FaultInjector(Recorder()).is_async
    assert FaultInjector(FaultInjector(CoroutineMethods())).is_async
    with pytest.raises(ClientError):
        await FaultInjector(CoroutineMethods(), throttle=1.0).get_item(TableName="t")
