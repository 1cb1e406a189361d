"""dynamodel: single-table DynamoDB models on pydantic v2, sync and async.

Only light modules are imported here; boto3, aioboto3, moto, typer and rich load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .clients import Connection, configure
from .errors import (
    CancellationReason,
    ConditionFailed,
    DynamodelError,
    EntityMismatch,
    ItemNotFound,
    ItemTooLarge,
    ServiceError,
    TableNotFound,
    ThrottledError,
    TransactionCanceled,
    UniqueConstraintViolation,
    UnknownPath,
    ValidationError,
    VersionConflict,
)
from .expressions import Attr, Condition, TypedAttr, UpdateAction
from .model import Model
from .multikey import MultiKey
from .retry import RetryPolicy
from .scope import use_connection
from .sharding import ShardCountMismatch, Shards
from .table import GSI, LSI, Provisioned, Table

if TYPE_CHECKING:
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
    from .collection import Collection, CollectionResult
    from .local import LocalDynamoDB
    from .locking import aretry_on_conflict, retry_on_conflict
    from .paths import present
    from .query import Page, ParallelScan, Query, Scan
    from .transactions import ItemRef, TransactGet, TransactWrite
    from .ttl import TTL

# Imported on first use (PEP 562), so `import dynamodel` loads only what declaring models
# needs: a Lambda cold start pays for batches, transactions or the cache only if it uses them.
_LAZY = {
    "BatchError": "batch",
    "BatchGetError": "batch",
    "BatchGetResult": "batch",
    "BatchStats": "batch",
    "BatchWriteError": "batch",
    "BatchWriter": "batch",
    "BatchWriteResult": "batch",
    "Key": "batch",
    "WriteRequest": "batch",
    "abatch_get": "batch",
    "batch_get": "batch",
    "batch_write": "batch",
    "LocalCache": "cache",
    "capacity": "capacity",
    "estimate_capacity": "capacity",
    "Collection": "collection",
    "CollectionResult": "collection",
    "LocalDynamoDB": "local",
    "aretry_on_conflict": "locking",
    "retry_on_conflict": "locking",
    "present": "paths",
    "Page": "query",
    "ParallelScan": "query",
    "Query": "query",
    "Scan": "query",
    "ItemRef": "transactions",
    "TransactGet": "transactions",
    "TransactWrite": "transactions",
    "TTL": "ttl",
}

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
    "EntityMismatch",
    "ItemNotFound",
    "ItemRef",
    "ItemTooLarge",
    "Key",
    "LocalCache",
    "LocalDynamoDB",
    "Model",
    "MultiKey",
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
    "TypedAttr",
    "UniqueConstraintViolation",
    "UnknownPath",
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
    "present",
    "retry_on_conflict",
    "use_connection",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dynamodel' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
