"""Settings, the app's lifespan (one DynamoDB connection per process), and the dependencies:
the connection, the caller's tenant scope and the staff check.

Who is calling: a real service takes the customer id from a verified credential (the ``sub``
of a JWT its auth middleware checked). This example reads it from the ``X-Customer-Id``
header, a stand-in for that step: the point shown here is what happens next. Every
customer endpoint runs inside ``tenant_scope("customer_id", caller)``, so even an endpoint
that forgot to compare the path's customer id with the caller's cannot read or write another
customer's items: dynamodel refuses the key before sending anything, and the error handler
answers 404, as for an item that does not exist.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Request

from dynamodel import Connection, tenant_scope

from .models import ID_PATTERN, TABLE, Product, View


@dataclass(frozen=True)
class Settings:
    """Where the shop's data lives.

    ``endpoint_url``/``region`` left as None follow boto3's own resolution
    (``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_DEFAULT_REGION``, profiles, roles).
    """

    table_name: str = TABLE.name
    endpoint_url: str | None = None
    region: str | None = None
    create_table: bool = False
    #: signs the cursors clients hold (HMAC): an edited or foreign cursor is refused. Give
    #: every process of the service the same key; the default, a random key per process,
    #: makes cursors stop working when the process restarts.
    cursor_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    #: the staff endpoints' token (``X-Staff-Token``); None: staff endpoints answer 403
    staff_token: str | None = field(default=None, repr=False)
    #: connections the DynamoDB client keeps open (botocore's ``max_pool_connections``, whose
    #: default, 10, would queue requests at 10 in flight): at least the requests the process
    #: serves at once times the DynamoDB calls each has in flight (two for an order's detail)
    max_connections: int = 64

    @classmethod
    def from_env(cls) -> Settings:
        """``SHOP_TABLE``, ``SHOP_ENDPOINT_URL``, ``SHOP_REGION``, ``SHOP_CREATE_TABLE=1``,
        ``SHOP_CURSOR_KEY``, ``SHOP_STAFF_TOKEN``, ``SHOP_MAX_CONNECTIONS``."""
        key = os.environ.get("SHOP_CURSOR_KEY")
        return cls(
            table_name=os.environ.get("SHOP_TABLE", TABLE.name),
            endpoint_url=os.environ.get("SHOP_ENDPOINT_URL") or None,
            region=os.environ.get("SHOP_REGION") or None,
            create_table=os.environ.get("SHOP_CREATE_TABLE") == "1",
            staff_token=os.environ.get("SHOP_STAFF_TOKEN") or None,
            max_connections=int(os.environ.get("SHOP_MAX_CONNECTIONS") or cls.max_connections),
            **({"cursor_key": key} if key else {}),
        )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Create the connection and its async client once, bind the table, close at shutdown."""
    from botocore.config import Config

    settings: Settings = app.state.settings
    connection = Connection(
        endpoint_url=settings.endpoint_url,
        region=settings.region,
        cursor_key=settings.cursor_key,
        botocore_config=Config(max_pool_connections=settings.max_connections),
    )
    TABLE.bind(name=settings.table_name, connection=connection)
    try:
        await connection.aclient()  # created now, in the server's event loop, and kept
        if settings.create_table:
            await TABLE.acreate(exist_ok=True)
        app.state.connection = connection
        yield
    finally:
        app.state.connection = None
        TABLE.unbind()
        await connection.aclose()


def get_connection(request: Request) -> Connection:
    """The connection the lifespan created (for transactions and batch reads)."""
    connection: Connection | None = getattr(request.app.state, "connection", None)
    if connection is None:
        raise RuntimeError("the app's lifespan has not run: no DynamoDB connection")
    return connection


ConnectionDep = Annotated[Connection, Depends(get_connection)]


#: what every customer may read and write besides their own items: the catalogue (the stock
#: of a product changes when someone orders it) and the product page views
SHARED = (Product, View)


async def customer_scope(
    x_customer_id: Annotated[str | None, Header(pattern=ID_PATTERN)] = None,
) -> AsyncIterator[str]:
    """The calling customer's id; the request runs inside their tenant scope."""
    if x_customer_id is None:
        raise HTTPException(401, detail="who is calling? (X-Customer-Id)")
    async with tenant_scope("customer_id", x_customer_id, shared=SHARED):
        yield x_customer_id


CallerDep = Annotated[str, Depends(customer_scope)]


def require_staff(request: Request, x_staff_token: Annotated[str | None, Header()] = None) -> None:
    """Staff endpoints (catalogue changes, searches across customers) need the staff token."""
    expected: str | None = request.app.state.settings.staff_token
    if expected is None or x_staff_token is None:
        raise HTTPException(403, detail="staff only")
    if not hmac.compare_digest(expected.encode(), x_staff_token.encode()):
        raise HTTPException(403, detail="staff only")


StaffDep = Depends(require_staff)
