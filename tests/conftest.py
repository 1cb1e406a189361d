"""Shared fixtures: one embedded local DynamoDB (moto) per test session.

``local_server`` starts the chosen backend (moto by default, see ``backends.py``) and
points the AWS SDK environment at it *before* any dynamodel client exists, so the default
:class:`dynamodel.Connection` creates its boto3/aioboto3 clients from boto3's own environment
conventions, exactly as an application would. Tests that use it are marked ``integration``
automatically; pure unit tests never start it (``pytest -m "not integration"`` runs only them).

``table`` resets moto and creates the shared test table (GSIs, an LSI, TTL, PITR) from
``shop_models`` for one test; ``fresh_db`` resets moto only, for tests that create their own
tables.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from backends import BACKENDS, Backend, BackendUnavailable, make_backend
from shop_models import APP

from dynamodel.core.keys import RESERVED_PREFIX
from dynamodel.io.clients import default_connection
from dynamodel.io.lean import DEFAULT_TRANSPORT
from dynamodel.modelling.table import Table
from dynamodel.ops.shard_guard import forget_shard_checks

# the fixtures users get (dynamodel_inprocess, dynamodel_tables...), tested as users use them
pytest_plugins = ["dynamodel.pytest_plugin"]

INTEGRATION_FIXTURES = {"local_server", "local_env", "fresh_db", "table", "ddb"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        default=os.environ.get("DYNAMODEL_TEST_BACKEND", "moto"),
        choices=BACKENDS,
        help="local DynamoDB for the integration tests (env DYNAMODEL_TEST_BACKEND)",
    )
    parser.addoption(
        "--transport",
        default=os.environ.get("DYNAMODEL_TRANSPORT") or DEFAULT_TRANSPORT,
        choices=("boto3", "lean"),
        help="how dynamodel's own clients talk to DynamoDB (env DYNAMODEL_TRANSPORT)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # the default connection reads it when it creates its clients (dynamodel.io.clients)
    os.environ["DYNAMODEL_TRANSPORT"] = config.getoption("--transport")
    config.addinivalue_line(
        "markers", "integration: needs the embedded local DynamoDB (started once per session)"
    )
    config.addinivalue_line(
        "markers",
        "slow: a large-volume stress test (tens of thousands of items); CI runs it on both "
        "backends with the default transport, not again through the lean transport",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"dynamodel integration backend: {config.getoption('--backend')}, "
        f"transport: {config.getoption('--transport')}"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def local_server(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The session's local DynamoDB; its env (endpoint, dummy creds, region) is applied.

    moto's server by default; dynoxide with ``--backend=dynoxide``.
    """
    server = make_backend(request.config.getoption("--backend"))
    try:
        server.start()
    except BackendUnavailable as error:
        if os.environ.get(f"DYNAMODEL_REQUIRE_{server.name.upper()}") == "1":
            pytest.fail(f"{server.name} is required but cannot start: {error}")
        pytest.skip(f"{server.name} backend unavailable: {error}")
    server.apply_env()
    try:
        yield server
    finally:
        server.stop()  # also restores the environment


@pytest.fixture(scope="session")
def backend_name(local_server: Backend) -> str:
    """``moto`` or ``dynoxide``: for the few documented differences between them."""
    return local_server.name


@pytest.fixture(scope="session")
async def local_env(local_server: Backend) -> AsyncIterator[Backend]:
    """``local_server`` plus clean-up of the default connection's clients at session end."""
    yield local_server
    connection = default_connection()
    await connection.aclose()
    connection.close()


@pytest.fixture(scope="session")
def ddb(local_env: Backend) -> Any:
    """A plain boto3 DynamoDB client on the local server (the default connection's)."""
    client = default_connection().client()
    assert client.meta.endpoint_url == local_env.endpoint_url
    return client


@pytest.fixture
def fresh_db(local_env: Backend) -> Iterator[Backend]:
    """An empty local DynamoDB for one test, emptied again afterwards.

    moto's state is process-wide: other servers started in this process (other test modules
    start their own) see the same tables, so nothing is left behind.
    """
    local_env.reset()
    forget_shard_checks()  # the tables and their shard-layout records are new
    yield local_env
    local_env.reset()
    forget_shard_checks()


@pytest.fixture
def table(fresh_db: Backend) -> Iterator[Table]:
    """The shared ``app`` table, freshly created (with its GSIs, LSI, TTL and PITR)."""
    APP.create(poll=0.01)
    yield APP
    APP.unbind()


def throw_into(flow: Any, error: BaseException, policy: Any = None) -> Any:
    """Throw ``error`` into a flow driven by hand and return its next step, answering the
    flow's requests for the running connection's retry policy (``CONNECTION_POLICY``) with
    ``policy`` (default: a default `RetryPolicy`), as an executor does."""
    from dynamodel.core.flows import CONNECTION_POLICY
    from dynamodel.core.retry import RetryPolicy

    step = flow.throw(error)
    while step is CONNECTION_POLICY:
        step = flow.send(policy or RetryPolicy())
    return step


