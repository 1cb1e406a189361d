"""The test suite's two DynamoDB backends: moto's server (default) and AWS's DynamoDB Local.

Select one with ``pytest --backend=dynamodb-local`` or ``DYNAMODEL_TEST_BACKEND=dynamodb-local``.

DynamoDB Local 3.1.0 and its sqlite4java native library come from Maven artifacts declared in
``backends/dynamodb-local/pom.xml``; Maven copies them once into a cache folder
(``DYNAMODEL_DYNAMODB_LOCAL_DIR``, default ``~/.cache/dynamodel/dynamodb-local-3.1.0``), and the
server runs in memory (``-inMemory -sharedDb``) on a free port of 127.0.0.1, stopped after the
session. Without Java or Maven the backend is unavailable: tests skip with the reason, unless
``DYNAMODEL_REQUIRE_DYNAMODB_LOCAL=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

VERSION = "3.1.0"
POM = Path(__file__).resolve().parent.parent / "backends" / "dynamodb-local" / "pom.xml"
MAIN_CLASS = "software.amazon.dynamodb.services.local.main.ServerRunner"
STARTUP_TIMEOUT = 90.0


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


def _cache_dir() -> Path:
    configured = os.environ.get("DYNAMODEL_DYNAMODB_LOCAL_DIR")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "dynamodel" / f"dynamodb-local-{VERSION}"


def fetch_artifacts(target: Path | None = None) -> Path:
    """Copy DynamoDB Local's jars and native libraries into ``target`` (once) with Maven."""
    target = target or _cache_dir()
    marker = target / f"DynamoDBLocal-{VERSION}.jar"
    if marker.exists() and any(target.glob("libsqlite4java-linux-amd64-*.so")):
        return target
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            raise BackendUnavailable(
                f"DynamoDB Local needs Java 17+ and Maven; `{tool}` is not on PATH"
            )
    target.mkdir(parents=True, exist_ok=True)
    command = [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={target}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not marker.exists():
        raise BackendUnavailable(
            f"could not fetch DynamoDB Local {VERSION} with Maven "
            f"(exit {done.returncode}): {(done.stdout + done.stderr)[-2000:]}"
        )
    return target


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class DynamoDBLocal:
    """AWS's DynamoDB Local as a child Java process (in memory, one shared database)."""

    name = "dynamodb-local"

    def __init__(self, host: str = "127.0.0.1", region: str = "us-east-1") -> None:
        self.host = host
        self.region = region
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._saved_env: dict[str, str | None] | None = None
        self._client: Any = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def endpoint_url(self) -> str:
        if self._port is None:
            raise RuntimeError("DynamoDB Local is not running")
        return f"http://{self.host}:{self._port}"

    def start(self) -> str:
        if shutil.which("java") is None:
            raise BackendUnavailable("DynamoDB Local needs Java 17+; `java` is not on PATH")
        folder = fetch_artifacts()
        self._port = _free_port(self.host)
        command = [
            "java",
            f"-Djava.library.path={folder}",
            f"-Dsqlite4java.library.path={folder}",
            "-cp",
            f"{folder}/*",
            MAIN_CLASS,
            "-inMemory",
            "-sharedDb",
            "-port",
            str(self._port),
        ]
        self._workdir = tempfile.TemporaryDirectory(prefix="dynamodb-local-")
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            cwd=self._workdir.name,  # it writes dynamodb-local-metadata.json there
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
                raise BackendUnavailable(f"DynamoDB Local exited at start: {stderr[-2000:]}")
            try:
                self._client.list_tables()
                return
            except Exception as exc:  # not listening yet
                last = exc
                time.sleep(0.2)
        raise BackendUnavailable(f"DynamoDB Local did not answer in {STARTUP_TIMEOUT}s: {last}")

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
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
        if self._saved_env is not None:
            restore_env(self._saved_env)
            self._saved_env = None

    def reset(self) -> None:
        """Delete every table (DynamoDB Local has no reset call; in memory this is quick)."""
        for name in self._client.list_tables().get("TableNames", []):
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


def make_backend(name: str) -> Backend:
    """The backend called ``name`` (``moto`` or ``dynamodb-local``), not started."""
    if name == "moto":
        from dynamodel.local import LocalDynamoDB

        server = LocalDynamoDB(host="127.0.0.1", port=0)
        server.name = "moto"  # type: ignore[attr-defined]
        return server  # type: ignore[return-value]
    if name == "dynamodb-local":
        return DynamoDBLocal()
    raise ValueError(f"unknown backend {name!r}: use 'moto' or 'dynamodb-local'")
