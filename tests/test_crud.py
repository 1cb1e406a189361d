"""Single-item operations against the local DynamoDB, each through the sync and the async API:
get, save, create, update, update_item, delete, delete_item, conditions, sparse indexes,
projections and consistent reads."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from conftest import SyncIO, user_items
from shop_models import T0, Customer, Order, order

from dynamodel import Attr, ConditionFailed, ItemNotFound, Table, ValidationError
from dynamodel.io.clients import default_connection

pytestmark = pytest.mark.usefixtures("table")


def raw_item(ddb: Any, instance: Any) -> dict[str, Any]:
    """The item as stored, read with plain boto3 (consistent)."""
    response = ddb.get_item(TableName="app", Key=instance.item_key(), ConsistentRead=True)
    return response.get("Item", {})  # type: ignore[no-any-return]


def ann(**extra: Any) -> Customer:
    values: dict[str, Any] = {"customer_id": "c1", "name": "Ann", "email": "ann@example.com"}
    return Customer(**{**values, **extra})


# -- get / save / create ---------------------------------------------------------------------------


async def test_save_and_get(io: SyncIO, ddb: Any) -> None:
    customer = ann(tags={"vip", "new"}, expires_at=1_900_000_000)
    await io.save(customer)
    assert await io.get(Customer, customer_id="c1") == customer
    assert await io.get(Customer, customer_id="c1", consistent=True) == customer
    stored = raw_item(ddb, customer)
    assert stored["pk"] == {"S": "CUSTOMER#c1"}
    assert stored["sk"] == {"S": "PROFILE"}
    assert stored["_type"] == {"S": "Customer"}
    assert stored["gsi1pk"] == {"S": "EMAIL#ann@example.com"}
    assert stored["gsi1sk"] == {"S": "CUSTOMER"}
    assert stored["expires_at"] == {"N": "1900000000"}
    assert sorted(stored["tags"]["SS"]) == ["new", "vip"]


async def test_save_overwrites(io: SyncIO) -> None:
    await io.save(ann())
    await io.save(ann(name="Ann B"))
    assert (await io.get(Customer, customer_id="c1")).name == "Ann B"


async def test_async_path_uses_the_async_client(ddb: Any) -> None:
    await ann().asave()
    client = await default_connection().aclient()
    assert client is not ddb and client.meta.endpoint_url == ddb.meta.endpoint_url


async def test_get_missing(io: SyncIO) -> None:
    with pytest.raises(ItemNotFound) as info:
        await io.get(Customer, customer_id="nobody")
    assert info.value.key == {"customer_id": "nobody"}
    assert "nobody" in str(info.value)
    assert await io.get_or_none(Customer, customer_id="nobody") is None


async def test_get_coerces_key_fields(io: SyncIO) -> None:
    await io.save(order(7))
    found = await io.get(
        Order, customer_id="c1", order_id="7", placed_at="2024-05-01T16:30:00+00:00"
    )
    assert found == order(7)


async def test_create_and_conflict_carries_current_item(io: SyncIO) -> None:
    await io.create(ann())
    with pytest.raises(ConditionFailed) as info:
        await io.create(ann(name="Impostor"))
    error = info.value
    assert error.code == "ConditionalCheckFailedException"
    assert error.current == ann()
    assert isinstance(error.current, Customer)
    assert error.item is not None
    assert error.item["name"] == {"S": "Ann"}
    assert error.item["pk"] == {"S": "CUSTOMER#c1"}
    assert (await io.get(Customer, customer_id="c1")).name == "Ann"


async def test_create_with_extra_condition(io: SyncIO) -> None:
    # the extra condition is ANDed with "no item with this key exists"
    with pytest.raises(ConditionFailed):
        await io.create(ann(), condition=Attr("status") == "active")
    await io.create(ann(), condition=Attr("status").not_exists())
    assert await io.get(Customer, customer_id="c1") == ann()


async def test_conditional_save(io: SyncIO) -> None:
    await io.save(ann(status="active"))
    await io.save(ann(name="Ann 2"), condition=Attr("status") == "active")
    with pytest.raises(ConditionFailed) as info:
        await io.save(ann(name="Ann 3"), condition=Attr("status") == "closed")
    assert info.value.current == ann(name="Ann 2")
    assert info.value.item["name"] == {"S": "Ann 2"}  # type: ignore[index]


async def test_condition_failure_on_missing_item_has_no_current(io: SyncIO) -> None:
    with pytest.raises(ConditionFailed) as info:
        await io.save(ann(), condition=Attr("name").exists())
    assert info.value.item is None
    assert info.value.current is None


# -- update ----------------------------------------------------------------------------------------


async def test_update_returns_new_state(io: SyncIO) -> None:
    customer = ann(tags={"a"})
    await io.save(customer)
    updated = await io.update(
        customer,
        Attr("name").set("Annie"),
        Attr("tags").add({"b", "c"}),
        Attr("expires_at").remove(),
    )
    assert isinstance(updated, Customer)
    assert updated.name == "Annie"
    assert updated.tags == {"a", "b", "c"}
    assert updated.expires_at is None
    assert await io.get(Customer, customer_id="c1") == updated
    again = await io.update(
        updated,
        Attr("tags").delete({"a", "b", "c"}),
        Attr("expires_at").set_if_not_exists(100),
        Attr("name").set_if_not_exists("ignored"),
    )
    assert again.tags == set()  # an emptied set disappears and reads back empty
    assert again.expires_at == 100
    assert again.name == "Annie"
    third = await io.update(again, Attr("expires_at").set(Attr("expires_at") + 5))
    assert third.expires_at == 105


async def test_update_counters_lists_maps_and_remove(io: SyncIO) -> None:
    await io.save(ann(history=["a"], address={"city": "Oslo"}))
    updated = await io.update(
        ann(),
        Attr("visits").add(3),
        Attr("history").append(["b", "c"]),
        Attr("address.zip").set("0150"),
        Attr("tags").add({"x"}),
    )
    assert updated.visits == 3
    assert updated.history == ["a", "b", "c"]
    assert updated.address == {"city": "Oslo", "zip": "0150"}
    assert updated.tags == {"x"}
    updated = await io.update(
        updated,
        Attr("visits").set(Attr("visits") - 1),
        Attr("history").prepend(["z"]),
        Attr("address.city").remove(),
    )
    assert updated.visits == 2
    assert updated.history == ["z", "a", "b", "c"]
    assert updated.address == {"zip": "0150"}
    updated = await io.update(updated, Attr("history[1]").remove(), Attr("email").set("e@x"))
    assert updated.history == ["z", "b", "c"]


async def test_update_decimal_arithmetic_and_remove_to_default(io: SyncIO) -> None:
    await io.save(order(1, note="n"))
    updated = await io.update(
        order(1),
        Attr("amount").add(Decimal("0.10")),
        Attr("note").remove(),
    )
    assert updated.amount == Decimal("0.35")
    assert updated.note == ""  # removed attribute -> field default
    updated = await io.update(updated, Attr("amount").set(Attr("amount") - Decimal("0.05")))
    assert updated.amount == Decimal("0.30")
    with pytest.raises(ValidationError, match="lsi1"):  # an index key field needs a plain value
        await io.update(updated, Attr("total_cents").add(1))


async def test_update_missing_item_is_item_not_found(io: SyncIO) -> None:
    with pytest.raises(ItemNotFound):
        await io.update(ann(), Attr("name").set("Ghost"))
    with pytest.raises(ItemNotFound):
        await io.update_item(Customer, {"customer_id": "ghost"}, [Attr("name").set("G")])
    with pytest.raises(ItemNotFound):  # a user condition on a missing item: still not found
        await io.update(ann(), Attr("name").set("G"), condition=Attr("status") == "active")
    assert await io.get_or_none(Customer, customer_id="c1") is None
    assert await io.get_or_none(Customer, customer_id="ghost") is None


async def test_update_condition_failure_carries_current(io: SyncIO) -> None:
    await io.save(ann(status="closed"))
    with pytest.raises(ConditionFailed) as info:
        await io.update(ann(), Attr("name").set("X"), condition=Attr("status") == "active")
    assert not isinstance(info.value, ItemNotFound)
    assert info.value.current == ann(status="closed")


async def test_update_item_by_key(io: SyncIO) -> None:
    await io.save(ann())
    updated = await io.update_item(
        Customer,
        {"customer_id": "c1"},
        [Attr("status").set("vip")],
        condition=Attr("name") == "Ann",
    )
    assert updated == ann(status="vip")


async def test_update_item_upsert_creates_a_readable_item(io: SyncIO) -> None:
    created = await io.update_item(
        Customer,
        {"customer_id": "c9"},
        [Attr("name").set("Zed"), Attr("email").set("zed@example.com")],
        upsert=True,
    )
    expected = Customer(customer_id="c9", name="Zed", email="zed@example.com")
    assert created == expected
    assert await io.get(Customer, customer_id="c9") == expected


async def test_update_validates_values_before_sending(io: SyncIO) -> None:
    await io.save(ann())
    with pytest.raises(ValidationError):
        await io.update(ann(), Attr("expires_at").set("not a number"))
    with pytest.raises(ValidationError):
        await io.update(ann(), Attr("customer_id").set("c2"))
    assert await io.get(Customer, customer_id="c1") == ann()


# -- sparse and moving index keys ------------------------------------------------------------------


async def test_sparse_gsi(io: SyncIO, ddb: Any) -> None:
    plain = order(1)
    await io.save(plain)
    stored = raw_item(ddb, plain)
    assert "gsi2pk" not in stored and "gsi2sk" not in stored
    assert stored["coupon"] == {"NULL": True}
    assert await io.all(Order.query(index="gsi2", coupon="SPRING")) == []

    # setting the field puts the item in the index
    with_coupon = await io.update(plain, Attr("coupon").set("SPRING"))
    stored = raw_item(ddb, plain)
    assert stored["gsi2pk"] == {"S": "COUPON#SPRING"}
    assert stored["gsi2sk"] == {"S": "1".zfill(20)}
    assert await io.all(Order.query(index="gsi2", coupon="SPRING")) == [with_coupon]

    # changing it rewrites the key
    moved = await io.update(with_coupon, Attr("coupon").set("SUMMER"))
    assert raw_item(ddb, plain)["gsi2pk"] == {"S": "COUPON#SUMMER"}
    assert await io.all(Order.query(index="gsi2", coupon="SPRING")) == []
    assert await io.all(Order.query(index="gsi2", coupon="SUMMER")) == [moved]

    # setting it to None takes the item out of the index
    cleared = await io.update(moved, Attr("coupon").set(None))
    assert cleared.coupon is None
    stored = raw_item(ddb, plain)
    assert "gsi2pk" not in stored and "gsi2sk" not in stored
    assert await io.all(Order.query(index="gsi2", coupon="SUMMER")) == []

    # and so does removing it
    await io.update(cleared, Attr("coupon").set("AUTUMN"))
    assert raw_item(ddb, plain)["gsi2pk"] == {"S": "COUPON#AUTUMN"}
    removed = await io.update(cleared, Attr("coupon").remove())
    assert removed.coupon is None
    stored = raw_item(ddb, plain)
    assert "gsi2pk" not in stored and "gsi2sk" not in stored and "coupon" not in stored


async def test_saving_without_the_field_removes_the_index_key(io: SyncIO, ddb: Any) -> None:
    await io.save(order(2, coupon="X"))
    assert "gsi2pk" in raw_item(ddb, order(2))
    await io.save(order(2))
    assert "gsi2pk" not in raw_item(ddb, order(2))


async def test_status_change_moves_gsi_key(io: SyncIO, ddb: Any) -> None:
    await io.save(order(1))
    await io.save(order(2))
    shipped = await io.update(order(1), Attr("status").set("shipped"))
    assert raw_item(ddb, order(1))["gsi1pk"] == {"S": "STATUS#shipped"}
    assert await io.all(Order.query(index="gsi1", status="shipped")) == [shipped]
    assert [o.order_id for o in await io.all(Order.query(index="gsi1", status="open"))] == [2]


async def test_update_item_rewrites_index_from_key_fields(io: SyncIO, ddb: Any) -> None:
    await io.save(order(3))
    key = {"customer_id": "c1", "order_id": 3, "placed_at": T0 + dt.timedelta(hours=3)}
    updated = await io.update_item(Order, key, [Attr("status").set("late")])
    assert updated.status == "late"
    assert raw_item(ddb, order(3))["gsi1pk"] == {"S": "STATUS#late"}
    assert raw_item(ddb, order(3))["gsi1sk"] == {
        "S": "2024-05-01T12:30:00.000000Z#" + "3".zfill(20)
    }


# -- delete ----------------------------------------------------------------------------------------


async def test_delete(io: SyncIO) -> None:
    await io.save(ann())
    await io.delete(ann())
    assert await io.get_or_none(Customer, customer_id="c1") is None
    await io.delete(ann())  # deleting a missing item is not an error


async def test_conditional_delete(io: SyncIO) -> None:
    await io.save(ann(status="active"))
    with pytest.raises(ConditionFailed) as info:
        await io.delete(ann(), condition=Attr("status") == "closed")
    assert info.value.current == ann(status="active")
    await io.delete(ann(), condition=Attr("status") == "active")
    assert await io.get_or_none(Customer, customer_id="c1") is None


async def test_delete_item_returns_old_item(io: SyncIO) -> None:
    await io.save(order(4, coupon="C"))
    key = {"customer_id": "c1", "order_id": 4, "placed_at": T0 + dt.timedelta(hours=4)}
    assert await io.delete_item(Order, key) == order(4, coupon="C")
    assert await io.delete_item(Order, key) is None
    await io.save(order(4))
    with pytest.raises(ConditionFailed) as info:
        await io.delete_item(Order, key, condition=Attr("status") == "shipped")
    assert info.value.current == order(4)
    assert await io.get_or_none(Order, **key) == order(4)


# -- projections and consistent reads ------------------------------------------------------------


async def test_projected_get_is_partial_and_refuses_save(io: SyncIO) -> None:
    await io.save(order(5, note="fragile"))
    partial = await io.get(
        Order,
        customer_id="c1",
        order_id=5,
        placed_at=T0 + dt.timedelta(hours=5),
        projection=["status", "note"],
    )
    assert partial.status == "open"
    assert partial.note == "fragile"
    assert partial.model_fields_set == {"status", "note"}
    with pytest.raises(ValidationError, match="projection"):
        await io.save(partial)
    with pytest.raises(ValidationError, match="projection"):
        await io.create(partial)
    assert (await io.get(Order, customer_id="c1", order_id=5, placed_at=order(5).placed_at)) == (
        order(5, note="fragile")
    )


async def test_projected_query_is_partial(io: SyncIO) -> None:
    for n in (1, 2):
        await io.save(order(n, note=f"n{n}"))
    partials = await io.all(Order.query(customer_id="c1").project("order_id", "note"))
    assert [(p.order_id, p.note) for p in partials] == [(1, "n1"), (2, "n2")]
    assert all(p.model_fields_set == {"order_id", "note"} for p in partials)
    with pytest.raises(ValidationError):
        await io.save(partials[0])


async def test_projection_naming_managed_attributes(io: SyncIO) -> None:
    """Naming the type or key attributes in a projection must not break the query (dynamodel
    adds them itself to route items and build cursors)."""
    await io.save(order(1))
    for paths in [("status", "_type"), ("status", "pk", "sk"), ("status", "gsi1pk")]:
        partials = await io.all(Order.query(customer_id="c1").project(*paths))
        assert [p.status for p in partials] == ["open"], paths


async def test_consistent_reads(io: SyncIO) -> None:
    await io.save(order(1))
    assert await io.all(Order.query(customer_id="c1").consistent()) == [order(1)]
    lsi = Order.query(index="lsi1", customer_id="c1").consistent()
    assert await io.all(lsi) == [order(1)]
    with pytest.raises(ValidationError, match="GSI"):
        Order.query(index="gsi1", status="open").consistent()


# -- a table bound to another physical name ------------------------------------------------------


async def test_errors_for_a_missing_table(io: SyncIO, table: Table) -> None:
    from dynamodel import TableNotFound

    table.bind(name="app-missing")
    with pytest.raises(TableNotFound):
        await io.get(Customer, customer_id="c1")
    with pytest.raises(TableNotFound):
        await io.save(ann())


# -- refusals before sending, against the real server ------------------------------------------


async def test_item_over_400kb_is_refused_and_nothing_is_written(io: SyncIO, ddb: Any) -> None:
    from dynamodel import ItemTooLarge

    huge = ann(history=["x" * 1000] * 410)
    with pytest.raises(ItemTooLarge) as info:
        await io.save(huge)
    assert info.value.size > 409_600
    assert f"{info.value.size:,}" in str(info.value)
    with pytest.raises(ItemTooLarge):
        await io.create(huge)
    assert user_items(ddb.scan(TableName="app")["Items"]) == []


# -- partial instances -----------------------------------------------------------------------------


async def test_update_of_a_projected_instance(io: SyncIO) -> None:
    await io.save(ann(visits=1))
    partial = await io.get(
        Customer, customer_id="c1", projection=["customer_id", "visits", "email"]
    )
    updated = await io.update(partial, Attr("visits").add(1), Attr("email").set("new@example.com"))
    assert updated == ann(visits=2, email="new@example.com")  # ALL_NEW is a whole model
    assert (await io.all(Customer.query(index="gsi1", email="new@example.com"))) == [updated]
    without_key = await io.get(Customer, customer_id="c1", projection=["visits"])
    with pytest.raises(ValidationError, match="customer_id"):
        await io.update(without_key, Attr("visits").add(1))


async def test_consumed_capacity_is_reported(io: SyncIO) -> None:
    await io.save(ann())
    pages = await io.pages(Customer.query(customer_id="c1").return_consumed_capacity())
    assert pages[0].consumed_capacity is not None
    assert pages[0].consumed_capacity["TableName"] == "app"
