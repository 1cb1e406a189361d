"""The TTL field type and the logic that hides expired items."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pydantic
import pytest

from dynamodel import Model, Table, ValidationError
from dynamodel.core.expressions import Placeholders, render_condition
from dynamodel.modelling.ttl import (
    MIN_EPOCH_SECONDS,
    TTL,
    drop_expired,
    epoch_seconds,
    is_expired,
    not_expired_condition,
)

SESSIONS = Table("ttl-sessions", ttl="expires_at")
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
NOW_S = 1714564800


class Session(Model):
    class Meta:
        table = SESSIONS
        pk = "SESSION#{session_id}"
        sk = "SESSION"

    session_id: str
    expires_at: TTL
    renew_by: TTL | None = None


def _create_without_server_ttl() -> None:
    """The sessions table, with the server's TTL deletion left off: a server may delete expired
    items at any moment (an emulator can sweep within seconds), and these tests need expired
    items that still exist (as on DynamoDB, where deletion takes up to days). Reads still hide
    them: that is dynamodel's logic, driven by the declared ``ttl`` attribute."""
    Table(SESSIONS.name).create(poll=0.01)


def test_now_constant_is_right() -> None:
    assert NOW.timestamp() == NOW_S


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (NOW, NOW_S),
        (NOW.astimezone(dt.timezone(dt.timedelta(hours=-5))), NOW_S),
        (dt.timedelta(hours=1), NOW_S + 3600),
        (dt.timedelta(seconds=-30), NOW_S - 30),
        (NOW_S, NOW_S),
        (float(NOW_S) + 0.9, NOW_S),
        (Decimal(NOW_S), NOW_S),
        ("2024-05-01T12:00:00Z", NOW_S),
        ("2024-05-01T14:00:00+02:00", NOW_S),
    ],
)
def test_epoch_seconds_accepts(value: Any, expected: int) -> None:
    assert epoch_seconds(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (NOW_S * 1000, r"looks like milliseconds .*did you mean 1714564800\?"),
        (NOW_S * 1_000_000, "looks like milliseconds"),
        (10**11, "looks like milliseconds"),
        (MIN_EPOCH_SECONDS - 1, "before 2000-01-01"),
        (3600, "before 2000-01-01"),
        (dt.datetime(2024, 5, 1, 12, 0), "timezone-aware"),
        (True, "must be a datetime, timedelta or epoch seconds"),
        ("tomorrow", "not an ISO 8601"),
        ([1], "not list"),
        (float("nan"), "finite"),
    ],
)
def test_epoch_seconds_refuses_naming_the_field(value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        epoch_seconds(value, field="expires_at", now=NOW)
    assert str(caught.value).startswith("expires_at: ")


def test_ttl_field_stores_epoch_seconds_and_reads_them_back() -> None:
    session = Session(session_id="s1", expires_at=NOW, renew_by=NOW_S - 60)
    assert session.expires_at == NOW and session.expires_at.tzinfo is not None
    item = session.to_item()
    assert item["expires_at"] == {"N": str(NOW_S)}
    assert item["renew_by"] == {"N": str(NOW_S - 60)}
    back = Session.from_item(item)
    assert back == session
    assert session.model_dump()["expires_at"] == NOW_S
    assert '"expires_at":"2024-05-01T12:00:00Z"' in session.model_dump_json()
    assert Session.model_validate_json(session.model_dump_json()) == session
    assert Session(session_id="s2", expires_at=NOW).to_item()["renew_by"] == {"NULL": True}


def test_ttl_field_timedelta_is_relative_to_now() -> None:
    before = dt.datetime.now(dt.UTC)
    session = Session(session_id="s1", expires_at=dt.timedelta(minutes=5))
    after = dt.datetime.now(dt.UTC)
    low = before.replace(microsecond=0) + dt.timedelta(minutes=5)
    assert low <= session.expires_at <= after + dt.timedelta(minutes=5)


def test_ttl_field_errors_name_the_field() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        Session(session_id="s1", expires_at=NOW_S * 1000)
    text = str(caught.value)
    assert "expires_at" in text and "milliseconds" in text
    with pytest.raises(pydantic.ValidationError, match=r"renew_by: .*before 2000"):
        Session(session_id="s1", expires_at=NOW, renew_by=42)
    # a stored millisecond value is refused on read too (it would never expire)
    with pytest.raises(pydantic.ValidationError, match="milliseconds"):
        Session.from_item({"session_id": {"S": "s1"}, "expires_at": {"N": str(NOW_S * 1000)}})


@pytest.mark.parametrize(
    ("attribute", "expired"),
    [
        ({"N": str(NOW_S - 1)}, True),
        ({"N": str(NOW_S)}, False),  # expires strictly before now
        ({"N": str(NOW_S + 1)}, False),
        ({"N": f"{NOW_S - 1}.5"}, True),
        ({"N": str(NOW_S * 1000)}, False),  # milliseconds: far future for DynamoDB
        ({"S": str(NOW_S - 100)}, False),  # not a Number: TTL ignores it
        ({"NULL": True}, False),
        (None, False),
    ],
)
def test_is_expired(attribute: dict[str, Any] | None, expired: bool) -> None:
    item: dict[str, Any] = {"pk": {"S": "x"}}
    if attribute is not None:
        item["expires_at"] = attribute
    assert is_expired(item, "expires_at", NOW) is expired


def test_is_expired_defaults_to_the_current_time() -> None:
    past = Session(session_id="a", expires_at=dt.timedelta(seconds=-5)).to_item()
    future = Session(session_id="b", expires_at=dt.timedelta(minutes=5)).to_item()
    assert is_expired(past, "expires_at") and not is_expired(future, "expires_at")


def test_drop_expired() -> None:
    items = [
        {"id": {"S": "old"}, "ttl": {"N": str(NOW_S - 10)}},
        {"id": {"S": "new"}, "ttl": {"N": str(NOW_S + 10)}},
        {"id": {"S": "none"}},
    ]
    kept, dropped = drop_expired(iter(items), "ttl", NOW)
    assert [i["id"]["S"] for i in kept] == ["new", "none"]
    assert dropped == 1


def test_not_expired_condition_renders_with_placeholders() -> None:
    ph = Placeholders()
    text = render_condition(not_expired_condition("ttl", NOW), ph, "FilterExpression")
    params = ph.apply({})
    names = params["ExpressionAttributeNames"]
    values = params["ExpressionAttributeValues"]
    assert "ttl" in names.values()
    assert {"N": str(NOW_S)} in values.values() and {"S": "N"} in values.values()
    assert text.startswith("NOT")


def test_not_expired_filter_keeps_what_is_expired_says(ddb: Any, fresh_db: Any) -> None:
    """The server-side filter and the client-side check agree, on the real backend."""
    _create_without_server_ttl()
    stored = {
        "past": {"N": str(NOW_S - 60)},
        "now": {"N": str(NOW_S)},
        "future": {"N": str(NOW_S + 60)},
        "millis": {"N": str(NOW_S * 1000)},
        "text": {"S": "soon"},
        "absent": None,
    }
    items = []
    for name, ttl in stored.items():
        item = {"pk": {"S": f"SESSION#{name}"}, "sk": {"S": "SESSION"}}
        if ttl is not None:
            item["expires_at"] = ttl
        ddb.put_item(TableName=SESSIONS.physical_name, Item=item)
        items.append(item)
    ph = Placeholders()
    params = {
        "TableName": SESSIONS.physical_name,
        "FilterExpression": render_condition(
            not_expired_condition("expires_at", NOW), ph, "FilterExpression"
        ),
    }
    found = ddb.scan(**ph.apply(params))["Items"]
    server = sorted(i["pk"]["S"] for i in found)
    client = sorted(i["pk"]["S"] for i in items if not is_expired(i, "expires_at", NOW))
    assert server == client
    assert server == [f"SESSION#{n}" for n in sorted(["now", "future", "millis", "text", "absent"])]


def test_updating_a_ttl_field_stores_epoch_seconds(ddb: Any, fresh_db: Any) -> None:
    from dynamodel import Attr

    _create_without_server_ttl()
    session = Session(session_id="s1", expires_at=NOW)
    session.save()
    session.update(Attr("expires_at").set(NOW + dt.timedelta(hours=1)))
    stored = ddb.get_item(TableName=SESSIONS.physical_name, Key=session.item_key())["Item"]
    assert stored["expires_at"] == {"N": str(NOW_S + 3600)}


async def test_expired_items_are_hidden_from_every_read(fresh_db: Any, io: Any) -> None:
    from dynamodel import TransactGet
    from dynamodel.ops.batch import batch_get
    from dynamodel.ops.batch_flows import Key

    _create_without_server_ttl()
    now = dt.datetime.now(dt.UTC)
    live = Session(session_id="live", expires_at=now + dt.timedelta(hours=1))
    gone = Session(session_id="gone", expires_at=now - dt.timedelta(seconds=5))
    await io.save(live)
    await io.save(gone)

    assert await io.get_or_none(Session, session_id="gone") is None
    assert (await io.get(Session, session_id="live")).session_id == "live"
    assert [s.session_id for s in await io.all(Session.scan())] == ["live"]
    assert [s.session_id for s in await io.all(Session.scan().limit(1))] == ["live"]
    assert await io.count(Session.scan()) == 1
    result = batch_get([Key(Session, session_id="gone"), Key(Session, session_id="live")])
    assert [s.session_id for s in result.items] == ["live"]
    assert [k.fields["session_id"] for k in result.missing] == ["gone"]
    tx = TransactGet()
    ref = tx.get(Session, session_id="gone")
    assert tx.execute() == [None] and ref.item is None

    shown = Table("ttl-sessions", ttl="expires_at", hide_expired=False)

    class AnySession(Model):
        class Meta:
            table = shown
            entity = "Session"
            pk = "SESSION#{session_id}"
            sk = "SESSION"

        session_id: str
        expires_at: TTL
        renew_by: TTL | None = None

    assert (await io.get(AnySession, session_id="gone")).session_id == "gone"
    assert await io.count(AnySession.scan()) == 2
