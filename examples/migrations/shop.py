"""The shop's models as of this release: orders are now also indexed by status (gsi2).

The previous release had only gsi1 (customers by e-mail); the orders it wrote carry no gsi2
keys, so the new index cannot see them until a migration backfills the keys.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from dynamodel import GSI, Model, Table

table = Table(
    "example-migrations-shop",
    indexes=[
        GSI("gsi1", pk="gsi1pk", sk="gsi1sk"),
        GSI("gsi2", pk="gsi2pk", sk="gsi2sk"),  # new in this release: orders by status
    ],
)


class Customer(Model):
    class Meta:
        table = table
        pk = "CUSTOMER#{customer_id}"
        sk = "PROFILE"
        indexes = {"gsi1": ("EMAIL#{email}", "CUSTOMER")}

    customer_id: str
    email: str


class Order(Model):
    class Meta:
        table = table
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{placed_at}#{order_id}"
        indexes = {"gsi2": ("STATUS#{status}", "{placed_at}#{order_id}")}

    customer_id: str
    order_id: int
    placed_at: dt.datetime
    status: str = "open"
    total: Decimal = Decimal("0")
