"""Tenant scopes: every operation in the block is confined to one tenant's partitions.

For servers where IAM is per service, not per request (a FastAPI app serving every tenant):
``with tenant_scope("tenant", "t1"):`` fixes the tenant field, and every read or write of a
key whose partition key field ``tenant`` is not ``"t1"`` is refused with `TenantViolation`
before any request is sent. The checks sit where keys are made, so batches, transactions,
collections, queries, cursors and the async twins all pass through them:

- item keys (get, put, update, delete, batch and transaction actions, unique-guarded writes):
  the model's partition key template must carry the tenant field and its value must be the
  scope's (`check_key`);
- queries (also collections, index and sharded queries, counts): the partition the query
  reads must carry the tenant field with the scope's value (`check_read`); a query built from
  a raw partition key value (``Collection.query_key``) cannot be checked and is refused;
- scans read every tenant's partitions: refused; so are table deletion and creation.

Models listed in ``shared=`` are not confined (a product catalogue every tenant reads).
A scope lives in a `contextvars.ContextVar`, like `dynamodel.use_connection`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any

from dynamodel.core.errors import TenantViolation

if TYPE_CHECKING:
    from dynamodel.modelling.base import ModelBase
    from dynamodel.modelling.spec import ModelSpec

__all__ = ["check_keys", "current_tenant", "refuse_in_tenant_scope", "tenant_scope"]

_SCOPE: ContextVar[tenant_scope | None] = ContextVar("dynamodel_tenant", default=None)


def current_tenant() -> tenant_scope | None:
    """The innermost `tenant_scope` around the caller, or None."""
    return _SCOPE.get()


class tenant_scope:
    """Confine every operation in the block to the partitions of one tenant::

        with tenant_scope("customer_id", caller_id, shared=[Product]):
            Order.get(customer_id=caller_id, order_id="o1")   # allowed
            Order.get(customer_id="someone-else", order_id="o1")  # TenantViolation

    ``field`` is the Python name of the tenant field; ``value`` is the caller's tenant, compared
    with ``==`` to the (validated) field value of every key. ``shared``: models not confined.
    Works with ``with`` and ``async with``. A scope inside a scope of the same tenant is
    allowed (the inner one's ``shared`` applies); one for another tenant is refused, since code
    that can switch tenants is what the scope exists to rule out: leave the scope first.
    """

    __slots__ = ("_previous", "_shared", "field", "shared", "value")

    def __init__(self, field: str, value: Any, *, shared: Iterable[type[ModelBase]] = ()) -> None:
        if not isinstance(field, str) or not field:
            raise TypeError(f"tenant_scope() needs a field name, got {field!r}")
        if value is None or value == "":
            raise TenantViolation(
                f"tenant_scope({field!r}, ...): the tenant value is empty; an unauthenticated "
                "caller must not get a scope",
                model=None,
                field=field,
                reason="empty tenant",
            )
        shared = tuple(shared)
        for model in shared:
            if not (isinstance(model, type) and hasattr(model, "_spec")):
                raise TypeError(f"tenant_scope(shared=...) takes model classes, got {model!r}")
        self.field = field
        self.value = value
        self.shared = shared
        self._shared: frozenset[int] = frozenset(id(m._spec()) for m in shared)
        self._previous: list[tenant_scope | None] = []

    def __repr__(self) -> str:
        return f"tenant_scope({self.field!r}, {self.value!r})"

    # entering and leaving ------------------------------------------------------------------

    def __enter__(self) -> tenant_scope:
        outer = _SCOPE.get()
        if outer is not None and (outer.field, outer.value) != (self.field, self.value):
            raise TenantViolation(
                f"{self!r} inside {outer!r}: a tenant scope cannot switch tenants; leave the "
                "outer scope first",
                model=None,
                field=self.field,
                reason="nested scope of another tenant",
            )
        self._previous.append(outer)
        _SCOPE.set(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # set, not reset(token): frameworks may run the exit in another context (a FastAPI
        # dependency's teardown), where a token from the entry's context would be refused
        _SCOPE.set(self._previous.pop())

    async def __aenter__(self) -> tenant_scope:
        return self.__enter__()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(kind, error, traceback)

    # checks ---------------------------------------------------------------------------------

    def _refuse(self, spec: ModelSpec | None, what: str, reason: str) -> TenantViolation:
        model = spec.entity if spec is not None else None
        return TenantViolation(
            f"{what}: {reason}; nothing was sent", model=model, field=self.field, reason=reason
        )

    def check_key(self, spec: ModelSpec, values: Mapping[str, Any], what: str) -> None:
        """Refuse a key of ``spec``'s model outside the scope (``values``: its field values)."""
        if id(spec) in self._shared:
            return
        if self.field not in spec.pk.fields:
            raise self._refuse(spec, what, self._not_carried(spec.entity, "partition key"))
        if values.get(self.field) != self.value:
            raise self._refuse(spec, what, self._other_tenant())

    def check_read(
        self,
        models: Iterable[type[ModelBase]],
        partition: Iterable[tuple[str, Any]] | None,
        index: str | None,
        what: str,
    ) -> None:
        """Refuse a query (``partition``: the field values its partition key was rendered
        from; empty for a raw key value) or scan (``partition`` None) outside the scope."""
        confined = [m for m in models if id(m._spec()) not in self._shared]
        if not confined:
            return
        spec = confined[0]._spec()
        if partition is None:
            raise self._refuse(
                spec, what, "a scan reads every tenant's partitions; query a partition instead"
            )
        fields = dict(partition)
        if not fields:
            raise self._refuse(
                spec,
                what,
                "a query of a raw partition key value cannot be checked against the tenant "
                "scope; query by field values (Collection.query(**fields))",
            )
        if self.field not in fields:
            where = f"index {index!r} partition key" if index else "partition key"
            names = ", ".join(sorted(m._spec().entity for m in confined))
            raise self._refuse(spec, what, self._not_carried(names, where))
        if fields[self.field] != self.value:
            raise self._refuse(spec, what, self._other_tenant())

    def _not_carried(self, entity: str, where: str) -> str:
        return (
            f"the {where} of {entity} does not carry the tenant field {self.field!r}, so the "
            "scope cannot confine it (list the model in tenant_scope(shared=[...]) if every "
            "tenant may use it)"
        )

    def _other_tenant(self) -> str:
        return f"the key's {self.field!r} is not the scope's tenant"


def refuse_in_tenant_scope(what: str) -> None:
    """Raise `TenantViolation` if called inside a tenant scope (table-wide operations)."""
    scope = _SCOPE.get()
    if scope is not None:
        raise scope._refuse(None, what, "it reaches every tenant's data")


def check_keys(keys: Iterable[tuple[type[ModelBase], Mapping[str, Any]]], what: str) -> None:
    """Inside a tenant scope, check again, when a batch or transaction is sent, the keys
    (model, key field values) it was built with: it may have been built outside the scope."""
    scope = _SCOPE.get()
    if scope is not None:
        for model, fields in keys:
            scope.check_key(model._spec(), fields, what)
