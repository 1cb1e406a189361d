"""dynamodel.schema against the local backend, through the sync and the async API."""

from __future__ import annotations

from typing import Any

import pytest
from backends import Backend

from dynamodel import GSI, Table, schema

v1 = Table("schema-live", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])
v2 = Table(
    "schema-live",
    indexes=[*v1.indexes, GSI("gsi2", pk="gsi2pk", projection=["total"])],
    stream="NEW_AND_OLD_IMAGES",
    ttl="expires",
)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_describe_diff_apply(fresh_db: Backend, ddb: Any, mode: str) -> None:
    async def describe(table: Table) -> schema.LiveTable:
        return schema.describe(table) if mode == "sync" else await schema.adescribe(table)

    async def diff(table: Table) -> list[schema.Change]:
        return schema.diff(table) if mode == "sync" else await schema.adiff(table)

    async def apply(table: Table, **options: Any) -> schema.ApplyResult:
        if mode == "sync":
            return schema.apply(table, poll=0.05, **options)
        return await schema.aapply(table, poll=0.05, **options)

    v1.create(poll=0.01)
    live = await describe(v1)
    assert live.shape.status == "ACTIVE" and list(live.shape.gsis) == ["gsi1"]
    assert await diff(v1) == []

    dry = await apply(v2, dry_run=True)
    assert dry.dry_run and [s.describe for s in dry.applied] == [
        "create GSI gsi2",
        "stream NEW_AND_OLD_IMAGES",
        "TTL on expires",
    ]
    assert list((await describe(v1)).shape.gsis) == ["gsi1"]  # nothing sent

    seen: list[str] = []
    result = await apply(v2, on_step=lambda step: seen.append(step.describe))
    assert seen == [s.describe for s in dry.applied] and result.in_sync
    shape = (await describe(v2)).shape
    assert sorted(shape.gsis) == ["gsi1", "gsi2"]
    assert shape.gsis["gsi2"].projection == "INCLUDE" and shape.gsis["gsi2"].attributes == (
        "total",
    )
    assert (shape.stream, shape.ttl) == ("NEW_AND_OLD_IMAGES", "expires")
    assert await diff(v2) == []

    refused = await apply(v1)
    assert not refused.in_sync and not refused.applied
    assert {c.subject for c in refused.refused} == {"GSI gsi2", "stream", "TTL"}
    done = await apply(v1, destructive=True)
    assert done.in_sync
    assert await diff(v1) == []
    v1.delete()
