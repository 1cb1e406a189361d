"""The migration runner against the local backend: up/down/status, recorded failures and
resumption, backfill failures and their retry, the lock, and the reserved items."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from backends import Backend

from dynamodel import GSI, Attr, Collection, Model, Provisioned, Table, TableNotFound, batch_write
from dynamodel.core.errors import ValidationError
from dynamodel.core.flows import Flow
from dynamodel.migrations import (
    BackfillFailed,
    LockHeld,
    LockLost,
    MigrationFailed,
    MigrationLock,
    Migrator,
    Reporter,
)
from dynamodel.migrations.store import STATE, Store

shop = Table("migrations-shop", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])
flat = Table("migrations-flat", sk=None)


class Order(Model):
    class Meta:
        table = shop
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{order_id}"
        indexes = {"gsi1": ("STATUS#{status}", "{order_id}")}

    customer_id: str
    order_id: int
    status: str | None = None
    total: int = 0


class Customer(Model):
    class Meta:
        table = shop
        pk = "CUSTOMER#{customer_id}"
        sk = "PROFILE"

    customer_id: str
    name: str


class Versioned(Model):
    class Meta:
        table = shop
        pk = "V#{key}"
        sk = "V"
        version = "version"

    key: str
    version: int | None = None


class Setting(Model):
    class Meta:
        table = flat
        pk = "SETTING#{name}"

    name: str
    value: str = ""


def write(folder: Path, name: str, code: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(dedent(code))


ADD_STATUS = """
    '''Give every order a status (puts it in gsi1).'''

    def up(ctx):
        Order = ctx.model("Order")
        ctx.backfill(Order, lambda o: None if o.status else o.model_copy(update={"status": "open"}))

    def down(ctx):
        Order = ctx.model("Order")
        ctx.backfill(Order, lambda o: o.model_copy(update={"status": None}) if o.status else None)
