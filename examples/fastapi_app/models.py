"""The shop's single-table design: every entity lives in one table.

Access patterns, and the key that answers each:

| Access pattern                          | Key                                                  |
| --------------------------------------- | ---------------------------------------------------- |
| customer by id                          | ``CUSTOMER#<id>`` / ``PROFILE``                      |
| customer by e-mail                      | gsi1 ``EMAIL#<email>`` / ``CUSTOMER``                 |
| customer + newest orders, one request   | ``CUSTOMER#<id>``, sort key descending               |
| a customer's orders, newest first       | ``CUSTOMER#<id>`` / ``begins_with ORDER#``           |
| an order's lines                        | ``CUSTOMER#<id>#ORDER#<id>`` / ``ITEM#<product>``    |
| orders in a status, oldest first        | gsi1 ``STATUS#<status>`` / ``<placed_at>#<id>``      |
| product by id                           | ``PRODUCT#<id>`` / ``PRODUCT``                       |
| a product's views, newest first         | ``VIEWS#<product>.<shard>`` (8 shards, merged)       |

gsi1 is *overloaded*: customers put their e-mail in it, orders their status. Each model only
renders its own templates, so a query on ``EMAIL#...`` never meets an order.
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field

from dynamodel import GSI, Model, Shards, Table

TABLE = Table("fastapi-shop", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])

#: one identifier format for customers and products: what fits in a URL path segment
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


def cents(value: Decimal) -> Decimal:
    """Two decimal places. DynamoDB stores numbers normalised (``2.50`` comes back ``2.5``)."""
    return value.quantize(Decimal("0.01"))


#: an amount of money: at most 2 decimal places in, always 2 out
Money = Annotated[Decimal, Field(max_digits=12, decimal_places=2), AfterValidator(cents)]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id(at: dt.datetime) -> str:
    """A time-ordered id (sorts by creation time, then randomly): ``20260301T093000123456-9f2c``."""
    return f"{at:%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}"


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


#: status -> the statuses an order may be in before moving to it
TRANSITIONS_TO: dict[OrderStatus, tuple[OrderStatus, ...]] = {
    OrderStatus.PENDING: (),
    OrderStatus.PAID: (OrderStatus.PENDING,),
    OrderStatus.SHIPPED: (OrderStatus.PAID,),
    OrderStatus.DELIVERED: (OrderStatus.SHIPPED,),
    OrderStatus.CANCELLED: (OrderStatus.PENDING, OrderStatus.PAID),
}


class Customer(Model):
    class Meta:
        table = TABLE
        pk = "CUSTOMER#{customer_id}"
        sk = "PROFILE"
        indexes = {"gsi1": ("EMAIL#{email}", "CUSTOMER")}

    customer_id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)
    created_at: dt.datetime = Field(default_factory=utcnow)


class Product(Model):
    class Meta:
        table = TABLE
        pk = "PRODUCT#{product_id}"
        sk = "PRODUCT"

    product_id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    price: Money = Field(gt=0)
    stock: int = Field(default=0, ge=0)


class Order(Model):
    """An order in its customer's partition; in gsi1 under its status (the key follows it)."""

    class Meta:
        table = TABLE
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{order_id}"
        indexes = {"gsi1": ("STATUS#{status}", "{placed_at}#{order_id}")}
        version = "version"  # optimistic locking: every write checks and bumps it

    customer_id: str
    order_id: str
    placed_at: dt.datetime
    status: OrderStatus = OrderStatus.PENDING
    total: Money
    lines: int
    version: int = 0


class OrderItem(Model):
    """One line of an order, in the order's own partition. The partition key starts with the
    customer's, so every item a customer owns has a key that begins ``CUSTOMER#<id>``: a tenant
    scope and an IAM ``LeadingKeys`` policy can both confine a customer to them."""

    class Meta:
        table = TABLE
        pk = "CUSTOMER#{customer_id}#ORDER#{order_id}"
        sk = "ITEM#{product_id}"

    customer_id: str
    order_id: str
    product_id: str
    quantity: int = Field(gt=0)
    unit_price: Money


class View(Model):
    """A product page view. Popular products get thousands a second: more than one partition
    takes (1,000 writes/s), so the partition key is spread over 8 shards; a query on
    ``product_id`` reads all of them and merges them in sort key order."""

    class Meta:
        table = TABLE
        pk = "VIEWS#{product_id}"
        sk = "{at}#{view_id}"
        shards = Shards(8)

    product_id: str = Field(pattern=ID_PATTERN)
    at: dt.datetime
    view_id: str
    user_id: str | None = None
