"""LocalCache semantics against an in-memory fake client (no server, a fake clock)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from dynamodel import Connection, ValidationError
from dynamodel.io.cache import AsyncCachingClient, CachingClient, LocalCache
from dynamodel.io.middleware import Client

T = "t"


def key(n: int) -> dict[str, Any]:
    return {"pk": {"S": f"K#{n}"}, "sk": {"S": "A"}}


def item(n: int, value: str) -> dict[str, Any]:
    return {**key(n), "v": {"S": value}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeDynamoDB:
    """Just enough DynamoDB for the cache: one table keyed by pk/sk; every call is logged."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.hold_back: set[str] = set()  # pk values returned unprocessed by batch calls
        self.fail_after_apply: str | None = None  # op that raises after doing its work
        self.during: dict[str, Callable[[], None]] = {}  # op -> run while the call is "in flight"

    @staticmethod
    def _k(key: dict[str, Any]) -> tuple[str, str]:
        return key["pk"]["S"], key["sk"]["S"]

    def _log(self, op: str, params: dict[str, Any]) -> None:
        self.calls.append((op, params))
        if op in self.during:
            self.during.pop(op)()

    def _done(self, op: str) -> None:
        if self.fail_after_apply == op:
            self.fail_after_apply = None
            raise RuntimeError(f"{op}: 500 after apply")

    def ops(self) -> list[str]:
        return [op for op, _ in self.calls]

    def get_item(self, **params: Any) -> dict[str, Any]:
        found = self.items.get(self._k(params["Key"]))
        self._log("get_item", params)
        if found is None:
            return {}
        if "ProjectionExpression" in params:
            names = params["ProjectionExpression"].split(",")
            found = {n: v for n, v in found.items() if n in names}
        return {"Item": found, "ConsumedCapacity": {"TableName": T, "CapacityUnits": 0.5}}

    def put_item(self, **params: Any) -> dict[str, Any]:
        self._log("put_item", params)
        self.items[self._k(params["Item"])] = params["Item"]
        self._done("put_item")
        return {}

    def update_item(self, **params: Any) -> dict[str, Any]:
        # understands "SET v = :v"
        self._log("update_item", params)
        current = dict(self.items.get(self._k(params["Key"]), params["Key"]))
        current["v"] = params["ExpressionAttributeValues"][":v"]
        self.items[self._k(params["Key"])] = current
        self._done("update_item")
        return {"Attributes": current} if params.get("ReturnValues") == "ALL_NEW" else {}

    def delete_item(self, **params: Any) -> dict[str, Any]:
        self._log("delete_item", params)
        old = self.items.pop(self._k(params["Key"]), None)
        self._done("delete_item")
        return {"Attributes": old} if old else {}

    def query(self, **params: Any) -> dict[str, Any]:
        self._log("query", params)
        items = [self.items[k] for k in sorted(self.items)]
        return {"Items": items, "Count": len(items), "ScannedCount": len(items)}

    def scan(self, **params: Any) -> dict[str, Any]:
        self._log("scan", params)
        items = [self.items[k] for k in sorted(self.items)]
        return {"Items": items, "Count": len(items), "ScannedCount": len(items)}

    def batch_get_item(self, **params: Any) -> dict[str, Any]:
        self._log("batch_get_item", params)
        request = params["RequestItems"][T]
        found, held = [], []
        for k in request["Keys"]:
            if k["pk"]["S"] in self.hold_back:
                held.append(k)
            elif self._k(k) in self.items:
                found.append(self.items[self._k(k)])
        out: dict[str, Any] = {"Responses": {T: found}, "UnprocessedKeys": {}}
        if held:
            out["UnprocessedKeys"][T] = {**request, "Keys": held}
        return out

    def batch_write_item(self, **params: Any) -> dict[str, Any]:
        self._log("batch_write_item", params)
        held = []
        for entry in params["RequestItems"][T]:
            body = entry.get("PutRequest") or entry["DeleteRequest"]
            target = body.get("Item") or body["Key"]
            if target["pk"]["S"] in self.hold_back:
                held.append(entry)
            elif "PutRequest" in entry:
                self.items[self._k(target)] = target
            else:
                self.items.pop(self._k(target), None)
        return {"UnprocessedItems": {T: held} if held else {}}

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        self._log("transact_write_items", params)
        for action in params["TransactItems"]:
            if "Put" in action:
                self.items[self._k(action["Put"]["Item"])] = action["Put"]["Item"]
            elif "Delete" in action:
                self.items.pop(self._k(action["Delete"]["Key"]), None)
            elif "Update" in action:
                body = action["Update"]
                current = dict(self.items.get(self._k(body["Key"]), body["Key"]))
                current["v"] = body["ExpressionAttributeValues"][":v"]
                self.items[self._k(body["Key"])] = current
        return {}

    def transact_get_items(self, **params: Any) -> dict[str, Any]:
        self._log("transact_get_items", params)
        return {
            "Responses": [
                {"Item": self.items[self._k(a["Get"]["Key"])]} for a in params["TransactItems"]
            ]
        }

    def describe_table(self, **params: Any) -> dict[str, Any]:
        self._log("describe_table", params)
        return {"Table": {"TableName": params["TableName"]}}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake() -> FakeDynamoDB:
    return FakeDynamoDB()