"""


class Recorder(Reporter):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def migration_started(self, migration: Any, direction: str, resumed: bool) -> None:
        self.events.append(("started", (migration.version, direction, resumed)))

    def migration_finished(self, migration: Any, direction: str, seconds: float) -> None:
        self.events.append(("finished", (migration.version, direction)))

    def migration_failed(self, migration: Any, direction: str, error: BaseException) -> None:
        self.events.append(("failed", (migration.version, direction)))

    def backfill_started(self, progress: Any, resumed: bool) -> None:
        self.events.append(("backfill", (progress.name, resumed)))

    def message(self, text: str) -> None:
        self.events.append(("message", text))


@pytest.fixture
def orders(fresh_db: Backend) -> list[Order]:
    shop.create(poll=0.01)
    made = [Order(customer_id=f"c{n % 7}", order_id=n, total=n) for n in range(120)]
    with batch_write() as batch:
        batch.put(*made, Customer(customer_id="c1", name="Ann"))
    return made


def test_up_status_down_round_trip(orders: list[Order], tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    write(folder, "0001_add_status.py", ADD_STATUS)
    write(
        folder, "0002_note.py", "def up(ctx):\n    ctx.echo('hello')\n\ndef down(ctx):\n    pass\n"
    )
    reporter = Recorder()
    migrator = Migrator(shop, folder, reporter=reporter)
    assert [(s.version, s.state) for s in migrator.status()] == [
        ("0001", "pending"),
        ("0002", "pending"),
    ]
    assert [m.version for m in migrator.up(dry_run=True).planned] == ["0001", "0002"]
    assert Order.query(index="gsi1", status="open").all() == []  # a dry run writes nothing

    result = migrator.up()
    assert [m.version for m in result.done] == ["0001", "0002"]
    (backfill,) = result.backfills
    assert (backfill.written, backfill.unchanged, backfill.failed) == (120, 0, [])
    assert ("message", "hello") in reporter.events
    assert len(Order.query(index="gsi1", status="open").all()) == 120
    assert [s.state for s in migrator.status()] == ["applied", "applied"]
    assert migrator.up().done == []  # nothing left to do
    assert migrator.lock_info() is None  # released

    assert [m.version for m in migrator.down().done] == ["0002"]
    assert [s.state for s in migrator.status()] == ["applied", "pending"]
    migrator.down(0)
    assert [s.state for s in migrator.status()] == ["pending", "pending"]
    assert Order.query(index="gsi1", status="open").all() == []
    assert all(o.status is None for o in Order.scan())
    migrator.up(1)
    assert [s.state for s in migrator.status()] == ["applied", "pending"]


def test_a_failing_migration_is_recorded_and_stops_the_run(
    orders: list[Order], tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    write(folder, "0001_add_status.py", ADD_STATUS)
    write(
        folder,
        "0002_half.py",
        """
        def up(ctx):
            Order = ctx.model("Order")
            first = Order.get(customer_id="c0", order_id=0)
            first.update(ctx_attr("total").set(999))
            raise RuntimeError("halfway")

        from dynamodel import Attr as ctx_attr
        """,
    )
    write(folder, "0003_later.py", "def up(ctx):\n    raise AssertionError('must not run')\n")
    reporter = Recorder()
    migrator = Migrator(shop, folder, reporter=reporter)
    with pytest.raises(MigrationFailed, match=r"0002_half.*RuntimeError: halfway") as info:
        migrator.up()
    assert info.value.version == "0002"
    states = {s.version: s for s in migrator.status()}
    assert states["0001"].state == "applied"
    assert states["0002"].state == "failed"
    assert states["0002"].record is not None
    assert states["0002"].record.error == "RuntimeError: halfway"
    assert states["0003"].state == "pending"  # later migrations did not run
    assert migrator.lock_info() is None  # the lock is released after a failure

    # fixed (idempotent now): the next run applies it, reporting that it resumes
    write(folder, "0002_half.py", "def up(ctx):\n    pass\n")
    write(folder, "0003_later.py", "def up(ctx):\n    pass\n")
    migrator.up()
    assert [s.state for s in migrator.status()] == ["applied", "applied", "applied"]
    assert ("started", ("0002", "up", True)) in reporter.events
    assert ("started", ("0003", "up", False)) in reporter.events


def test_backfill_failures_are_kept_and_retried_first(orders: list[Order], tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    code = """
        def up(ctx):
            def tag(order):
                if order.order_id % 40 == 7 and not FIXED:
                    raise ValueError(f"cannot tag {order.order_id}")
                return None if order.status else order.model_copy(update={"status": "tagged"})
            ctx.backfill(ctx.model("Order"), tag, segments=3, page_size=25)
    """
    write(folder, "0001_tag.py", "FIXED = False\n" + dedent(code))
    migrator = Migrator(shop, folder)
    with pytest.raises(MigrationFailed) as info:
        migrator.up()
    failed = info.value.cause
    assert isinstance(failed, BackfillFailed)
    assert sorted(f.key["sk"] for f in failed.failed) == [f"ORDER#{n:020d}" for n in (7, 47, 87)]
    assert all("ValueError: cannot tag" in f.error for f in failed.failed)
    assert len(Order.query(index="gsi1", status="tagged").all()) == 117  # the rest is done
    (status,) = migrator.status()
    assert status.state == "failed"
    (progress,) = status.progress
    assert (progress.failed, progress.segments_done, progress.segments) == (3, 3, 3)

    write(folder, "0001_tag.py", "FIXED = True\n" + dedent(code))
    result = migrator.up()
    (backfill,) = result.backfills
    assert backfill.resumed
    assert backfill.retried == 3 and backfill.written == 3 and backfill.scanned == 0
    assert len(Order.query(index="gsi1", status="tagged").all()) == 120
    assert [s.state for s in migrator.status()] == ["applied"]


def test_backfill_refuses_to_drop_undeclared_attributes(fresh_db: Backend, ddb: Any) -> None:
    shop.create(poll=0.01)
    Order(customer_id="c1", order_id=1).save()
    ddb.put_item(
        TableName=shop.physical_name,
        Item={
            **Order(customer_id="c1", order_id=2).to_item(),
            "legacy_flag": {"BOOL": True},
        },
    )
    from dynamodel.migrations.backfill import BackfillSettings, Checkpoints, run_backfill

    def run(drop_unknown: bool, prefix: str, transform: Any) -> Any:
        return run_backfill(
            model=Order,
            transform=transform,
            name="b",
            settings=BackfillSettings(segments=1),
            checkpoints=Checkpoints(Store(shop), "test", prefix),
            drop_unknown=drop_unknown,
            allow_failures=True,
        )

    def stored() -> dict[str, Any]:
        key = Order.build_key(customer_id="c1", order_id=2)
        item: dict[str, Any] = ddb.get_item(TableName=shop.physical_name, Key=key)["Item"]
        return item

    # a new instance built from the fields would lose the attribute: refused, item untouched
    fresh = run(False, "1#a", lambda o: Order(**{**o.model_dump(), "status": "x"}))
    assert [f.key["sk"] for f in fresh.failed] == [f"ORDER#{2:020d}"]
    assert "legacy_flag" in fresh.failed[0].error and "drop_unknown=True" in fresh.failed[0].error
    assert stored()["legacy_flag"] == {"BOOL": True} and stored()["status"] == {"NULL": True}
    # the instance read (or a copy of it) carries the attribute: written back, nothing refused
    kept = run(False, "1#b", lambda o: o.model_copy(update={"status": "y"}))
    assert kept.failed == []
    assert stored()["legacy_flag"] == {"BOOL": True} and stored()["status"] == {"S": "y"}
    # drop_unknown=True leaves it out, even of the instance read
    assert run(True, "1#c", lambda o: o.model_copy(update={"status": "z"})).failed == []
    assert "legacy_flag" not in stored() and stored()["status"] == {"S": "z"}


def test_versioned_models_need_an_explicit_opt_in(fresh_db: Backend, tmp_path: Path) -> None:
    shop.create(poll=0.01)
    write(
        tmp_path,
        "0001_v.py",
        "def up(ctx):\n    ctx.backfill(ctx.model('Versioned'), lambda v: v)\n",
    )
    with pytest.raises(MigrationFailed) as info:
        Migrator(shop, tmp_path).up()
    assert isinstance(info.value.cause, ValidationError)
    assert "skip_version_check=True" in str(info.value.cause)


def test_context_helpers(orders: list[Order], tmp_path: Path) -> None:
    write(
        tmp_path,
        "0001_helpers.py",
        """
        from dynamodel import Attr

        def up(ctx):
            assert set(ctx.models) >= {"Order", "Customer"}
            big = [o for o in ctx.scan(ctx.model("Order"), filter=Attr("total") >= 100)]
            assert len(big) == 20, len(big)
            Customer = ctx.model("Customer")
            ctx.batch.put(Customer(customer_id="c9", name="Zoe"))   # sent when up() returns
            assert Customer.get_or_none(customer_id="c9") is None
            ctx.echo(f"{ctx.version} {ctx.name} {ctx.direction}")
        """,
    )
    reporter = Recorder()
    Migrator(shop, tmp_path, reporter=reporter).up()
    assert Customer.get(customer_id="c9").name == "Zoe"
    assert ("message", "0001 helpers up") in reporter.events


def test_a_migration_raising_leaves_its_batch_unsent(fresh_db: Backend, tmp_path: Path) -> None:
    shop.create(poll=0.01)
    write(
        tmp_path,
        "0001_batch.py",
        """
        def up(ctx):
            ctx.batch.put(ctx.model("Customer")(customer_id="c1", name="Ann"))
            raise RuntimeError("no")
        """,
    )
    with pytest.raises(MigrationFailed):
        Migrator(shop, tmp_path).up()
    assert Customer.get_or_none(customer_id="c1") is None


def test_rate_limit_slows_a_backfill(orders: list[Order], tmp_path: Path) -> None:
    write(
        tmp_path,
        "0001_slow.py",
        "def up(ctx):\n    ctx.backfill(ctx.model('Order'), lambda o: None, segments=1, "
        "page_size=40, rate=200)\n",
    )
    started = time.monotonic()
    result = Migrator(shop, tmp_path).up()
    # ~125 items scanned (orders, a customer, runner items) at 200/s: at least ~0.6 s
    assert time.monotonic() - started >= 0.5
    assert result.backfills[0].unchanged == 120


def test_runner_items_never_show_up_in_model_reads(orders: list[Order], tmp_path: Path) -> None:
    write(tmp_path, "0001_add_status.py", ADD_STATUS)
    write(tmp_path, "0002_fail.py", "def up(ctx):\n    raise RuntimeError('x')\n")
    with pytest.raises(MigrationFailed):
        Migrator(shop, tmp_path).up()
    # the state, and the lock while held, are items of the same table
    lock = MigrationLock(Store(shop), lease=30)
    lock.acquire()
    try:
        assert len(Order.scan().all()) == 120
        assert len(Customer.scan().all()) == 1
        assert len(Order.scan().parallel(3).all()) == 120
        result = Collection(Customer, Order).fetch(customer_id="c1")
        assert result.unknown == []
    finally:
        lock.release()


def test_table_without_sort_key(fresh_db: Backend, tmp_path: Path) -> None:
    flat.create(poll=0.01)
    with batch_write() as batch:
        batch.put(*(Setting(name=f"s{n}") for n in range(30)))
    write(
        tmp_path,
        "0001_fill.py",
        "def up(ctx):\n    ctx.backfill(ctx.model('Setting'), "
        "lambda s: s.model_copy(update={'value': 'on'}), segments=2, page_size=7)\n",
    )
    migrator = Migrator(flat, tmp_path)
    migrator.up()
    assert {s.value for s in Setting.scan()} == {"on"}
    assert [s.state for s in migrator.status()] == ["applied"]


def test_missing_table_is_reported_before_locking(fresh_db: Backend, tmp_path: Path) -> None:
    write(tmp_path, "0001_x.py", "def up(ctx):\n    pass\n")
    migrator = Migrator(shop, tmp_path)
    with pytest.raises(TableNotFound):
        migrator.status()
    with pytest.raises(TableNotFound):
        migrator.up()


# -- the lock -------------------------------------------------------------------------------------


class FakeClock:
    """Wall clock and sleep for a lock: time moves only when the test (or ``sleep``) says.

    Far from the real time, so a lease read with the real clock instead would be long expired.
    """

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class SteppedLock(MigrationLock):
    """A lock whose heartbeat renews only when the test calls `beat`, which returns the
    outcome of that one renewal (None, or the `LockLost` it raised)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = threading.Semaphore(0)
        self._beats: queue.Queue[LockLost | None] = queue.Queue()

    def heartbeat_flow(self) -> Flow[None]:
        self._gate.acquire(timeout=60)  # runs in the heartbeat thread: wait for the test
        try:
            yield from super().heartbeat_flow()
        except LockLost as error:
            self._beats.put(error)
            raise
        self._beats.put(None)

    def beat(self) -> LockLost | None:
        self._gate.release()
        return self._beats.get(timeout=30)

    def release(self) -> bool:
        self._gate.release()  # a heartbeat waiting for the test must not block the join
        return super().release()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.005)


