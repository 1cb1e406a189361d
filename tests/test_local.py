"""Tests for dynamodel.local.LocalDynamoDB (a real HTTP server on a free port)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from dynamodel.local import LocalDynamoDB

ENV_KEYS = {
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
}


@pytest.fixture(scope="module")
def local_db() -> Iterator[LocalDynamoDB]:
    with LocalDynamoDB(port=0) as db:
        yield db


def _client(endpoint_url: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _create_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_start_returns_endpoint_on_a_real_port(local_db: LocalDynamoDB) -> None:
    assert local_db.running
    assert local_db.port > 0
    assert local_db.endpoint_url == f"http://127.0.0.1:{local_db.port}"


def test_create_table_and_reset(local_db: LocalDynamoDB) -> None:
    client = _client(local_db.endpoint_url)
    _create_table(client, "things")
    client.put_item(TableName="things", Item={"pk": {"S": "a"}})
    assert "things" in client.list_tables()["TableNames"]
    assert client.get_item(TableName="things", Key={"pk": {"S": "a"}})["Item"]["pk"]["S"] == "a"

    local_db.reset()

    assert client.list_tables()["TableNames"] == []


def test_env_keys_and_values(local_db: LocalDynamoDB) -> None:
    env = local_db.env()
    assert set(env) == ENV_KEYS
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == local_db.endpoint_url
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"


def test_apply_env_and_restore(local_db: LocalDynamoDB, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "original")
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)

    previous = local_db.apply_env()
    try:
        assert previous["AWS_ACCESS_KEY_ID"] == "original"
        assert previous["AWS_ENDPOINT_URL_DYNAMODB"] is None
        assert os.environ["AWS_ENDPOINT_URL_DYNAMODB"] == local_db.endpoint_url
        # A client built purely from the environment reaches the local server.
        client = boto3.client("dynamodb")
        assert client.meta.endpoint_url == local_db.endpoint_url
        client.list_tables()
    finally:
        local_db.restore_env(previous)

    assert os.environ["AWS_ACCESS_KEY_ID"] == "original"
    assert "AWS_ENDPOINT_URL_DYNAMODB" not in os.environ


def test_two_instances_get_different_ports() -> None:
    with LocalDynamoDB() as first, LocalDynamoDB() as second:
        assert first.port != second.port
        _client(first.endpoint_url).list_tables()
        _client(second.endpoint_url).list_tables()


def test_stop_closes_the_port() -> None:
    db = LocalDynamoDB()
    db.start()
    port = db.port
    assert _port_open(port)
    db.stop()
    assert not db.running
    assert not _port_open(port)
    with pytest.raises(RuntimeError):
        _ = db.endpoint_url
    db.stop()  # idempotent


def test_stop_restores_applied_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    with LocalDynamoDB() as db:
        db.apply_env()
        assert os.environ["AWS_ENDPOINT_URL_DYNAMODB"] == db.endpoint_url
    assert "AWS_ENDPOINT_URL_DYNAMODB" not in os.environ


def test_endpoint_url_requires_start() -> None:
    db = LocalDynamoDB()
    with pytest.raises(RuntimeError, match="not running"):
        _ = db.endpoint_url


def test_start_twice_is_an_error(local_db: LocalDynamoDB) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        local_db.start()


def test_port_in_use_raises_instead_of_hanging() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        db = LocalDynamoDB(port=port)
        with pytest.raises(RuntimeError, match="could not start"):
            db.start()
        assert not db.running


def test_an_unknown_region_is_refused_at_once_with_a_readable_error(
    local_db: LocalDynamoDB, capfd: pytest.CaptureFixture[str]
) -> None:
    import time

    from botocore.exceptions import ClientError

    client = boto3.client(
        "dynamodb",
        endpoint_url=local_db.endpoint_url,
        region_name="moon-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    started = time.monotonic()
    with pytest.raises(ClientError) as caught:
        client.list_tables()
    assert time.monotonic() - started < 2  # a 400: no retries
    error = caught.value.response["Error"]
    assert error["Code"] == "UnrecognizedClientException"
    assert "unknown region 'moon-1'" in error["Message"] and "us-east-1" in error["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    printed = capfd.readouterr()
    assert "Traceback" not in printed.err + printed.out
    assert _client(local_db.endpoint_url).list_tables()["TableNames"] is not None  # still serves


def test_unknown_regions_pass_with_moto_s_switch(
    local_db: LocalDynamoDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTO_ALLOW_NONEXISTENT_REGION", "true")
    client = boto3.client(
        "dynamodb",
        endpoint_url=local_db.endpoint_url,
        region_name="moon-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    assert client.list_tables()["TableNames"] == []
