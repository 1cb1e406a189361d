"""Signed cursors: the keys a connection signs its reads' cursors with, and the signed format.

A signed cursor is ``<prefix><body>.<tag>``: ``prefix`` names its kind and version (``k2.``: a
query's or scan's resume key; ``s2.``: a sharded query's positions), ``body`` is the payload as
compact JSON in unpadded URL-safe base64 (readable by anyone: signing hides nothing), and
``tag`` the first 16 bytes of HMAC-SHA256 over the prefix, the body and the *context*: the
identity of the read that made it (operation, physical table name, index, entity set,
partition or segment). A cursor therefore verifies only for the read that made it, and only
with one of the connection's keys. The payload also records when it was made (``t``, epoch
seconds by the connection's clock) for ``cursor_max_age``.

Unsigned cursors (format 1: ``base64(JSON)``, ``s.`` + ``base64(JSON)`` for sharded queries)
are what connections without ``cursor_key`` make and accept.

Pure: no clock, no I/O. `hmac` is imported on first use (``import dynamodel`` stays light).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from dynamodel.core.errors import InvalidCursor, ValidationError

#: a query's or scan's signed cursor (the resume key); its unsigned form has no prefix
SIGNED_KEY = "k2."
#: a sharded query's signed cursor (each shard's position); its unsigned form starts ``s.``
SIGNED_SHARDS = "s2."
SIGNED_PREFIXES = (SIGNED_KEY, SIGNED_SHARDS)
#: bytes of HMAC-SHA256 kept in a cursor (128 bits)
TAG_BYTES = 16
#: the shortest key accepted (32 random bytes are recommended)
MIN_KEY_BYTES = 16
_DOMAIN = b"dynamodel cursor\n"

NOTHING_SENT = "Nothing was sent"


def b64encode(data: bytes) -> str:
    """Unpadded URL-safe base64."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str) -> bytes:
    """The bytes of `b64encode`'s text (``binascii.Error``/``ValueError`` when it is not)."""
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))