def test_a_held_lock_refuses_or_waits(fresh_db: Backend, tmp_path: Path) -> None:
    shop.create(poll=0.01)
    write(tmp_path, "0001_x.py", "def up(ctx):\n    pass\n")
    clock = FakeClock()
    holder = MigrationLock(Store(shop), lease=30, command="dynamodel migrate up", clock=clock)
    holder.acquire()
    try:
        migrator = Migrator(shop, tmp_path, clock=clock, sleep=clock.sleep)
        with pytest.raises(LockHeld, match="running `dynamodel migrate up`") as info:
            migrator.up()
        assert info.value.holder is not None and info.value.holder.owner == holder.owner
        assert "lease expires in 30s" in str(info.value)
        assert clock.slept == []  # wait=0: no waiting
        assert [s.state for s in migrator.status()] == ["pending"]  # nothing applied
        started = clock()
        with pytest.raises(LockHeld):
            migrator.up(wait=0.6)
        assert clock.slept  # it waited for the holder: the whole wait, then gave up
        assert clock() - started == pytest.approx(0.6)
    finally:
        assert holder.release()
    assert [m.version for m in migrator.up().done] == ["0001"]


def test_a_dead_runs_lock_expires_and_is_taken_over(fresh_db: Backend, tmp_path: Path) -> None:
    shop.create(poll=0.01)
    store = Store(shop)
    clock = FakeClock()
    acquired = clock()
    dead = MigrationLock(store, lease=0.5, clock=clock)
    from dynamodel.io.executors import run

    run(dead.acquire_flow(), shop.connection)  # acquired, then "killed": no heartbeat
    write(tmp_path, "0001_x.py", "def up(ctx):\n    pass\n")
    migrator = Migrator(shop, tmp_path, clock=clock, sleep=clock.sleep)
    clock.advance(0.4)  # 0.1 s of the lease left
    with pytest.raises(LockHeld):
        migrator.up()
    assert [s.state for s in migrator.status()] == ["pending"]
    waiting = clock()
    migrator.up(wait=5)  # waits for the lease to run out, then takes over
    assert clock.slept  # it did wait...
    assert clock() >= acquired + dead.lease  # ...until the lease had run out...
    assert clock() - waiting <= 5  # ...within its wait
    assert [s.state for s in migrator.status()] == ["applied"]
    assert not run(dead.release_flow(), shop.connection)  # not the dead run's any more


