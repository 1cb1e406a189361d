"""Checked attribute paths (#19), server-free: resolution of paths against model declarations
(nested models, aliases, lists, tuples, dicts, unions, Any), the errors for undeclared ones,
``raw=True`` as the unchecked escape hatch, typed references (``Model.attr``), index names, and
proof that every entry point refuses before any request is sent."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field, RootModel

from dynamodel import (
    GSI,
    LSI,
    Attr,
    Collection,
    Connection,
    Model,
    MultiKey,
    RetryPolicy,
    Shards,
    Table,
    TransactWrite,
    TypedAttr,
    UnknownPath,
    ValidationError,
    present,
)
from dynamodel.core.expressions import Placeholders, render_condition, render_update
from dynamodel.modelling.paths import MAX_CACHED, PathResolver, resolver, resolver_for
from dynamodel.ops import items as R
from dynamodel.ops.shard_guard import forget_shard_checks

PT = Table(
    "paths-unit",
    indexes=[
        GSI("gsi1", pk="gsi1pk", sk="gsi1sk"),
        GSI("keys", pk="kpk", projection="KEYS_ONLY"),
        GSI("some", pk="spk", projection=["status", "t"]),
        LSI("lsi1", sk="lsi1sk"),
    ],
    ttl="expires",
)


class Line(BaseModel):
    sku: str = Field(alias="s")
    qty: int = 1


class Address(BaseModel):
    city: str = Field(alias="c")
    zip_code: str = Field(default="", serialization_alias="z")
    lines: list[Line] = []


class Lines(RootModel[list[Line]]):
    pass


class Other(BaseModel):
    city: str = "x"  # stored as "city": differs from Address.city ("c")


class Order(Model):
    class Meta:
        table = PT
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{order_id}"
        indexes = {
            "gsi1": ("STATUS#{status}", "{order_id}"),
            "keys": "K#{status}",
            "some": "S#{status}",
            "lsi1": "{order_id}",
        }
        # a sharded model: its first request would be a shard-record read
        shards = Shards(4, by="customer_id")

    customer_id: str
    order_id: str
    status: str = "open"
    total: int = 0
    title: str = Field(default="", alias="t")
    address: Address = Field(default_factory=lambda: Address(c="Oslo"), alias="addr")
    billing: Address | None = None
    lines: list[Line] = []
    pair: tuple[int, Line] | None = None
    by_day: dict[str, Line] = {}
    extra: Any = None
    loose: dict = {}  # type: ignore[type-arg]
    tags: set[str] = set()
    either: Address | Other | None = None
    wrapped: Lines | None = None


class Note(Model):
    class Meta:
        table = PT
        pk = "CUSTOMER#{customer_id}"
        sk = "NOTE#{note_id}"
        shards = Shards(4, by="customer_id")

    customer_id: str
    note_id: str
    text: str = ""
    status: int = 0
    title: str = ""  # stored as "title"; Order stores its title as "t"


def order(**extra: Any) -> Order:
    return Order(customer_id="c1", order_id="o1", **extra)


# -- resolution ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "stored"),
    [
        ("status", ("status",)),
        ("title", ("t",)),  # Python name -> alias
        ("t", ("t",)),  # the stored name itself
        ("address", ("addr",)),
        ("address.city", ("addr", "c")),  # nested alias (was rendered as "city")
        ("addr.c", ("addr", "c")),
        ("address.zip_code", ("addr", "z")),  # serialization alias: how it is stored
        ("address.lines[2].sku", ("addr", "lines", 2, "s")),
        ("billing.city", ("billing", "c")),  # Optional[Model]
        ("lines[0]", ("lines", 0)),
        ("lines[0].sku", ("lines", 0, "s")),
        ("pair[0]", ("pair", 0)),
        ("pair[1].sku", ("pair", 1, "s")),  # tuple[int, Line]: the type at that position
        ("by_day.monday.sku", ("by_day", "monday", "s")),  # dict[str, Line]: any key
        ("extra.anything[3].goes", ("extra", "anything", 3, "goes")),  # Any: unchecked
        ("loose.k.j", ("loose", "k", "j")),  # bare dict: values unchecked
        ("tags", ("tags",)),
        ("either.zip_code", ("either", "z")),  # only Address has it
        ("wrapped[0].sku", ("wrapped", 0, "s")),  # a RootModel is stored as its root
        # managed attributes: keys, type attribute, index keys, TTL
        ("pk", ("pk",)),
        ("sk", ("sk",)),
        ("_type", ("_type",)),
        ("gsi1pk", ("gsi1pk",)),
        ("lsi1sk", ("lsi1sk",)),
        ("expires", ("expires",)),
    ],
)
def test_declared_paths_resolve_to_stored_paths(path: str, stored: tuple[Any, ...]) -> None:
    assert resolver(Order).resolve(Attr(path).segments) == stored


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("stauts", ["Order", "'stauts'", "did you mean 'status'"]),
        ("address.ctiy", ["Order", "'address.ctiy'", "Address has no field 'ctiy'", "'city'"]),
        ("lines[0].skuu", ["'lines[0].skuu'", "Line has no field 'skuu'", "'sku'"]),
        ("lines.sku", ["'lines' is a list", "lines[0].sku"]),
        ("address[0]", ["'address' is a map (Address), not a list"]),
        ("pair[2]", ["'pair' holds 2 elements"]),
        ("by_day[0]", ["'by_day' is a map, not a list"]),
        ("status.x", ["'status' is a str; it has no field 'x'"]),
        ("total.x", ["'total' is an int"]),
        ("tags[0]", ["'tags' is a set"]),
        ("pk.x", ["'pk' is a key or type attribute"]),
        ("billing.zipcode", ["Address has no field 'zipcode'", "'zip_code'"]),
        ("model_dump", ["Order has no field 'model_dump'"]),
        ("wrapped.root", ["'wrapped' is a list"]),
    ],
)
def test_undeclared_paths_are_refused_with_the_closest_names(
    path: str, expected: list[str]
) -> None:
    with pytest.raises(ValidationError) as info:
        resolver(Order).resolve(Attr(path).segments)
    for part in expected:
        assert part in str(info.value)


def test_the_error_carries_the_model_path_segment_and_closest_names() -> None:
    with pytest.raises(UnknownPath) as info:
        resolver(Order).resolve(("address", "ctiy"))
    error = info.value
    assert isinstance(error, ValidationError)
    assert (error.model, error.path, error.segment) == ("Order", "address.ctiy", "ctiy")
    assert error.closest == ["city"]
    with pytest.raises(UnknownPath) as info:
        resolver_for([Order, Note]).resolve(("txt",))
    assert info.value.model == "Order, Note" and "text" in info.value.closest


def test_a_name_stored_differently_by_union_members_is_ambiguous() -> None:
    with pytest.raises(ValidationError, match="depending on the type of 'either'"):
        resolver(Order).resolve(Attr("either.city").segments)


def test_resolution_is_cached_per_model_and_path() -> None:
    paths = resolver(Order)
    assert resolver(Order) is paths is Order._spec().paths
    first = paths.resolve(("address", "city"))
    assert paths.resolve(("address", "city")) is first  # a dict lookup


def test_the_cache_is_bounded() -> None:
    paths = PathResolver([Order])
    for n in range(MAX_CACHED + 10):
        paths.resolve(("by_day", f"d{n}"))
    assert len(paths._cache) <= MAX_CACHED


def test_difflib_is_imported_on_the_error_path_only() -> None:
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, dynamodel\n"
        "from dynamodel.ops import items, query\n"
        "from dynamodel.modelling.paths import resolver\n"
        "assert 'difflib' not in sys.modules, 'difflib imported'\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- rendering -------------------------------------------------------------------------------


def test_conditions_render_stored_paths_at_every_level() -> None:
    ph = R.placeholders(Order)
    text = render_condition(
        (Attr("address.city") == "Oslo") & (Attr("lines[0].sku") == "x"), ph, "C"
    )
    assert text == "(#n0.#n1 = :v0) AND (#n2[0].#n3 = :v1)"
    assert ph.names == {"#n0": "addr", "#n1": "c", "#n2": "lines", "#n3": "s"}


def test_raw_paths_are_not_checked_nor_mapped() -> None:
    ph = R.placeholders(Order)
    text = render_condition(
        (Attr("legacy_flag", raw=True) == 1) & Attr("address.city", raw=True).exists(), ph, "C"
    )
    assert text == "(#n0 = :v0) AND (attribute_exists(#n1.#n2))"
    assert ph.names == {"#n0": "legacy_flag", "#n1": "address", "#n2": "city"}


def test_placeholders_without_a_model_check_nothing() -> None:
    ph = Placeholders({"title": "t"})
    render_update([Attr("anything.at[0].all").set(1), Attr("title").remove()], ph)
    assert ph.names == {"#n0": "anything", "#n1": "at", "#n2": "all", "#n3": "t"}


def test_update_requests_check_and_map_nested_paths() -> None:
    request = R.update_request(
        Order,
        order().__dict__,
        [Attr("address.city").set("Bergen"), Attr("lines[0].qty").add(1)],
        None,
        False,
    )
    names = request.params["ExpressionAttributeNames"]
    assert {"addr", "c", "lines", "qty"} <= set(names.values())
    assert "city" not in names.values() and "address" not in names.values()
    with pytest.raises(ValidationError, match="did you mean 'status'"):
        R.update_request(Order, order().__dict__, [Attr("stauts").set("x")], None, False)
    # an attribute the model does not declare, on purpose
    request = R.update_request(
        Order, order().__dict__, [Attr("from_v2", raw=True).set(1)], None, False
    )
    assert "from_v2" in request.params["ExpressionAttributeNames"].values()


def test_updates_still_refuse_managed_attributes() -> None:
    with pytest.raises(ValidationError, match="managed by dynamodel"):
        R.update_request(Order, order().__dict__, [Attr("gsi1pk").set("x")], None, False)


# -- typed references ------------------------------------------------------------------------


def test_typed_references_record_python_paths_and_render_stored_ones() -> None:
    city = Order.attr(lambda o: o.address.city)
    assert isinstance(city, TypedAttr) and isinstance(city, Attr)
    assert city.segments == ("address", "city") and not city.raw
    assert Order.attr(lambda o: o.lines[0].sku).segments == ("lines", 0, "sku")
    assert Order.attr(lambda o: o.by_day["mon"].qty).segments == ("by_day", "mon", "qty")
    assert Order.attr(lambda o: present(o.billing).city).segments == ("billing", "city")
    ph = R.placeholders(Order)
    text = render_update([city.set("Oslo"), Order.attr(lambda o: o.total).add(5)], ph)
    assert text == "SET #n0.#n1 = :v0 ADD #n2 :v1"
    assert ph.names == {"#n0": "addr", "#n1": "c", "#n2": "total"}
    condition = (Order.attr(lambda o: o.status) == "open") & Order.attr(lambda o: o.total).between(
        1, 9
    )
    assert render_condition(condition, ph, "C") == "(#n3 = :v2) AND (#n2 BETWEEN :v3 AND :v4)"


def test_typed_references_are_checked_when_made() -> None:
    with pytest.raises(ValidationError, match="did you mean 'status'"):
        Order.attr(lambda o: o.stauts)  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="Address has no field 'ctiy'"):
        Order.attr(lambda o: o.address.ctiy)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "pick",
    [
        lambda o: o,
        lambda o: 3,
        lambda o: o.total + 1,
        lambda o: o.lines[-1],
        lambda o: o.lines[1.5],
        lambda o: o.status if o.total else o.title,
    ],
)
def test_typed_references_only_read_attributes(pick: Any) -> None:
    with pytest.raises(ValidationError):
        Order.attr(pick)


# -- every entry point refuses before sending ------------------------------------------------


class Recorder:
    """A client that records every call (and answers {}): a shard-record check would show."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, op: str) -> Any:
        if op.startswith("__"):
            raise AttributeError(op)

        def method(**params: Any) -> Any:
            self.calls.append((op, params))
            return {}

        return method


