"""Unit tests for optimistic locking (``Meta.version``), no server: the exact version conditions
and updates each write sends, conflict classification, refusals before sending, and the
``retry_on_conflict`` / ``save(force=True)`` flows driven through stub clients (sync and async)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import throw_into
from pydantic import ConfigDict

from dynamodel import (
    Attr,
    ConditionFailed,
    Connection,
    ItemNotFound,
    Model,
    RetryPolicy,
    Table,
    ValidationError as DMValidationError,
)
from dynamodel.core.errors import VersionConflict
from dynamodel.core.flows import Request, Sleep
from dynamodel.ops import items as R, versioning
from dynamodel.ops.locking import aretry_on_conflict, retry_flow, retry_on_conflict
from dynamodel.ops.shard_guard import forget_shard_checks
from dynamodel.testing import trust_shard_layouts

LOCK = Table("lock-unit")


class Doc(Model):
    class Meta:
        table = LOCK
        pk = "DOC#{doc_id}"
        sk = "DOC"
        version = "version"

    doc_id: str
    title: str = ""
    version: int | None = None


class Counter(Model):
    """A version field typed plain ``int``: 0 means never saved."""

    class Meta:
        table = LOCK
        pk = "COUNTER#{name}"
        sk = "COUNTER"
        version = "rev"

    name: str
    value: int = 0
    rev: int = 0


class Frozen(Model):
    model_config = ConfigDict(frozen=True)

    class Meta:
        table = LOCK
        pk = "FROZEN#{fid}"
        sk = "F"
        version = "version"

    fid: str
    version: int = 0


class Plain(Model):
    class Meta:
        table = LOCK
        pk = "PLAIN#{pid}"
        sk = "P"

    pid: str
    n: int = 0


KEY = {"pk": {"S": "DOC#d1"}, "sk": {"S": "DOC"}}


def stored(version: int | None, title: str = "stored") -> dict[str, Any]:
    item: dict[str, Any] = {
        "doc_id": {"S": "d1"},
        "title": {"S": title},
        "pk": {"S": "DOC#d1"},
        "sk": {"S": "DOC"},
        "_type": {"S": "Doc"},
    }
    if version is not None:
        item["version"] = {"N": str(version)}
    return item


class Recorder:
    """A stand-in boto3 client: records every call, answers from a script."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answers: list[Any] = []

    def __getattr__(self, op: str) -> Any:
        if op.startswith("__"):
            raise AttributeError(op)

        def method(**params: Any) -> Any:
            self.calls.append((op, params))
            answer = self.answers.pop(0) if self.answers else {}
            if isinstance(answer, BaseException):
                raise answer
            return answer

        return method

    @property
    def ops(self) -> list[str]:
        return [op for op, _ in self.calls]


class AsyncRecorder(Recorder):
    def __getattr__(self, op: str) -> Any:
        sync = super().__getattr__(op)

        async def method(**params: Any) -> Any:
            return sync(**params)

        return method


def client_error(code: str, op: str = "PutItem", **extra: Any) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": f"{code} happened"},
        "ResponseMetadata": {"HTTPStatusCode": 400, "RetryAttempts": 0},
    }
    response.update(extra)
    return ClientError(response, op)  # type: ignore[arg-type]


def conflict_error(item: dict[str, Any] | None, op: str = "PutItem") -> ClientError:
    extra = {"Item": item} if item is not None else {}
    return client_error("ConditionalCheckFailedException", op, **extra)


@pytest.fixture
def stub() -> Iterator[tuple[Recorder, AsyncRecorder]]:
    """Bind LOCK to recorder clients (sync and async) with a zero-wait retry policy."""
    sync, async_ = Recorder(), AsyncRecorder()
    connection = Connection(client=sync, aclient=async_, retry=RetryPolicy(base=0, cap=0))
    LOCK.bind(connection=connection)
    try:
        yield sync, async_
    finally:
        LOCK.unbind()


@pytest.fixture(autouse=True)
def _layouts_checked() -> Iterator[None]:
    """The recorders and hand-driven flows here answer only the operations' own requests."""
    trust_shard_layouts(Doc, Counter, Frozen, Plain)
    yield
    forget_shard_checks()


# -- the requests each write sends ---------------------------------------------------------------