def dumps(data: Any) -> str:
    """Compact, canonical JSON (what cursor bodies and contexts are made of)."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def is_signed(cursor: str) -> bool:
    """Whether ``cursor`` is in the signed format (verified or not)."""
    return cursor.startswith(SIGNED_PREFIXES)


def peek(cursor: str, prefix: str) -> dict[str, Any]:
    """The payload of a signed cursor, NOT verified (for early checks of its shape; the read
    verifies it with its connection's keys before sending anything). InvalidCursor when
    ``cursor`` is not a well-formed signed cursor of this kind."""
    body, _ = _split(cursor, prefix)
    return _payload(body)


def _split(cursor: str, prefix: str) -> tuple[str, bytes]:
    if not cursor.startswith(prefix):
        raise InvalidCursor(
            f"invalid cursor: not a signed cursor of this kind of read. {NOTHING_SENT}"
        )
    body, dot, tag_text = cursor[len(prefix) :].partition(".")
    try:
        if not dot or not body:
            raise ValueError("its signature is missing")
        tag = b64decode(tag_text)
        if len(tag) != TAG_BYTES or b64encode(tag) != tag_text:
            raise ValueError("its signature is malformed")
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidCursor(f"invalid cursor: {exc}. {NOTHING_SENT}") from exc
    return body, tag


def _payload(body: str) -> dict[str, Any]:
    try:
        data = json.loads(b64decode(body))
        if not isinstance(data, dict):
            raise ValueError("its payload is not an object")
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidCursor(
            f"invalid cursor: its content is unreadable (altered or cut short?). {NOTHING_SENT}"
        ) from exc
    return data


class CursorKeys:
    """The keys a connection signs and verifies cursors with (``Connection(cursor_key=...)``):
    the first key signs, every key verifies (list the new key first to rotate, keep the old
    one until the cursors it signed are no longer in use). No keys: cursors are unsigned.

    ``max_age``: seconds a signed cursor stays valid after it was made (by the connection's
    clock); None: no limit. Key bytes never appear in a repr or an error message.
    """

    __slots__ = ("_keys", "max_age")

    def __init__(
        self,
        keys: bytes | str | Sequence[bytes | str] | None = None,
        max_age: float | None = None,
    ) -> None:
        self._keys: tuple[bytes, ...] = _normalise(keys)
        if max_age is not None:
            if isinstance(max_age, bool) or not isinstance(max_age, int | float) or max_age <= 0:
                raise ValidationError(
                    f"Connection cursor_max_age must be a positive number of seconds, got "
                    f"{max_age!r}"
                )
            if not self._keys:
                raise ValidationError(
                    "Connection cursor_max_age needs a cursor_key (only signed cursors record "
                    "when they were made)"
                )
        self.max_age = max_age

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"CursorKeys(<{len(self._keys)} key(s)>, max_age={self.max_age!r})"

    def seal(self, prefix: str, payload: dict[str, Any], context: str, now: float) -> str:
        """A signed cursor of ``payload`` for the read ``context`` names, made at ``now``."""
        if not self._keys:
            raise ValidationError("no cursor_key to sign with")
        body = b64encode(dumps({**payload, "t": int(now)}).encode("utf-8"))
        return f"{prefix}{body}.{b64encode(_tag(self._keys[0], prefix, body, context))}"

    def open(self, cursor: str, prefix: str, context: str, now: float) -> dict[str, Any]:
        """The payload of ``cursor`` once verified: made with one of these keys, unaltered,
        by the read ``context`` names, and (with ``max_age``) recently enough. InvalidCursor
        otherwise, naming no key."""
        if not cursor.startswith(prefix):
            if is_signed(cursor):
                raise InvalidCursor(
                    f"invalid cursor: it was made by another kind of read (a sharded query's "
                    f"cursor resumes only a sharded query, and the reverse). {NOTHING_SENT}"
                )
            raise InvalidCursor(
                "invalid cursor: it is not signed, and the connection this read runs on signs "
                "its cursors (cursor_key): it accepts only cursors it signed. " + NOTHING_SENT
            )
        body, tag = _split(cursor, prefix)
        import hmac

        matched = False
        for key in self._keys:  # every key is tried: the time taken does not tell which
            matched |= hmac.compare_digest(_tag(key, prefix, body, context), tag)
        if not matched:
            raise InvalidCursor(
                "invalid cursor: its signature does not match. It was altered, signed with a "
                "key this connection does not have, or made by another query (a cursor "
                f"resumes only the read that made it: same table, index, models and "
                f"partition or segment). {NOTHING_SENT}"
            )
        data = _payload(body)
        made = data.get("t")
        if self.max_age is not None:
            if isinstance(made, bool) or not isinstance(made, int):
                raise InvalidCursor(f"invalid cursor: it records no time. {NOTHING_SENT}")
            age = now - made
            if age > self.max_age:
                raise InvalidCursor(
                    f"invalid cursor: it expired ({age:.0f}s old, cursor_max_age is "
                    f"{self.max_age:g}s); start the read again. {NOTHING_SENT}"
                )
        return data


def _tag(key: bytes, prefix: str, body: str, context: str) -> bytes:
    import hashlib
    import hmac

    message = b"".join(
        (_DOMAIN, context.encode("utf-8"), b"\n", prefix.encode("ascii"), body.encode("ascii"))
    )
    return hmac.new(key, message, hashlib.sha256).digest()[:TAG_BYTES]


def _normalise(keys: bytes | str | Sequence[bytes | str] | None) -> tuple[bytes, ...]:
    if keys is None:
        return ()
    listed = [keys] if isinstance(keys, bytes | bytearray | str) else keys
    if not isinstance(listed, Sequence | list | tuple):
        raise ValidationError(
            f"Connection cursor_key must be bytes, a str or a sequence of them, got "
            f"{type(keys).__name__}"
        )
    out: list[bytes] = []
    for position, key in enumerate(listed):
        if isinstance(key, str):
            key = key.encode("utf-8")
        if not isinstance(key, bytes | bytearray):
            raise ValidationError(
                f"Connection cursor_key: key {position} must be bytes or a str, got "
                f"{type(key).__name__}"
            )
        if len(key) < MIN_KEY_BYTES:
            raise ValidationError(
                f"Connection cursor_key: key {position} is {len(key)} bytes; a key needs at "
                f"least {MIN_KEY_BYTES} (32 random bytes recommended: secrets.token_bytes(32))"
            )
        out.append(bytes(key))
    if not out:
        raise ValidationError("Connection cursor_key: an empty sequence of keys (None: unsigned)")
    return tuple(out)
