"""Issue 23, a newcomer's first hour: errors that say what went wrong and what to do."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import pickle
import socket
import sys
import warnings
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from dynamodel import (
    ConfigurationError,
    Connection,
    DynamodelError,
    Model,
    RetryPolicy,
    Table,
    TableNotFound,
    TransactWrite,
)

HOUR = Table("first-hour")


class Note(Model):
    class Meta:
        table = HOUR
        pk = "NOTE#{note_id}"
        sk = "NOTE"

    note_id: str
    text: str = ""


def _missing(op: str = "GetItem") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "ResourceNotFoundException", "Message": "Requested resource"},
            "ResponseMetadata": {"HTTPStatusCode": 400, "RetryAttempts": 0},
        },
        op,
    )


class _Client:
    """A stand-in client with boto3's ``meta`` that fails every call with ``error``."""

    def __init__(self, error: BaseException, region: str = "eu-west-3") -> None:
        self.meta = SimpleNamespace(region_name=region, endpoint_url="http://db.example:8000")
        self.error = error
        self.calls = 0

    def __getattr__(self, op: str) -> Any:
        if op.startswith("__"):
            raise AttributeError(op)

        def method(**params: Any) -> Any:
            self.calls += 1
            raise self.error

        return method


class _AsyncClient(_Client):
    def __getattr__(self, op: str) -> Any:
        sync = super().__getattr__(op)

        async def method(**params: Any) -> Any:
            return sync(**params)

        return method


@pytest.fixture
def bound() -> Any:
    def bind(error: BaseException) -> tuple[_Client, _AsyncClient]:
        sync, async_ = _Client(error), _AsyncClient(error)
        retry = RetryPolicy(base=0, cap=0)
        connection = Connection(client=sync, aclient=async_, retry=retry)
        HOUR.bind(name="first-hour-prod", connection=connection)
        return sync, async_

    yield bind
    HOUR.unbind()


def _check_table_not_found(error: TableNotFound) -> None:
    text = str(error)
    assert error.code == "ResourceNotFoundException"
    assert isinstance(error.__cause__, ClientError)
    assert error.table == "first-hour-prod"
    assert (error.region, error.endpoint) == ("eu-west-3", "http://db.example:8000")
    assert "'first-hour-prod'" in text and "eu-west-3" in text and "http://db.example:8000" in text
    assert "table.create()" in text and "dynamodel table create" in text
    assert "check the region/endpoint" in text


def test_table_not_found_names_table_region_endpoint_and_fix(bound: Any) -> None:
    bound(_missing())
    with pytest.raises(TableNotFound) as info:
        Note.get(note_id="n1")
    _check_table_not_found(info.value)


def test_table_not_found_async_says_the_same(bound: Any) -> None:
    bound(_missing())
    with pytest.raises(TableNotFound) as info:
        asyncio.run(Note.aget(note_id="n1"))
    _check_table_not_found(info.value)


def test_table_not_found_in_a_transaction_names_the_table(bound: Any) -> None:
    bound(_missing("TransactWriteItems"))
    with pytest.raises(TableNotFound) as info, TransactWrite() as tx:
        tx.put(Note(note_id="n1"))
        tx.put(Note(note_id="n2"))
    assert info.value.table == "first-hour-prod"


def test_table_names_of_batches_and_transactions() -> None:
    from dynamodel.core.errors import table_names

    assert table_names({"TableName": "a"}) == ["a"]
    assert table_names({"RequestItems": {"a": [], "b": []}}) == ["a", "b"]
    items = [{"Put": {"TableName": "a"}}, {"Update": {"TableName": "b"}}]
    items.append({"Get": {"TableName": "a"}})
    assert table_names({"TransactItems": items}) == ["a", "b"]
    assert table_names({}) == []