class SentLog(list[str]):
    """The operations the executors sent, in order; ``params[i]`` holds the parameters of the
    i-th (clear both with ``clear()``)."""

    def __init__(self) -> None:
        super().__init__()
        self.params: list[dict[str, Any]] = []

    def clear(self) -> None:
        super().clear()
        self.params.clear()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> SentLog:
    """Every request the executors send (sync and async), by operation."""
    import dynamodel.io.executors as executors

    log = SentLog()
    sync_send, async_send = executors._send_sync, executors._send_async

    def record_sync(connection: Any, client: Any, request: Any) -> Any:
        log.append(request.op)
        log.params.append(request.params)
        return sync_send(connection, client, request)

    async def record_async(connection: Any, client: Any, request: Any) -> Any:
        log.append(request.op)
        log.params.append(request.params)
        return await async_send(connection, client, request)

    monkeypatch.setattr(executors, "_send_sync", record_sync)
    monkeypatch.setattr(executors, "_send_async", record_async)
    return log


def user_items(items: list[dict[str, Any]], pk: str = "pk") -> list[dict[str, Any]]:
    """A raw scan's items without dynamodel's own records (the shard-layout records every
    model writes once per key: docs/sharding.md)."""
    return [i for i in items if not i.get(pk, {}).get("S", "").startswith(RESERVED_PREFIX)]


# -- running the same test through the sync and the async API ------------------------------------


class SyncIO:
    """Each operation through the sync API (``get``, ``save``, ``for``, ``.all()``...)."""

    name = "sync"

    async def get(self, model: Any, **kw: Any) -> Any:
        return model.get(**kw)

    async def get_or_none(self, model: Any, **kw: Any) -> Any:
        return model.get_or_none(**kw)

    async def save(self, obj: Any, **kw: Any) -> None:
        obj.save(**kw)

    async def create(self, obj: Any, **kw: Any) -> None:
        obj.create(**kw)

    async def update(self, obj: Any, *actions: Any, **kw: Any) -> Any:
        return obj.update(*actions, **kw)

    async def update_item(self, model: Any, key: Any, actions: Any, **kw: Any) -> Any:
        return model.update_item(key, actions, **kw)

    async def delete(self, obj: Any, **kw: Any) -> None:
        obj.delete(**kw)

    async def save_changes(self, obj: Any, **kw: Any) -> list[str]:
        return obj.save_changes(**kw)  # type: ignore[no-any-return]

    async def delete_item(self, model: Any, key: Any, **kw: Any) -> Any:
        return model.delete_item(key, **kw)

    async def iterate(self, query: Any) -> list[Any]:
        out = []
        for item in query:
            out.append(item)
        return out

    async def all(self, query: Any) -> list[Any]:
        return query.all()  # type: ignore[no-any-return]

    async def first(self, query: Any) -> Any:
        return query.first()

    async def count(self, query: Any) -> int:
        return query.count()  # type: ignore[no-any-return]

    async def pages(self, query: Any) -> list[Any]:
        return list(query.pages())

    async def fetch(self, collection: Any, **kw: Any) -> Any:
        return collection.fetch(**kw)

    async def create_table(self, table: Table, **kw: Any) -> dict[str, Any]:
        return table.create(**kw)

    async def describe_table(self, table: Table) -> dict[str, Any]:
        return table.describe()

    async def delete_table(self, table: Table, **kw: Any) -> None:
        table.delete(**kw)


class AsyncIO(SyncIO):
    """Each operation through the async API (``aget``, ``asave``, ``async for``, ``.aall()``...)."""

    name = "async"

    async def get(self, model: Any, **kw: Any) -> Any:
        return await model.aget(**kw)

    async def get_or_none(self, model: Any, **kw: Any) -> Any:
        return await model.aget_or_none(**kw)

    async def save(self, obj: Any, **kw: Any) -> None:
        await obj.asave(**kw)

    async def create(self, obj: Any, **kw: Any) -> None:
        await obj.acreate(**kw)

    async def update(self, obj: Any, *actions: Any, **kw: Any) -> Any:
        return await obj.aupdate(*actions, **kw)

    async def update_item(self, model: Any, key: Any, actions: Any, **kw: Any) -> Any:
        return await model.aupdate_item(key, actions, **kw)

    async def delete(self, obj: Any, **kw: Any) -> None:
        await obj.adelete(**kw)

    async def save_changes(self, obj: Any, **kw: Any) -> list[str]:
        return await obj.asave_changes(**kw)  # type: ignore[no-any-return]

    async def delete_item(self, model: Any, key: Any, **kw: Any) -> Any:
        return await model.adelete_item(key, **kw)

    async def iterate(self, query: Any) -> list[Any]:
        return [item async for item in query]

    async def all(self, query: Any) -> list[Any]:
        return await query.aall()  # type: ignore[no-any-return]

    async def first(self, query: Any) -> Any:
        return await query.afirst()

    async def count(self, query: Any) -> int:
        return await query.acount()  # type: ignore[no-any-return]

    async def pages(self, query: Any) -> list[Any]:
        return [page async for page in query.apages()]

    async def fetch(self, collection: Any, **kw: Any) -> Any:
        return await collection.afetch(**kw)

    async def create_table(self, table: Table, **kw: Any) -> dict[str, Any]:
        return await table.acreate(**kw)

    async def describe_table(self, table: Table) -> dict[str, Any]:
        return await table.adescribe()

    async def delete_table(self, table: Table, **kw: Any) -> None:
        await table.adelete(**kw)


@pytest.fixture(params=[SyncIO(), AsyncIO()], ids=["sync", "async"])
def io(request: pytest.FixtureRequest) -> SyncIO:
    """The sync or the async API (tests using it run once with each)."""
    return request.param  # type: ignore[no-any-return]