def test_heartbeat_keeps_the_lock_and_notices_a_takeover(fresh_db: Backend) -> None:
    shop.create(poll=0.01)
    store = Store(shop)
    clock = FakeClock()
    lock = SteppedLock(store, lease=0.75, clock=clock)
    lock.acquire()
    try:
        first = Migrator(shop, ".").lock_info()
        assert first is not None and first.owner == lock.owner
        assert first.expires_at == clock() + 0.75
        clock.advance(1.0)  # longer than the lease: only the heartbeat keeps it alive
        assert first.expired(clock())
        assert lock.beat() is None  # one renewal
        second = Migrator(shop, ".").lock_info()
        assert second is not None
        assert second.owner == lock.owner and second.expires_at > first.expires_at
        assert second.expires_at == clock() + 0.75
        assert not second.expired(clock())
        contender = MigrationLock(store, lease=30, clock=clock)
        with pytest.raises(LockHeld):  # a renewed lease cannot be taken over
            contender.acquire()
        # an operator removes it and another run takes it: this run notices and stops
        Migrator(shop, ".").unlock()
        other = MigrationLock(store, lease=30, clock=clock)
        other.acquire()
        assert isinstance(lock.beat(), LockLost)
        wait_until(lambda: lock.lost is not None, "the heartbeat records the loss")
        with pytest.raises(LockLost):
            lock.check()
        assert not lock.release()  # does not delete the other run's lock
        assert Migrator(shop, ".").lock_info().owner == other.owner  # type: ignore[union-attr]
        other.release()
    finally:
        lock.release()


