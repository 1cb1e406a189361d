"""Scans: `Scan` (one segment, lazily iterated like a query) and `ParallelScan` (segments read
concurrently, each with its own cursor)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from dynamodel.core.errors import ValidationError
from dynamodel.core.expressions import Attr
from dynamodel.io.executors import aiterate_many, iterate_many
from dynamodel.io.scope import resolve_connection
from dynamodel.ops.page import Page, astream_items, stream_items
from dynamodel.ops.query import ReadBuilder

M = TypeVar("M", bound="ModelBase")

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection
    from dynamodel.modelling.base import ModelBase


@dataclass(frozen=True)
class Scan(ReadBuilder[M]):
    """A scan of the table or an index. Build with ``Model.scan()``."""

    segment_index: int | None = None
    total_segments: int | None = None

    @classmethod
    def for_model(cls, model: type[M], index: str | None) -> Scan[M]:
        """A scan returning only ``model``'s items."""
        spec = model._spec()
        spec.table.index_keys(index)  # validates the index name
        return cls(table=spec.table, index=index, models={spec.entity: model}, single=model)

    def segment(self, segment: int, total_segments: int) -> Scan[M]:
        """Scan one segment of a parallel scan (``0 <= segment < total_segments``)."""
        if not 1 <= total_segments <= 1_000_000 or not 0 <= segment < total_segments:
            raise ValidationError(
                f"segment {segment} of {total_segments}: need 0 <= segment < total_segments"
            )
        return replace(self, segment_index=segment, total_segments=total_segments)

    def segments(self, total_segments: int) -> list[Scan[M]]:
        """The ``total_segments`` segment scans of a parallel scan."""
        return [self.segment(i, total_segments) for i in range(total_segments)]

    def parallel(self, total_segments: int, max_concurrency: int | None = None) -> ParallelScan[M]:
        """Scan all segments concurrently (threads when sync, tasks when async)."""
        if self.limit_count is not None:
            raise ValidationError("limit() is not supported on a parallel scan")
        scans = self.segments(total_segments)
        return ParallelScan(scans, max_concurrency or total_segments, self.connection)

    def _op(self) -> str:
        return "scan"

    def _cursor_scope(self) -> Any:
        return [self.segment_index, self.total_segments]

    def _params(self) -> dict[str, Any]:
        ph = self._placeholders()
        extra = None
        if self.single is not None:
            extra = Attr((self.table.type_attribute,), raw=True) == self.single._spec().entity
        params = self._common(ph, extra)
        if self.total_segments is not None:
            params["Segment"] = self.segment_index
            params["TotalSegments"] = self.total_segments
        return ph.apply(params)


@dataclass(frozen=True)
class ParallelScan(Generic[M]):
    """Several scan segments run concurrently; pages arrive in completion order."""

    scans: list[Scan[M]]
    max_concurrency: int
    #: the connection given to the scan (``connection=``); None: resolved when it runs
    connection: Connection | None = field(default=None, compare=False)

    def pages(self) -> Iterator[Page[M]]:
        """Pages from every segment, as they arrive (sync: a bounded thread pool)."""
        # resolved here, before any worker starts (they also run in a copy of this context)
        connection = resolve_connection(self.scans[0].table, self.connection)
        return iterate_many([s._flow() for s in self.scans], connection, self.max_concurrency)

    def __iter__(self) -> Iterator[M]:
        return stream_items(self.pages())

    def all(self) -> list[M]:
        """Every item from every segment."""
        return list(self)

    def apages(self) -> AsyncIterator[Page[M]]:
        """Async pages from every segment (bounded concurrent tasks)."""
        # resolved here, before any worker starts (they also run in a copy of this context)
        connection = resolve_connection(self.scans[0].table, self.connection)
        return aiterate_many([s._flow() for s in self.scans], connection, self.max_concurrency)

    def __aiter__(self) -> AsyncIterator[M]:
        return astream_items(self.apages())

    async def aall(self) -> list[M]:
        """Async `all`."""
        return [item async for item in self]
