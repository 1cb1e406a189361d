"""docs/local.md's table "Where the backends differ from DynamoDB", checked row by row.

Each test probes one row with plain boto3 calls on the session's backend (moto's server by
default, dynoxide with ``--backend dynoxide``) and asserts what that row's cell for this backend
says, so the table cannot go stale silently when either backend changes. ``expected`` in each
test maps a backend to the outcome of each probe: ``"ok"``, or the error code it answered with.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

OK = "ok"
INVALID = "ValidationException"
UNKNOWN_OPERATION = "UnknownOperationException"
NO_RETRIES = Config(retries={"total_max_attempts": 1})
CONCURRENT_CLIENTS = 8
INCREMENTS_EACH = 5

pytestmark = pytest.mark.usefixtures("fresh_db")


def create_table(ddb: Any, name: str, **extra: Any) -> str:
    """A PAY_PER_REQUEST table keyed by string ``pk``, ACTIVE when this returns."""
    definitions = [{"AttributeName": "pk", "AttributeType": "S"}]
    definitions += extra.pop("AttributeDefinitions", [])
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=definitions,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        **extra,
    )
    # dynoxide's CreateTable answers CREATING but the table is ACTIVE at once; the waiter's
    # first DescribeTable comes without a delay.
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
    return name


def outcome(call: Callable[..., Any], **kwargs: Any) -> str:
    """``"ok"``, the error code of a ClientError, or ``"HTTP 5xx"`` for a server error."""
    try:
        call(**kwargs)
    except ClientError as error:
        status = error.response["ResponseMetadata"].get("HTTPStatusCode", 0)
        return f"HTTP {status}" if status >= 500 else str(error.response["Error"]["Code"])
    return OK


def key(value: str) -> dict[str, Any]:
    return {"pk": {"S": value}}


def item_bytes(item: dict[str, dict[str, str]]) -> int:
    """DynamoDB's size of an item of string attributes: names plus values, in UTF-8."""
    return sum(len(name.encode()) + len(value["S"].encode()) for name, value in item.items())


def test_backups_api(ddb: Any, backend_name: str) -> None:
    """Row "Backups API: UpdateContinuousBackups (PITR), CreateBackup"."""
    expected = {"moto": [OK, OK], "dynoxide": [UNKNOWN_OPERATION, UNKNOWN_OPERATION]}
    name = create_table(ddb, "diff-backups")
    pitr = {"PointInTimeRecoveryEnabled": True}
    assert [
        outcome(
            ddb.update_continuous_backups,
            TableName=name,
            PointInTimeRecoverySpecification=pitr,
        ),
        outcome(ddb.create_backup, TableName=name, BackupName="diff-backup"),
    ] == expected[backend_name]


def test_table_names_of_one_or_two_characters(ddb: Any, backend_name: str) -> None:
    """Row "Table name of 1-2 characters" (3 characters, the minimum, as a control)."""
    expected = {"moto": [OK, OK, OK], "dynoxide": [INVALID, INVALID, OK]}
    results = [outcome(create_table, ddb=ddb, name=name) for name in ("t", "ab", "abc")]
    assert results == expected[backend_name]


def test_batch_write_over_25_items_and_duplicate_keys(ddb: Any, backend_name: str) -> None:
    """Row "BatchWriteItem over 25 items; duplicate keys in one batch" (25 as a control)."""
    expected = {"moto": [OK, OK, INVALID], "dynoxide": [OK, INVALID, INVALID]}
    name = create_table(ddb, "diff-batch")

    def puts(*keys: str) -> dict[str, Any]:
        return {name: [{"PutRequest": {"Item": key(k)}} for k in keys]}

    assert [
        outcome(ddb.batch_write_item, RequestItems=puts(*(f"k{i}" for i in range(25)))),
        outcome(ddb.batch_write_item, RequestItems=puts(*(f"k{i}" for i in range(26)))),
        outcome(ddb.batch_write_item, RequestItems=puts("same", "same")),
    ] == expected[backend_name]


def test_transact_get_items_limit(ddb: Any, backend_name: str) -> None:
    """Row "TransactGetItems limit": 25 on moto, 100 on dynoxide."""
    sizes = (25, 26, 100, 101)
    expected = {"moto": [OK, INVALID, INVALID, INVALID], "dynoxide": [OK, OK, OK, INVALID]}
    name = create_table(ddb, "diff-transact-get")
    gets = [{"Get": {"TableName": name, "Key": key(f"k{i}")}} for i in range(max(sizes))]
    assert [
        outcome(ddb.transact_get_items, TransactItems=gets[:size]) for size in sizes
    ] == expected[backend_name]


