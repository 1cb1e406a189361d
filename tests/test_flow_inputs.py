"""Flows take their clock, random source and caches as inputs (#20): from the connection running
them (a CONNECTION_INPUTS step, asked only when needed) or from the retry policy. A flow built
and driven by hand, given its inputs, reads no clock, no global random generator, no table
binding and no default connection; seeded inputs make backoff and shard choice deterministic;
a fake clock makes TTL reads, table waits, ``Meta.timestamps`` and the create-on-TTL condition
deterministic; transactions, batch writes and ``to_item`` take the clock and random source of
the connection in effect; connections keep their own bounded memory of the shard records they
checked."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from dynamodel import (
    TTL,
    Attr,
    BatchWriter,
    ConditionFailed,
    Connection,
    DynamodelError,
    Key,
    Model,
    RetryPolicy,
    Shards,
    Table,
    ThrottledError,
    TransactWrite,
    abatch_get,
    batch_get,
    use_connection,
)
from dynamodel.core.flows import (
    CONNECTION_INPUTS,
    CONNECTION_POLICY,
    Emit,
    Inputs,
    Request,
    Sleep,
    call,
)
from dynamodel.io.executors import arun, run
from dynamodel.modelling import sharding
from dynamodel.modelling.sharding import ShardCountMismatch
from dynamodel.ops import items as R, query as query_module, shard_guard
from dynamodel.ops.shard_guard import ShardChecks, registry_key
from dynamodel.testing import InProcessDynamoDB

INPUTS_TABLE = Table("flow-inputs", ttl="expires_at")
T0 = 1_900_000_000.0  # 2030-03-17: the fake clock's "now"


class Lease(Model):
    class Meta:
        table = INPUTS_TABLE
        pk = "LEASE#{lease_id}"
        sk = "LEASE"

    lease_id: str
    expires_at: TTL


class Hit(Model):
    class Meta:
        table = INPUTS_TABLE
        pk = "HIT#{page}"
        sk = "HIT#{hit_id}"
        shards = Shards(8)

    page: str
    hit_id: str


class Note(Model):
    class Meta:
        table = INPUTS_TABLE
        pk = "NOTE#{note_id}"
        sk = "NOTE"
        timestamps = ("created_at", "updated_at")

    note_id: str
    text: str = ""
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


def at(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def lease_item(seconds: float) -> dict[str, Any]:
    return Lease(lease_id="l1", expires_at=dt.datetime.fromtimestamp(seconds, dt.UTC)).to_item()


@contextmanager
def no_globals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Reading the real clock, the global random generators, a table's connection or the
    default connection fails, while the block runs."""

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("a flow read global state")

    with monkeypatch.context() as patch:
        patch.setattr(time, "time", refuse)
        patch.setattr(time, "monotonic", refuse)
        patch.setattr("dynamodel.modelling.ttl._now", refuse)
        patch.setattr("dynamodel.modelling.stamps.utc_now", refuse)
        for name in ("random", "uniform", "randrange", "randint", "choice"):
            patch.setattr(random, name, refuse)
        patch.setattr(sharding, "_rng", None)  # Shards.choose() without a generator fails
        patch.setattr(Table, "connection", property(refuse))
        patch.setattr("dynamodel.io.clients.default_connection", refuse)
        yield