class AsyncRecorder(Recorder):
    def __getattr__(self, op: str) -> Any:
        sync = super().__getattr__(op)

        async def method(**params: Any) -> Any:
            return sync(**params)

        return method


BAD = Attr("address.ctiy") == "Oslo"
BAD_ACTION = Attr("stauts").set("shipped")


def _refusals() -> list[tuple[str, Any]]:
    def tx(body: Any) -> Any:
        def run() -> None:
            with TransactWrite() as t:
                body(t)

        return run

    return [
        ("save", lambda: order().save(condition=BAD)),
        ("create", lambda: order().create(condition=BAD)),
        ("update action", lambda: order().update(BAD_ACTION)),
        ("update condition", lambda: order().update(Attr("total").add(1), condition=BAD)),
        ("delete", lambda: order().delete(condition=BAD)),
        (
            "update_item",
            lambda: Order.update_item({"customer_id": "c", "order_id": "o"}, [BAD_ACTION]),
        ),
        (
            "delete_item",
            lambda: Order.delete_item({"customer_id": "c", "order_id": "o"}, condition=BAD),
        ),
        ("get projection", lambda: Order.get(customer_id="c", order_id="o", projection=["totl"])),
        ("query filter", lambda: Order.query(customer_id="c").filter(BAD)),
        ("query project", lambda: Order.query(customer_id="c").project("totl")),
        ("scan filter", lambda: Order.scan().filter(BAD)),
        ("scan project", lambda: Order.scan().project("address.ctiy")),
        ("query index", lambda: Order.query(index="gsi9", status="open")),
        ("scan index", lambda: Order.scan(index="gsi9")),
        ("collection filter", lambda: Collection(Order, Note).query(customer_id="c").filter(BAD)),
        (
            "collection project",
            lambda: Collection(Order, Note).query(customer_id="c").project("txt"),
        ),
        ("tx put", tx(lambda t: t.put(order(), condition=BAD))),
        ("tx update", tx(lambda t: t.update(order(), BAD_ACTION))),
        ("tx delete", tx(lambda t: t.delete(order(), condition=BAD))),
        ("tx check", tx(lambda t: t.condition_check(order(), BAD))),
    ]


