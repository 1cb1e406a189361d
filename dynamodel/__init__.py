"""dynamodel: single-table DynamoDB models on pydantic v2, sync and async.

Only light modules are imported here; boto3, aioboto3, moto, typer and rich load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .clients import Connection, configure
from .collection import Collection, CollectionResult
from .errors import (
    ConditionFailed,
    DynamodelError,
    ItemNotFound,
    ItemTooLarge,
    ServiceError,
    TableNotFound,
    ThrottledError,
    TransactionCanceled,
    ValidationError,
)
from .expressions import Attr, Condition, UpdateAction
from .model import Model
from .query import Page, ParallelScan, Query, Scan
from .retry import RetryPolicy
from .table import GSI, LSI, Provisioned, Table

if TYPE_CHECKING:
    from .local import LocalDynamoDB

__version__ = "0.1.0"

__all__ = [
    "GSI",
    "LSI",
    "Attr",
    "Collection",
    "CollectionResult",
    "Condition",
    "ConditionFailed",
    "Connection",
    "DynamodelError",
    "ItemNotFound",
    "ItemTooLarge",
    "LocalDynamoDB",
    "Model",
    "Page",
    "ParallelScan",
    "Provisioned",
    "Query",
    "RetryPolicy",
    "Scan",
    "ServiceError",
    "Table",
    "TableNotFound",
    "ThrottledError",
    "TransactionCanceled",
    "UpdateAction",
    "ValidationError",
    "configure",
]


def __getattr__(name: str) -> Any:
    if name == "LocalDynamoDB":
        from .local import LocalDynamoDB

        return LocalDynamoDB
    raise AttributeError(f"module 'dynamodel' has no attribute {name!r}")
