"""Flows depend only on their arguments and on the connection that runs them (#20): building
and driving one reads no table binding and no default connection, and a flow run on a
connection retries by that connection's policy, whatever the table is bound to."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from dynamodel import Attr, Connection, Model, RetryPolicy, Table, ThrottledError
from dynamodel.core.flows import CONNECTION_INPUTS, CONNECTION_POLICY, Emit, Inputs, Request, Sleep
from dynamodel.io.executors import arun, run
from dynamodel.ops import items as R
from dynamodel.testing import FaultInjector, InProcessDynamoDB, trust_shard_layouts

PURE = Table("purity")


class Note(Model):
    class Meta:
        table = PURE
        pk = "NOTE#{note_id}"
        sk = "NOTE"

    note_id: str
    text: str = ""


#: the inputs a hand-driven flow is given when it asks (CONNECTION_INPUTS)
INPUTS = Inputs(clock=lambda: 1_800_000_000.0, random=random.Random(7))

EMITTED: list[Any] = []  # what the last flows driven emitted (pages)


def drive(flow: Any, answers: list[Any], policy: RetryPolicy) -> tuple[list[str], Any]:
    """Run a flow by hand: each Request gets the next answer (a response, or an error to
    throw), CONNECTION_POLICY gets ``policy``, CONNECTION_INPUTS gets INPUTS, a Sleep is
    skipped and an Emit recorded in EMITTED; returns the operations and the result."""
    ops: list[str] = []
    step = next(flow)
    try:
        while True:
            if step is CONNECTION_POLICY:
                step = flow.send(policy)
                continue
            if step is CONNECTION_INPUTS:
                step = flow.send(INPUTS)
                continue
            if isinstance(step, Sleep | Emit):
                EMITTED.extend([step.value] if isinstance(step, Emit) else [])
                step = flow.send(None)
                continue
            assert isinstance(step, Request), step
            ops.append(step.op)
            answer = answers.pop(0)
            step = flow.throw(answer) if isinstance(answer, BaseException) else flow.send(answer)
    except StopIteration as done:
        return ops, done.value


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any read of a table's connection or of the default connection fails the test."""

    def refuse(*_: Any) -> Any:
        raise AssertionError("a flow read a connection")

    monkeypatch.setattr(Table, "connection", property(refuse))
    monkeypatch.setattr("dynamodel.io.clients.default_connection", refuse)
    trust_shard_layouts(Note)
    yield


def throttled() -> ThrottledError:
    return ThrottledError("get_item: ThrottlingException: slow down", code="ThrottlingException")


def test_building_and_driving_flows_reads_no_connection(unreachable: None) -> None:
    policy = RetryPolicy(base=0, cap=0, max_attempts=3)
    note = Note(note_id="n1", text="a")
    item = note.to_item()
    ops, found = drive(
        R.get_flow(Note, {"note_id": "n1"}, False, None, True),
        [throttled(), {"Item": item}],
        policy,
    )
    assert ops == ["get_item", "get_item"] and found == note  # retried by the given policy
    assert drive(R.put_flow(note, None), [{}], policy)[0] == ["put_item"]
    ops, updated = drive(
        note._update_flow([Attr("text").set("b")], None, False),
        [{"Attributes": {**item, "text": {"S": "b"}}}],
        policy,
    )
    assert ops == ["update_item"] and updated.text == "b"
    EMITTED.clear()
    ops, _ = drive(Note.query(note_id="n1")._flow(), [{"Items": [item]}], policy)
    assert ops == ["query"] and [page.items for page in EMITTED] == [[note]]
    with pytest.raises(ThrottledError):  # the policy it was given: 3 sends, then give up
        drive(
            R.get_flow(Note, {"note_id": "n1"}, False, None, True),
            [throttled(), throttled(), throttled()],
            policy,
        )


@pytest.fixture
def db() -> Iterator[InProcessDynamoDB]:
    with InProcessDynamoDB() as local:
        local.create_tables(PURE)
        yield local
    PURE.unbind()


def always_throttled(db: InProcessDynamoDB, attempts: int) -> tuple[Connection, FaultInjector]:
    injector = FaultInjector(db.client(), throttle=1.0, throttle_code="ThrottlingException")
    policy = RetryPolicy(base=0, cap=0, max_attempts=attempts)
    return Connection(client=injector, retry=policy), injector


def test_a_flow_retries_by_the_policy_of_the_connection_running_it(db: InProcessDynamoDB) -> None:
    bound, bound_faults = always_throttled(db, attempts=2)
    other, other_faults = always_throttled(db, attempts=5)
    PURE.bind(connection=bound)
    with pytest.raises(ThrottledError):
        Note.get(note_id="n1")
    assert bound_faults.stats.calls == 2
    with pytest.raises(ThrottledError):
        run(R.get_flow(Note, {"note_id": "n1"}, False, None, True), other)
    assert other_faults.stats.calls == 5 and bound_faults.stats.calls == 2


async def test_the_async_executor_answers_with_its_connection_too(db: InProcessDynamoDB) -> None:
    bound, _ = always_throttled(db, attempts=2)
    PURE.bind(connection=bound)
    injector = FaultInjector(db.aclient(), throttle=1.0, throttle_code="ThrottlingException")
    other = Connection(aclient=injector, retry=RetryPolicy(base=0, cap=0, max_attempts=4))
    with pytest.raises(ThrottledError):
        await arun(R.get_flow(Note, {"note_id": "n1"}, False, None, True), other)
    assert injector.stats.calls == 4