@pytest.fixture
def recorder() -> Any:
    sync, async_ = Recorder(), AsyncRecorder()
    forget_shard_checks()
    PT.bind(connection=Connection(client=sync, aclient=async_, retry=RetryPolicy(base=0, cap=0)))
    try:
        yield sync, async_
    finally:
        PT.unbind()
        forget_shard_checks()


@pytest.mark.parametrize(("what", "call"), _refusals(), ids=[w for w, _ in _refusals()])
def test_nothing_is_sent(recorder: Any, what: str, call: Any) -> None:
    sync, async_ = recorder
    with pytest.raises(ValidationError) as info:
        result = call()
        if hasattr(result, "all"):
            result.all()
    assert "did you mean" in str(info.value), str(info.value)
    assert sync.calls == [] and async_.calls == [], what


async def test_nothing_is_sent_async(recorder: Any) -> None:
    sync, async_ = recorder
    with pytest.raises(ValidationError):
        await order().asave(condition=BAD)
    with pytest.raises(ValidationError):
        await order().aupdate(BAD_ACTION)
    with pytest.raises(ValidationError):
        await order().adelete(condition=BAD)
    with pytest.raises(ValidationError):
        await Order.aget(customer_id="c", order_id="o", projection=["totl"])
    with pytest.raises(ValidationError):
        await Order.aupdate_item({"customer_id": "c", "order_id": "o"}, [BAD_ACTION])
    assert sync.calls == [] and async_.calls == []