def test_put_of_a_new_item_requires_no_stored_version_and_writes_1() -> None:
    request, check = R.build_put(Doc(doc_id="d1"))
    assert check == versioning.VersionCheck("version", None, new=1)
    assert request.params["Item"]["version"] == {"N": "1"}
    assert request.params["ConditionExpression"] == "attribute_not_exists(#n0)"
    assert request.params["ExpressionAttributeNames"] == {"#n0": "version"}
    assert request.params["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"


def test_put_of_a_read_item_requires_its_version_and_writes_the_next() -> None:
    request = R.put_request(Doc(doc_id="d1", version=4), Attr("title") == "old")
    params = request.params
    assert params["Item"]["version"] == {"N": "5"}
    assert params["ConditionExpression"] == "(#n0 = :v0) AND (#n1 = :v1)"  # version first, AND
    assert params["ExpressionAttributeNames"] == {"#n0": "version", "#n1": "title"}
    assert params["ExpressionAttributeValues"] == {":v0": {"N": "4"}, ":v1": {"S": "old"}}


def test_int_version_zero_means_new_and_alias_is_the_stored_name() -> None:
    params = R.put_request(Counter(name="c")).params
    assert params["Item"]["rev"] == {"N": "1"}
    assert params["ConditionExpression"] == "attribute_not_exists(#n0)"
    assert params["ExpressionAttributeNames"] == {"#n0": "rev"}


def test_update_checks_and_sets_the_next_version() -> None:
    known = Doc(doc_id="d1", version=2).__dict__
    params = R.update_request(Doc, known, [Attr("title").set("t")], None, False).params
    assert params["UpdateExpression"] == "SET #n0 = :v0, #n1 = :v1, #n2 = :v2"
    names, values = params["ExpressionAttributeNames"], params["ExpressionAttributeValues"]
    assert (names["#n2"], values[":v2"]) == ("version", {"N": "3"})
    assert params["ConditionExpression"] == (
        "(attribute_exists(#n3)) AND ((attribute_not_exists(#n1)) OR (#n1 = :v3)) AND (#n2 = :v4)"
    )
    assert (names["#n3"], values[":v4"]) == ("pk", {"N": "2"})


def test_update_by_key_and_forced_update_increment_without_a_check() -> None:
    by_key = R.update_request(Doc, {"doc_id": "d1"}, [Attr("title").set("t")], None, False)
    known = Doc(doc_id="d1", version=2).__dict__
    version = versioning.update_version(Doc, known, check=False)
    forced = R.update_request(Doc, known, [Attr("title").set("t")], None, False, version)
    for request in (by_key, forced):
        params = request.params
        assert "#n2 = if_not_exists(#n2, :v2) + :v3" in params["UpdateExpression"]
        assert params["ExpressionAttributeNames"]["#n2"] == "version"
        assert params["ExpressionAttributeValues"][":v2"] == {"N": "0"}
        assert params["ExpressionAttributeValues"][":v3"] == {"N": "1"}
        # existence (of this entity's item) only
        assert params["ConditionExpression"] == (
            "(attribute_exists(#n3)) AND ((attribute_not_exists(#n1)) OR (#n1 = :v4))"
        )


def test_delete_of_an_instance_checks_its_version() -> None:
    check = versioning.check_version(Doc(doc_id="d1", version=7))
    params = R.delete_request(Doc, KEY, Attr("title") == "x", check).params
    assert params["ConditionExpression"] == (
        "((attribute_not_exists(#n0)) OR (#n0 = :v0)) AND (#n1 = :v1) AND (#n2 = :v2)"
    )
    assert params["ExpressionAttributeNames"] == {"#n0": "_type", "#n1": "version", "#n2": "title"}
    assert params["ExpressionAttributeValues"][":v1"] == {"N": "7"}
    assert versioning.check_version(Doc(doc_id="d1", version=7), force=True) is None


def test_unversioned_models_are_unchanged() -> None:
    assert versioning.put_version(Plain(pid="p")) is None
    assert versioning.check_version(Plain(pid="p")) is None
    assert "ConditionExpression" not in R.put_request(Plain(pid="p")).params


# -- refusals before sending ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "action", [Attr("version").set(9), Attr("version").add(1), Attr("version").remove()]
)
def test_updates_cannot_touch_the_version(stub: Any, action: Any) -> None:
    sync, _ = stub
    with pytest.raises(DMValidationError, match="version"):
        Doc(doc_id="d1", version=1).update(action)
    with pytest.raises(DMValidationError, match="version"):
        Doc.update_item({"doc_id": "d1"}, [action])
    assert sync.calls == []


