"""Distributed backfills against the local backend: the job a migration starts, workers that
claim, checkpoint, hand back and lose segments, the fence that stops a worker whose lease was
taken over, failures, the shared rate, and the Lambda handler's events."""

from __future__ import annotations

import time
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from backends import Backend

from dynamodel import Model, Table, batch_write
from dynamodel.core.errors import ValidationError
from dynamodel.io.executors import run
from dynamodel.io.scope import resolve_connection
from dynamodel.migrations import (
    BackfillFailed,
    LeaseLost,
    MigrationFailed,
    Migrator,
    SegmentLeased,
    VerificationFailed,
    Worker,
    lambda_handler,
)
from dynamodel.migrations.global_rate import GlobalRate
from dynamodel.migrations.jobs import Jobs
from dynamodel.migrations.store import RESERVED_PARTITION, Store

events = Table("distributed-events")


class Event(Model):
    class Meta:
        table = events
        pk = "EVENT#{n}"
        sk = "E"

    n: int
    kind: str = "old"
    times: int = 0
    note: str | None = None


TAG = """
    '''Tag every event; count how often each is migrated.'''

    def tag(event):
        if event.n in BAD:
            raise ValueError(f"bad event {event.n}")
        return event.model_copy(update={"kind": "new", "times": event.times + 1})

    BAD = set()

    def up(ctx):
        ctx.backfill(ctx.model("Event"), tag, distributed=True, segments=4, page_size=PAGE)

    def down(ctx):
        pass
"""


def write(folder: Path, name: str, code: str, page: int = 10) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(dedent(code).replace("PAGE", str(page)))


@pytest.fixture
def stored(fresh_db: Backend) -> int:
    events.create(poll=0.01)
    with batch_write() as batch:
        batch.put(*(Event(n=n) for n in range(150)))
    return 150


def user_items() -> list[Event]:
    return sorted(Event.scan().all(), key=lambda e: e.n)


def reserved(client: Any) -> list[str]:
    items = client.query(
        TableName=events.physical_name,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": RESERVED_PARTITION}},
        ConsistentRead=True,
    )["Items"]
    return sorted(item["sk"]["S"].split("#")[0] for item in items)


def test_a_migration_starts_the_job_workers_finish_it_and_the_next_run_applies_it(
    stored: int, tmp_path: Path, ddb: Any
) -> None:
    folder = tmp_path / "migrations"
    write(folder, "0001_tag.py", TAG)
    migrator = Migrator(events, folder)

    first = migrator.up()
    assert first.waiting is not None and first.done == []
    assert first.waiting.segments == 4 and first.waiting.migration == "0001_tag"
    [status] = migrator.status()
    assert status.state == "running" and status.record is not None
    assert status.record.waiting == first.waiting.job
    [progress] = status.progress
    assert (progress.segments, progress.segments_done, progress.scanned) == (4, 0, 0)
    assert all(e.kind == "old" for e in user_items())  # the coordinator migrates nothing
    assert migrator.lock_info() is None  # the lock is released while workers run

    again = migrator.up()  # no worker yet: still waiting, nothing redone
    assert again.waiting is not None and again.waiting.job == first.waiting.job

    report = Worker(events, folder).work()  # the job the migration waits on
    assert report.complete and sorted(report.finished) == [0, 1, 2, 3]
    assert report.written == stored and report.failed == 0
    assert [(e.kind, e.times) for e in user_items()] == [("new", 1)] * stored

    [status] = migrator.status()
    [progress] = status.progress
    assert progress.segments_done == 4 and progress.written == stored and progress.workers == 0

    done = migrator.up()
    assert done.waiting is None and [m.version for m in done.done] == ["0001"]
    [result] = done.backfills
    assert result.written == stored and result.failed == []
    assert migrator.status()[0].state == "applied"
    assert reserved(ddb) == ["STATE"]  # job, segments and rate items cleaned up


