"""Embedded local DynamoDB for tests, demos and development.

`LocalDynamoDB` runs moto's DynamoDB emulation behind a real HTTP endpoint in
a background thread of the current process, so any client (boto3, aioboto3, the
AWS CLI, another process) can talk to it through ``endpoint_url``::

    with LocalDynamoDB() as db:
        client = boto3.client("dynamodb", endpoint_url=db.endpoint_url, ...)

Requires the ``local`` extra (``pip install 'dynamodel[local]'``). moto is imported
only when a server is started, so importing this module stays cheap.

Note that moto keeps its state in process-wide globals: every `LocalDynamoDB`
in one process (and any ``moto.mock_aws`` active in it) sees the same tables, and
`LocalDynamoDB.reset` clears all of them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

__all__ = ["LocalDynamoDB"]

_STARTUP_TIMEOUT = 10.0
_POLL_INTERVAL = 0.05
# How often the server loop checks for shutdown; werkzeug's default of 0.5 s makes
# every stop() take half a second.
_SERVE_POLL_INTERVAL = 0.05

_DUMMY_CREDENTIAL = "testing"
_ENV_KEYS = (
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
)


_LOCAL_PACKAGES = ("moto", "werkzeug", "flask")


def _missing_extra(exc: ModuleNotFoundError) -> ModuleNotFoundError:
    """The error to raise when a package of the ``local`` extra is missing (else ``exc``)."""
    package = (exc.name or "").split(".")[0]
    if package not in _LOCAL_PACKAGES:
        return exc
    return ModuleNotFoundError(
        f"LocalDynamoDB needs {package}, which is not installed: pip install 'dynamodel[local]'",
        name=package,
    )


def _make_server(host: str, port: int, log_requests: bool) -> Any:
    """Build a ``ThreadedMotoServer`` that cannot hang on a failed bind.

    Upstream ``ThreadedMotoServer.start()`` waits forever when the port is taken:
    werkzeug exits the server thread before the "ready" event is set. This subclass
    records the error and sets the event instead, and can silence werkzeug's
    one-line-per-request log.
    """
    from moto.moto_server import werkzeug_app
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import WSGIRequestHandler, make_server

    base_handler: type[WSGIRequestHandler] = getattr(
        werkzeug_app, "MotoRequestHandler", WSGIRequestHandler
    )

    class _QuietHandler(base_handler):  # type: ignore[valid-type,misc]
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    handler = base_handler if log_requests else _QuietHandler

    class _Server(ThreadedMotoServer):
        startup_error: BaseException | None = None

        def _server_entry(self) -> None:
            try:
                app = _known_regions_only(
                    _serialised(
                        werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
                    )
                )
                self._server = make_server(
                    self._ip_address, self._port, app, True, request_handler=handler
                )
            except BaseException as exc:  # werkzeug raises SystemExit on "port in use"
                self.startup_error = exc
                self._server_ready_event.set()
                return
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=_SERVE_POLL_INTERVAL)

    return _Server(ip_address=host, port=port, verbose=False)


# moto checks a condition and writes without a lock, so two threads serving requests can both
# pass ``version = 3`` and both write: a lost update DynamoDB never allows. One lock for the
# whole process (moto's state is process-wide) applies requests one at a time.
_REQUEST_LOCK = threading.Lock()


def _serialised(app: Any) -> Any:
    """A WSGI app that handles one request at a time (conditional writes become atomic)."""

    def handle(environ: Any, start_response: Any) -> list[bytes]:
        with _REQUEST_LOCK:
            return list(app(environ, start_response))

    return handle


_UNKNOWN_REGION_TYPE = "com.amazonaws.dynamodb.v20120810#UnrecognizedClientException"


def _signed_region(environ: Mapping[str, Any]) -> str | None:
    """The region of a DynamoDB request's SigV4 credential scope, or ``None`` (unsigned, or
    another service)."""
    header = str(environ.get("HTTP_AUTHORIZATION") or "")
    marker = "Credential="
    start = header.find(marker)
    if start < 0:
        return None
    scope = header[start + len(marker) :].split(",", 1)[0].strip().split("/")
    # ACCESS_KEY/DATE/REGION/SERVICE/aws4_request
    if len(scope) < 5 or scope[-2] != "dynamodb":
        return None
    return scope[-3]


def _known_regions() -> frozenset[str]:
    """The regions moto serves DynamoDB in (asking for another one makes it raise)."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return frozenset(dynamodb_backends[DEFAULT_ACCOUNT_ID].regions)


def _unknown_region_message(region: str, known: frozenset[str]) -> str:
    """The error message of a request signed for a region the local server does not serve."""
    return (
        f"dynamodel local: unknown region {region!r}; use one of {', '.join(sorted(known))}, "
        "e.g. us-east-1 (set AWS_DEFAULT_REGION, or region_name=... on the client)"
    )


def _known_regions_only(app: Any) -> Any:
    """A WSGI app that answers a request signed for a region moto does not know with a 400
    DynamoDB error at once (moto would raise, print a traceback and answer 500, which clients
    retry for seconds). ``MOTO_ALLOW_NONEXISTENT_REGION=true`` turns the check off."""
    import json

    from moto.settings import allow_unknown_region

    known = _known_regions()

    def handle(environ: Any, start_response: Any) -> Any:
        region = _signed_region(environ)
        if region is None or region in known or allow_unknown_region():
            return app(environ, start_response)
        body = json.dumps(
            {"__type": _UNKNOWN_REGION_TYPE, "message": _unknown_region_message(region, known)}
        ).encode()
        start_response(
            "400 Bad Request",
            [
                ("Content-Type", "application/x-amz-json-1.0"),
                ("Content-Length", str(len(body))),
                ("x-amzn-ErrorType", "UnrecognizedClientException"),
            ],
        )
        return [body]

    return handle