# -- several models --------------------------------------------------------------------------


def test_a_collection_accepts_a_path_any_member_declares() -> None:
    paths = resolver_for([Order, Note])
    assert paths.resolve(("text",)) == ("text",)  # Note only
    assert paths.resolve(("address", "city")) == ("addr", "c")  # Order only, mapped
    assert paths.resolve(("status",)) == ("status",)  # both, stored alike
    with pytest.raises(ValidationError) as info:
        paths.resolve(("txt",))
    message = str(info.value)
    assert "no model of this query (Order, Note)" in message and "'text'" in message


def test_a_collection_refuses_a_name_its_members_store_differently() -> None:
    with pytest.raises(ValidationError, match="stored differently"):
        resolver_for([Order, Note]).resolve(("title",))
    # the stored names are unambiguous
    assert resolver_for([Order, Note]).resolve(("t",)) == ("t",)


def test_collection_queries_map_python_names_to_stored_ones() -> None:
    query = Collection(Order, Note).query(customer_id="c").filter(Attr("address.city") == "x")
    params = query._shard_params("CUSTOMER#c.0")
    assert {"addr", "c"} <= set(params["ExpressionAttributeNames"].values())


# -- indexes ---------------------------------------------------------------------------------


def test_unknown_index_names_suggest_the_closest() -> None:
    with pytest.raises(ValidationError, match="did you mean 'gsi1'"):
        Order.query(index="gsi2", status="open")
    with pytest.raises(ValidationError, match="did you mean 'gsi1'"):
        Order.scan(index="gsi")
    with pytest.raises(ValidationError, match="did you mean 'gsi1'"):
        Collection(Order, index="gsi_1")


def test_projections_on_a_global_index_must_be_held_by_it() -> None:
    with pytest.raises(ValidationError, match="KEYS_ONLY"):
        Order.query(index="keys", status="open").project("total")
    with pytest.raises(ValidationError, match="INCLUDE"):
        Order.query(index="some", status="open").project("status", "total")
    Order.query(index="some", status="open").project("status", "title", "pk")  # held
    Order.query(index="keys", status="open").project("pk", "kpk")
    Order.query(index="lsi1", customer_id="c").project("address.city")  # LSI: from the table
    Order.query(index="gsi1", status="open").project("address.city")  # ALL


