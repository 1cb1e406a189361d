"""Multi-attribute GSI keys (#19): declaration checks, CreateTable and schema exports, query
requests and their validation (no server), then queries against the local backend."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Literal

import pytest
from pydantic import Field

from dynamodel import (
    GSI,
    Attr,
    Collection,
    DynamodelError,
    Model,
    MultiKey,
    Table,
    ValidationError,
    schema,
)
from dynamodel.modelling.multikey import key_type
from dynamodel.ops.pagination import decode_cursor, encode_cursor
from dynamodel.ops.shard_guard import forget_shard_checks
from dynamodel.schema import changes as schema_changes
from dynamodel.testing import trust_shard_layouts

MK = Table(
    "multikey-shop",
    indexes=[
        GSI("gsi1", pk="gsi1pk", sk="gsi1sk"),
        GSI("by_region", pk=("tenant_id", "region"), sk=("created", "order_id")),
        GSI("by_tenant", pk=("tenant_id",)),
    ],
)


class Order(Model):
    class Meta:
        table = MK
        pk = "ORDER#{order_id}"
        sk = "ORDER"
        indexes = {
            "by_region": MultiKey,
            "by_tenant": MultiKey,
            "gsi1": ("STATUS#{status}", "{order_id}"),
        }

    tenant_id: str
    region: str
    created: int
    order_id: str
    status: str = "open"
    total: Decimal = Decimal("0")


class Refund(Model):
    """Shares by_region with Order; its region is stored under an alias."""

    class Meta:
        table = MK
        pk = "REFUND#{refund_id}"
        sk = "REFUND"
        indexes = {"by_region": MultiKey}

    refund_id: str
    tenant_id: str
    where: str = Field(alias="region")
    created: int
    order_id: str


class Note(Model):
    """Has the partition attributes but no sort attributes: never in by_region (sparse)."""

    class Meta:
        table = MK
        pk = "NOTE#{note_id}"
        sk = "NOTE"

    note_id: str
    tenant_id: str
    region: str


@pytest.fixture(autouse=True)
def _layouts_checked() -> Iterator[None]:
    trust_shard_layouts(Order, Refund, Note)
    yield
    forget_shard_checks()


# -- declaration -----------------------------------------------------------------------------


def test_gsi_declaration_normalises_and_keeps_single_attribute_gsis() -> None:
    multi = GSI("by_region", pk=["tenant_id", "region"], sk="created")
    assert multi.multi and multi.pk == ("tenant_id", "region") and multi.sk == ("created",)
    assert multi.pk_attributes == ("tenant_id", "region") and multi.sk_attributes == ("created",)
    plain = GSI("gsi1", pk="gsi1pk", sk="gsi1sk")
    assert not plain.multi and plain.pk == "gsi1pk" and plain.sk_attributes == ("gsi1sk",)
    assert pickle.loads(pickle.dumps(multi)) == multi
    assert multi.replace(sk=None).sk is None


@pytest.mark.parametrize(
    ("pk", "sk", "message"),
    [
        (
            ("a", "b", "c", "d", "e"),
            None,
            "5 partition key attributes; a multi-attribute key has 1 to 4",
        ),
        (
            ("a",),
            ("b", "c", "d", "e", "f"),
            "5 sort key attributes; a multi-attribute key has 1 to 4",
        ),
        ((), None, "0 partition key attributes"),
        (("a",), (), "0 sort key attributes"),
        (("a", ""), None, "partition key attribute names must be non-empty strings"),
        (("a", 3), None, "non-empty strings, got 3"),
        (("a", "b"), ("c", "a"), "key attributes ['a'] are named more than once"),
        (("a", "a"), None, "named more than once"),
    ],
)
def test_gsi_declaration_is_checked(pk: Any, sk: Any, message: str) -> None:
    with pytest.raises(ValidationError, match="GSI 'idx'") as error:
        GSI("idx", pk=pk, sk=sk)
    assert message in str(error.value)


def test_gsi_types_are_checked() -> None:
    with pytest.raises(ValidationError, match="unknown attributes \\['x'\\]"):
        GSI("idx", pk=("a",), types={"x": "S"})
    with pytest.raises(ValidationError, match="bad types \\['a'\\]"):
        GSI("idx", pk=("a",), types={"a": "BOOL"})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="types is for multi-attribute indexes"):
        GSI("idx", pk="gsi1pk", types={"gsi1pk": "S"})


def test_multi_attribute_gsi_cannot_use_managed_attributes() -> None:
    for attribute in ("pk", "sk", "_type", "gsi1pk"):
        with pytest.raises(ValidationError, match="which the table manages"):
            Table(
                "multikey-bad",
                indexes=[GSI("gsi1", pk="gsi1pk"), GSI("idx", pk=("tenant", attribute))],
            )


def _model(table: Table, indexes: dict[str, Any], name: str = "Thing", **fields: Any) -> Any:
    """A model class declared at run time (like a class statement would)."""
    meta = type(
        "Meta",
        (),
        {"table": table, "pk": name + "#{item_id}", "sk": name, "indexes": indexes},
    )
    meta.__qualname__ = f"{name}.Meta"  # what a nested class statement gives
    meta.__module__ = __name__
    namespace = {
        "__annotations__": {"item_id": str, **fields},
        "Meta": meta,
        "__module__": __name__,
        "__qualname__": name,
    }
    return type(name, (Model,), namespace)


def _table(**gsi: Any) -> Table:
    return Table("multikey-decl", indexes=[GSI("idx", **gsi), GSI("gsi1", pk="gsi1pk")])


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (float, "<class 'float'> cannot be a key attribute of multi-attribute GSI 'idx'"),
        (bool, "<class 'bool'> cannot be a key attribute"),
        (list[str], "cannot be a key attribute"),
        (str | None, "cannot be optional"),
        (Literal["a", 1], "cannot be a key attribute"),
    ],
)
def test_model_fields_must_be_key_types(annotation: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=r"Thing\.region") as error:
        _model(_table(pk=("tenant", "region")), {"idx": MultiKey}, tenant=str, region=annotation)
    assert message in str(error.value)
    assert "str (S), int or Decimal (N), or bytes (B)" in str(error.value) or "optional" in message


def test_key_types() -> None:
    assert [key_type(t) for t in (str, int, Decimal, bytes)] == ["S", "N", "N", "B"]
    assert key_type(Literal["a", "b"]) == "S" and key_type(Literal[1, 2]) == "N"
    assert [key_type(t) for t in (bool, float, dict, str | None)] == [None] * 4


def test_model_must_have_the_key_fields() -> None:
    with pytest.raises(ValidationError, match="keyed on 'region', which is not a field of Thing"):
        _model(_table(pk=("tenant", "region")), {"idx": MultiKey}, tenant=str)


def test_multikey_marker_and_templates_are_not_interchangeable() -> None:
    with pytest.raises(ValidationError, match=r"is a multi-attribute GSI .* declare it as 'idx': "):
        _model(_table(pk=("tenant",)), {"idx": ("T#{tenant}",)}, tenant=str)
    with pytest.raises(ValidationError, match="index 'gsi1' is not a multi-attribute GSI"):
        _model(_table(pk=("tenant",)), {"gsi1": MultiKey}, tenant=str)


def test_models_sharing_an_index_need_the_same_key_types() -> None:
    table = _table(pk=("tenant",), sk=("created",))
    _model(table, {"idx": MultiKey}, tenant=str, created=int)
    with pytest.raises(ValidationError, match="'created' is S in Other but N in Thing"):
        _model(table, {"idx": MultiKey}, name="Other", tenant=str, created=str)


def test_gsi_types_must_agree_with_fields() -> None:
    table = _table(pk=("tenant",), types={"tenant": "N"})
    with pytest.raises(ValidationError, match="'tenant' is S in Thing but the GSI declares N"):
        _model(table, {"idx": MultiKey}, tenant=str)


# -- CreateTable and exports --------------------------------------------------------------------


def test_create_table_request() -> None:
    request = MK.create_table_request()
    assert request["AttributeDefinitions"] == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
        {"AttributeName": "gsi1pk", "AttributeType": "S"},
        {"AttributeName": "gsi1sk", "AttributeType": "S"},
        {"AttributeName": "tenant_id", "AttributeType": "S"},
        {"AttributeName": "region", "AttributeType": "S"},
        {"AttributeName": "created", "AttributeType": "N"},
        {"AttributeName": "order_id", "AttributeType": "S"},
    ]
    by_region, by_tenant = request["GlobalSecondaryIndexes"][1:]
    assert by_region == {
        "IndexName": "by_region",
        "KeySchema": [
            {"AttributeName": "tenant_id", "KeyType": "HASH"},
            {"AttributeName": "region", "KeyType": "HASH"},
            {"AttributeName": "created", "KeyType": "RANGE"},
            {"AttributeName": "order_id", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    assert by_tenant["KeySchema"] == [{"AttributeName": "tenant_id", "KeyType": "HASH"}]


def test_botocore_accepts_the_multi_element_key_schema() -> None:
    """botocore's model says KeySchema has at most 2 members, but its validator checks minimums
    only: the request is validated and serialised as it is."""
    import botocore.session
    from botocore.stub import Stubber

    client = botocore.session.get_session().create_client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    request = MK.create_table_request()
    with Stubber(client) as stub:
        stub.add_response("create_table", {}, request)
        client.create_table(**request)
        stub.assert_no_pending_responses()


def test_key_types_unknown_without_models_or_types() -> None:
    bare = MK.replace(name="multikey-bare")
    with pytest.raises(ValidationError, match="type of GSI 'by_region' key attribute 'tenant_id'"):
        bare.create_table_request()
    typed = bare.replace(
        indexes=[
            GSI(
                "by_region",
                pk=("tenant_id",),
                sk=("created",),
                types={"tenant_id": "S", "created": "N"},
            ),
        ]
    )
    definitions = typed.create_table_request()["AttributeDefinitions"]
    assert definitions[-2:] == [
        {"AttributeName": "tenant_id", "AttributeType": "S"},
        {"AttributeName": "created", "AttributeType": "N"},
    ]


def test_declared_shape_diff_and_exports() -> None:
    shape = schema.declared_shape(MK)
    index = shape.gsis["by_region"]
    assert index.key_schema == (("tenant_id", "region"), ("created", "order_id"))
    assert index.text() == "(tenant_id, region), (created, order_id); ALL"
    assert dict(index.key_types) == {
        "tenant_id": "S",
        "region": "S",
        "created": "N",
        "order_id": "S",
    }
    assert shape.gsis["gsi1"].key_schema == (("gsi1pk",), ("gsi1sk",))
    # a live index with the sort attributes in another order is another definition
    swapped = [
        {"AttributeName": "tenant_id", "KeyType": "HASH"},
        {"AttributeName": "region", "KeyType": "HASH"},
        {"AttributeName": "order_id", "KeyType": "RANGE"},
        {"AttributeName": "created", "KeyType": "RANGE"},
    ]
    request = MK.create_table_request()
    live = dict(
        request,
        GlobalSecondaryIndexes=[
            dict(g, KeySchema=swapped) if g["IndexName"] == "by_region" else g
            for g in request["GlobalSecondaryIndexes"]
        ],
    )
    assert not schema.live_shape(live).gsis["by_region"].same_definition(index)
    assert schema.live_shape(request).gsis["by_region"].same_definition(index)

    resource = schema.cloudformation(MK)["Resources"]["MultikeyShopTable"]["Properties"]
    assert (
        resource["GlobalSecondaryIndexes"][1]["KeySchema"]
        == request["GlobalSecondaryIndexes"][1]["KeySchema"]
    )
    assert {"AttributeName": "created", "AttributeType": "N"} in resource["AttributeDefinitions"]

    workbench = schema.workbench_model(MK)["DataModel"][0]
    # format 3.0 has one partition and one sort key attribute: by_region is left out
    assert [g["IndexName"] for g in workbench["GlobalSecondaryIndexes"]] == ["gsi1", "by_tenant"]

    chart = {row.entity: row.keys for row in schema.entity_chart(MK)}
    assert chart["Order"]["by_region"] == ("(tenant_id, region)", "(created, order_id)")
    assert chart["Refund"]["by_region"] == ("(tenant_id, where)", "(created, order_id)")
    assert chart["Order"]["by_tenant"] == ("(tenant_id)", None)
    assert chart["Note"]["by_region"] == (None, None)


def test_gsi_create_step_sends_every_key_attribute() -> None:
    declared = schema.declared_shape(MK)
    live = schema.declared_shape(MK.replace(indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")]))
    params = schema_changes._gsi_create(live, declared.gsis["by_region"]).request.params
    create = params["GlobalSecondaryIndexUpdates"][0]["Create"]
    assert [k["KeyType"] for k in create["KeySchema"]] == ["HASH", "HASH", "RANGE", "RANGE"]
    assert len(params["AttributeDefinitions"]) == 4


# -- query requests -------------------------------------------------------------------------------


def _key_condition(query: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    params = query._params()
    return (
        params["KeyConditionExpression"],
        params["ExpressionAttributeNames"],
        params["ExpressionAttributeValues"],
    )


def _resolved(query: Any) -> str:
    """The key condition with placeholders replaced by names and values."""
    text, names, values = _key_condition(query)
    for placeholder, name in sorted(names.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(placeholder, name)
    for placeholder, value in sorted(values.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(placeholder, repr(next(iter(value.values()))))
    return text


def test_query_partition_equality() -> None:
    query = Order.query(index="by_region", tenant_id="t1", region="eu")
    assert _resolved(query) == "tenant_id = 't1' AND region = 'eu'"
    params = query._params()
    assert params["IndexName"] == "by_region"
    assert "ScanIndexForward" not in params and "ConsistentRead" not in params
    # the entity filter keeps other models sharing the index out
    assert params["FilterExpression"]


def test_query_sort_conditions_left_to_right() -> None:
    q = Order.query(index="by_region", tenant_id="t1", region="eu")
    base = "tenant_id = 't1' AND region = 'eu'"
    assert _resolved(q.sk_eq(created=5)) == f"{base} AND created = '5'"
    assert _resolved(q.sk_gt(created="5")) == f"{base} AND created > '5'"  # coerced to int
    assert q.sk_gt(created="5")._params()["ExpressionAttributeValues"][":v3"] == {"N": "5"}
    assert _resolved(q.sk_begins_with(created=5, order_id="A")) == (
        f"{base} AND created = '5' AND begins_with(order_id, 'A')"
    )
    assert _resolved(q.sk_eq(created=5).sk_le(order_id="B")) == (
        f"{base} AND created = '5' AND order_id <= 'B'"
    )
    assert _resolved(q.sk_between({"created": 1}, {"created": 9})) == (
        f"{base} AND created BETWEEN '1' AND '9'"
    )
    assert _resolved(
        q.sk_between({"created": 1, "order_id": "a"}, {"created": 1, "order_id": "c"})
    ) == (f"{base} AND created = '1' AND order_id BETWEEN 'a' AND 'c'")
    leading = Order.query(index="by_region", tenant_id="t1", region="eu", created=5)
    assert _resolved(leading) == f"{base} AND created = '5'"
    assert _resolved(leading.sk_lt(order_id="x")) == f"{base} AND created = '5' AND order_id < 'x'"
    assert _resolved(q.sk_ge(created=3).reverse()).endswith("created >= '3'")
    assert q.reverse()._params()["ScanIndexForward"] is False


def test_query_by_alias_and_single_attribute_multi_gsi() -> None:
    refunds = Refund.query(index="by_region", tenant_id="t1", where="eu")
    assert _resolved(refunds) == "tenant_id = 't1' AND region = 'eu'"
    assert _resolved(Order.query(index="by_tenant", tenant_id="t1")) == "tenant_id = 't1'"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: Order.query(index="by_region", tenant_id="t1"),
            "missing partition key fields ['region']",
        ),
        (
            lambda: Order.query(index="by_region", region="eu"),
            "missing partition key fields ['tenant_id']",
        ),
        (
            lambda: Order.query(index="by_region", tenant_id="t1", region=None),
            "missing partition key fields ['region']",
        ),
        (
            lambda: Order.query(index="by_region", tenant_id="t1", region="eu", status="x"),
            "unexpected fields ['status']",
        ),
        (
            lambda: Order.query(index="by_region", tenant_id="t1", region="eu", order_id="a"),
            "['created'] would be skipped",
        ),
        (
            lambda: Order.query(index="by_region", tenant_id="t1", region="eu", created="x"),
            "field 'created'",
        ),
    ],
)
def test_query_partition_validation(build: Any, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        build()
    assert message in str(error.value)


Q = Order.query(index="by_region", tenant_id="t1", region="eu")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Q.sk_gt(order_id="a"), "['created'] would be skipped"),
        (lambda: Q.sk_eq("raw"), "give sort key fields ['created', 'order_id'] as keywords"),
        (lambda: Q.sk_gt(), "give at least one sort key field"),
        (lambda: Q.sk_gt(total=1), "['total'] are not sort key fields"),
        (lambda: Q.sk_begins_with(created=1), "'created' of index 'by_region' is a number"),
        (lambda: Q.sk_gt(created=1).sk_lt(order_id="a"), "one sort key condition"),
        (lambda: Q.sk_eq(created=1).sk_eq(created=2), "['created'] are already given"),
        (
            lambda: Q.sk_between({"created": 1}, {"created": 2, "order_id": "a"}),
            "same sort key fields",
        ),
        (
            lambda: Q.sk_between({"created": 1, "order_id": "a"}, {"created": 2, "order_id": "b"}),
            "['created'] differ",
        ),
        (lambda: Q.sk_between("a", "b"), "bounds as mappings"),
        (lambda: Q.consistent(), "consistent reads unsupported"),
    ],
)
def test_sort_condition_validation(build: Any, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        build()
    assert message in str(error.value)


def test_cursor_of_another_partition_is_refused_before_any_request() -> None:
    key = {
        "pk": {"S": "ORDER#a"},
        "sk": {"S": "ORDER"},
        "tenant_id": {"S": "t1"},
        "region": {"S": "eu"},
        "created": {"N": "1"},
        "order_id": {"S": "a"},
    }
    cursor = encode_cursor(key)
    assert cursor is not None
    resumed = Q.start_from(cursor)
    assert resumed._params() and resumed.start_key == decode_cursor(cursor)
    other = Order.query(index="by_region", tenant_id="t1", region="us")
    with pytest.raises(ValidationError, match="resumes a query of partition"):
        other.start_from(cursor)
    with pytest.raises(ValidationError, match="resumes a query of partition"):
        Order.query(index="by_region", tenant_id="t2", region="eu").start_from(cursor)


def test_projection_and_limit_cursors_carry_every_key_attribute() -> None:
    attrs = Q._key_attributes()
    assert attrs == ["pk", "sk", "tenant_id", "region", "created", "order_id"]
    names = Q.project("total")._params()["ExpressionAttributeNames"].values()
    assert {"tenant_id", "region", "created", "order_id", "total", "_type"} <= set(names)


def test_collection_on_a_multi_attribute_gsi() -> None:
    both = Collection(Order, Refund, index="by_region")
    query = both.query(tenant_id="t1", region="eu")
    assert _resolved(query) == "tenant_id = 't1' AND region = 'eu'"
    assert "FilterExpression" not in query._params()
    assert _resolved(query.sk_gt(created=3)).endswith("created > '3'")
    with pytest.raises(ValidationError, match="Note"):
        Collection(Order, Note, index="by_region")
    with pytest.raises(ValidationError, match="use query"):
        both.query_key("x")
    with pytest.raises(ValidationError, match="missing partition key fields"):
        both.query(tenant_id="t1")


def test_writes_store_the_fields_and_nothing_synthetic() -> None:
    order = Order(tenant_id="t1", region="eu", created=3, order_id="a", status="open")
    item = order.to_item()
    assert item["created"] == {"N": "3"} and item["region"] == {"S": "eu"}
    assert set(item) == {
        "pk",
        "sk",
        "_type",
        "gsi1pk",
        "gsi1sk",
        "tenant_id",
        "region",
        "created",
        "order_id",
        "status",
        "total",
    }
    refund = Refund(refund_id="r", tenant_id="t1", where="eu", created=1, order_id="a")
    assert refund.to_item()["region"] == {"S": "eu"}


# -- against the local backend ----------------------------------------------------------------


@pytest.fixture
def shop(fresh_db: Any, backend_name: str) -> Iterator[Table]:
    try:
        MK.create(poll=0.01)
    except DynamodelError as error:  # pragma: no cover - depends on the installed moto
        if backend_name == "moto":
            pytest.skip(
                "this moto predates multi-attribute GSI keys (getmoto/moto#9710, in moto "
                f"5.2.x): {error}"
            )
        raise
    yield MK


ORDERS = [  # tenant, region, created, order id
    ("t1", "eu", 3, "a"),
    ("t1", "eu", 1, "b"),
    ("t1", "eu", 1, "a2"),
    ("t1", "eu", 2, "c"),
    ("t1", "us", 2, "d"),
    ("t2", "eu", 1, "e"),
]


def _ids(query: Any) -> list[str]:
    return [item.order_id for item in query]


def test_queries_return_the_right_items_in_order(shop: Table) -> None:
    for tenant, region, created, order_id in ORDERS:
        Order(tenant_id=tenant, region=region, created=created, order_id=order_id).save()
    Note(note_id="n1", tenant_id="t1", region="eu").save()  # no sort attributes: not indexed
    shop.connection.client().put_item(  # has every partition attribute, one sort attribute
        TableName=shop.physical_name,
        Item={
            "pk": {"S": "ORDER#x"},
            "sk": {"S": "ORDER"},
            "_type": {"S": "Order"},
            "tenant_id": {"S": "t1"},
            "region": {"S": "eu"},
            "created": {"N": "1"},
        },
    )
    eu = Order.query(index="by_region", tenant_id="t1", region="eu")
    # equality on the partition attributes only: sorted by created, then order id
    assert [(o.created, o.order_id) for o in eu] == [(1, "a2"), (1, "b"), (2, "c"), (3, "a")]
    assert _ids(eu.reverse()) == ["a", "c", "b", "a2"]
    assert eu.count() == 4  # the sparse items (the note, order x) are not in the index
    # numbers compare as numbers, not text
    assert _ids(eu.sk_gt(created=1)) == ["c", "a"]
    assert _ids(eu.sk_between({"created": 2}, {"created": 3})) == ["c", "a"]
    # equality on a prefix, a range on the next attribute
    assert _ids(eu.sk_eq(created=1)) == ["a2", "b"]
    assert _ids(eu.sk_eq(created=1).sk_gt(order_id="a2")) == ["b"]
    assert _ids(eu.sk_begins_with(created=1, order_id="b")) == ["b"]
    assert _ids(Order.query(index="by_region", tenant_id="t1", region="eu", created=1)) == [
        "a2",
        "b",
    ]
    assert _ids(Order.query(index="by_region", tenant_id="t1", region="us")) == ["d"]
    assert _ids(Order.query(index="by_tenant", tenant_id="t2")) == ["e"]

    # pages and cursors carry every key attribute; a cursor of another partition is refused
    pages = list(eu.page_size(1).limit(3).pages())
    assert [[o.order_id for o in page] for page in pages] == [["a2"], ["b"], ["c"]]
    cursor = pages[-1].cursor
    assert cursor is not None and set(decode_cursor(cursor)) >= {
        "tenant_id",
        "region",
        "created",
        "order_id",
    }
    assert _ids(eu.start_from(cursor)) == ["a"]
    with pytest.raises(ValidationError, match="resumes a query of partition"):
        Order.query(index="by_region", tenant_id="t1", region="us").start_from(cursor)


def test_updates_move_items_between_partitions_and_out_of_the_index(shop: Table) -> None:
    order = Order(tenant_id="t1", region="eu", created=1, order_id="a")
    order.save()
    Refund(refund_id="r1", tenant_id="t1", where="eu", created=2, order_id="a").save()
    moved = order.update(Attr("region").set("us"))
    assert moved.region == "us"
    assert _ids(Order.query(index="by_region", tenant_id="t1", region="us")) == ["a"]
    assert _ids(Order.query(index="by_region", tenant_id="t1", region="eu")) == []
    Order.update_item({"order_id": "a"}, [Attr("created").add(5)])
    assert [o.created for o in Order.query(index="by_region", tenant_id="t1", region="us")] == [6]

    result = Collection(Order, Refund, index="by_region").fetch(tenant_id="t1", region="eu")
    assert [type(x).__name__ for x in result.items] == ["Refund"]

    # an item without one of the key attributes is out of the index (sparse)
    shop.connection.client().update_item(
        TableName=shop.physical_name,
        Key={"pk": {"S": "ORDER#a"}, "sk": {"S": "ORDER"}},
        UpdateExpression="REMOVE created",
    )
    assert Order.query(index="by_region", tenant_id="t1", region="us").count() == 0
    assert Order.query(index="by_tenant", tenant_id="t1").count() == 1


def test_table_sync_adds_a_multi_attribute_gsi(fresh_db: Any, backend_name: str) -> None:
    """`table sync` (schema.apply) creates the index with its 2+2 KeySchema and typed
    attribute definitions on a live table; afterwards the diff is empty."""
    before = MK.replace(indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])
    before.create(poll=0.01)
    assert [c.subject for c in schema.diff(MK)] == ["GSI by_region", "GSI by_tenant"]
    try:
        result = schema.apply(MK, poll=0.05)
    except DynamodelError as error:  # pragma: no cover - depends on the installed moto
        if backend_name == "moto":
            pytest.skip(f"this moto predates multi-attribute GSI keys (getmoto/moto#9710): {error}")
        raise
    assert result.in_sync
    assert [s.describe for s in result.applied] == ["create GSI by_region", "create GSI by_tenant"]
    live = schema.describe(MK).shape.gsis["by_region"]
    assert live.key_schema == (("tenant_id", "region"), ("created", "order_id"))
    if backend_name != "moto":  # moto's UpdateTable replaces the table's AttributeDefinitions
        # with the call's (the last GSI created): the earlier attributes' types are forgotten
        types = {"tenant_id": "S", "region": "S", "created": "N", "order_id": "S"}
        assert dict(live.key_types) == types
    assert schema.diff(MK) == []


def test_none_is_not_given_and_empty_values_are_refused() -> None:
    given = Order.query(index="by_region", tenant_id="t1", region="eu", created=None)
    assert _resolved(given) == "tenant_id = 't1' AND region = 'eu'"
    with pytest.raises(ValidationError, match=r"\['region'\] are empty"):
        Order.query(index="by_region", tenant_id="t1", region="")
    with pytest.raises(ValidationError, match=r"\['order_id'\] are empty"):
        Q.sk_eq(created=1).sk_begins_with(order_id="")
    with pytest.raises(ValidationError, match="it declares \\['by_region'\\]"):
        Refund.query(index="by_tenant", tenant_id="t1")


async def test_async_queries(shop: Table) -> None:
    for tenant, region, created, order_id in ORDERS:
        await Order(tenant_id=tenant, region=region, created=created, order_id=order_id).asave()
    eu = Order.aquery(index="by_region", tenant_id="t1", region="eu")
    assert [o.order_id for o in await eu.sk_ge(created=2).aall()] == ["c", "a"]
    assert await eu.acount() == 4
    result = await Collection(Order, Refund, index="by_region").afetch(tenant_id="t1", region="us")
    assert [o.order_id for o in result.items] == ["d"]


def test_cli_chart_columns() -> None:
    from rich.console import Console

    from dynamodel.cli._schema import chart

    console = Console(width=250, record=True)
    console.print(chart(MK))
    text = console.export_text()
    assert "tenant_id, region" in text and "created, order_id" in text
    assert "(tenant_id, where)" in text  # Refund's field stored as region