@pytest.fixture
def cache(clock: Clock) -> LocalCache:
    return LocalCache(item_ttl=300, query_ttl=60, clock=clock)


@pytest.fixture
def client(fake: FakeDynamoDB, cache: LocalCache) -> CachingClient:
    return CachingClient(fake, cache)


def get(client: Any, n: int, **extra: Any) -> dict[str, Any] | None:
    response: dict[str, Any] = client.get_item(TableName=T, Key=key(n), **extra)
    return response.get("Item")


def set_v(n: int, value: str, **extra: Any) -> dict[str, Any]:
    return {
        "TableName": T,
        "Key": key(n),
        "UpdateExpression": "SET v = :v",
        "ExpressionAttributeValues": {":v": {"S": value}},
        **extra,
    }


# -- item cache ------------------------------------------------------------------------------


def test_second_get_is_served_from_the_cache(client: Any, fake: FakeDynamoDB) -> None:
    fake.items[("K#1", "A")] = item(1, "one")
    assert get(client, 1) == item(1, "one")
    assert get(client, 1) == item(1, "one")
    assert fake.ops() == ["get_item"]
    assert (client.cache.stats.item_misses, client.cache.stats.item_hits) == (1, 1)


def test_answers_are_copies(client: Any, fake: FakeDynamoDB) -> None:
    fake.items[("K#1", "A")] = {**item(1, "one"), "l": {"L": [{"M": {"x": {"S": "y"}}}]}}
    first = get(client, 1)
    assert first is not None
    first["v"]["S"] = "changed"
    first["l"]["L"][0]["M"]["x"]["S"] = "changed"
    again = get(client, 1)
    assert again is not None
    assert again["v"] == {"S": "one"} and again["l"]["L"][0]["M"]["x"] == {"S": "y"}


def test_what_the_cache_stores_and_answers_is_its_own(client: Any, fake: FakeDynamoDB) -> None:
    """A caller changing a written item, an answered item or a query's answer afterwards
    changes nothing the cache holds; a value marshal cannot hold (a Decimal) is copied too."""
    from decimal import Decimal

    assert get(client, 1) is None  # the cache learns the table's key names from a read
    written = {**item(1, "one"), "l": {"L": [{"M": {"x": {"S": "y"}}}]}, "d": {"N": Decimal(2)}}
    client.put_item(TableName=T, Item=written)
    written["v"]["S"] = "changed"
    written["l"]["L"][0]["M"]["x"]["S"] = "changed"
    answer = get(client, 1)
    assert answer is not None and fake.ops() == ["get_item", "put_item"]  # the write-through
    assert answer["v"] == {"S": "one"} and answer["l"]["L"][0]["M"]["x"] == {"S": "y"}
    assert answer["d"] == {"N": Decimal(2)}
    answer["d"]["N"] = Decimal(3)
    assert get(client, 1)["d"] == {"N": Decimal(2)}  # type: ignore[index]

    fake.items[("K#2", "A")] = {**item(2, "two"), "l": {"L": [{"S": "a"}]}}
    params = {"TableName": T, "KeyConditionExpression": "pk = :p"}
    first = client.query(**params)
    (two,) = [i for i in first["Items"] if i["pk"] == {"S": "K#2"}]
    two["v"]["S"] = "changed"
    two["l"]["L"].append({"S": "b"})
    first["Items"].clear()
    first["Count"] = 99
    again = client.query(**params)
    assert fake.ops().count("query") == 1 and again["Count"] == 2
    (two,) = [i for i in again["Items"] if i["pk"] == {"S": "K#2"}]
    assert two["v"] == {"S": "two"} and two["l"] == {"L": [{"S": "a"}]}


