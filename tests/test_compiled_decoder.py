"""The compiled per-model decoders read exactly what the general decoder reads."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import given, settings, strategies as st
from test_compiled import Address, Everything

from dynamodel.core.codec import decode_item
from dynamodel.modelling.compiled_decoder import compile_decoder

texts = st.text(max_size=12)
ints = st.integers(min_value=-(10**30), max_value=10**30)

# any AttributeValue, whatever the field's declared type: stored data may not match the model
# (written by another service, or before a field's type changed)
attribute_values = st.recursive(
    st.one_of(
        texts.map(lambda s: {"S": s}),
        ints.map(lambda n: {"N": str(n)}),
        st.decimals(allow_nan=False, allow_infinity=False, places=3).map(lambda d: {"N": str(d)}),
        st.booleans().map(lambda b: {"BOOL": b}),
        st.just({"NULL": True}),
        st.binary(max_size=6).map(lambda b: {"B": b}),
        st.sets(texts, min_size=1, max_size=3).map(lambda s: {"SS": sorted(s)}),
        st.sets(ints, min_size=1, max_size=3).map(lambda s: {"NS": [str(n) for n in s]}),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda items: {"L": items}),
        st.dictionaries(texts, inner, max_size=3).map(lambda m: {"M": m}),
    ),
    max_leaves=6,
)


#: the attribute names Everything's fields are stored under
STORED = sorted(Everything._spec().stored_names.values())


def _general(item: dict[str, Any]) -> dict[str, Any]:
    """What `Model.from_item` validated before decoders were compiled."""
    spec = Everything._spec()
    data = decode_item(item, frozenset(spec.stored_names.values()))
    for name in spec.set_fields:
        data.setdefault(name, set())
    return data


def _decoder() -> Any:
    return compile_decoder(Everything, Everything._spec())


@settings(max_examples=150, deadline=None)
@given(
    text=texts,
    count=ints,
    amount=st.decimals(allow_nan=False, allow_infinity=False, places=4, max_value=10**20),
    flag=st.booleans(),
    when=st.datetimes(timezones=st.just(dt.UTC)),
    maybe=st.none() | texts,
    tags=st.sets(texts, max_size=4),
    numbers=st.sets(ints, max_size=4),
    scores=st.lists(ints, max_size=5),
    words=st.lists(texts, max_size=5),
    address=st.none() | st.builds(Address, street=texts, zip=texts),
    doc=st.dictionaries(texts, st.one_of(texts, ints), max_size=3),
)
def test_stored_models_decode_as_the_general_decoder_does(**values: Any) -> None:
    instance = Everything(eid="e", **values)
    item = instance.to_item()
    decoded = _decoder()(item)
    assert decoded == _general(item)
    assert Everything.from_item(item) == instance


@settings(max_examples=300, deadline=None)
@given(
    replaced=st.dictionaries(st.sampled_from(STORED), attribute_values, max_size=6),
    dropped=st.sets(st.sampled_from(STORED), max_size=4),
)
def test_unexpected_stored_types_decode_as_the_general_decoder_does(
    replaced: dict[str, Any], dropped: set[str]
) -> None:
    item = Everything(eid="e", tags={"a"}, scores=[1]).to_item()
    item.update(replaced)
    for name in dropped:
        item.pop(name, None)
    item["not_a_field"] = {"S": "ignored"}
    assert _decoder()(item) == _general(item)


def test_numbers_keep_their_precision_and_kind() -> None:
    item = Everything(eid="e").to_item()
    item["count"] = {"N": "12345678901234567890123"}
    item["amount"] = {"N": "1.50"}
    item["ratio"] = {"N": "1E+3"}
    decoded = _decoder()(item)
    assert decoded["count"] == 12345678901234567890123 and type(decoded["count"]) is int
    assert decoded["amount"] == Decimal("1.50") and str(decoded["amount"]) == "1.50"
    assert decoded["ratio"] == Decimal("1E+3")


def test_absent_sets_read_as_empty_sets() -> None:
    instance = Everything(eid="e")  # empty sets are not stored at the top level
    item = instance.to_item()
    assert "tags" not in item and "numbers" not in item
    parsed = Everything.from_item(item)
    assert parsed.tags == set() and parsed.numbers == set()
