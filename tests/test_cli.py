"""The ``dynamodel`` command line (typer's runner) against the local backend: table lifecycle,
schema exports, migrations, bad input and help."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
import typer
from backends import Backend
from conftest import user_items
from typer.testing import CliRunner

from dynamodel.cli._app import app
from dynamodel.migrations import MigrationLock
from dynamodel.migrations.store import Store

runner = CliRunner()

V1 = """
from dynamodel import GSI, Model, Table

table = Table("{table}", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])


class Order(Model):
    class Meta:
        table = table
        pk = "CUSTOMER#{{customer_id}}"
        sk = "ORDER#{{order_id}}"
        indexes = {{"gsi1": ("STATUS#{{status}}", "{{order_id}}")}}

    customer_id: str
    order_id: int
    status: str = "open"
    coupon: str | None = None
    expires: int | None = None
"""

# the next version of the app: a sparse GSI of orders by coupon, and TTL
V2 = V1.replace(
    '[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")]',
    '[GSI("gsi1", pk="gsi1pk", sk="gsi1sk"), GSI("gsi2", pk="gsi2pk", sk="gsi2sk")], ttl="expires"',
).replace(
    '"gsi1": ("STATUS#{{status}}", "{{order_id}}")}}',
    '"gsi1": ("STATUS#{{status}}", "{{order_id}}"), '
    '"gsi2": ("COUPON#{{coupon}}", "{{order_id}}")}}',
)


class Project:
    """A folder with app modules (unique module names, so each test imports its own)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.table = f"cli-{uuid.uuid4().hex[:8]}"

    def module(self, source: str) -> str:
        name = f"cliapp_{uuid.uuid4().hex[:10]}"
        (self.root / f"{name}.py").write_text(source.format(table=self.table))
        return name


