"""`Page`: one page of query, scan or collection results, with the cursor where the next starts."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from dynamodel.core.codec import Item

if TYPE_CHECKING:
    from dynamodel.modelling.base import ModelBase


M = TypeVar("M", bound="ModelBase")


@dataclass
class Page(Generic[M]):
    """One page of results.

    Attributes:
        items: the parsed models.
        cursor: where the next page starts (None when the results are complete).
        scanned_count: items DynamoDB evaluated for this page (before filters).
        request_number: how many requests the iteration has made so far (this page's included).
        unknown: raw items whose entity type no model in the query knows (collections).
        skipped: items of another entity type left out of a single-model query.
        consumed_capacity: the ConsumedCapacity DynamoDB returned, if requested.
    """

    items: list[M]
    cursor: str | None
    scanned_count: int = 0
    request_number: int = 0
    unknown: list[Item] = field(default_factory=list)
    skipped: int = 0
    consumed_capacity: Any = None

    def __iter__(self) -> Iterator[M]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def stream_items(pages: Iterable[Page[M]]) -> Iterator[M]:
    """Each page's items in order, holding one page at a time: a page is let go before the
    next one is fetched, so streaming a large read keeps one page in memory, not two."""
    for page in pages:
        items = page.items
        del page
        yield from items
        del items


async def astream_items(pages: AsyncIterable[Page[M]]) -> AsyncIterator[M]:
    """Async `stream_items`."""
    async for page in pages:
        items = page.items
        del page
        for item in items:
            yield item
            del item  # not held while the next page is fetched
        del items
