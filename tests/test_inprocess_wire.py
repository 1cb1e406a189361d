"""The in-process backend answers exactly as boto3 does against moto's server: the same
requests (every data-plane operation, its options and its errors, from the lean transport's
script) give the same responses and errors, field by field, sync and async; and it never sees
the server's tables."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from shop_models import APP
from test_lean_integration import run_async, run_sync, script

from dynamodel.inprocess import InProcessDynamoDB


@pytest.fixture
def boto3_client(fresh_db: Any, backend_name: str) -> Iterator[Any]:
    if backend_name != "moto":
        pytest.skip("the in-process backend is moto: it is compared with moto's server")
    import boto3

    client = boto3.session.Session().client("dynamodb")
    yield client
    client.close()


async def test_every_data_operation_answers_as_boto3_on_moto_server_does(
    boto3_client: Any,
) -> None:
    APP.create(poll=0.01)
    expected = run_sync(boto3_client)

    db = InProcessDynamoDB()
    try:
        db.create_tables(APP)
        got = run_sync(db.client())
        for step, (theirs, ours) in enumerate(zip(expected, got, strict=True)):
            assert ours == theirs, f"step {step}: {script()[step][0]}"
        db.reset()
        db.create_tables(APP)
        got = await run_async(db.aclient())
        for step, (theirs, ours) in enumerate(zip(expected, got, strict=True)):
            assert ours == theirs, f"async step {step}: {script()[step][0]}"

        # the server's table holds what the boto3 run left; the in-process one its own
        server_count = boto3_client.scan(TableName="app", Select="COUNT")["Count"]
        db.reset()
        assert db.table_names() == []
        assert boto3_client.scan(TableName="app", Select="COUNT")["Count"] == server_count
    finally:
        db.close()
