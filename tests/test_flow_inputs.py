"""Flows take their clock, random source and caches as inputs (#20): from the connection running
them (a CONNECTION_INPUTS step, asked only when needed) or from the retry policy. A flow built
and driven by hand, given its inputs, reads no clock, no global random generator, no table
binding and no default connection; seeded inputs make backoff and shard choice deterministic;
a fake clock makes TTL reads and table waits deterministic; connections keep their own bounded
memory of the shard records they checked."""

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
    Connection,
    DynamodelError,
    Model,
    RetryPolicy,
    Shards,
    Table,
    ThrottledError,
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
