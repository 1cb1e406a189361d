"""Models shared by the integration tests: a small shop in one table.

Partition ``CUSTOMER#<id>`` holds a profile, orders and notes (three entity types).

* ``gsi1``: customers by e-mail, orders by status (the key moves when the status changes).
* ``gsi2``: sparse: only orders with a coupon are in it.
* ``lsi1``: orders of a customer by total (int, zero padded in the sort key).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import Field

from dynamodel import GSI, LSI, Model, Table

APP = Table(
    "app",
    indexes=[
        GSI("gsi1", pk="gsi1pk", sk="gsi1sk"),
        GSI("gsi2", pk="gsi2pk", sk="gsi2sk"),
        LSI("lsi1", sk="lsi1sk"),
    ],
    ttl="expires_at",
    point_in_time_recovery=True,
)


class Customer(Model):
    class Meta:
        table = APP
        pk = "CUSTOMER#{customer_id}"
        sk = "PROFILE"
        indexes = {"gsi1": ("EMAIL#{email}", "CUSTOMER")}

    customer_id: str
    name: str
    email: str
    status: str = "active"
    tags: set[str] = Field(default_factory=set)
    expires_at: int | None = None
    visits: int = 0
    history: list[str] = Field(default_factory=list)
    address: dict[str, str] = Field(default_factory=dict)


class Order(Model):
    class Meta:
        table = APP
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{placed_at}#{order_id}"
        indexes = {
            "gsi1": ("STATUS#{status}", "{placed_at}#{order_id}"),
            "gsi2": ("COUPON#{coupon}", "{order_id}"),
            "lsi1": "TOTAL#{total_cents}",
        }

    customer_id: str
    order_id: int
    placed_at: dt.datetime
    status: str = "open"
    coupon: str | None = None
    total_cents: int = 0
    amount: Decimal = Decimal("0")
    note: str = Field(default="", alias="data")


class Note(Model):
    class Meta:
        table = APP
        pk = "CUSTOMER#{customer_id}"
        sk = "NOTE#{written_at}"

    customer_id: str
    written_at: dt.datetime
    text: str


T0 = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)


def order(n: int, customer_id: str = "c1", **extra: object) -> Order:
    """Order number ``n``, placed ``n`` hours after :data:`T0`."""
    values: dict[str, object] = {
        "customer_id": customer_id,
        "order_id": n,
        "placed_at": T0 + dt.timedelta(hours=n),
        "total_cents": n * 100,
        "amount": Decimal(n) / 4,
    }
    values.update(extra)
    return Order(**values)  # type: ignore[arg-type]
