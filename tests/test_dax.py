"""DAX routing, error mapping and retry accounting, with a stand-in for a DAX cluster.

No DAX cluster exists here. `StandInDax` has the DAX client's interface and behaviour that
matters to dynamodel: the ten data operations only (table operations raise
NotImplementedError), ``ReturnValuesOnConditionCheckFailure`` is not sent on single-item
writes, errors are ``amazondax.DaxError.DaxServiceError`` objects with DAX's numeric codes and
transaction cancellation reasons on ``e.cancellation_reasons``, and retryable errors are
retried inside the client. Behind it is the local backend's DynamoDB.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from amazondax.DaxError import DaxClientError, DaxServiceError, DaxValidationError
from botocore.exceptions import ClientError
from shop_models import APP, Customer, Order, order

from dynamodel import (
    Attr,
    ConditionFailed,
    Connection,
    ItemNotFound,
    RetryPolicy,
    ServiceError,
    TableNotFound,
    ThrottledError,
    TransactionCanceled,
    ValidationError,
)
from dynamodel.core.errors import map_client_error, parse_reasons
from dynamodel.io.dax import (
    TABLE_OPERATIONS,
    DaxRouter,
    DaxRouting,
    LocalDax,
    internal_retries,
    uses_dax,
)
from dynamodel.io.middleware import AsyncClient, Client
from dynamodel.ops.transactions import TransactWrite

# DAX's numeric error codes for DynamoDB's errors (amazondax.DaxError.ERROR_MAP)
DAX_CODES = {
    "ProvisionedThroughputExceededException": [4, 37, 38, 39, 40],
    "ResourceNotFoundException": [4, 37, 38, 39, 41],
    "ConditionalCheckFailedException": [4, 37, 38, 39, 43],
    "ValidationException": [4, 37, 38, 39, 46],
    "InternalServerError": [4, 37, 38, 39, 47],
    "ThrottlingException": [4, 37, 38, 39, 50],
    "TransactionCanceledException": [4, 37, 38, 39, 58],
}


def dax_error(op: str, code: str, message: str, reasons: Any = None) -> DaxServiceError:
    return DaxServiceError(op, message, DAX_CODES[code], "req-1", None, 400, reasons)


class StandInDax:
    """The DAX client's interface and errors, in front of a DynamoDB client."""

    OPERATIONS = (
        "get_item",
        "put_item",
        "update_item",
        "delete_item",
        "query",
        "scan",
        "batch_get_item",
        "batch_write_item",
        "transact_get_items",
        "transact_write_items",
    )

    def __init__(self, dynamodb: Any, retries: int = 2) -> None:
        self.dynamodb = dynamodb
        self.retries = retries  # like AmazonDaxClient's Config(retries={"max_attempts": n})
        self.calls: Counter[str] = Counter()
        self.sends = 0
        self.throttle = False

    @property
    def _client_config(self) -> Any:
        return type("Config", (), {"retries": {"max_attempts": self.retries}})()

    def __getattr__(self, name: str) -> Any:
        if name in self.OPERATIONS:
            return lambda **params: self._call(name, params)
        if name in TABLE_OPERATIONS:
            raise NotImplementedError(f"{name}: table operations are not supported on DAX")
        raise AttributeError(name)

    def _call(self, op: str, params: dict[str, Any]) -> Any:
        self.calls[op] += 1
        if op in ("put_item", "update_item", "delete_item"):
            params.pop("ReturnValuesOnConditionCheckFailure", None)  # DAX does not send it
        for _ in range(1 + self.retries):  # DAX retries inside the call
            self.sends += 1
            if self.throttle:
                error = dax_error(op, "ThrottlingException", "Rate exceeded")
                continue
            try:
                return getattr(self.dynamodb, op)(**params)
            except ClientError as exc:
                error = self._as_dax_error(op, exc)
                if error.code != "ThrottlingException":
                    break
        raise error

    @staticmethod
    def _as_dax_error(op: str, exc: ClientError) -> DaxServiceError:
        code = exc.response["Error"]["Code"]
        message = exc.response["Error"].get("Message", "")
        reasons = exc.response.get("CancellationReasons")
        return dax_error(op, code, message, reasons)


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
async def dax(fresh_db: Any, ddb: Any) -> AsyncIterator[StandInDax]:
    """The shared table, created through a connection whose data calls go to the stand-in."""
    stand_in = StandInDax(ddb)
    connection = Connection(dax_client=stand_in, retry=RetryPolicy(base=0, cap=0))
    APP.bind(connection=connection)
    APP.create(poll=0.01)  # CreateTable goes to DynamoDB: the stand-in would raise
    yield stand_in
    await connection.aclose()
    connection.close()
    APP.unbind()


