"""Unit tests for the request builders and for what the executors send (through stub clients,
no server): exact parameters, client-side refusals (nothing sent) and error mapping."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from pydantic import Field

from dynamodel import (
    GSI,
    Attr,
    ConditionFailed,
    Connection,
    ItemNotFound,
    ItemTooLarge,
    Model,
    RetryPolicy,
    ServiceError,
    Table,
    TableNotFound,
    ThrottledError,
    ValidationError,
)
from dynamodel.core.codec import MAX_ITEM_BYTES, item_size
from dynamodel.ops import items as R
from dynamodel.ops.shard_guard import forget_shard_checks
from dynamodel.testing import trust_shard_layouts

REQ = Table(
    "req-unit",
    indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk"), GSI("gsi2", pk="gsi2pk")],
)


class Doc(Model):
    class Meta:
        table = REQ
        pk = "DOC#{doc_id}"
        sk = "V#{version}"
        indexes = {"gsi1": ("OWNER#{owner}", "{status}#{version}"), "gsi2": "TAG#{tag}"}

    doc_id: str
    version: int
    owner: str
    status: str = "draft"
    tag: str | None = None
    title: str = Field(default="", alias="name")
    body: bytes = b""


KEY = {"pk": {"S": "DOC#d1"}, "sk": {"S": "V#00000000000000000003"}}
ITEM = {
    "doc_id": {"S": "d1"},
    "version": {"N": "3"},
    "owner": {"S": "ann"},
    "status": {"S": "draft"},
    "tag": {"NULL": True},
    "name": {"S": "T"},
    "body": {"B": b""},
    "pk": {"S": "DOC#d1"},
    "sk": {"S": "V#00000000000000000003"},
    "gsi1pk": {"S": "OWNER#ann"},
    "gsi1sk": {"S": "draft#00000000000000000003"},
    "_type": {"S": "Doc"},
}


def doc(**extra: Any) -> Doc:
    return Doc(doc_id="d1", version=3, owner="ann", title="T", **extra)


class Recorder:
    """A stand-in boto3 client: records every call, answers from a script."""

    def __init__(self, *answers: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answers = list(answers)

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


@pytest.fixture
def stub() -> Any:
    """Bind REQ to recorder clients (sync and async) for one test."""
    sync, async_ = Recorder(), AsyncRecorder()
    REQ.bind(connection=Connection(client=sync, aclient=async_, retry=RetryPolicy(base=0, cap=0)))
    trust_shard_layouts(Doc, Tagged)  # the recorders see only each operation's own requests
    try:
        yield sync, async_
    finally:
        REQ.unbind()
        forget_shard_checks()


# -- exact request parameters ------------------------------------------------------------------


def test_put_request() -> None:
    request = R.put_request(doc())
    assert request.op == "put_item"
    assert request.params == {"TableName": "req-unit", "Item": ITEM}
    assert not request.control


def test_put_request_with_condition() -> None:
    request = R.put_request(doc(), (Attr("status") == "draft") & Attr("title").not_exists())
    assert request.params == {
        "TableName": "req-unit",
        "Item": ITEM,
        "ConditionExpression": "(#n0 = :v0) AND (attribute_not_exists(#n1))",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ExpressionAttributeNames": {"#n0": "status", "#n1": "name"},
        "ExpressionAttributeValues": {":v0": {"S": "draft"}},
    }


def test_create_condition() -> None:
    condition = R.not_exists_condition(doc(), Attr("owner") == "ann")
    request = R.put_request(doc(), condition)
    assert request.params["ConditionExpression"] == ("(attribute_not_exists(#n0)) AND (#n1 = :v0)")
    assert request.params["ExpressionAttributeNames"] == {"#n0": "pk", "#n1": "owner"}


def test_put_request_with_tag_sets_sparse_index() -> None:
    item = R.put_request(doc(tag="blue")).params["Item"]
    assert item["gsi2pk"] == {"S": "TAG#blue"}
    assert "gsi2sk" not in item
    assert "gsi2pk" not in R.put_request(doc()).params["Item"]


def test_get_request() -> None:
    assert R.get_request(Doc, KEY).params == {"TableName": "req-unit", "Key": KEY}
    # "a.b" is not declared by Doc: raw=True names it unchecked
    projection = ["title", "status", Attr("a.b", raw=True)]
    request = R.get_request(Doc, KEY, consistent=True, projection=projection)
    assert request.op == "get_item"
    assert request.params == {
        "TableName": "req-unit",
        "Key": KEY,
        "ConsistentRead": True,
        "ProjectionExpression": "#n0, #n1, #n2.#n3",
        "ExpressionAttributeNames": {"#n0": "name", "#n1": "status", "#n2": "a", "#n3": "b"},
    }


def test_delete_request() -> None:
    # a delete by key never removes another entity's item that renders the same key
    assert R.delete_request(Doc, KEY, None).params == {
        "TableName": "req-unit",
        "Key": KEY,
        "ReturnValues": "ALL_OLD",
        "ConditionExpression": "(attribute_not_exists(#n0)) OR (#n0 = :v0)",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ExpressionAttributeNames": {"#n0": "_type"},
        "ExpressionAttributeValues": {":v0": {"S": "Doc"}},
    }
    assert R.delete_request(Doc, KEY, Attr("title") == "#x = :y").params == {
        "TableName": "req-unit",
        "Key": KEY,
        "ReturnValues": "ALL_OLD",
        "ConditionExpression": "((attribute_not_exists(#n0)) OR (#n0 = :v0)) AND (#n1 = :v1)",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ExpressionAttributeNames": {"#n0": "_type", "#n1": "name"},
        "ExpressionAttributeValues": {":v0": {"S": "Doc"}, ":v1": {"S": "#x = :y"}},
    }


def test_update_request_rewrites_index_keys() -> None:
    request = R.update_request(Doc, doc().__dict__, [Attr("status").set("final")], None, False)
    assert request.op == "update_item"
    assert request.params == {
        "TableName": "req-unit",
        "Key": KEY,
        "UpdateExpression": "SET #n0 = :v0, #n1 = :v1, #n2 = :v2, #n3 = :v3",
        "ReturnValues": "ALL_NEW",
        "ConditionExpression": "(attribute_exists(#n4)) AND ((attribute_not_exists(#n3)) OR "
        "(#n3 = :v4))",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ExpressionAttributeNames": {
            "#n0": "status",
            "#n1": "gsi1pk",
            "#n2": "gsi1sk",
            "#n3": "_type",
            "#n4": "pk",
        },
        "ExpressionAttributeValues": {
            ":v0": {"S": "final"},
            ":v1": {"S": "OWNER#ann"},
            ":v2": {"S": "final#00000000000000000003"},
            ":v3": {"S": "Doc"},
            ":v4": {"S": "Doc"},
        },
    }


def test_update_request_upsert_with_condition_and_sparse_removal() -> None:
    request = R.update_request(
        Doc,
        {"doc_id": "d1", "version": 3},
        [Attr("title").set("x"), Attr("tag").remove()],
        Attr("owner") == "ann",
        True,
    )
    # upsert: no existence condition, and the key fields are written so a new item parses
    assert request.params == {
        "TableName": "req-unit",
        "Key": KEY,
        "UpdateExpression": "SET #n0 = :v0, #n1 = :v1, #n2 = :v2, #n3 = :v3 REMOVE #n4, #n5",
        "ReturnValues": "ALL_NEW",
        "ConditionExpression": "((attribute_not_exists(#n1)) OR (#n1 = :v4)) AND (#n6 = :v5)",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ExpressionAttributeNames": {
            "#n0": "name",
            "#n1": "_type",
            "#n2": "doc_id",
            "#n3": "version",
            "#n4": "tag",
            "#n5": "gsi2pk",
            "#n6": "owner",
        },
        "ExpressionAttributeValues": {
            ":v0": {"S": "x"},
            ":v1": {"S": "Doc"},
            ":v2": {"S": "d1"},
            ":v3": {"N": "3"},
            ":v4": {"S": "Doc"},
            ":v5": {"S": "ann"},
        },
    }


def test_update_set_none_removes_sparse_index_key() -> None:
    request = R.update_request(Doc, doc(tag="t").__dict__, [Attr("tag").set(None)], None, False)
    assert request.params["UpdateExpression"] == "SET #n0 = :v0, #n1 = :v1 REMOVE #n2"
    assert request.params["ExpressionAttributeNames"]["#n2"] == "gsi2pk"
    assert request.params["ExpressionAttributeValues"][":v0"] == {"NULL": True}


def test_update_values_validated_through_field_types() -> None:
    with pytest.raises(ValidationError, match="title"):
        R.update_request(Doc, doc().__dict__, [Attr("title").set(["not", "a", "str"])], None, False)
    request = R.update_request(Doc, doc().__dict__, [Attr("body").set("text")], None, False)
    assert request.params["ExpressionAttributeValues"][":v0"] == {"B": b"text"}


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (Attr("doc_id").set("other"), "primary key"),
        (Attr("version").add(1), "primary key"),
        (Attr("pk").set("X"), "managed"),
        (Attr("gsi1pk").remove(), "managed"),
        (Attr("_type").set("Other"), "managed"),
        (Attr("status").set(Attr("owner")), "expression"),
    ],
)
def test_update_refusals(action: Any, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        R.update_request(Doc, doc().__dict__, [action], None, False)


def test_update_item_needs_fields_of_rewritten_index() -> None:
    with pytest.raises(ValidationError, match="owner"):
        R.update_request(
            Doc, {"doc_id": "d1", "version": 3}, [Attr("status").set("x")], None, False
        )


def test_update_refuses_non_actions() -> None:
    with pytest.raises(ValidationError):
        R.update_request(Doc, doc().__dict__, [Attr("a") == 1], None, False)  # type: ignore[list-item]


# -- nothing is sent when the request is refused -------------------------------------------------


def big_doc() -> Doc:
    return doc(body=b"x" * MAX_ITEM_BYTES)


def test_item_too_large_is_refused_before_sending(stub: Any) -> None:
    sync, _ = stub
    with pytest.raises(ItemTooLarge) as info:
        big_doc().save()
    with pytest.raises(ItemTooLarge):
        big_doc().create()
    assert sync.calls == []
    error = info.value
    assert error.size == item_size(ITEM) + MAX_ITEM_BYTES  # ITEM's body is empty
    assert error.size > MAX_ITEM_BYTES == error.limit
    assert f"{error.size:,}" in str(error)
    assert "Doc" in str(error)


async def test_item_too_large_is_refused_before_sending_async(stub: Any) -> None:
    sync, async_ = stub
    with pytest.raises(ItemTooLarge):
        await big_doc().asave()
    with pytest.raises(ItemTooLarge):
        await big_doc().acreate()
    assert sync.calls == [] and async_.calls == []


def test_item_just_under_the_limit_is_sent(stub: Any) -> None:
    sync, _ = stub
    room = MAX_ITEM_BYTES - item_size(ITEM)
    doc(body=b"x" * room).save()
    assert [op for op, _ in sync.calls] == ["put_item"]
    with pytest.raises(ItemTooLarge):
        doc(body=b"x" * (room + 1)).save()
    assert len(sync.calls) == 1


def test_invalid_requests_send_nothing(stub: Any) -> None:
    sync, _ = stub
    with pytest.raises(ValidationError):
        Doc.get(doc_id="d1")  # version missing
    with pytest.raises(ValidationError):
        Doc.update_item({"doc_id": "d1", "version": 3}, [Attr("doc_id").set("x")])
    with pytest.raises(ValidationError):
        Doc.query(doc_id="d1").filter(Attr("a").is_in(*range(101)))
    with pytest.raises(ValidationError):
        doc().update(Attr("a").set(1), Attr("a.b").set(2))
    with pytest.raises(ValidationError):
        Doc.query(doc_id="d1").start_from("not a cursor")
    assert sync.calls == []


def test_partial_models_refuse_save(stub: Any) -> None:
    sync, _ = stub
    sync.answers.append({"Item": {"name": {"S": "T"}, "status": {"S": "draft"}}})
    partial = Doc.get(doc_id="d1", version=3, projection=["title", "status"])
    assert partial.title == "T" and partial.status == "draft"
    assert partial.model_fields_set == {"title", "status"}
    with pytest.raises(ValidationError, match="projection"):
        partial.save()
    assert [op for op, _ in sync.calls] == ["get_item"]


# -- responses and error mapping through the sync/async executors -------------------------------


def test_get_parses_and_reports_missing(stub: Any) -> None:
    sync, _ = stub
    sync.answers += [{"Item": ITEM}, {}, {}]
    assert Doc.get(doc_id="d1", version="3", consistent=True) == doc()
    assert sync.calls[0] == (
        "get_item",
        {"TableName": "req-unit", "Key": KEY, "ConsistentRead": True},
    )
    with pytest.raises(ItemNotFound) as info:
        Doc.get(doc_id="d1", version=3)
    assert info.value.key == {"doc_id": "d1", "version": 3}
    assert Doc.get_or_none(doc_id="d1", version=3) is None


async def test_async_executor_uses_the_async_client(stub: Any) -> None:
    sync, async_ = stub
    async_.answers += [{"Item": ITEM}, {}]
    assert await Doc.aget(doc_id="d1", version=3) == doc()
    assert await Doc.aget_or_none(doc_id="d1", version=3) is None
    assert sync.calls == []
    assert [op for op, _ in async_.calls] == ["get_item", "get_item"]


def test_condition_failure_carries_current_item(stub: Any) -> None:
    sync, _ = stub
    sync.answers.append(client_error("ConditionalCheckFailedException", Item=ITEM))
    with pytest.raises(ConditionFailed) as info:
        doc(status="final").create()
    assert info.value.item == ITEM
    assert info.value.current == doc()
    assert info.value.code == "ConditionalCheckFailedException"
    assert isinstance(info.value.__cause__, ClientError)


def test_condition_failure_with_unparseable_item(stub: Any) -> None:
    sync, _ = stub
    sync.answers.append(client_error("ConditionalCheckFailedException", Item={"pk": {"S": "x"}}))
    with pytest.raises(ConditionFailed) as info:
        doc().save(condition=Attr("status") == "x")
    assert info.value.item == {"pk": {"S": "x"}}
    assert info.value.current is None


def test_update_of_missing_item_is_item_not_found(stub: Any) -> None:
    sync, _ = stub
    sync.answers.append(client_error("ConditionalCheckFailedException", "UpdateItem"))
    with pytest.raises(ItemNotFound):
        doc().update(Attr("title").set("new"))


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        ("ValidationException", ValidationError),
        ("ResourceNotFoundException", TableNotFound),
        ("AccessDeniedException", ServiceError),
    ],
)
def test_error_mapping(stub: Any, code: str, error_type: type) -> None:
    sync, _ = stub
    sync.answers.append(client_error(code))
    with pytest.raises(error_type) as info:
        doc().save()
    assert info.value.code == code
    assert code in str(info.value)
    assert len(sync.calls) == 1  # not retried


def test_throttling_is_retried_then_succeeds(stub: Any) -> None:
    sync, _ = stub
    sync.answers += [
        client_error("ProvisionedThroughputExceededException"),
        client_error("ThrottlingException"),
        {},
    ]
    doc().save()
    assert [op for op, _ in sync.calls] == ["put_item"] * 3


def test_throttling_gives_up_after_max_attempts(stub: Any) -> None:
    sync, _ = stub
    REQ.connection.retry = RetryPolicy(base=0, cap=0, max_attempts=4)
    sync.answers += [client_error("ProvisionedThroughputExceededException")] * 10
    with pytest.raises(ThrottledError):
        doc().save()
    assert len(sync.calls) == 4


async def test_async_throttling_gives_up_after_max_attempts(stub: Any) -> None:
    _, async_ = stub
    REQ.connection.retry = RetryPolicy(base=0, cap=0, max_attempts=3)
    async_.answers += [client_error("InternalServerError")] * 10
    with pytest.raises(ServiceError):
        await doc().asave()
    assert len(async_.calls) == 3


def test_non_client_errors_propagate(stub: Any) -> None:
    sync, _ = stub
    sync.answers.append(ConnectionResetError("boom"))
    with pytest.raises(ConnectionResetError):
        doc().save()


class Tagged(Model):
    class Meta:
        table = REQ
        pk = "TAGGED#{tagged_id}"
        sk = "T"

    tagged_id: str
    labels: set[str] = Field(default_factory=set)


def test_setting_an_empty_set_removes_the_attribute() -> None:
    """DynamoDB has no empty sets; an empty set is stored as an absent attribute."""
    request = R.update_request(
        Tagged, {"tagged_id": "t1"}, [Attr("labels").set(set())], None, False
    )
    expression = request.params["UpdateExpression"]
    names = request.params["ExpressionAttributeNames"]
    assert expression.startswith("SET ") and " REMOVE #n" in expression
    removed = expression.split(" REMOVE ")[1]
    assert names[removed] == "labels"
