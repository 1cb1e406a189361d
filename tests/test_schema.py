"""Declared vs live tables (pure): shapes, differences, plans, and the exports."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dynamodel import GSI, LSI, Model, Provisioned, Table
from dynamodel.schema import (
    cloudformation,
    compare,
    declared_shape,
    entity_chart,
    live_shape,
    plan,
    workbench_model,
)

base = Table(
    "schema-shop",
    indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk"), LSI("lsi1", sk="lsi1sk")],
    ttl="expires",
    stream="NEW_IMAGE",
    point_in_time_recovery=True,
)


class Customer(Model):
    class Meta:
        table = base
        pk = "CUSTOMER#{customer_id}"
        sk = "PROFILE"
        indexes = {"gsi1": ("EMAIL#{email}", "CUSTOMER")}

    customer_id: str
    email: str
    tags: set[str] = set()
    visits: int = 0


class Order(Model):
    class Meta:
        table = base
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{order_id}"
        indexes = {"lsi1": "TOTAL#{total}"}

    customer_id: str
    order_id: int
    total: int = 0


def describe(table: Table) -> dict[str, Any]:
    """What DescribeTable reports for a table created from this declaration."""
    request = copy.deepcopy(table.create_table_request())
    out: dict[str, Any] = {
        "TableName": request["TableName"],
        "KeySchema": request["KeySchema"],
        "AttributeDefinitions": request["AttributeDefinitions"],
        "TableStatus": "ACTIVE",
        "BillingModeSummary": {"BillingMode": request["BillingMode"]},
        "ProvisionedThroughput": request.get(
            "ProvisionedThroughput", {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0}
        ),
        "DeletionProtectionEnabled": request.get("DeletionProtectionEnabled", False),
        "ItemCount": 3,
    }
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if kind in request:
            out[kind] = [{**i, "IndexStatus": "ACTIVE"} for i in request[kind]]
            if kind == "GlobalSecondaryIndexes" and "ProvisionedThroughput" not in request:
                for index in out[kind]:
                    index["ProvisionedThroughput"] = {
                        "ReadCapacityUnits": 0,
                        "WriteCapacityUnits": 0,
                    }
    if "StreamSpecification" in request:
        out["StreamSpecification"] = request["StreamSpecification"]
    if request["TableClass"] != "STANDARD":
        out["TableClassSummary"] = {"TableClass": request["TableClass"]}
    return out


def live(table: Table, ttl: str | None = "expires", pitr: bool | None = True) -> Any:
    ttl_description = (
        {"TimeToLiveStatus": "ENABLED", "AttributeName": ttl}
        if ttl
        else {"TimeToLiveStatus": "DISABLED"}
    )
    backups = (
        None
        if pitr is None
        else {
            "PointInTimeRecoveryDescription": {
                "PointInTimeRecoveryStatus": "ENABLED" if pitr else "DISABLED"
            }
        }
    )
    return live_shape(describe(table), ttl_description, backups)


def variant(**changes: Any) -> Table:
    options: dict[str, Any] = {
        "indexes": base.indexes,
        "ttl": base.ttl,
        "stream": base.stream,
        "point_in_time_recovery": base.point_in_time_recovery,
    }
    options.update(changes)
    return Table("schema-shop", **options)


def summary(changes: list[Any]) -> dict[str, str]:
    return {c.subject: c.safety for c in changes}


def test_a_table_created_from_its_declaration_has_no_differences() -> None:
    assert declared_shape(base).summary() == live(base).summary()
    assert compare(declared_shape(base), live(base)) == []
    provisioned = variant(billing=Provisioned(5, 5))
    assert compare(declared_shape(provisioned), live(provisioned)) == []


def test_new_gsi_is_a_safe_change_with_its_attribute_definitions() -> None:
    wanted = variant(
        indexes=[*base.indexes, GSI("gsi2", pk="gsi2pk", sk="gsi2sk", projection=["a"])]
    )
    (change,) = compare(declared_shape(wanted), live(base))
    assert (change.subject, change.safety, change.live) == ("GSI gsi2", "safe", "absent")
    (step,) = change.steps
    assert step.request.op == "update_table" and step.wait
    assert step.request.params == {
        "TableName": "schema-shop",
        "AttributeDefinitions": [
            {"AttributeName": "gsi2pk", "AttributeType": "S"},
            {"AttributeName": "gsi2sk", "AttributeType": "S"},
        ],
        "GlobalSecondaryIndexUpdates": [
            {
                "Create": {
                    "IndexName": "gsi2",
                    "KeySchema": [
                        {"AttributeName": "gsi2pk", "KeyType": "HASH"},
                        {"AttributeName": "gsi2sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["a"]},
                }
            }
        ],
    }


def test_removed_and_redefined_gsis_are_destructive_and_deleted_first() -> None:
    current = variant(indexes=[*base.indexes, GSI("gsi2", pk="gsi2pk", sk="gsi2sk")])
    wanted = variant(
        indexes=[
            GSI("gsi1", pk="gsi1pk", sk="gsi1sk", projection="KEYS_ONLY"),
            LSI("lsi1", sk="lsi1sk"),
            GSI("gsi3", pk="gsi3pk"),
        ]
    )
    changes = compare(declared_shape(wanted), live(current))
    assert summary(changes) == {
        "GSI gsi1": "destructive",
        "GSI gsi2": "destructive",
        "GSI gsi3": "safe",
    }
    recreate = next(c for c in changes if c.subject == "GSI gsi1")
    assert "deleted and created again" in recreate.note
    # safe only: just the new index
    assert [s.describe for s in plan(changes)] == ["create GSI gsi3"]
    # confirmed: one index per call, every deletion before any creation
    assert [s.describe for s in plan(changes, destructive=True)] == [
        "delete GSI gsi1",
        "delete GSI gsi2",
        "create GSI gsi1",
        "create GSI gsi3",
    ]
    for step in plan(changes, destructive=True):
        assert len(step.request.params["GlobalSecondaryIndexUpdates"]) == 1


def test_ttl_stream_pitr_and_protection() -> None:
    off = variant(ttl=None, stream=None, point_in_time_recovery=False)
    turn_on = compare(declared_shape(base), live(off, ttl=None, pitr=False))
    assert summary(turn_on) == {"stream": "safe", "TTL": "safe", "point-in-time recovery": "safe"}
    turn_off = compare(declared_shape(off), live(base))
    assert summary(turn_off) == {
        "stream": "destructive",
        "TTL": "destructive",
        "point-in-time recovery": "destructive",
    }
    ttl_off = next(c for c in turn_off if c.subject == "TTL").steps[0].request.params
    assert ttl_off["TimeToLiveSpecification"] == {"Enabled": False, "AttributeName": "expires"}
    renamed = compare(declared_shape(variant(ttl="valid_until")), live(base))
    (ttl,) = renamed
    assert ttl.safety == "destructive" and [s.describe for s in ttl.steps] == [
        "TTL off",
        "TTL on valid_until",
    ]
    view = compare(declared_shape(variant(stream="NEW_AND_OLD_IMAGES")), live(base))
    assert [s.request.params["StreamSpecification"] for s in view[0].steps] == [
        {"StreamEnabled": False},
        {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    ]
    protect = compare(declared_shape(variant(deletion_protection=True)), live(base))
    assert summary(protect) == {"deletion protection": "safe"}
    unprotect = compare(declared_shape(base), live(variant(deletion_protection=True)))
    assert summary(unprotect) == {"deletion protection": "destructive"}


def test_unknown_pitr_is_not_a_difference() -> None:
    assert compare(declared_shape(base), live(base, pitr=None)) == []
    assert live(base, pitr=None).summary()["point-in-time recovery"].startswith("unknown")


def test_billing_changes_carry_gsi_capacity() -> None:
    wanted = variant(billing=Provisioned(10, 5))
    (change,) = compare(declared_shape(wanted), live(base))
    assert change.subject == "billing" and change.safety == "safe"
    assert "once per 24 hours" in change.note
    assert change.steps[0].request.params == {
        "TableName": "schema-shop",
        "BillingMode": "PROVISIONED",
        "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 5},
        "GlobalSecondaryIndexUpdates": [
            {
                "Update": {
                    "IndexName": "gsi1",
                    "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 5},
                }
            }
        ],
    }
    more = variant(billing=Provisioned(20, 5))  # the GSI follows the table's capacity
    changes = compare(declared_shape(more), live(wanted))
    assert summary(changes) == {"billing": "safe", "GSI gsi1": "safe"}
    assert [s.request.params for s in plan(changes)] == [
        {
            "TableName": "schema-shop",
            "ProvisionedThroughput": {"ReadCapacityUnits": 20, "WriteCapacityUnits": 5},
        },
        {
            "TableName": "schema-shop",
            "GlobalSecondaryIndexUpdates": [
                {
                    "Update": {
                        "IndexName": "gsi1",
                        "ProvisionedThroughput": {"ReadCapacityUnits": 20, "WriteCapacityUnits": 5},
                    }
                }
            ],
        },
    ]
    index_capacity = variant(
        billing=Provisioned(10, 5),
        indexes=[
            GSI("gsi1", pk="gsi1pk", sk="gsi1sk", capacity=Provisioned(3, 3)),
            base.indexes[1],
        ],
    )
    (change,) = compare(declared_shape(index_capacity), live(wanted))
    assert change.subject == "GSI gsi1" and change.safety == "safe"
    assert change.steps[0].request.params["GlobalSecondaryIndexUpdates"] == [
        {
            "Update": {
                "IndexName": "gsi1",
                "ProvisionedThroughput": {"ReadCapacityUnits": 3, "WriteCapacityUnits": 3},
            }
        }
    ]


def test_key_schema_and_lsis_cannot_change() -> None:
    other_keys = Table("schema-shop", pk="id", sk=None)
    changes = compare(declared_shape(other_keys), live(base))
    assert summary(changes)["primary key"] == "impossible"
    assert summary(changes)["LSI lsi1"] == "impossible"
    assert plan(changes, destructive=True) == [
        s for c in changes for s in c.steps if c.safety != "impossible"
    ]
    assert all(
        "new table" in c.note or "created" in c.note for c in changes if c.safety == "impossible"
    )


def test_live_shape_of_an_index_being_built() -> None:
    raw = describe(base)
    raw["GlobalSecondaryIndexes"][0]["IndexStatus"] = "CREATING"
    shape = live_shape(raw, None, None)
    assert shape.gsis["gsi1"].status == "CREATING"
    assert shape.summary()["GSI gsi1"].endswith("(CREATING)")
    assert shape.ttl is None and shape.pitr is None and shape.item_count == 3


# -- exports --------------------------------------------------------------------------------------


def test_entity_chart() -> None:
    rows = {row.entity: row for row in entity_chart(base)}
    assert rows["Customer"].keys == {
        "table": ("CUSTOMER#{customer_id}", "PROFILE"),
        "gsi1": ("EMAIL#{email}", "CUSTOMER"),
        "lsi1": (None, None),
    }
    assert rows["Order"].keys["lsi1"] == ("CUSTOMER#{customer_id}", "TOTAL#{total}")
    assert rows["Order"].keys["gsi1"] == (None, None)
    assert rows["Order"].model.endswith("test_schema.Order")


def test_cloudformation_template() -> None:
    template = cloudformation(variant(billing=Provisioned(5, 5), tags={"team": "shop"}))
    resource = template["Resources"]["SchemaShopTable"]
    props = resource["Properties"]
    assert resource["Type"] == "AWS::DynamoDB::Table"
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert props["TableName"] == "schema-shop"
    assert props["BillingMode"] == "PROVISIONED"
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}  # CFN's shape
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["Tags"] == [{"Key": "team", "Value": "shop"}]
    assert props["LocalSecondaryIndexes"][0]["IndexName"] == "lsi1"
    assert cloudformation(base, logical_id="Shop")["Resources"].keys() == {"Shop"}


def test_workbench_model() -> None:
    model = workbench_model(base, name="Shop", author="me")
    assert model["ModelName"] == "Shop" and model["ModelMetadata"]["Author"] == "me"
    (table,) = model["DataModel"]
    assert table["KeyAttributes"] == {
        "PartitionKey": {"AttributeName": "pk", "AttributeType": "S"},
        "SortKey": {"AttributeName": "sk", "AttributeType": "S"},
    }
    types = {a["AttributeName"]: a["AttributeType"] for a in table["NonKeyAttributes"]}
    assert types["tags"] == "SS" and types["visits"] == "N" and types["email"] == "S"
    assert types["_type"] == "S" and types["gsi1pk"] == "S"
    facets = {f["FacetName"]: f for f in table["TableFacets"]}
    assert facets["Customer"]["KeyAttributeAlias"] == {
        "PartitionKeyAlias": "CUSTOMER#{customer_id}",
        "SortKeyAlias": "PROFILE",
    }
    assert "gsi1pk" in facets["Customer"]["NonKeyAttributes"]
    assert [g["IndexName"] for g in table["GlobalSecondaryIndexes"]] == ["gsi1"]  # no LSIs
    assert table["BillingMode"] == "PAY_PER_REQUEST"


@pytest.mark.parametrize(
    ("annotation", "kind"),
    [
        (int, "N"),
        (bool, "BOOL"),
        (bytes, "B"),
        (set[int], "NS"),
        (list[str], "L"),
        (dict[str, int], "M"),
        (str | None, "S"),
        (frozenset[bytes], "BS"),
    ],
)
def test_workbench_attribute_types(annotation: Any, kind: str) -> None:
    from dynamodel.schema.export import _attribute_type

    assert _attribute_type(annotation) == kind