async def router_stats(io: Any) -> Any:
    connection = APP.connection
    router = connection.client() if io.name == "sync" else await connection.aclient()
    assert isinstance(router, AsyncClient if io.name == "async" else Client)
    (routing,) = router.middleware  # the connection's chain: DAX routing only
    assert isinstance(routing, DaxRouting) and router.stats is routing.stats
    return router.stats


def customer(name: str = "Ann") -> Customer:
    return Customer(customer_id="c1", name=name, email="ann@example.com")


# -- routing ------------------------------------------------------------------------------------


async def test_reads_and_writes_go_to_dax_consistent_reads_to_dynamodb(
    dax: StandInDax, io: Any
) -> None:
    await io.save(customer())
    await io.save(order(1))
    assert (await io.get(Customer, customer_id="c1")).name == "Ann"
    assert [o.order_id for o in await io.all(Order.query(customer_id="c1"))] == [1]
    assert (await io.get(Customer, customer_id="c1", consistent=True)).name == "Ann"
    consistent = Order.query(customer_id="c1").consistent()
    assert [o.order_id for o in await io.all(consistent)] == [1]
    assert (await io.describe_table(APP))["TableName"] == "app"
    assert dax.calls == Counter({"put_item": 2, "get_item": 1, "query": 1})
    stats = await router_stats(io)
    assert stats.dax == Counter({"put_item": 2, "get_item": 1, "query": 1})
    assert stats.dynamodb == Counter({"get_item": 1, "query": 1})  # the consistent reads


def test_uses_dax() -> None:
    assert uses_dax("get_item", {"TableName": "t"})
    assert not uses_dax("transact_get_items", {})  # DAX would only pass it through
    assert uses_dax("transact_write_items", {})
    assert not uses_dax("get_item", {"ConsistentRead": True})
    assert not uses_dax("query", {"ConsistentRead": True})
    assert uses_dax("batch_get_item", {"RequestItems": {"a": {"Keys": []}}})
    assert not uses_dax(
        "batch_get_item", {"RequestItems": {"a": {"Keys": []}, "b": {"ConsistentRead": True}}}
    )
    for op in ("create_table", "describe_table", "update_time_to_live", "list_tables"):
        assert not uses_dax(op, {})


def test_other_operations_and_attributes_go_to_dynamodb() -> None:
    class Dynamo:
        meta = "dynamodb meta"

        def describe_table(self, **params: Any) -> str:
            return "described"

    router = DaxRouter(StandInDax(None), Dynamo())
    assert router.describe_table(TableName="t") == "described"
    assert router.meta == "dynamodb meta"
    assert router.stats.dynamodb == Counter()  # only the data operations are counted


# -- errors --------------------------------------------------------------------------------------


async def test_condition_failures_carry_the_stored_item(dax: StandInDax, io: Any) -> None:
    await io.create(customer("Ann"))
    with pytest.raises(ConditionFailed) as caught:
        await io.create(customer("Bea"))  # a put: the router learns the key from DescribeTable
    assert caught.value.item is not None and caught.value.current.name == "Ann"
    with pytest.raises(ConditionFailed) as caught:
        await io.update_item(
            Customer, {"customer_id": "c1"}, [Attr("name").set("X")], condition=Attr("name") == "Z"
        )
    assert not isinstance(caught.value, ItemNotFound)  # the item exists: its condition failed
    assert caught.value.current.name == "Ann"
    with pytest.raises(ItemNotFound):
        await io.update_item(Customer, {"customer_id": "nobody"}, [Attr("name").set("X")])
    assert caught.value.retry_attempts == 2  # what DAX spent inside the call


