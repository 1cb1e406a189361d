"""The local DynamoDB for the server cases, in a separate process.

``python -m benchmarks.server dynamodb-local`` serves AWS's DynamoDB Local (Java, handles
requests concurrently) instead of moto.

moto serves requests from Python threads; in the benchmark's own process its CPU would count as
client CPU. So ``python -m benchmarks.server`` runs `dynamodel.local.LocalDynamoDB` (moto's
server on 127.0.0.1, a free port) in a child process, prints its endpoint URL on one line and
serves until its standard input closes. `ServerProcess` starts and stops that child; every
peer of one run talks to the same server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).absolute().parent.parent
REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


class ServerProcess:
    """A `LocalDynamoDB` (or another ``module``'s server) in a child process."""

    def __init__(self, module: str = "benchmarks.server", *args: str) -> None:
        self.command = [sys.executable, "-m", module, *args]
        self.process: subprocess.Popen[str] | None = None
        self.endpoint_url = ""

    def __enter__(self) -> ServerProcess:
        env = {**os.environ, **CREDENTIALS}
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("http"):
            self.__exit__(None, None, None)
            raise RuntimeError(f"the benchmark server did not start (said {line!r})")
        self.endpoint_url = line
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def cpu_seconds(self) -> float | None:
        """CPU time the server process has used so far (Linux), for the record."""
        if self.process is None:
            return None
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def apply_env(self) -> None:
        """Point boto3-style SDKs of this process at the server (dummy credentials)."""
        os.environ.update(CREDENTIALS)
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = self.endpoint_url


def create_table(client: Any, name: str) -> None:
    """The benchmark table: string ``pk``/``sk``, on demand."""
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def main() -> None:
    """Serve moto (default) or, with ``dynamodb-local``, AWS's DynamoDB Local (Java)."""
    if sys.argv[1:] == ["dynamodb-local"]:
        sys.path.insert(0, str(ROOT / "tests"))
        from backends import DynamoDBLocal  # the test suite's launcher (Java 17 + Maven)

        java = DynamoDBLocal(region=REGION)
        try:
            print(java.start(), flush=True)
        except Exception as error:  # the parent reports what was printed
            print(f"DynamoDB Local did not start: {error}", flush=True)
            return
        try:
            sys.stdin.read()
        finally:
            java.stop()
        return
    from dynamodel.local import LocalDynamoDB

    with LocalDynamoDB(region=REGION) as db:
        print(db.endpoint_url, flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin (or exits)


if __name__ == "__main__":
    main()
