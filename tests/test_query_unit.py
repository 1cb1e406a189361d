"""Unit tests for queries without a server: cursors, the request parameters a query builds, and
the pagination flow driven by hand (limits, cursors, skipped and unknown items)."""

from __future__ import annotations

import base64
import json
import random
import time
from typing import Any

import pytest
from shop_models import T0, Customer, Note, Order

from dynamodel import Attr, Collection, Page, ValidationError
from dynamodel.core.flows import CONNECTION_INPUTS, Emit, Inputs, Request
from dynamodel.ops.pagination import decode_cursor, encode_cursor
from dynamodel.ops.query import MAX_CHAR
from dynamodel.ops.shard_guard import forget_shard_checks
from dynamodel.testing import trust_shard_layouts


@pytest.fixture(autouse=True)
def _layouts_checked() -> Any:
    """The flows here are driven by hand with each query's own responses only."""
    trust_shard_layouts(Customer, Note, Order)
    yield
    forget_shard_checks()


# -- cursors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        {"pk": {"S": "CUSTOMER#c1"}, "sk": {"S": "ORDER#2024#0001"}},
        {"pk": {"S": "ünï©ødé 🙂"}, "sk": {"S": "#x = :y"}},
        {"id": {"N": "-12.5"}},
        {"pk": {"B": b"\x00\xff\x10binary"}, "sk": {"B": b""}},
        {"pk": {"S": "a"}, "sk": {"N": "1"}, "gsi1pk": {"S": "b"}, "gsi1sk": {"B": b"\x01"}},
    ],
)
def test_cursor_round_trip(key: dict[str, Any]) -> None:
    cursor = encode_cursor(key)
    assert isinstance(cursor, str)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor(cursor) == key


def test_cursor_of_none_is_none() -> None:
    assert encode_cursor(None) is None


def test_cursor_accepts_bytearray_keys() -> None:
    cursor = encode_cursor({"pk": {"B": bytearray(b"ab")}})
    assert decode_cursor(cursor) == {"pk": {"B": b"ab"}}  # type: ignore[arg-type]


def _b64(data: Any) -> str:
    text = data if isinstance(data, str) else json.dumps(data)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor!",
        "%%%%",
        "\u00e9t\u00e9",
        _b64("not json"),
        _b64([1, 2]),
        _b64(5),
        _b64({"v": 2, "k": {}}),
        _b64({"v": 1, "k": []}),
        _b64({"v": 1, "k": {"pk": {"SS": ["a"]}}}),
        _b64({"v": 1, "k": {"pk": "S"}}),
        _b64({"v": 1, "k": {"pk": {}}}),
        _b64({"v": 1, "k": {"pk": {"S": "a", "N": "1"}}}),
        _b64({"v": 1, "k": {"pk": {"S": "a"}}})[:-7],  # truncated
        _b64({"v": 1, "k": {"pk": {"S": "a"}}}) + "A",  # one character too many
    ],
)
def test_bad_cursor_is_a_validation_error(cursor: str) -> None:
    with pytest.raises(ValidationError, match="invalid cursor"):
        decode_cursor(cursor)


def test_start_from_rejects_bad_cursor_and_accepts_none() -> None:
    query = Order.query(customer_id="c1")
    with pytest.raises(ValidationError):
        query.start_from("garbage")
    assert query.start_from(None).start_key is None
    key = {"pk": {"S": "CUSTOMER#c1"}, "sk": {"S": "ORDER#x"}}
    assert query.start_from(encode_cursor(key)).start_key == key


# -- parameters of queries and scans ------------------------------------------------------------


def resolve(params: dict[str, Any], member: str) -> str:
    """An expression with its placeholders replaced: names bare, values as ``'text'``/numbers."""
    text = params[member]
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    for placeholder in sorted(names, key=len, reverse=True):
        text = text.replace(placeholder, names[placeholder])
    for placeholder in sorted(values, key=len, reverse=True):
        ((tag, inner),) = values[placeholder].items()
        text = text.replace(placeholder, repr(inner) if tag == "S" else str(inner))
    return text


def test_model_query_is_scoped_to_its_sort_key_prefix() -> None:
    params = Order.query(customer_id="c1")._params()
    assert params["TableName"] == "app"
    assert resolve(params, "KeyConditionExpression") == (
        "pk = 'CUSTOMER#c1' AND begins_with(sk, 'ORDER#')"
    )
    assert "IndexName" not in params and "ScanIndexForward" not in params
    # a constant sort key (the profile) is matched by its prefix
    params = Customer.query(customer_id="c1")._params()
    assert resolve(params, "KeyConditionExpression") == (
        "pk = 'CUSTOMER#c1' AND begins_with(sk, 'PROFILE')"
    )