async def test_transaction_cancellation_reasons_come_from_the_dax_error(
    dax: StandInDax, io: Any
) -> None:
    await io.save(customer("Ann"))
    tx = TransactWrite()
    tx.put(order(1))
    tx.update(customer(), Attr("visits").add(1), condition=Attr("name") == "Bea")
    with pytest.raises(TransactionCanceled) as caught:
        if io.name == "sync":
            tx.commit()
        else:
            await tx.acommit()
    assert [(r.index, r.code, r.action) for r in caught.value.reasons] == [
        (0, None, "put"),
        (1, "ConditionalCheckFailed", "update"),
    ]
    assert dax.calls["transact_write_items"] == 1


async def test_dax_retries_count_against_the_policy(dax: StandInDax, io: Any) -> None:
    dax.throttle = True
    with pytest.raises(ThrottledError) as caught:
        await io.get(Customer, customer_id="c1")
    # max_attempts=10 sends: each call to DAX is 3 sends (2 retries inside), so 4 calls
    assert (dax.calls["get_item"], dax.sends) == (4, 12)
    assert caught.value.retry_attempts == 2
    assert isinstance(caught.value.__cause__, DaxServiceError)


def test_internal_retries_read_from_the_dax_client() -> None:
    assert internal_retries(StandInDax(None, retries=5)) == 5
    assert internal_retries(object()) == 2  # the DAX client's default
    assert internal_retries(LocalDax(None)) == 0


@pytest.mark.parametrize(
    ("code", "kind", "mapped_code"),
    [
        ("ConditionalCheckFailedException", ConditionFailed, None),
        ("ResourceNotFoundException", TableNotFound, None),
        ("ValidationException", ValidationError, None),
        ("ThrottlingException", ThrottledError, None),
        ("ProvisionedThroughputExceededException", ThrottledError, None),
        ("InternalServerError", ServiceError, "InternalServerErrorException"),  # DAX's spelling
    ],
)
def test_dax_errors_map_like_dynamodb_errors(
    code: str, kind: type, mapped_code: str | None
) -> None:
    mapped = map_client_error(dax_error("GetItem", code, "boom"), "get_item")
    assert isinstance(mapped, kind) and mapped.code == (mapped_code or code)
    assert "boom" in str(mapped) and mapped.status == 400
    retryable = kind is ThrottledError or mapped_code is not None
    assert RetryPolicy().retryable(mapped) is retryable


def test_dax_specific_error_shapes() -> None:
    internal = DaxServiceError("GetItem", "oops", [3, 37, 54], None, None, 500)
    mapped = map_client_error(internal, "get_item")
    assert mapped is not None and mapped.code == "InternalServerErrorException"
    assert RetryPolicy().retryable(mapped)
    not_implemented = DaxServiceError("Scan", "no", [4, 37, 38, 44], None, None, 400)
    mapped = map_client_error(not_implemented, "scan")
    assert isinstance(mapped, ValidationError) and "NotImplementedException" in str(mapped)
    unknown = DaxServiceError("GetItem", "strange", [9, 9], None, None, 503)
    mapped = map_client_error(unknown, "get_item")
    assert isinstance(mapped, ServiceError) and mapped.code is None
    assert "[9, 9]" in str(mapped) and mapped.status == 503 and RetryPolicy().retryable(mapped)
    client_side = map_client_error(DaxValidationError("bad key"), "get_item")
    assert isinstance(client_side, ValidationError) and "bad key" in str(client_side)
    limit = map_client_error(DaxClientError("slow down", "RequestLimitExceededException"), "x")
    assert isinstance(limit, ThrottledError)


