"""dynamodel: single-table DynamoDB models on pydantic v2, sync and async.

Only light modules are imported here; boto3, aioboto3, moto, typer and rich load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dynamodel._version import VERSION
from dynamodel.core.errors import (
    CancellationReason as CancellationReason,
    ConditionFailed as ConditionFailed,
    ConfigurationError as ConfigurationError,
    DynamodelError as DynamodelError,
    EntityMismatch as EntityMismatch,
    InvalidCursor as InvalidCursor,
    ItemNotFound as ItemNotFound,
    ItemTooLarge as ItemTooLarge,
    NaiveDatetimeWarning as NaiveDatetimeWarning,
    PolicyRefused as PolicyRefused,
    ServiceError as ServiceError,
    TableNotFound as TableNotFound,
    TenantViolation as TenantViolation,
    ThrottledError as ThrottledError,
    TransactionCanceled as TransactionCanceled,
    UniqueConstraintViolation as UniqueConstraintViolation,
    UnknownPath as UnknownPath,
    ValidationError as ValidationError,
    VersionConflict as VersionConflict,
)
from dynamodel.core.expressions import (
    Attr as Attr,
    Condition as Condition,
    TypedAttr as TypedAttr,
    UpdateAction as UpdateAction,
)
from dynamodel.core.retry import (
    RetryPolicy as RetryPolicy,
)
from dynamodel.io.clients import (
    Connection as Connection,
    configure as configure,
)
from dynamodel.io.scope import use_connection as use_connection
from dynamodel.model import Model as Model
from dynamodel.modelling.multikey import (
    MultiKey as MultiKey,
)
from dynamodel.modelling.periods import (
    Periods as Periods,
)
from dynamodel.modelling.sharding import (
    ShardCountMismatch as ShardCountMismatch,
    Shards as Shards,
)
from dynamodel.modelling.table import (
    GSI as GSI,
    LSI as LSI,
    Provisioned as Provisioned,
    Table as Table,
)
from dynamodel.modelling.tenancy import (
    current_tenant as current_tenant,
    tenant_scope as tenant_scope,
)

if TYPE_CHECKING:
    from dynamodel.io.cache import (
        LocalCache as LocalCache,
    )
    from dynamodel.io.capacity import capacity as capacity
    from dynamodel.local import (
        LocalDynamoDB as LocalDynamoDB,
    )
    from dynamodel.modelling.capacity_estimate import estimate_capacity as estimate_capacity
    from dynamodel.modelling.paths import (
        present as present,
    )
    from dynamodel.modelling.replicas import (
        Replica as Replica,
    )
    from dynamodel.modelling.ttl import (
        TTL as TTL,
    )
    from dynamodel.ops.batch import (
        BatchError as BatchError,
        BatchGetError as BatchGetError,
        BatchGetResult as BatchGetResult,
        BatchStats as BatchStats,
        BatchWriteError as BatchWriteError,
        BatchWriter as BatchWriter,
        BatchWriteResult as BatchWriteResult,
        Key as Key,
        WriteRequest as WriteRequest,
        abatch_get as abatch_get,
        batch_get as batch_get,
        batch_write as batch_write,
    )
    from dynamodel.ops.collection import (
        Collection as Collection,
        CollectionResult as CollectionResult,
    )
    from dynamodel.ops.locking import (
        aretry_on_conflict as aretry_on_conflict,
        retry_on_conflict as retry_on_conflict,
    )
    from dynamodel.ops.page import Page as Page
    from dynamodel.ops.query import Query as Query
    from dynamodel.ops.scan import ParallelScan as ParallelScan, Scan as Scan
    from dynamodel.ops.transactions import (
        ItemRef as ItemRef,
        TransactGet as TransactGet,
        TransactWrite as TransactWrite,
    )
    from dynamodel.schema.policy import (
        tenant_policy as tenant_policy,
        tenant_policy_cloudformation as tenant_policy_cloudformation,
    )

# Imported on first use (PEP 562), so `import dynamodel` loads only what declaring models
# needs: a Lambda cold start pays for batches, transactions or the cache only if it uses them.
# The TYPE_CHECKING block above names the same modules for type checkers (tests/test_import.py
# checks that the two agree).
_LAZY = {
    "BatchError": "dynamodel.ops.batch",
    "BatchGetError": "dynamodel.ops.batch",
    "BatchGetResult": "dynamodel.ops.batch",
    "BatchStats": "dynamodel.ops.batch",
    "BatchWriteError": "dynamodel.ops.batch",
    "BatchWriteResult": "dynamodel.ops.batch",
    "BatchWriter": "dynamodel.ops.batch",
    "Collection": "dynamodel.ops.collection",
    "CollectionResult": "dynamodel.ops.collection",
    "ItemRef": "dynamodel.ops.transactions",
    "Key": "dynamodel.ops.batch",
    "LocalCache": "dynamodel.io.cache",
    "LocalDynamoDB": "dynamodel.local",
    "Page": "dynamodel.ops.page",
    "ParallelScan": "dynamodel.ops.scan",
    "Query": "dynamodel.ops.query",
    "Replica": "dynamodel.modelling.replicas",
    "Scan": "dynamodel.ops.scan",
    "TTL": "dynamodel.modelling.ttl",
    "TransactGet": "dynamodel.ops.transactions",
    "TransactWrite": "dynamodel.ops.transactions",
    "WriteRequest": "dynamodel.ops.batch",
    "abatch_get": "dynamodel.ops.batch",
    "aretry_on_conflict": "dynamodel.ops.locking",
    "batch_get": "dynamodel.ops.batch",
    "batch_write": "dynamodel.ops.batch",
    "capacity": "dynamodel.io.capacity",
    "estimate_capacity": "dynamodel.modelling.capacity_estimate",
    "present": "dynamodel.modelling.paths",
    "retry_on_conflict": "dynamodel.ops.locking",
    "tenant_policy": "dynamodel.schema.policy",
    "tenant_policy_cloudformation": "dynamodel.schema.policy",
}

__version__ = VERSION


def _public_names() -> list[str]:
    """The public names: every name imported above, eagerly or lazily (one list, derived)."""
    from types import ModuleType

    imported = {
        name
        for name, value in globals().items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    return sorted((imported - {"annotations", "TYPE_CHECKING", "Any", "VERSION"}) | set(_LAZY))


__all__ = _public_names()


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dynamodel' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
