"""The local DynamoDB for the server cases, in a separate process.

moto serves requests from Python threads; in the benchmark's own process its CPU would count as
client CPU. So ``python -m benchmarks.server`` runs `dynamodel.local.LocalDynamoDB` (moto's
server on 127.0.0.1, a free port) in a child process, prints its endpoint URL on one line and
serves until its standard input closes. `ServerProcess` starts and stops that child; every
peer of one run talks to the same server.

``python -m benchmarks.server dynoxide`` serves dynoxide instead (the dynoxide-rs crate, a
native DynamoDB emulator on SQLite, in memory), started by the test suite's launcher
(``tests/backends.py``: the binary is built once with cargo into a cache folder, or taken from
``DYNAMODEL_DYNOXIDE``). It accepts requests concurrently but runs their database work one at a
time behind one lock. If it cannot start, the first line printed says why and the parent
reports it.
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


class ServerUnavailable(RuntimeError):
    """The benchmark server did not start (the message gives what it said)."""


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
            raise ServerUnavailable(
                f"the benchmark server ({' '.join(self.command[2:])}) did not start: "
                + (line or "it printed nothing")
            )
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
        """CPU time the server process and its children (dynoxide's binary) have used so far
        (Linux), for the record."""
        if self.process is None:
            return None
        stats = _proc_stats()
        if self.process.pid not in stats:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        total, todo = 0, [self.process.pid]
        while todo:
            pid = todo.pop()
            total += stats[pid][1]
            todo += [child for child, (parent, _) in stats.items() if parent == pid]
        return total / ticks

    def run_queue_seconds(self) -> float | None:
        """Time the server process's and its children's threads have spent runnable but
        waiting for a core so far (Linux ``schedstat``): how much a busy machine holds the
        server back, for the record."""
        if self.process is None:
            return None
        stats = _proc_stats()
        if self.process.pid not in stats:
            return None
        total, todo = 0, [self.process.pid]
        while todo:
            pid = todo.pop()
            for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
                try:
                    total += int(task.read_text().split()[1])
                except (OSError, IndexError, ValueError):  # it ended meanwhile
                    continue
            todo += [child for child, (parent, _) in stats.items() if parent == pid]
        return total / 1e9

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


def _proc_stats() -> dict[int, tuple[int, int]]:
    """Every process's parent and CPU ticks (user + system), from /proc (empty elsewhere)."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        out[int(stat.parent.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return out


def _backends() -> Any:
    """The test suite's ``tests/backends.py`` (its dynoxide launcher)."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import backends

    return backends


def dynoxide_version() -> str:
    """The dynoxide-rs version the test suite's launcher builds and runs."""
    return str(_backends().DYNOXIDE_VERSION)


def main() -> None:
    """Serve moto (default) or, with ``dynoxide``, dynoxide (a native binary)."""
    kinds = sys.argv[1:]
    if kinds not in ([], ["moto"], ["dynoxide"]):
        sys.exit(f"usage: python -m benchmarks.server [moto|dynoxide] (not {' '.join(kinds)})")
    if kinds == ["dynoxide"]:
        backends = _backends()
        server = backends.Dynoxide(region=REGION)
        try:
            print(server.start(), flush=True)
        except Exception as error:  # the parent reports this line
            said = " ".join(str(error).split())  # one line: the parent reads one
            print(
                f"dynoxide did not start: {said} (build it with "
                "`python tests/backends.py build-dynoxide`, which needs cargo, or set "
                "DYNAMODEL_DYNOXIDE to a dynoxide binary)",
                flush=True,
            )
            return
        try:
            sys.stdin.read()  # serve until the parent closes our stdin (or exits)
        finally:
            server.stop()
        return
    from dynamodel.local import LocalDynamoDB

    with LocalDynamoDB(region=REGION) as db:
        print(db.endpoint_url, flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin (or exits)


if __name__ == "__main__":
    main()
