"""Cursors and pages: the opaque cursor a page ends with, the pagination flow every query and
scan runs (page size, item limit, request count) and the count flow."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any

from dynamodel.core.codec import Item
from dynamodel.core.errors import InvalidCursor
from dynamodel.core.flows import Emit, Flow, Request, call
from dynamodel.ops.page import Page


def encode_cursor(key: Item | None) -> str | None:
    """An opaque, URL-safe cursor for a LastEvaluatedKey (None stays None)."""
    if key is None:
        return None
    plain: dict[str, dict[str, str]] = {}
    for name, value in key.items():
        ((tag, inner),) = value.items()
        if tag == "B":
            inner = base64.b64encode(bytes(inner)).decode("ascii")
        plain[name] = {tag: inner}
    text = json.dumps({"v": 1, "k": plain}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> Item:
    """The LastEvaluatedKey inside a cursor made by `encode_cursor`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if data.get("v") != 1 or not isinstance(data.get("k"), dict):
            raise ValueError("unknown cursor version")
        out: Item = {}
        for name, value in data["k"].items():
            ((tag, inner),) = value.items()
            if tag not in ("S", "N", "B"):
                raise ValueError(f"bad key type {tag}")
            out[name] = {tag: base64.b64decode(inner) if tag == "B" else inner}
        return out
    except (ValueError, TypeError, AttributeError, binascii.Error, UnicodeError) as exc:
        raise InvalidCursor(f"invalid cursor: {exc}") from exc


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
) -> Flow[None]:
    """Emit `Page` objects for a Query or Scan until done or ``limit`` items returned."""
    remaining = limit
    last_key = start_key
    requests = 0
    while True:
        params = dict(base)
        if last_key is not None:
            params["ExclusiveStartKey"] = last_key
        if page_size is not None:
            params["Limit"] = page_size
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
        last_raw: Item | None = None
        for raw in response.get("Items", []):
            if remaining is not None and len(page.items) == remaining:
                # limit reached mid-page: resume right after the last item returned
                assert last_raw is not None
                last_key = {a: last_raw[a] for a in key_attributes if a in last_raw}
                break
            status, model = parse(raw)
            if status == "ok":
                page.items.append(model)
                last_raw = raw
            elif status == "unknown":
                page.unknown.append(raw)
            else:
                page.skipped += 1
        page.cursor = encode_cursor(last_key)
        if remaining is not None:
            remaining -= len(page.items)
        yield Emit(page)
        del page, response  # let the consumer's page go before the next one is fetched
        if last_key is None or remaining == 0:
            return


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