class Driven:
    """What driving a flow by hand saw."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.sleeps: list[float] = []
        self.emitted: list[Any] = []
        self.asked = 0  # CONNECTION_INPUTS steps


def drive(
    flow: Any,
    answer: Callable[[Request], Any],
    inputs: Inputs,
    policy: RetryPolicy | None = None,
    seen: Driven | None = None,
    on_sleep: Callable[[float], None] = lambda _: None,
) -> Any:
    """Run a flow by hand: ``answer(request)`` gives a response (or an error to throw),
    CONNECTION_INPUTS gets ``inputs`` and CONNECTION_POLICY ``policy``; returns the result."""
    seen = seen if seen is not None else Driven()
    step = next(flow)
    try:
        while True:
            if step is CONNECTION_INPUTS:
                seen.asked += 1
                step = flow.send(inputs)
            elif step is CONNECTION_POLICY:
                step = flow.send(policy or RetryPolicy(base=0, cap=0, random=random.Random(0)))
            elif isinstance(step, Sleep):
                seen.sleeps.append(step.seconds)
                on_sleep(step.seconds)
                step = flow.send(None)
            elif isinstance(step, Emit):
                seen.emitted.append(step.value)
                step = flow.send(None)
            else:
                assert isinstance(step, Request), step
                seen.requests.append(step)
                response = answer(step)
                if isinstance(response, BaseException):
                    step = flow.throw(response)
                else:
                    step = flow.send(response)
    except StopIteration as done:
        return done.value


def inputs(now: float = T0, seed: int = 7) -> Inputs:
    return Inputs(lambda: now, random.Random(seed))


def registry_absent(request: Request) -> Any:
    """A table with no shard records yet (control calls), else an empty answer."""
    return {}


def throttled() -> ThrottledError:
    return ThrottledError("get_item: ThrottlingException: slow down", code="ThrottlingException")


# -- no global state ----------------------------------------------------------------------


def test_flows_given_their_inputs_read_no_clock_random_or_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with no_globals(monkeypatch):
        # a TTL-hiding get: expired by the given clock (T0), not by the real one
        def answer(request: Request) -> Any:
            return {} if request.control else {"Item": lease_item(T0 - 1)}

        assert (
            drive(R.get_flow(Lease, {"lease_id": "l1"}, False, None, False), answer, inputs())
            is None
        )
        found = drive(
            R.get_flow(Lease, {"lease_id": "l1"}, False, None, False), answer, inputs(T0 - 2)
        )
        assert found is not None and found.lease_id == "l1"

        # a query of a TTL table hides the items expired by the given clock
        def page(request: Request) -> Any:
            if request.control:
                return {}
            items = [lease_item(T0 - 1), {**lease_item(T0 + 60), "sk": {"S": "LEASE"}}]
            return {"Items": items}

        seen = Driven()
        drive(Lease.query(lease_id="l1")._flow(), page, inputs(), seen=seen)
        (result,) = seen.emitted
        assert len(result.items) == 1 and result.skipped == 1

        # a new randomly sharded item: its shard comes from the given random source
        hit = Hit(page="home", hit_id="h1")
        seen = Driven()
        drive(R.put_flow(hit, None), lambda _: {}, inputs(seed=11), seen=seen)
        expected = random.Random(11).randrange(8)
        assert hit.shard_number() == expected
        (put,) = [r for r in seen.requests if not r.control]
        assert put.params["Item"]["pk"] == {"S": f"HIT#home.{expected}"}

        # retries: the jitter comes from the policy's random source, the budget from its clock
        policy = RetryPolicy(
            base=1, cap=4, max_attempts=4, random=random.Random(3), clock=lambda: 0
        )
        seen = Driven()
        with pytest.raises(ThrottledError):
            drive(call(Request("get_item", {})), lambda _: throttled(), inputs(), policy, seen)
        assert len(seen.sleeps) == 3 and all(0 <= s <= 4 for s in seen.sleeps)

        # timestamps: the given clock's time; the inputs are asked once (the shard check
        # reuses the answer)
        note = Note(note_id="n1")
        seen = Driven()
        drive(R.put_flow(note, None), lambda _: {}, inputs(T0), seen=seen)
        assert note.created_at == note.updated_at == at(T0) and seen.asked == 1
        (put,) = [r for r in seen.requests if not r.control]
        assert put.params["Item"]["updated_at"] == {"S": "2030-03-17T17:46:40.000000Z"}
        seen = Driven()
        update = R.update_flow(Note, {"note_id": "n1"}, [Attr("text").set("x")], None, False)
        drive(
            update,
            lambda r: {} if r.control else {"Attributes": put.params["Item"]},
            inputs(T0 + 5),
            seen=seen,
        )
        (sent,) = [r for r in seen.requests if not r.control]
        assert {"S": "2030-03-17T17:46:45.000000Z"} in sent.params[
            "ExpressionAttributeValues"
        ].values()
        assert seen.asked == 1

        # create on a table hiding expired items: "expired" is by the given clock
        seen = Driven()
        lease = Lease(lease_id="l2", expires_at=at(T0 + 60))
        drive(lease._create_flow(None), lambda _: {}, inputs(T0), seen=seen)
        (put,) = [r for r in seen.requests if not r.control]
        assert {"N": str(int(T0))} in put.params["ExpressionAttributeValues"].values()
        assert seen.asked == 1

        # a plain model's put asks once (its shard check), as before
        seen = Driven()
        drive(R.put_flow(lease, None), lambda _: {}, inputs(T0), seen=seen)
        assert seen.asked == 1


def test_seeded_random_gives_deterministic_backoff() -> None:
    def delays(seed: int) -> list[float]:
        policy = RetryPolicy(base=0.1, cap=2, random=random.Random(seed))
        return [policy.backoff(n) for n in range(1, 9)]

    assert delays(1) == delays(1)
    assert delays(1) != delays(2)
    assert all(0 <= d <= min(2, 0.1 * 2 ** (n - 1)) for n, d in enumerate(delays(1), 1))
    # the default still draws full jitter from the random module's generator
    random.seed(5)
    first = [RetryPolicy(base=0.1, cap=2).backoff(n) for n in range(1, 5)]
    random.seed(5)
    assert first == [RetryPolicy(base=0.1, cap=2).backoff(n) for n in range(1, 5)]
    with pytest.raises(ValueError, match="random"):
        RetryPolicy(random=42)  # type: ignore[arg-type]


def test_connection_inputs_are_checked() -> None:
    with pytest.raises(DynamodelError, match="clock"):
        Connection(clock=3)  # type: ignore[arg-type]
    with pytest.raises(DynamodelError, match="random"):
        Connection(random=random)
    connection = Connection()
    assert connection.inputs.clock is time.time
    assert isinstance(connection.inputs.memo("shard_checks", ShardChecks), ShardChecks)


# -- through the executors ------------------------------------------------------------------


@pytest.fixture
def db() -> Iterator[InProcessDynamoDB]:
    with InProcessDynamoDB() as local:
        local.create_tables(INPUTS_TABLE)
        yield local
    INPUTS_TABLE.unbind()


def test_a_fake_clock_makes_ttl_reads_deterministic(db: InProcessDynamoDB) -> None:
    INPUTS_TABLE.bind(connection=Connection(client=db.client(), clock=lambda: T0))
    Lease(lease_id="l1", expires_at=dt.datetime.fromtimestamp(T0 + 60, dt.UTC)).save()
    assert Lease.get_or_none(lease_id="l1") is not None
    assert Lease.query(lease_id="l1").count() == 1
    INPUTS_TABLE.bind(connection=Connection(client=db.client(), clock=lambda: T0 + 61))
    assert Lease.get_or_none(lease_id="l1") is None  # expired by this connection's clock
    assert Lease.query(lease_id="l1").all() == []
    assert Lease.query(lease_id="l1").count() == 0


async def test_the_async_executor_answers_inputs_too(db: InProcessDynamoDB) -> None:
    lease = Lease(lease_id="l1", expires_at=dt.datetime.fromtimestamp(T0 + 60, dt.UTC))
    run(R.put_flow(lease, None), Connection(client=db.client()))
    early = Connection(aclient=db.aclient(), clock=lambda: T0)
    late = Connection(aclient=db.aclient(), clock=lambda: T0 + 61)
    flow = R.get_flow(Lease, {"lease_id": "l1"}, False, None, False)
    assert await arun(flow, early) is not None
    assert await arun(R.get_flow(Lease, {"lease_id": "l1"}, False, None, False), late) is None


def test_a_seeded_connection_chooses_the_same_shards(db: InProcessDynamoDB) -> None:
    def shards(seed: int) -> list[int]:
        connection = Connection(client=db.client(), random=random.Random(seed))
        hits = [Hit(page="home", hit_id=str(n)) for n in range(12)]
        for hit in hits:
            run(R.put_flow(hit, None), connection)
        return [hit.shard_number() for hit in hits]

    assert shards(4) == shards(4)
    assert shards(4) != shards(5)


@pytest.fixture
def no_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module-level fallbacks (real time for timestamps and TTL, the shared random
    generator for shards) fail if an operation reaches them."""

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("an operation read the real clock")

    monkeypatch.setattr("dynamodel.modelling.stamps.utc_now", refuse)
    monkeypatch.setattr("dynamodel.modelling.ttl._now", refuse)
    monkeypatch.setattr(sharding, "_rng", None)  # Shards.choose() without a generator fails


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_the_connection_clock_decides_the_timestamps(
    db: InProcessDynamoDB, no_fallbacks: None, asynchronous: bool
) -> None:
    now = [T0]
    connection = Connection(client=db.client(), aclient=db.aclient(), clock=lambda: now[0])

    async def op(target: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        if asynchronous:
            return await getattr(target, "a" + name)(*args, connection=connection, **kwargs)
        return getattr(target, name)(*args, connection=connection, **kwargs)

    note = Note(note_id="n1")
    await op(note, "create")
    assert note.created_at == note.updated_at == at(T0)
    now[0] = T0 + 10
    note.text = "saved"
    await op(note, "save")
    assert (note.created_at, note.updated_at) == (at(T0), at(T0 + 10))
    now[0] = T0 + 20
    updated = await op(note, "update", Attr("text").set("updated"))
    assert (updated.created_at, updated.updated_at) == (at(T0), at(T0 + 20))
    now[0] = T0 + 30
    updated.text = "changed"
    await op(updated, "save_changes")
    assert (updated.created_at, updated.updated_at) == (at(T0), at(T0 + 30))
    now[0] = T0 + 40
    made = await op(Note, "update_item", {"note_id": "n2"}, [Attr("text").set("x")], upsert=True)
    assert made.created_at == made.updated_at == at(T0 + 40)

    # a transaction's actions and a batch's puts: the clock of the connection in effect when
    # each is added (here the one given to the builder)
    now[0] = T0 + 50
    tx = TransactWrite(connection=connection)
    tx.put(Note(note_id="n3"))
    tx.update(Note.get(note_id="n1", connection=connection), Attr("text").set("tx"))
    now[0] = T0 + 55  # committed later: the times are those of when the actions were added
    await (tx.acommit() if asynchronous else _sync(tx.commit))
    batch = BatchWriter(connection=connection)
    batch.put(Note(note_id="n4"))
    await (batch.aflush() if asynchronous else _sync(batch.flush))

    def stamps(note_id: str) -> tuple[dt.datetime | None, dt.datetime | None]:
        stored = Note.get(note_id=note_id, connection=connection)
        return stored.created_at, stored.updated_at

    assert stamps("n3") == (at(T0 + 50), at(T0 + 50))
    assert stamps("n1") == (at(T0), at(T0 + 50))
    assert stamps("n4") == (at(T0 + 55), at(T0 + 55))


async def _sync(call: Callable[[], Any]) -> Any:
    return call()


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_create_counts_an_item_expired_by_the_connection_clock_as_absent(
    db: InProcessDynamoDB, no_fallbacks: None, sent: Any, asynchronous: bool
) -> None:
    run(
        R.put_flow(Lease(lease_id="l1", expires_at=at(T0 + 60)), None),
        Connection(client=db.client()),
    )

    async def create(clock: float) -> None:
        connection = Connection(client=db.client(), aclient=db.aclient(), clock=lambda: clock)
        lease = Lease(lease_id="l1", expires_at=at(T0 + 600))
        if asynchronous:
            await lease.acreate(connection=connection)
        else:
            lease.create(connection=connection)

    sent.clear()
    with pytest.raises(ConditionFailed):
        await create(T0 + 59)  # not expired by this clock: the key is taken
    (put,) = [
        p
        for op, p in zip(sent, sent.params, strict=True)
        if op == "put_item" and p["Item"]["pk"]["S"].startswith("LEASE#")  # not a shard record
    ]
    assert {"N": str(int(T0 + 59))} in put["ExpressionAttributeValues"].values()  # the :now
    await create(T0 + 61)  # expired by this clock: counts as absent, overwritten
    stored = Lease.get(lease_id="l1", connection=Connection(client=db.client(), clock=lambda: T0))
    assert stored.expires_at == at(T0 + 600)


@pytest.mark.parametrize("how", ["batch", "transaction", "to_item"])
def test_a_seeded_connection_draws_the_same_shards_outside_flows(
    db: InProcessDynamoDB, no_fallbacks: None, how: str
) -> None:
    def shards(seed: int) -> list[int | None]:
        connection = Connection(client=db.client(), random=random.Random(seed))
        hits = [Hit(page="home", hit_id=f"{how}-{n}") for n in range(12)]
        if how == "batch":
            with BatchWriter(connection=connection) as batch:
                batch.put(*hits)
        elif how == "transaction":
            with TransactWrite(connection=connection) as tx:
                for hit in hits:
                    tx.put(hit)
        else:
            with use_connection(connection):  # to_item alone: the connection in effect
                items = [hit.to_item() for hit in hits]
            assert items[0]["pk"] == {"S": f"HIT#home.{hits[0].shard_number()}"}
        return [hit.shard_number() for hit in hits]

    seeded = random.Random(4)
    expected = [seeded.randrange(8) for _ in range(12)]
    assert shards(4) == shards(4) == expected
    assert shards(5) != expected
    if how != "to_item":  # written under the drawn shard
        connection = Connection(client=db.client())
        found = Hit.get(page="home", hit_id=f"{how}-0", shard=expected[0], connection=connection)
        assert found.shard_number() == expected[0]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_batch_get_hides_items_expired_by_the_connection_clock(
    db: InProcessDynamoDB, no_fallbacks: None, asynchronous: bool
) -> None:
    writer = Connection(client=db.client())
    run(R.put_flow(Lease(lease_id="l1", expires_at=at(T0 + 60)), None), writer)
    run(R.put_flow(Lease(lease_id="l2", expires_at=at(T0 + 600)), None), writer)
    keys = [Key(Lease, lease_id="l1"), Key(Lease, lease_id="l2")]

    async def read(clock: float) -> Any:
        connection = Connection(client=db.client(), aclient=db.aclient(), clock=lambda: clock)
        if asynchronous:
            return await abatch_get(keys, connection=connection)
        return batch_get(keys, connection=connection)

    early = await read(T0 + 59)
    assert sorted(lease.lease_id for lease in early) == ["l1", "l2"] and early.missing == []
    late = await read(T0 + 61)
    assert [lease.lease_id for lease in late] == ["l2"] and late.missing == [keys[0]]


def test_a_table_wait_times_out_by_the_connection_clock() -> None:
    class Creating:
        def __init__(self) -> None:
            self.describes = 0

        def describe_table(self, **_: Any) -> Any:
            self.describes += 1
            return {"Table": {"TableStatus": "CREATING"}}

    ticks = iter(range(100))
    client = Creating()
    connection = Connection(client=client, clock=lambda: float(next(ticks)))
    with pytest.raises(DynamodelError, match="not ACTIVE after 5s"):
        run(INPUTS_TABLE._wait_active_flow(timeout=5, poll=0), connection)
    assert client.describes == 5  # the clock reads 0 (deadline 5), then 1, 2, 3, 4, 5


# -- caches -------------------------------------------------------------------------------


class RegistryStub:
    """An endpoint whose shard registry holds ``record`` for every key (None: nothing)."""

    def __init__(self, record: dict[str, Any] | None) -> None:
        self.record = record
        self.registry_reads = 0

    def get_item(self, **params: Any) -> Any:
        pk = params["Key"][INPUTS_TABLE.pk]["S"]
        if pk.startswith(shard_guard.REGISTRY_PK):
            self.registry_reads += 1
            return {"Item": {**params["Key"], **self.record}} if self.record else {}
        return {}


EIGHT_RANDOM = {"count": {"N": "8"}, "strategy": {"S": "random"}, "by": {"L": []}}
UNSHARDED = {"count": {"N": "1"}, "strategy": {"S": "none"}, "by": {"L": []}}


def test_two_connections_do_not_share_shard_checks() -> None:
    """Same table name, two endpoints: what one connection checked says nothing of the other."""
    matching, stale = RegistryStub(EIGHT_RANDOM), RegistryStub(UNSHARDED)
    first, second = Connection(client=matching), Connection(client=stale)

    def get(connection: Connection) -> Any:
        key = {"page": "home", "hit_id": "1", "shard": 3}
        return run(R.get_flow(Hit, key, False, None, False), connection)

    assert get(first) is None and get(first) is None
    assert matching.registry_reads == 1  # checked once on this connection, then remembered
    with pytest.raises(ShardCountMismatch):
        get(second)  # the other endpoint's table records another layout
    assert stale.registry_reads == 1
    assert registry_key(INPUTS_TABLE, "Hit", None)  # the record checked is the entity's
    assert first.inputs.memo("shard_checks", ShardChecks).model_checked(Hit._spec(), "flow-inputs")
    assert not second.inputs.memo("shard_checks", ShardChecks).model_checked(
        Hit._spec(), "flow-inputs"
    )


def test_shard_checks_stay_bounded() -> None:
    checks = ShardChecks(limit=3)
    for n in range(10):
        checks.record((f"table-{n}", "Hit", None), None)
        checks.record_absent((f"other-{n}", "Hit", None), 1.0)
        checks.mark_model(object(), f"table-{n}", shard_guard.checks_generation())
    assert len(checks) == 9  # three of each, the newest
    assert checks.known(("table-9", "Hit", None)) is None  # remembered: not sharded
    assert checks.known(("table-0", "Hit", None)) is shard_guard._ABSENT  # forgotten
    assert ShardChecks().limit == shard_guard.MAX_SHARD_CHECKS


def test_the_plain_query_memo_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query_module, "MAX_PLAIN_PARAMS", 4)
    monkeypatch.setattr(query_module, "_PLAIN_PARAMS", {})
    for n in range(10):
        memo_table = Table(f"memo-{n}")

        class Thing(Model):
            class Meta:
                table = memo_table
                pk = "THING#{thing_id}"
                sk = "THING"

            thing_id: str

        Thing.query(thing_id="a")._params()
    assert len(query_module._PLAIN_PARAMS) == 4
