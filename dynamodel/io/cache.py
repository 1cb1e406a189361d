"""A local, in-process read cache with DAX's semantics.

`LocalCache` holds two caches, like a DAX cluster:

* the **item cache** serves GetItem and BatchGetItem by key. Writes made through the cache
  (PutItem, UpdateItem returning ``ALL_NEW``, DeleteItem, BatchWriteItem, TransactWriteItems)
  update it; an UpdateItem that does not return the new item, and any write that fails,
  drops the key instead. Not-found results are cached too (negative caching).
* the **query cache** serves Query and Scan by their exact request. Writes do not touch it:
  a cached result stays until its TTL passes, even if the items changed.

Strongly consistent reads (``ConsistentRead=True``) and TransactGetItems always reach the
server, and their results are not cached. Entries expire ``item_ttl``/``query_ttl`` seconds
after they were stored (DAX's default is 5 minutes); each cache holds at most ``max_items``
keys / ``max_queries`` requests and evicts the least recently used. Writes made by anyone
else (another process, the console, TTL deletions) are not seen until entries expire.

Use it on a connection, where every data-plane call of the tables bound to it goes through
it::

    table.bind(connection=Connection(cache=LocalCache(item_ttl=60, query_ttl=5)))

The cache is a `dynamodel.io.middleware` step (`LocalCache.around`), the same object for sync and
async calls. `CachingClient` and `AsyncCachingClient` put it in front of a boto3-style client
(sync or async); `dynamodel.io.dax.LocalDax` uses it as a stand-in for a DAX cluster.
"""

from __future__ import annotations

import base64
import copy
import json
import marshal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from dynamodel.core.errors import ValidationError
from dynamodel.io.middleware import Around, AsyncClient, Client, Send, Wrapper

__all__ = ["AsyncCachingClient", "CacheStats", "CachingClient", "LocalCache"]

_WRITES = frozenset(
    {"put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items"}
)
#: request members that do not change what a read returns
_NOT_IN_QUERY_KEY = frozenset({"ReturnConsumedCapacity"})
_NOT_IN_ITEM_VARIANT = frozenset(
    {"TableName", "Key", "Keys", "ConsistentRead", "ReturnConsumedCapacity"}
)

KeyTuple = tuple[tuple[str, str, Any], ...]


@dataclass
class CacheStats:
    """What a `LocalCache` did so far.

    Attributes:
        item_hits: keys served from the item cache (found or cached as absent).
        item_misses: keys read from the server for the item cache.
        query_hits: Query/Scan requests served from the query cache.
        query_misses: Query/Scan requests sent to the server and cached.
        bypassed: strongly consistent reads and transactional reads sent straight through.
        write_through: keys the item cache stored or dropped because of a write.
        evictions: entries dropped to stay within the size bounds.
    """

    item_hits: int = 0
    item_misses: int = 0
    query_hits: int = 0
    query_misses: int = 0
    bypassed: int = 0
    write_through: int = 0
    evictions: int = 0


@dataclass
class _ItemGroup:
    """The cached forms of one key: the full item (variant None) and projected reads."""

    #: variant -> (expiry, the item's `_freeze` snapshot, or None: absent)
    variants: dict[Any, tuple[float, Any]] = field(default_factory=dict)


@dataclass
class Plan:
    """What to do with one call: answer it (``response``) or send ``send`` and then `after`."""

    op: str
    params: Mapping[str, Any]
    send: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    cache_key: Any = None  # the item key or query key the answer is stored under
    hits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # batch get hits
    asked: dict[str, list[KeyTuple]] = field(default_factory=dict)  # batch get misses
    generation: int = 0  # the cache's write counter when the call started


def _canonical(value: Mapping[str, Any]) -> tuple[str, Any]:
    ((tag, inner),) = value.items()
    if tag == "N":
        try:
            return tag, str(Decimal(inner).normalize())
        except InvalidOperation:
            return tag, inner
    if tag == "B" and isinstance(inner, bytearray | memoryview):
        return tag, bytes(inner)
    return tag, inner


def _key(key: Mapping[str, Any]) -> KeyTuple:
    """A hashable form of a primary key AttributeValue map (attribute order ignored)."""
    return tuple((name, *_canonical(key[name])) for name in sorted(key))


