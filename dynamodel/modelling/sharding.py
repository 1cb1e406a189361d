"""Write sharding of hot partition keys, and the scatter-gather read that merges shards back.

A model (or one of its index key templates) declares ``Shards(n)`` to spread one logical
partition key over ``n`` physical ones. The physical key is the rendered template plus a suffix:

    PAGEVIEW#home  ->  PAGEVIEW#home.0 ... PAGEVIEW#home.15        (Shards(16))

The suffix format ``.<shard>`` (decimal, no padding, shards numbered from 0) is part of the
stored data and will not change between versions.

Strategies:

* **random** (``Shards(16)``): each new item gets a shard drawn at random: the best spread. The
  shard is remembered on the instance (and recovered from the key when the item is read), so
  saving, updating or deleting it later goes to the same physical key; a ``get`` by key needs
  the shard (``shard=``) because it cannot be computed.
* **calculated** (``Shards(16, by="user_id")``): the shard is a stable hash of the named
  field(s): the first 8 bytes (big-endian) of BLAKE2b of the fields' key renderings joined by
  ``"#"``, modulo ``n``. Anyone can compute an item's shard, so ``get`` needs no fan-out.

Reads that cannot know the shard (a query on the logical partition, a collection, ``count``)
query all ``n`` shards concurrently and merge the already-sorted pages with a k-way merge on
the sort key (ties broken by shard number), forwards or backwards. A ``limit`` is honoured
exactly, and the cursor records every shard's own position, so resuming neither skips nor
repeats items.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dynamodel.core.codec import Item
from dynamodel.core.errors import DynamodelError, ValidationError
from dynamodel.core.flows import Emit, Flow, Gather, Request
from dynamodel.core.frozen import Frozen
from dynamodel.core.keys import render_part

MAX_SHARDS = 1000
SEPARATOR = "."


class Shards(Frozen):
    """Shard a partition key ``count`` ways: randomly, or by a stable hash of ``by`` fields."""

    _fields = ("count", "by")
    __slots__ = _fields
    count: int
    by: tuple[str, ...] | None

    def __init__(self, count: int, by: str | tuple[str, ...] | None = None) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SHARDS:
            raise ValidationError(f"Shards.count must be an int from 1 to {MAX_SHARDS}")
        if isinstance(by, str):
            by = (by,)
        if by is not None and not by:
            raise ValidationError("Shards.by needs at least one field name")
        self._set(count=count, by=None if by is None else tuple(by))

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields a calculated shard is computed from (empty for random)."""
        return self.by if isinstance(self.by, tuple) else ()

    @property
    def strategy(self) -> str:
        """``"random"`` or ``"calculated"``."""
        return "calculated" if self.by else "random"

    def physical(self, logical: str, shard: int) -> str:
        """The stored partition key of one shard of a logical key."""
        if not 0 <= shard < self.count:
            raise ValidationError(f"shard {shard} is out of range 0..{self.count - 1}")
        return f"{logical}{SEPARATOR}{shard}"

    def all_physical(self, logical: str) -> list[str]:
        """Every shard's partition key, in shard order."""
        return [self.physical(logical, shard) for shard in range(self.count)]

    def calculate(self, values: Mapping[str, Any]) -> int:
        """The shard of a calculated strategy for these field values."""
        parts = []
        for name in self.fields:
            value = values.get(name)
            if value is None:
                raise ValidationError(f"shard key field {name!r} is missing")
            parts.append(render_part(value, "", sort=False, field=name))
        digest = hashlib.blake2b("#".join(parts).encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count

    def choose(self, rng: random.Random | None = None) -> int:
        """A shard for a new item under the random strategy."""
        return (rng or _rng).randrange(self.count)


_rng = random.Random()


def split_physical(physical: str, shards: Shards) -> tuple[str, int]:
    """``"KEY.7"`` -> ``("KEY", 7)``; a ValidationError when the key has no valid suffix."""
    logical, sep, number = physical.rpartition(SEPARATOR)
    if not sep or not number.isdigit() or int(number) >= shards.count:
        raise ValidationError(
            f"partition key {physical!r} has no shard suffix for {shards.count} shards"
        )
    return logical, int(number)


# -- the scatter-gather merge ---------------------------------------------------------------


def encode_shard_cursor(
    positions: Mapping[int, Item | None], done: set[int], partition: str | None = None
) -> str | None:
    """A cursor holding each shard's resume key (None when every shard is done) and the
    logical partition key it belongs to."""
    if len(done) == len(positions):
        return None
    shards: dict[str, Any] = {}
    for shard, key in positions.items():
        if shard in done:
            continue
        shards[str(shard)] = None if key is None else _plain_key(key)
    data: dict[str, Any] = {"v": 1, "s": shards}
    if partition is not None:
        data["p"] = partition
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    return "s." + base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_shard_cursor(cursor: str, count: int) -> tuple[dict[int, Item | None], set[int]]:
    """Positions and finished shards from :func:`encode_shard_cursor`'s text."""
    try:
        if not cursor.startswith("s."):
            raise ValueError("not a sharded query cursor")
        data = _shard_cursor_data(cursor)
        if data.get("v") != 1:
            raise ValueError("unknown cursor version")
        positions: dict[int, Item | None] = {}
        for shard_text, key in data["s"].items():
            shard = int(shard_text)
            if not 0 <= shard < count:
                raise ValueError(f"shard {shard} out of range for {count} shards")
            positions[shard] = None if key is None else _typed_key(key)
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error) as exc:
        raise ValidationError(f"invalid sharded cursor: {exc}") from exc
    done = {shard for shard in range(count) if shard not in positions}
    for shard in done:
        positions[shard] = None
    return positions, done


