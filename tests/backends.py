"""The test suite's two DynamoDB servers: moto's (default) and dynoxide.

Select one with ``pytest --backend=dynoxide`` or ``DYNAMODEL_TEST_BACKEND=dynoxide``.

dynoxide (crate ``dynoxide-rs``, MIT OR Apache-2.0) is a DynamoDB emulator on SQLite whose
behaviour is checked against real DynamoDB by a public conformance suite. Its binary is built
once with cargo into a cache folder outside the repository (``DYNAMODEL_DYNOXIDE_DIR``, default
``~/.cache/dynamodel/dynoxide-<version>``; ``DYNAMODEL_DYNOXIDE=/path/to/dynoxide`` uses a
binary you built yourself) and serves in memory on a free port of 127.0.0.1, stopped after the
session. ``python tests/backends.py build-dynoxide`` builds it ahead of time (about 5 minutes on
2 cores). Without the binary and without cargo the backend is unavailable: tests skip with the
reason, unless ``DYNAMODEL_REQUIRE_DYNOXIDE=1`` (set by ``.ci/run``) makes that a failure.

AWS's DynamoDB Local is not used: it is distributed under AWS's own licence, not an open-source
one (docs/local.md).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

DYNOXIDE_VERSION = "3.2.0"
DYNOXIDE_FEATURES = "native-sqlite,http-server,cli"
STARTUP_TIMEOUT = 30.0
BUILD_TIMEOUT = 1800


class Backend(Protocol):
    """What the fixtures need from a local DynamoDB."""

    name: str

    @property
    def endpoint_url(self) -> str: ...

    def start(self) -> str: ...

    def stop(self) -> None: ...

    def reset(self) -> None: ...

    def env(self) -> dict[str, str]: ...

    def apply_env(self) -> dict[str, str | None]: ...


class BackendUnavailable(RuntimeError):
    """The backend cannot run on this machine (the message says why)."""


def dynoxide_root() -> Path:
    """The folder ``cargo install --root`` puts dynoxide in (``bin/dynoxide``)."""
    configured = os.environ.get("DYNAMODEL_DYNOXIDE_DIR")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "dynamodel" / f"dynoxide-{DYNOXIDE_VERSION}"


def dynoxide_binary(build: bool = True) -> Path:
    """The dynoxide binary: ``$DYNAMODEL_DYNOXIDE``, else the cached build (built with cargo
    when missing and ``build`` is true)."""
    explicit = os.environ.get("DYNAMODEL_DYNOXIDE")
    if explicit:
        path = Path(explicit)
        if not os.access(path, os.X_OK):
            raise BackendUnavailable(f"DYNAMODEL_DYNOXIDE={explicit} is not an executable file")
        return path
    root = dynoxide_root()
    binary = root / "bin" / "dynoxide"
    if os.access(binary, os.X_OK):
        return binary
    cargo = shutil.which("cargo")
    if cargo is None:
        raise BackendUnavailable(
            f"dynoxide {DYNOXIDE_VERSION} is not built in {root} and `cargo` is not on PATH "
            "(install Rust, or set DYNAMODEL_DYNOXIDE to a dynoxide binary)"
        )
    if not build:
        raise BackendUnavailable(f"dynoxide {DYNOXIDE_VERSION} is not built in {root}")
    command = [
        cargo,
        "install",
        "dynoxide-rs",
        "--version",
        DYNOXIDE_VERSION,
        "--locked",
        "--no-default-features",
        "--features",
        DYNOXIDE_FEATURES,
        "--root",
        str(root),
    ]
    print(f"building dynoxide {DYNOXIDE_VERSION} (once): {' '.join(command)}", file=sys.stderr)
    done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    if done.returncode != 0 or not os.access(binary, os.X_OK):
        raise BackendUnavailable(
            f"cargo could not build dynoxide {DYNOXIDE_VERSION} (exit {done.returncode}): "
            f"{(done.stdout + done.stderr)[-2000:]}"
        )
    return binary


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Dynoxide:
    """dynoxide as a child process (in memory), on a free port of 127.0.0.1."""

    name = "dynoxide"

    def __init__(self, host: str = "127.0.0.1", region: str = "us-east-1") -> None:
        self.host = host
        self.region = region
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._saved_env: dict[str, str | None] | None = None
        self._client: Any = None

    @property
    def endpoint_url(self) -> str:
        if self._port is None:
            raise RuntimeError("dynoxide is not running")
        return f"http://{self.host}:{self._port}"

    def start(self) -> str:
        binary = dynoxide_binary()
        self._port = _free_port(self.host)
        command = [
            str(binary),
            "serve",
            "--host",
            self.host,
            "--port",
            str(self._port),
            "--log",
            "quiet",
        ]
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self.endpoint_url

    def _wait_until_ready(self) -> None:
        import boto3
        from botocore.config import Config

        deadline = time.monotonic() + STARTUP_TIMEOUT
        self._client = boto3.session.Session().client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=10),
        )
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode() if self._process.stderr else ""
                raise BackendUnavailable(f"dynoxide exited at start: {stderr[-2000:]}")
            try:
                self._client.list_tables()
                return
            except Exception as exc:  # not listening yet
                last = exc
                time.sleep(0.05)
        raise BackendUnavailable(f"dynoxide did not answer in {STARTUP_TIMEOUT}s: {last}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        if process is not None and process.stderr is not None:
            process.stderr.close()
        self._port = None
        if self._saved_env is not None:
            restore_env(self._saved_env)
            self._saved_env = None

    def reset(self) -> None:
        """Delete every table (in memory this is quick)."""
        paginator = self._client.get_paginator("list_tables")
        for page in paginator.paginate():
            for name in page.get("TableNames", []):
                self._client.delete_table(TableName=name)

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL_DYNAMODB": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.region,
        }

    def apply_env(self) -> dict[str, str | None]:
        values = self.env()
        previous = {key: os.environ.get(key) for key in values}
        if self._saved_env is None:
            self._saved_env = previous
        os.environ.update(values)
        return previous


def restore_env(previous: Mapping[str, str | None]) -> None:
    """Put environment variables back as they were."""
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


BACKENDS = ("moto", "dynoxide")


def make_backend(name: str) -> Backend:
    """The backend called ``name`` (``moto`` or ``dynoxide``), not started."""
    if name == "moto":
        from dynamodel.local import LocalDynamoDB

        server = LocalDynamoDB(host="127.0.0.1", port=0)
        server.name = "moto"  # type: ignore[attr-defined]
        return server  # type: ignore[return-value]
    if name == "dynoxide":
        return Dynoxide()
    raise ValueError(f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}")


if __name__ == "__main__":
    if sys.argv[1:] != ["build-dynoxide"]:
        sys.exit("usage: python tests/backends.py build-dynoxide")
    try:
        print(dynoxide_binary())
    except BackendUnavailable as error:
        sys.exit(f"dynoxide unavailable: {error}")