@pytest.fixture
def project(
    fresh_db: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DYNAMODEL_APP", raising=False)
    yield Project(tmp_path)


def cli(*args: str, code: int = 0, input: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, f"exit {result.exit_code}: {result.output}"
    return result.output


# -- table lifecycle ------------------------------------------------------------------------------


def test_create_describe_and_dry_run(project: Project, ddb: Any) -> None:
    v1 = project.module(V1)
    out = cli("table", "create", "--app", v1, "--dry-run")
    (request,) = json.loads(out)
    assert request["operation"] == "CreateTable"
    assert request["parameters"]["TableName"] == project.table
    assert project.table not in ddb.list_tables()["TableNames"]  # dry run: nothing sent

    assert "ACTIVE" in cli("table", "create", "--app", v1)
    assert project.table in ddb.list_tables()["TableNames"]
    out = cli("table", "create", "--app", v1, code=1)
    assert "already exists" in out and "table diff" in out
    cli("table", "create", "--app", v1, "--exist-ok")

    out = cli("table", "describe", "--app", v1)
    assert "GSI gsi1" in out and "gsi1pk, gsi1sk; ALL" in out and "≠" not in out
    data = json.loads(cli("table", "describe", "--app", v1, "--json"))
    assert data["declared"]["GSI gsi1"] == data["live"]["GSI gsi1"]
    assert data["description"]["TableName"] == project.table
    assert "matches the declaration" in cli("table", "diff", "--app", v1, "--exit-code")


def test_diff_after_changing_the_model_then_sync_adds_the_gsi(project: Project, ddb: Any) -> None:
    v1, v2 = project.module(V1), project.module(V2)
    cli("table", "create", "--app", v1)

    out = cli("table", "diff", "--app", v2)
    assert "GSI gsi2" in out and "TTL" in out and "safe" in out
    changes = json.loads(cli("table", "diff", "--app", v2, "--json", "--exit-code", code=1))
    assert {c["subject"]: c["safety"] for c in changes} == {"GSI gsi2": "safe", "TTL": "safe"}
    (create_index,) = next(c for c in changes if c["subject"] == "GSI gsi2")["requests"]
    assert create_index["operation"] == "UpdateTable"
    assert create_index["parameters"]["GlobalSecondaryIndexUpdates"][0]["Create"]["IndexName"] == (
        "gsi2"
    )

    out = cli("table", "sync", "--app", v2, "--dry-run")
    assert '"UpdateTimeToLive"' in out and '"GlobalSecondaryIndexUpdates"' in out
    assert len(ddb.describe_table(TableName=project.table)["Table"]["GlobalSecondaryIndexes"]) == 1

    out = cli("table", "sync", "--app", v2)
    assert "create GSI gsi2" in out and "TTL on expires" in out
    live = ddb.describe_table(TableName=project.table)["Table"]
    assert sorted(i["IndexName"] for i in live["GlobalSecondaryIndexes"]) == ["gsi1", "gsi2"]
    assert all(i["IndexStatus"] == "ACTIVE" for i in live["GlobalSecondaryIndexes"])
    ttl = ddb.describe_time_to_live(TableName=project.table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires"
    assert "matches the declaration" in cli("table", "diff", "--app", v2, "--exit-code")
    assert "nothing to do" in cli("table", "sync", "--app", v2)

    # back to v1: removing the GSI and turning TTL off are destructive
    out = cli("table", "sync", "--app", v1, code=1)
    assert "not applied" in out and "--yes" in out
    live = ddb.describe_table(TableName=project.table)["Table"]
    assert len(live["GlobalSecondaryIndexes"]) == 2  # refused without confirmation
    cli("table", "sync", "--app", v1, "--yes")
    live = ddb.describe_table(TableName=project.table)["Table"]
    assert [i["IndexName"] for i in live["GlobalSecondaryIndexes"]] == ["gsi1"]
    assert "matches the declaration" in cli("table", "diff", "--app", v1)


def test_delete_needs_confirmation(project: Project, ddb: Any) -> None:
    v1 = project.module(V1)
    cli("table", "create", "--app", v1)
    out = cli("table", "delete", "--app", v1, code=2)
    assert "pass --yes" in out
    assert json.loads(cli("table", "delete", "--app", v1, "--dry-run"))[0]["operation"] == (
        "DeleteTable"
    )
    assert project.table in ddb.list_tables()["TableNames"]
    cli("table", "delete", "--app", v1, "--yes")
    assert project.table not in ddb.list_tables()["TableNames"]
    cli("table", "delete", "--app", v1, "--yes", "--missing-ok")


def test_table_name_override(project: Project, ddb: Any) -> None:
    v1 = project.module(V1)
    cli("table", "create", "--app", v1, "--table-name", f"{project.table}-staging")
    assert f"{project.table}-staging" in ddb.list_tables()["TableNames"]
    assert project.table not in ddb.list_tables()["TableNames"]


# -- schema ---------------------------------------------------------------------------------------


def test_schema_chart_and_exports(project: Project, tmp_path: Path) -> None:
    v2 = project.module(V2)
    out = runner.invoke(app, ["schema", "--app", v2], env={"COLUMNS": "250"}).output
    assert "Order" in out and "CUSTOMER#{customer_id}" in out and "COUPON#{coupon}" in out
    assert "_dynamodel#migrations" in out  # the reserved partition is named

    request = json.loads(cli("schema", "--app", v2, "--format", "json"))
    assert request["TableName"] == project.table
    assert [g["IndexName"] for g in request["GlobalSecondaryIndexes"]] == ["gsi1", "gsi2"]

    template = json.loads(cli("schema", "--app", v2, "-f", "cloudformation"))
    (resource,) = template["Resources"].values()
    assert resource["Type"] == "AWS::DynamoDB::Table"
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": "expires",
        "Enabled": True,
    }

    target = tmp_path / "model.json"
    cli("schema", "--app", v2, "-f", "workbench", "-o", str(target))
    model = json.loads(target.read_text())
    (table,) = model["DataModel"]
    assert model["ModelMetadata"]["Version"] == "3.0"
    (facet,) = table["TableFacets"]
    assert facet["FacetName"] == "Order"
    assert facet["KeyAttributeAlias"] == {
        "PartitionKeyAlias": "CUSTOMER#{customer_id}",
        "SortKeyAlias": "ORDER#{order_id}",
    }
    assert "status" in facet["NonKeyAttributes"] and "gsi2pk" in facet["NonKeyAttributes"]


# -- migrations -----------------------------------------------------------------------------------

BACKFILL = '''"""Give orders their coupon index key."""


def up(ctx):
    Order = ctx.model("Order")
    ctx.backfill(Order, lambda order: order, segments=2, page_size=5)


def down(ctx):
    pass
'''


def test_migrate_new_status_up_down_round_trip(project: Project, ddb: Any) -> None:
    v2 = project.module(V2)
    cli("table", "create", "--app", v2)
    order = __import__(v2).Order
    for n in range(12):
        order(customer_id="c1", order_id=n, coupon=f"SAVE{n % 2}").save()
    for item in user_items(ddb.scan(TableName=project.table)["Items"]):  # as older apps wrote
        ddb.update_item(
            TableName=project.table,
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression="REMOVE gsi2pk, gsi2sk",
        )
    assert order.query(index="gsi2", coupon="SAVE1").all() == []

    out = cli("migrate", "new", "Backfill coupon index")
    path = project.root / "migrations" / "0001_backfill_coupon_index.py"
    assert str(path) in out.replace("\n", "")
    path.write_text(BACKFILL)

    out = cli("migrate", "status", "--app", v2)
    assert "0001" in out and "pending" in out
    out = cli("migrate", "up", "--app", v2, "--dry-run")
    assert "Would apply" in out and "Give orders their coupon index key." in out
    assert order.query(index="gsi2", coupon="SAVE1").all() == []

    out = cli("migrate", "up", "--app", v2)
    assert "applied 0001_backfill_coupon_index" in out
    assert "12 written" in out.replace(",", "")
    assert len(order.query(index="gsi2", coupon="SAVE1").all()) == 6
    status = json.loads(cli("migrate", "status", "--app", v2, "--json"))
    assert [m["state"] for m in status["migrations"]] == ["applied"]
    assert status["lock"] is None
    assert "Nothing to do" in cli("migrate", "up", "--app", v2)

    out = cli("migrate", "down", "--app", v2)
    assert "reverted 0001_backfill_coupon_index" in out
    status = json.loads(cli("migrate", "status", "--app", v2, "--json"))
    assert [m["state"] for m in status["migrations"]] == ["pending"]
    out = cli("migrate", "up", "--app", v2, "--to", "0001")
    assert "Applied 1 migration" in out


def test_a_migration_raising_halfway_exits_1_and_is_recorded(project: Project) -> None:
    v1 = project.module(V1)
    cli("table", "create", "--app", v1)
    folder = project.root / "migrations"
    folder.mkdir()
    (folder / "0001_ok.py").write_text("def up(ctx):\n    pass\n")
    (folder / "0002_boom.py").write_text(
        dedent(
            """
            def up(ctx):
                Order = ctx.model("Order")
                Order(customer_id="c1", order_id=1).save()
                raise KeyError("no such coupon")
            """
        )
    )
    out = cli("migrate", "up", "--app", v1, code=1)
    assert "0002_boom" in out and "KeyError" in out and "recorded" in out
    out = cli("migrate", "status", "--app", v1, "--json")
    states = {m["version"]: m for m in json.loads(out)["migrations"]}
    assert states["0001"]["state"] == "applied"
    assert states["0002"]["state"] == "failed"
    assert "no such coupon" in states["0002"]["record"]["error"]


def test_backfill_failures_are_listed_and_written_to_a_report(
    project: Project, tmp_path: Path
) -> None:
    v1 = project.module(V1)
    cli("table", "create", "--app", v1)
    order = __import__(v1).Order
    for n in range(6):
        order(customer_id="c1", order_id=n).save()
    folder = project.root / "migrations"
    folder.mkdir()
    (folder / "0001_picky.py").write_text(
        dedent(
            """
            def up(ctx):
                def picky(order):
                    if order.order_id == 3:
                        raise ValueError("order 3 is special")
                    return order
                ctx.backfill(ctx.model("Order"), picky)
            """
        )
    )
    report = tmp_path / "failed.jsonl"
    out = cli("migrate", "up", "--app", v1, "--failed-report", str(report), code=1)
    assert "order 3 is special" in out
    (line,) = report.read_text().splitlines()
    entry = json.loads(line)
    assert entry["key"]["sk"] == f"ORDER#{3:020d}" and "ValueError" in entry["error"]
    out = runner.invoke(app, ["migrate", "status", "--app", v1], env={"COLUMNS": "250"}).output
    assert "failed" in out and "1 failed" in out


def test_conflicting_lock_exits_3_and_unlock(project: Project) -> None:
    v1 = project.module(V1)
    cli("table", "create", "--app", v1)
    folder = project.root / "migrations"
    folder.mkdir()
    (folder / "0001_ok.py").write_text("def up(ctx):\n    pass\n")
    table = __import__(v1).table
    holder = MigrationLock(Store(table), lease=120, command="dynamodel migrate up")
    holder.acquire()
    try:
        out = cli("migrate", "up", "--app", v1, code=3)
        assert "migrations are locked" in out and "--wait" in out
        out = cli("migrate", "status", "--app", v1)
        assert "pending" in out and "Lock held" in out
        out = cli("migrate", "unlock", "--app", v1, code=2)
        assert "--yes" in out
        cli("migrate", "unlock", "--app", v1, "--yes")
        assert "not held" in cli("migrate", "unlock", "--app", v1)
    finally:
        holder.release()
    cli("migrate", "up", "--app", v1)


# -- bad input ------------------------------------------------------------------------------------


def test_unknown_module(project: Project) -> None:
    out = cli("table", "diff", "--app", "no_such_module.models", code=2)
    assert "cannot import app module 'no_such_module.models'" in out


def test_module_errors_are_reported(project: Project) -> None:
    broken = project.module("import no_such_dependency\n")
    out = cli("table", "diff", "--app", broken, code=2)
    assert f"importing app module '{broken}' failed" in out and "no_such_dependency" in out
    empty = project.module("x = 1\n")
    assert "declares no dynamodel Table" in cli("schema", "--app", empty, code=2)
    two = project.module(
        'from dynamodel import Table\na = Table("one-table")\nb = Table("two-table")\n'
    )
    assert "several tables ['one-table', 'two-table']" in cli("schema", "--app", two, code=2)
    assert "one-table" in cli("schema", "--app", two, "--table", "one-table", "-f", "json")
    assert "two-table" in cli("schema", "--app", f"{two}:b", "-f", "json")
    assert "no table 'three'" in cli("schema", "--app", two, "--table", "three", code=2)
    assert "not a dynamodel Table" in cli("schema", "--app", f"{two}:x", code=2)


def test_missing_table(project: Project) -> None:
    v1 = project.module(V1)
    for command in (["table", "describe"], ["table", "diff"], ["table", "sync"]):
        out = cli(*command, "--app", v1, code=2)
        # the error names the table, where it was looked for and the fix, once
        assert f"No table '{project.table}' at region " in out and "endpoint http" in out
        assert out.count("table create") == 1
    (project.root / "migrations").mkdir()
    out = cli("migrate", "status", "--app", v1, code=2)
    assert f"No table '{project.table}' at region " in out and out.count("table create") == 1


def test_no_app_and_pyproject_config(project: Project) -> None:
    assert "no app given" in cli("table", "diff", code=2)
    v1 = project.module(V1)
    (project.root / "pyproject.toml").write_text(
        f'[tool.dynamodel]\napp = "{v1}"\nmigrations = "db/migrations"\n'
    )
    cli("table", "create")
    assert "matches the declaration" in cli("table", "diff")
    cli("migrate", "new", "first")
    assert (project.root / "db" / "migrations" / "0001_first.py").exists()
    (project.root / "pyproject.toml").write_text('[tool.dynamodel]\napps = "x"\n')
    assert "unknown [tool.dynamodel] settings ['apps']" in cli("table", "diff", code=2)


def test_bad_migration_inputs(project: Project) -> None:
    v1 = project.module(V1)
    cli("table", "create", "--app", v1)
    assert "does not exist" in cli("migrate", "up", "--app", v1, code=2)  # no folder
    folder = project.root / "migrations"
    folder.mkdir()
    (folder / "0001_ok.py").write_text("def up(ctx):\n    pass\n")
    assert "no migration with version 5" in cli("migrate", "up", "--app", v1, "--to", "5", code=2)
    assert "not a number" in cli("migrate", "up", "--app", v1, "--to", "latest", code=2)
    (folder / "0002_syntax.py").write_text("def up(ctx:\n")
    out = cli("migrate", "up", "--app", v1, code=2)
    assert "0002_syntax.py: importing the migration failed" in out
    out = cli("migrate", "status", "--app", v1, "--json")
    assert [m["state"] for m in json.loads(out)["migrations"]] == ["pending", "pending"]
    (folder / "0002_syntax.py").unlink()
    cli("migrate", "up", "--app", v1)
    out = cli("migrate", "down", "--app", v1, code=2)
    assert "no down(ctx)" in out


# -- help -----------------------------------------------------------------------------------------


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, command in getattr(group, "commands", {}).items():  # groups have commands
        yield from _commands(command, (*path, name))


def test_help_is_complete() -> None:
    root = typer.main.get_command(app)
    paths = list(_commands(root))
    names = {" ".join(p) for p in paths}
    assert {"table create", "table describe", "table diff", "table sync", "table delete"} <= names
    assert {"schema", "migrate new", "migrate up", "migrate down", "migrate status"} <= names
    assert {"local", "demo", "version"} <= names
    for path in paths:
        command: Any = root
        for name in path:
            command = command.commands[name]
        assert command.help, f"`dynamodel {' '.join(path)}` has no help text"
        for param in command.params:
            if param.name != "help":
                assert getattr(param, "help", None), f"{' '.join(path)} {param.name}: no help"
        out = cli(*path, "--help")
        assert "Usage" in out


CHART_APP = """
from dynamodel import GSI, Model, Table

table = Table("chart-shop", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])


class Customer(Model):
    class Meta:
        table = table
        pk = "CUSTOMER#{customer_id}"
        sk = "PROFILE#{customer_id}"
        indexes = {"gsi1": ("EMAIL#{email}", "CUSTOMER#{customer_id}")}

    customer_id: str
    email: str


class Order(Model):
    class Meta:
        table = table
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{placed_at}#{order_id}"
        indexes = {"gsi1": ("ORDERSTATUS#{status}", "PLACED#{placed_at}#{order_id}")}

    customer_id: str
    order_id: str
    placed_at: str
    status: str
"""
CHART_TEMPLATES = [
    "CUSTOMER#{customer_id}",
    "PROFILE#{customer_id}",
    "EMAIL#{email}",
    "ORDER#{placed_at}#{order_id}",
    "ORDERSTATUS#{status}",
    "PLACED#{placed_at}#{order_id}",
]


@pytest.mark.parametrize(
    ("env", "args"),
    [
        ({"COLUMNS": "60"}, []),
        ({"COLUMNS": "80"}, []),
        ({"COLUMNS": "120"}, []),
        ({"COLUMNS": "250"}, []),
        ({}, []),  # piped: the runner's output is no terminal
        ({"COLUMNS": "250"}, ["--width", "60"]),
        ({}, ["--width", "120"]),
    ],
)
def test_schema_chart_never_cuts_a_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], args: list[str]
) -> None:
    module = f"chart_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(CHART_APP, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = runner.invoke(app, ["schema", "--app", module, *args], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for template in CHART_TEMPLATES:  # each whole, on one line
        assert any(template in line for line in lines), (template, result.output)
    assert "…" not in result.output
    if "--width" in args:
        assert max(len(line) for line in lines[:-1]) <= int(args[1])


