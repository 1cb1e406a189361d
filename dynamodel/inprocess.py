"""A DynamoDB inside the test process: no port, no subprocess, no network, no Java or Rust.

`InProcessDynamoDB` answers dynamodel's sync and async clients from moto's DynamoDB emulation,
in the calling thread::

    with InProcessDynamoDB() as db:      # the default connection while the block runs
        db.create_tables(app_table)
        User(user_id="u1", name="Ann").save()
        assert (await User.aget(user_id="u1")).name == "Ann"

Requests keep DynamoDB's real wire shapes, so dynamodel holds no second implementation of
DynamoDB: a data-plane call (``get_item``, ``query``, ``transact_write_items``...) is checked
and serialised to DynamoDB's JSON exactly as the lean transport sends it, handled by moto's own
request handler (the one its server runs), and the JSON answer is read back by the lean
transport's response reader into boto3's dicts and ``ClientError`` subclasses. Table management
(``create_table``, ``describe_table``...) goes through a real botocore client whose HTTP send is
answered by the same handler. What moto supports, this supports; docs/local.md lists where moto
differs from DynamoDB.

Each instance keeps its own tables (its own moto account id), so instances, the moto server of
``dynamodel local`` and moto's ``mock_aws`` in one process never see each other's data. moto is
imported when the first request is handled (the ``local`` extra).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import Counter
from types import TracebackType
from typing import Any, Self

from dynamodel.io.clients import Connection, swap_default_connection
from dynamodel.io.lean.http11 import Response
from dynamodel.io.lean.protocol import ResponseReader, request_body
from dynamodel.io.lean.spec import CONTENT_TYPE, DATA_OPERATIONS, OPERATIONS, TARGET_PREFIX
from dynamodel.local import _REQUEST_LOCK  # moto's state is process-wide: one request at a time

__all__ = ["AsyncInProcessClient", "InProcessClient", "InProcessDynamoDB"]

#: moto account ids of the instances: far from moto's default (123456789012)
_ACCOUNT_IDS = itertools.count(900_000_000_001)
_ACCOUNT_LOCK = threading.Lock()
_CREDENTIAL = "testing"
_session_lock = threading.Lock()
_session: Any = None


def _moto() -> tuple[Any, Any]:
    """moto's request class and DynamoDB handler (imported on first use)."""
    try:
        from moto.core.request import Request
        from moto.dynamodb.responses import DynamoHandler
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("InProcessDynamoDB needs moto: pip install 'dynamodel[local]'") from exc
    return Request, DynamoHandler


def _botocore_session() -> Any:
    """One botocore session for every instance's control-plane client (its service model
    is loaded once per process)."""
    global _session
    with _session_lock:
        if _session is None:
            import botocore.session

            _session = botocore.session.Session()
        return _session