def _url_host(host: str) -> str:
    """Host part of a URL that reaches a server bound to ``host``."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    if ":" in host:
        return f"[{host}]"
    return host


class LocalDynamoDB:
    """A moto-backed DynamoDB endpoint served from a background thread.

    Args:
        host: Interface to bind; loopback by default. Use ``0.0.0.0`` only if other
            machines must reach it (there is no authentication).
        port: TCP port; ``0`` picks a free one (see `port` after `start`).
        region: Region reported by `env`; moto keeps tables per region.
        log_requests: Log every HTTP request to stderr (werkzeug's access log).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "us-east-1",
        *,
        log_requests: bool = False,
    ) -> None:
        self.host = host
        self.region = region
        self.log_requests = log_requests
        self._requested_port = port
        self._port: int | None = None
        self._server: Any = None
        self._saved_env: dict[str, str | None] | None = None
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> str:
        """Start serving and return the endpoint URL once the server answers.

        Raises:
            RuntimeError: if already running, the port cannot be bound, or the server
                does not answer within ~10 seconds.
            ModuleNotFoundError: if moto (or werkzeug, flask) is not installed; the
                message names the extra to install (``pip install 'dynamodel[local]'``).
        """
        with self._lock:
            if self._server is not None:
                raise RuntimeError(f"LocalDynamoDB is already running at {self.endpoint_url}")
            try:
                server = _make_server(self.host, self._requested_port, self.log_requests)
            except ModuleNotFoundError as exc:
                missing = _missing_extra(exc)
                if missing is exc:
                    raise
                raise missing from exc
            server.start()  # returns once the socket is bound (or binding failed)
            if server.startup_error is not None:
                err = server.startup_error
                raise RuntimeError(
                    f"could not start local DynamoDB on {self.host}:{self._requested_port}"
                    " (is the port already in use?)"
                ) from err
            self._server = server
            self._port = int(server.get_host_and_port()[1])
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self.endpoint_url

    def stop(self) -> None:
        """Stop the server (no-op if not running) and undo `apply_env`."""
        with self._lock:
            server, self._server, self._port = self._server, None, None
        if server is not None:
            server.stop()
        if self._saved_env is not None:
            self.restore_env()

    @property
    def running(self) -> bool:
        """Whether `start` has been called and `stop` has not."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound TCP port (the real one when started with ``port=0``)."""
        if self._port is None:
            raise RuntimeError("LocalDynamoDB is not running; call start() first")
        return self._port

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{_url_host(self.host)}:{self.port}"

    def reset(self) -> None:
        """Delete all tables and data (POSTs to moto's ``/moto-api/reset``).

        This resets every moto backend in the process, not just this server's.
        """
        with self._open(f"{self.endpoint_url}/moto-api/reset", data=b"") as resp:
            if resp.status != 200:
                raise RuntimeError(f"moto reset failed with HTTP {resp.status}")

    def _open(self, url: str, data: bytes | None = None) -> Any:
        import urllib.request

        # Never go through an HTTP(S)_PROXY from the environment to reach loopback.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        return opener.open(urllib.request.Request(url, data=data), timeout=5)

    def _wait_until_ready(self) -> None:
        import urllib.error

        deadline = time.monotonic() + _STARTUP_TIMEOUT
        url = f"{self.endpoint_url}/moto-api/config"  # cheap, read-only
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with self._open(url):
                    return
            except urllib.error.HTTPError:
                return  # any HTTP answer means the server is up
            except OSError as exc:
                last_error = exc
                time.sleep(_POLL_INTERVAL)
        raise RuntimeError(
            f"local DynamoDB at {self.endpoint_url} did not answer within "
            f"{_STARTUP_TIMEOUT:.0f}s: {last_error}"
        )

    # -- environment ---------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Environment variables pointing AWS SDKs at this server, with dummy creds."""
        return {
            "AWS_ENDPOINT_URL_DYNAMODB": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": _DUMMY_CREDENTIAL,
            "AWS_SECRET_ACCESS_KEY": _DUMMY_CREDENTIAL,
            "AWS_DEFAULT_REGION": self.region,
        }

    def apply_env(self) -> dict[str, str | None]:
        """Set `env` in ``os.environ``; return the previous values (``None`` = unset).

        The previous values are also remembered, so `restore_env` (or
        `stop`) can undo it without arguments.
        """
        values = self.env()
        previous = {key: os.environ.get(key) for key in values}
        if self._saved_env is None:
            self._saved_env = dict(previous)
        os.environ.update(values)
        return previous

    def restore_env(self, previous: Mapping[str, str | None] | None = None) -> None:
        """Undo `apply_env`, using ``previous`` or the values it remembered."""
        if previous is None:
            previous = self._saved_env or {}
        self._saved_env = None
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    # -- context manager -----------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.endpoint_url if self.running else "stopped"
        return f"<LocalDynamoDB {where} region={self.region}>"
