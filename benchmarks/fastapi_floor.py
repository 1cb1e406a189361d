"""The floor of case (k): a minimal hand-written FastAPI + aioboto3 app, without dynamodel.

It serves the routes of ``examples/fastapi_app`` the load of case (k) calls, with the same
semantics, the same DynamoDB requests and the same JSON bodies:

* ``GET /customers/{customer_id}/orders/{order_id}``: GetItem of the order and a Query of its
  lines (sort-key prefix ``ITEM#``, filter on ``_type``), sent concurrently; 404 when the order
  does not exist;
* ``GET /customers/{customer_id}/orders?limit=&cursor=``: one Query of the customer's orders,
  newest first, with ``Limit`` (continued while a filtered page came back short), and a
  signed cursor (HMAC-SHA256 over the last evaluated key and the customer) when more remain;
* ``POST /customers``: PutItem of the profile with ``attribute_not_exists(pk)`` (409 when the
  customer exists).

Callers identify with ``X-Customer-Id`` (401 without it, 422 when malformed); a request for
another customer's items is a 403, as the example's tenant scope answers. Responses are plain
pydantic models (FastAPI validates and serialises them, as for the example). Configured by the
example's ``SHOP_*`` variables (``SHOP_MAX_CONNECTIONS``: the aioboto3 pool size).

    SHOP_ENDPOINT_URL=http://127.0.0.1:8000 uvicorn benchmarks.fastapi_floor:app
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import enum
import hashlib
import hmac
import json
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any

import aioboto3
from botocore.config import Config
from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
TABLE = os.environ.get("SHOP_TABLE", "fastapi-shop")
CURSOR_KEY = os.environ.get("SHOP_CURSOR_KEY", "floor-cursor-key-floor-cursor-key").encode()


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


Money = Annotated[Decimal, Field(max_digits=12, decimal_places=2), AfterValidator(cents)]


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class Customer(BaseModel):
    customer_id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)
    created_at: dt.datetime


class CustomerIn(BaseModel):
    customer_id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)


class Order(BaseModel):
    customer_id: str
    order_id: str
    placed_at: dt.datetime
    status: OrderStatus = OrderStatus.PENDING
    total: Money
    lines: int
    version: int = 0


class OrderItem(BaseModel):
    customer_id: str
    order_id: str
    product_id: str
    quantity: int = Field(gt=0)
    unit_price: Money


class OrderDetail(BaseModel):
    order: Order
    items: list[OrderItem]


class OrderPage(BaseModel):
    items: list[Order]
    cursor: str | None


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item's S/N/BOOL/NULL attributes as Python values (what these models hold)."""
    out: dict[str, Any] = {}
    for name, value in item.items():
        ((kind, raw),) = value.items()
        out[name] = Decimal(raw) if kind == "N" else None if kind == "NULL" else raw
    return out


def sign(customer_id: str, key: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode())
    mac = hmac.new(CURSOR_KEY, customer_id.encode() + b"." + body, hashlib.sha256).digest()
    return body.decode() + "." + base64.urlsafe_b64encode(mac).decode()


def unsign(customer_id: str, cursor: str) -> dict[str, Any]:
    try:
        body, mac = cursor.encode().split(b".")
        good = hmac.new(CURSOR_KEY, customer_id.encode() + b"." + body, hashlib.sha256).digest()
        if hmac.compare_digest(base64.urlsafe_b64decode(mac), good):
            key: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body))
            return key
    except ValueError:
        pass
    raise HTTPException(422, detail="invalid cursor")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 3},
        tcp_keepalive=True,
        max_pool_connections=int(os.environ.get("SHOP_MAX_CONNECTIONS", "64")),
    )
    async with AsyncExitStack() as stack:
        app.state.db = await stack.enter_async_context(
            aioboto3.Session().client(
                "dynamodb",
                endpoint_url=os.environ.get("SHOP_ENDPOINT_URL") or None,
                region_name=os.environ.get("SHOP_REGION") or None,
                config=config,
            )
        )
        yield


app = FastAPI(title="floor", lifespan=lifespan)
CustomerId = Annotated[str, Path(pattern=ID_PATTERN)]


def db() -> Any:
    return app.state.db


