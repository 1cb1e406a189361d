"""The lean clients against the local DynamoDB (moto or dynoxide): the same requests give
the same responses and errors as boto3's client, field by field, and dynamodel's flows (CRUD,
conditions, pagination, batches with unprocessed items, transactions, binary values, table
management) work through a connection built on them, sync and async."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import SyncIO
from pydantic import Field
from shop_models import APP, T0, Customer, Order, order

from dynamodel import (
    Attr,
    Collection,
    ConditionFailed,
    Connection,
    Model,
    RetryPolicy,
    Table,
    TableNotFound,
    TransactionCanceled,
)
from dynamodel.io.lean import AsyncLeanClient, LeanClient, create_async_client, create_client
from dynamodel.ops.batch import Key, abatch_get, batch_get, batch_write
from dynamodel.ops.transactions import TransactWrite
from dynamodel.testing import FaultInjector

# -- the same responses as boto3 ---------------------------------------------------------------

ITEM = {
    "pk": {"S": "CUSTOMER#b1"},
    "sk": {"S": "PROFILE"},
    "blob": {"B": b"\x00\x01\xfe\xff"},
    "blobs": {"BS": [b"a", b"\x00"]},
    "n": {"N": "12345678901234567890.123456789"},
    "ns": {"NS": ["1", "2.5"]},
    "ss": {"SS": ["x", "y"]},
    "l": {"L": [{"S": "a"}, {"B": b"\x07"}, {"NULL": True}]},
    "m": {"M": {"B": {"S": "an attribute named B"}, "flag": {"BOOL": False}}},
}
KEY = {"pk": {"S": "CUSTOMER#b1"}, "sk": {"S": "PROFILE"}}


def order_item(n: int) -> dict[str, Any]:
    return {
        "pk": {"S": "CUSTOMER#q"},
        "sk": {"S": f"ORDER#{n:03d}"},
        "n": {"N": str(n)},
        "raw": {"B": bytes([n])},
    }


def script() -> list[tuple[str, dict[str, Any]]]:
    """Requests covering every data-plane operation, their options and their errors."""
    steps: list[tuple[str, dict[str, Any]]] = [
        ("put_item", {"TableName": "app", "Item": ITEM, "ReturnConsumedCapacity": "TOTAL"}),
        ("put_item", {"TableName": "app", "Item": ITEM, "ReturnValues": "ALL_OLD"}),
        ("get_item", {"TableName": "app", "Key": KEY, "ConsistentRead": True}),
        ("get_item", {"TableName": "app", "Key": {"pk": {"S": "nope"}, "sk": {"S": "x"}}}),
        (
            "get_item",
            {
                "TableName": "app",
                "Key": KEY,
                "ProjectionExpression": "#b, m.#B",
                "ExpressionAttributeNames": {"#b": "blob", "#B": "B"},
            },
        ),
        (
            "update_item",
            {
                "TableName": "app",
                "Key": KEY,
                "UpdateExpression": "SET #c = :one ADD blobs :more",
                "ExpressionAttributeNames": {"#c": "count"},
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":more": {"BS": [b"z"]}},
                "ReturnValues": "ALL_NEW",
            },
        ),
        (
            "put_item",
            {
                "TableName": "app",
                "Item": ITEM,
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        ),
        (
            "update_item",
            {"TableName": "app", "Key": KEY, "UpdateExpression": "SET = oops"},
        ),
        ("get_item", {"TableName": "missing-table", "Key": KEY}),
        (
            "batch_write_item",
            {"RequestItems": {"app": [{"PutRequest": {"Item": order_item(n)}} for n in range(25)]}},
        ),
    ]
    query = {
        "TableName": "app",
        "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
        "ExpressionAttributeValues": {":p": {"S": "CUSTOMER#q"}, ":s": {"S": "ORDER#"}},
        "Limit": 10,
    }
    steps += [
        ("query", query),
        (
            "query",
            {**query, "ExclusiveStartKey": {"pk": {"S": "CUSTOMER#q"}, "sk": {"S": "ORDER#009"}}},
        ),
        (
            "query",
            {
                **query,
                "ScanIndexForward": False,
                "FilterExpression": "n > :ten",
                "ExpressionAttributeValues": {
                    **query["ExpressionAttributeValues"],
                    ":ten": {"N": "10"},
                },
            },
        ),
        ("scan", {"TableName": "app", "Limit": 5, "Select": "COUNT"}),
        (
            "batch_get_item",
            {
                "RequestItems": {
                    "app": {
                        "Keys": [KEY, {"pk": {"S": "nope"}, "sk": {"S": "x"}}],
                        "ConsistentRead": True,
                    }
                }
            },
        ),
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {"Put": {"TableName": "app", "Item": order_item(90)}},
                    {
                        "ConditionCheck": {
                            "TableName": "app",
                            "Key": KEY,
                            "ConditionExpression": "attribute_not_exists(pk)",
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                ]
            },
        ),
        (
            "transact_write_items",
            {
                "TransactItems": [{"Put": {"TableName": "app", "Item": order_item(91)}}],
                "ClientRequestToken": "lean-token-1",
            },
        ),
        (
            "transact_get_items",
            {
                "TransactItems": [
                    {"Get": {"TableName": "app", "Key": KEY}},
                    {"Get": {"TableName": "app", "Key": {"pk": {"S": "nope"}, "sk": {"S": "x"}}}},
                ]
            },
        ),
        (
            "delete_item",
            {
                "TableName": "app",
                "Key": KEY,
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        ),
        ("delete_item", {"TableName": "app", "Key": KEY, "ReturnValues": "ALL_OLD"}),
    ]
    return steps


def outcome(response: Any) -> dict[str, Any]:
    """A response or error, without the per-request parts (request id, date, crc)."""
    if isinstance(response, ClientError):
        body = dict(response.response)
        kind = type(response).__name__
    else:
        body = dict(response)
        kind = "ok"
    meta = body.pop("ResponseMetadata")
    return {
        "kind": kind,
        "body": body,
        "status": meta["HTTPStatusCode"],
        "retries": meta["RetryAttempts"],
        "has_request_id": bool(meta.get("RequestId")),
        "content_type": meta["HTTPHeaders"].get("content-type"),
    }


def run_sync(client: Any) -> list[dict[str, Any]]:
    out = []
    for method, params in script():
        try:
            out.append(outcome(getattr(client, method)(**params)))
        except ClientError as error:
            out.append(outcome(error))
    return out


async def run_async(client: Any) -> list[dict[str, Any]]:
    out = []
    for method, params in script():
        try:
            out.append(outcome(await getattr(client, method)(**params)))
        except ClientError as error:
            out.append(outcome(error))
    return out


def reset_app(backend: Any) -> None:
    backend.reset()
    APP.create(poll=0.01)


@pytest.fixture
def boto3_client(local_env: Any) -> Iterator[Any]:
    """A real boto3 client (the default connection's may be lean when the suite switches)."""
    import boto3

    client = boto3.session.Session().client("dynamodb")
    yield client
    client.close()


async def test_every_data_operation_answers_as_boto3_does(fresh_db: Any, boto3_client: Any) -> None:
    APP.create(poll=0.01)
    expected = run_sync(boto3_client)
    kinds = [e["kind"] for e in expected]
    assert kinds == ["ok"] * 6 + [
        "ConditionalCheckFailedException",
        "ClientError",  # ValidationException has no modeled class, in boto3 either
        "ResourceNotFoundException",
        *["ok"] * 6,
        "TransactionCanceledException",
        "ok",
        "ok",
        "ConditionalCheckFailedException",
        "ok",
    ]
    assert expected[7]["body"]["Error"]["Code"] == "ValidationException"
    reasons = next(e for e in expected if e["kind"] == "TransactionCanceledException")["body"]
    assert reasons["CancellationReasons"][1]["Item"]["blob"] == {"B": b"\x00\x01\xfe\xff"}

    reset_app(fresh_db)
    client = create_client()
    got = run_sync(client)
    for step, (theirs, ours) in enumerate(zip(expected, got, strict=True)):
        assert ours == theirs, f"step {step}: {script()[step][0]}"
    client.close()

    reset_app(fresh_db)
    aclient = create_async_client()
    got = await run_async(aclient)
    for step, (theirs, ours) in enumerate(zip(expected, got, strict=True)):
        assert ours == theirs, f"async step {step}: {script()[step][0]}"
    await aclient.aclose()


async def test_control_plane_calls_go_through_botocore(fresh_db: Any, boto3_client: Any) -> None:
    client = create_client()
    aclient = create_async_client()
    spec = {
        "TableName": "lean-control",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    created = client.create_table(**spec)["TableDescription"]
    assert isinstance(created["CreationDateTime"], dt.datetime)  # botocore's typed parsing
    described = (await aclient.describe_table(TableName="lean-control"))["Table"]
    assert described == boto3_client.describe_table(TableName="lean-control")["Table"]
    assert "lean-control" in client.list_tables()["TableNames"]  # any other operation
    pages = client.get_paginator("list_tables").paginate()
    assert any("lean-control" in page["TableNames"] for page in pages)
    with pytest.raises(client.exceptions.ResourceInUseException):
        client.create_table(**spec)  # the lean client's own class, from the botocore path
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        await aclient.describe_table(TableName="no-such-table")
    with pytest.raises(AttributeError):
        client.no_such_operation  # noqa: B018
    client.close()
    await aclient.aclose()


# -- dynamodel through a lean connection ---------------------------------------------------------


@pytest.fixture
async def lean(table: Table) -> AsyncIterator[Connection]:
    """The shared ``app`` table bound to a connection whose clients are lean."""
    client, aclient = LeanClient(), AsyncLeanClient()
    connection = Connection(client=client, aclient=aclient)
    APP.bind(connection=connection)
    yield connection
    APP.unbind()
    client.close()
    await aclient.aclose()


async def test_crud_and_conditions(io: SyncIO, lean: Connection, ddb: Any) -> None:
    customer = Customer(customer_id="c1", name="Ann", email="ann@example.com", tags={"vip"})
    await io.save(customer)
    assert await io.get(Customer, customer_id="c1") == customer
    stored = ddb.get_item(TableName="app", Key=customer.item_key())["Item"]
    assert stored["gsi1pk"] == {"S": "EMAIL#ann@example.com"}  # boto3 reads what lean wrote
    updated = await io.update(customer, Attr("visits").add(2), Attr("status").set("gold"))
    assert (updated.visits, updated.status) == (2, "gold")
    with pytest.raises(ConditionFailed) as info:
        await io.create(customer)  # already exists
    assert info.value.current == updated  # the stored item came back with the error
    with pytest.raises(ConditionFailed):
        await io.delete(updated, condition=Attr("visits") > 5)
    await io.delete(updated)
    assert await io.get_or_none(Customer, customer_id="c1") is None


async def test_query_pages_and_collections(io: SyncIO, lean: Connection) -> None:
    orders = [order(n) for n in range(1, 26)]
    for o in orders:
        await io.save(o)
    await io.save(Customer(customer_id="c1", name="Ann", email="ann@example.com"))
    pages = await io.pages(Order.query(customer_id="c1").page_size(4))
    assert [len(p.items) for p in pages] == [4] * 6 + [1]
    assert [o for p in pages for o in p.items] == orders
    assert await io.count(Order.query(customer_id="c1")) == 25
    shipped = await io.all(Order.query(customer_id="c1").filter(Attr("total_cents") > 2000))
    assert [o.order_id for o in shipped] == [21, 22, 23, 24, 25]
    result = await io.fetch(Collection(Customer, Order), customer_id="c1")
    assert len(result.items) == 26


async def test_batches_survive_unprocessed_items(io: SyncIO, lean: Connection) -> None:
    if io.name == "sync":
        injector = FaultInjector(lean.client(), seed=3, unprocessed=0.4)
        faulty = Connection(client=injector, retry=RetryPolicy(base=0.001, max_attempts=50))
    else:
        injector = FaultInjector(await lean.aclient(), seed=3, unprocessed=0.4)
        faulty = Connection(aclient=injector, retry=RetryPolicy(base=0.001, max_attempts=50))
    orders = [order(n) for n in range(1, 61)]
    writer = batch_write(connection=faulty).put(*orders)
    result = writer.flush() if io.name == "sync" else await writer.aflush()
    assert len(result.written) == 60 and result.unprocessed_retries > 0
    keys = [Key.of(o) for o in orders] + [Key(Order, customer_id="c1", order_id=0, placed_at=T0)]
    if io.name == "sync":
        found = batch_get(keys, connection=faulty)
    else:
        found = await abatch_get(keys, connection=faulty)
    assert found.items == orders and len(found.missing) == 1
    assert injector.stats.unprocessed > 0


async def test_transactions_report_their_cancellation_reasons(io: SyncIO, lean: Connection) -> None:
    customer = Customer(customer_id="c1", name="Ann", email="ann@example.com", visits=1)
    await io.save(customer)
    tx = TransactWrite()
    tx.put(order(1))
    tx.update(customer, Attr("visits").add(1), condition=Attr("visits") > 10)
    with pytest.raises(TransactionCanceled) as info:
        tx.commit() if io.name == "sync" else await tx.acommit()
    [failed] = info.value.failed
    assert (failed.index, failed.code, failed.model) == (1, "ConditionalCheckFailed", Customer)
    assert failed.current == customer
    first = order(1)
    key = {"customer_id": "c1", "order_id": 1, "placed_at": first.placed_at}
    assert await io.get_or_none(Order, **key) is None
    ok = TransactWrite()
    ok.put(order(1))
    ok.update(customer, Attr("visits").add(1))
    ok.commit() if io.name == "sync" else await ok.acommit()
    assert (await io.get(Customer, customer_id="c1")).visits == 2


FILES = Table("lean-files")


class Blob(Model):
    class Meta:
        table = FILES
        pk = "FILE#{name}"
        sk = "DATA"

    name: str
    data: bytes
    chunks: set[bytes] = Field(default_factory=set)
    parts: list[bytes] = Field(default_factory=list)


@pytest.fixture
async def files(fresh_db: Any) -> AsyncIterator[Connection]:
    client, aclient = LeanClient(), AsyncLeanClient()
    connection = Connection(client=client, aclient=aclient)
    FILES.bind(connection=connection)
    FILES.create(poll=0.01)  # through the lean client's control plane
    yield connection
    FILES.unbind()
    client.close()
    await aclient.aclose()


async def test_binary_values_round_trip(io: SyncIO, files: Connection, ddb: Any) -> None:
    blob = Blob(
        name="a.bin",
        data=bytes(range(256)),
        chunks={b"\x00", b"\xff" * 3, b"B"},
        parts=[b"", b"\x01\x02"],
    )
    await io.save(blob)
    assert await io.get(Blob, name="a.bin") == blob
    raw = ddb.get_item(TableName="lean-files", Key=blob.item_key())["Item"]
    assert raw["data"] == {"B": bytes(range(256))}  # boto3 reads the same bytes
    assert sorted(raw["chunks"]["BS"]) == sorted(blob.chunks)
    found = await io.all(Blob.query(name="a.bin").filter(Attr("data") == bytes(range(256))))
    assert found == [blob]


async def test_table_management_through_a_lean_connection(io: SyncIO, fresh_db: Any) -> None:
    client, aclient = LeanClient(), AsyncLeanClient()
    table = Table("lean-managed", ttl="expires_at").bind(
        connection=Connection(client=client, aclient=aclient)
    )
    description = await io.create_table(table, poll=0.01)
    assert description["TableStatus"] == "ACTIVE"
    assert (await io.describe_table(table))["TableName"] == "lean-managed"
    await io.delete_table(table)
    with pytest.raises(TableNotFound):
        await io.describe_table(table)
    client.close()
    await aclient.aclose()


def test_endpoint_and_credentials_come_from_the_environment(local_env: Any) -> None:
    client = create_client()
    assert client.meta.endpoint_url == local_env.endpoint_url
    assert client.meta.region_name == local_env.env()["AWS_DEFAULT_REGION"]
    assert "TableNames" in client.list_tables()
    client.close()
