"""Cursors and pages: the opaque cursor a page ends with, the pagination flow every query and
scan runs (page size, item limit, request count) and the count flow.

A read on a connection with ``cursor_key`` makes signed cursors (`dynamodel.core.cursors`,
prefix ``k2.``) bound to the read's identity (its *context*) and verifies the one it resumes
from before its first request; other connections make and accept format 1 (`encode_cursor`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any

from dynamodel.core.codec import Item
from dynamodel.core.cursors import NOTHING_SENT, SIGNED_KEY, SIGNED_SHARDS, is_signed, peek
from dynamodel.core.errors import InvalidCursor
from dynamodel.core.flows import Emit, Flow, Inputs, Request, call, connection_inputs
from dynamodel.ops.page import Page


def encode_cursor(key: Item | None) -> str | None:
    """An opaque, URL-safe, unsigned cursor (format 1) for a LastEvaluatedKey (None stays
    None). It is the key as base64 JSON: anyone can read and edit it."""
    if key is None:
        return None
    text = json.dumps({"v": 1, "k": plain_key(key)}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> Item:
    """The LastEvaluatedKey inside an unsigned cursor made by `encode_cursor`."""
    try:
        if is_signed(cursor):
            raise ValueError("a signed cursor (only its read can verify it)")
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if data.get("v") != 1 or not isinstance(data.get("k"), dict):
            raise ValueError("unknown cursor version")
        return typed_key(data["k"])
    except (ValueError, TypeError, AttributeError, binascii.Error, UnicodeError) as exc:
        raise InvalidCursor(f"invalid cursor: {exc}") from exc


def plain_key(key: Item) -> dict[str, dict[str, str]]:
    """A key as JSON can hold it (binary values in base64)."""
    plain: dict[str, dict[str, str]] = {}
    for name, value in key.items():
        ((tag, inner),) = value.items()
        if tag == "B":
            inner = base64.b64encode(bytes(inner)).decode("ascii")
        plain[name] = {tag: inner}
    return plain


def typed_key(plain: Any) -> Item:
    """`plain_key`'s inverse (ValueError/TypeError/AttributeError when it is not one)."""
    if not isinstance(plain, dict):
        raise ValueError("no key")
    out: Item = {}
    for name, value in plain.items():
        ((tag, inner),) = value.items()
        if tag not in ("S", "N", "B") or not isinstance(inner, str):
            raise ValueError(f"bad key type {tag}")
        out[name] = {tag: base64.b64decode(inner) if tag == "B" else inner}
    return out


def peek_cursor(cursor: str) -> Item:
    """The resume key in a query's or scan's cursor, signed or not, NOT verified: for checks
    while a read is built (`start_from`); the read verifies a signed cursor with the keys of
    the connection it runs on (`open_cursor`) before its first request."""
    if cursor.startswith(SIGNED_SHARDS) or cursor.startswith("s."):
        raise InvalidCursor(
            f"invalid cursor: a sharded query's cursor resumes only a sharded query. {NOTHING_SENT}"
        )
    if not cursor.startswith(SIGNED_KEY):
        return decode_cursor(cursor)
    return _signed_key(peek(cursor, SIGNED_KEY))


def _signed_key(payload: dict[str, Any]) -> Item:
    try:
        return typed_key(payload.get("k"))
    except (ValueError, TypeError, AttributeError, binascii.Error) as exc:
        raise InvalidCursor(f"invalid cursor: {exc}. {NOTHING_SENT}") from exc


def open_cursor(cursor: str, context: str, inputs: Inputs) -> Item:
    """The resume key in ``cursor``, verified with the running connection's keys (``inputs``):
    a connection with ``cursor_key`` accepts only a cursor it signed for the read ``context``
    names, one without accepts only unsigned cursors. InvalidCursor otherwise."""
    keys = inputs.cursor_keys
    if keys:
        return _signed_key(keys.open(cursor, SIGNED_KEY, context, inputs.clock()))
    if is_signed(cursor):
        raise InvalidCursor(
            "invalid cursor: it is signed, and the connection this read runs on has no "
            f"cursor_key to verify it with. {NOTHING_SENT}"
        )
    return decode_cursor(cursor)


def make_cursor(key: Item | None, context: Callable[[], str], inputs: Inputs) -> str | None:
    """The cursor for resume key ``key`` (None stays None): signed for the read ``context()``
    names when the running connection has ``cursor_key``, else `encode_cursor`'s."""
    if key is None:
        return None
    keys = inputs.cursor_keys
    if not keys:
        return encode_cursor(key)
    return keys.seal(SIGNED_KEY, {"k": plain_key(key)}, context(), inputs.clock())


