"""Optimistic locking against the local DynamoDB, each through the sync and the async API:
version numbers written and checked, conflicts carrying the winner, forced writes,
``retry_on_conflict``, and the acceptance checks: 8 concurrent writers x 100 read-modify-write
increments (threads, and asyncio tasks) end at exactly 800 through the retry helper, while
without it every lost race raises `VersionConflict` (nothing is lost silently)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SyncIO

from dynamodel import Attr, ConditionFailed, Model, RetryPolicy, Table
from dynamodel.core.errors import VersionConflict
from dynamodel.local import LocalDynamoDB
from dynamodel.ops.locking import aretry_on_conflict, retry_on_conflict

LOCKS = Table("locks")


class Counter(Model):
    class Meta:
        table = LOCKS
        pk = "COUNTER#{name}"
        sk = "COUNTER"
        version = "version"

    name: str
    value: int = 0
    note: str = ""
    version: int = 0


@pytest.fixture
def locks(fresh_db: LocalDynamoDB) -> Iterator[Table]:
    LOCKS.create(poll=0.01)
    yield LOCKS


pytestmark = pytest.mark.usefixtures("locks")


def stored_version(ddb: Any, name: str = "c") -> int:
    key = Counter.build_key(name=name)
    item = ddb.get_item(TableName="locks", Key=key, ConsistentRead=True)["Item"]
    return int(item["version"]["N"])


async def test_every_write_checks_and_bumps_the_version(io: SyncIO, ddb: Any) -> None:
    counter = Counter(name="c")
    await io.save(counter)
    assert counter.version == 1 == stored_version(ddb)
    counter.value = 5
    await io.save(counter)
    assert counter.version == 2 == stored_version(ddb)
    read = await io.get(Counter, name="c")
    assert read == counter
    updated = await io.update(read, Attr("value").add(1))
    assert (updated.value, updated.version, read.version) == (6, 3, 2)
    with pytest.raises(VersionConflict):
        await io.delete(read)  # read is stale now
    await io.delete(updated)
    assert await io.get_or_none(Counter, name="c") is None


async def test_a_lost_race_raises_with_the_winner(io: SyncIO, ddb: Any) -> None:
    await io.create(Counter(name="c", value=1))
    mine = await io.get(Counter, name="c")
    theirs = await io.get(Counter, name="c")
    theirs.value, theirs.note = 10, "theirs"
    await io.save(theirs)
    mine.value = 2
    with pytest.raises(VersionConflict) as info:
        await io.save(mine)
    error = info.value
    assert isinstance(error, ConditionFailed)
    assert (error.expected, error.actual) == (1, 2)
    assert error.current == theirs
    assert (await io.get(Counter, name="c")) == theirs  # nothing overwritten
    assert mine.version == 1
    with pytest.raises(VersionConflict):
        await io.update(mine, Attr("value").add(1))
    with pytest.raises(VersionConflict):
        await io.save(Counter(name="c"))  # a "new" item whose key is taken
    assert stored_version(ddb) == 2


async def test_user_conditions_are_anded_with_the_version(io: SyncIO) -> None:
    counter = Counter(name="c", value=1)
    await io.save(counter)
    with pytest.raises(ConditionFailed) as info:
        await io.save(counter, condition=Attr("value") > 5)
    assert not isinstance(info.value, VersionConflict)
    assert info.value.current == counter
    await io.save(counter, condition=Attr("value") == 1)
    assert counter.version == 2


async def test_forced_writes_skip_the_check_and_keep_versions_growing(io: SyncIO, ddb: Any) -> None:
    await io.save(Counter(name="c"))
    stale = await io.get(Counter, name="c")
    fresh = await io.get(Counter, name="c")
    await io.save(fresh)
    await io.save(fresh)  # stored version 3
    stale.note = "forced"
    await io.save(stale, force=True)
    assert stale.version == 4 == stored_version(ddb)
    assert (await io.get(Counter, name="c")).note == "forced"
    with pytest.raises(VersionConflict):
        await io.save(fresh)  # holders of older copies still conflict
    forced = await io.update(fresh, Attr("value").add(1), force=True)
    assert forced.version == 5 and forced.note == "forced"
    await io.delete(fresh, force=True)
    assert await io.get_or_none(Counter, name="c") is None


async def test_writes_by_key_increment_the_version(io: SyncIO, ddb: Any) -> None:
    created = await io.update_item(Counter, {"name": "c"}, [Attr("value").set(1)], upsert=True)
    assert created.version == 1
    again = await io.update_item(Counter, {"name": "c"}, [Attr("value").add(1)])
    assert (again.value, again.version) == (2, 2)
    with pytest.raises(VersionConflict):
        await io.save(created)  # the by-key update is visible to version checks
    with pytest.raises(ConditionFailed):  # a version check by key goes in the condition
        await io.update_item(
            Counter, {"name": "c"}, [Attr("value").add(1)], condition=Attr("version") == 1
        )
    assert (await io.delete_item(Counter, {"name": "c"})).version == 2


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_retry_helper_reapplies_after_a_concurrent_write(mode: str) -> None:
    Counter(name="c", value=1).save()
    calls: list[int] = []

    def double_it(counter: Counter) -> Counter:
        calls.append(counter.value)
        if len(calls) == 1:  # someone else writes between our read and our save
            other = Counter.get(name="c", consistent=True)
            other.value += 100
            other.save()
        return counter.model_copy(update={"value": counter.value * 2})

    if mode == "sync":
        result = retry_on_conflict(Counter, {"name": "c"}, double_it)
    else:
        result = await aretry_on_conflict(Counter, {"name": "c"}, double_it)
    assert calls == [1, 101]  # reapplied to the winner's item
    assert result.value == 202 and result.version == 3
    assert Counter.get(name="c", consistent=True) == result


# -- the acceptance checks: 8 concurrent writers x 100 increments --------------------------------

WRITERS = 8
INCREMENTS = 100
POLICY = RetryPolicy(base=0.01, cap=0.5)
ATTEMPTS = 50


def increment(counter: Counter) -> None:
    counter.value += 1


def check_no_lost_update(versions: list[int]) -> None:
    """Every helper call returned the version it wrote: one distinct version per increment."""
    total = WRITERS * INCREMENTS
    final = Counter.get(name="c", consistent=True)
    claimed_twice = sorted(v for v in set(versions) if versions.count(v) > 1)
    assert not claimed_twice, (
        f"the backend accepted two conditional puts expecting the same version for versions "
        f"{claimed_twice} (stored: {final}); a lost update the version check should have refused"
    )
    assert final.value == total
    assert final.version == total + 1
    assert sorted(versions) == list(range(2, total + 2))


def test_800_increments_from_threads_through_the_retry_helper() -> None:
    Counter(name="c").create()
    versions: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def writer() -> None:
        try:
            start.wait()
            for _ in range(INCREMENTS):
                saved = retry_on_conflict(
                    Counter, {"name": "c"}, increment, attempts=ATTEMPTS, policy=POLICY
                )
                versions.append(saved.version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    check_no_lost_update(versions)


async def test_800_increments_from_asyncio_tasks_through_the_retry_helper() -> None:
    Counter(name="c").create()
    versions: list[int] = []

    async def writer() -> None:
        for _ in range(INCREMENTS):
            saved = await aretry_on_conflict(
                Counter, {"name": "c"}, increment, attempts=ATTEMPTS, policy=POLICY
            )
            versions.append(saved.version)

    async with asyncio.TaskGroup() as group:  # a failing writer cancels the others
        for _ in range(WRITERS):
            group.create_task(writer())
    check_no_lost_update(versions)


ROUNDS = 25


def test_without_the_helper_lost_races_raise_from_threads() -> None:
    """Each round all writers read the same version, then all save: one wins, the others get
    `VersionConflict`; the stored value counts exactly the saves that succeeded."""
    Counter(name="c").create()
    barrier = threading.Barrier(WRITERS, timeout=60)  # a failing writer breaks it: no hang
    outcomes: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer() -> None:
        try:
            for _ in range(ROUNDS):
                counter = Counter.get(name="c", consistent=True)
                counter.value += 1
                barrier.wait()
                try:
                    counter.save()
                    outcome = "saved"
                except VersionConflict:
                    outcome = "conflict"
                with lock:
                    outcomes.append(outcome)
                barrier.wait()
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert outcomes.count("saved") == ROUNDS
    assert outcomes.count("conflict") == ROUNDS * (WRITERS - 1)
    final = Counter.get(name="c", consistent=True)
    assert (final.value, final.version) == (ROUNDS, ROUNDS + 1)


async def test_without_the_helper_lost_races_raise_from_asyncio_tasks() -> None:
    Counter(name="c").create()
    barrier = asyncio.Barrier(WRITERS)
    outcomes: list[str] = []

    async def writer() -> None:
        for _ in range(ROUNDS):
            counter = await Counter.aget(name="c", consistent=True)
            counter.value += 1
            await barrier.wait()
            try:
                await counter.asave()
                outcomes.append("saved")
            except VersionConflict:
                outcomes.append("conflict")
            await barrier.wait()

    async with asyncio.TaskGroup() as group:
        for _ in range(WRITERS):
            group.create_task(writer())
    assert outcomes.count("saved") == ROUNDS
    assert outcomes.count("conflict") == ROUNDS * (WRITERS - 1)
    final = await Counter.aget(name="c", consistent=True)
    assert (final.value, final.version) == (ROUNDS, ROUNDS + 1)