@pytest.mark.parametrize(
    "build",
    [
        lambda pk: Order.query(customer_id=pk),
        lambda pk: Order.query(customer_id=pk).reverse(),
        lambda pk: Order.query(customer_id=pk).consistent().return_consumed_capacity("INDEXES"),
        lambda pk: Order.query(index="gsi1", status=pk),
        lambda pk: Order.query(index="lsi1", customer_id=pk).reverse(),
        lambda pk: Customer.query(customer_id=pk).page_size(3).limit(7),
    ],
)
def test_plain_query_requests_built_once_match_the_general_builder(build: Any) -> None:
    # a plain query's request is cached per shape: only the partition key value is filled in
    first, second = build("c1"), build("c2 ünï©ødé")
    assert first._params() == first._build_params()
    assert second._params() == second._build_params()
    # each call gets its own dicts: changing one request leaves the next one alone
    params = first._params()
    params["ExpressionAttributeValues"].clear()
    params["ExpressionAttributeNames"].clear()
    assert first._params() == first._build_params()


def test_queries_with_conditions_filters_or_projections_are_built_each_time() -> None:
    for query in (
        Order.query(customer_id="c1").sk_begins_with(placed_at=T0),
        Order.query(customer_id="c1").filter(Attr("status") == "open"),
        Order.query(customer_id="c1").project("status"),
    ):
        assert query._plain_shape() is None
        assert query._params() == query._build_params()


def test_sort_key_conditions_with_partial_templates() -> None:
    q = Order.query(customer_id="c1")
    day = "ORDER#2024-05-01T09:30:00.000000Z#"
    full = day + "7".zfill(20)
    high = day + MAX_CHAR

    def key_condition(query: Any) -> str:
        params = query._params()
        # a sort key range may span other entity types: only Orders are kept, server-side
        assert resolve(params, "FilterExpression") == "_type = 'Order'"
        text = resolve(params, "KeyConditionExpression")
        prefix = "pk = 'CUSTOMER#c1' AND "
        assert text.startswith(prefix)
        return text[len(prefix) :]

    assert key_condition(q.sk_eq(placed_at=T0, order_id=7)) == f"sk = {full!r}"
    assert key_condition(q.sk_begins_with(placed_at=T0)) == f"begins_with(sk, {day!r})"
    assert key_condition(q.sk_begins_with()) == "begins_with(sk, 'ORDER#')"
    assert key_condition(q.sk_between({"placed_at": T0}, {"placed_at": T0})) == (
        f"sk BETWEEN {day!r} AND {high!r}"
    )
    assert (
        key_condition(
            q.sk_between({"placed_at": T0, "order_id": 7}, {"placed_at": T0, "order_id": 7})
        )
        == f"sk BETWEEN {full!r} AND {full!r}"
    )
    assert key_condition(q.sk_lt(placed_at=T0)) == f"sk < {day!r}"
    assert key_condition(q.sk_le(placed_at=T0)) == f"sk <= {high!r}"
    assert key_condition(q.sk_gt(placed_at=T0)) == f"sk > {high!r}"
    assert key_condition(q.sk_ge(placed_at=T0)) == f"sk >= {day!r}"
    assert key_condition(q.sk_le(placed_at=T0, order_id=7)) == f"sk <= {full!r}"
    assert key_condition(q.sk_gt(placed_at=T0, order_id=7)) == f"sk > {full!r}"
    assert key_condition(q.sk_eq("ORDER#raw")) == "sk = 'ORDER#raw'"
    assert key_condition(q.sk_between("A", "B")) == "sk BETWEEN 'A' AND 'B'"


def test_sort_key_condition_errors() -> None:
    q = Order.query(customer_id="c1")
    with pytest.raises(ValidationError, match="sk_begins_with"):
        q.sk_eq(placed_at=T0)
    with pytest.raises(ValidationError, match="one sort key condition"):
        q.sk_ge(placed_at=T0).sk_le(placed_at=T0)
    with pytest.raises(ValidationError, match="either"):
        q.sk_eq("raw", order_id=1)
    with pytest.raises(ValidationError, match="unexpected fields"):
        q.sk_ge(status="open")
    with pytest.raises(ValidationError):
        q.sk_ge(order_id="not-an-int")
    with pytest.raises(ValidationError, match="order_id"):  # would be silently ignored
        q.sk_ge(order_id=7)


