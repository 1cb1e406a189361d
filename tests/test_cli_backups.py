"""``dynamodel table backup | backups | restore | pitr | delete-backup`` (typer's runner) on moto;
the "endpoint does not support" error through a fault-injecting client (as dynoxide answers)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from conftest import user_items
from typer.testing import CliRunner

from dynamodel.cli._app import app

runner = CliRunner()

APP = """
from dynamodel import Model, Table

table = Table("{table}", ttl="expires", tags={{"team": "orders"}})


class Order(Model):
    class Meta:
        table = table
        pk = "CUSTOMER#{{customer_id}}"
        sk = "ORDER#{{order_id}}"

    customer_id: str
    order_id: int
    expires: int | None = None
"""

# the same app, with its table bound to a client that answers UnknownOperationException to the
# backups API (as dynoxide does)
FAULTY = (
    APP
    + """
import boto3
from dynamodel import Connection
from dynamodel.testing import FaultInjector

_faulty = FaultInjector(
    boto3.client("dynamodb"),
    throttle=1.0,
    throttle_code="UnknownOperationException",
    operations={{"create_backup", "list_backups", "describe_continuous_backups"}},
)
table.bind(connection=Connection(client=_faulty))
"""
)


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.table = f"clib-{uuid.uuid4().hex[:8]}"

    def module(self, source: str = APP) -> str:
        name = f"clibapp_{uuid.uuid4().hex[:10]}"
        (self.root / f"{name}.py").write_text(source.format(table=self.table))
        return name


@pytest.fixture
def project(
    fresh_db: Backend, backend_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DYNAMODEL_APP", raising=False)
    yield Project(tmp_path)


@pytest.fixture
def moto_only(backend_name: str) -> None:
    if backend_name != "moto":
        pytest.skip(f"{backend_name} has no backups API (test_unsupported_endpoint_is_named)")


def invoke(*args: str, code: int = 0) -> Any:
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, f"exit {result.exit_code}: {result.output}"
    return result


def stdout_json(*args: str) -> Any:
    """The command's stdout as JSON: nothing else may be there."""
    return json.loads(invoke(*args).stdout)


def test_backup_list_restore_round_trip(project: Project, moto_only: None, ddb: Any) -> None:
    mod = project.module()
    invoke("table", "create", "--app", mod)
    orders = __import__(mod).Order
    for n in range(4):
        orders(customer_id="c1", order_id=n).save()

    assert "No backups of table" in invoke("table", "backups", "--app", mod).output
    made = stdout_json("table", "backup", "--app", mod, "--name", "nightly-1", "--json")
    assert (made["name"], made["table"], made["status"]) == (
        "nightly-1",
        project.table,
        "AVAILABLE",
    )
    out = invoke("table", "backup", "--app", mod).output  # default name: <table>-<UTC time>
    assert f"Backup {project.table}-20" in out and "AVAILABLE" in out

    listed = stdout_json("table", "backups", "--app", mod, "--json")
    assert listed[0]["name"] == "nightly-1" and len(listed) == 2
    assert listed[0]["created"].endswith("Z") and listed[0]["size_bytes"] is not None
    out = runner.invoke(app, ["table", "backups", "--app", mod], env={"COLUMNS": "300"}).output
    assert "nightly-1" in out and made["arn"] in out and "AVAILABLE" in out

    orders(customer_id="c1", order_id=99).save()  # after the backup
    new = f"{project.table}-restored"
    # not a terminal: a restore needs --yes; --dry-run does not
    out = invoke("table", "restore", "--app", mod, "--backup", made["arn"], "--to", new, code=2)
    assert "pass --yes" in out.output
    requests = stdout_json(
        "table", "restore", "--app", mod, "--backup", made["arn"], "--to", new, "--dry-run"
    )
    assert [r["operation"] for r in requests] == [
        "RestoreTableFromBackup",
        "UpdateTimeToLive",
        "TagResource",
    ]
    assert requests[-1]["parameters"]["ResourceArn"] == f"<arn of {new}>"
    assert new not in ddb.list_tables()["TableNames"]

    result = invoke(
        "table", "restore", "--app", mod, "--backup", made["arn"], "--to", new, "--yes", "--json"
    )
    data = json.loads(result.stdout)  # pure JSON; the progress went to stderr
    assert data["TableName"] == new and data["status"] == "ACTIVE"
    assert data["source"] == {"backup": made["arn"]} and data["differences"] == []
    assert [s["operation"] for s in data["applied"]] == [
        "RestoreTableFromBackup",
        "UpdateTimeToLive",
        "TagResource",
    ]
    assert "- TTL on expires ..." in result.stderr and "table.bind(name=" in result.stderr
    restored = user_items(ddb.scan(TableName=new)["Items"])
    assert sorted(int(i["sk"]["S"].split("#")[1]) for i in restored) == [0, 1, 2, 3]
    ttl = ddb.describe_time_to_live(TableName=new)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires"

    # the same name again: refused before anything is restored (exit 2)
    out = invoke(
        "table", "restore", "--app", mod, "--backup", made["arn"], "--to", new, "--yes", code=2
    ).output
    assert "already exists" in out

    out = invoke("table", "delete-backup", made["arn"], "--app", mod, code=2).output
    assert "pass --yes" in out
    gone = stdout_json("table", "delete-backup", made["arn"], "--app", mod, "--yes", "--json")
    assert gone["status"] == "DELETED"
    assert len(stdout_json("table", "backups", "--app", mod, "--json")) == 1

    # the commands work on the restored table too (--table-name; it binds the app's table,
    # which this process keeps imported: last)
    assert (
        "matches the declaration"
        in invoke("table", "diff", "--app", mod, "--table-name", new).output
    )


