"""The middleware chain (`dynamodel.io.middleware`): one set of middleware objects (capacity
tracking, the local cache, DAX routing) driven by the sync and the async driver alike, against
in-memory fakes (no server)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dynamodel import Connection
from dynamodel.io.cache import LocalCache
from dynamodel.io.capacity import CapacityUsage, Tracker
from dynamodel.io.dax import AsyncDaxRouter, DaxRouter, DaxRouting
from dynamodel.io.middleware import AsyncClient, Blocking, Client, Send, acall, call

T = "t"


def key(n: int) -> dict[str, Any]:
    return {"pk": {"S": f"K#{n}"}}


def item(n: int, value: str) -> dict[str, Any]:
    return {**key(n), "v": {"S": value}}


class FakeDynamoDB:
    """One table keyed by ``pk``; every call is logged as (who served it, op)."""

    def __init__(self, log: list[tuple[str, str]]) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.log = log

    def serve(self, side: str, op: str, params: dict[str, Any]) -> dict[str, Any]:
        self.log.append((side, op))
        result: dict[str, Any] = getattr(self, "_" + op)(params)
        return result

    def get_item(self, **params: Any) -> dict[str, Any]:
        return self.serve("dynamodb", "get_item", params)

    def put_item(self, **params: Any) -> dict[str, Any]:
        return self.serve("dynamodb", "put_item", params)

    def describe_table(self, **params: Any) -> dict[str, Any]:
        return self.serve("dynamodb", "describe_table", params)

    @staticmethod
    def _capacity(params: dict[str, Any], units: float) -> dict[str, Any]:
        if params.get("ReturnConsumedCapacity") in ("TOTAL", "INDEXES"):
            return {"ConsumedCapacity": {"TableName": T, "CapacityUnits": units}}
        return {}

    def _get_item(self, params: dict[str, Any]) -> dict[str, Any]:
        found = self.items.get(params["Key"]["pk"]["S"])
        return {**({"Item": dict(found)} if found else {}), **self._capacity(params, 0.5)}

    def _put_item(self, params: dict[str, Any]) -> dict[str, Any]:
        pk = params["Item"]["pk"]["S"]
        old = self.items.get(pk)
        if params.get("ConditionExpression") and old is not None:
            response: dict[str, Any] = {
                "Error": {"Code": "ConditionalCheckFailedException", "Message": "exists"}
            }
            if params.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
                response["Item"] = dict(old)
            raise ClientError(response, "PutItem")  # type: ignore[arg-type]
        self.items[pk] = dict(params["Item"])
        return self._capacity(params, 1.0)

    def _describe_table(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Table": {"TableName": T, "KeySchema": [{"AttributeName": "pk"}]}}


class FakeDax:
    """The DAX client's quirk that matters here: no ReturnValuesOnConditionCheckFailure."""

    internal_retries = 2

    def __init__(self, dynamodb: FakeDynamoDB) -> None:
        self.dynamodb = dynamodb

    def __getattr__(self, op: str) -> Callable[..., Any]:
        def method(**params: Any) -> Any:
            params.pop("ReturnValuesOnConditionCheckFailure", None)
            return self.dynamodb.serve("dax", op, params)

        return method


class AsyncFake:
    def __init__(self, sync: Any) -> None:
        self.sync = sync

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.sync, name)

        async def call(**params: Any) -> Any:
            return method(**params)

        return call


