"""Time to live: a field type storing epoch seconds, and the logic that hides expired items.

DynamoDB's TTL deletes an item some time (typically up to two days) after the time stored
in the table's TTL attribute, a top-level Number of **seconds** since the epoch. Until then
the item is still returned by reads, queries and scans.

```python
class Session(Model):
    class Meta:
        table = Table("app", ttl="expires_at")
        pk = "SESSION#{session_id}"
        sk = "SESSION"

    session_id: str
    expires_at: TTL                     # datetime in Python, epoch seconds in DynamoDB

Session(session_id="s1", expires_at=timedelta(hours=1))   # one hour from now
```

A `TTL` field accepts an aware ``datetime``, a ``timedelta`` (from now), epoch seconds
(``int``/``float``/``Decimal``, as DynamoDB returns them) or an ISO 8601 string, and holds an
aware UTC ``datetime``. It refuses naive datetimes (ambiguous), values that look like
milliseconds (10^11 or more: DynamoDB would treat them as seconds, thousands of years away,
and never expire the item) and times before 2000, naming the field in the error.

`is_expired`, `not_expired_condition` and `drop_expired` are the pure logic reads use to
hide items that have expired but are not deleted yet.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, SerializationInfo, ValidationInfo

from dynamodel.core.codec import Item
from dynamodel.core.errors import ValidationError
from dynamodel.core.expressions import Attr, Condition

__all__ = [
    "MAX_EPOCH_SECONDS",
    "MIN_EPOCH_SECONDS",
    "TTL",
    "drop_expired",
    "epoch_seconds",
    "is_expired",
    "not_expired_condition",
]

#: 2000-01-01T00:00:00Z: earlier expiry times are refused as mistakes
MIN_EPOCH_SECONDS = 946_684_800
#: 10**11 seconds is the year 5138; larger values are milliseconds (or finer) by mistake
MAX_EPOCH_SECONDS = 10**11 - 1


def _now() -> dt.datetime:
    # The real time, only for code with no connection: a TTL field given a timedelta while
    # pydantic validates it (at model construction), and the helpers below called without
    # ``now``. Operations pass ``now`` from their connection's clock (``Connection(clock=)``).
    return dt.datetime.now(dt.UTC)


def epoch_seconds(value: Any, *, field: str = "ttl", now: dt.datetime | None = None) -> int:
    """Validate a TTL value and return it as whole epoch seconds.

    Accepts an aware ``datetime``, a ``timedelta`` (added to ``now``, default the current
    time), epoch seconds (``int``, ``float``, ``Decimal``; fractions are dropped) or an ISO
    8601 string. Raises `ValidationError` naming ``field`` for anything else, naive
    datetimes, values that look like milliseconds and times before 2000.
    """
    if isinstance(value, bool):
        raise ValidationError(f"{field}: a TTL must be a datetime, timedelta or epoch seconds")
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValidationError(f"{field}: {value!r} is not an ISO 8601 datetime") from exc
    if isinstance(value, dt.timedelta):
        value = (now or _now()) + value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValidationError(
                f"{field}: a TTL datetime must be timezone-aware (got naive {value.isoformat()}); "
                "use datetime.now(UTC) or attach a tzinfo"
            )
        seconds = math.floor(value.timestamp())
    elif isinstance(value, int | float | Decimal):
        if isinstance(value, float | Decimal) and not math.isfinite(value):
            raise ValidationError(f"{field}: a TTL must be a finite number, got {value!r}")
        seconds = math.floor(value)
    else:
        raise ValidationError(
            f"{field}: a TTL must be a datetime, timedelta or epoch seconds, "
            f"not {type(value).__name__}"
        )
    if seconds > MAX_EPOCH_SECONDS:
        guess = seconds // 1000
        raise ValidationError(
            f"{field}: {seconds} looks like milliseconds (or finer) since the epoch; DynamoDB's "
            f"TTL reads seconds, so the item would never expire (did you mean {guess}?)"
        )
    if seconds < MIN_EPOCH_SECONDS:
        raise ValidationError(
            f"{field}: {seconds} is before 2000-01-01 ({MIN_EPOCH_SECONDS}); a TTL is an expiry "
            "time in epoch seconds (a duration belongs in a timedelta)"
        )
    return seconds


def _validate(value: Any, info: ValidationInfo) -> dt.datetime:
    seconds = epoch_seconds(value, field=info.field_name or "ttl")
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _serialize(value: dt.datetime, info: SerializationInfo) -> int | str:
    if info.mode == "json":
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return math.floor(value.timestamp())


#: A TTL field: an aware UTC ``datetime`` in Python, stored as epoch seconds (Number).
#: ``model_dump()`` gives the epoch seconds (what is stored), ``model_dump_json()`` ISO 8601.
TTL = Annotated[
    dt.datetime,
    BeforeValidator(_validate),
    PlainSerializer(_serialize, when_used="always"),
]


def _stored_seconds(item: Mapping[str, Any], attribute: str) -> Decimal | None:
    value = item.get(attribute)
    if not isinstance(value, Mapping) or "N" not in value:
        return None  # DynamoDB's TTL ignores items without a Number in the attribute
    try:
        return Decimal(value["N"])
    except ArithmeticError:
        return None


def is_expired(item: Mapping[str, Any], attribute: str, now: dt.datetime | None = None) -> bool:
    """Whether a raw item (AttributeValue map) has expired per its TTL attribute.

    True when the attribute is a Number of epoch seconds before ``now`` (default: the current
    time), exactly the items DynamoDB's TTL will delete; items without the attribute, or
    with a non-Number in it, never expire.
    """
    seconds = _stored_seconds(item, attribute)
    if seconds is None:
        return False
    return seconds < Decimal(math.floor((now or _now()).timestamp()))


def drop_expired(
    items: Iterable[Item], attribute: str, now: dt.datetime | None = None
) -> tuple[list[Item], int]:
    """The items that have not expired, and how many were dropped."""
    moment = now or _now()
    every = list(items)
    kept = [item for item in every if not is_expired(item, attribute, moment)]
    return kept, len(every) - len(kept)


def not_expired_condition(attribute: str, now: dt.datetime | None = None) -> Condition:
    """A filter condition keeping only items that have not expired (see `is_expired`).

    ``NOT (attribute_type(ttl, N) AND ttl < :now)``: applied by DynamoDB as a
    ``FilterExpression``, so page limits and ``count()`` agree with what is returned.
    """
    return ~expired_condition(attribute, now)


def expired_condition(attribute: str, now: dt.datetime | None = None) -> Condition:
    """The condition true of items that have expired (see `is_expired`) at ``now`` (default:
    the current time; operations pass their connection's clock):
    ``attribute_type(ttl, N) AND ttl < :now``."""
    ttl = Attr((attribute,), raw=True)
    moment = math.floor((now or _now()).timestamp())
    return ttl.attribute_type("N") & (ttl < moment)