def test_the_version_field_cannot_be_in_a_key_template() -> None:
    with pytest.raises(DMValidationError, match=r"version field 'v'.*sk template"):

        class Bad(Model):
            class Meta:
                table = Table("lock-bad")
                pk = "B#{bid}"
                sk = "V#{v}"
                version = "v"

            bid: str
            v: int = 0


def test_negative_or_unread_versions_are_refused(stub: Any) -> None:
    sync, _ = stub
    with pytest.raises(DMValidationError, match=">= 0"):
        Doc(doc_id="d1", version=-1).save()
    sync.answers.append(
        {"Item": {"pk": {"S": "DOC#d1"}, "sk": {"S": "DOC"}, "doc_id": {"S": "d1"}}}
    )
    partial = Doc.get(doc_id="d1", projection=["doc_id", "title"])
    with pytest.raises(DMValidationError, match="without its version field"):
        partial.update(Attr("title").set("x"))
    with pytest.raises(DMValidationError, match="without its version field"):
        partial.delete()
    assert sync.ops == ["get_item"]
    sync.answers.append({"Attributes": stored(2, "x")})
    partial.update(Attr("title").set("x"), force=True)  # forced: the version is not needed
    assert sync.ops == ["get_item", "update_item"]


# -- conflicts: classification and what they carry -----------------------------------------------


def test_a_stale_save_is_a_version_conflict_with_the_stored_item(stub: Any) -> None:
    sync, _ = stub
    sync.answers.append(conflict_error(stored(5, "winner")))
    doc = Doc(doc_id="d1", title="mine", version=4)
    with pytest.raises(VersionConflict) as info:
        doc.save()
    error = info.value
    assert isinstance(error, ConditionFailed)
    assert (error.expected, error.actual) == (4, 5)
    assert error.current == Doc(doc_id="d1", title="winner", version=5)
    assert error.item == stored(5, "winner")
    assert "Doc {'doc_id': 'd1'}" in str(error) and "expected version 4" in str(error)
    assert "stored version 5" in str(error)
    assert isinstance(error.__cause__, ClientError)
    assert doc.version == 4  # unchanged by a failed write


def test_a_failed_user_condition_is_not_a_version_conflict(stub: Any) -> None:
    sync, _ = stub
    sync.answers.append(conflict_error(stored(4)))  # stored version is the expected one
    with pytest.raises(ConditionFailed) as info:
        Doc(doc_id="d1", version=4).save(condition=Attr("title") == "other")
    assert not isinstance(info.value, VersionConflict)
    assert info.value.current == Doc(doc_id="d1", title="stored", version=4)


def test_new_item_racing_another_creator_is_a_conflict(stub: Any) -> None:
    sync, _ = stub
    sync.answers.append(conflict_error(stored(1)))
    with pytest.raises(VersionConflict) as info:
        Doc(doc_id="d1").save()
    assert (info.value.expected, info.value.actual) == (None, 1)
    assert "expected no stored version" in str(info.value)


def test_deleting_an_item_someone_else_deleted_is_a_conflict(stub: Any) -> None:
    sync, _ = stub
    sync.answers.append(conflict_error(None, "DeleteItem"))
    with pytest.raises(VersionConflict) as info:
        Doc(doc_id="d1", version=3).delete()
    assert (info.value.expected, info.value.actual, info.value.current) == (3, None, None)
    assert "no stored item" in str(info.value)


def test_update_conflicts_and_missing_items(stub: Any) -> None:
    sync, _ = stub
    sync.answers += [conflict_error(stored(9), "UpdateItem"), conflict_error(None, "UpdateItem")]
    with pytest.raises(VersionConflict) as info:
        Doc(doc_id="d1", version=8).update(Attr("title").set("x"))
    assert (info.value.expected, info.value.actual) == (8, 9)
    with pytest.raises(ItemNotFound) as missing:  # as for unversioned models: it must exist
        Doc(doc_id="d1", version=8).update(Attr("title").set("x"))
    assert missing.value.key == {"doc_id": "d1"}  # key fields, as for get()


# -- versions recorded on instances ---------------------------------------------------------------