def test_query_builders_are_immutable() -> None:
    q = Order.query(customer_id="c1")
    q.limit(3).filter(Attr("status") == "x").reverse().sk_ge(placed_at=T0)
    assert q.limit_count is None and q.filter_condition is None and q.forward
    assert q.sk_condition is None


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        Order.query(customer_id="c1").limit(0)
    with pytest.raises(ValidationError):
        Order.query(customer_id="c1").page_size(0)


def test_query_partition_key_fields() -> None:
    with pytest.raises(ValidationError, match="needs field 'customer_id'"):
        Order.query()
    with pytest.raises(ValidationError, match="unexpected fields"):
        Order.query(customer_id="c1", order_id=1)
    with pytest.raises(ValidationError, match="no key templates for index 'gsi2'"):
        Customer.query(index="gsi2", email="x")


def test_index_queries() -> None:
    params = Order.query(index="gsi1", status="open").reverse()._params()
    assert params["IndexName"] == "gsi1"
    assert params["ScanIndexForward"] is False
    assert resolve(params, "KeyConditionExpression") == "gsi1pk = 'STATUS#open'"
    lsi = Order.query(index="lsi1", customer_id="c1").sk_ge(total_cents=5).consistent()
    params = lsi._params()
    assert params["IndexName"] == "lsi1" and params["ConsistentRead"] is True
    assert resolve(params, "KeyConditionExpression") == (
        "pk = 'CUSTOMER#c1' AND lsi1sk >= 'TOTAL#00000000000000000005'"
    )
    with pytest.raises(ValidationError, match="GSI"):
        Order.query(index="gsi1", status="open").consistent()


def test_projection_and_capacity_params() -> None:
    params = (
        Order.query(customer_id="c1").project("status", "note").return_consumed_capacity()._params()
    )
    projected = resolve(params, "ProjectionExpression").split(", ")
    # the aliased field is read by its stored name; the type attribute routes items to models
    assert projected[:2] == ["status", "data"]
    assert "_type" in projected
    assert params["ReturnConsumedCapacity"] == "TOTAL"


def test_scan_params() -> None:
    params = Order.scan().segment(1, 4)._params()
    assert params["TableName"] == "app"
    assert (params["Segment"], params["TotalSegments"]) == (1, 4)
    assert resolve(params, "FilterExpression") == "_type = 'Order'"
    params = Order.scan().filter(Attr("status") == "open")._params()
    assert resolve(params, "FilterExpression") == "(status = 'open') AND (_type = 'Order')"
    assert [s.segment_index for s in Order.scan().segments(3)] == [0, 1, 2]
    with pytest.raises(ValidationError):
        Order.scan().segment(4, 4)
    with pytest.raises(ValidationError):
        Order.scan().limit(3).parallel(2)
    with pytest.raises(ValidationError, match="no index"):
        Order.scan(index="nope")


def test_collection_query_params_and_definition_errors() -> None:
    params = Collection(Customer, Order, Note).query(customer_id="c1")._params()
    assert resolve(params, "KeyConditionExpression") == "pk = 'CUSTOMER#c1'"
    assert "FilterExpression" not in params
    with pytest.raises(ValidationError):
        Collection()
    with pytest.raises(ValidationError, match="share one partition key template"):
        Collection(Customer, Order, index="gsi1")
    with pytest.raises(ValidationError, match="no templates for index"):
        Collection(Customer, Note, index="gsi1")


# -- the pagination flow, driven by hand -----------------------------------------------------------


def _raw(n: int, entity: str = "Order") -> dict[str, Any]:
    item = Order(customer_id="c1", order_id=n, placed_at=T0).to_item()
    item["_type"] = {"S": entity}
    return item


def _drive(flow: Any, responses: list[dict[str, Any]]) -> tuple[list[Page[Any]], list[dict]]:
    """Run a paginate flow: answer each Request from ``responses``; collect pages and params."""
    pages: list[Page[Any]] = []
    sent: list[dict[str, Any]] = []
    step = next(flow)
    try:
        while True:
            if isinstance(step, Emit):
                pages.append(step.value)
                step = flow.send(None)
            elif step is CONNECTION_INPUTS:  # the clock, for a table hiding expired items
                step = flow.send(Inputs(time.time, random.Random()))
            else:
                assert isinstance(step, Request)
                sent.append(step.params)
                step = flow.send(responses.pop(0))
    except StopIteration:
        pass
    return pages, sent


def _flow(query: Any) -> Any:
    return query._flow()


def _lek(n: int) -> dict[str, Any]:
    raw = _raw(n)
    return {"pk": raw["pk"], "sk": raw["sk"]}


