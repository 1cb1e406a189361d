"""Batch writes and gets without a server: keys, validation, de-duplication, chunking and the
chunk flow driven by hand, then whole batches against an in-memory stub client that is as
strict as DynamoDB (at most 25 writes / 100 keys per call, duplicate keys rejected)."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dynamodel import (
    Connection,
    EntityMismatch,
    ItemTooLarge,
    Model,
    RetryPolicy,
    Table,
    ValidationError,
)
from dynamodel.core.errors import ServiceError, ThrottledError
from dynamodel.core.flows import Request, Sleep
from dynamodel.ops.batch import (
    BatchGetError,
    BatchWriteError,
    BatchWriter,
    Key,
    abatch_get,
    batch_get,
    batch_write,
)
from dynamodel.ops.batch_flows import (
    MAX_WRITE_REQUESTS,
    ChunkReport,
    Progress,
    chunked,
    deduplicate,
    delete_write_request,
    get_entries,
    put_write_request,
    write_call,
    write_flow,
)
from dynamodel.ops.shard_guard import forget_shard_checks
from dynamodel.testing import FaultInjector, trust_shard_layouts

UNIT = Table("unit-batch")
UNIT_FLAT = Table("unit-batch-flat", sk=None, indexes=[])


class Thing(Model):
    class Meta:
        table = UNIT
        pk = "THING#{n}"
        sk = "THING"

    n: int
    text: str = ""
    blob: bytes = b""


class Part(Model):
    class Meta:
        table = UNIT
        pk = "THING#{n}"
        sk = "PART#{part}"

    n: int
    part: str
    qty: int = 0


class ThingSummary(Model):
    """Another model over the same items as `Thing`."""

    class Meta:
        table = UNIT
        pk = "THING#{n}"
        sk = "THING"

    n: int


class Flat(Model):
    class Meta:
        table = UNIT_FLAT
        pk = "FLAT#{name}"

    name: str
    value: int = 0


class Doc(Model):
    class Meta:
        table = UNIT
        pk = "DOC#{doc_id}"
        sk = "DOC"
        version = "version"

    doc_id: str
    body: str = ""
    version: int | None = None


# -- a strict in-memory stand-in for the batch operations -----------------------------------------


def client_error(op: str, code: str, message: str, status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": 0},
        },
        op,
    )


class StubDynamo:
    """BatchWriteItem / BatchGetItem on dicts, rejecting what DynamoDB rejects."""

    def __init__(self) -> None:
        self.keys = {UNIT.name: ("pk", "sk"), UNIT_FLAT.name: ("pk",)}
        self.tables: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {n: {} for n in self.keys}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        #: called with (operation, params) before anything is applied; may raise
        self.before: Callable[[str, dict[str, Any]], None] | None = None

    def _id(self, table: str, attributes: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(attributes[name]["S"] for name in self.keys[table])

    def _start(self, op: str, params: dict[str, Any], count: int, limit: int) -> None:
        with self.lock:
            self.calls.append((op, params))
        if self.before is not None:
            self.before(op, params)
        if not 0 < count <= limit:
            raise client_error(op, "ValidationException", f"{count} requests; limit {limit}")
        for table in params["RequestItems"]:
            if table not in self.tables:
                raise client_error(op, "ResourceNotFoundException", "Requested resource not found")

    def batch_write_item(self, **params: Any) -> dict[str, Any]:
        requests = params["RequestItems"]
        self._start("BatchWriteItem", params, sum(len(v) for v in requests.values()), 25)
        seen = set()
        for table, entries in requests.items():
            for entry in entries:
                attrs = (
                    entry["PutRequest"]["Item"]
                    if "PutRequest" in entry
                    else entry["DeleteRequest"]["Key"]
                )
                ident = (table, self._id(table, attrs))
                if ident in seen:
                    raise client_error(
                        "BatchWriteItem",
                        "ValidationException",
                        "Provided list of item keys contains duplicates",
                    )
                seen.add(ident)
        with self.lock:
            for table, entries in requests.items():
                for entry in entries:
                    if "PutRequest" in entry:
                        item = entry["PutRequest"]["Item"]
                        self.tables[table][self._id(table, item)] = item
                    else:
                        key = entry["DeleteRequest"]["Key"]
                        self.tables[table].pop(self._id(table, key), None)
        return {
            "UnprocessedItems": {},
            "ConsumedCapacity": [
                {"TableName": t, "CapacityUnits": float(len(v))} for t, v in requests.items()
            ],
            "ResponseMetadata": {"HTTPStatusCode": 200, "RetryAttempts": 0},
        }

    def batch_get_item(self, **params: Any) -> dict[str, Any]:
        requests = params["RequestItems"]
        self._start("BatchGetItem", params, sum(len(v["Keys"]) for v in requests.values()), 100)
        responses: dict[str, list[Any]] = {}
        for table, request in requests.items():
            ids = [self._id(table, key) for key in request["Keys"]]
            if len(set(ids)) != len(ids):
                raise client_error(
                    "BatchGetItem",
                    "ValidationException",
                    "Provided list of item keys contains duplicates",
                )
            found = [self.tables[table][i] for i in ids if i in self.tables[table]]
            responses[table] = found
        return {
            "Responses": responses,
            "UnprocessedKeys": {},
            "ResponseMetadata": {"HTTPStatusCode": 200, "RetryAttempts": 0},
        }

    def stored(self, table: Table = UNIT) -> dict[tuple[Any, ...], dict[str, Any]]:
        return self.tables[table.name]


class AsyncStub:
    """The same stub behind coroutine methods, as an aioboto3 client has."""

    def __init__(self, stub: StubDynamo) -> None:
        self.stub = stub

    async def batch_write_item(self, **params: Any) -> dict[str, Any]:
        await asyncio.sleep(0)
        return self.stub.batch_write_item(**params)

    async def batch_get_item(self, **params: Any) -> dict[str, Any]:
        await asyncio.sleep(0)
        return self.stub.batch_get_item(**params)


FAST = RetryPolicy(base=0.0, cap=0.0, max_attempts=50)


@pytest.fixture(autouse=True)
def _layouts_checked() -> Any:
    """The stub answers only the batch operations."""
    trust_shard_layouts(Thing, Part, ThingSummary, Flat, Doc)
    yield
    forget_shard_checks()


def connect(client: Any) -> Connection:
    if getattr(client, "is_async", False) or isinstance(client, AsyncStub):
        return Connection(aclient=client, retry=FAST)
    return Connection(client=client, retry=FAST)


def ids(requests: list[Any]) -> list[tuple[str, int]]:
    return [(r.action, r.key.fields.get("n", r.key.fields.get("name"))) for r in requests]


# -- keys ---------------------------------------------------------------------------------------


def test_key_fields_are_validated_and_keys_compare_by_rendered_key() -> None:
    a = Key(Thing, n="7")
    b = Key(Thing, n=7)
    assert a == b and hash(a) == hash(b)
    assert a.fields == {"n": 7}
    assert a.item_key == {"pk": {"S": "THING#7"}, "sk": {"S": "THING"}}
    assert Key.of(Thing(n=7, text="x")) == a
    assert Key(Thing, n=8) != a
    assert Key(Part, n=7, part="p") != Key(Part, n=7, part="q")
    assert repr(a) == "Key(Thing, n=7)"
    assert {a: 1}[b] == 1


def test_key_rejects_bad_input() -> None:
    with pytest.raises(ValidationError, match="expected a dynamodel Model class"):
        Key(dict, n=1)  # type: ignore[type-var]
    with pytest.raises(ValidationError, match="needs field 'part', which is missing"):
        Key(Part, n=1)
    with pytest.raises(ValidationError, match="unexpected fields \\['text'\\]"):
        Key(Thing, n=1, text="x")
    with pytest.raises(ValidationError, match="key field 'n'"):
        Key(Thing, n="seven")


# -- write requests -----------------------------------------------------------------------------


def test_put_request_is_serialised_when_added() -> None:
    thing = Thing(n=1, text="before")
    request = put_write_request(thing)
    thing.text = "after"
    assert request.request["PutRequest"]["Item"]["text"] == {"S": "before"}
    assert request.action == "put" and request.item is thing and request.model is Thing
    assert request.table_name == "unit-batch"
    assert request.key == Key(Thing, n=1)


def test_delete_request_from_instance_or_key() -> None:
    by_instance = delete_write_request(Thing(n=1))
    by_key = delete_write_request(Key(Thing, n=1))
    assert (
        by_instance.request
        == by_key.request
        == {"DeleteRequest": {"Key": {"pk": {"S": "THING#1"}, "sk": {"S": "THING"}}}}
    )
    assert by_instance.item is not None and by_key.item is None
    with pytest.raises(ValidationError, match="expected a Key or a Model instance"):
        delete_write_request({"n": 1})  # type: ignore[arg-type]


def test_put_rejects_items_over_400_kb_naming_size_and_limit() -> None:
    message = r"item is 410,\d{3} bytes; DynamoDB's limit is 409,600"
    with pytest.raises(ItemTooLarge, match=message) as e:
        put_write_request(Thing(n=1, blob=b"x" * 410_000))
    assert e.value.limit == 409_600 and e.value.size > e.value.limit


def test_put_rejects_partial_instances_and_non_models() -> None:
    partial = Thing.from_partial_item({"n": {"N": "1"}})
    with pytest.raises(ValidationError, match="read with a projection"):
        put_write_request(partial)
    with pytest.raises(ValidationError, match="expected a dynamodel Model instance"):
        put_write_request({"n": 1})  # type: ignore[arg-type]


def test_versioned_models_are_refused_unless_the_check_is_skipped() -> None:
    doc = Doc(doc_id="d1", version=3)
    with pytest.raises(ValidationError, match=r"Doc is versioned \(Meta.version = 'version'\)"):
        put_write_request(doc)
    with pytest.raises(ValidationError, match="skip_version_check=True"):
        delete_write_request(Key(Doc, doc_id="d1"))
    with pytest.raises(ValidationError, match="versioned"):
        batch_write().put(doc)
    written = put_write_request(doc, skip_version_check=True)
    assert written.request["PutRequest"]["Item"]["version"] == {"N": "3"}  # as it is
    # no version yet: none is stored (a NULL would fail the next locked save's check)
    fresh = put_write_request(Doc(doc_id="d2"), skip_version_check=True)
    assert "version" not in fresh.request["PutRequest"]["Item"]
    assert batch_write(skip_version_check=True).delete(doc).pending[0].action == "delete"


def test_a_failed_put_adds_nothing() -> None:
    writer = batch_write()
    with pytest.raises(ItemTooLarge):
        writer.put(Thing(n=1), Thing(n=2, blob=b"x" * 500_000))
    assert writer.pending == []


# -- de-duplication and chunking ----------------------------------------------------------------


def test_last_write_wins() -> None:
    put1 = put_write_request(Thing(n=1, text="first"))
    put2 = put_write_request(Thing(n=2))
    delete1 = delete_write_request(Key(Thing, n=1))
    put1b = put_write_request(Thing(n=1, text="again"))
    other_table = put_write_request(Flat(name="1"))
    part = put_write_request(Part(n=1, part="a"))  # same partition, other sort key: another item
    kept, superseded = deduplicate([put1, put2, delete1, other_table, part, put1b])
    assert kept == [put2, other_table, part, put1b]
    assert superseded == [put1, delete1]
    kept, superseded = deduplicate([put1, delete1])
    assert kept == [delete1] and superseded == [put1]


def test_writer_pending_is_deduplicated() -> None:
    writer = batch_write()
    writer.put(Thing(n=1, text="a"), Thing(n=2)).delete(Thing(n=1))
    assert ids(writer.pending) == [("put", 2), ("delete", 1)]


def test_chunks_of_25_and_by_bytes() -> None:
    chunks = chunked(list(range(60)), max_count=25, max_bytes=10**9, size=len_1)
    assert [len(c) for c in chunks] == [25, 25, 10]
    sizes = [400, 400, 400, 100, 900, 50]
    chunks = chunked(sizes, max_count=25, max_bytes=1000, size=lambda s: s)
    assert chunks == [[400, 400], [400, 100], [900, 50]]
    with pytest.raises(ValidationError, match="an entry of 1,001 bytes exceeds the 1,000 byte"):
        chunked([1001], max_count=25, max_bytes=1000, size=lambda s: s, what="x")
    assert chunked([], max_count=25, max_bytes=1, size=len_1) == []


def len_1(_: Any) -> int:
    return 1


def test_write_call_groups_requests_by_table() -> None:
    requests = [
        put_write_request(Thing(n=1)),
        put_write_request(Flat(name="a")),
        put_write_request(Thing(n=2)),
    ]
    request = write_call(requests)
    assert request.op == "batch_write_item"
    assert list(request.params["RequestItems"]) == ["unit-batch", "unit-batch-flat"]
    assert len(request.params["RequestItems"]["unit-batch"]) == 2
    assert request.params["ReturnConsumedCapacity"] == "TOTAL"


def test_get_entries_merge_duplicate_keys() -> None:
    keys = [Key(Thing, n=1), Key(Thing, n="1"), Key(Flat, name="x"), Key(Thing, n=2)]
    unique, entries, duplicates = get_entries(keys)
    assert unique == [Key(Thing, n=1), Key(Flat, name="x"), Key(Thing, n=2)]
    assert duplicates == 1
    assert [e.table_name for e in entries] == ["unit-batch", "unit-batch-flat", "unit-batch"]
    assert entries[1].key_names == ("pk",)


# -- the chunk flow, driven by hand -------------------------------------------------------------


def unprocessed_response(requests: list[Any]) -> dict[str, Any]:
    out: dict[str, list[Any]] = {}
    for write in requests:
        out.setdefault(write.table_name, []).append(write.request)
    return {"UnprocessedItems": out, "ResponseMetadata": {"RetryAttempts": 0}}


def sent(step: Any) -> list[dict[str, Any]]:
    assert isinstance(step, Request) and step.op == "batch_write_item"
    return [e for entries in step.params["RequestItems"].values() for e in entries]


def test_unprocessed_items_are_resent_after_full_jitter_backoff() -> None:
    random.seed(3)
    writes = [put_write_request(Thing(n=i)) for i in range(5)]
    report: ChunkReport[Any] = ChunkReport(pending=list(writes))
    progress = Progress()
    flow = write_flow(report, RetryPolicy(base=0.5, cap=10), progress)
    step = next(flow)
    assert len(sent(step)) == 5
    step = flow.send(unprocessed_response(writes[3:]))
    assert isinstance(step, Sleep) and 0 <= step.seconds <= 0.5  # ceiling base * 2**0
    assert report.done == writes[:3]
    step = flow.send(None)
    assert sent(step) == [w.request for w in writes[3:]]  # only the unprocessed ones
    step = flow.send(unprocessed_response(writes[4:]))
    assert isinstance(step, Sleep) and 0 <= step.seconds <= 1.0  # ceiling base * 2**1
    step = flow.send(None)
    assert sent(step) == [writes[4].request]
    with pytest.raises(StopIteration) as done:
        flow.send({"UnprocessedItems": {}})
    assert done.value.value is report
    assert report.done == writes and report.pending == []
    assert (report.calls, report.unprocessed_retries, report.error_retries) == (3, 2, 0)
    assert not progress.stopped


def test_throttled_calls_are_retried_and_counted() -> None:
    writes = [put_write_request(Thing(n=i)) for i in range(3)]
    report: ChunkReport[Any] = ChunkReport(pending=list(writes))
    flow = write_flow(report, RetryPolicy(base=0.0), Progress())
    next(flow)
    error = ThrottledError("slow down", code="ProvisionedThroughputExceededException")
    error.retry_attempts = 2  # botocore already retried twice inside the call
    assert isinstance(flow.throw(error), Sleep)
    assert len(sent(flow.send(None))) == 3  # the whole chunk again
    with pytest.raises(StopIteration):
        flow.send({"ResponseMetadata": {"RetryAttempts": 1}})
    assert (report.calls, report.error_retries, report.botocore_retries) == (2, 1, 3)


def test_botocore_sends_count_against_the_chunk_budget() -> None:
    writes = [put_write_request(Thing(n=1))]
    report: ChunkReport[Any] = ChunkReport(pending=list(writes))
    progress = Progress()
    flow = write_flow(report, RetryPolicy(base=0.0, max_attempts=3), progress)
    next(flow)
    error = ThrottledError("slow down", code="ThrottlingException")
    error.retry_attempts = 2
    with pytest.raises(StopIteration):
        flow.throw(error)  # 3 sends already: the policy gives up
    assert report.pending == writes and report.error is error
    assert progress.stopped and progress.cause is error


def test_non_retryable_errors_stop_the_chunk_at_once() -> None:
    writes = [put_write_request(Thing(n=1))]
    report: ChunkReport[Any] = ChunkReport(pending=list(writes))
    progress = Progress()
    flow = write_flow(report, RetryPolicy(base=0.0), progress)
    next(flow)
    error = ValidationError("bad")
    with pytest.raises(StopIteration):
        flow.throw(error)
    assert report.pending == writes and report.calls == 1 and progress.cause is error


def test_the_policy_gives_up_on_items_that_stay_unprocessed() -> None:
    writes = [put_write_request(Thing(n=i)) for i in range(2)]
    report: ChunkReport[Any] = ChunkReport(pending=list(writes))
    progress = Progress()
    flow = write_flow(report, RetryPolicy(base=0.0, max_attempts=3), progress)
    step = next(flow)
    sends = 0
    while True:
        assert isinstance(step, Request)
        sends += 1
        try:
            step = flow.send(unprocessed_response(report.pending[-1:]))
        except StopIteration:
            break
        step = flow.send(None)
    assert sends == 3
    assert report.done == writes[:1] and report.pending == writes[1:]
    assert report.error is None and progress.stopped and progress.cause is None


def test_max_elapsed_bounds_the_time_spent_on_a_chunk() -> None:
    now = [0.0]
    policy = RetryPolicy(base=0.0, max_attempts=100, max_elapsed=5.0, clock=lambda: now[0])
    writes = [put_write_request(Thing(n=1))]
    report: ChunkReport[Any] = ChunkReport(pending=list(writes))
    flow = write_flow(report, policy, Progress())
    next(flow)
    assert isinstance(flow.send(unprocessed_response(writes)), Sleep)  # clock starts: t=0
    flow.send(None)
    now[0] = 6.0
    with pytest.raises(StopIteration):
        flow.send(unprocessed_response(writes))
    assert report.calls == 2 and report.pending == writes


def test_a_chunk_sends_nothing_once_another_chunk_failed() -> None:
    progress = Progress()
    progress.stop(None)
    report: ChunkReport[Any] = ChunkReport(pending=[put_write_request(Thing(n=1))])
    with pytest.raises(StopIteration):
        next(write_flow(report, RetryPolicy(), progress))
    assert report.calls == 0 and len(report.pending) == 1


def test_an_abandoned_chunk_stops_the_batch() -> None:
    progress = Progress()
    report: ChunkReport[Any] = ChunkReport(pending=[put_write_request(Thing(n=1))])
    flow = write_flow(report, RetryPolicy(), progress)
    next(flow)
    flow.close()  # what the executor does after a transport error
    assert progress.stopped and len(report.pending) == 1


# -- whole batches against the stub, sync and async ---------------------------------------------


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def flush(writer: BatchWriter, mode: str) -> Any:
    return writer.flush() if mode == "sync" else await writer.aflush()


async def get(keys: Any, mode: str, **options: Any) -> Any:
    return batch_get(keys, **options) if mode == "sync" else await abatch_get(keys, **options)


def client_for(stub: StubDynamo, mode: str) -> Any:
    return stub if mode == "sync" else AsyncStub(stub)


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_many_items_in_chunks_of_25(mode: str, concurrency: int) -> None:
    stub = StubDynamo()
    writer = batch_write(connection=connect(client_for(stub, mode)), max_concurrency=concurrency)
    writer.put(*(Thing(n=i, text=str(i)) for i in range(1000)))
    writer.put(*(Flat(name=str(i)) for i in range(10)))
    result = await flush(writer, mode)
    assert len(stub.stored()) == 1000 and len(stub.stored(UNIT_FLAT)) == 10
    sizes = [sum(len(v) for v in p["RequestItems"].values()) for _, p in stub.calls]
    assert max(sizes) == MAX_WRITE_REQUESTS and sum(sizes) == 1010
    assert result.calls == len(stub.calls) == 41 == result.chunks
    assert result.retries == 0 and len(result.written) == 1010
    assert result.consumed_capacity == {"unit-batch": 1000.0, "unit-batch-flat": 10.0}
    assert writer.pending == [] and writer.result.calls == 41


async def test_duplicates_never_reach_dynamodb(mode: str) -> None:
    stub = StubDynamo()
    writer = batch_write(connection=connect(client_for(stub, mode)))
    for round_ in range(3):
        writer.put(*(Thing(n=i, text=f"round {round_}") for i in range(30)))
    writer.delete(*(Key(Thing, n=i) for i in range(10)))
    result = await flush(writer, mode)
    assert sorted(int(k[0].split("#")[1]) for k in stub.stored()) == list(range(10, 30))
    assert {item["text"]["S"] for item in stub.stored().values()} == {"round 2"}
    assert len(result.written) == 30 and len(result.superseded) == 70
    assert ids(result.written)[-10:] == [("delete", i) for i in range(10)]


async def test_faults_are_retried_until_everything_is_written(mode: str) -> None:
    stub = StubDynamo()
    faulty = FaultInjector(
        client_for(stub, mode), seed=11, unprocessed=0.3, throttle=0.1, server_error=0.05
    )
    writer = batch_write(connection=connect(faulty))
    writer.put(*(Thing(n=i) for i in range(500)))
    result = await flush(writer, mode)
    assert len(stub.stored()) == 500 and len(result.written) == 500
    stats = faulty.stats
    assert result.calls == stats.calls
    assert result.error_retries == stats.throttled + stats.server_errors
    assert result.unprocessed_retries > 0 and stats.unprocessed > 0


async def test_giving_up_reports_exactly_what_was_and_was_not_written(mode: str) -> None:
    stub = StubDynamo()
    faulty = FaultInjector(client_for(stub, mode), seed=5, unprocessed=0.5)
    writer = batch_write(connection=connect(faulty), retry=RetryPolicy(base=0.0, max_attempts=2))
    things = [Thing(n=i) for i in range(200)]
    writer.put(*things)
    with pytest.raises(BatchWriteError) as caught:
        await flush(writer, mode)
    error = caught.value
    assert error.unprocessed and error.written
    written = {r.key for r in error.written}
    unprocessed = {r.key for r in error.unprocessed}
    assert written.isdisjoint(unprocessed) and len(written) + len(unprocessed) == 200
    stored = {Key(Thing, n=int(k[0].split("#")[1])) for k in stub.stored()}
    assert stored == written  # exactly: nothing silently dropped, nothing misreported
    assert [r.item for r in error.unprocessed] == [t for t in things if Key.of(t) in unprocessed]
    assert error.cause is None and "retry budget" in str(error)
    assert writer.result.written == error.written  # the writer's totals include them
    # resend what was not written
    faulty.unprocessed = 0
    retry = batch_write(connection=connect(faulty)).add(*error.unprocessed)
    await flush(retry, mode)
    assert len(stub.stored()) == 200


async def test_a_failed_chunk_stops_the_others_and_is_reported(mode: str) -> None:
    stub = StubDynamo()

    def reject_item_77(op: str, params: dict[str, Any]) -> None:
        for entry in params["RequestItems"].get("unit-batch", ()):
            if entry["PutRequest"]["Item"]["pk"] == {"S": "THING#77"}:
                raise client_error(op, "ValidationException", "item 77 is bad")

    stub.before = reject_item_77
    writer = batch_write(connection=connect(client_for(stub, mode)), max_concurrency=1)
    writer.put(*(Thing(n=i) for i in range(200)))
    with pytest.raises(BatchWriteError) as caught:
        await flush(writer, mode)
    error = caught.value
    assert isinstance(error.cause, ValidationError) and error.__cause__ is error.cause
    assert error.code == "ValidationException" and "item 77 is bad" in str(error)
    assert [r.key.fields["n"] for r in error.written] == list(range(75))
    assert [r.key.fields["n"] for r in error.unprocessed] == list(range(75, 200))
    assert len(stub.calls) == 4  # chunks after the failed one were never sent


async def test_transport_errors_leave_the_chunk_unprocessed(mode: str) -> None:
    stub = StubDynamo()

    def drop_connection(op: str, params: dict[str, Any]) -> None:
        if len(stub.calls) == 2:
            raise ConnectionResetError("connection reset by peer")

    stub.before = drop_connection
    writer = batch_write(connection=connect(client_for(stub, mode)), max_concurrency=1)
    writer.put(*(Thing(n=i) for i in range(100)))
    with pytest.raises(BatchWriteError) as caught:
        await flush(writer, mode)
    error = caught.value
    assert isinstance(error.cause, ConnectionResetError) and error.code is None
    assert len(error.written) == 25 and len(error.unprocessed) == 75


async def test_nothing_is_sent_when_the_block_raises(mode: str) -> None:
    stub = StubDynamo()
    writer = batch_write(connection=connect(client_for(stub, mode)))
    with pytest.raises(RuntimeError):
        if mode == "sync":
            with writer:
                writer.put(Thing(n=1))
                raise RuntimeError("boom")
        else:
            async with writer:
                writer.put(Thing(n=1))
                raise RuntimeError("boom")
    assert stub.calls == [] and len(writer.pending) == 1


async def test_context_manager_flushes_on_exit(mode: str) -> None:
    stub = StubDynamo()
    if mode == "sync":
        with batch_write(connection=connect(stub)) as writer:
            writer.put(Thing(n=1))
    else:
        async with batch_write(connection=connect(AsyncStub(stub))) as writer:
            writer.put(Thing(n=1))
    assert len(stub.stored()) == 1 and len(writer.result.written) == 1


async def test_an_empty_flush_makes_no_call(mode: str) -> None:
    stub = StubDynamo()
    result = await flush(batch_write(connection=connect(client_for(stub, mode))), mode)
    assert stub.calls == [] and result.calls == 0 and result.written == []


def test_max_concurrency_is_checked() -> None:
    with pytest.raises(ValidationError, match="max_concurrency must be an int >= 1, got 0"):
        batch_write(max_concurrency=0)
    with pytest.raises(ValidationError, match="max_concurrency"):
        batch_get([], max_concurrency=-1)


# -- batch get against the stub ------------------------------------------------------------------


def fill(stub: StubDynamo, count: int) -> None:
    batch_write(connection=connect(stub)).put(
        *(Thing(n=i, text=str(i)) for i in range(count))
    ).flush()


async def test_batch_get_order_missing_duplicates(mode: str) -> None:
    stub = StubDynamo()
    fill(stub, 300)
    stub.calls.clear()
    keys = [Key(Thing, n=i) for i in (299, 5, 1000, 5, 7, 1001, 0)]
    keys += [Thing(n=8)]  # an instance: its key is read
    result = await get(keys, mode, connection=connect(client_for(stub, mode)))
    assert [t.n for t in result.items] == [299, 5, 7, 0, 8]
    assert [t.n for t in result] == [299, 5, 7, 0, 8] and len(result) == 5
    assert result.by_key[Key(Thing, n=5)].text == "5"
    assert result.missing == [Key(Thing, n=1000), Key(Thing, n=1001)]
    assert result.duplicates == 1 and result.calls == 1


async def test_batch_get_chunks_of_100(mode: str) -> None:
    stub = StubDynamo()
    fill(stub, 250)
    stub.calls.clear()
    keys = [Key(Thing, n=i) for i in range(250)] + [Key(Flat, name="none")]
    result = await get(keys, mode, connection=connect(client_for(stub, mode)), consistent=True)
    assert [t.n for t in result.items] == list(range(250))
    sizes = sorted(sum(len(v["Keys"]) for v in p["RequestItems"].values()) for _, p in stub.calls)
    assert sizes == [51, 100, 100]
    assert all(
        t["ConsistentRead"] is True for _, p in stub.calls for t in p["RequestItems"].values()
    )


async def test_batch_get_two_models_asking_for_one_item(mode: str) -> None:
    stub = StubDynamo()
    batch_write(connection=connect(stub)).put(Thing(n=1, text="t")).flush()
    # Thing(n=1) and ThingSummary(n=1) render the same key: the item is read once, and the
    # Thing stored there is never parsed as a ThingSummary
    with pytest.raises(EntityMismatch) as caught:
        await get(
            [Key(ThingSummary, n=1), Key(Thing, n=1)],
            mode,
            connection=connect(client_for(stub, mode)),
        )
    assert (caught.value.expected, caught.value.stored) == ("ThingSummary", "Thing")
    assert len(stub.calls[-1][1]["RequestItems"]["unit-batch"]["Keys"]) == 1


async def test_batch_get_retries_unprocessed_keys(mode: str) -> None:
    stub = StubDynamo()
    fill(stub, 400)
    faulty = FaultInjector(client_for(stub, mode), seed=2, unprocessed=0.3, throttle=0.1)
    keys = [Key(Thing, n=i) for i in range(410)]
    result = await get(keys, mode, connection=connect(faulty))
    assert [t.n for t in result.items] == list(range(400))
    assert [k.fields["n"] for k in result.missing] == list(range(400, 410))
    assert result.unprocessed_retries > 0 and result.error_retries == faulty.stats.throttled


async def test_batch_get_gives_up_with_what_it_read(mode: str) -> None:
    stub = StubDynamo()
    fill(stub, 100)
    faulty = FaultInjector(client_for(stub, mode), seed=4, unprocessed=0.5)
    keys = [Key(Thing, n=i) for i in range(120)]
    with pytest.raises(BatchGetError) as caught:
        await get(
            keys, mode, connection=connect(faulty), retry=RetryPolicy(base=0.0, max_attempts=2)
        )
    error = caught.value
    read = set(error.result.by_key) | set(error.result.missing)
    assert read.isdisjoint(error.unprocessed) and len(read) + len(error.unprocessed) == 120
    assert error.unprocessed == [k for k in keys if k not in read]  # request order
    assert all(k.fields["n"] >= 100 for k in error.result.missing)


def test_batch_get_wants_an_iterable_of_keys() -> None:
    with pytest.raises(ValidationError, match="iterable of keys"):
        batch_get(Key(Thing, n=1))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="expected a Key or a Model instance"):
        batch_get([{"n": 1}])  # type: ignore[list-item]


def test_service_error_on_a_get_is_reported() -> None:
    stub = StubDynamo()

    def fail(op: str, params: dict[str, Any]) -> None:
        raise client_error(op, "InternalServerError", "boom", 500)

    stub.before = fail
    with pytest.raises(BatchGetError) as caught:
        batch_get(
            [Key(Thing, n=1)],
            connection=connect(stub),
            retry=RetryPolicy(base=0.0, max_attempts=3),
        )
    assert isinstance(caught.value.cause, ServiceError) and len(stub.calls) == 3
    assert caught.value.unprocessed == [Key(Thing, n=1)]


async def test_a_cancelled_flush_keeps_what_was_not_written() -> None:
    stub = StubDynamo()
    stalled = asyncio.Event()

    class Stalling(AsyncStub):
        async def batch_write_item(self, **params: Any) -> dict[str, Any]:
            if len(stub.calls) == 2 and not stalled.is_set():
                stalled.set()
                await asyncio.sleep(60)
            return await super().batch_write_item(**params)

    writer = batch_write(connection=connect(Stalling(stub)), max_concurrency=1)
    writer.put(*(Thing(n=i) for i in range(100)))
    task = asyncio.create_task(writer.aflush())
    await stalled.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [r.key.fields["n"] for r in writer.result.written] == list(range(50))
    assert [r.key.fields["n"] for r in writer.pending] == list(range(50, 100))
    await writer.aflush()
    assert len(stub.stored()) == 100