def test_save_and_create_record_the_written_version(stub: Any) -> None:
    sync, _ = stub
    doc = Doc(doc_id="d1")
    doc.save()
    assert doc.version == 1 and "version" in doc.model_fields_set
    doc.save()
    assert doc.version == 2
    assert sync.calls[1][1]["ExpressionAttributeValues"] == {":v0": {"N": "1"}}
    fresh = Doc(doc_id="d2", version=7)
    fresh.create()  # create always starts at 1: its check is attribute_not_exists(pk)
    assert fresh.version == 1
    assert sync.calls[2][1]["Item"]["version"] == {"N": "1"}
    assert sync.calls[2][1]["ConditionExpression"] == "attribute_not_exists(#n0)"
    assert sync.calls[2][1]["ExpressionAttributeNames"] == {"#n0": "pk"}
    frozen = Frozen(fid="f")
    frozen.save()  # frozen pydantic models get their version too
    assert frozen.version == 1


async def test_async_writes_are_checked_the_same_way(stub: Any) -> None:
    sync, async_ = stub
    doc = Doc(doc_id="d1", version=2)
    await doc.asave()
    assert doc.version == 3
    async_.answers += [conflict_error(stored(9), "UpdateItem"), conflict_error(stored(9), "Del")]
    with pytest.raises(VersionConflict):
        await doc.aupdate(Attr("title").set("x"))
    with pytest.raises(VersionConflict):
        await doc.adelete()
    await doc.adelete(force=True)
    # no version check: only that the item, if any, is a Doc
    assert (
        async_.calls[-1][1]["ConditionExpression"] == "(attribute_not_exists(#n0)) OR (#n0 = :v0)"
    )
    assert sync.calls == []


# -- save(force=True) -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_forced_save_adopts_the_stored_version(stub: Any, mode: str) -> None:
    recorder = stub[0] if mode == "sync" else stub[1]
    recorder.answers += [conflict_error(stored(7)), conflict_error(stored(8)), {}]
    doc = Doc(doc_id="d1", title="mine", version=2)
    if mode == "sync":
        doc.save(force=True)
    else:
        await doc.asave(force=True)
    expected = [c[1]["ExpressionAttributeValues"][":v0"] for c in recorder.calls]
    written = [c[1]["Item"]["version"] for c in recorder.calls]
    assert expected == [{"N": "2"}, {"N": "7"}, {"N": "8"}]
    assert written == [{"N": "3"}, {"N": "8"}, {"N": "9"}]
    assert doc.version == 9


def test_forced_save_still_honours_the_user_condition(stub: Any) -> None:
    sync, _ = stub
    sync.answers.append(conflict_error(stored(2)))  # version matches: the condition failed
    with pytest.raises(ConditionFailed) as info:
        Doc(doc_id="d1", version=2).save(condition=Attr("title") == "x", force=True)
    assert not isinstance(info.value, VersionConflict)
    assert len(sync.calls) == 1


def test_forced_save_of_an_unversioned_model_is_a_plain_put(stub: Any) -> None:
    sync, _ = stub
    Plain(pid="p").save(force=True)
    assert "ConditionExpression" not in sync.calls[0][1]


# -- retry_on_conflict ----------------------------------------------------------------------------


def bump(doc: Doc) -> None:
    doc.title += "+"


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_retry_reapplies_fn_to_the_item_returned_with_the_conflict(
    stub: Any, mode: str
) -> None:
    recorder = stub[0] if mode == "sync" else stub[1]
    recorder.answers += [{"Item": stored(1, "a")}, conflict_error(stored(2, "b")), {}]
    seen: list[tuple[str, int | None]] = []

    def fn(doc: Doc) -> Doc:
        seen.append((doc.title, doc.version))
        return doc.model_copy(update={"title": doc.title + "!"})

    if mode == "sync":
        result = retry_on_conflict(Doc, {"doc_id": "d1"}, fn)
    else:
        result = await aretry_on_conflict(Doc, {"doc_id": "d1"}, fn)
    assert seen == [("a", 1), ("b", 2)]
    assert recorder.ops == ["get_item", "put_item", "put_item"]  # no second read
    assert recorder.calls[0][1]["ConsistentRead"] is True
    assert recorder.calls[2][1]["Item"]["title"] == {"S": "b!"}
    assert result == Doc(doc_id="d1", title="b!", version=3)


