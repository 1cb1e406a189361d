"""The shop's HTTP API.

    SHOP_CREATE_TABLE=1 uvicorn examples.fastapi_app.app:app --port 8080   # the web extra

Every endpoint is async and uses the one async client the lifespan created (``deps.py``).
Models reach it through the table binding; transactions and batch reads take the injected
`Connection` explicitly.

Three kinds of endpoint (``deps.py``):

- customer endpoints run inside the caller's tenant scope (``CallerDep``): dynamodel refuses
  any key of another customer before sending a request (a 403);
- staff endpoints (``StaffDep``) change the catalogue and search across customers;
- public endpoints read the catalogue and record page views.

Cursors are signed with the connection's ``cursor_key``: a client can hold one and send it
back, but an edited one, or one from another customer's listing, is refused (a 422).
"""

from __future__ import annotations

import asyncio
import secrets
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Path, Query

from dynamodel import (
    Attr,
    Collection,
    ConditionFailed,
    ItemNotFound,
    Key,
    Model,
    TransactionCanceled,
    TransactWrite,
    VersionConflict,
    abatch_get,
)

from . import errors
from .deps import CallerDep, ConnectionDep, Settings, StaffDep, lifespan
from .models import (
    ID_PATTERN,
    TRANSITIONS_TO,
    Customer,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    View,
    new_id,
    utcnow,
)
from .schemas import (
    CustomerIn,
    CustomerOverview,
    OrderDetail,
    OrderIn,
    PageOut,
    ProductIn,
    StatusChange,
    ViewIn,
)

router = APIRouter()

Limit = Annotated[int, Query(ge=1, le=100)]
CustomerId = Annotated[str, Path(pattern=ID_PATTERN)]


async def one_page(query: Any) -> PageOut[Any]:
    """Run a query that has a limit: its items and the cursor to continue after them."""
    items: list[Any] = []
    cursor = None
    async for page in query.apages():
        items.extend(page.items)
        cursor = page.cursor
    return PageOut(items=items, cursor=cursor)


# -- customers ---------------------------------------------------------------------------------


@router.post("/customers", status_code=201)
async def create_customer(body: CustomerIn, caller: CallerDep) -> Customer:
    """Sign up: the body's ``customer_id`` must be the caller's (the tenant scope sees to it)."""
    customer = Customer(**body.model_dump())
    try:
        await customer.acreate()  # only if the key is free
    except ConditionFailed as error:
        raise HTTPException(409, f"customer {customer.customer_id!r} exists") from error
    return customer


@router.get("/customers", dependencies=[StaffDep])
async def find_customers(email: str) -> list[Customer]:
    """Customers by e-mail address (gsi1, shared with orders by status)."""
    customers: list[Customer] = await Customer.query(index="gsi1", email=email).limit(10).aall()
    return customers


@router.get("/customers/{customer_id}")
async def get_customer(
    customer_id: CustomerId, caller: CallerDep, recent: Annotated[int, Query(ge=0, le=50)] = 5
) -> CustomerOverview:
    """The profile and the newest orders, in one query on the customer's partition.

    ``PROFILE`` sorts after every ``ORDER#...``: read backwards, it comes first.
    """
    query = Collection(Customer, Order).query(customer_id=customer_id).reverse()
    items = await query.limit(recent + 1).aall()
    if not items or not isinstance(items[0], Customer):
        raise ItemNotFound(f"customer {customer_id!r} not found")
    orders = [item for item in items[1:] if isinstance(item, Order)]
    return CustomerOverview(customer=items[0], recent_orders=orders)


# -- products ----------------------------------------------------------------------------------


@router.post("/products", status_code=201, dependencies=[StaffDep])
async def create_product(body: ProductIn) -> Product:
    product = Product(**body.model_dump())
    try:
        await product.acreate()
    except ConditionFailed as error:
        raise HTTPException(409, f"product {product.product_id!r} exists") from error
    return product


@router.get("/products/{product_id}")
async def get_product(product_id: str) -> Product:
    return await Product.aget(product_id=product_id)


# -- orders ------------------------------------------------------------------------------------


@router.post("/customers/{customer_id}/orders", status_code=201)
async def place_order(
    customer_id: CustomerId, body: OrderIn, caller: CallerDep, connection: ConnectionDep
) -> OrderDetail:
    """Check the customer and products, then write the order, its lines and the stock changes
    in one transaction: all of it happens, or none."""
    wanted: list[Key[Model]] = [Key(Customer, customer_id=customer_id)]
    wanted += [Key(Product, product_id=line.product_id) for line in body.lines]
    found = await abatch_get(wanted, connection=connection)
    if found.missing:
        names = ", ".join(
            f"product {k.fields['product_id']}" if k.model is Product else "customer"
            for k in found.missing
        )
        raise HTTPException(404, detail=f"not found: {names}")
    prices = {p.product_id: p.price for p in found.items if isinstance(p, Product)}

    now = utcnow()
    order_id = new_id(now)
    items = [
        OrderItem(
            customer_id=customer_id,
            order_id=order_id,
            product_id=line.product_id,
            quantity=line.quantity,
            unit_price=prices[line.product_id],
        )
        for line in body.lines
    ]
    order = Order(
        customer_id=customer_id,
        order_id=order_id,
        placed_at=now,
        total=sum((i.unit_price * i.quantity for i in items), Decimal(0)),
        lines=len(items),
    )
    try:
        async with TransactWrite(connection=connection) as tx:
            tx.create(order)
            for item in items:
                tx.create(item)
                tx.update_item(
                    Product,
                    {"product_id": item.product_id},
                    [Attr("stock").add(-item.quantity)],
                    # enough stock, and the price the order was priced at
                    condition=(Attr("stock") >= item.quantity) & (Attr("price") == item.unit_price),
                )
    except TransactionCanceled as error:
        raise HTTPException(409, detail=_why_rejected(error, items)) from error
    return OrderDetail(order=order, items=items)