def test_the_recorder_does_see_requests_that_are_sent(recorder: Any) -> None:
    """Control for the tests above: a valid read of a sharded model first checks its shard
    layout, then sends its GetItem, both through the recorder."""
    sync, _ = recorder
    Order.get_or_none(customer_id="c", order_id="o", projection=["total", "address.city"])
    assert [op for op, _ in sync.calls][-1] == "get_item"
    assert len(sync.calls) >= 2  # the shard-record check came first
    names = sync.calls[-1][1]["ExpressionAttributeNames"]
    assert set(names.values()) == {"total", "addr", "c"}


# -- the type checker sees typed references --------------------------------------------------

USER_CODE = """
from pydantic import BaseModel, Field, RootModel

from dynamodel import Attr, Model, Table, present
from dynamodel.modelling.paths import attr_of

shop = Table("mypy-shop")


class Address(BaseModel):
    city: str = Field(alias="c")


class Order(Model):
    class Meta:
        table = shop
        pk = "ORDER#{order_id}"
        sk = "ORDER"

    order_id: str
    total: int = 0
    address: Address
    billing: Address | None = None
    lines: list[Address] = []


def good(order: Order) -> None:
    city = Order.attr(lambda o: o.address.city)
    order.update(city.set("Oslo"), Order.attr(lambda o: o.total).add(1),
                 condition=(Order.attr(lambda o: o.total) >= 3) & (city == "Bergen"))
    Order.attr(lambda o: o.lines[0].city).set("x")
    Order.attr(lambda o: present(o.billing).city).set("x")
    Attr("total").set("not checked by the type checker")
    attr_of(Order, lambda o: o.address.city).set("x")
"""

BAD_CODE = """
def bad(order: Order) -> None:
    order.update(Order.attr(lambda o: o.adress.city).set("Oslo"))
    Order.attr(lambda o: o.total).set("ten")
    attr_of(Order, lambda o: o.totl)
"""


FILES = ["--no-error-summary", "good.py", "bad.py"]


def test_mypy_checks_typed_references(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    (tmp_path / "good.py").write_text(USER_CODE)
    (tmp_path / "bad.py").write_text(USER_CODE + BAD_CODE)
    env = dict(os.environ, MYPYPATH=str(root))
    done = subprocess.run(
        # errors in dynamodel itself (read from source through MYPYPATH) are not the user's
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", *FILES],
        cwd=tmp_path,  # no project configuration: a user's plain strict mypy
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert all(e.startswith(("good.py", "bad.py")) for e in errors), errors
    assert done.returncode == 1, done.stdout + done.stderr
    assert not [e for e in errors if e.startswith("good.py")], errors
    bad = [e for e in errors if e.startswith("bad.py")]
    assert any('"Order" has no attribute "adress"' in e for e in bad), errors
    assert any('"set" of "TypedAttr"' in e and '"str"' in e for e in bad), errors
    assert any('"Order" has no attribute "totl"' in e for e in bad), errors
    assert len(bad) == 3, errors


# -- multi-attribute GSIs ----------------------------------------------------------------------

MK = Table(
    "paths-multikey",
    indexes=[GSI("by_region", pk=("tenant_id", "region"), sk="created", projection="KEYS_ONLY")],
)


class Shipment(Model):
    class Meta:
        table = MK
        pk = "SHIPMENT#{shipment_id}"
        sk = "SHIPMENT"
        indexes = {"by_region": MultiKey}

    shipment_id: str
    tenant_id: str
    region: str
    created: int
    weight: int = 0


class Memo(Model):
    class Meta:
        table = MK
        pk = "MEMO#{memo_id}"
        sk = "MEMO"

    memo_id: str


def test_multi_attribute_gsi_keys_are_the_models_own_fields() -> None:
    assert resolver(Shipment).resolve(("region",)) == ("region",)
    # not a managed attribute: a model without the field cannot name it
    with pytest.raises(UnknownPath, match="Memo has no field 'region'"):
        resolver(Memo).resolve(("region",))
    query = Shipment.query(index="by_region", tenant_id="t", region="eu")
    query.project("region", "created", "pk")  # key attributes are held
    with pytest.raises(ValidationError, match="KEYS_ONLY"):
        query.project("weight")
    with pytest.raises(ValidationError, match="did you mean 'by_region'"):
        Shipment.query(index="by_regoin", tenant_id="t", region="eu")
