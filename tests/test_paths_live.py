"""Checked paths against the server: nested aliased fields are addressed by their stored names
(conditions, updates, filters, projections; before #19 the nested segments were sent by Python
name and silently matched nothing), typed references work end to end, and raw=True reaches
attributes the model does not declare."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from dynamodel import GSI, Attr, Collection, ConditionFailed, Model, Table, ValidationError

LIVE = Table("paths-live", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])


class Line(BaseModel):
    sku: str = Field(alias="s")
    qty: int = Field(default=1, alias="q")


class Address(BaseModel):
    city: str = Field(alias="c")
    street: str = Field(default="", alias="st")


class Parcel(Model):
    class Meta:
        table = LIVE
        pk = "CUSTOMER#{customer_id}"
        sk = "PARCEL#{parcel_id}"

    customer_id: str
    parcel_id: str
    status: str = "open"
    address: Address = Field(alias="addr")
    lines: list[Line] = []
    notes: dict[str, Line] = {}


class Letter(Model):
    class Meta:
        table = LIVE
        pk = "CUSTOMER#{customer_id}"
        sk = "LETTER#{letter_id}"

    customer_id: str
    letter_id: str
    text: str = ""


@pytest.fixture
def live(fresh_db: Any) -> Any:
    LIVE.create(poll=0.01)
    yield
    LIVE.unbind()


def parcel() -> Parcel:
    return Parcel(
        customer_id="c1",
        parcel_id="p1",
        address=Address(c="Oslo", st="Main"),
        lines=[Line(s="A", q=2)],
        notes={"gift": Line(s="G")},
    )


def test_nested_aliases_are_stored_names_in_conditions_and_updates(live: Any) -> None:
    item = parcel()
    item.save()
    assert item.to_item()["addr"]["M"]["c"] == {"S": "Oslo"}  # how it is stored
    # a condition on a nested aliased field holds (it was sent as addr.city: never true)
    updated = item.update(
        Attr("address.city").set("Bergen"),
        Attr("lines[0].qty").add(3),
        Attr("notes.gift.sku").set("H"),
        condition=(Attr("address.city") == "Oslo") & (Attr("lines[0].sku") == "A"),
    )
    assert updated.address.city == "Bergen"
    assert updated.lines[0].qty == 5
    assert updated.notes["gift"].sku == "H"
    with pytest.raises(ConditionFailed):
        item.update(Attr("status").set("x"), condition=Attr("address.city") == "Oslo")
    raw = LIVE.connection.client().get_item(TableName=LIVE.physical_name, Key=item.item_key())[
        "Item"
    ]
    assert "city" not in raw["addr"]["M"] and raw["addr"]["M"]["c"] == {"S": "Bergen"}


def test_typed_references_end_to_end(live: Any) -> None:
    item = parcel()
    item.save()
    city = Parcel.attr(lambda p: p.address.city)
    qty = Parcel.attr(lambda p: p.lines[0].qty)
    updated = item.update(city.set("Tromso"), qty.add(1), condition=city == "Oslo")
    assert (updated.address.city, updated.lines[0].qty) == ("Tromso", 3)
    # (moto does not resolve a list index in a ProjectionExpression: lines[0].q is not projected)
    found = Parcel.query(customer_id="c1").filter(city == "Tromso").project(city).all()
    assert len(found) == 1
    assert found[0].address.city == "Tromso"  # a partial model, nested by stored names


def test_filters_and_projections_on_nested_aliases(live: Any) -> None:
    parcel().save()
    query = Parcel.query(customer_id="c1")
    assert query.filter(Attr("address.city") == "Oslo").count() == 1
    assert query.filter(Attr("lines[0].sku").begins_with("A")).count() == 1
    got = Parcel.get(customer_id="c1", parcel_id="p1", projection=["address.city", "status"])
    assert got.model_fields_set >= {"status"}
    with pytest.raises(ValidationError, match="did you mean 'city'"):
        query.filter(Attr("address.ctiy") == "Oslo")


def test_raw_reaches_attributes_the_model_does_not_declare(live: Any) -> None:
    item = parcel()
    item.save()
    with pytest.raises(ValidationError, match="Parcel has no field 'from_v2'"):
        item.update(Attr("from_v2").set(1))
    item.update(Attr("from_v2", raw=True).set(1))
    query = Parcel.query(customer_id="c1")
    assert query.filter(Attr("from_v2", raw=True) == 1).count() == 1
    item.update(Attr("status").set("done"), condition=Attr("from_v2", raw=True).exists())


def test_collection_filters_accept_any_members_paths(live: Any) -> None:
    parcel().save()
    Letter(customer_id="c1", letter_id="l1", text="hello").save()
    view = Collection(Parcel, Letter)
    by_city = view.query(customer_id="c1").filter(Attr("address.city") == "Oslo").all()
    assert [type(i) for i in by_city] == [Parcel]
    by_text = view.query(customer_id="c1").filter(Attr("text") == "hello").all()
    assert [type(i) for i in by_text] == [Letter]
    with pytest.raises(ValidationError, match="no model of this query"):
        view.query(customer_id="c1").filter(Attr("txt") == "hello")
