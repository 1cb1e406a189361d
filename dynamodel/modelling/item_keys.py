"""A model's key attributes: field values coerced, rendered into key templates, with
the shard suffix and the size limits DynamoDB enforces on keys."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dynamodel.core.codec import (
    AttributeValue,
    Item,
)
from dynamodel.core.errors import ValidationError
from dynamodel.modelling.sharding import Shards, split_physical
from dynamodel.modelling.tenancy import _SCOPE as _TENANT

if TYPE_CHECKING:
    from dynamodel.modelling.base import ModelBase
    from dynamodel.modelling.spec import ModelSpec


MAX_PK_BYTES = 2048


MAX_SK_BYTES = 1024


def coerce_fields(
    model: type[ModelBase], values: Mapping[str, Any], allowed: Sequence[str], what: str
) -> dict[str, Any]:
    """Validate key field values through their field types (so ``"7"`` becomes ``7`` for an int).

    On a model with a sharded partition key, ``shard`` is accepted too (an int shard number).
    """
    spec = model._spec()
    sharded = spec.shards is not None and SHARD in values and SHARD not in allowed
    unknown = set(values) - set(allowed) - ({SHARD} if sharded else set())
    if unknown:
        raise ValidationError(
            f"{model.__name__} {what}: unexpected fields {sorted(unknown)}; "
            f"expected {list(allowed)}"
        )
    out: dict[str, Any] = {}
    for name, value in values.items():
        if sharded and name == SHARD:
            assert spec.shards is not None
            out[SHARD] = check_shard(value, spec.shards, f"{model.__name__} {what}")
            continue
        try:
            out[name] = spec.coerce(model, name, value)
        except Exception as exc:
            raise ValidationError(f"{model.__name__} {what} field {name!r}: {exc}") from exc
    return out


#: The key-field name under which a shard number travels with key values (``get(shard=3)``).
SHARD = "shard"


def check_shard(value: Any, shards: Shards, what: str) -> int:
    """A valid shard number of ``shards`` (ValidationError naming the range otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < shards.count:
        raise ValidationError(
            f"{what}: shard must be an int from 0 to {shards.count - 1}, got {value!r}"
        )
    return value


def shard_for(
    shards: Shards,
    values: Mapping[str, Any],
    chosen: dict[str | None, int] | None,
    slot: str | None,
    what: str,
    *,
    choose: bool,
    rng: random.Random | None = None,
) -> int:
    """The shard of one sharded partition key.

    Calculated: hashed from ``values`` (a given shard must agree). Random: ``values["shard"]``
    (table key only), else the one recorded in ``chosen``, else a new one drawn from ``rng``
    when ``choose`` (recorded in ``chosen``), else a ValidationError asking for ``shard=``.
    """
    given = values.get(SHARD) if slot is None else None
    if given is None and chosen is not None:
        given = chosen.get(slot)
    if shards.by:
        try:
            computed = shards.calculate(values)
        except ValidationError as exc:
            raise ValidationError(f"{what}: {exc}") from None
        if given is not None and given != computed:
            raise ValidationError(
                f"{what}: shard={given} was given but the shard calculated from "
                f"{list(shards.fields)} is {computed}"
            )
        return computed
    if given is not None:
        return int(given)
    if not choose:
        raise ValidationError(
            f"{what}: the partition key is sharded randomly over {shards.count} shards, so the "
            "item's shard cannot be computed; pass shard= (an item read from the table knows "
            "its own: item.shard_number()), or query the partition to fan out"
        )
    shard = shards.choose(rng)
    if chosen is not None:
        chosen[slot] = shard
    return shard


def missing_shards(
    spec: ModelSpec, chosen: Mapping[str | None, int]
) -> list[tuple[str | None, Shards]]:
    """The randomly sharded partition keys (None: the table's, else the index name) whose
    shard is not in ``chosen`` yet: what a new item still has to draw."""
    missing: list[tuple[str | None, Shards]] = []
    table_shards = spec.shards
    if table_shards is not None and not table_shards.by and None not in chosen:
        missing.append((None, table_shards))
    for name, templates in spec.indexes.items():
        shards = templates.shards if templates.pk is not None else None
        if shards is not None and not shards.by and name not in chosen:
            missing.append((name, shards))
    return missing


def random_sharded(spec: ModelSpec) -> bool:
    """Whether any of the model's partition keys is sharded randomly (writes may draw)."""
    if spec.shards is not None and not spec.shards.by:
        return True
    return any(
        t.shards is not None and t.pk is not None and not t.shards.by for t in spec.indexes.values()
    )


def _stored_shard(
    item: Mapping[str, AttributeValue], attribute: str, shards: Shards, owner: ModelBase
) -> int:
    value = item.get(attribute)
    if value is None or "S" not in value:
        raise ValidationError(
            f"{type(owner).__name__}: the stored item has no {attribute!r} string to read "
            "its shard from"
        )
    try:
        return split_physical(value["S"], shards)[1]
    except ValidationError as exc:
        raise ValidationError(
            f"{type(owner).__name__}: {exc}; was it written before the model was sharded "
            "(or with another shard count)? Changing the shard count is a migration."
        ) from None


def _key_text(attribute: str, text: str, limit: int, what: str) -> AttributeValue:
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    if size == 0:
        raise ValidationError(f"{what}: key attribute {attribute!r} renders empty")
    if size > limit:
        raise ValidationError(
            f"{what}: key attribute {attribute!r} is {size} bytes; the limit is {limit}"
        )
    return {"S": text}


def key_attributes(
    spec: ModelSpec,
    values: Mapping[str, Any],
    what: str,
    *,
    with_indexes: bool,
    chosen: dict[str | None, int] | None = None,
) -> Item:
    """Render the primary key (and, optionally, every index key that can be rendered).

    Sharded partition keys get their shard suffix (see `shard_for`); ``chosen`` holds an
    instance's shards, and receives random ones chosen now.
    """
    tenant = _TENANT.get()
    if tenant is not None:
        tenant.check_key(spec, values, what)
    table = spec.table
    pk = spec.pk.render(values, what)
    if spec.shards is not None:
        pk = spec.shards.physical(
            pk, shard_for(spec.shards, values, chosen, None, what, choose=chosen is not None)
        )
    out: Item = {table.pk: _key_text(table.pk, pk, MAX_PK_BYTES, what)}
    if spec.sk is not None and table.sk:
        out[table.sk] = _key_text(table.sk, spec.sk.render(values, what), MAX_SK_BYTES, what)
    if with_indexes:
        out.update(index_attributes(spec, values, what, spec.indexes.values(), chosen))
    return out


def index_attributes(
    spec: ModelSpec,
    values: Mapping[str, Any],
    what: str,
    indexes: Any,
    chosen: dict[str | None, int] | None = None,
    rng: random.Random | None = None,
) -> Item:
    """Index key attributes that can be rendered from ``values`` (sparse: others are skipped).

    A sharded index partition key gets its suffix; a random one reuses the shard in
    ``chosen`` or draws (and records) a new one from ``rng``.
    """
    out: Item = {}
    for index in indexes:
        pk = index.pk.try_render(values, what) if index.pk is not None else ""
        sk = index.sk.try_render(values, what) if index.sk is not None else ""
        if pk is None or sk is None:
            continue  # sparse: the item is not in this index
        if index.pk is not None and index.shards is not None:
            shard = shard_for(index.shards, values, chosen, index.name, what, choose=True, rng=rng)
            pk = index.shards.physical(pk, shard)
        if index.pk is not None:
            out[index.pk_attr] = _key_text(index.pk_attr, pk, MAX_PK_BYTES, what)
        if index.sk is not None and index.sk_attr:
            out[index.sk_attr] = _key_text(index.sk_attr, sk, MAX_SK_BYTES, what)
    return out
