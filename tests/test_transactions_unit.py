"""Unit tests for `TransactWrite` / `TransactGet`, no server: the request items each action
builds, the client-side refusals (100 actions, one action per item, 4 MB, tokens) checked before
anything is sent, the idempotency token kept across retries, which cancellations are retried,
and cancellation reasons aligned with the actions, all through stub clients (sync and async)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from test_locking_unit import AsyncRecorder, Recorder, client_error

from dynamodel import (
    Attr,
    Connection,
    ItemNotFound,
    Model,
    RetryPolicy,
    ServiceError,
    Table,
    TransactionCanceled,
    ValidationError as DMValidationError,
)
from dynamodel.core.errors import map_client_error
from dynamodel.ops.shard_guard import forget_shard_checks
from dynamodel.ops.transactions import MAX_TRANSACTION_BYTES, TransactGet, TransactWrite
from dynamodel.testing import trust_shard_layouts

TX = Table("tx-unit")
FLAT = Table("tx-unit-flat", sk=None)


class Account(Model):
    class Meta:
        table = TX
        pk = "ACCOUNT#{account_id}"
        sk = "ACCOUNT"
        version = "version"

    account_id: str
    balance: int = 0
    version: int | None = None


class Entry(Model):
    class Meta:
        table = TX
        pk = "ACCOUNT#{account_id}"
        sk = "ENTRY#{n}"

    account_id: str
    n: int
    amount: int = 0
    blob: bytes = b""


class Flat(Model):
    class Meta:
        table = FLAT
        pk = "ACCOUNT#{account_id}"  # the same key text as Account, in another table

    account_id: str


def account(account_id: str = "a", balance: int = 100, version: int | None = 3) -> Account:
    return Account(account_id=account_id, balance=balance, version=version)


def stored(account_id: str, balance: int, version: int) -> dict[str, Any]:
    return account(account_id, balance, version).to_item() | {"version": {"N": str(version)}}


def canceled(*reasons: dict[str, Any], op: str = "TransactWriteItems") -> ClientError:
    codes = ", ".join(r.get("Code", "None") for r in reasons)
    return client_error(
        "TransactionCanceledException",
        op,
        CancellationReasons=list(reasons),
        Message=f"Transaction cancelled, please refer cancellation reasons [{codes}]",
    )


OK = {"Code": "None"}
CONFLICT = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}


def failed(item: dict[str, Any] | None = None) -> dict[str, Any]:
    reason: dict[str, Any] = {
        "Code": "ConditionalCheckFailed",
        "Message": "The conditional request failed",
    }
    if item is not None:
        reason["Item"] = item
    return reason


@pytest.fixture
def stub() -> Iterator[tuple[Recorder, AsyncRecorder]]:
    sync, async_ = Recorder(), AsyncRecorder()
    connection = Connection(client=sync, aclient=async_, retry=RetryPolicy(base=0, cap=0))
    TX.bind(connection=connection)
    FLAT.bind(connection=connection)
    trust_shard_layouts(Account, Entry, Flat)  # the recorders see only the transactions
    try:
        yield sync, async_
    finally:
        TX.unbind()
        FLAT.unbind()
        forget_shard_checks()


# -- the request -----------------------------------------------------------------------------------


def test_each_action_builds_its_transaction_item() -> None:
    tx = TransactWrite(token="t-1")
    tx.put(account("a", version=3), condition=Attr("balance") >= 0)
    tx.create(account("b", version=None))
    tx.update(account("c", version=5), Attr("balance").add(-10), condition=Attr("balance") >= 10)
    tx.update_item(Entry, {"account_id": "c", "n": 1}, [Attr("amount").set(10)], upsert=True)
    tx.delete(account("d", version=2))
    tx.delete_item(Entry, {"account_id": "d", "n": 7})
    tx.condition_check(account("e", version=9))
    tx.condition_check_item(Entry, {"account_id": "e", "n": 1}, Attr("amount") > 0)
    request = tx.request()
    assert request.op == "transact_write_items"
    assert request.params["ClientRequestToken"] == "t-1"
    items = request.params["TransactItems"]
    assert [next(iter(i)) for i in items] == [
        "Put",
        "Put",
        "Update",
        "Update",
        "Delete",
        "Delete",
        "ConditionCheck",
        "ConditionCheck",
    ]
    put = items[0]["Put"]
    assert put["Item"]["version"] == {"N": "4"}
    assert put["ConditionExpression"] == "(#n0 = :v0) AND (#n1 >= :v1)"
    assert put["ExpressionAttributeValues"][":v0"] == {"N": "3"}
    assert put["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    create = items[1]["Put"]
    assert create["Item"]["version"] == {"N": "1"}
    assert create["ConditionExpression"] == "attribute_not_exists(#n0)"
    assert create["ExpressionAttributeNames"] == {"#n0": "pk"}
    update = items[2]["Update"]
    assert "ReturnValues" not in update
    assert update["Key"] == {"pk": {"S": "ACCOUNT#c"}, "sk": {"S": "ACCOUNT"}}
    assert update["UpdateExpression"] == "SET #n0 = :v0, #n1 = :v1 ADD #n2 :v2"
    # updates and deletes never touch another entity's item: "(attribute_not_exists(_type))
    # OR (_type = :entity)" comes first
    same_entity = "(attribute_not_exists(#n0)) OR (#n0 = :v0)"
    assert update["ConditionExpression"] == (
        "(attribute_exists(#n3)) AND ((attribute_not_exists(#n0)) OR (#n0 = :v3)) "
        "AND (#n1 = :v4) AND (#n2 >= :v5)"
    )
    names, values = update["ExpressionAttributeNames"], update["ExpressionAttributeValues"]
    assert (names["#n0"], values[":v3"]) == ("_type", {"S": "Account"})
    assert (names["#n1"], values[":v1"], values[":v4"]) == ("version", {"N": "6"}, {"N": "5"})
    upsert = items[3]["Update"]
    assert upsert["ConditionExpression"].startswith("(attribute_not_exists(")
    assert "ReturnValues" not in upsert
    delete = items[4]["Delete"]
    assert "ReturnValues" not in delete
    assert delete["ConditionExpression"] == f"({same_entity}) AND (#n1 = :v1)"
    assert delete["ExpressionAttributeValues"] == {":v0": {"S": "Account"}, ":v1": {"N": "2"}}
    assert items[5]["Delete"] == {
        "TableName": "tx-unit",
        "Key": {"pk": {"S": "ACCOUNT#d"}, "sk": {"S": "ENTRY#00000000000000000007"}},
        "ConditionExpression": same_entity,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ExpressionAttributeNames": {"#n0": "_type"},
        "ExpressionAttributeValues": {":v0": {"S": "Entry"}},
    }
    check = items[6]["ConditionCheck"]
    assert check["ConditionExpression"] == "#n0 = :v0"
    assert check["ExpressionAttributeValues"] == {":v0": {"N": "9"}}
    assert check["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    assert items[7]["ConditionCheck"]["ConditionExpression"] == "#n0 > :v0"
    assert len(tx) == 8


def test_tokens_are_generated_or_given_and_checked() -> None:
    generated = TransactWrite().token
    assert uuid.UUID(generated).version == 4 and len(generated) == 36
    assert TransactWrite().token != generated
    assert TransactWrite(token="x" * 36).token == "x" * 36
    for bad in ["", "x" * 37, 123]:
        with pytest.raises(DMValidationError, match="1 to 36"):
            TransactWrite(token=bad)  # type: ignore[arg-type]


# -- refused before sending ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_more_than_100_actions_are_refused_before_sending(stub: Any, mode: str) -> None:
    sync, async_ = stub
    tx = TransactWrite()
    for n in range(100):
        tx.put(Entry(account_id="a", n=n))
    with pytest.raises(DMValidationError, match=r"at most 100 actions.*action 100 \(put Entry"):
        tx.put(Entry(account_id="a", n=100))
    assert len(tx) == 100
    assert sync.calls == [] and async_.calls == []
    if mode == "sync":
        tx.commit()
    else:
        await tx.acommit()
    recorder = sync if mode == "sync" else async_
    assert recorder.ops == ["transact_write_items"]
    assert len(recorder.calls[0][1]["TransactItems"]) == 100


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_block_of_101_actions_sends_nothing(stub: Any, mode: str) -> None:
    sync, async_ = stub
    with pytest.raises(DMValidationError, match="at most 100"):
        if mode == "sync":
            with TransactWrite() as tx:
                for n in range(101):
                    tx.put(Entry(account_id="a", n=n))
        else:
            async with TransactWrite() as tx:
                for n in range(101):
                    tx.put(Entry(account_id="a", n=n))
    assert sync.calls == [] and async_.calls == []


def test_two_actions_on_one_item_are_refused(stub: Any) -> None:
    sync, _ = stub
    tx = TransactWrite()
    tx.update(account("a"), Attr("balance").add(1))
    with pytest.raises(DMValidationError) as info:
        tx.condition_check_item(Account, {"account_id": "a"}, Attr("balance") > 0)
    message = str(info.value)
    assert "action 1 (condition_check Account {'account_id': 'a'})" in message
    assert "same item as action 0 (update Account {'account_id': 'a'})" in message
    with pytest.raises(DMValidationError, match="same item"):
        tx.put(account("a"))
    with pytest.raises(DMValidationError, match="same item"):
        tx.delete_item(Account, {"account_id": "a"})
    # the same key in another table, or another sort key, is another item
    tx.put(Flat(account_id="a"))
    tx.put(Entry(account_id="a", n=1))
    with pytest.raises(DMValidationError, match="same item"):
        tx.update_item(Entry, {"account_id": "a", "n": "1"}, [Attr("amount").set(1)])
    assert len(tx) == 3
    tx.commit()
    assert sync.ops == ["transact_write_items"]


def test_more_than_4_mb_is_refused_before_sending(stub: Any) -> None:
    sync, _ = stub
    tx = TransactWrite()
    big = b"x" * 390_000
    added = 0
    with pytest.raises(DMValidationError) as info:
        for n in range(20):
            tx.put(Entry(account_id="a", n=n, blob=big))
            added += 1
    assert added == 10  # 11 x 390 KB > 4 MB
    assert "action 10 (put Entry" in str(info.value)
    assert f"{MAX_TRANSACTION_BYTES:,}" in str(info.value)
    assert sync.calls == []


def test_a_condition_check_needs_a_condition() -> None:
    tx = TransactWrite()
    with pytest.raises(DMValidationError, match="give a condition"):
        tx.condition_check(Entry(account_id="a", n=1))
    with pytest.raises(DMValidationError, match="condition is required"):
        tx.condition_check_item(Entry, {"account_id": "a", "n": 1}, None)  # type: ignore[arg-type]
    tx.condition_check(account("a"))  # a versioned instance: its version is the condition


def test_tables_on_different_connections_are_refused(stub: Any) -> None:
    sync, _ = stub
    other = Recorder()
    FLAT.bind(connection=Connection(client=other))
    tx = TransactWrite()
    tx.put(Entry(account_id="a", n=1))
    tx.put(Flat(account_id="a"))
    with pytest.raises(DMValidationError, match="another connection"):
        tx.commit()
    assert sync.calls == [] and other.calls == []
    chosen = Recorder()
    explicit = TransactWrite(connection=Connection(client=chosen))
    explicit.put(Entry(account_id="a", n=1))
    explicit.put(Flat(account_id="a"))
    explicit.commit()
    assert chosen.ops == ["transact_write_items"]
    assert sync.calls == [] and other.calls == []


# -- sending: retries and the token ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_the_token_is_kept_across_retries_of_transient_failures(stub: Any, mode: str) -> None:
    recorder = stub[0] if mode == "sync" else stub[1]
    recorder.answers += [
        canceled(OK, CONFLICT),
        client_error("TransactionInProgressException", "TransactWriteItems"),
        canceled({"Code": "ThrottlingError"}, OK),
        {},
    ]
    tx = TransactWrite(token="tok")
    tx.put(account("a"))
    tx.update(account("b"), Attr("balance").add(1))
    if mode == "sync":
        tx.commit()
    else:
        await tx.acommit()
    assert recorder.ops == ["transact_write_items"] * 4
    assert all(params == recorder.calls[0][1] for _, params in recorder.calls)
    assert recorder.calls[0][1]["ClientRequestToken"] == "tok"
    assert tx.committed


def test_a_failed_condition_is_not_retried(stub: Any) -> None:
    sync, _ = stub
    sync.answers += [canceled(failed(), CONFLICT), {}]
    tx = TransactWrite()
    tx.put(account("a"))
    tx.put(account("b"))
    with pytest.raises(TransactionCanceled):
        tx.commit()
    assert sync.ops == ["transact_write_items"]
    assert not tx.committed


def test_transient_cancellations_give_up_after_the_policy_budget(stub: Any) -> None:
    sync, _ = stub
    TX.connection.retry = RetryPolicy(base=0, cap=0, max_attempts=3)
    sync.answers += [canceled(CONFLICT)] * 5
    tx = TransactWrite()
    tx.put(account("a"))
    with pytest.raises(TransactionCanceled) as info:
        tx.commit()
    assert len(sync.calls) == 3
    assert info.value.failed[0].code == "TransactionConflict"


def test_a_policy_without_conflict_codes_does_not_retry_them(stub: Any) -> None:
    sync, _ = stub
    codes = RetryPolicy().retry_codes - {"TransactionConflictException"}
    TX.connection.retry = RetryPolicy(base=0, cap=0, retry_codes=codes)
    sync.answers += [canceled(CONFLICT), {}]
    tx = TransactWrite()
    tx.put(account("a"))
    with pytest.raises(TransactionCanceled):
        tx.commit()
    assert len(sync.calls) == 1


def test_commit_again_after_an_unknown_outcome_resends_the_same_request(stub: Any) -> None:
    sync, _ = stub
    sync.answers += [ConnectionResetError("lost"), {}]
    tx = TransactWrite()
    tx.put(account("a"))
    with pytest.raises(ConnectionResetError):
        tx.commit()
    with pytest.raises(DMValidationError, match="already sent"):
        tx.put(account("b"))  # the payload must stay what the token names
    tx.commit()
    assert sync.calls[0] == sync.calls[1]
    with pytest.raises(DMValidationError, match="already committed"):
        tx.commit()
    assert len(sync.calls) == 2


def test_empty_transactions_and_failing_blocks_send_nothing(stub: Any) -> None:
    sync, _ = stub
    with TransactWrite() as tx:
        pass
    assert tx.committed
    with pytest.raises(RuntimeError), TransactWrite() as tx:
        tx.put(account("a"))
        raise RuntimeError("changed my mind")
    assert not tx.committed
    assert sync.calls == []


async def test_async_with_commits_through_the_async_client(stub: Any) -> None:
    sync, async_ = stub
    async with TransactWrite() as tx:
        tx.put(account("a"))
    assert async_.ops == ["transact_write_items"] and sync.calls == []


# -- versions and cancellation reasons -------------------------------------------------------------


def test_put_instances_get_their_new_version_only_when_committed(stub: Any) -> None:
    sync, _ = stub
    sync.answers += [canceled(failed(stored("a", 1, 4)), OK), {}]
    a, b, c = account("a", version=3), account("b", version=None), account("c", version=7)
    tx = TransactWrite()
    tx.put(a)
    tx.create(b)
    tx.update(c, Attr("balance").add(1))
    with pytest.raises(TransactionCanceled):
        tx.commit()
    assert (a.version, b.version, c.version) == (3, None, 7)
    retry = TransactWrite()
    retry.put(a)
    retry.create(b)
    retry.update(c, Attr("balance").add(1))
    retry.commit()
    assert (a.version, b.version) == (4, 1)
    assert c.version == 7  # an update does not modify the instance (its other fields are stale)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_cancellation_reasons_name_the_actions_added(stub: Any, mode: str) -> None:
    recorder = stub[0] if mode == "sync" else stub[1]
    recorder.answers.append(
        canceled(
            OK,
            failed(stored("from", 5, 8)),  # a version conflict: expected 7
            failed(stored("to", 0, 2)),  # the user condition: the version matched
            failed(),  # no item: the update's existence check
            {"Code": "ValidationError", "Message": "Item size has exceeded the maximum"},
        )
    )
    tx = TransactWrite()
    tx.put(Entry(account_id="from", n=1, amount=-10))
    tx.update(account("from", version=7), Attr("balance").add(-10))
    tx.update(account("to", version=2), Attr("balance").add(10), condition=Attr("balance") > 5)
    tx.update(account("gone", version=1), Attr("balance").add(1))
    tx.put(Entry(account_id="to", n=1, amount=10))
    with pytest.raises(TransactionCanceled) as info:
        if mode == "sync":
            tx.commit()
        else:
            await tx.acommit()
    error = info.value
    assert [r.index for r in error.reasons] == [0, 1, 2, 3, 4]
    assert [r.action for r in error.reasons] == ["put", "update", "update", "update", "put"]
    assert [r.model for r in error.reasons] == [Entry, Account, Account, Account, Entry]
    assert error.reasons[0].code is None and not error.reasons[0].failed
    assert [r.index for r in error.failed] == [1, 2, 3, 4]
    first = error.reasons[1]
    assert first.key == {"account_id": "from"}
    assert first.code == "ConditionalCheckFailed" and first.version_conflict
    assert first.current == account("from", 5, 8)
    assert first.item == stored("from", 5, 8)
    second = error.reasons[2]
    assert not second.version_conflict and second.current == account("to", 0, 2)
    assert error.reasons[3].item is None and not error.reasons[3].version_conflict
    assert error.reasons[4].code == "ValidationError"
    assert error.reasons[4].message == "Item size has exceeded the maximum"
    message = str(error)
    assert "transaction of 5 actions cancelled by" in message
    assert (
        "action 1 (update Account {'account_id': 'from'}): ConditionalCheckFailed "
        "(version conflict)" in message
    )
    assert "action 3 (update Account {'account_id': 'gone'}): ConditionalCheckFailed " in message
    assert "(no stored item)" in message
    assert "action 0" not in message
    assert error.code == "TransactionCanceledException"
    assert isinstance(error.__cause__, ClientError)


def test_dax_style_cancellation_reasons_are_read() -> None:
    error = ClientError(
        {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"}},
        "TransactWriteItems",
    )
    error.cancellation_reasons = [{"Code": "None"}, {"Code": "ConditionalCheckFailed"}]  # type: ignore[attr-defined]
    mapped = map_client_error(error, "transact_write_items")
    assert isinstance(mapped, TransactionCanceled)
    assert [r.code for r in mapped.reasons] == [None, "ConditionalCheckFailed"]


def test_other_errors_pass_through(stub: Any) -> None:
    sync, _ = stub
    sync.answers.append(client_error("IdempotentParameterMismatchException", "TransactWriteItems"))
    tx = TransactWrite()
    tx.put(account("a"))
    with pytest.raises(ServiceError) as info:
        tx.commit()
    assert info.value.code == "IdempotentParameterMismatchException"


# -- TransactGet -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_transact_get_returns_typed_models_in_order(stub: Any, mode: str) -> None:
    recorder = stub[0] if mode == "sync" else stub[1]
    entry_item = Entry(account_id="a", n=1, amount=5).to_item()
    recorder.answers.append(
        {"Responses": [{"Item": stored("a", 10, 2)}, {}, {"Item": {"amount": {"N": "5"}}}]}
    )
    reads = TransactGet()
    a = reads.get(Account, account_id="a")
    missing = reads.get(Account, account_id="zz")
    partial = reads.get(Entry, account_id="a", n="1", projection=["amount"])
    with pytest.raises(DMValidationError, match="not read yet"):
        _ = a.item
    items = reads.execute() if mode == "sync" else await reads.aexecute()
    assert items == [account("a", 10, 2), None, partial.item]
    assert a.item == account("a", 10, 2) and a.require().balance == 10
    assert missing.item is None
    with pytest.raises(ItemNotFound):
        missing.require()
    assert partial.item is not None and partial.item.amount == 5
    assert partial.item.model_fields_set == {"amount"}
    op, params = recorder.calls[0]
    assert op == "transact_get_items"
    gets = [item["Get"] for item in params["TransactItems"]]
    assert gets[0] == {"TableName": "tx-unit", "Key": Account.build_key(account_id="a")}
    assert gets[2]["ProjectionExpression"] == "#n0"
    assert gets[2]["Key"] == {name: entry_item[name] for name in ("pk", "sk")}


def test_transact_get_limits(stub: Any) -> None:
    sync, _ = stub
    reads = TransactGet()
    for n in range(100):
        reads.get(Entry, account_id="a", n=n)
    with pytest.raises(DMValidationError, match="at most 100"):
        reads.get(Entry, account_id="a", n=100)
    again = TransactGet()
    again.get(Account, account_id="a")
    with pytest.raises(DMValidationError, match="same item"):
        again.get(Account, account_id="a")
    assert TransactGet().execute() == []
    assert sync.calls == []


def test_transact_get_cancellation_names_the_read(stub: Any) -> None:
    sync, _ = stub
    TX.connection.retry = RetryPolicy(base=0, cap=0, max_attempts=2)
    sync.answers += [canceled(OK, CONFLICT, op="TransactGetItems")] * 2
    reads = TransactGet()
    reads.get(Account, account_id="a")
    reads.get(Entry, account_id="b", n=2)
    with pytest.raises(TransactionCanceled) as info:
        reads.execute()
    assert len(sync.calls) == 2  # a conflict is retried (per the policy) for reads too
    assert "action 1 (get Entry {'account_id': 'b', 'n': 2}): TransactionConflict" in str(
        info.value
    )