def _freeze(value: dict[str, Any]) -> Any:
    """A private snapshot of ``value`` (an item, or a query's response) that no caller can
    change: marshal's bytes, which `_thaw` turns into a fresh deep copy in one C call (about a
    tenth of the cost of copying an item in Python); a deep copy when marshal cannot hold a
    value (a ``Decimal`` a caller put in a request, say)."""
    try:
        return marshal.dumps(value)
    except ValueError:
        return copy.deepcopy(value)


def _thaw(snapshot: Any) -> Any:
    """A fresh deep copy of what `_freeze` stored (the caller may change it freely)."""
    if type(snapshot) is bytes:
        return marshal.loads(snapshot)
    return copy.deepcopy(snapshot)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"__b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot use {type(value).__name__} in a cache key")


def _request_key(op: str, params: Mapping[str, Any]) -> str:
    kept = {k: v for k, v in params.items() if k not in _NOT_IN_QUERY_KEY}
    return op + json.dumps(kept, sort_keys=True, separators=(",", ":"), default=_json_default)


def _variant(params: Mapping[str, Any]) -> Any:
    """What distinguishes reads of one key: projection and the names it uses (None: all)."""
    rest = {k: v for k, v in params.items() if k not in _NOT_IN_ITEM_VARIANT}
    if not rest:
        return None
    return json.dumps(rest, sort_keys=True, separators=(",", ":"), default=_json_default)


def _zero_capacity(params: Mapping[str, Any], tables: list[str]) -> Any:
    """The ConsumedCapacity of an answer served from the cache (nothing consumed)."""
    entries = [{"TableName": t, "CapacityUnits": 0.0} for t in tables]
    return entries[0] if len(entries) == 1 and "RequestItems" not in params else entries


def _entry(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"PutRequest": body} if kind == "Put" else {"DeleteRequest": body}