def test_a_distributed_transform_must_be_a_top_level_function(stored: int, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    write(
        folder,
        "0001_lambda.py",
        """
        def up(ctx):
            ctx.backfill(ctx.model("Event"), lambda e: e, distributed=True)
        """,
    )
    with pytest.raises(MigrationFailed) as caught:
        Migrator(events, folder).up()
    assert isinstance(caught.value.cause, ValidationError)
    assert "top level of the migration file" in str(caught.value)


def test_a_leased_segment_is_refused_and_a_lost_lease_writes_nothing(
    stored: int, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    write(folder, "0001_tag.py", TAG)
    job = Migrator(events, folder).up().waiting
    assert job is not None
    store = Store(events)
    spec = run(Jobs(store).load_flow(job.job), resolve_connection(events))
    segments = Jobs(store).segments(spec)
    now = time.time()
    stalled = run(segments.claim_flow(0, "stalled", now, 60), resolve_connection(events))

    with pytest.raises(SegmentLeased) as caught:
        Worker(events, folder).work(job.job, segment=0)
    assert caught.value.owner == "stalled"

    # the stalled worker's lease runs out; another worker claims segment 0 and finishes it
    clock = [now + 61]
    Worker(events, folder, clock=lambda: clock[0]).work(job.job, segment=0)
    # the stalled worker wakes up and tries to checkpoint: fenced out
    stalled.cursor, stalled.written = None, 999
    with pytest.raises(LeaseLost):
        run(segments.save_flow(stalled, "stalled", now + 62, 60), resolve_connection(events))
    loaded = run(segments.load_flow(), resolve_connection(events))
    assert loaded[0].done and loaded[0].written != 999 and loaded[0].claims == 2


def test_a_worker_hands_its_segment_back_before_its_deadline(stored: int, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    write(folder, "0001_tag.py", TAG)
    job = Migrator(events, folder).up().waiting
    assert job is not None
    ticks = [0.0]

    def monotonic() -> float:  # each reading moves on 1 s: the deadline comes after a few pages
        ticks[0] += 1.0
        return ticks[0]

    early = Worker(events, folder, margin=1.0, monotonic=monotonic).work(
        job.job, segment=2, seconds=8
    )
    assert early.handed_back == [2] and early.finished == [] and 0 < early.written < stored
    store = Store(events)
    spec = run(Jobs(store).load_flow(job.job), resolve_connection(events))
    segments = run(Jobs(store).segments(spec).load_flow(), resolve_connection(events))
    assert segments[2].owner is None and segments[2].cursor  # free, with its checkpoint
    assert segments[2].written == early.written  # what it committed is checkpointed
    late = Worker(events, folder).work(job.job, segment=2)  # takes it at once (no lease left)
    assert late.finished == [2]
    rest = Worker(events, folder).work(job.job)
    assert rest.complete
    assert [(e.kind, e.times) for e in user_items()] == [("new", 1)] * stored


def test_failed_items_are_reported_retried_and_block_the_migration(
    stored: int, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    write(folder, "0001_tag.py", TAG.replace("BAD = set()", "BAD = {3, 77}"))
    migrator = Migrator(events, folder)
    job = migrator.up().waiting
    assert job is not None
    report = Worker(events, folder).work()
    assert report.complete and report.failed == 2 and report.written == stored - 2
    with pytest.raises(MigrationFailed) as caught:
        migrator.up()  # retries the two, which fail again
    cause = caught.value.cause
    assert isinstance(cause, BackfillFailed)
    assert sorted(f.key["pk"] for f in cause.failed) == ["EVENT#3", "EVENT#77"]
    assert all("bad event" in f.error for f in cause.failed)

    # fixed (a new file version would be refused by workers, but the coordinator's retry
    # runs the current file): the next run migrates the two and applies the migration
    write(folder, "0001_tag.py", TAG)
    done = migrator.up()
    assert [m.version for m in done.done] == ["0001"]
    assert [(e.kind, e.times) for e in user_items()] == [("new", 1)] * stored


def test_pages_larger_than_a_transaction_are_committed_in_several(
    stored: int, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    write(folder, "0001_tag.py", TAG, page=150)  # 150 writes per page: two transactions
    migrator = Migrator(events, folder)
    migrator.up()
    report = Worker(events, folder).work()
    assert report.complete and report.written == stored
    assert [(e.kind, e.times) for e in user_items()] == [("new", 1)] * stored
    assert migrator.up().done


def test_workers_refuse_a_changed_migration_file(stored: int, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    write(folder, "0001_tag.py", TAG)
    job = Migrator(events, folder).up().waiting
    assert job is not None
    write(folder, "0001_tag.py", TAG + "\n# changed\n")
    with pytest.raises(Exception, match="differs from the file the job was started with"):
        Worker(events, folder).work(job.job)


def test_the_shared_rate_spaces_reservations_of_all_workers(fresh_db: Backend) -> None:
    events.create(poll=0.01)
    now = [100.0]
    a = GlobalRate(Store(events), "RATE#j", 50.0, clock=lambda: now[0])
    b = GlobalRate(Store(events), "RATE#j", 50.0, clock=lambda: now[0])
    connection = resolve_connection(events)
    waits = [
        run(a.reserve_flow(100), connection),  # 2 s of the rate, starts now
        run(b.reserve_flow(100), connection),  # b did not know: retries after a's, waits 2 s
        run(a.reserve_flow(50), connection),  # a's known value is stale: waits 4 s
    ]
    assert waits == [0.0, 2.0, 4.0]
    now[0] = 110.0  # idle long enough: no wait
    assert run(b.reserve_flow(10), connection) == 0.0


def test_the_lambda_handler_runs_start_work_and_verify(stored: int, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    write(folder, "0001_tag.py", TAG)
    handler = lambda_handler(events, folder)

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 900_000

    with pytest.raises(VerificationFailed, match="0001_tag: pending"):
        handler({"action": "verify"}, Context())
    started = handler({"action": "start"}, Context())
    assert started["state"] == "waiting" and started["segments"] == [0, 1, 2, 3]
    for segment in started["segments"]:
        out = handler({"action": "work", "job": started["job"], "segment": segment}, Context())
        assert out["done"] is True and out["segment"] == segment
    assert handler({"action": "start"}, Context()) == {"state": "applied", "applied": ["0001_tag"]}
    assert handler({"action": "verify"}, Context()) == {
        "state": "applied",
        "migrations": ["0001_tag"],
        "failed": 0,
    }
    with pytest.raises(ValidationError, match="unknown action"):
        handler({"action": "nope"}, Context())


CLI_APP = """
from dynamodel import Model, Table

table = Table("{table}")


class Event(Model):
    class Meta:
        table = table
        pk = "EVENT#{{n}}"
        sk = "E"

    n: int
    kind: str = "old"
    times: int = 0
"""


def test_the_cli_starts_the_job_shows_it_runs_workers_and_applies_it(
    fresh_db: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import uuid

    from typer.testing import CliRunner

    from dynamodel.cli._app import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DYNAMODEL_APP", raising=False)
    name = f"distcli_{uuid.uuid4().hex[:8]}"
    table_name = f"dist-cli-{uuid.uuid4().hex[:6]}"
    (tmp_path / f"{name}.py").write_text(CLI_APP.format(table=table_name))
    write(tmp_path / "migrations", "0001_tag.py", TAG, page=7)
    runner = CliRunner()

    def cli(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args), env={"COLUMNS": "250"})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == code, f"exit {result.exit_code}: {result.output}"
        return result.output

    cli("table", "create", "--app", name)
    module = __import__(name)
    with batch_write() as batch:
        batch.put(*(module.Event(n=n) for n in range(60)))

    out = cli("migrate", "up", "--app", name, code=4)
    assert "waiting for workers" in out and "dynamodel migrate worker" in out
    out = cli("migrate", "status", "--app", name)
    assert "waiting for workers: job 0001#" in out and "0/4 segments done" in out

    # a worker on one segment finishes it and says the job is not complete yet
    job = json.loads(cli("migrate", "status", "--app", name, "--json"))["migrations"][0]
    job_id = job["record"]["waiting"]
    report = json.loads(
        cli("migrate", "worker", "--app", name, "--segment", "1", "--json", "--job", job_id)
    )
    assert report["finished"] == [1] and report["complete"] is False

    # up --workers runs worker processes here, then applies the migration
    out = cli("migrate", "up", "--app", name, "--workers", "2")
    assert "Starting 2 worker process(es)" in out and "Applied 1 migration(s)" in out
    assert sorted((e.kind, e.times) for e in module.Event.scan().all()) == [("new", 1)] * 60
    assert "applied" in cli("migrate", "status", "--app", name)
    out = cli("migrate", "worker", "--app", name, code=2)
    assert "no migration is waiting for workers" in out


def test_pages_split_where_a_transaction_would_overflow_or_repeat_an_item() -> None:
    from dynamodel.migrations.worker import MAX_WRITES, _chunks
    from dynamodel.ops.batch_flows import put_write_request

    def entry(*ns: int) -> Any:
        return ({}, [put_write_request(Event(n=n)) for n in ns], None)

    assert [len(c) for c in _chunks([])] == [0]  # an empty page still checkpoints once
    many = [entry(n) for n in range(MAX_WRITES + 1)]  # one write each: 99 + 1
    assert [len(c) for c in _chunks(many)] == [MAX_WRITES, 1]
    # two items whose writes touch the same item cannot share a transaction
    assert [len(c) for c in _chunks([entry(1, 2), entry(3), entry(2)])] == [2, 1]
    # an item's writes are never split
    assert [len(c) for c in _chunks([entry(*range(60)), entry(*range(60, 120))])] == [1, 1]


def test_a_worker_refuses_to_run_in_a_tenant_scope(stored: int, tmp_path: Path) -> None:
    from dynamodel import tenant_scope
    from dynamodel.core.errors import TenantViolation

    with tenant_scope("n", "1"), pytest.raises(TenantViolation):
        Worker(events, tmp_path).work("job")


def test_sigterm_hands_the_segment_back_at_once(
    stored: int, tmp_path: Path, fresh_db: Backend
) -> None:
    import os
    import signal
    import subprocess
    import sys

    folder = tmp_path / "migrations"
    write(folder, "0001_tag.py", TAG.replace("page_size=PAGE", "page_size=5, rate=10"))
    (tmp_path / "sigapp.py").write_text(
        f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_distributed_backfill import events\ntable = events\n"
    )
    job = Migrator(events, folder).up().waiting
    assert job is not None
    worker = subprocess.Popen(
        [sys.executable, "-m", "dynamodel.cli", "migrate", "worker", "--app", "sigapp"],
        cwd=tmp_path,
        env={**os.environ, **fresh_db.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = Store(events)
    spec = run(Jobs(store).load_flow(job.job), resolve_connection(events))
    segments = Jobs(store).segments(spec)
    deadline = time.monotonic() + 30
    while not any(s.owner for s in run(segments.load_flow(), resolve_connection(events))):
        assert worker.poll() is None, worker.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, out + err
    assert "handed back" in out and "job not complete" in out
    loaded = run(segments.load_flow(), resolve_connection(events))
    assert all(s.owner is None for s in loaded)  # released, not left to expire
    assert any(s.cursor for s in loaded)  # with the progress it made


def test_the_state_machine_runs_here_with_worker_processes(
    fresh_db: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import uuid

    from typer.testing import CliRunner

    from dynamodel.cli._app import app

    example = Path(__file__).resolve().parent.parent / "examples" / "stepfunctions"
    packaged = Path(__file__).resolve().parent.parent / "dynamodel" / "migrations"
    assert (example / "statemachine" / "backfill.asl.json").read_text() == (
        packaged / "statemachine" / "backfill.asl.json"
    ).read_text()  # what the CLI plays is what the example deploys

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DYNAMODEL_APP", raising=False)
    name = f"distsfn_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(CLI_APP.format(table=f"dist-sfn-{uuid.uuid4().hex[:6]}"))
    folder = tmp_path / "migrations"
    write(folder, "0001_tag.py", TAG, page=9)
    write(folder, "0002_note.py", "def up(ctx):\n    ctx.echo('after the backfill')\n")
    runner = CliRunner()
    assert runner.invoke(app, ["table", "create", "--app", name]).exit_code == 0
    module = __import__(name)
    with batch_write() as batch:
        batch.put(*(module.Event(n=n) for n in range(80)))

    result = runner.invoke(
        app, ["migrate", "statemachine", "--app", name, "--workers", "3"], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    assert "Execution SUCCEEDED" in result.output
    assert "Backfill x1" in result.output and "Start x2" in result.output
    assert "Verify x1" in result.output
    output = json.loads(result.output.strip().splitlines()[-1])
    assert output == {"state": "applied", "migrations": ["0001_tag", "0002_note"], "failed": 0}
    assert sorted((e.kind, e.times) for e in module.Event.scan().all()) == [("new", 1)] * 80

    # nothing left to do: Start finds everything applied and Verify passes at once
    again = runner.invoke(app, ["migrate", "statemachine", "--app", name, "--workers", "2"])
    assert again.exit_code == 0 and "Backfill" not in again.output, again.output


def test_a_jobs_filter_values_survive_the_json_it_is_stored_as() -> None:
    import json

    from dynamodel.migrations.jobs import JobSpec
    from dynamodel.ops.export_items import attributes_to_json

    values = {
        ":bytes": {"B": b"\x00\xff"},
        ":set": {"BS": [b"a", b"b"]},
        ":map": {"M": {"B": {"S": "a map key named B"}, "n": {"N": "1"}}},
        ":list": {"L": [{"B": b"x"}, {"NULL": True}]},
    }
    spec = JobSpec(
        job="0001#r#b",
        migration="0001",
        checksum="c",
        backfill="b",
        entity="Event",
        function="tag",
        segments=2,
        page_size=10,
        lease=5.0,
        rate=None,
        scan={
            "FilterExpression": "#a = :bytes",
            "ExpressionAttributeValues": attributes_to_json(values),
        },
        cutoff=0.0,
    )
    stored = JobSpec.from_json(json.loads(json.dumps(spec.to_json())))
    params = stored.scan_params("events-blue")
    assert params["ExpressionAttributeValues"] == values
    assert params["TableName"] == "events-blue" and params["FilterExpression"] == "#a = :bytes"
