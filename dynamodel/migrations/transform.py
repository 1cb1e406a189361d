"""The per-item half of a backfill: parse a scanned item, run the transform, build writes.

Shared by the in-process backfill (`dynamodel.migrations.backfill`) and the distributed
workers (`dynamodel.migrations.worker`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dynamodel.core.codec import Item, decode_item
from dynamodel.core.errors import ValidationError
from dynamodel.model import Model
from dynamodel.ops.batch_flows import WriteRequest, put_write_request
from dynamodel.ops.pagination import encode_cursor

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection
    from dynamodel.modelling.table import Table

#: what a transform may return for one item
Output = Model | WriteRequest | Iterable[Model | WriteRequest] | None


@dataclass(frozen=True)
class FailedItem:
    """An item a backfill could not migrate.

    Attributes:
        key: the item's primary key (attribute name -> value).
        error: why (the exception type and message).
        segment: the scan segment that read it.
        cursor: the key in cursor form (used to read the item again on the next run).
    """

    key: dict[str, Any]
    error: str
    segment: int
    cursor: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (used in checkpoints and reports)."""
        return {
            "key": self.key,
            "error": self.error,
            "segment": self.segment,
            "cursor": self.cursor,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FailedItem:
        """Inverse of `as_dict`."""
        return cls(data["key"], data["error"], int(data["segment"]), data["cursor"])


@dataclass
class Transformer:
    """Turns scanned items into the writes a backfill's transform asks for."""

    table: Table
    model: type[Model]
    transform: Callable[[Any], Output]
    name: str
    parse: Callable[[Item], tuple[str, Any]]
    known: frozenset[str]  # every attribute the model's items may carry
    drop_unknown: bool  # puts leave out the attributes the model does not declare
    skip_version_check: bool
    connection: Connection  # whose clock stamps and whose random source draws new shards

    # -- per item -------------------------------------------------------------------------------

    def failure(self, raw: Item, segment: int, error: BaseException) -> FailedItem:
        key = {a: raw[a] for a in self.table.key_attributes() if a in raw}
        return FailedItem(
            key=decode_item(key),
            error=f"{type(error).__name__}: {error}",
            segment=segment,
            cursor=encode_cursor(key) or "",
        )

    def writes_of(self, raw: Item) -> list[WriteRequest]:
        status, instance = self.parse(raw)
        if status != "ok":
            return []
        output = self.transform(instance)
        if output is None:
            return []
        outputs = [output] if isinstance(output, Model | WriteRequest) else list(output)
        writes = []
        for entry in outputs:
            if isinstance(entry, WriteRequest):
                writes.append(entry)
            elif isinstance(entry, Model):
                write = put_write_request(
                    entry,
                    skip_version_check=self.skip_version_check,
                    connection=self.connection,
                )
                if self.drop_unknown:  # instances read from the table carry them: drop them
                    item = write.request["PutRequest"]["Item"]
                    for name in [n for n in item if n not in self.known]:
                        del item[name]
                writes.append(write)
            else:
                raise ValidationError(
                    f"backfill {self.name!r}: the transform returned {entry!r}; expected None, "
                    "a model instance, a WriteRequest, or a list of them"
                )
        self.check_dropped(raw, writes)
        return writes

    def check_dropped(self, raw: Item, writes: list[WriteRequest]) -> None:
        """Refuse a put that would replace this item without attributes its model lacks."""
        if self.drop_unknown:
            return
        key = {a: raw[a] for a in self.table.key_attributes() if a in raw}
        for write in writes:
            if write.action == "put" and write.key.item_key == key:
                unknown = sorted(set(raw) - self.known - set(write.request["PutRequest"]["Item"]))
                if unknown:
                    raise ValidationError(
                        f"the item has attributes {self.model.__name__} does not declare "
                        f"({', '.join(unknown)}); writing it back would drop them. Declare "
                        "them, or pass drop_unknown=True to drop them"
                    )

    def process(
        self, raws: list[Item], segment: int
    ) -> tuple[list[WriteRequest], list[FailedItem], int]:
        writes: list[WriteRequest] = []
        failures: list[FailedItem] = []
        unchanged = 0
        for raw in raws:
            try:
                found = self.writes_of(raw)
            except Exception as error:  # the item's failure is recorded, the backfill goes on
                failures.append(self.failure(raw, segment, error))
                continue
            if found:
                writes.extend(found)
            else:
                unchanged += 1
        return writes, failures, unchanged


def known_attributes(model: type[Model]) -> frozenset[str]:
    """Every attribute a model's items may carry: fields, keys, index keys, type."""
    spec = model._spec()
    table = spec.table
    known = set(spec.stored_names.values()) | set(table.key_attributes())
    known.add(table.type_attribute)
    for index in table.indexes:
        keys = table.index_keys(index.name)
        known.update(keys.attributes)
    return frozenset(known)


def transformer_for(
    model: type[Model],
    transform: Callable[[Any], Output],
    *,
    name: str,
    cutoff: dt.datetime,
    drop_unknown: bool,
    skip_version_check: bool,
    connection: Connection,
) -> Transformer:
    """A `Transformer` for ``model``'s items; items whose TTL passed before ``cutoff`` are
    skipped (those expired when the backfill started)."""
    return Transformer(
        table=model._spec().table,
        model=model,
        transform=transform,
        name=name,
        parse=model.scan()._parser(cutoff),
        known=known_attributes(model),
        drop_unknown=drop_unknown,
        skip_version_check=skip_version_check,
        connection=connection,
    )
