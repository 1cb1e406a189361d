"""Settings, the app's lifespan (one DynamoDB connection per process) and its dependency."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from dynamodel import Connection

from .models import TABLE


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

    @classmethod
    def from_env(cls) -> Settings:
        """``SHOP_TABLE``, ``SHOP_ENDPOINT_URL``, ``SHOP_REGION``, ``SHOP_CREATE_TABLE=1``."""
        return cls(
            table_name=os.environ.get("SHOP_TABLE", TABLE.name),
            endpoint_url=os.environ.get("SHOP_ENDPOINT_URL") or None,
            region=os.environ.get("SHOP_REGION") or None,
            create_table=os.environ.get("SHOP_CREATE_TABLE") == "1",
        )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Create the connection and its aioboto3 client once, bind the table, close at shutdown."""
    settings: Settings = app.state.settings
    connection = Connection(endpoint_url=settings.endpoint_url, region=settings.region)
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