#: a read with a limit first asks DynamoDB (``Limit``) for as many items as it still needs; when
#: a filter (the entity type, a user filter, hidden expired items) thinned a page out, the next
#: asks for this many times more than the last did, and past `ADAPTIVE_MAX` for full pages
ADAPTIVE_GROWTH = 4
ADAPTIVE_MAX = 1000


def page_limit(remaining: int | None, page_size: int | None, previous: int | None) -> int | None:
    """The ``Limit`` of a read's next request: ``page_size`` when given; else, with a limit,
    what is still needed, growing by `ADAPTIVE_GROWTH` after the first request (None: no
    ``Limit``, DynamoDB's 1 MB pages; also without a limit)."""
    if page_size is not None:
        return page_size
    if remaining is None:
        return None
    if previous is None:
        return remaining
    grown = previous * ADAPTIVE_GROWTH
    return max(remaining, grown) if grown <= ADAPTIVE_MAX else None


def paginate(
    op: str,
    base: dict[str, Any],
    parse: Parser,
    *,
    limit: int | None,
    page_size: int | None,
    start_key: Item | None,
    key_attributes: Sequence[str],
    retry: Any,
    cursor_context: Callable[[], str],
    inputs: Inputs | None = None,
) -> Flow[None]:
    """Emit `Page` objects for a Query or Scan until done or ``limit`` items returned.

    Each page's cursor is made for the read ``cursor_context()`` names (`make_cursor`) with
    ``inputs``, the running connection's (asked for when a first cursor is needed). A read with
    a limit reads only about what it returns (`page_limit`)."""
    remaining = limit
    last_key = start_key
    requests = 0
    sent_limit: int | None = None
    while True:
        params = dict(base)
        if last_key is not None:
            params["ExclusiveStartKey"] = last_key
        sent_limit = page_limit(remaining, page_size, sent_limit)
        if sent_limit is not None:
            params["Limit"] = sent_limit
        response = yield from call(Request(op, params), retry)
        requests += 1
        last_key = response.get("LastEvaluatedKey")
        page: Page[Any] = Page(
            items=[],
            cursor=None,
            scanned_count=int(response.get("ScannedCount", 0)),
            request_number=requests,
            consumed_capacity=response.get("ConsumedCapacity"),
        )
        stop_key = _fill(page, response.get("Items", []), parse, remaining, key_attributes)
        if stop_key is not None:
            last_key = stop_key
        if last_key is not None and inputs is None:
            inputs = yield from connection_inputs()
        page.cursor = None if inputs is None else make_cursor(last_key, cursor_context, inputs)
        if remaining is not None:
            remaining -= len(page.items)
        yield Emit(page)
        del page, response  # let the consumer's page go before the next one is fetched
        if last_key is None or remaining == 0:
            return


def _fill(
    page: Page[Any],
    raw_items: list[Item],
    parse: Parser,
    remaining: int | None,
    key_attributes: Sequence[str],
) -> Item | None:
    """Parse ``raw_items`` into ``page``; the key to resume from when ``remaining`` is reached
    mid-page (else None). A function of its own: no local of the flow keeps the page's last
    item alive while the next page is fetched."""
    last_raw: Item | None = None
    for raw in raw_items:
        if remaining is not None and len(page.items) == remaining:
            # limit reached mid-page: resume right after the last item returned
            assert last_raw is not None
            return {a: last_raw[a] for a in key_attributes if a in last_raw}
        status, model = parse(raw)
        if status == "ok":
            page.items.append(model)
            last_raw = raw
        elif status == "unknown":
            page.unknown.append(raw)
        else:
            page.skipped += 1
    return None


def count_flow(
    op: str, base: dict[str, Any], start_key: Item | None, retry: Any, limit: int | None = None
) -> Flow[int]:
    """Matching items (``Select=COUNT``) over every page, capped at ``limit`` when given."""
    total = 0
    last_key = start_key
    while True:
        params = dict(base, Select="COUNT")
        if last_key is not None:
            params["ExclusiveStartKey"] = last_key
        response = yield from call(Request(op, params), retry)
        total += int(response.get("Count", 0))
        last_key = response.get("LastEvaluatedKey")
        if limit is not None and total >= limit:
            return limit
        if last_key is None:
            return total


Parser = Callable[
    [Item], "tuple[str, Any]"
]  # -> ("ok", model) | ("unknown", None) | ("skip", None)