def machine(*args: str, code: int = 0) -> tuple[Any, str]:
    """Run a command; its stdout parsed as JSON (nothing else may be there), and its stderr."""
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, f"exit {result.exit_code}: {result.output}"
    return json.loads(result.stdout), result.stderr


def test_json_output_is_pure_json_on_stdout_and_the_notes_go_to_stderr(
    project: Project, ddb: Any
) -> None:
    v1, v2 = project.module(V1), project.module(V2)
    (request,), _ = machine("table", "create", "--app", v1, "--dry-run", "--json")
    assert request["operation"] == "CreateTable"
    description, _ = machine("table", "create", "--app", v1, "--json")
    assert description["TableName"] == project.table
    assert description["TableStatus"] == "ACTIVE"
    data, _ = machine("table", "describe", "--app", v1, "--json")
    assert data["description"]["TableName"] == project.table
    assert machine("table", "diff", "--app", v1, "--json")[0] == []

    # sync --dry-run: the requests on stdout (as before), the changes table on stderr
    for flags in (["--dry-run"], ["--dry-run", "--json"]):
        steps, err = machine("table", "sync", "--app", v2, *flags)
        assert {s["operation"] for s in steps} == {"UpdateTable", "UpdateTimeToLive"}
        assert "GSI gsi2" in err and "safe" in err
    nothing, err = machine("table", "sync", "--app", v1, "--dry-run")
    assert nothing == [] and "nothing to do" in err

    result, err = machine("table", "sync", "--app", v2, "--json")
    assert result["applied"][0]["operation"] == "UpdateTable"
    assert result["in_sync"] is True and result["not_applied"] == []
    assert {c["subject"] for c in result["changes"]} == {"GSI gsi2", "TTL"}
    assert "create GSI gsi2" in err and "Applied" in err
    result, err = machine("table", "sync", "--app", v1, "--json", code=1)
    assert result["in_sync"] is False and "GSI gsi2" in result["not_applied"]
    assert "not applied" in err and "--yes" in err
    assert machine("table", "sync", "--app", v2, "--json")[0]["applied"] == []

    (request,), _ = machine("table", "delete", "--app", v1, "--dry-run", "--json")
    assert request["operation"] == "DeleteTable"
    deleted, _ = machine("table", "delete", "--app", v1, "--yes", "--json")
    assert deleted == {"TableName": project.table, "deleted": True}
