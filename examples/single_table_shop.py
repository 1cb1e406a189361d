"""A shop in one DynamoDB table, access pattern by access pattern.

Run against any endpoint boto3 can reach, e.g. the embedded one:

    dynamodel local &           # prints the AWS_* variables to export
    python examples/single_table_shop.py

Access patterns:
  1. get a customer by id                      -> table pk/sk
  2. list a customer's orders, newest first     -> query CUSTOMER#id, sk begins_with ORDER#
  3. a customer's profile + orders in one call  -> collection query on the partition
  4. an order's lines                           -> query ORDER#id partition
  5. all open orders across customers           -> GSI1 STATUS#open (sparse: drafts not indexed)
  6. find a customer by email                   -> GSI1 EMAIL#address
  7. a customer's orders in a time window       -> sort key range on ORDER#<placed_at>

Each order and its lines are written in one transaction: there is never an order without its
lines, or lines without their order.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import Field

from dynamodel import GSI, Attr, Collection, ConditionFailed, Model, Table, TransactWrite

table = Table("single-table-shop", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])


class Customer(Model):
    class Meta:
        table = table
        pk = "CUSTOMER#{customer_id}"
        sk = "PROFILE"
        indexes = {"gsi1": ("EMAIL#{email}", "CUSTOMER")}

    customer_id: str
    name: str
    email: str


class Order(Model):
    class Meta:
        table = table
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{placed_at}#{order_id}"
        indexes = {"gsi1": ("STATUS#{status}", "{placed_at}#{order_id}")}

    customer_id: str
    order_id: str
    placed_at: dt.datetime
    status: str | None = None  # None = draft: not in the status index (sparse)
    total: Decimal = Decimal("0")


class OrderLine(Model):
    class Meta:
        table = table
        pk = "ORDER#{order_id}"
        sk = "LINE#{line:03d}"

    order_id: str
    line: int
    product: str
    quantity: int = Field(gt=0)
    price: Decimal


def main() -> None:
    table.create(exist_ok=True)
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    Customer(customer_id="c1", name="Ann", email="ann@example.com").save()
    for n, status in enumerate(["open", "shipped", None, "open"]):
        lines = [
            OrderLine(order_id=f"o{n}", line=line, product=f"p{line}", quantity=1, price=Decimal(5))
            for line in range(2)
        ]
        order = Order(
            customer_id="c1",
            order_id=f"o{n}",
            placed_at=start + dt.timedelta(hours=n),
            status=status,
            total=sum((x.price * x.quantity for x in lines), Decimal(0)),
        )
        with TransactWrite() as tx:  # sent when the block ends: all of it, or nothing
            tx.put(order)  # put, not create: the script can run again on the same table
            for line in lines:
                tx.put(line)

    print("1.", Customer.get(customer_id="c1"))
    newest = Order.query(customer_id="c1").reverse().limit(2).all()
    print("2. newest orders:", [o.order_id for o in newest])
    result = Collection(Customer, Order).fetch(customer_id="c1")
    print("3. collection:", [type(x).__name__ for x in result.items])
    print("4. lines of o0:", [(x.line, x.product) for x in OrderLine.query(order_id="o0")])
    print("5. open orders:", [o.order_id for o in Order.query(index="gsi1", status="open")])
    (found,) = Customer.query(index="gsi1", email="ann@example.com").all()
    print("6. by email:", found.name)
    window = Order.query(customer_id="c1").sk_between(
        {"placed_at": start}, {"placed_at": start + dt.timedelta(hours=1)}
    )
    print("7. placed in the first hour:", [o.order_id for o in window])

    draft = Order.get(customer_id="c1", order_id="o2", placed_at=start + dt.timedelta(hours=2))
    placed = draft.update(
        Attr("status").set("open"), condition=Attr("status").attribute_type("NULL")
    )
    print("draft o2 placed:", placed.status)
    try:
        draft.update(Attr("status").set("open"), condition=Attr("status").attribute_type("NULL"))
    except ConditionFailed as error:
        print("placing it twice fails; stored status is", error.current.status)


if __name__ == "__main__":
    main()