def test_not_found_is_cached_until_the_ttl(client: Any, fake: FakeDynamoDB, clock: Clock) -> None:
    assert get(client, 1) is None
    fake.items[("K#1", "A")] = item(1, "written elsewhere")  # not through the cache
    assert get(client, 1) is None  # negative caching, as DAX does
    clock.now += 299
    assert get(client, 1) is None
    clock.now += 2
    assert get(client, 1) == item(1, "written elsewhere")
    assert fake.ops() == ["get_item", "get_item"]


def test_consistent_reads_always_reach_the_server_and_are_not_cached(
    client: Any, fake: FakeDynamoDB
) -> None:
    fake.items[("K#1", "A")] = item(1, "old")
    assert get(client, 1) == item(1, "old")
    fake.items[("K#1", "A")] = item(1, "new")
    assert get(client, 1, ConsistentRead=True) == item(1, "new")
    assert get(client, 1, ConsistentRead=True) == item(1, "new")
    assert get(client, 1) == item(1, "old")  # the consistent read did not refresh the cache
    assert fake.ops() == ["get_item"] * 3
    assert client.cache.stats.bypassed == 2


def test_writes_through_the_cache_update_the_item_cache(client: Any, fake: FakeDynamoDB) -> None:
    assert get(client, 1) is None
    client.put_item(TableName=T, Item=item(1, "put"))
    assert get(client, 1) == item(1, "put")
    client.update_item(**set_v(1, "updated", ReturnValues="ALL_NEW"))
    assert get(client, 1) == item(1, "updated")
    client.delete_item(TableName=T, Key=key(1))
    assert get(client, 1) is None
    assert fake.ops() == ["get_item", "put_item", "update_item", "delete_item"]
    assert client.cache.stats.write_through == 3


def test_an_update_without_the_new_item_drops_the_key(client: Any, fake: FakeDynamoDB) -> None:
    fake.items[("K#1", "A")] = item(1, "old")
    get(client, 1)
    client.update_item(**set_v(1, "new"))
    assert get(client, 1) == item(1, "new")
    assert fake.ops() == ["get_item", "update_item", "get_item"]


def test_a_failed_write_drops_the_key(client: Any, fake: FakeDynamoDB) -> None:
    fake.items[("K#1", "A")] = item(1, "old")
    get(client, 1)
    fake.fail_after_apply = "put_item"  # applied, but the caller sees an error
    with pytest.raises(RuntimeError):
        client.put_item(TableName=T, Item=item(1, "maybe"))
    assert get(client, 1) == item(1, "maybe")  # read again from the server


def test_a_malformed_failed_write_clears_the_item_cache_and_keeps_its_error(
    client: Any, fake: FakeDynamoDB
) -> None:
    fake.items[("K#1", "A")] = item(1, "old")
    get(client, 1)
    with pytest.raises(KeyError, match="Item"):  # the server's error, not the cache's
        client.put_item(TableName=T)
    fake.items[("K#1", "A")] = item(1, "new")
    assert get(client, 1) == item(1, "new")
    with pytest.raises(KeyError, match="Key"):  # malformed reads are sent as they are
        client.get_item(TableName=T)


def test_puts_before_any_key_is_known_are_not_cached_and_reads_still_see_them(
    client: Any, fake: FakeDynamoDB
) -> None:
    client.put_item(TableName=T, Item=item(1, "first"))
    assert get(client, 1) == item(1, "first")  # a miss: the key names were not known yet
    client.put_item(TableName=T, Item=item(1, "second"))
    assert get(client, 1) == item(1, "second")  # a hit: now they are
    assert fake.ops() == ["put_item", "get_item", "put_item"]


def test_a_read_racing_a_write_does_not_store_the_older_answer(
    client: Any, fake: FakeDynamoDB
) -> None:
    fake.items[("K#1", "A")] = item(1, "old")
    get(client, 1)
    client.cache.clear()
    # while the next get is in flight (it already read "old"), a write goes through the cache
    fake.during["get_item"] = lambda: client.put_item(TableName=T, Item=item(1, "new"))
    assert get(client, 1) == item(1, "old")  # what the server answered at the time
    assert get(client, 1) == item(1, "new")  # not the stale answer
    assert fake.ops() == ["get_item", "get_item", "put_item"]


def test_projected_reads_are_cached_apart_and_writes_replace_them(
    client: Any, fake: FakeDynamoDB
) -> None:
    fake.items[("K#1", "A")] = item(1, "one")
    projected = {"ProjectionExpression": "pk,v"}
    assert get(client, 1, **projected) == {"pk": {"S": "K#1"}, "v": {"S": "one"}}
    assert get(client, 1) == item(1, "one")  # not served from the projected entry
    assert get(client, 1, **projected) == {"pk": {"S": "K#1"}, "v": {"S": "one"}}
    client.put_item(TableName=T, Item=item(1, "two"))
    assert get(client, 1, **projected) == {"pk": {"S": "K#1"}, "v": {"S": "two"}}
    assert fake.ops() == ["get_item", "get_item", "put_item", "get_item"]


