"""Write sharding of hot partition keys: the `Shards` declaration and physical key suffixes.

A model (or one of its index key templates) declares ``Shards(n)`` to spread one logical
partition key over ``n`` physical ones. The physical key is the rendered template plus a suffix:

    PAGEVIEW#home  ->  PAGEVIEW#home.0 ... PAGEVIEW#home.15        (Shards(16))

The suffix format ``.<shard>`` (decimal, no padding, shards numbered from 0) is part of the
stored data and will not change between versions.

Strategies:

* **random** (``Shards(16)``): each new item gets a shard drawn at random: the best spread. The
  shard is remembered on the instance (and recovered from the key when the item is read), so
  saving, updating or deleting it later goes to the same physical key; a ``get`` by key needs
  the shard (``shard=``) because it cannot be computed.
* **calculated** (``Shards(16, by="user_id")``): the shard is a stable hash of the named
  field(s): the first 8 bytes (big-endian) of BLAKE2b of the fields' key renderings joined by
  ``"#"``, modulo ``n``. Anyone can compute an item's shard, so ``get`` needs no fan-out.

Reads that cannot know the shard (a query on the logical partition, a collection, ``count``)
query all ``n`` shards concurrently and merge the already-sorted pages with a k-way merge on
the sort key (ties broken by shard number), forwards or backwards. A ``limit`` is honoured
exactly, and the cursor records every shard's own position, so resuming neither skips nor
repeats items. That read is `dynamodel.ops.shard_reads`; the check that every deployment
declares the same layout is `dynamodel.ops.shard_guard`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from typing import Any

from dynamodel.core.errors import DynamodelError, ValidationError
from dynamodel.core.frozen import Frozen
from dynamodel.core.keys import render_part

MAX_SHARDS = 1000
SEPARATOR = "."


class Shards(Frozen):
    """Shard a partition key ``count`` ways: randomly, or by a stable hash of ``by`` fields."""

    _fields = ("count", "by")
    __slots__ = _fields
    count: int
    by: tuple[str, ...] | None

    def __init__(self, count: int, by: str | tuple[str, ...] | None = None) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SHARDS:
            raise ValidationError(f"Shards.count must be an int from 1 to {MAX_SHARDS}")
        if isinstance(by, str):
            by = (by,)
        if by is not None and not by:
            raise ValidationError("Shards.by needs at least one field name")
        self._set(count=count, by=None if by is None else tuple(by))

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields a calculated shard is computed from (empty for random)."""
        return self.by if isinstance(self.by, tuple) else ()

    @property
    def strategy(self) -> str:
        """``"random"`` or ``"calculated"``."""
        return "calculated" if self.by else "random"

    def physical(self, logical: str, shard: int) -> str:
        """The stored partition key of one shard of a logical key."""
        if not 0 <= shard < self.count:
            raise ValidationError(f"shard {shard} is out of range 0..{self.count - 1}")
        return f"{logical}{SEPARATOR}{shard}"

    def all_physical(self, logical: str) -> list[str]:
        """Every shard's partition key, in shard order."""
        return [self.physical(logical, shard) for shard in range(self.count)]

    def calculate(self, values: Mapping[str, Any]) -> int:
        """The shard of a calculated strategy for these field values."""
        parts = []
        for name in self.fields:
            value = values.get(name)
            if value is None:
                raise ValidationError(f"shard key field {name!r} is missing")
            parts.append(render_part(value, "", sort=False, field=name))
        digest = hashlib.blake2b("#".join(parts).encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count

    def choose(self, rng: random.Random | None = None) -> int:
        """A shard for a new item under the random strategy, drawn from ``rng``. Operations
        always pass their connection's random source (``Connection(random=...)``)."""
        return (rng or _rng).randrange(self.count)


# The fallback of `Shards.choose` without ``rng``: only for code with no connection at all
# (a direct call); operations and `dynamodel.modelling.base.ModelBase.to_item` never reach it.
_rng = random.Random()


def split_physical(physical: str, shards: Shards) -> tuple[str, int]:
    """``"KEY.7"`` -> ``("KEY", 7)``; a ValidationError when the key has no valid suffix."""
    logical, sep, number = physical.rpartition(SEPARATOR)
    if not sep or not number.isdigit() or int(number) >= shards.count:
        raise ValidationError(
            f"partition key {physical!r} has no shard suffix for {shards.count} shards"
        )
    return logical, int(number)


# -- the scatter-gather merge ---------------------------------------------------------------


class ShardCountMismatch(DynamodelError):
    """The table records a different shard count for this key than the model declares."""


# -- the shard-count registry ----------------------------------------------------------------
#
# The first write of a model in a process records how each of its partition keys is sharded
# (or that it is not) in the table, one item per key; the first read or write compares the
# model's declaration with that record, once per process, and raises ShardCountMismatch on a
# difference. So unsharded -> sharded, sharded -> unsharded, N -> M and random <-> calculated
# can never read (or write) silently with the wrong layout. A first write costs one
# conditional PutItem (its ALL_OLD answer is the stored record when one exists), a first
# read one GetItem. These go to DynamoDB itself (``control``), never through DAX or a cache.
