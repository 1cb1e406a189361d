"""The shard-layout guard: before the first write or sharded read of a model on a connection,
its declared shard layout is compared with the one recorded in the table (a registry item), so
two deployments that disagree about a key's shard count fail loudly instead of scattering
items where reads will not look. Each connection remembers its checks (`ShardChecks`, bounded)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from dynamodel.core.codec import Item
from dynamodel.core.flows import Flow, Request
from dynamodel.modelling.sharding import ShardCountMismatch, Shards

REGISTRY_PK = "_dynamodel#shards"


_ABSENT_RECHECK_SECONDS = 30.0


#: the most shard records (table, entity, index) and checked models one connection remembers;
#: past it the oldest is forgotten, which costs one more GetItem when it is next needed
MAX_SHARD_CHECKS = 4096


_UNSHARDED = {"count": 1, "strategy": "none", "by": []}


_registry_lock = threading.Lock()


_generation = [0]  # bumped by forget_shard_checks: every connection's memory expires


# layouts trusted without asking (`trust_layout`, for stub clients in tests): filled only by
# explicit calls, so bounded by them; every connection honours them
_trusted: dict[tuple[str, str, str | None], Shards | None] = {}


class ShardChecks:
    """One connection's memory of the shard records it has checked (see `guard_flow`).

    It belongs to a connection (`dynamodel.io.clients.Connection.inputs`), not to the process:
    a same-named table behind another endpoint has records of its own. Bounded: at most
    `MAX_SHARD_CHECKS` records and as many checked models, the oldest forgotten first.
    """

    __slots__ = ("_absent", "_checked", "_lock", "_models", "limit")

    def __init__(self, limit: int = MAX_SHARD_CHECKS) -> None:
        self.limit = limit
        # (table, entity, slot) -> (generation, declared layout found in the table)
        self._checked: dict[tuple[str, str, str | None], tuple[int, Shards | None]] = {}
        # (table, entity, slot) -> (generation, clock time before which not to look again)
        self._absent: dict[tuple[str, str, str | None], tuple[int, float]] = {}
        # (model spec, table) -> generation: every key of the model checked (the hot path)
        self._models: dict[tuple[Any, str], int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._checked) + len(self._absent) + len(self._models)

    def model_checked(self, spec: Any, table_name: str) -> bool:
        """Whether every key of this model was checked on this connection (lock-free read)."""
        return self._models.get((spec, table_name)) == _generation[0]

    def mark_model(self, spec: Any, table_name: str, generation: int) -> None:
        with self._lock:
            _bounded_set(self._models, (spec, table_name), generation, self.limit)

    def known(self, key: tuple[str, str, str | None]) -> Any:
        """The layout recorded for ``key`` (None: not sharded), or `_ABSENT` if unknown."""
        trusted = _trusted.get(key, _ABSENT)
        if trusted is not _ABSENT:
            return trusted
        found = self._checked.get(key)
        return found[1] if found is not None and found[0] == _generation[0] else _ABSENT

    def absent_until(self, key: tuple[str, str, str | None]) -> float:
        found = self._absent.get(key)
        return found[1] if found is not None and found[0] == _generation[0] else 0.0

    def record(self, key: tuple[str, str, str | None], shards: Shards | None) -> None:
        with self._lock:
            _bounded_set(self._checked, key, (_generation[0], shards), self.limit)
            self._absent.pop(key, None)

    def record_absent(self, key: tuple[str, str, str | None], until: float) -> None:
        with self._lock:
            _bounded_set(self._absent, key, (_generation[0], until), self.limit)


def _bounded_set(store: dict[Any, Any], key: Any, value: Any, limit: int) -> None:
    store.pop(key, None)
    store[key] = value
    while len(store) > limit:
        del store[next(iter(store))]  # the oldest entry


def forget_shard_checks() -> None:
    """Forget which shard records have been checked, on every connection, and the trusted
    layouts (tests that recreate tables)."""
    with _registry_lock:
        _trusted.clear()
        _generation[0] += 1


def trust_layout(
    table_name: str, entity: str, slots: Sequence[tuple[str | None, Shards | None]]
) -> None:
    """Treat these slots as checked on every connection without asking the table (stub
    clients); `forget_shard_checks` undoes it."""
    with _registry_lock:
        for slot, shards in slots:
            _trusted[(table_name, entity, slot)] = shards


def trusted(spec: Any) -> bool:
    """Whether `trust_layout` vouched for every partition key of this model spec as declared."""
    if not _trusted:
        return False  # the production path: one truth test
    table_name, entity = spec.table.physical_name, spec.entity
    for slot, shards in spec.guard_slots():
        known = _trusted.get((table_name, entity, slot), _ABSENT)
        if known is _ABSENT or known != shards:
            return False
    return True


def checks_generation() -> int:
    """Changes whenever `forget_shard_checks` runs."""
    return _generation[0]


def registry_key(table: Any, entity: str, slot: str | None) -> Item:
    """Where the shard record of one entity's partition key (``slot``: index name) lives."""
    name = f"{entity}#{'index#' + slot if slot else 'table'}"
    if table.sk:
        return {table.pk: {"S": REGISTRY_PK}, table.sk: {"S": name}}
    return {table.pk: {"S": f"{REGISTRY_PK}#{name}"}}


