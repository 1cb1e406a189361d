"""Table management against the local DynamoDB (sync and async): create with GSIs, an LSI, TTL
and PITR, describe, delete, and per-environment physical names with ``Table.bind``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import SyncIO
from shop_models import APP, Customer, Order, order

from dynamodel import GSI, LSI, Attr, DynamodelError, Provisioned, Table, TableNotFound
from dynamodel.local import LocalDynamoDB

pytestmark = pytest.mark.usefixtures("fresh_db")


def _key_schema(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in schema]


async def test_create_with_indexes_ttl_and_pitr(io: SyncIO, ddb: Any, backend_name: str) -> None:
    description = await io.create_table(APP, poll=0.01)
    assert description["TableName"] == "app"
    assert description["TableStatus"] == "ACTIVE"

    table = ddb.describe_table(TableName="app")["Table"]
    assert _key_schema(table["KeySchema"]) == [("pk", "HASH"), ("sk", "RANGE")]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    definitions = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
    assert definitions == {
        k: "S" for k in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "lsi1sk")
    }
    gsis = {g["IndexName"]: g for g in table["GlobalSecondaryIndexes"]}
    assert set(gsis) == {"gsi1", "gsi2"}
    assert _key_schema(gsis["gsi1"]["KeySchema"]) == [("gsi1pk", "HASH"), ("gsi1sk", "RANGE")]
    assert _key_schema(gsis["gsi2"]["KeySchema"]) == [("gsi2pk", "HASH"), ("gsi2sk", "RANGE")]
    assert all(g["Projection"]["ProjectionType"] == "ALL" for g in gsis.values())
    assert all(g["IndexStatus"] == "ACTIVE" for g in gsis.values())
    (lsi,) = table["LocalSecondaryIndexes"]
    assert lsi["IndexName"] == "lsi1"
    assert _key_schema(lsi["KeySchema"]) == [("pk", "HASH"), ("lsi1sk", "RANGE")]

    ttl = ddb.describe_time_to_live(TableName="app")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    if backend_name == "dynoxide":
        # dynoxide has no backups API: create() warns and skips PITR (docs/local.md)
        with pytest.raises(ClientError, match="UnknownOperationException"):
            ddb.describe_continuous_backups(TableName="app")
    else:
        backups = ddb.describe_continuous_backups(TableName="app")["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"

    assert (await io.describe_table(APP))["TableName"] == "app"


async def test_create_exist_ok_and_conflict(io: SyncIO) -> None:
    await io.create_table(APP, poll=0.01)
    again = await io.create_table(APP, exist_ok=True, poll=0.01)
    assert again["TableName"] == "app"
    with pytest.raises(DynamodelError) as info:
        await io.create_table(APP, poll=0.01)
    assert info.value.code == "ResourceInUseException"


async def test_delete_table(io: SyncIO, ddb: Any) -> None:
    await io.create_table(APP, poll=0.01)
    await io.delete_table(APP)
    assert "app" not in ddb.list_tables()["TableNames"]
    with pytest.raises(TableNotFound):
        await io.delete_table(APP)
    await io.delete_table(APP, missing_ok=True)
    with pytest.raises(TableNotFound):
        await io.describe_table(APP)


async def test_provisioned_table_with_stream_and_tags(
    io: SyncIO, ddb: Any, backend_name: str
) -> None:
    table = Table(
        "provisioned-stream",
        indexes=[
            GSI("gsi1", pk="gsi1pk", projection=["email"]),
            LSI("lsi1", sk="lsi1sk", projection="KEYS_ONLY"),
        ],
        billing=Provisioned(read=3, write=4),
        stream="NEW_AND_OLD_IMAGES",
        tags={"team": "core"},
    )
    await io.create_table(table, poll=0.01)
    described = ddb.describe_table(TableName="provisioned-stream")["Table"]
    assert described["ProvisionedThroughput"]["ReadCapacityUnits"] == 3
    assert described["ProvisionedThroughput"]["WriteCapacityUnits"] == 4
    assert described["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    (gsi,) = described["GlobalSecondaryIndexes"]
    assert gsi["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["email"]}
    assert gsi["ProvisionedThroughput"]["ReadCapacityUnits"] == 3
    (lsi,) = described["LocalSecondaryIndexes"]
    assert lsi["Projection"]["ProjectionType"] == "KEYS_ONLY"
    tags = ddb.list_tags_of_resource(ResourceArn=described["TableArn"])["Tags"]
    assert tags == [{"Key": "team", "Value": "core"}]
    ttl = ddb.describe_time_to_live(TableName="provisioned-stream")["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "DISABLED"


# -- per-environment physical names -----------------------------------------------------------


@pytest.fixture
def unbind_app() -> Iterator[None]:
    yield
    APP.unbind()


@pytest.mark.usefixtures("unbind_app")
async def test_bind_name_per_environment_without_redefining_models(io: SyncIO, ddb: Any) -> None:
    for env in ("staging", "prod"):
        APP.bind(name=f"app-{env}")
        await io.create_table(APP, poll=0.01)
        await io.save(Customer(customer_id="c1", name=env, email=f"{env}@example.com"))
        await io.save(order(1, customer_id="c1", note=env))
    assert sorted(ddb.list_tables()["TableNames"]) == ["app-prod", "app-staging"]
    assert (
        ddb.describe_time_to_live(TableName="app-staging")["TimeToLiveDescription"]["AttributeName"]
        == "expires_at"
    )

    for env in ("staging", "prod"):
        APP.bind(name=f"app-{env}")
        assert APP.physical_name == f"app-{env}"
        assert (await io.get(Customer, customer_id="c1")).name == env
        orders = await io.all(Order.query(customer_id="c1"))
        assert [o.note for o in orders] == [env]
        assert await io.count(Order.scan()) == 1
        updated = await io.update(orders[0], Attr("status").set(f"{env}-shipped"))
        assert [
            o.order_id for o in await io.all(Order.query(index="gsi1", status=f"{env}-shipped"))
        ] == [updated.order_id]
        raw = ddb.get_item(TableName=f"app-{env}", Key=orders[0].item_key())["Item"]
        assert raw["status"] == {"S": f"{env}-shipped"}

    APP.unbind()
    assert APP.physical_name == "app"
    with pytest.raises(TableNotFound):
        await io.get(Customer, customer_id="c1")


@pytest.mark.usefixtures("unbind_app")
async def test_bind_connection_endpoint(io: SyncIO, local_env: LocalDynamoDB) -> None:
    APP.bind(name="app-explicit", endpoint_url=local_env.endpoint_url, region="us-east-1")
    assert APP.connection.endpoint_url == local_env.endpoint_url
    try:
        await io.create_table(APP, poll=0.01)
        await io.save(Customer(customer_id="c1", name="Ann", email="a@example.com"))
        assert (await io.get(Customer, customer_id="c1")).name == "Ann"
    finally:
        await APP.connection.aclose()
        APP.connection.close()
