"""Every sync operation has an async twin (``get`` / ``aget``) taking the same parameters, so
code moves between the two APIs by adding ``a`` and ``await`` and nothing else (#20)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import dynamodel
from dynamodel import Model, Table
from dynamodel.ops.batch import BatchWriter
from dynamodel.ops.collection import Collection
from dynamodel.ops.query import Query
from dynamodel.ops.scan import ParallelScan, Scan
from dynamodel.ops.transactions import TransactGet, TransactWrite

#: The operations that do I/O, by owner: each must have its ``a``-prefixed twin.
OPERATIONS: dict[Any, tuple[str, ...]] = {
    Model: (
        "get",
        "get_or_none",
        "save",
        "create",
        "update",
        "save_changes",
        "delete",
        "update_item",
        "delete_item",
        "query",
        "scan",
    ),
    Table: ("create", "describe", "delete"),
    Query: ("all", "first", "count", "pages"),
    Scan: ("all", "first", "count", "pages"),
    ParallelScan: ("all", "pages"),
    Collection: ("fetch",),
    BatchWriter: ("flush",),
    TransactWrite: ("commit",),
    TransactGet: ("execute",),
    dynamodel: ("batch_get", "retry_on_conflict"),
}


def _parameters(function: Any) -> list[tuple[str, Any, Any, Any]]:
    return [
        (p.name, p.kind, p.default, p.annotation)
        for p in inspect.signature(function).parameters.values()
    ]


@pytest.mark.parametrize(
    ("owner", "name"),
    [(owner, name) for owner, names in OPERATIONS.items() for name in names],
    ids=lambda value: value if isinstance(value, str) else getattr(value, "__name__", ""),
)
def test_every_operation_has_an_async_twin_with_the_same_parameters(owner: Any, name: str) -> None:
    sync, twin = getattr(owner, name), getattr(owner, "a" + name, None)
    assert twin is not None, f"{owner.__name__}.{name} has no async twin a{name}"
    assert _parameters(twin) == _parameters(sync)


@pytest.mark.parametrize("owner", list(OPERATIONS), ids=lambda o: o.__name__)
def test_no_twin_pair_is_left_out_of_the_list(owner: Any) -> None:
    """A new pair (``x`` and ``ax``) must be listed above, so the check above covers it."""
    names = {n for n in dir(owner) if not n.startswith("_") and callable(getattr(owner, n))}
    pairs = {n for n in names if "a" + n in names}
    assert pairs <= set(OPERATIONS[owner])