def test_item_cache_is_bounded_lru(fake: FakeDynamoDB, clock: Clock) -> None:
    client = CachingClient(fake, LocalCache(max_items=2, clock=clock))
    for n in (1, 2, 1, 3):  # 1 is used again, so 2 is the least recently used
        get(client, n)
    get(client, 1)
    get(client, 2)
    assert fake.ops() == ["get_item"] * 4  # 1, 2, 3, then 2 again
    assert client.cache.stats.evictions == 2


def test_zero_ttls_disable_each_cache(fake: FakeDynamoDB) -> None:
    client = CachingClient(fake, LocalCache(item_ttl=0, query_ttl=0))
    get(client, 1)
    get(client, 1)
    client.query(TableName=T)
    client.query(TableName=T)
    assert fake.ops() == ["get_item", "get_item", "query", "query"]


# -- query cache ------------------------------------------------------------------------------


def test_query_results_stay_until_their_ttl_even_after_writes(
    client: Any, fake: FakeDynamoDB, clock: Clock
) -> None:
    fake.items[("K#1", "A")] = item(1, "one")
    params = {"TableName": T, "KeyConditionExpression": "pk = :p"}
    assert client.query(**params)["Count"] == 1
    client.put_item(TableName=T, Item=item(2, "two"))  # through the cache: no invalidation
    assert client.query(**params)["Count"] == 1
    assert client.query(**params, ReturnConsumedCapacity="TOTAL")["ConsumedCapacity"] == {
        "TableName": T,
        "CapacityUnits": 0.0,
    }
    assert client.query(**params, Limit=5)["Count"] == 2  # another request: another entry
    clock.now += 61
    assert client.query(**params)["Count"] == 2
    assert fake.ops() == ["query", "put_item", "query", "query"]
    assert client.cache.stats.query_hits == 2


def test_consistent_queries_and_scans_bypass(client: Any, fake: FakeDynamoDB) -> None:
    for _ in range(2):
        client.query(TableName=T, ConsistentRead=True)
        client.scan(TableName=T, ConsistentRead=True)
    client.scan(TableName=T)
    client.scan(TableName=T)
    assert fake.ops() == ["query", "scan", "query", "scan", "scan"]


def test_query_cache_is_bounded(fake: FakeDynamoDB) -> None:
    client = CachingClient(fake, LocalCache(max_queries=1))
    client.query(TableName=T, Limit=1)
    client.query(TableName=T, Limit=2)
    client.query(TableName=T, Limit=1)
    assert fake.ops() == ["query"] * 3


# -- batches and transactions -----------------------------------------------------------------


def test_batch_get_sends_only_the_misses_and_merges(client: Any, fake: FakeDynamoDB) -> None:
    for n in (1, 2):
        fake.items[(f"K#{n}", "A")] = item(n, str(n))
    get(client, 1)
    fake.hold_back = {"K#3"}
    response = client.batch_get_item(RequestItems={T: {"Keys": [key(1), key(2), key(3), key(4)]}})
    assert sorted(i["v"]["S"] for i in response["Responses"][T]) == ["1", "2"]
    assert response["UnprocessedKeys"][T]["Keys"] == [key(3)]
    sent = fake.calls[-1][1]["RequestItems"][T]["Keys"]
    assert sent == [key(2), key(3), key(4)]  # key 1 came from the cache
    fake.items[("K#3", "A")] = item(3, "3")
    fake.items[("K#4", "A")] = item(4, "4")
    fake.hold_back = set()
    assert get(client, 4) is None  # cached as absent by the batch
    assert get(client, 3) == item(3, "3")  # unprocessed is not "absent"
    again = client.batch_get_item(
        RequestItems={T: {"Keys": [key(1), key(2)]}}, ReturnConsumedCapacity="TOTAL"
    )
    assert len(again["Responses"][T]) == 2 and again["UnprocessedKeys"] == {}
    assert again["ConsumedCapacity"] == [{"TableName": T, "CapacityUnits": 0.0}]
    assert fake.ops() == ["get_item", "batch_get_item", "get_item"]