def _why_rejected(error: TransactionCanceled, items: list[OrderItem]) -> str:
    """One sentence per product that stopped the order."""
    wanted = {item.product_id: item for item in items}
    problems = []
    for reason in error.failed:
        product = reason.current
        if isinstance(product, Product) and product.product_id in wanted:
            item = wanted[product.product_id]
            if product.price != item.unit_price:
                problems.append(
                    f"the price of {product.product_id} changed to {product.price}; "
                    "place the order again"
                )
            else:
                problems.append(
                    f"{product.product_id}: {product.stock} in stock, {item.quantity} wanted"
                )
        elif reason.model is Order or reason.model is OrderItem:
            problems.append("the order already exists; place it again")
        else:  # name the entity, never its key: keys are the table's business
            entity = reason.model.__name__ if reason.model else "an item"
            problems.append(f"{reason.code or 'a change'} on {entity}")
    return "order rejected: " + "; ".join(problems)


@router.get("/customers/{customer_id}/orders")
async def list_orders(
    customer_id: CustomerId, caller: CallerDep, limit: Limit = 20, cursor: str | None = None
) -> PageOut[Order]:
    """A customer's orders, newest first (order ids sort by time)."""
    query = Order.query(customer_id=customer_id).reverse()
    return await one_page(query.limit(limit).start_from(cursor))


@router.get("/customers/{customer_id}/orders/{order_id}")
async def get_order(customer_id: CustomerId, order_id: str, caller: CallerDep) -> OrderDetail:
    """The order and its lines: two reads, sent concurrently."""
    order, items = await asyncio.gather(
        Order.aget(customer_id=customer_id, order_id=order_id),
        OrderItem.query(customer_id=customer_id, order_id=order_id).aall(),
        return_exceptions=True,  # wait for both: no read left running after a 404
    )
    if isinstance(order, BaseException):
        raise order
    if isinstance(items, BaseException):
        raise items
    return OrderDetail(order=order, items=items)


@router.patch("/customers/{customer_id}/orders/{order_id}")
async def change_status(
    customer_id: CustomerId, order_id: str, change: StatusChange, caller: CallerDep
) -> Order:
    """Move an order to another status, based on the version the client read.

    A stale version is a 409 with the stored order; so is a move the stored status does not
    allow (checked by DynamoDB in the same write, so a race cannot slip through).
    """
    sources = TRANSITIONS_TO[change.status]
    if not sources:
        raise HTTPException(422, detail=f"an order cannot move back to {change.status}")
    stored = await Order.aget(customer_id=customer_id, order_id=order_id)
    based_on = stored.model_copy(update={"version": change.version})
    try:
        return await based_on.aupdate(
            Attr("status").set(change.status), condition=Attr("status").is_in(*sources)
        )
    except VersionConflict:
        raise
    except ConditionFailed as error:
        now = error.current.status if isinstance(error.current, Order) else "gone"
        raise HTTPException(
            409, detail=f"order {order_id} is {now}: it cannot become {change.status}"
        ) from error


@router.get("/orders", dependencies=[StaffDep])
async def orders_by_status(
    status: OrderStatus, limit: Limit = 20, cursor: str | None = None
) -> PageOut[Order]:
    """Orders in one status across all customers, oldest first (gsi1)."""
    query = Order.query(index="gsi1", status=status)
    return await one_page(query.limit(limit).start_from(cursor))


# -- product views: a write-sharded hot key ----------------------------------------------------


@router.post("/products/{product_id}/views", status_code=201)
async def record_view(product_id: str, body: ViewIn | None = None) -> View:
    """Record a view: one PutItem to one of the product's 8 view shards, chosen at random."""
    view = View(
        product_id=product_id,
        at=utcnow(),
        view_id=secrets.token_hex(8),
        user_id=body.user_id if body else None,
    )
    await view.asave()
    return view


@router.get("/products/{product_id}/views")
async def list_views(
    product_id: str, limit: Limit = 20, cursor: str | None = None
) -> PageOut[View]:
    """Views, newest first: every shard is queried concurrently and the results merged."""
    query = View.query(product_id=product_id).reverse()
    return await one_page(query.limit(limit).start_from(cursor))


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; its lifespan connects to DynamoDB as ``settings`` (default: the env) say."""
    app = FastAPI(title="dynamodel shop", lifespan=lifespan)
    app.state.settings = settings or Settings.from_env()
    errors.install(app)
    app.include_router(router)
    return app


app = create_app()