def test_cancellation_reason_shapes() -> None:
    reasons = parse_reasons(
        [
            {"Code": "None"},
            {"code": "ConditionalCheckFailed", "message": "failed", "item": {"a": {"S": "b"}}},
            [None, "TransactionConflict", "conflict"],
            ({"pk": {"S": "x"}}, "ConditionalCheckFailed", "again"),
            None,
        ]
    )
    assert [(r.code, r.message) for r in reasons] == [
        (None, None),
        ("ConditionalCheckFailed", "failed"),
        ("TransactionConflict", "conflict"),
        ("ConditionalCheckFailed", "again"),
        (None, None),
    ]
    assert reasons[1].item == {"a": {"S": "b"}} and reasons[3].item == {"pk": {"S": "x"}}


# -- LocalDax, configuration, imports ----------------------------------------------------------


async def test_local_dax_stands_in_for_a_cluster(fresh_db: Any, ddb: Any, io: Any) -> None:
    local = LocalDax(ddb)
    connection = Connection(dax_client=local)
    APP.bind(connection=connection)
    try:
        await io.create_table(APP, poll=0.01)  # LocalDax refuses table operations
        await io.get_or_none(Customer, customer_id="c1")
        await io.save(customer("Ann"))
        assert (await io.get(Customer, customer_id="c1")).name == "Ann"  # item cache hit
        with pytest.raises(ConditionFailed) as caught:
            await io.create(customer("Bea"))
        assert caught.value.current.name == "Ann"  # filled in by the router
    finally:
        await connection.aclose()
        connection.close()
        APP.unbind()
    assert local.calls == Counter({"get_item": 2, "put_item": 2})
    assert (local.stats.item_misses, local.stats.item_hits) == (1, 1)
    with pytest.raises(NotImplementedError, match="not supported on DAX"):
        local.create_table(TableName="x")


async def test_an_unreachable_cluster_fails_only_the_calls_dax_serves(
    fresh_db: Any, ddb: Any, io: Any
) -> None:
    """A real DAX client for an endpoint where nothing listens: the calls DynamoDB serves
    (consistent reads, transaction gets, writes' stored-item reads, table operations) still
    work; only the calls DAX serves fail, with the DAX client's error."""
    from dynamodel.ops.transactions import TransactGet

    APP.create(poll=0.01)
    await io.save(customer())
    outage = Connection(
        endpoint_url=fresh_db.endpoint_url,
        region="us-east-1",
        dax_endpoints="dax://127.0.0.1:9",  # the discard port: nothing answers
        retry=RetryPolicy(base=0, cap=0, max_attempts=1),
    )
    APP.bind(connection=outage)
    try:
        assert (await io.get(Customer, customer_id="c1", consistent=True)).name == "Ann"
        assert (await io.describe_table(APP))["TableName"] == "app"
        consistent = Customer.query(customer_id="c1").consistent()
        assert [c.name for c in await io.all(consistent)] == ["Ann"]
        get = TransactGet(connection=outage)
        ref = get.get(Customer, customer_id="c1")
        if io.name == "sync":
            get.execute()
        else:
            await get.aexecute()
        assert ref.require().name == "Ann"
        with pytest.raises(ServiceError, match="NoRouteException"):
            await io.get(Customer, customer_id="c1")  # eventually consistent: DAX's
    finally:
        await outage.aclose()
        outage.close()
        APP.unbind()


def test_connection_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="not both"):
        Connection(dax_endpoints=["dax://a"], dax_client=object())
    with pytest.raises(ValidationError, match="invalid endpoint"):
        Connection(dax_endpoints=[""])
    connection = Connection(dax_endpoints="daxs://my-cluster.abc.dax-clusters.eu-west-1:9111")
    assert connection.dax_endpoints == ["daxs://my-cluster.abc.dax-clusters.eu-west-1:9111"]
    assert connection.uses_dax and "dax=" in repr(connection)


def test_amazondax_is_imported_only_when_a_dax_client_is_created() -> None:
    code = (
        "import sys, dynamodel, dynamodel.io.dax\n"
        "from dynamodel import Connection\n"
        "Connection(dax_endpoints=['dax://example:8111'])\n"
        "assert 'amazondax' not in sys.modules, sorted(m for m in sys.modules if 'dax' in m)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
