"""dynamodel: single-table DynamoDB models on pydantic v2, sync and async.

Only light modules are imported here; boto3, aioboto3, moto, typer and rich load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .batch import (
    BatchError,
    BatchGetError,
    BatchGetResult,
    BatchStats,
    BatchWriteError,
    BatchWriter,
    BatchWriteResult,
    Key,
    WriteRequest,
    abatch_get,
    batch_get,
    batch_write,
)
from .cache import LocalCache
from .capacity import capacity, estimate_capacity
from .clients import Connection, configure
from .collection import Collection, CollectionResult
from .errors import (
    CancellationReason,
    ConditionFailed,
    DynamodelError,
    ItemNotFound,
    ItemTooLarge,
    ServiceError,
    TableNotFound,
    ThrottledError,
    TransactionCanceled,
    ValidationError,
    VersionConflict,
)
from .expressions import Attr, Condition, UpdateAction
from .locking import aretry_on_conflict, retry_on_conflict
from .model import Model
from .query import Page, ParallelScan, Query, Scan
from .retry import RetryPolicy
from .sharding import ShardCountMismatch, Shards
from .table import GSI, LSI, Provisioned, Table
from .transactions import ItemRef, TransactGet, TransactWrite
from .ttl import TTL

if TYPE_CHECKING:
    from .local import LocalDynamoDB

__version__ = "0.1.0"

__all__ = [
    "GSI",
    "LSI",
    "TTL",
    "Attr",
    "BatchError",
    "BatchGetError",
    "BatchGetResult",
    "BatchStats",
    "BatchWriteError",
    "BatchWriteResult",
    "BatchWriter",
    "CancellationReason",
    "Collection",
    "CollectionResult",
    "Condition",
    "ConditionFailed",
    "Connection",
    "DynamodelError",
    "ItemNotFound",
    "ItemRef",
    "ItemTooLarge",
    "Key",
    "LocalCache",
    "LocalDynamoDB",
    "Model",
    "Page",
    "ParallelScan",
    "Provisioned",
    "Query",
    "RetryPolicy",
    "Scan",
    "ServiceError",
    "ShardCountMismatch",
    "Shards",
    "Table",
    "TableNotFound",
    "ThrottledError",
    "TransactGet",
    "TransactWrite",
    "TransactionCanceled",
    "UpdateAction",
    "ValidationError",
    "VersionConflict",
    "WriteRequest",
    "abatch_get",
    "aretry_on_conflict",
    "batch_get",
    "batch_write",
    "capacity",
    "configure",
    "estimate_capacity",
    "retry_on_conflict",
]


def __getattr__(name: str) -> Any:
    if name == "LocalDynamoDB":
        from .local import LocalDynamoDB

        return LocalDynamoDB
    raise AttributeError(f"module 'dynamodel' has no attribute {name!r}")