def _shard_cursor_data(cursor: str) -> Any:
    body = cursor[2:]  # after the "s." marker
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def shard_cursor_partition(cursor: str) -> str | None:
    """The logical partition key a sharded cursor records (None in cursors made before it
    was recorded). The cursor must have passed `decode_shard_cursor`."""
    partition = _shard_cursor_data(cursor).get("p")
    return partition if isinstance(partition, str) else None


def _plain_key(key: Item) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in key.items():
        ((tag, inner),) = value.items()
        out[name] = {tag: base64.b64encode(bytes(inner)).decode() if tag == "B" else inner}
    return out


def _typed_key(key: Mapping[str, Any]) -> Item:
    out: Item = {}
    for name, value in key.items():
        ((tag, inner),) = value.items()
        out[name] = {tag: base64.b64decode(inner) if tag == "B" else inner}
    return out


def _sort_value(raw: Item, attribute: str | None) -> Any:
    if attribute is None:
        return ""
    value = raw.get(attribute)
    if value is None:
        return ""
    ((tag, inner),) = value.items()
    if tag == "N":
        from decimal import Decimal

        return Decimal(inner)
    return inner


class _Shard:
    __slots__ = ("buffer", "done", "last", "number", "pk", "resume")

    def __init__(
        self,
        number: int,
        pk: str,
        buffer: deque[Item],
        resume: Item | None,  # ExclusiveStartKey for the next request
        done: bool,
        last: Item | None = None,  # key of the last item handed out (or where we started)
    ) -> None:
        self.number = number
        self.pk = pk
        self.buffer = buffer
        self.resume = resume
        self.done = done
        self.last = last