def test_pitr_show_enable_and_restore(project: Project, moto_only: None, ddb: Any) -> None:
    mod = project.module()
    invoke("table", "create", "--app", mod)
    out = invoke("table", "pitr", "--app", mod).output
    assert "disabled" in out and "pitr --enable" in out
    window = stdout_json("table", "pitr", "--app", mod, "--enable", "--days", "14", "--json")
    assert window["enabled"] and window["recovery_period_days"] == 14
    assert window["earliest"].endswith("Z")
    assert "restorable from" in invoke("table", "pitr", "--app", mod).output
    invoke("table", "pitr", "--app", mod, "--enable", "--days", "40", code=2)
    invoke("table", "pitr", "--app", mod, "--days", "3", code=2)

    new = f"{project.table}-pitr"
    out = invoke("table", "restore", "--app", mod, "--latest", "--to", new, "--yes").output
    assert f"Table {new} is ACTIVE" in out and "It matches the declaration." in out
    assert new in ddb.list_tables()["TableNames"]
    # the restored table gets TTL from the declaration, but PITR is not declared: not turned on
    assert not json.loads(
        invoke("table", "pitr", "--app", mod, "--table-name", new, "--json").stdout
    )["enabled"]


def test_restore_input_is_checked_before_any_request(project: Project) -> None:
    mod = project.module()  # no table created: every refusal comes before a request
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t/backup/01-ab"
    for args, message in [
        (["--latest", "--time", "2025-03-01T09:30:00Z"], "exactly one"),
        ([], "exactly one"),
        (["--time", "2025-03-01T09:30:00"], "no time zone"),
        (["--time", "yesterday"], "not an ISO-8601"),
        (["--backup", "nightly"], "not a backup ARN"),
        (["--backup", arn, "--to", "no"], "3-255 characters"),
    ]:
        to = [] if "--to" in args else ["--to", "valid-name"]
        out = invoke("table", "restore", "--app", mod, *args, *to, "--yes", code=2).output
        assert message in out, (args, out)
    requests = stdout_json(
        "table",
        "restore",
        "--app",
        mod,
        "--time",
        "2025-03-01T10:30:00+01:00",
        "--to",
        "copy1",
        "--dry-run",
    )
    assert requests[0]["operation"] == "RestoreTableToPointInTime"
    assert requests[0]["parameters"]["RestoreDateTime"].startswith("2025-03-01 09:30:00")
    invoke("table", "backup", "--app", mod, "--name", "a b", code=2)


def test_unsupported_endpoint_is_named(project: Project, local_env: Backend) -> None:
    mod = project.module(FAULTY)
    invoke("table", "create", "--app", mod)
    for command in (["backup"], ["backups"], ["pitr"]):
        out = invoke("table", *command, "--app", mod, code=1).output
        assert f"the endpoint {local_env.endpoint_url} does not support" in out.replace("\n", "")
    out = invoke("table", "backup", "--app", mod, code=1).output.replace("\n", "")
    assert "does not support CreateBackup" in out


def test_help_lists_the_backup_commands() -> None:
    out = runner.invoke(app, ["table", "--help"], env={"COLUMNS": "200"}).output
    for command in ("backup", "backups", "restore", "pitr", "delete-backup"):
        assert command in out
    out = runner.invoke(app, ["table", "restore", "--help"], env={"COLUMNS": "200"}).output
    assert "--backup" in out and "--latest" in out and "--to" in out
