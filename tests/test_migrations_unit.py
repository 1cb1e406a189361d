"""Pure parts of the migration runner: files, targets, plans, settings, records, rate limits,
checkpoints and the reserved key layout (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynamodel import Model, Table
from dynamodel.core.errors import ValidationError
from dynamodel.migrations import (
    ENTITY,
    RESERVED_PARTITION,
    BackfillSettings,
    FailedItem,
    MigrationError,
    Migrator,
    Record,
    parse_target,
)
from dynamodel.migrations.backfill import Checkpoint, capacity_limiters
from dynamodel.migrations.files import create, discover, slug
from dynamodel.migrations.lock import LockInfo
from dynamodel.migrations.rate import RateLimiter
from dynamodel.migrations.store import Store
from dynamodel.migrations.transform import known_attributes

unit_table = Table("migrations-unit")
flat_table = Table("migrations-unit-flat", sk=None)


class Widget(Model):
    class Meta:
        table = unit_table
        pk = "WIDGET#{widget_id}"
        sk = "W"

    widget_id: str
    colour: str = "red"


# -- files ----------------------------------------------------------------------------------------


def test_new_files_are_numbered_after_the_highest(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    first = create(folder, "Add order status index")
    second = create(folder, "backfill: totals!")
    assert first.name == "0001_add_order_status_index.py"
    assert second.name == "0002_backfill_totals.py"
    (folder / "0010_jump.py").write_text("def up(ctx): pass\n")
    assert create(folder, "after jump").name == "0011_after_jump.py"
    found = discover(folder)
    assert [m.version for m in found] == ["0001", "0002", "0010", "0011"]
    assert found[0].description() == "Add order status index"
    # the template is not a silent no-op: running it unchanged fails
    with pytest.raises(NotImplementedError):
        found[0].function("up")(None)


def test_discover_orders_by_number_and_skips_private_files(tmp_path: Path) -> None:
    (tmp_path / "10_ten.py").write_text("def up(ctx): pass\n")
    (tmp_path / "9_nine.py").write_text("def up(ctx): pass\n")
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "_helpers.py").write_text("")
    (tmp_path / "notes.txt").write_text("")
    assert [m.number for m in discover(tmp_path)] == [9, 10]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["add_index.py"], "named <version>_<name>.py"),
        (["0001_a.py", "1_b.py"], "same version 1"),
    ],
)
def test_bad_folders_are_refused_with_the_file_named(
    tmp_path: Path, files: list[str], message: str
) -> None:
    for name in files:
        (tmp_path / name).write_text("def up(ctx): pass\n")
    with pytest.raises(MigrationError, match=message):
        discover(tmp_path)


def test_missing_folder_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match=r"does not exist.*migrate new"):
        discover(tmp_path / "nope")


def test_loading_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "0001_broken.py").write_text("def up(ctx):\n    return (\n")
    (tmp_path / "0002_no_up.py").write_text("x = 1\n")
    (tmp_path / "0003_no_down.py").write_text("def up(ctx): pass\n")
    broken, no_up, no_down = discover(tmp_path)
    with pytest.raises(MigrationError, match=r"0001_broken.py: importing the migration failed"):
        broken.load()
    with pytest.raises(MigrationError, match=r"0002_no_up.py: the migration has no up"):
        no_up.load()
    with pytest.raises(MigrationError, match=r"no down.*cannot be reverted"):
        no_down.function("down")
    assert callable(no_down.function("up"))


def test_slug_needs_a_word() -> None:
    assert slug("  Rename: Customer -> Client ") == "rename_customer_client"
    with pytest.raises(MigrationError):
        slug("!!!")


# -- targets and plans ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [(None, None), (3, 3), ("3", 3), ("0003", 3), ("0003_add_index", 3), ("0", 0)],
)
def test_parse_target(text: str | int | None, number: int | None) -> None:
    assert parse_target(text) == number


def test_parse_target_refuses_names() -> None:
    with pytest.raises(MigrationError, match="not a number"):
        parse_target("latest")


def _record(version: str, state: str = "applied") -> Record:
    return Record(version=version, name=f"m{int(version)}", state=state, direction="up", run="r")  # type: ignore[arg-type]


def test_plans(tmp_path: Path) -> None:
    for n in (1, 2, 3, 4):
        (tmp_path / f"000{n}_m{n}.py").write_text("def up(ctx): pass\ndef down(ctx): pass\n")
    migrator = Migrator(unit_table, tmp_path)
    files = migrator.migrations()
    records = {1: _record("0001"), 2: _record("0002", "failed"), 3: _record("0003")}

    def plan(direction: str, target: int | None) -> list[str]:
        return [m.version for m in migrator._plan(direction, target, files, records)]  # type: ignore[arg-type]

    # up: everything not applied (a failed one runs again, a gap below an applied one too)
    assert plan("up", None) == ["0002", "0004"]
    assert plan("up", 2) == ["0002"]
    assert plan("up", 1) == []
    # down: the latest recorded one; with a target, all above it, newest first
    assert plan("down", None) == ["0003"]
    assert plan("down", 1) == ["0003", "0002"]
    assert plan("down", 0) == ["0003", "0002", "0001"]
    with pytest.raises(MigrationError, match="no migration with version 7"):
        plan("up", 7)
    (tmp_path / "0003_m3.py").unlink()
    files = migrator.migrations()
    with pytest.raises(MigrationError, match="cannot revert 0003_m3: the migration file is gone"):
        plan("down", None)


# -- settings, records, checkpoints --------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"segments": 0},
        {"page_size": 0},
        {"rate": 0},
        {"capacity_fraction": 1.5},
        {"capacity_fraction": 0},
        {"max_failures": -1},
    ],
)
def test_backfill_settings_are_validated(options: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        BackfillSettings(**options)  # type: ignore[arg-type]


def test_record_and_checkpoint_round_trip() -> None:
    record = Record(
        "0002", "add", "failed", "up", "abc", error="boom", backfills={"b": {"segments": 2}}
    )
    assert Record.from_json({**record.to_json(), "future_field": 1}) == record
    failed = FailedItem({"pk": "A", "sk": "B"}, "ValueError: bad", 1, "cursor")
    checkpoint = Checkpoint(1, 4, "cur", False, 10, 8, 1, 2, [failed])
    assert Checkpoint.from_json(checkpoint.to_json()) == checkpoint


# -- rate limits ----------------------------------------------------------------------------------


def test_rate_limiter_spreads_work_across_workers() -> None:
    now = [100.0]
    limiter = RateLimiter(1000, clock=lambda: now[0])
    assert limiter.charge(500) == pytest.approx(0.5)  # first worker: 500 items = 0.5 s
    assert limiter.charge(500) == pytest.approx(1.0)  # second worker queues behind it
    now[0] += 5.0  # idle for a while: no debt carried forward
    assert limiter.charge(100) == pytest.approx(0.1)
    assert limiter.charge(0) == 0.0
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_capacity_limiters_need_provisioned_capacity() -> None:
    provisioned = {
        "TableName": "t",
        "BillingModeSummary": {"BillingMode": "PROVISIONED"},
        "ProvisionedThroughput": {"ReadCapacityUnits": 100, "WriteCapacityUnits": 40},
    }
    reads, writes = capacity_limiters(provisioned, 0.5)
    assert (reads.per_second, writes.per_second) == (50, 20)
    on_demand = {"TableName": "t", "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"}}
    with pytest.raises(ValidationError, match=r"on-demand.*rate"):
        capacity_limiters(on_demand, 0.5)


# -- key layout -----------------------------------------------------------------------------------


def test_runner_items_live_in_a_reserved_partition() -> None:
    store = Store(unit_table)
    assert store.key("LOCK") == {"pk": {"S": RESERVED_PARTITION}, "sk": {"S": "LOCK"}}
    item = store.json_item("STATE", {"versions": {}})
    assert item["_type"] == {"S": ENTITY}
    assert set(item) == {"pk", "sk", "_type", "data"}  # no index keys: in no index
    flat = Store(flat_table)
    assert flat.key("LOCK") == {"pk": {"S": f"{RESERVED_PARTITION}#LOCK"}}


def test_scans_of_user_models_filter_out_runner_items() -> None:
    params = Widget.scan()._params()
    assert params["FilterExpression"]  # the entity-type filter excludes _dynamodel:migrations
    assert ENTITY not in str(params) and "Widget" in str(params["ExpressionAttributeValues"])


def test_known_attributes_of_a_model() -> None:
    assert known_attributes(Widget) == {"pk", "sk", "_type", "widget_id", "colour"}


def test_lock_info_describes_the_holder() -> None:
    info = LockInfo("h:1:abc", "h", 1, "dynamodel migrate up", "2024-01-01T00:00:00+00:00", 160.0)
    assert not info.expired(now=100.0)
    assert info.expired(now=160.0)
    assert "lease expires in 60s" in info.describe(now=100.0)
    assert "lease expired 40s ago" in info.describe(now=200.0)
    assert "running `dynamodel migrate up`" in info.describe(now=100.0)