def test_retry_flow_retries_at_once_then_backs_off_and_rereads() -> None:
    policy = RetryPolicy(base=1.0, cap=1.0)
    flow = retry_flow(Doc, {"doc_id": "d1"}, bump, 3, policy)
    step = next(flow)
    assert isinstance(step, Request) and step.op == "get_item"
    step = flow.send({"Item": stored(1)})
    assert isinstance(step, Request) and step.op == "put_item"
    # first conflict: the returned item is fresh, so fn is reapplied to it at once
    step = throw_into(
        flow, VersionConflict("lost", item=stored(2), current=Doc.from_item(stored(2))), policy
    )
    assert isinstance(step, Request) and step.op == "put_item"
    assert step.params["ExpressionAttributeValues"] == {":v0": {"N": "2"}}
    # later conflicts: back off, then read again (the returned item is stale after a sleep)
    step = throw_into(
        flow, VersionConflict("lost", item=stored(3), current=Doc.from_item(stored(3))), policy
    )
    assert isinstance(step, Sleep) and 0 <= step.seconds <= 1.0
    step = flow.send(None)
    assert isinstance(step, Request) and step.op == "get_item"
    step = flow.send({"Item": stored(5)})
    assert isinstance(step, Request) and step.op == "put_item"
    with pytest.raises(StopIteration) as done:
        flow.send({})
    assert done.value.value.version == 6


def test_retry_gives_up_after_the_attempts(stub: Any) -> None:
    sync, _ = stub
    sync.answers += [
        {"Item": stored(1)},
        conflict_error(stored(2)),
        conflict_error(stored(3)),
        {"Item": stored(3)},
        conflict_error(stored(4)),
    ]
    with pytest.raises(VersionConflict) as info:
        retry_on_conflict(Doc, {"doc_id": "d1"}, bump, attempts=3)
    assert sync.ops == ["get_item", "put_item", "put_item", "get_item", "put_item"]
    assert "gave up after 3 attempts" in "".join(info.value.__notes__)
    assert info.value.actual == 4


def test_retry_starts_from_a_given_instance_without_reading(stub: Any) -> None:
    sync, _ = stub
    mine = Doc(doc_id="d1", title="a", version=1)
    result = retry_on_conflict(Doc, mine, bump)
    assert sync.ops == ["put_item"]
    assert result.title == "a+" and result.version == 2
    assert mine == Doc(doc_id="d1", title="a", version=1)  # the caller's object is untouched


def test_retry_re_reads_when_the_conflict_carries_no_item(stub: Any) -> None:
    sync, _ = stub
    sync.answers += [{"Item": stored(1)}, conflict_error(None), {"Item": stored(3)}, {}]
    assert retry_on_conflict(Doc, {"doc_id": "d1"}, bump).version == 4
    assert sync.ops == ["get_item", "put_item", "get_item", "put_item"]


def test_retry_raises_item_not_found(stub: Any) -> None:
    sync, _ = stub
    with pytest.raises(ItemNotFound):
        retry_on_conflict(Doc, {"doc_id": "d1"}, bump)
    assert sync.ops == ["get_item"]


def test_errors_from_fn_abort_without_writing(stub: Any) -> None:
    sync, _ = stub
    sync.answers.append({"Item": stored(1)})

    def refuse(doc: Doc) -> None:
        raise RuntimeError("insufficient funds")

    with pytest.raises(RuntimeError, match="insufficient"):
        retry_on_conflict(Doc, {"doc_id": "d1"}, refuse)
    assert sync.ops == ["get_item"]


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (lambda d: d.model_copy(update={"doc_id": "other"}), "changed the key"),
        (lambda d: d.model_copy(update={"version": 99}), "changed Doc.version"),
        (lambda d: Plain(pid="x"), "must return a Doc"),
    ],
)
def test_fn_must_keep_model_key_and_version(stub: Any, fn: Any, match: str) -> None:
    sync, _ = stub
    sync.answers.append({"Item": stored(1)})
    with pytest.raises(DMValidationError, match=match):
        retry_on_conflict(Doc, {"doc_id": "d1"}, fn)
    assert sync.ops == ["get_item"]


async def test_bad_retry_arguments_send_nothing(stub: Any) -> None:
    sync, async_ = stub
    with pytest.raises(DMValidationError, match=r"Meta\.version"):
        retry_on_conflict(Plain, {"pid": "p"}, lambda p: None)
    with pytest.raises(DMValidationError, match="attempts"):
        retry_on_conflict(Doc, {"doc_id": "d1"}, bump, attempts=0)
    with pytest.raises(DMValidationError, match="unexpected fields"):
        retry_on_conflict(Doc, {"nope": 1}, bump)
    with pytest.raises(DMValidationError, match="doc_id"):
        await aretry_on_conflict(Doc, {}, bump)
    with pytest.raises(DMValidationError, match="Counter instance"):
        await aretry_on_conflict(Doc, Counter(name="c"), bump)  # type: ignore[arg-type]
    assert sync.calls == [] and async_.calls == []
