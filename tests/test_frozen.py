"""The immutable value classes of the public API (`dynamodel.core.frozen.Frozen` subclasses)."""

from __future__ import annotations

import copy
import pickle

import pytest

from dynamodel import GSI, LSI, Provisioned, RetryPolicy, Shards, Table
from dynamodel.core.errors import CancellationReason

VALUES = [
    GSI("gsi1", pk="gsi1pk", sk="gsi1sk", capacity=Provisioned(5, 5)),
    LSI("lsi1", sk="lsi1sk", projection="KEYS_ONLY"),
    Provisioned(read=3, write=4),
    Shards(8, by="customer_id"),
    RetryPolicy(base=0.1, max_attempts=3),
    CancellationReason(index=2, code="ConditionalCheckFailed", message="no"),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_values_compare_hash_copy_and_pickle_by_their_fields(value: object) -> None:
    twin = pickle.loads(pickle.dumps(value))
    assert twin == value and hash(twin) == hash(value) and twin is not value
    assert copy.copy(value) == value and copy.deepcopy(value) == value
    assert repr(value).startswith(type(value).__name__ + "(")


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_values_are_immutable(value: object) -> None:
    name = type(value)._fields[0]  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="immutable"):
        setattr(value, name, None)
    with pytest.raises(AttributeError, match="immutable"):
        delattr(value, name)


def test_replace_validates_like_a_new_instance() -> None:
    policy = RetryPolicy().replace(max_attempts=2)
    assert policy.max_attempts == 2 and policy.base == RetryPolicy().base
    assert Shards(4).replace(by="a") == Shards(4, by=("a",))
    with pytest.raises(TypeError, match="no field"):
        Shards(4).replace(shards=5)
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy().replace(max_attempts=0)


def test_retry_policy_equality_ignores_the_clock() -> None:
    assert RetryPolicy(clock=lambda: 0.0) == RetryPolicy()
    assert "clock" not in repr(RetryPolicy())


def test_values_of_different_classes_are_not_equal() -> None:
    assert Provisioned(1, 1) != GSI("g", pk="p")
    assert Provisioned(1, 1) != (1, 1)


def test_table_equality_repr_and_replace() -> None:
    table = Table("orders", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")], ttl="expires")
    assert table == Table("orders", indexes=(GSI("gsi1", pk="gsi1pk", sk="gsi1sk"),), ttl="expires")
    assert table != Table("orders")
    assert "Table(name='orders'" in repr(table)
    other = table.replace(name="orders-v2", indexes=[])
    assert other.name == "orders-v2" and other.indexes == () and other.ttl == "expires"
    assert table.indexes  # the original is unchanged
    with pytest.raises(TypeError, match="no setting"):
        table.replace(colour="red")
    with pytest.raises(TypeError):
        hash(table)  # mutable (bind), so unhashable, as before