def test_item_of_exactly_400_kb(ddb: Any, backend_name: str) -> None:
    """Row "Item of exactly 400 KB (409,600 bytes)": moto's limit is 405,000 bytes."""
    sizes = (405_000, 405_001, 409_600, 409_601)
    expected = {"moto": [OK, INVALID, INVALID, INVALID], "dynoxide": [OK, OK, OK, INVALID]}
    name = create_table(ddb, "diff-item-size")
    results = []
    for size in sizes:
        item = {"pk": {"S": "big"}, "d": {"S": "x" * (size - 6)}}
        assert item_bytes(item) == size
        results.append(outcome(ddb.put_item, TableName=name, Item=item))
    assert results == expected[backend_name]


def test_numbers_over_38_significant_digits(ddb: Any, backend_name: str) -> None:
    """Row "Numbers over 38 significant digits" (38 digits as a control)."""
    expected = {"moto": [OK, OK], "dynoxide": [OK, INVALID]}
    name = create_table(ddb, "diff-numbers")
    assert [
        outcome(ddb.put_item, TableName=name, Item={**key("n"), "n": {"N": "1" * digits}})
        for digits in (38, 39)
    ] == expected[backend_name]


def test_unused_expression_attribute_values(ddb: Any, backend_name: str) -> None:
    """Row "Unused ExpressionAttributeValues" (on a conditional PutItem)."""
    expected = {"moto": OK, "dynoxide": INVALID}
    name = create_table(ddb, "diff-unused-values")
    assert (
        outcome(
            ddb.put_item,
            TableName=name,
            Item=key("u"),
            ConditionExpression="attribute_not_exists(pk)",
            ExpressionAttributeValues={":unused": {"S": "x"}},
        )
        == expected[backend_name]
    )


def test_client_request_token_idempotency(ddb: Any, backend_name: str) -> None:
    """Row "ClientRequestToken idempotency": the same token with another payload."""
    expected = {
        "moto": ([OK, OK, OK], "second"),  # ignored: the second payload is applied
        "dynoxide": ([OK, OK, "IdempotentParameterMismatchException"], "first"),
    }
    name = create_table(ddb, "diff-token")
    token = str(uuid.uuid4())

    def write(value: str) -> str:
        put = {"Put": {"TableName": name, "Item": {**key("tok"), "v": {"S": value}}}}
        return outcome(ddb.transact_write_items, ClientRequestToken=token, TransactItems=[put])

    results = [write("first"), write("first"), write("second")]
    stored = ddb.get_item(TableName=name, Key=key("tok"), ConsistentRead=True)["Item"]["v"]["S"]
    assert (results, stored) == expected[backend_name]


def test_consumed_capacity(ddb: Any, backend_name: str) -> None:
    """Row "Consumed capacity": a ~3 KB PutItem costs 1 unit on moto, 3 (by size) on dynoxide."""
    expected = {"moto": 1.0, "dynoxide": 3.0}
    name = create_table(ddb, "diff-capacity")
    item = {**key("cap"), "d": {"S": "x" * 3000}}
    assert 2 * 1024 < item_bytes(item) <= 3 * 1024
    response = ddb.put_item(TableName=name, Item=item, ReturnConsumedCapacity="TOTAL")
    assert response["ConsumedCapacity"]["CapacityUnits"] == expected[backend_name]


def _condition_failed(error: ClientError) -> bool:
    code = error.response["Error"]["Code"]
    if code == "TransactionCanceledException":
        reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
        return reasons == ["ConditionalCheckFailed"]
    return code == "ConditionalCheckFailedException"


def _increment(
    client: Any, name: str, times: int, start: threading.Barrier, deadline: float
) -> int:
    """Read ``n`` then write ``n + 1`` on condition it is unchanged, ``times`` times; returns
    how many writes failed their condition (and were retried).

    Any other error (throttling, TransactionConflict) propagates: the client does not retry.
    Odd threads write with TransactWriteItems, even ones with UpdateItem.
    """
    transact = start.wait() % 2 == 1  # all threads begin together, clients ready
    done = failed = 0
    while done < times:
        assert time.monotonic() < deadline, "the concurrent increments did not finish in time"
        item = client.get_item(TableName=name, Key=key("counter"), ConsistentRead=True)["Item"]
        seen = int(item["n"]["N"])
        update = {
            "TableName": name,
            "Key": key("counter"),
            "UpdateExpression": "SET #n = :next",
            "ConditionExpression": "#n = :seen",
            "ExpressionAttributeNames": {"#n": "n"},
            "ExpressionAttributeValues": {":seen": {"N": str(seen)}, ":next": {"N": str(seen + 1)}},
        }
        try:
            if transact:
                client.transact_write_items(TransactItems=[{"Update": update}])
            else:
                client.update_item(**update)
        except ClientError as error:
            if not _condition_failed(error):
                raise
            failed += 1
        else:
            done += 1
    return failed