def _write_actions(op: str, params: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(table, "Put"|"Update"|"Delete"|"ConditionCheck", body) for each action of a write."""
    if op == "put_item":
        return [(params["TableName"], "Put", params)]
    if op == "update_item":
        return [(params["TableName"], "Update", params)]
    if op == "delete_item":
        return [(params["TableName"], "Delete", params)]
    out: list[tuple[str, str, Mapping[str, Any]]] = []
    if op == "batch_write_item":
        for table, requests in params.get("RequestItems", {}).items():
            for entry in requests:
                if "PutRequest" in entry:
                    out.append((table, "Put", entry["PutRequest"]))
                elif "DeleteRequest" in entry:
                    out.append((table, "Delete", entry["DeleteRequest"]))
    elif op == "transact_write_items":
        for action in params.get("TransactItems", ()):
            for kind, body in action.items():
                if kind in ("Put", "Update", "Delete"):
                    out.append((body["TableName"], kind, body))
    return out


class LocalCache:
    """An in-process read cache with DAX's semantics (thread-safe, bounded, LRU).

    Args:
        item_ttl: seconds an item cache entry lives (0 disables the item cache).
        query_ttl: seconds a query cache entry lives (0 disables the query cache).
        max_items: keys the item cache holds at most.
        max_queries: Query/Scan results the query cache holds at most.
        clock: the time source (seconds; default ``time.monotonic``).
    """

    #: what `dynamodel.io.middleware.Wrapper.find` looks for
    role = "cache"

    def __init__(
        self,
        *,
        item_ttl: float = 300.0,
        query_ttl: float = 300.0,
        max_items: int = 10_000,
        max_queries: int = 1_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("item_ttl", item_ttl), ("query_ttl", query_ttl)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValidationError(f"LocalCache {name} must be a number of seconds >= 0")
        for name, count in (("max_items", max_items), ("max_queries", max_queries)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValidationError(f"LocalCache {name} must be an int >= 1, got {count!r}")
        self.item_ttl = float(item_ttl)
        self.query_ttl = float(query_ttl)
        self.max_items = max_items
        self.max_queries = max_queries
        self.clock = clock
        self.stats = CacheStats()
        self._items: OrderedDict[tuple[str, KeyTuple], _ItemGroup] = OrderedDict()
        #: request key -> (expiry, the response's `_freeze` snapshot)
        self._queries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._key_names: dict[str, tuple[str, ...]] = {}
        # write counter, and the counter value of each recently written key: a read or write
        # that started before a later write of its key must not store its (older) answer
        self._generation = 0
        self._recent: OrderedDict[tuple[str, KeyTuple], int] = OrderedDict()
        self._forgotten = 0  # the newest generation dropped from _recent
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"LocalCache(item_ttl={self.item_ttl}, query_ttl={self.query_ttl}, "
            f"items={len(self._items)}, queries={len(self._queries)})"
        )

    def __len__(self) -> int:
        return len(self._items) + len(self._queries)

    def clear(self) -> None:
        """Forget every entry (the statistics stay)."""
        with self._lock:
            self._items.clear()
            self._queries.clear()

    # -- the decisions: `before` a call, `after` its response, `failed` on its error ----------

    def before(self, op: str, params: Mapping[str, Any]) -> Plan:
        """Answer a call from the cache, or say what to send."""
        plan = Plan(op, params, send=dict(params), generation=self._generation)
        try:
            if op == "get_item":
                self._before_get(plan)
            elif op == "batch_get_item":
                self._before_batch_get(plan)
            elif op in ("query", "scan"):
                self._before_query(plan)
            elif op == "transact_get_items":
                with self._lock:
                    self.stats.bypassed += 1
        except (KeyError, TypeError, ValueError, AttributeError):
            # malformed parameters: send them as they are, DynamoDB says what is wrong
            return Plan(op, params, send=dict(params), generation=plan.generation)
        return plan

    def after(self, plan: Plan, response: dict[str, Any]) -> dict[str, Any]:
        """Store what a sent call returned; return the caller's response."""
        op = plan.op
        if op == "get_item":
            self._after_get(plan, response)
        elif op == "batch_get_item":
            return self._after_batch_get(plan, response)
        elif op in ("query", "scan"):
            if plan.cache_key is not None:
                stored = _freeze(
                    {
                        k: v
                        for k, v in response.items()
                        if k not in ("ConsumedCapacity", "ResponseMetadata")
                    }
                )
                with self._lock:
                    self._put_query(plan.cache_key, stored)
        elif op in _WRITES:
            self._after_write(plan, response)
        return response

    def around(self, op: str, params: dict[str, Any]) -> Around:
        """The cache as a `dynamodel.io.middleware` step: `before`, then `after` or `failed`."""
        plan = self.before(op, params)
        if plan.send is None:
            return plan.response
        try:
            response = yield Send(op, plan.send)
        except BaseException:
            self.failed(plan)
            raise
        return self.after(plan, response)

    def failed(self, plan: Plan) -> None:
        """A call failed: a write may or may not have been applied, so drop its keys."""
        if plan.op not in _WRITES:
            return
        with self._lock:
            try:
                written = self._written_keys(plan.op, plan.params)
            except (KeyError, TypeError, ValueError, AttributeError):
                # the keys cannot be told: forget every item rather than risk a stale one
                self._items.clear()
                self._forgotten = self._generation = self._generation + 1
                return
            for table, key in written:
                self._drop(table, key)

    # -- item cache ----------------------------------------------------------------------------

    def _lookup(self, table: str, key: KeyTuple, variant: Any) -> tuple[bool, Any]:
        """(found, item-or-None) for one key; call with the lock held."""
        group = self._items.get((table, key))
        if group is None:
            return False, None
        entry = group.variants.get(variant)
        if entry is None:
            return False, None
        if entry[0] <= self.clock():
            del group.variants[variant]
            if not group.variants:
                del self._items[(table, key)]
            return False, None
        self._items.move_to_end((table, key))
        return True, entry[1]

    def _written_since(self, table: str, key: KeyTuple, generation: int) -> bool:
        """Whether a write of the key finished after ``generation`` (or might have)."""
        written = self._recent.get((table, key))
        if written is not None:
            return written > generation
        return self._forgotten > generation

    def _mark_written(self, table: str, key: KeyTuple) -> None:
        self._generation += 1
        self._recent[(table, key)] = self._generation
        self._recent.move_to_end((table, key))
        while len(self._recent) > 4 * self.max_items:
            _, self._forgotten = self._recent.popitem(last=False)

    def _read_store(self, plan: Plan, table: str, key: KeyTuple, variant: Any, item: Any) -> None:
        """Cache what a read returned, unless a write of the key finished meanwhile."""
        if not self._written_since(table, key, plan.generation):
            self._store(table, key, variant, item, whole=False)

    def _write_store(self, plan: Plan, table: str, key: KeyTuple, item: Any) -> None:
        """Cache what a write stored (None: deleted), unless a later write finished first."""
        if self._written_since(table, key, plan.generation):
            self._items.pop((table, key), None)
        else:
            self._store(table, key, None, item, whole=True)
        self.stats.write_through += 1
        self._mark_written(table, key)

    def _store(self, table: str, key: KeyTuple, variant: Any, item: Any, *, whole: bool) -> None:
        """Cache one key's item (its `_freeze` snapshot; None: absent); ``whole`` replaces every
        variant (a write)."""
        if self.item_ttl <= 0:
            return
        expires = self.clock() + self.item_ttl
        group = self._items.get((table, key))
        if group is None or whole:
            group = _ItemGroup()
            self._items[(table, key)] = group
        group.variants[variant] = (expires, item)
        self._items.move_to_end((table, key))
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
            self.stats.evictions += 1

    def _drop(self, table: str, key: KeyTuple) -> None:
        if self._items.pop((table, key), None) is not None:
            self.stats.write_through += 1
        self._mark_written(table, key)

    def _learn(self, table: str, key: Mapping[str, Any]) -> None:
        """Remember a table's key attribute names from a request that succeeded."""
        names = tuple(sorted(key))
        if self._key_names.get(table) != names:
            self._key_names[table] = names

    def _item_key(self, table: str, item: Mapping[str, Any]) -> KeyTuple | None:
        """The key of a written item, if the table's key names are known.

        They are learnt from the keys of successful reads and writes; until then nothing of
        that table can be in the item cache, so there is nothing to update either.
        """
        names = self._key_names.get(table)
        if names is None or any(n not in item for n in names):
            return None
        return _key({n: item[n] for n in names})

    def _before_get(self, plan: Plan) -> None:
        params = plan.params
        if self.item_ttl <= 0:
            return
        if params.get("ConsistentRead"):
            with self._lock:
                self.stats.bypassed += 1
            return
        table = params["TableName"]
        key = _key(params["Key"])
        variant = _variant(params)
        plan.cache_key = (table, key, variant)
        with self._lock:
            found, item = self._lookup(table, key, variant)
            if not found:
                self.stats.item_misses += 1
                return
            self.stats.item_hits += 1
        response: dict[str, Any] = {} if item is None else {"Item": _thaw(item)}
        if params.get("ReturnConsumedCapacity") in ("TOTAL", "INDEXES"):
            response["ConsumedCapacity"] = _zero_capacity(params, [table])
        plan.send, plan.response = None, response

    def _after_get(self, plan: Plan, response: Mapping[str, Any]) -> None:
        params = plan.params
        with self._lock:
            self._learn(params["TableName"], params["Key"])
            if plan.cache_key is not None:
                table, key, variant = plan.cache_key
                item = response.get("Item")
                self._read_store(plan, table, key, variant, _freeze(item) if item else None)

    def _before_batch_get(self, plan: Plan) -> None:
        if self.item_ttl <= 0:
            return
        remaining: dict[str, Any] = {}
        with self._lock:
            for table, request in plan.params["RequestItems"].items():
                if request.get("ConsistentRead"):
                    self.stats.bypassed += len(request.get("Keys", ()))
                    remaining[table] = request
                    continue
                variant = _variant(request)
                missing = []
                for raw_key in request.get("Keys", ()):
                    key = _key(raw_key)
                    found, item = self._lookup(table, key, variant)
                    if found:
                        self.stats.item_hits += 1
                        if item is not None:
                            plan.hits.setdefault(table, []).append(item)
                    else:
                        self.stats.item_misses += 1
                        missing.append(raw_key)
                        plan.asked.setdefault(table, []).append(key)
                if missing:
                    remaining[table] = {**request, "Keys": missing}
        plan.hits = {t: [_thaw(i) for i in items] for t, items in plan.hits.items()}
        if remaining:
            plan.send = {**plan.params, "RequestItems": remaining}
            return
        response: dict[str, Any] = {"Responses": {}, "UnprocessedKeys": {}}
        for table in plan.params["RequestItems"]:
            response["Responses"][table] = plan.hits.get(table, [])
        if plan.params.get("ReturnConsumedCapacity") in ("TOTAL", "INDEXES"):
            response["ConsumedCapacity"] = _zero_capacity(
                plan.params, list(plan.params["RequestItems"])
            )
        plan.send, plan.response = None, response

    def _after_batch_get(self, plan: Plan, response: dict[str, Any]) -> dict[str, Any]:
        sent = (plan.send or {}).get("RequestItems", {})
        unprocessed = response.get("UnprocessedKeys") or {}
        with self._lock:
            for table, request in sent.items():
                keys = request.get("Keys", ())
                if keys:
                    self._learn(table, keys[0])
                asked = plan.asked.get(table)
                if not asked:
                    continue  # a strongly consistent table: nothing cached
                variant = _variant(request)
                names = self._key_names.get(table, ())
                returned = {}
                for item in (response.get("Responses") or {}).get(table, ()):
                    if all(n in item for n in names):
                        returned[_key({n: item[n] for n in names})] = item
                not_done = {_key(k) for k in (unprocessed.get(table) or {}).get("Keys", ())}
                for key in asked:
                    if key in not_done:
                        continue  # unprocessed: unknown, not absent
                    item = returned.get(key)
                    self._read_store(plan, table, key, variant, _freeze(item) if item else None)
        if not plan.hits:
            return response
        merged = dict(response)
        responses = {t: list(items) for t, items in (response.get("Responses") or {}).items()}
        for table, items in plan.hits.items():
            responses.setdefault(table, []).extend(items)
        merged["Responses"] = responses
        merged.setdefault("UnprocessedKeys", {})
        return merged

    # -- writes ----------------------------------------------------------------------------------

    def _written_keys(self, op: str, params: Mapping[str, Any]) -> list[tuple[str, KeyTuple]]:
        """Every (table, key) a write touches whose key is known; call with the lock held."""
        out: list[tuple[str, KeyTuple]] = []
        for table, kind, body in _write_actions(op, params):
            key = self._item_key(table, body["Item"]) if kind == "Put" else _key(body["Key"])
            if key is not None:
                out.append((table, key))
        return out

    def _after_write(self, plan: Plan, response: Mapping[str, Any]) -> None:
        op, params = plan.op, plan.params
        skipped: Mapping[str, Any] = {}
        if op == "batch_write_item":
            skipped = response.get("UnprocessedItems") or {}
        with self._lock:
            for table, kind, body in _write_actions(op, params):
                if op == "batch_write_item" and _entry(kind, body) in (skipped.get(table) or ()):
                    continue  # not written: the cache still holds what is stored
                if kind == "Put":
                    key = self._item_key(table, body["Item"])
                    if key is not None:
                        self._write_store(plan, table, key, _freeze(body["Item"]))
                    continue
                self._learn(table, body["Key"])
                key = _key(body["Key"])
                if kind == "Delete":
                    self._write_store(plan, table, key, None)
                elif kind == "Update":
                    new = response.get("Attributes") if op == "update_item" else None
                    if new and params.get("ReturnValues") == "ALL_NEW":
                        self._write_store(plan, table, key, _freeze(new))
                    else:
                        self._drop(table, key)

    # -- query cache -------------------------------------------------------------------------

    def _before_query(self, plan: Plan) -> None:
        params = plan.params
        if self.query_ttl <= 0:
            return
        if params.get("ConsistentRead"):
            with self._lock:
                self.stats.bypassed += 1
            return
        key = _request_key(plan.op, params)
        plan.cache_key = key
        with self._lock:
            entry = self._queries.get(key)
            if entry is not None and entry[0] <= self.clock():
                del self._queries[key]
                entry = None
            if entry is None:
                self.stats.query_misses += 1
                return
            self._queries.move_to_end(key)
            self.stats.query_hits += 1
        response: dict[str, Any] = _thaw(entry[1])
        if params.get("ReturnConsumedCapacity") in ("TOTAL", "INDEXES"):
            response["ConsumedCapacity"] = _zero_capacity(params, [params["TableName"]])
        plan.send, plan.response = None, response

    def _put_query(self, key: str, response: Any) -> None:
        self._queries[key] = (self.clock() + self.query_ttl, response)
        self._queries.move_to_end(key)
        while len(self._queries) > self.max_queries:
            self._queries.popitem(last=False)
            self.stats.evictions += 1


# -- the client wrappers ---------------------------------------------------------------------


class _Cached(Wrapper):
    """What `CachingClient` and `AsyncCachingClient` add to their client: the cache as chain."""

    def __init__(self, client: Any, cache: LocalCache) -> None:
        super().__init__(client, (cache,))


class CachingClient(_Cached, Client):
    """A sync DynamoDB client (boto3's interface) that reads through a `LocalCache`.

    The ten data-plane operations go through the cache; everything else (table management,
    ``meta``, ``close``) is the wrapped client's.
    """


class AsyncCachingClient(_Cached, AsyncClient):
    """`CachingClient` for an aioboto3-style client (the same cache middleware, awaited)."""