# -- no region, no credentials, no endpoint ----------------------------------------------------


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (NoRegionError(), ["AWS_DEFAULT_REGION", "region="]),
        (NoCredentialsError(), ["AWS_ACCESS_KEY_ID", "AWS_PROFILE"]),
        (
            EndpointConnectionError(endpoint_url="http://localhost:1"),
            ["http://localhost:1", "endpoint"],
        ),
    ],
)
def test_setup_errors_say_how_to_fix_them(bound: Any, error: Exception, words: list[str]) -> None:
    sync, _ = bound(error)
    with pytest.raises(type(error)) as info:  # `except NoRegionError` still catches it
        Note.get(note_id="n1")
    raised = info.value
    assert isinstance(raised, ConfigurationError) and isinstance(raised, DynamodelError)
    assert raised.__cause__ is error
    assert raised.original == type(error).__name__
    text = str(raised)
    for word in [*words, "dynamodel local", "export", "eu-west-3"]:
        assert word in text, (word, text)
    assert sync.calls == 1  # not retried
    with pytest.raises(ConfigurationError):
        asyncio.run(Note.aget(note_id="n1"))
    # the run-time class pickles as the base class (its message kept)
    copy = pickle.loads(pickle.dumps(raised))
    assert type(copy) is ConfigurationError and str(copy) == text


def test_setup_error_keeps_botocore_attributes() -> None:
    from dynamodel.core.errors import map_setup_error

    error = map_setup_error(EndpointConnectionError(endpoint_url="http://x:1"))
    assert isinstance(error, EndpointConnectionError)
    assert error.kwargs == {"endpoint_url": "http://x:1"}
    assert map_setup_error(ValueError("no")) is None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("transport", ["lean", "boto3"])
def test_no_region_from_a_real_client(monkeypatch: pytest.MonkeyPatch, transport: str) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    HOUR.bind(connection=Connection(transport=transport))
    try:
        with pytest.raises(NoRegionError) as info:
            Note.get(note_id="n1")
    finally:
        HOUR.unbind()
    assert isinstance(info.value, ConfigurationError)
    assert "AWS_DEFAULT_REGION" in str(info.value)


@pytest.mark.parametrize("transport", ["lean", "boto3"])
def test_no_server_at_the_endpoint(monkeypatch: pytest.MonkeyPatch, transport: str) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    from botocore.config import Config

    url = f"http://127.0.0.1:{_closed_port()}"
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=1)
    HOUR.bind(
        connection=Connection(
            endpoint_url=url, region="us-east-1", transport=transport, botocore_config=config
        )
    )
    try:
        with pytest.raises(EndpointConnectionError) as info:
            Note.get(note_id="n1")
    finally:
        HOUR.unbind()
    assert isinstance(info.value, ConfigurationError)
    assert url in str(info.value) and "dynamodel local" in str(info.value)


# -- LocalDynamoDB without moto ----------------------------------------------------------------


def test_local_without_moto_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from dynamodel.local import LocalDynamoDB

    monkeypatch.setitem(sys.modules, "moto", None)  # "import moto" now fails
    for name in [m for m in sys.modules if m.startswith("moto.")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ImportError) as info:
        LocalDynamoDB(port=0).start()
    assert isinstance(info.value, ModuleNotFoundError) and info.value.name == "moto"
    assert "pip install 'dynamodel[local]'" in str(info.value)
    assert "moto" in str(info.value)


# -- rich markup must not eat "[async]", "[local]" or a user's brackets -------------------------


def _recording_console() -> Any:
    from rich.console import Console

    return Console(file=io.StringIO(), width=200, color_system=None, soft_wrap=True)


def _printed(console: Any) -> str:
    return str(console.file.getvalue())


def test_demo_skip_message_keeps_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from dynamodel import demo

    async def no_async(**key: Any) -> Any:
        raise ImportError("async needs aioboto3: pip install 'dynamodel[async]'")

    monkeypatch.setattr(demo.Customer, "aget", no_async)
    console = _recording_console()
    asyncio.run(demo._async_tour(console, Connection(client=object())))
    assert "pip install 'dynamodel[async]'" in _printed(console)


def test_missing_local_extra_message_keeps_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from dynamodel.cli import _app

    console = _recording_console()
    monkeypatch.setattr(_app, "err_console", console)
    with pytest.raises(typer.Exit):
        _app._missing_local_extra(ModuleNotFoundError("no", name="moto"))
    assert "pip install 'dynamodel[local]'" in _printed(console)


