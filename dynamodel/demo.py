"""``dynamodel demo``: a short scripted tour on the embedded local backend (or any endpoint).

It declares a small shop in one table (customers, orders, notes; a GSI for orders by status),
creates the table, writes items, runs a collection query, updates an order (moving it in the
GSI), provokes a conditional failure and reads back asynchronously, printing each step.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import os
from contextlib import ExitStack
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import Field
from rich.markup import escape  # every value printed goes through it: "[async]" must survive

from dynamodel.core.errors import ConditionFailed
from dynamodel.core.expressions import Attr
from dynamodel.io.clients import Connection
from dynamodel.model import Model
from dynamodel.modelling.table import GSI, Table
from dynamodel.ops.collection import Collection

if TYPE_CHECKING:
    from rich.console import Console

shop = Table("dynamodel-demo", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])


class Status(enum.Enum):
    """Order status."""

    OPEN = "open"
    SHIPPED = "shipped"


class Customer(Model):
    """A customer profile: ``CUSTOMER#<id>`` / ``PROFILE``."""

    class Meta:
        table = shop
        pk = "CUSTOMER#{customer_id}"
        sk = "PROFILE"

    customer_id: str
    name: str
    email: str
    tags: set[str] = Field(default_factory=set)


class Order(Model):
    """An order in its customer's partition, and in the GSI by status."""

    class Meta:
        table = shop
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{placed_at}#{order_id}"
        indexes = {"gsi1": ("STATUS#{status}", "{placed_at}#{order_id}")}

    customer_id: str
    order_id: int
    placed_at: dt.datetime
    status: Status = Status.OPEN
    total: Decimal


class Note(Model):
    """A support note, also in the customer's partition."""

    class Meta:
        table = shop
        pk = "CUSTOMER#{customer_id}"
        sk = "NOTE#{written_at}"

    customer_id: str
    written_at: dt.datetime
    text: str


def _connection(endpoint_url: str) -> Connection:
    import boto3

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    session = boto3.session.Session()
    credentials: dict[str, Any] = {}
    if session.get_credentials() is None:  # a local endpoint accepts any credentials
        credentials = {"aws_access_key_id": "demo", "aws_secret_access_key": "demo"}
    client = session.client(
        "dynamodb", endpoint_url=endpoint_url, region_name=region, **credentials
    )
    return Connection(client=client, endpoint_url=endpoint_url, region=region)


def run_demo(console: Console, endpoint_url: str | None = None) -> None:
    """Run the tour, printing what happens; starts a private local server when no endpoint."""
    with ExitStack() as stack:
        if endpoint_url is None:
            from dynamodel.local import LocalDynamoDB

            server = stack.enter_context(LocalDynamoDB())
            previous = server.apply_env()
            stack.callback(server.restore_env, previous)
            endpoint_url = server.endpoint_url
            console.print(f"[bold]Embedded local DynamoDB[/bold] (moto) at {escape(endpoint_url)}")
        connection = _connection(endpoint_url)
        shop.bind(connection=connection)
        stack.callback(shop.unbind)
        _tour(console)
        asyncio.run(_async_tour(console, connection))


def _step(console: Console, title: str) -> None:
    console.print()
    console.rule(f"[bold cyan]{escape(title)}")


def _tour(console: Console) -> None:
    _step(console, "1. Create the table")
    request = shop.create_table_request()
    indexes = [i["IndexName"] for i in request.get("GlobalSecondaryIndexes", [])]
    description = shop.create(exist_ok=True)
    console.print(
        f"table [green]{escape(description['TableName'])}[/green] is "
        + escape(
            f"{description['TableStatus']}; keys pk/sk, GSIs {indexes}, "
            f"billing {request['BillingMode']}"
        )
    )

    _step(console, "2. Write three entity types into one partition")
    start = dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC)
    ann = Customer(customer_id="c1", name="Ann", email="ann@example.com", tags={"vip"})
    ann.save()
    orders = [
        Order(
            customer_id="c1",
            order_id=n,
            placed_at=start + dt.timedelta(days=n),
            total=Decimal("19.99") * n,
        )
        for n in (1, 2, 3)
    ]
    for order in orders:
        order.save()
    Note(customer_id="c1", written_at=start, text="prefers email").save()
    item = orders[0].to_item()
    console.print("an Order as stored (DynamoDB JSON):")
    for name in sorted(item):
        console.print(f"  [magenta]{escape(name)}[/magenta] = {escape(str(item[name]))}")

    _step(console, "3. One query, several model classes (a collection)")
    result = Collection(Customer, Order, Note).fetch(customer_id="c1")
    for entity in result.items:
        console.print(f"  {type(entity).__name__:<9} {entity!r}", markup=False)
    console.print(f"{len(result.items)} items in {result.requests} request(s)", markup=False)

    _step(console, "4. Query one entity type with a sort key range")
    since = start + dt.timedelta(days=2)
    recent = Order.query(customer_id="c1").sk_ge(placed_at=since).all()
    console.print(
        f"orders placed since {since:%Y-%m-%d}: {[o.order_id for o in recent]}", markup=False
    )

    _step(console, "5. Update an order: its GSI key moves with its status")
    shipped = orders[0].update(Attr("status").set(Status.SHIPPED))
    console.print(f"order {shipped.order_id} is now {shipped.status.value}", markup=False)
    open_ids = [o.order_id for o in Order.query(index="gsi1", status=Status.OPEN)]
    shipped_ids = [o.order_id for o in Order.query(index="gsi1", status=Status.SHIPPED)]
    console.print(f"GSI by status: open {open_ids}, shipped {shipped_ids}", markup=False)

    _step(console, "6. A conditional write that fails")
    try:
        Customer(customer_id="c1", name="Impostor", email="x@example.com").create()
    except ConditionFailed as error:
        console.print(f"[yellow]ConditionFailed[/yellow]: {escape(str(error))}")
        console.print(f"the item already stored: {error.current!r}", markup=False)


async def _async_tour(console: Console, connection: Connection) -> None:
    _step(console, "7. The same models, async")
    try:
        customer = await Customer.aget(customer_id="c1")
        count = await Order.query(customer_id="c1").acount()
        console.print(f"aget -> {customer.name}; acount of orders -> {count}", markup=False)
    except ImportError as error:
        console.print(f"[yellow]skipped[/yellow]: {escape(str(error))}")
    finally:
        await connection.aclose()
    console.print()
    console.print("[bold green]Done.[/bold green] Next: docs/index.md, or `dynamodel local`.")