class _Body:
    """The raw body botocore reads from an ``AWSResponse``."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


class InProcessDynamoDB:
    """moto's DynamoDB in this process, behind clients with boto3's interface.

    Args:
        region: the region requests name (tables are per region, as on AWS).

    Attributes:
        account_id: the moto account that holds this instance's tables.
        calls: how many times each DynamoDB operation was called (``calls["GetItem"]``).
    """

    def __init__(self, region: str = "us-east-1") -> None:
        if not isinstance(region, str) or not region:
            raise ValueError(f"InProcessDynamoDB region must be a region name, got {region!r}")
        with _ACCOUNT_LOCK:
            self.account_id = str(next(_ACCOUNT_IDS))
        self.region = region
        self.calls: Counter[str] = Counter()
        self._url = f"https://dynamodb.{region}.amazonaws.com/"
        self._headers = {
            "Content-Type": CONTENT_TYPE,
            "x-moto-account-id": self.account_id,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={_CREDENTIAL}/20250101/{region}/dynamodb/"
                "aws4_request, SignedHeaders=host, Signature=0"
            ),
        }
        self._reader = ResponseReader()
        self._control: Any = None
        self._lock = threading.Lock()
        self._client = InProcessClient(self)
        self._aclient = AsyncInProcessClient(self)
        self._connection: Connection | None = None
        self._previous: list[Connection] = []

    def __repr__(self) -> str:
        return f"InProcessDynamoDB(region={self.region!r}, account_id={self.account_id!r})"

    # -- clients and connections ------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """A name for this instance where an endpoint is shown (nothing listens there)."""
        return f"inprocess://{self.account_id}/{self.region}"

    def client(self) -> InProcessClient:
        """The sync client (boto3's low-level interface)."""
        return self._client

    def aclient(self) -> AsyncInProcessClient:
        """The async client (aioboto3's interface: every operation is a coroutine)."""
        return self._aclient

    def connection(self, **options: Any) -> Connection:
        """A new `Connection` with this instance's sync and async clients.

        ``options`` go to `Connection` (``retry``, ``cache``, ``return_consumed_capacity``...).
        """
        return Connection(client=self._client, aclient=self._aclient, **options)

    def use(self) -> Self:
        """Make this instance the default connection (every table not bound to its own) until
        `restore` or the end of a ``with`` block."""
        from dynamodel.ops.shard_guard import forget_shard_checks

        if self._connection is None:
            self._connection = self.connection()
        forget_shard_checks()  # records checked against another backend's tables
        self._previous.append(swap_default_connection(self._connection))
        return self

    def restore(self) -> None:
        """Put back the default connection `use` replaced."""
        if not self._previous:
            raise RuntimeError(f"{self!r} is not the default connection: call use() first")
        swap_default_connection(self._previous.pop())

    def __enter__(self) -> Self:
        return self.use()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()
        if not self._previous:  # the outermost block: its tables go with it
            self.close()

    # -- tables and state -------------------------------------------------------------------

    def create_tables(self, *tables: Any) -> None:
        """Create ``tables`` (`dynamodel.Table` objects) here, empty, as `Table.create` does
        (indexes, TTL, PITR), whatever connection the tables are bound to."""
        from dynamodel.io.executors import run
        from dynamodel.modelling.table import Table

        connection = self._connection or self.connection()
        for table in tables:
            if not isinstance(table, Table):
                raise TypeError(f"create_tables takes dynamodel Table objects, got {table!r}")
            run(table._create_flow(exist_ok=False, timeout=10.0, poll=0.0), connection)

    def table_names(self) -> list[str]:
        """The names of this instance's tables."""
        names: list[str] = self._client.list_tables().get("TableNames", [])
        return names

    def reset(self) -> None:
        """Delete every table of this instance (other instances are untouched), and forget the
        shard-count records this process has checked."""
        from dynamodel.ops.shard_guard import forget_shard_checks

        with _REQUEST_LOCK:
            from moto.dynamodb.models import dynamodb_backends

            accounts = dynamodb_backends
            if self.account_id in accounts:
                del accounts[self.account_id]
        forget_shard_checks()
        self.calls.clear()

    def close(self) -> None:
        """Drop this instance's tables and its control-plane client."""
        self.reset()
        control, self._control = self._control, None
        if control is not None:
            control.close()

    # -- request handling -------------------------------------------------------------------

    def _dispatch(self, url: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, Any]:
        if "MOTO_ACCOUNT_ID" in os.environ:
            raise RuntimeError(
                "InProcessDynamoDB cannot keep its tables apart while MOTO_ACCOUNT_ID is set "
                f"(={os.environ['MOTO_ACCOUNT_ID']!r}): moto would put every instance's tables "
                "in that one account; unset it"
            )
        request_class, handler = _moto()
        request = request_class.from_primitives("POST", url, headers, body)
        try:
            with _REQUEST_LOCK:
                status, response_headers, response_body = handler.dispatch(request)
        except KeyError as exc:
            if exc.args == (self.region,):  # moto has no backend for this region
                raise ValueError(
                    f"InProcessDynamoDB region {self.region!r} is not a DynamoDB region "
                    "(moto knows botocore's regions, e.g. 'us-east-1')"
                ) from None
            raise
        return int(status), response_headers, response_body

    def send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Handle data operation ``method`` (``"get_item"``...) with boto3's keyword
        arguments; returns boto3's response dict or raises its ``ClientError``."""
        operation = OPERATIONS[method]
        body = request_body(method, params)
        headers = {**self._headers, "X-Amz-Target": f"{TARGET_PREFIX}.{operation}"}
        self.calls[operation] += 1
        status, raw_headers, raw_body = self._dispatch(self._url, headers, body)
        data = raw_body.encode("utf-8") if isinstance(raw_body, str) else bytes(raw_body)
        response = Response(
            status=status,
            reason="",
            headers={str(k).lower(): str(v) for k, v in raw_headers.items()},
            body=data,
            keep_alive=True,
        )
        return self._reader.response(operation, response, 0)

    def control_client(self) -> Any:
        """The botocore client for every other operation; its HTTP send is answered here."""
        if self._control is None:
            with self._lock:
                if self._control is None:
                    from botocore.config import Config

                    control = _botocore_session().create_client(
                        "dynamodb",
                        region_name=self.region,
                        endpoint_url=self._url.rstrip("/"),
                        aws_access_key_id=_CREDENTIAL,
                        aws_secret_access_key=_CREDENTIAL,
                        config=Config(retries={"total_max_attempts": 1}),
                    )
                    control.meta.events.register("before-send.dynamodb", self._answer_control)
                    self._control = control
        return self._control

    def _answer_control(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        headers = {
            str(k): v.decode("utf-8") if isinstance(v, bytes) else str(v)
            for k, v in request.headers.items()
        }
        headers["x-moto-account-id"] = self.account_id
        target = str(headers.get("X-Amz-Target", ""))
        self.calls[target.rsplit(".", 1)[-1]] += 1
        body = request.body or b""
        status, raw_headers, raw_body = self._dispatch(request.url, headers, body)
        data = raw_body.encode("utf-8") if isinstance(raw_body, str) else bytes(raw_body)
        return AWSResponse(request.url, status, dict(raw_headers), _Body(data))

    def call_control(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Any operation other than the ten data-plane ones, through botocore."""
        from botocore.exceptions import ClientError

        try:
            response: dict[str, Any] = getattr(self.control_client(), method)(**params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            cls = self._reader.exceptions.from_code(code)
            if type(exc) is cls:
                raise
            raise cls(exc.response, exc.operation_name).with_traceback(exc.__traceback__) from None
        return response


class _Meta:
    """The part of boto3's ``client.meta`` dynamodel reads."""

    def __init__(self, db: InProcessDynamoDB) -> None:
        self.endpoint_url = db.endpoint_url
        self.region_name = db.region


class InProcessClient:
    """A sync client of an `InProcessDynamoDB` with boto3's low-level interface: the ten
    data-plane operations, every other DynamoDB operation (through botocore), ``exceptions``
    and ``meta``."""

    def __init__(self, db: InProcessDynamoDB) -> None:
        self.db = db
        self.meta = _Meta(db)
        self.exceptions = db._reader.exceptions

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.db!r})"

    def __getattr__(self, name: str) -> Any:
        db = self.db
        if name in DATA_OPERATIONS:

            def data_operation(**params: Any) -> dict[str, Any]:
                return db.send(name, params)

            data_operation.__name__ = name
            self.__dict__[name] = data_operation  # found directly from now on
            return data_operation
        if name in OPERATIONS:

            def control_operation(**params: Any) -> dict[str, Any]:
                return db.call_control(name, params)

            control_operation.__name__ = name
            self.__dict__[name] = control_operation
            return control_operation
        if name in ("get_paginator", "get_waiter", "can_paginate"):
            return getattr(db.control_client(), name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def close(self) -> None:
        """Nothing to release (the instance's `close` drops its tables)."""


class AsyncInProcessClient:
    """The async twin of `InProcessClient`: each operation is a coroutine (aioboto3's
    interface), answered in the calling thread without blocking on I/O."""

    def __init__(self, db: InProcessDynamoDB) -> None:
        self.db = db
        self.meta = _Meta(db)
        self.exceptions = db._reader.exceptions

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.db!r})"

    def __getattr__(self, name: str) -> Any:
        db = self.db
        if name in DATA_OPERATIONS:

            async def data_operation(**params: Any) -> dict[str, Any]:
                return db.send(name, params)

            data_operation.__name__ = name
            self.__dict__[name] = data_operation  # found directly from now on
            return data_operation
        if name in OPERATIONS:

            async def control_operation(**params: Any) -> dict[str, Any]:
                return db.call_control(name, params)

            control_operation.__name__ = name
            self.__dict__[name] = control_operation
            return control_operation
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    async def close(self) -> None:
        """Nothing to release."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None