class World:
    """DynamoDB, DAX in front of it, and one chain of middleware (cache, DAX routing)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.dynamodb = FakeDynamoDB(self.log)
        self.dax = FakeDax(self.dynamodb)
        self.cache = LocalCache()
        self.routing = DaxRouting(self.dax)
        self.usage = CapacityUsage()
        self.chain = (self.cache, self.routing)


Send_ = Callable[[str, dict[str, Any]], Awaitable[Any]]


def sync_sender(world: World) -> Send_:
    async def send(op: str, params: dict[str, Any]) -> Any:
        track = Tracker(op, (world.usage,), None, "TOTAL")
        return call((track, *world.chain), world.dynamodb, op, params)

    return send


def async_sender(world: World) -> Send_:
    client = AsyncFake(world.dynamodb)

    async def send(op: str, params: dict[str, Any]) -> Any:
        track = Tracker(op, (world.usage,), None, "TOTAL")
        return await acall((track, *world.chain), client, op, params)

    return send


async def scenario(world: World, send: Send_) -> list[Any]:
    """Writes, cache hits and misses, a consistent read, a DAX condition failure."""
    out: list[Any] = []
    out.append(await send("get_item", {"TableName": T, "Key": key(1)}))  # miss, cached absent
    out.append(await send("get_item", {"TableName": T, "Key": key(1)}))  # hit
    out.append(await send("put_item", {"TableName": T, "Item": item(1, "one")}))  # via DAX
    out.append(await send("get_item", {"TableName": T, "Key": key(1)}))  # hit (written through)
    out.append(await send("get_item", {"TableName": T, "Key": key(1), "ConsistentRead": True}))
    failing = {
        "TableName": T,
        "Item": item(1, "two"),
        "ConditionExpression": "attribute_not_exists(pk)",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    with pytest.raises(ClientError) as caught:
        await send("put_item", failing)
    response = caught.value.response
    out.append(
        (response["Error"]["Code"], response.get("Item"), getattr(caught.value, "__notes__", []))
    )
    out.append(list(world.log))
    out.append(world.cache.stats)
    out.append((dict(world.routing.stats.dax), dict(world.routing.stats.dynamodb)))
    out.append([(r.operation, r.read_units, r.write_units) for r in world.usage.records])
    return out


async def test_sync_and_async_drivers_give_identical_results() -> None:
    sync_world, async_world = World(), World()
    done = await scenario(sync_world, sync_sender(sync_world))
    assert await scenario(async_world, async_sender(async_world)) == done
    (miss, hit, _, written, consistent, failure, log, stats, routes, records) = done
    assert miss == {"ConsumedCapacity": {"TableName": T, "CapacityUnits": 0.5}}
    assert hit == {"ConsumedCapacity": {"TableName": T, "CapacityUnits": 0.0}}  # from the cache
    assert written["Item"] == consistent["Item"] == item(1, "one")
    # DAX dropped ALL_OLD: the routing read the stored item from DynamoDB (key from Describe)
    code, stored, notes = failure
    assert (code, stored) == ("ConditionalCheckFailedException", item(1, "one"))
    assert notes == []  # ClientError has no notes unless a fallback read failed
    assert log == [
        ("dax", "get_item"),
        ("dax", "put_item"),
        ("dynamodb", "get_item"),  # the consistent read bypasses cache and DAX
        ("dax", "put_item"),
        ("dynamodb", "describe_table"),
        ("dynamodb", "get_item"),
    ]
    assert (stats.item_misses, stats.item_hits, stats.bypassed) == (1, 2, 1)
    assert routes == ({"get_item": 1, "put_item": 2}, {"get_item": 1})
    assert records == [
        ("get_item", 0.5, 0.0),
        ("get_item", 0.0, 0.0),
        ("put_item", 0.0, 1.0),
        ("get_item", 0.0, 0.0),
        ("get_item", 0.5, 0.0),
    ]


async def test_one_chain_object_serves_sync_and_async_clients() -> None:
    world = World()
    sync, aio = (
        Client(world.dynamodb, world.chain),
        AsyncClient(AsyncFake(world.dynamodb), world.chain),
    )
    assert sync.get_item(TableName=T, Key=key(1)) == {}  # a miss: the cache learns the key
    sync.put_item(TableName=T, Item=item(1, "one"))  # through DAX, into the shared cache
    assert (await aio.get_item(TableName=T, Key=key(1)))["Item"] == item(1, "one")  # a hit
    await aio.put_item(TableName=T, Item=item(2, "two"))
    assert sync.get_item(TableName=T, Key=key(2))["Item"] == item(2, "two")  # a hit
    assert (world.cache.stats.item_hits, world.cache.stats.item_misses) == (2, 1)
    assert world.routing.stats.dax == Counter({"put_item": 2, "get_item": 1})
    assert sync.cache is aio.cache is world.cache and sync.stats is aio.stats
    assert sync.describe_table(TableName=T)["Table"]["TableName"] == T  # not a data call


async def test_a_connection_shares_its_chain_between_its_sync_and_async_clients() -> None:
    log: list[tuple[str, str]] = []
    dynamodb = FakeDynamoDB(log)
    cache = LocalCache()
    connection = Connection(
        client=dynamodb, aclient=AsyncFake(dynamodb), cache=cache, dax_client=FakeDax(dynamodb)
    )
    sync, aio = connection.client(), await connection.aclient()
    assert sync.middleware is aio.middleware is connection.middleware()
    (first, routing) = sync.middleware
    assert first is cache and isinstance(routing, DaxRouting)
    assert connection.client(control=True) is dynamodb
    plain = Connection(client=dynamodb)
    assert plain.client() is dynamodb and plain.middleware() == ()  # nothing in between


async def test_dax_router_by_hand_sync_and_async() -> None:
    world = World()
    router = DaxRouter(world.dax, world.dynamodb)
    arouter = AsyncDaxRouter(world.dax, AsyncFake(world.dynamodb))
    router.put_item(TableName=T, Item=item(1, "one"))
    assert (await arouter.get_item(TableName=T, Key=key(1)))["Item"] == item(1, "one")
    assert router.get_item(TableName=T, Key=key(1), ConsistentRead=True)["Item"] == item(1, "one")
    assert router.stats.dax == Counter({"put_item": 1})
    assert arouter.stats.dax == Counter({"get_item": 1})
    assert router.stats.dynamodb == Counter({"get_item": 1})
    assert router.dax is world.dax and router.dynamodb is world.dynamodb
    assert router.retries == 2 and "DaxRouter(" in repr(router)


async def test_a_dax_client_that_cannot_be_created_fails_only_dax_calls() -> None:
    """The DAX client is created by the first call DAX serves (in a thread, for async)."""
    log: list[tuple[str, str]] = []
    dynamodb = FakeDynamoDB(log)
    made = []

    def unreachable() -> Any:
        made.append(1)
        raise ConnectionError("no route to the cluster")

    routing = DaxRouting(unreachable)
    sync, aio = Client(dynamodb, (routing,)), AsyncClient(AsyncFake(dynamodb), (routing,))
    assert sync.get_item(TableName=T, Key=key(1), ConsistentRead=True) == {}
    assert await aio.get_item(TableName=T, Key=key(1), ConsistentRead=True) == {}
    with pytest.raises(ConnectionError):
        sync.get_item(TableName=T, Key=key(1))
    with pytest.raises(ConnectionError):
        await aio.get_item(TableName=T, Key=key(1))
    assert len(made) == 2  # each DAX call tries again; consistent reads never tried
    assert routing.target.current is None


def test_middleware_can_answer_change_and_send_elsewhere() -> None:
    class Answer:
        def around(self, op: str, params: dict[str, Any]) -> Any:
            if params.get("answer"):
                return {"answered": True}
            response = yield Send(op, {**params, "seen": True})
            return {**response, "after": True}

    class Echo:
        def echo(self, **params: Any) -> dict[str, Any]:
            return {"params": params}

    elsewhere = Blocking(lambda: Echo())

    class Elsewhere:
        def around(self, op: str, params: dict[str, Any]) -> Any:
            local = yield Send(op, params)
            remote = yield Send(op, {"remote": True}, to=elsewhere)
            return {"local": local, "remote": remote}

    chain = (Answer(), Elsewhere())
    assert call(chain, Echo(), "echo", {"answer": True}) == {"answered": True}
    assert call(chain, Echo(), "echo", {}) == {
        "local": {"params": {"seen": True}},
        "remote": {"params": {"remote": True}},
        "after": True,
    }
    assert call((), Echo(), "echo", {"x": 1}) == {"params": {"x": 1}}


async def test_a_failed_stored_item_read_leaves_a_note_on_the_dax_error() -> None:
    for driver in ("sync", "async"):
        world = World()
        world.dynamodb.items["K#1"] = item(1, "one")

        def broken(params: dict[str, Any]) -> dict[str, Any]:
            raise ConnectionError("DynamoDB unreachable")

        world.dynamodb._describe_table = broken  # type: ignore[method-assign]
        failing = {
            "TableName": T,
            "Item": item(1, "two"),
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        with pytest.raises(ClientError) as caught:
            if driver == "sync":
                Client(world.dynamodb, world.chain).put_item(**failing)
            else:
                await AsyncClient(AsyncFake(world.dynamodb), world.chain).put_item(**failing)
        assert "Item" not in caught.value.response  # the DAX error itself, without the item
        assert caught.value.__notes__ == [
            "dynamodel: could not read the stored item from DynamoDB: DynamoDB unreachable"
        ]