def test_limit_reached_mid_page_sets_cursor_after_last_returned_item() -> None:
    query = Order.query(customer_id="c1").limit(7).page_size(5)
    pages, sent = _drive(
        _flow(query),
        [
            {
                "Items": [_raw(n) for n in range(1, 6)],
                "LastEvaluatedKey": _lek(5),
                "ScannedCount": 5,
            },
            {
                "Items": [_raw(n) for n in range(6, 11)],
                "LastEvaluatedKey": _lek(10),
                "ScannedCount": 5,
            },
        ],
    )
    assert [len(p) for p in pages] == [5, 2]
    assert [o.order_id for p in pages for o in p] == list(range(1, 8))
    assert [s["Limit"] for s in sent] == [5, 5]
    assert "ExclusiveStartKey" not in sent[0]
    assert sent[1]["ExclusiveStartKey"] == _lek(5)
    assert decode_cursor(pages[0].cursor) == _lek(5)  # type: ignore[arg-type]
    assert decode_cursor(pages[1].cursor) == _lek(7)  # type: ignore[arg-type]
    assert [p.request_number for p in pages] == [1, 2]


def test_limit_reached_exactly_at_page_end_keeps_service_cursor() -> None:
    query = Order.query(customer_id="c1").limit(5)
    pages, sent = _drive(
        _flow(query),
        [{"Items": [_raw(n) for n in range(1, 6)], "LastEvaluatedKey": _lek(5)}],
    )
    assert len(sent) == 1
    assert [len(p) for p in pages] == [5]
    assert decode_cursor(pages[0].cursor) == _lek(5)  # type: ignore[arg-type]


def test_pages_follow_last_evaluated_key_until_done() -> None:
    query = Order.query(customer_id="c1").start_from(encode_cursor(_lek(0)))
    pages, sent = _drive(
        _flow(query),
        [
            {"Items": [], "LastEvaluatedKey": _lek(3), "ScannedCount": 3},
            {"Items": [_raw(4)], "LastEvaluatedKey": _lek(6), "ScannedCount": 3},
            {"Items": [_raw(7)], "ScannedCount": 1},
        ],
    )
    assert sent[0]["ExclusiveStartKey"] == _lek(0)
    assert [s.get("ExclusiveStartKey") for s in sent[1:]] == [_lek(3), _lek(6)]
    assert "Limit" not in sent[0]
    assert [len(p) for p in pages] == [0, 1, 1]
    assert [p.scanned_count for p in pages] == [3, 3, 1]
    assert pages[-1].cursor is None


def test_single_model_query_skips_other_entities() -> None:
    query = Order.query(customer_id="c1").limit(2)
    pages, _ = _drive(
        _flow(query),
        [
            {
                "Items": [_raw(1), _raw(2, "Note"), _raw(3, "Mystery"), _raw(4)],
                "LastEvaluatedKey": _lek(9),
            }
        ],
    )
    (page,) = pages
    assert [o.order_id for o in page] == [1, 4]
    assert page.skipped == 2
    assert page.unknown == []


def test_collection_reports_unknown_entities() -> None:
    query = Collection(Customer, Order, Note).query(customer_id="c1")
    mystery = _raw(2, "Mystery")
    untyped = _raw(3)
    del untyped["_type"]
    pages, _ = _drive(_flow(query), [{"Items": [_raw(1), mystery, untyped]}])
    (page,) = pages
    assert [type(x) for x in page.items] == [Order]
    assert page.unknown == [mystery, untyped]


def test_index_query_cursor_includes_index_keys() -> None:
    query = Order.query(index="gsi1", status="open").limit(1)
    pages, _ = _drive(_flow(query), [{"Items": [_raw(1), _raw(2)]}])
    raw = _raw(1)
    assert decode_cursor(pages[0].cursor) == {  # type: ignore[arg-type]
        a: raw[a] for a in ("pk", "sk", "gsi1pk", "gsi1sk")
    }


def test_count_flow_follows_pages_and_drops_projection() -> None:
    query = Order.query(customer_id="c1").project("status")
    flow = query._count_flow()
    step = next(flow)
    assert step is CONNECTION_INPUTS  # the table hides expired items: the clock is asked
    step = flow.send(Inputs(lambda: 1_800_000_000.0, random.Random()))
    assert step.params["Select"] == "COUNT"
    assert {"N": "1800000000"} in step.params["ExpressionAttributeValues"].values()
    assert "ProjectionExpression" not in step.params
    step = flow.send({"Count": 3, "LastEvaluatedKey": _lek(3)})
    assert step.params["ExclusiveStartKey"] == _lek(3)
    with pytest.raises(StopIteration) as done:
        flow.send({"Count": 2})
    assert done.value.value == 5
