"""Scatter-gather reads of a sharded partition key: one query per shard, run concurrently and
merged back in sort-key order, with one cursor that resumes every shard."""

from __future__ import annotations

import base64
import binascii
import json
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from dynamodel.core.codec import Item
from dynamodel.core.cursors import NOTHING_SENT, SIGNED_KEY, SIGNED_SHARDS, is_signed, peek
from dynamodel.core.errors import InvalidCursor
from dynamodel.core.flows import Emit, Flow, Gather, Inputs, Request, connection_inputs
from dynamodel.ops.pagination import plain_key, typed_key


class Sources(Protocol):
    """What a merged read fans out over: `dynamodel.modelling.sharding.Shards` (the physical
    partition keys of one logical key), or `Tables` (the tables of several periods)."""

    @property
    def count(self) -> int: ...

    def physical(self, logical: str, number: int) -> str: ...


class Tables:
    """Per-period tables as merge sources: ``physical`` gives source ``number``'s table name
    (what ``op_params`` receives)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)

    @property
    def count(self) -> int:
        """How many tables."""
        return len(self.names)

    def physical(self, logical: str, number: int) -> str:
        """Table ``number``'s name."""
        return self.names[number]


def encode_shard_cursor(
    positions: Mapping[int, Item | None], done: set[int], partition: str | None = None
) -> str | None:
    """An unsigned cursor (format 1) holding each shard's resume key (None when every shard
    is done) and the logical partition key it belongs to."""
    data = _shard_payload(positions, done, partition)
    if data is None:
        return None
    text = json.dumps({"v": 1, **data}, separators=(",", ":"), sort_keys=True)
    return "s." + base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def _shard_payload(
    positions: Mapping[int, Item | None], done: set[int], partition: str | None
) -> dict[str, Any] | None:
    if len(done) == len(positions):
        return None
    shards: dict[str, Any] = {}
    for shard, key in positions.items():
        if shard in done:
            continue
        shards[str(shard)] = None if key is None else plain_key(key)
    data: dict[str, Any] = {"s": shards}
    if partition is not None:
        data["p"] = partition
    return data


def make_shard_cursor(
    positions: Mapping[int, Item | None],
    done: set[int],
    partition: str,
    context: Callable[[], str],
    inputs: Inputs,
) -> str | None:
    """A sharded query's cursor: signed for the read ``context()`` names when the running
    connection has ``cursor_key``, else `encode_shard_cursor`'s."""
    keys = inputs.cursor_keys
    if not keys:
        return encode_shard_cursor(positions, done, partition)
    data = _shard_payload(positions, done, partition)
    return None if data is None else keys.seal(SIGNED_SHARDS, data, context(), inputs.clock())


def decode_shard_cursor(cursor: str, count: int) -> tuple[dict[int, Item | None], set[int]]:
    """Positions and finished shards from :func:`encode_shard_cursor`'s text."""
    try:
        if not cursor.startswith("s."):
            raise ValueError("not a sharded query cursor")
        data = _shard_cursor_data(cursor)
        if data.get("v") != 1:
            raise ValueError("unknown cursor version")
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error) as exc:
        raise InvalidCursor(f"invalid sharded cursor: {exc}") from exc
    return _positions(data, count)


def _positions(data: Mapping[str, Any], count: int) -> tuple[dict[int, Item | None], set[int]]:
    try:
        positions: dict[int, Item | None] = {}
        for shard_text, key in data["s"].items():
            shard = int(shard_text)
            if not 0 <= shard < count:
                raise ValueError(f"shard {shard} out of range for {count} shards")
            positions[shard] = None if key is None else typed_key(key)
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error) as exc:
        raise InvalidCursor(f"invalid sharded cursor: {exc}") from exc
    done = {shard for shard in range(count) if shard not in positions}
    for shard in done:
        positions[shard] = None
    return positions, done


def peek_shard_cursor(
    cursor: str, count: int
) -> tuple[dict[int, Item | None], set[int], str | None]:
    """Positions, finished shards and recorded logical partition (None in cursors made before
    it was recorded) of a sharded query's cursor, signed or not, NOT verified: for checks
    while a query is built; the query verifies a signed cursor before its first request."""
    if cursor.startswith(SIGNED_SHARDS):
        data = peek(cursor, SIGNED_SHARDS)
        positions, done = _positions(data, count)
    elif cursor.startswith(SIGNED_KEY):
        raise InvalidCursor(
            "invalid sharded cursor: a cursor of an unsharded read (a sharded query's cursor "
            f"resumes only a sharded query). {NOTHING_SENT}"
        )
    else:
        positions, done = decode_shard_cursor(cursor, count)
        data = _shard_cursor_data(cursor)
    partition = data.get("p")
    return positions, done, partition if isinstance(partition, str) else None


def open_shard_cursor(
    cursor: str, count: int, context: str, inputs: Inputs
) -> tuple[dict[int, Item | None], set[int]]:
    """Positions and finished shards of ``cursor``, verified with the running connection's
    keys (see `dynamodel.ops.pagination.open_cursor`)."""
    keys = inputs.cursor_keys
    if keys:
        return _positions(keys.open(cursor, SIGNED_SHARDS, context, inputs.clock()), count)
    if is_signed(cursor):
        raise InvalidCursor(
            "invalid cursor: it is signed, and the connection this read runs on has no "
            f"cursor_key to verify it with. {NOTHING_SENT}"
        )
    return decode_shard_cursor(cursor, count)


def _shard_cursor_data(cursor: str) -> Any:
    body = cursor[2:]  # after the "s." marker
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


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
    shards: Sources,
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
    cursor_context: Callable[[], str] = lambda: "",
    inputs: Inputs | None = None,
    operation: str = "query",
) -> Flow[None]:
    """Query every shard (or source, see `Sources`) concurrently and emit merged pages in
    sort key order (``operation``: ``query`` or ``scan``).

    ``cursor`` is verified, and each page's cursor made, for the read ``cursor_context()``
    names with ``inputs``, the running connection's (asked for when first needed).

    ``op_params(physical_pk)`` builds one shard's Query parameters. Each emitted page holds the
    items that are certain to come next (every unfinished shard has a buffered head), with a
    cursor recording each shard's position after them.
    """
    from dynamodel.ops.page import Page

    positions: dict[int, Item | None]
    if cursor:
        if inputs is None:
            inputs = yield from connection_inputs()
        positions, done = open_shard_cursor(cursor, shards.count, cursor_context(), inputs)
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
                if not forward and operation == "query":
                    params["ScanIndexForward"] = False
                if shard.resume is not None:
                    params["ExclusiveStartKey"] = shard.resume
                # a shard can contribute at most the items still wanted: read no more
                wanted = [n for n in (page_size, remaining) if n is not None]
                if wanted:
                    params["Limit"] = min(wanted)
                batch.append(Request(operation, params))
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
        if inputs is None and len(finished) < shards.count:
            inputs = yield from connection_inputs()
        page.cursor = (
            None
            if inputs is None
            else make_shard_cursor(resume_at, finished, logical_pk, cursor_context, inputs)
        )
        yield Emit(page)
        if remaining == 0 or len(finished) == shards.count:
            return


def count_shards_flow(
    op_params: Callable[[str], dict[str, Any]],
    shards: Sources,
    logical_pk: str,
    retry: Any,
    max_concurrency: int,
    limit: int | None,
    operation: str = "query",
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
            batch.append(Request(operation, params))
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