def _record(shards: Shards | None) -> dict[str, Any]:
    if shards is None:
        return dict(_UNSHARDED)
    return {"count": shards.count, "strategy": shards.strategy, "by": list(shards.fields)}


def _describe(record: dict[str, Any]) -> str:
    if record["strategy"] == "none":
        return "no sharding"
    by = f" by {record['by']}" if record["by"] else ""
    return f"{record['count']} {record['strategy']} shards{by}"


def _stored_record(item: Item) -> dict[str, Any]:
    by = item.get("by", {}).get("L", [])
    return {
        "count": int(item.get("count", {}).get("N", "0")),
        "strategy": item.get("strategy", {}).get("S", "?"),
        "by": [v.get("S") for v in by],
    }


def _mismatch(owner: str, table_name: str, slot: str | None, stored: Any, declared: Any) -> None:
    where = "partition key" if slot is None else f"index {slot!r} partition key"
    raise ShardCountMismatch(
        f"{owner}: table {table_name!r} records {_describe(stored)} for its {where} (written by "
        f"an earlier declaration) but the model declares {_describe(declared)}; reading with a "
        "different layout would miss items, writing would split them. Changing how a key is "
        "sharded is a migration (see the sharding docs). Nothing was read or written."
    )


def guard_flow(
    table: Any,
    entity: str,
    owner: str,
    slots: Sequence[tuple[str | None, Shards | None]],
    *,
    write: bool,
    retry: Any,
    checks: ShardChecks,
    clock: Callable[[], float],
) -> Flow[bool]:
    """Check (once per connection: ``checks`` remembers) that the table's shard records match
    ``slots`` (None: not sharded); a write records them first if the table has none (a role
    IAM refuses that write, such as a tenant policy's, reads the record instead). Returns
    whether every slot is now known to match (False while a read found no record yet).
    ``clock`` times when a missing record is looked for again."""
    from dynamodel.core.errors import ConditionFailed, DynamodelError
    from dynamodel.core.flows import call

    name = table.physical_name
    complete = True
    for slot, shards in slots:
        cache_key = (name, entity, slot)
        known = checks.known(cache_key)
        if known is not _ABSENT:
            if known != shards:
                _mismatch(owner, name, slot, _record(known), _record(shards))
            continue
        if not write and checks.absent_until(cache_key) > clock():
            complete = False
            continue
        key = registry_key(table, entity, slot)
        item: Item | None = None
        read = not write
        if write:
            record = _record(shards)
            put = {
                "TableName": name,
                "Item": {
                    **key,
                    "count": {"N": str(record["count"])},
                    "strategy": {"S": record["strategy"]},
                    "by": {"L": [{"S": f} for f in record["by"]]},
                },
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": table.pk},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
            try:
                yield from call(Request("put_item", put, control=True), retry)
            except ConditionFailed as error:  # recorded before: compare with the record
                item = error.item
                read = item is None  # an endpoint that does not return it: read it
            except DynamodelError as error:
                if error.code != "AccessDeniedException":
                    raise
                # a role that may not write layout records (a generated tenant policy allows
                # reading them only): compare with the record a trusted role wrote, if any
                read = True
            else:
                item = put["Item"]
        if read:
            params = {"TableName": name, "Key": key, "ConsistentRead": True}
            item = (yield from call(Request("get_item", params, control=True), retry)).get("Item")
        if item is None:
            checks.record_absent(cache_key, clock() + _ABSENT_RECHECK_SECONDS)
            complete = False
            continue
        stored = _stored_record(item)
        if stored != _record(shards):
            _mismatch(owner, name, slot, stored, _record(shards))
        checks.record(cache_key, shards)
    return complete


_ABSENT: Any = object()