async def caller(
    x_customer_id: Annotated[str | None, Header(pattern=ID_PATTERN)] = None,
) -> str:
    if x_customer_id is None:
        raise HTTPException(401, detail="who is calling? (X-Customer-Id)")
    return x_customer_id


Caller = Annotated[str, Depends(caller)]


def forbidden() -> JSONResponse:
    return JSONResponse({"detail": "forbidden"}, status_code=403)


@app.post("/customers", status_code=201, response_model=Customer)
async def create_customer(body: CustomerIn, who: Caller) -> Any:
    if body.customer_id != who:
        return forbidden()
    customer = Customer(**body.model_dump(), created_at=dt.datetime.now(dt.UTC))
    stored = customer.model_dump(mode="json")
    item = {name: {"S": value} for name, value in stored.items()}
    item |= {
        "pk": {"S": f"CUSTOMER#{customer.customer_id}"},
        "sk": {"S": "PROFILE"},
        "gsi1pk": {"S": f"EMAIL#{customer.email}"},
        "gsi1sk": {"S": "CUSTOMER"},
        "_type": {"S": "Customer"},
    }
    try:
        await db().put_item(
            TableName=TABLE,
            Item=item,
            ConditionExpression="attribute_not_exists(#n0)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ExpressionAttributeNames={"#n0": "pk"},
        )
    except db().exceptions.ConditionalCheckFailedException as error:
        raise HTTPException(409, f"customer {customer.customer_id!r} exists") from error
    return customer


async def _order_lines(customer_id: str, order_id: str) -> list[dict[str, Any]]:
    params: dict[str, Any] = {
        "TableName": TABLE,
        "FilterExpression": "#n0 = :v0",
        "KeyConditionExpression": "#n1 = :v1 AND begins_with(#n2, :v2)",
        "ExpressionAttributeNames": {"#n0": "_type", "#n1": "pk", "#n2": "sk"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "OrderItem"},
            ":v1": {"S": f"CUSTOMER#{customer_id}#ORDER#{order_id}"},
            ":v2": {"S": "ITEM#"},
        },
    }
    items: list[dict[str, Any]] = []
    while True:
        page = await db().query(**params)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@app.get("/customers/{customer_id}/orders/{order_id}", response_model=OrderDetail)
async def get_order(customer_id: CustomerId, order_id: str, who: Caller) -> Any:
    if customer_id != who:
        return forbidden()
    key = {"pk": {"S": f"CUSTOMER#{customer_id}"}, "sk": {"S": f"ORDER#{order_id}"}}
    got, lines = await asyncio.gather(
        db().get_item(TableName=TABLE, Key=key),
        _order_lines(customer_id, order_id),
        return_exceptions=True,
    )
    if isinstance(got, BaseException):
        raise got
    if isinstance(lines, BaseException):
        raise lines
    item = got.get("Item")
    if item is None or item.get("_type", {}).get("S") != "Order":
        return JSONResponse({"detail": "not found"}, status_code=404)
    return OrderDetail(order=Order(**plain(item)), items=[OrderItem(**plain(x)) for x in lines])


@app.get("/customers/{customer_id}/orders", response_model=OrderPage)
async def list_orders(
    customer_id: CustomerId,
    who: Caller,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> Any:
    if customer_id != who:
        return forbidden()
    params: dict[str, Any] = {
        "TableName": TABLE,
        "FilterExpression": "#n0 = :v0",
        "KeyConditionExpression": "#n1 = :v1 AND begins_with(#n2, :v2)",
        "ScanIndexForward": False,
        "ExpressionAttributeNames": {"#n0": "_type", "#n1": "pk", "#n2": "sk"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "Order"},
            ":v1": {"S": f"CUSTOMER#{customer_id}"},
            ":v2": {"S": "ORDER#"},
        },
    }
    if cursor is not None:
        params["ExclusiveStartKey"] = unsign(customer_id, cursor)
    orders: list[Order] = []
    last = None
    while len(orders) < limit:  # a filtered page may come back short
        page = await db().query(**params, Limit=limit - len(orders))
        orders += [Order(**plain(x)) for x in page["Items"]]
        last = page.get("LastEvaluatedKey")
        if last is None:
            break
        params["ExclusiveStartKey"] = last
    return OrderPage(items=orders, cursor=sign(customer_id, last) if last else None)
