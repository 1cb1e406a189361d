"""pytest fixtures for testing code that uses dynamodel, on the embedded local DynamoDB.

Enable them in your ``conftest.py``::

    pytest_plugins = ["dynamodel.pytest_plugin"]

Fixtures:

* ``dynamodel_inprocess``: a fresh `dynamodel.testing.InProcessDynamoDB` for one test, made the
  default connection: no server, no port, no network. Create tables with
  ``dynamodel_inprocess.create_tables(app_table)``; everything is dropped after the test.
* ``dynamodel_local`` (session): a `dynamodel.LocalDynamoDB` (moto server on 127.0.0.1) with its
  ``AWS_*`` environment applied, so boto3, aioboto3 and every dynamodel `Connection` that does
  not name an endpoint talk to it. Stopped, and the environment restored, after the session.
* ``dynamodel_tables``: call it with your `Table` objects to create them empty for one test;
  everything is deleted after the test (``dynamodel_tables(app_table)``).
* ``dynamodel_faults``: bind a table to a seeded `dynamodel.testing.FaultInjector` for one test
  (``faults = dynamodel_faults(app_table, throttle=0.1, unprocessed=0.3)``); unbound afterwards.

Needs the ``local`` extra (moto). Nothing here is imported by ``import dynamodel``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from dynamodel.core.retry import RetryPolicy
from dynamodel.io.clients import Connection, default_connection
from dynamodel.modelling.table import Table
from dynamodel.ops.shard_guard import forget_shard_checks

if TYPE_CHECKING:
    from dynamodel.inprocess import InProcessDynamoDB
    from dynamodel.local import LocalDynamoDB
    from dynamodel.testing import FaultInjector


@pytest.fixture
def dynamodel_inprocess() -> Iterator[InProcessDynamoDB]:
    """A fresh in-process DynamoDB (no server) as the default connection for one test."""
    from dynamodel.inprocess import InProcessDynamoDB

    with InProcessDynamoDB() as db:
        yield db


@pytest.fixture(scope="session")
def dynamodel_local() -> Iterator[LocalDynamoDB]:
    """The session's local DynamoDB, its endpoint and dummy credentials in the environment."""
    from dynamodel.local import LocalDynamoDB

    server = LocalDynamoDB()
    server.start()
    previous = server.apply_env()
    try:
        yield server
    finally:
        default_connection().close()  # its clients point at this server
        server.restore_env(previous)
        server.stop()


@pytest.fixture
def dynamodel_tables(dynamodel_local: LocalDynamoDB) -> Iterator[Callable[..., None]]:
    """``dynamodel_tables(*tables)`` creates the tables, empty, for this test only."""
    dynamodel_local.reset()
    forget_shard_checks()

    def create(*tables: Table) -> None:
        for table in tables:
            if not isinstance(table, Table):
                raise TypeError(f"dynamodel_tables takes Table objects, got {table!r}")
            table.create(poll=0.01)

    yield create
    dynamodel_local.reset()
    forget_shard_checks()


@pytest.fixture
def dynamodel_faults(
    dynamodel_local: LocalDynamoDB,
) -> Iterator[Callable[..., FaultInjector]]:
    """``dynamodel_faults(table, seed=..., throttle=..., unprocessed=..., server_error=...)``
    routes the table's sync calls through a seeded `FaultInjector` (returned) for this test,
    with a patient retry policy (``retry=`` to change it)."""
    import boto3

    from dynamodel.testing import FaultInjector

    bound: list[Table] = []

    def make(
        table: Table, *, seed: int = 0, retry: RetryPolicy | None = None, **rates: Any
    ) -> FaultInjector:
        client = boto3.client("dynamodb", endpoint_url=dynamodel_local.endpoint_url)
        faults = FaultInjector(client, seed=seed, **rates)
        policy = retry or RetryPolicy(max_attempts=30)
        table.bind(connection=Connection(client=faults, retry=policy))
        bound.append(table)
        return faults

    yield make
    for table in bound:
        table.unbind()