def test_batch_get_consistent_bypasses(client: Any, fake: FakeDynamoDB) -> None:
    fake.items[("K#1", "A")] = item(1, "1")
    get(client, 1)
    client.batch_get_item(RequestItems={T: {"Keys": [key(1)], "ConsistentRead": True}})
    assert fake.ops() == ["get_item", "batch_get_item"]


def test_batch_write_updates_processed_keys_only(client: Any, fake: FakeDynamoDB) -> None:
    for n in (1, 2, 3):
        fake.items[(f"K#{n}", "A")] = item(n, "old")
        get(client, n)
    fake.hold_back = {"K#2"}
    client.batch_write_item(
        RequestItems={
            T: [
                {"PutRequest": {"Item": item(1, "new")}},
                {"PutRequest": {"Item": item(2, "new")}},
                {"DeleteRequest": {"Key": key(3)}},
            ]
        }
    )
    assert [get(client, n) for n in (1, 2, 3)] == [item(1, "new"), item(2, "old"), None]
    assert fake.ops().count("get_item") == 3  # all answered from the cache


def test_transactions(client: Any, fake: FakeDynamoDB) -> None:
    for n in (1, 2, 3):
        fake.items[(f"K#{n}", "A")] = item(n, "old")
        get(client, n)
    update = set_v(2, "new")
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": T, "Item": item(1, "new")}},
            {"Update": update},
            {"Delete": {"TableName": T, "Key": key(3)}},
        ]
    )
    assert [get(client, n) for n in (1, 2, 3)] == [item(1, "new"), item(2, "new"), None]
    assert fake.ops() == ["get_item"] * 3 + ["transact_write_items", "get_item"]  # 2: dropped
    client.transact_get_items(TransactItems=[{"Get": {"TableName": T, "Key": key(1)}}])
    client.transact_get_items(TransactItems=[{"Get": {"TableName": T, "Key": key(1)}}])
    assert fake.ops().count("transact_get_items") == 2


def test_other_operations_pass_through(client: Any, fake: FakeDynamoDB) -> None:
    assert client.describe_table(TableName=T) == {"Table": {"TableName": T}}
    assert fake.ops() == ["describe_table"]


# -- concurrency, async, settings --------------------------------------------------------------


def test_threads_share_one_cache_safely(fake: FakeDynamoDB) -> None:
    client = CachingClient(fake, LocalCache(max_items=50))
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for round_ in range(40):
                n = worker * 100 + round_ % 10
                client.put_item(TableName=T, Item=item(n, f"{worker}-{round_}"))
                assert get(client, n) == item(n, f"{worker}-{round_}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(client.cache) <= 50


class AsyncFake:
    def __init__(self, fake: FakeDynamoDB) -> None:
        self.fake = fake

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.fake, name)

        async def call(**params: Any) -> Any:
            return method(**params)

        return call


async def test_async_client_has_the_same_semantics(fake: FakeDynamoDB, cache: LocalCache) -> None:
    client = AsyncCachingClient(AsyncFake(fake), cache)
    fake.items[("K#1", "A")] = item(1, "one")
    assert (await client.get_item(TableName=T, Key=key(1)))["Item"] == item(1, "one")
    assert (await client.get_item(TableName=T, Key=key(1)))["Item"] == item(1, "one")
    await client.put_item(TableName=T, Item=item(1, "two"))
    assert (await client.get_item(TableName=T, Key=key(1)))["Item"] == item(1, "two")
    fake.fail_after_apply = "delete_item"
    with pytest.raises(RuntimeError):
        await client.delete_item(TableName=T, Key=key(1))
    assert await client.get_item(TableName=T, Key=key(1)) == {}
    assert fake.ops() == ["get_item", "put_item", "delete_item", "get_item"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"item_ttl": -1}, "item_ttl"),
        ({"query_ttl": "5"}, "query_ttl"),
        ({"max_items": 0}, "max_items"),
        ({"max_queries": 1.5}, "max_queries"),
    ],
)
def test_bad_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LocalCache(**kwargs)


def test_connection_puts_the_cache_in_front_of_data_calls_only(fake: FakeDynamoDB) -> None:
    cache = LocalCache()
    connection = Connection(client=fake, cache=cache)
    data = connection.client()
    # the connection's one middleware chain (the cache) in front of the plain client
    assert isinstance(data, Client) and data.client is fake and data.cache is cache
    assert data.middleware == (cache,)
    assert connection.client() is data  # built once
    assert connection.client(control=True) is fake
    assert Connection(client=fake).client() is fake  # nothing configured: the plain client
    with pytest.raises(ValidationError, match="LocalCache"):
        Connection(cache={"ttl": 5})  # type: ignore[arg-type]