def test_cli_messages_keep_user_brackets(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    import typer

    from dynamodel.cli import _common, _migrate, _table
    from dynamodel.migrations.files import Migration
    from dynamodel.schema import Change

    console = _recording_console()
    for module in (_common, _migrate, _table):
        monkeypatch.setattr(module, "console", console)
    monkeypatch.setattr(_common, "err_console", console)
    migration = Migration(version="0001", name="add [bold] tags", path=tmp_path, checksum="x")
    reporter = _migrate.RichReporter()
    reporter.migration_started(migration, "up", False)
    reporter.migration_finished(migration, "up", 1.0)
    reporter.migration_failed(migration, "up", RuntimeError("x"))
    change = Change(
        subject="GSI [gsi1]", declared="[a]", live="[b]", safety="destructive", note="[why]"
    )
    console.print(_table._changes_table([change]))
    _table._report_refused([change], destructive=False, out=console)
    with pytest.raises(typer.Exit):
        _common.fail("value [async] refused")
    text = _printed(console)
    assert text.count("add [bold] tags") == 3
    for kept in ("GSI [gsi1]", "[a]", "[b]", "[why]", "value [async] refused"):
        assert kept in text, (kept, text)


def test_local_start_errors_keep_brackets(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from dynamodel.cli import _app

    console = _recording_console()
    monkeypatch.setattr(_app, "err_console", console)

    class Failing:
        def __init__(self, **options: Any) -> None:
            pass

        def start(self) -> str:
            raise RuntimeError("could not start on [::1]:8000 [in use]")

    monkeypatch.setattr("dynamodel.local.LocalDynamoDB", Failing)
    with pytest.raises(typer.Exit):
        _app.local(host="::1", port=8000, region="us-east-1", log_requests=False)
    assert "could not start on [::1]:8000 [in use]" in _printed(console)


# -- CLI help: flags take no value -------------------------------------------------------------


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    for name, sub in getattr(command, "commands", {}).items():
        paths.extend(_command_paths(sub, (*path, name)))
    return paths


def test_help_of_every_command_shows_no_bool_value() -> None:
    import typer.main
    from typer.testing import CliRunner

    from dynamodel.cli._app import app

    paths = _command_paths(typer.main.get_command(app))
    assert ("table", "create") in paths and ("table", "delete") in paths and len(paths) > 10
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert "--help" in result.output, path
        assert "<bool>" not in result.output, (path, result.output)
    create = runner.invoke(app, ["table", "create", "--help"], env={"COLUMNS": "200"}).output
    assert "--exist-ok" in create


# -- naive datetimes ---------------------------------------------------------------------------


class Event(Model):
    class Meta:
        table = HOUR
        pk = "EVENT#{event_id}"
        sk = "AT#{at}"

    event_id: str
    at: dt.datetime
    seen: dt.datetime | None = None
    extra: dict[str, Any] = {}


NAIVE = dt.datetime(2026, 5, 1, 9, 30)
AWARE = NAIVE.replace(tzinfo=dt.UTC)


def test_a_naive_datetime_in_a_key_is_refused_before_any_request(bound: Any) -> None:
    from dynamodel import ValidationError

    sync, _ = bound(AssertionError("nothing may be sent"))
    for attempt in (
        lambda: Event(event_id="e1", at=NAIVE).save(),
        lambda: Event.get(event_id="e1", at=NAIVE),
        lambda: Event.query(event_id="e1").sk_ge(at=NAIVE).all(),
        lambda: Event.build_key(event_id="e1", at="2026-05-01T09:30:00"),
    ):
        with warnings.catch_warnings(), pytest.raises(ValidationError) as info:
            warnings.simplefilter("error")  # refused, not warned about first
            attempt()
        text = str(info.value)
        assert "Event" in text and "'at'" in text and "naive datetime" in text, text
        assert "2026-05-01T09:30:00" in text and "aware" in text
    assert sync.calls == 0
    assert Event.build_key(event_id="e1", at=AWARE)["sk"] == {"S": "AT#2026-05-01T09:30:00.000000Z"}


def test_a_naive_datetime_elsewhere_is_stored_with_a_warning() -> None:
    from dynamodel import NaiveDatetimeWarning

    with pytest.warns(NaiveDatetimeWarning, match=r"Event\.seen = naive datetime 2026-05-01"):
        item = Event(event_id="e1", at=AWARE, seen=NAIVE).to_item()
    assert item["seen"] == {"S": "2026-05-01T09:30:00.000000"}  # as before: no zone
    with pytest.warns(NaiveDatetimeWarning, match="AwareDatetime"):
        Event(event_id="e1", at=AWARE, extra={"when": NAIVE}).to_item()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Event(event_id="e1", at=AWARE, seen=AWARE, extra={"when": AWARE}).to_item()
