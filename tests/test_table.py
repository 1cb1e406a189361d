"""Unit tests for Table declarations (CreateTable requests, follow-ups, binding) and for the
errors a model definition reports."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import Field

from dynamodel import GSI, LSI, Connection, Model, Provisioned, Table, ValidationError
from dynamodel.core.flows import Request

# -- CreateTable requests -----------------------------------------------------------------------


def test_minimal_table_request() -> None:
    assert Table("users").create_table_request() == {
        "TableName": "users",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "TableClass": "STANDARD",
    }
    assert Table("users").follow_up_requests() == []


def test_partition_only_table() -> None:
    assert Table("counters", pk="id", sk=None).create_table_request() == {
        "TableName": "counters",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
        "TableClass": "STANDARD",
    }


def test_on_demand_table_with_everything() -> None:
    table = Table(
        "shop",
        indexes=[
            GSI("gsi1", pk="gsi1pk", sk="gsi1sk"),
            GSI("by_tenant", pk="tenant", projection="KEYS_ONLY"),
            LSI("lsi1", sk="lsi1sk", projection=["total", "status"]),
            GSI("gsi2", pk="gsi1pk", sk="gsi2sk", projection=["email"]),
        ],
        stream="NEW_AND_OLD_IMAGES",
        table_class="STANDARD_INFREQUENT_ACCESS",
        deletion_protection=True,
        tags={"team": "core", "env": "test"},
    )
    assert table.create_table_request() == {
        "TableName": "shop",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "gsi1pk", "AttributeType": "S"},
            {"AttributeName": "gsi1sk", "AttributeType": "S"},
            {"AttributeName": "tenant", "AttributeType": "S"},
            {"AttributeName": "lsi1sk", "AttributeType": "S"},
            {"AttributeName": "gsi2sk", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "by_tenant",
                "KeySchema": [{"AttributeName": "tenant", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": "gsi2",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi2sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["email"]},
            },
        ],
        "LocalSecondaryIndexes": [
            {
                "IndexName": "lsi1",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "lsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {
                    "ProjectionType": "INCLUDE",
                    "NonKeyAttributes": ["total", "status"],
                },
            }
        ],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        "TableClass": "STANDARD_INFREQUENT_ACCESS",
        "DeletionProtectionEnabled": True,
        "Tags": [{"Key": "team", "Value": "core"}, {"Key": "env", "Value": "test"}],
    }


def test_provisioned_table_and_index_capacity() -> None:
    table = Table(
        "prov",
        billing=Provisioned(read=5, write=7),
        indexes=[
            GSI("gsi1", pk="gsi1pk", sk="gsi1sk"),
            GSI("gsi2", pk="gsi2pk", capacity=Provisioned(1, 2)),
        ],
    )
    request = table.create_table_request()
    assert request["BillingMode"] == "PROVISIONED"
    assert request["ProvisionedThroughput"] == {"ReadCapacityUnits": 5, "WriteCapacityUnits": 7}
    gsi1, gsi2 = request["GlobalSecondaryIndexes"]
    assert gsi1["ProvisionedThroughput"] == {"ReadCapacityUnits": 5, "WriteCapacityUnits": 7}
    assert gsi2["ProvisionedThroughput"] == {"ReadCapacityUnits": 1, "WriteCapacityUnits": 2}
    assert "StreamSpecification" not in request
    assert "Tags" not in request
    assert "DeletionProtectionEnabled" not in request


def test_on_demand_indexes_carry_no_capacity() -> None:
    table = Table("on-demand", indexes=[GSI("gx1", pk="a", capacity=Provisioned(1, 1))])
    (gsi,) = table.create_table_request()["GlobalSecondaryIndexes"]
    assert "ProvisionedThroughput" not in gsi


def test_follow_up_requests_ttl_and_pitr() -> None:
    table = Table("ttl-pitr", ttl="expires_at", point_in_time_recovery=True)
    assert table.follow_up_requests() == [
        Request(
            "update_time_to_live",
            {
                "TableName": "ttl-pitr",
                "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "expires_at"},
            },
            control=True,
        ),
        Request(
            "update_continuous_backups",
            {
                "TableName": "ttl-pitr",
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            },
            control=True,
        ),
    ]
    assert Table("only-ttl", ttl="exp").follow_up_requests()[0].op == "update_time_to_live"
    assert len(Table("only-pitr", point_in_time_recovery=True).follow_up_requests()) == 1


def test_bind_sets_the_physical_name_everywhere() -> None:
    table = Table("logical", ttl="exp", point_in_time_recovery=True)
    try:
        assert table.bind(name="prod-logical") is table
        assert table.physical_name == "prod-logical"
        assert table.name == "logical"
        assert table.create_table_request()["TableName"] == "prod-logical"
        assert {r.params["TableName"] for r in table.follow_up_requests()} == {"prod-logical"}
        with pytest.raises(ValidationError):
            table.bind(name="x")
    finally:
        table.unbind()
    assert table.physical_name == "logical"


def test_bind_connection() -> None:
    table = Table("bound")
    sentinel = object()
    table.bind(client=sentinel)
    try:
        assert table.connection.client() is sentinel
        conn = Connection(client=sentinel)
        table.bind(connection=conn)
        assert table.connection is conn
    finally:
        table.unbind()
    assert table.connection is not conn


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "ab"},
        {"name": "bad name"},
        {"name": "x" * 256},
        {"name": "ok-name", "indexes": [GSI("g!", pk="a")]},
        {"name": "ok-name", "indexes": [GSI("gsi1", pk="a"), GSI("gsi1", pk="b")]},
        {"name": "ok-name", "indexes": [LSI(f"lsi{i}", sk=f"s{i}") for i in range(6)]},
        {"name": "ok-name", "indexes": [GSI(f"gsi{i}", pk=f"p{i}") for i in range(21)]},
        {"name": "ok-name", "sk": None, "indexes": [LSI("lsi1", sk="s")]},
        {"name": "ok-name", "billing": "PROVISIONED"},
    ],
)
def test_bad_table_declarations(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Table(**kwargs)


def test_bad_projection_refused() -> None:
    with pytest.raises(ValidationError, match="projection"):
        Table("proj", indexes=[GSI("gx1", pk="x", projection="SOME")]).create_table_request()  # type: ignore[arg-type]


def test_index_keys() -> None:
    table = Table("index-keys", indexes=[GSI("ggg", pk="gp", sk="gs"), LSI("lll", sk="ls")])
    assert (table.index_keys(None).pk, table.index_keys(None).sk) == ("pk", "sk")
    assert (table.index_keys("ggg").pk, table.index_keys("ggg").sk) == ("gp", "gs")
    assert (table.index_keys("lll").pk, table.index_keys("lll").sk) == ("pk", "ls")
    with pytest.raises(ValidationError, match="no index 'nope'"):
        table.index_keys("nope")


# -- model definition errors ----------------------------------------------------------------------

DEFS = Table(
    "defs",
    indexes=[
        GSI("gsi1", pk="gsi1pk", sk="gsi1sk"),
        GSI("gsi2", pk="g2pk"),
        LSI("lsi1", sk="lsi1sk"),
    ],
)
NO_SK = Table("defs-nosk", sk=None)


def test_valid_model_spec() -> None:
    class Good(Model):
        class Meta:
            table = DEFS
            entity = "good"
            pk = "G#{a}"
            sk = "G#{b}"
            indexes = {"gsi1": ("X#{c}", "Y#{a}"), "gsi2": "Z#{b}", "lsi1": "L#{c}"}

        a: str
        b: int
        c: str | None = None

    spec = Good.__dynamodel__
    assert Good.entity_type() == "good"
    assert DEFS.entities["good"] is Good
    assert spec.key_fields == ("a", "b")
    assert spec.indexes["gsi2"].sk is None and spec.indexes["gsi2"].pk.text == "Z#{b}"
    assert spec.indexes["lsi1"].pk is None and spec.indexes["lsi1"].sk.text == "L#{c}"  # type: ignore[union-attr]
    item = Good(a="1", b=2).to_item()
    assert "gsi1pk" not in item and "gsi1sk" not in item  # sparse: c is None
    assert item["g2pk"] == {"S": "Z#2"}  # partition key: int not padded
    item = Good(a="1", b=2, c="k").to_item()
    assert item["gsi1pk"] == {"S": "X#k"} and item["gsi1sk"] == {"S": "Y#1"}
    assert item["lsi1sk"] == {"S": "L#k"}


def test_partition_only_table_model() -> None:
    class Counter(Model):
        class Meta:
            table = NO_SK
            pk = "C#{id}"

        id: int
        value: int = 0

    assert Counter(id=3).item_key() == {"pk": {"S": "C#3"}}


def test_abstract_base_without_meta() -> None:
    class Base(Model):
        tenant: str

    class Child(Base):
        class Meta:
            table = DEFS
            pk = "T#{tenant}"
            sk = "CHILD#{id}"

        id: str

    assert Child(tenant="t", id="1").item_key() == {"pk": {"S": "T#t"}, "sk": {"S": "CHILD#1"}}
    with pytest.raises(ValidationError, match="not bound to a table"):
        Base(tenant="t").to_item()


def _define(meta: dict[str, Any], fields: dict[str, Any] | None = None, name: str = "Bad") -> type:
    annotations = {"a": str, "b": str}
    namespace: dict[str, Any] = {
        "Meta": type("Meta", (), {**meta, "__qualname__": f"{name}.Meta"}),
        "__annotations__": annotations,
        "__module__": __name__,
        "__qualname__": name,
    }
    for field_name, (annotation, default) in (fields or {}).items():
        annotations[field_name] = annotation
        namespace[field_name] = default
    return type(name, (Model,), namespace)


@pytest.mark.parametrize(
    ("meta", "fields", "match"),
    [
        ({"pk": "A#{a}", "sk": "B"}, None, "Meta.table"),
        ({"table": "defs", "pk": "A#{a}", "sk": "B"}, None, "Meta.table"),
        ({"table": DEFS, "sk": "B"}, None, "Meta.pk"),
        ({"table": DEFS, "pk": "A#{a}"}, None, "sort key"),
        ({"table": NO_SK, "pk": "A#{a}", "sk": "B"}, None, "no sort key"),
        ({"table": DEFS, "pk": "A#{missing}", "sk": "B"}, None, "'missing'"),
        ({"table": DEFS, "pk": "A#{a}", "sk": "B#{nope}"}, None, "'nope'"),
        (
            {"table": DEFS, "pk": "A#{a}", "sk": "B", "indexes": {"gsi1": ("X#{zzz}", "Y")}},
            None,
            "'zzz'",
        ),
        ({"table": DEFS, "pk": "A#{a}", "sk": "B", "indexes": {"nope": ("X", "Y")}}, None, "nope"),
        ({"table": DEFS, "pk": "A#{a}", "sk": "B", "indexes": ["gsi1"]}, None, "indexes"),
        (
            {"table": DEFS, "pk": "A#{a}", "sk": "B", "indexes": {"gsi1": "X#{a}"}},
            None,
            "needs a sort key template",
        ),
        (
            {"table": DEFS, "pk": "A#{a}", "sk": "B", "indexes": {"gsi2": ("X#{a}", "Y#{b}")}},
            None,
            "has no sort key",
        ),
        (
            {"table": DEFS, "pk": "A#{a}", "sk": "B", "indexes": {"gsi1": (None, "Y#{b}")}},
            None,
            "partition key template",
        ),
        ({"table": DEFS, "pk": "{a!r}", "sk": "B"}, None, "conversion"),
        ({"table": DEFS, "pk": "A#{a}", "sk": "B"}, {"pk": (str, "x")}, "clash"),
        ({"table": DEFS, "pk": "A#{a}", "sk": "B"}, {"sk": (str, "x")}, "clash"),
        ({"table": DEFS, "pk": "A#{a}", "sk": "B"}, {"gsi1pk": (str, "x")}, "clash"),
        ({"table": DEFS, "pk": "A#{a}", "sk": "B"}, {"lsi1sk": (str, "x")}, "clash"),
        ({"table": DEFS, "pk": "A#{a}", "sk": "B"}, {"g2pk": (str, "x")}, "clash"),
        (
            {"table": DEFS, "pk": "A#{a}", "sk": "B"},
            {"kind": (str, Field(default="x", alias="_type"))},
            "clash",
        ),
        (
            {"table": DEFS, "pk": "A#{a}", "sk": "B"},
            {"partition": (str, Field(default="x", alias="pk"))},
            "clash",
        ),
    ],
)
def test_model_definition_errors(
    meta: dict[str, Any], fields: dict[str, Any] | None, match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        _define(meta, fields)


def test_entity_type_used_by_two_models() -> None:
    class First(Model):
        class Meta:
            table = DEFS
            entity = "Shared"
            pk = "F#{a}"
            sk = "F"

        a: str

    with pytest.raises(ValidationError, match="'Shared'"):

        class Second(Model):
            class Meta:
                table = DEFS
                entity = "Shared"
                pk = "S#{a}"
                sk = "S"

            a: str