def test_a_run_that_lost_its_lock_cannot_overwrite_the_state(fresh_db: Backend) -> None:
    shop.create(poll=0.01)
    store = Store(shop)
    from dynamodel.io.executors import run

    revision = run(store.put_json_flow("run-a", STATE, {"versions": {}}, 0), shop.connection)
    # run B (the new holder) writes the state; run A, still believing it holds the lock,
    # tries to write with the revision it last saw
    run(store.put_json_flow("run-b", STATE, {"versions": {"1": {}}}, revision), shop.connection)
    with pytest.raises(LockLost, match="changed by run-b"):
        run(store.put_json_flow("run-a", STATE, {"versions": {}}, revision), shop.connection)
    data, _ = run(store.get_json_flow(STATE), shop.connection)
    assert data == {"versions": {"1": {}}}


def test_model_query_filters_match_attr_helpers() -> None:
    # the backfill filter option takes ordinary conditions, raw attribute names included
    condition = Attr("gsi1pk", raw=True).not_exists()
    params = Order.scan().filter(condition)._params()
    assert "attribute_not_exists" in params["FilterExpression"]


def test_capacity_fraction_paces_a_backfill_by_consumed_capacity(
    fresh_db: Backend, tmp_path: Path
) -> None:
    provisioned = Table("migrations-provisioned", billing=Provisioned(read=4, write=1000))

    class Meter(Model):
        class Meta:
            table = provisioned
            pk = "METER#{n}"
            sk = "M"

        n: int
        read: bool = False

    provisioned.create(poll=0.01)
    with batch_write() as batch:
        batch.put(*(Meter(n=n) for n in range(60)))
    write(
        tmp_path,
        "0001_read.py",
        "def up(ctx):\n    ctx.backfill(ctx.model('Meter'), "
        "lambda m: m.model_copy(update={'read': True}), segments=1, page_size=10, "
        "capacity_fraction=0.5)\n",
    )
    started = time.monotonic()
    result = Migrator(provisioned, tmp_path).up()
    elapsed = time.monotonic() - started
    (backfill,) = result.backfills
    assert backfill.written == 60 and backfill.pages >= 6
    # each scan page consumes at least 0.5 read units (DynamoDB's minimum for a read); at
    # half of 4 RCU (2 units/s) six pages or more take at least ~1.5 s
    assert elapsed >= 1.4, elapsed
    assert all(m.read for m in Meter.scan())
    on_demand = tmp_path / "on_demand"
    write(
        on_demand,
        "0001_read.py",
        "def up(ctx):\n"
        "    ctx.backfill(ctx.model('Order'), lambda o: None, capacity_fraction=0.5)\n",
    )
    shop.create(poll=0.01)
    with pytest.raises(MigrationFailed, match="on-demand"):
        Migrator(shop, on_demand).up()