def test_conditional_writes_from_concurrent_clients(ddb: Any, backend_name: str) -> None:
    """Row "Conditional writes from concurrent clients", and the "never" of throttling and
    TransactionConflict in the last row.

    The moto backend here is dynamodel's ``LocalDynamoDB``, which applies requests one at a
    time, so conditions hold on both backends (the raw moto server's missing lock, which the
    row's moto cell describes, is not what the suite runs on). Each thread has its own client;
    neither backend throttles or answers TransactionConflict, only ConditionalCheckFailed.
    8 clients racing from a barrier make the conditions fail often enough with 5 increments
    each; 25 each takes ~17 s on moto (about 8 ms a request, all in this process).
    """
    threads, times = CONCURRENT_CLIENTS, INCREMENTS_EACH
    expected = {"moto": threads * times, "dynoxide": threads * times}
    name = create_table(ddb, "diff-concurrent")
    ddb.put_item(TableName=name, Item={**key("counter"), "n": {"N": "0"}})
    # one client per thread (a session per client would cost ~0.25 s each)
    session = boto3.session.Session()
    clients = [session.client("dynamodb", config=NO_RETRIES) for _ in range(threads)]
    start, deadline = threading.Barrier(threads), time.monotonic() + 30
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(_increment, c, name, times, start, deadline) for c in clients]
        failed = sum(future.result() for future in futures)  # re-raises a thread's error
    item = ddb.get_item(TableName=name, Key=key("counter"), ConsistentRead=True)["Item"]
    assert int(item["n"]["N"]) == expected[backend_name]
    assert failed > 0, "the clients never raced: the conditions were not exercised"


def test_describe_limits_and_partiql(ddb: Any, backend_name: str) -> None:
    """Row "DescribeLimits; PartiQL ExecuteStatement".

    moto's PartiQL with a key condition fails inside its parser (HTTP 500); a client without
    retries keeps the test fast.
    """
    expected = {"moto": [OK, "HTTP 500"], "dynoxide": [UNKNOWN_OPERATION, OK]}
    name = create_table(ddb, "diff-partiql")
    ddb.put_item(TableName=name, Item={**key("x"), "v": {"S": "found"}})
    once = boto3.session.Session().client("dynamodb", config=NO_RETRIES)
    statement = f"SELECT * FROM \"{name}\" WHERE pk='x'"
    assert [
        outcome(ddb.describe_limits),
        outcome(once.execute_statement, Statement=statement),
    ] == expected[backend_name]
    if backend_name == "dynoxide":
        items = once.execute_statement(Statement=statement)["Items"]
        assert items == [{**key("x"), "v": {"S": "found"}}]


def test_reads_are_always_consistent(ddb: Any, backend_name: str) -> None:
    """Row "Reads": an eventually consistent GetItem and a GSI query see a write at once."""
    expected = {"moto": ["v1", ["i1"]], "dynoxide": ["v1", ["i1"]]}
    name = create_table(
        ddb,
        "diff-reads",
        AttributeDefinitions=[{"AttributeName": "g", "AttributeType": "S"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    ddb.put_item(TableName=name, Item={**key("i1"), "g": {"S": "group"}, "v": {"S": "v1"}})
    read = ddb.get_item(TableName=name, Key=key("i1"))["Item"]["v"]["S"]
    queried = ddb.query(
        TableName=name,
        IndexName="by-g",
        KeyConditionExpression="g = :g",
        ExpressionAttributeValues={":g": {"S": "group"}},
    )["Items"]
    assert [read, [item["pk"]["S"] for item in queried]] == expected[backend_name]


def test_ttl_expiry_does_not_happen(ddb: Any, backend_name: str) -> None:
    """Row "Throttling, TransactionConflict, TTL expiry" (throttling and TransactionConflict
    are checked by the concurrent-writes test).

    With TTL on ``exp``, an item that expired 10 s before it was written is still returned by
    the GetItem right after the write: neither backend hides or deletes expired items on
    reads. Only an immediate read is checked, not how long the item lingers.
    """
    expected = {"moto": True, "dynoxide": True}
    name = create_table(ddb, "diff-ttl")
    ddb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"}
    )
    expired = str(int(time.time()) - 10)
    ddb.put_item(TableName=name, Item={**key("old"), "exp": {"N": expired}})
    found = "Item" in ddb.get_item(TableName=name, Key=key("old"))
    assert found == expected[backend_name]


def test_update_table_attribute_definitions(ddb: Any, backend_name: str) -> None:
    """Row "`UpdateTable` adding a GSI, with `AttributeDefinitions`": the call lists the new
    index's key attributes only; DynamoDB adds them to the table's definitions."""
    name = create_table(ddb, "update-defs")
    ddb.update_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "a", "AttributeType": "S"},
            {"AttributeName": "b", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexUpdates=[
            {
                "Create": {
                    "IndexName": "by_ab",
                    "KeySchema": [
                        {"AttributeName": "a", "KeyType": "HASH"},
                        {"AttributeName": "b", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            }
        ],
    )
    table = ddb.describe_table(TableName=name)["Table"]
    defined = sorted(d["AttributeName"] for d in table["AttributeDefinitions"])
    expected = {"moto": ["a", "b"], "dynoxide": ["a", "b", "pk"]}
    assert defined == expected[backend_name]