def merge_flow(
    *,
    op_params: Callable[[str], dict[str, Any]],
    shards: Shards,
    logical_pk: str,
    sort_attribute: str | None,
    key_attributes: Sequence[str],
    forward: bool,
    limit: int | None,
    page_size: int | None,
    cursor: str | None,
    parse: Callable[[Item], tuple[str, Any]],
    retry: Any,
    max_concurrency: int,
) -> Flow[None]:
    """Query every shard concurrently and emit merged pages in sort key order.

    ``op_params(physical_pk)`` builds one shard's Query parameters. Each emitted page holds the
    items that are certain to come next (every unfinished shard has a buffered head), with a
    cursor recording each shard's position after them.
    """
    from dynamodel.ops.query import Page

    positions: dict[int, Item | None]
    if cursor:
        positions, done = decode_shard_cursor(cursor, shards.count)
    else:
        positions, done = dict.fromkeys(range(shards.count)), set()
    state = [
        _Shard(n, shards.physical(logical_pk, n), deque(), positions[n], n in done, positions[n])
        for n in range(shards.count)
    ]
    remaining = limit
    requests = 0
    while True:
        starving = [s for s in state if not s.buffer and not s.done]
        if starving:
            batch = []
            for shard in starving:
                params = op_params(shard.pk)
                if not forward:
                    params["ScanIndexForward"] = False
                if shard.resume is not None:
                    params["ExclusiveStartKey"] = shard.resume
                # a shard can contribute at most the items still wanted: read no more
                wanted = [n for n in (page_size, remaining) if n is not None]
                if wanted:
                    params["Limit"] = min(wanted)
                batch.append(Request("query", params))
            responses = yield Gather(batch, retry=retry, max_concurrency=max_concurrency)
            requests += len(batch)
            for shard, response in zip(starving, responses, strict=True):
                if isinstance(response, BaseException):
                    raise response
                shard.buffer.extend(response.get("Items", []))
                shard.resume = response.get("LastEvaluatedKey")
                shard.done = shard.resume is None
            continue_fetch = any(not s.buffer and not s.done for s in state)
            if continue_fetch:
                continue  # a page came back empty (filters): fetch that shard again
        page: Page[Any] = Page(items=[], cursor=None, request_number=requests)
        while all(s.buffer or s.done for s in state) and any(s.buffer for s in state):
            if remaining is not None and len(page.items) >= remaining:
                break
            heads = [s for s in state if s.buffer]
            if forward:
                chosen = min(
                    heads, key=lambda s: (_sort_value(s.buffer[0], sort_attribute), s.number)
                )
            else:
                chosen = max(
                    heads, key=lambda s: (_sort_value(s.buffer[0], sort_attribute), -s.number)
                )
            raw = chosen.buffer.popleft()
            chosen.last = {a: raw[a] for a in key_attributes if a in raw}
            status, model = parse(raw)
            if status == "ok":
                page.items.append(model)
            elif status == "unknown":
                page.unknown.append(raw)
            else:
                page.skipped += 1
        if remaining is not None:
            remaining -= len(page.items)
        finished = {s.number for s in state if s.done and not s.buffer}
        resume_at = {
            s.number: (s.last if s.buffer else s.resume) if (s.buffer or not s.done) else None
            for s in state
        }
        page.cursor = encode_shard_cursor(resume_at, finished, logical_pk)
        yield Emit(page)
        if remaining == 0 or len(finished) == shards.count:
            return


def count_shards_flow(
    op_params: Callable[[str], dict[str, Any]],
    shards: Shards,
    logical_pk: str,
    retry: Any,
    max_concurrency: int,
    limit: int | None,
) -> Flow[int]:
    """Matching items across every shard (``Select=COUNT``), shards counted concurrently."""
    total = 0
    pending: dict[int, Item | None] = dict.fromkeys(range(shards.count))
    while pending:
        batch = []
        for shard, start in pending.items():
            params = dict(op_params(shards.physical(logical_pk, shard)), Select="COUNT")
            if start is not None:
                params["ExclusiveStartKey"] = start
            batch.append(Request("query", params))
        responses = yield Gather(batch, retry=retry, max_concurrency=max_concurrency)
        following: dict[int, Item | None] = {}
        for shard, response in zip(list(pending), responses, strict=True):
            if isinstance(response, BaseException):
                raise response
            total += int(response.get("Count", 0))
            if response.get("LastEvaluatedKey") is not None:
                following[shard] = response["LastEvaluatedKey"]
        if limit is not None and total >= limit:
            return limit
        pending = following
    return total


class ShardCountMismatch(DynamodelError):
    """The table records a different shard count for this key than the model declares."""


# -- the shard-count registry ----------------------------------------------------------------
#
# The first write of a model in a process records how each of its partition keys is sharded
# (or that it is not) in the table, one item per key; the first read or write compares the
# model's declaration with that record, once per process, and raises ShardCountMismatch on a
# difference. So unsharded -> sharded, sharded -> unsharded, N -> M and random <-> calculated
# can never read (or write) silently with the wrong layout. A first write costs one
# conditional PutItem (its ALL_OLD answer is the stored record when one exists), a first
# read one GetItem. These go to DynamoDB itself (``control``), never through DAX or a cache.

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
    ``slots`` (None: not sharded); a write records them first if the table has none. Returns
    whether every slot is now known to match (False while a read found no record yet).
    ``clock`` times when a missing record is looked for again."""
    from dynamodel.core.errors import ConditionFailed
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
