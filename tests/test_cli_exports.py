"""``dynamodel export`` and ``dynamodel import`` (typer's runner): reading, checking and
converting export folders, dry runs, and the API calls against the local backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from export_models import EXPORT_ID, customers, orders, shop, write_export
from typer.testing import CliRunner

from dynamodel.cli._app import app
from dynamodel.ops.exports import read_export

runner = CliRunner()
APP = "export_models"  # tests/ is on sys.path


def cli(*args: str, code: int = 0) -> Any:
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, f"exit {result.exit_code}: {result.output}"
    return result


@pytest.fixture(autouse=True)
def unbound(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("DYNAMODEL_APP", raising=False)
    yield
    shop.unbind()  # --table-name and --endpoint-url bind the app's table


def mixed(tmp_path: Path) -> Path:
    unknown = {"pk": {"S": "INVOICE#1"}, "sk": {"S": "X"}, "_type": {"S": "Invoice"}}
    return write_export(
        tmp_path / "exp",
        [
            [customers(1)[0].to_item(), unknown],
            [o.to_item() for o in orders(2)],
        ],
    )


def test_check_counts_models_and_unrouted_items(tmp_path: Path) -> None:
    folder = mixed(tmp_path)
    out = cli("export", "check", str(folder), "--app", APP).output
    assert "4 items in 2 file(s) (manifest: 4)" in out
    assert "Customer: 1, Order: 2" in out and "unknown_entity: 1" in out
    data = json.loads(cli("export", "check", str(tmp_path / "exp"), "--app", APP, "--json").stdout)
    assert data["location"] == str(folder)
    assert data["by_model"] == {"Customer": 1, "Order": 2} and data["problems"] == []
    assert [f["md5"] for f in data["files"]] == ["ok", "ok"]


def test_check_fails_on_a_mismatch_or_a_corrupt_line(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "a", [[customers(1)[0].to_item()]], counts=[2])
    out = cli("export", "check", str(folder), "--app", APP, code=1).output
    assert "mismatch:" in out and "itemCount is 2 but 1 items were read" in out
    folder = write_export(tmp_path / "b", [[customers(1)[0].to_item(), '{"Item": ']])
    out = cli("export", "check", str(folder), "--app", APP, code=1).output
    assert "invalid_line: 1" in out
    cli("export", "check", str(tmp_path / "nowhere"), "--app", APP, code=2)


def test_convert_to_json_lines(tmp_path: Path) -> None:
    folder = mixed(tmp_path)
    result = cli("export", "convert", str(folder), "--app", APP)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line.get("model") or line.get("unrouted") for line in lines] == [
        "Customer",
        "unknown_entity",
        "Order",
        "Order",
    ]
    customer = lines[0]["item"]
    assert customer["avatar"] == "AAD/Cg==" and customer["lucky"] == [0, 7]
    assert lines[1]["item"]["_type"] == {"S": "Invoice"} and lines[1]["line"] == 2
    order = lines[2]["item"]
    assert order["total"] == "1234567890.123456789012345678901234567"
    assert order["placed"] == "2024-02-29T23:59:59.123456+00:00"
    assert order["attachments"] == ["AAE=", "/w=="]

    target = tmp_path / "out.jsonl"
    cli("export", "convert", str(folder), "--app", APP, "--unrouted", "skip", "-o", str(target))
    assert len(target.read_text().splitlines()) == 3
    out = cli("export", "convert", str(folder), "--app", APP, "--unrouted", "fail", code=1).output
    assert "not kept:" in out and "unknown_entity" in out


def test_convert_a_corrupt_line_is_not_kept(tmp_path: Path) -> None:
    folder = write_export(tmp_path, [[customers(1)[0].to_item(), "not json at all"]])
    target = tmp_path / "out.jsonl"
    result = cli(
        "export", "convert", str(folder), "--app", APP, "--json", "-o", str(target), code=1
    )
    data = json.loads(result.stdout)
    assert len(target.read_text().splitlines()) == 1
    assert data["not_kept"] and "line 2" in data["not_kept"][0]
    result = cli("export", "convert", str(folder), "--app", APP, "--unrouted", "skip")
    assert len(result.stdout.splitlines()) == 1


def test_convert_to_import_files_carries_dynamodels_own_records(tmp_path: Path) -> None:
    guard = {
        "pk": {"S": '_dynamodel#unique#["Customer","email","c0@example.com"]'},
        "sk": {"S": "_dynamodel#unique"},
        "_type": {"S": "_dynamodel:unique"},
    }
    shards = {"pk": {"S": "_dynamodel#shards"}, "sk": {"S": "Order"}, "count": {"N": "1"}}
    folder = write_export(
        tmp_path / "exp",
        [[customers(1)[0].to_item(), guard, shards], [o.to_item() for o in orders(2)]],
    )
    out_dir = tmp_path / "ready"
    cli("export", "convert", str(folder), "--app", APP, "--to", "import", "--out", str(out_dir))
    reader = read_export(out_dir, table=shop)
    assert list(reader) == [customers(1)[0], *orders(2)]
    assert reader.report.unrouted == {"internal": 2} and reader.report.ok
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "data",
        "manifest-files.json",
        "manifest-summary.json",
    ]
    cli("export", "convert", str(folder), "--app", APP, "--to", "import", code=2)


def test_dry_runs_print_the_requests(tmp_path: Path) -> None:
    result = cli(
        "export", "start", "--app", APP, "--bucket", "b", "--prefix", "daily",
        "--time", "2024-05-01T10:00:00", "--dry-run",
    )  # fmt: skip
    (request,) = json.loads(result.stdout)
    assert request["operation"] == "ExportTableToPointInTime"
    assert request["parameters"]["ExportTime"] == "2024-05-01 10:00:00+00:00"
    assert request["parameters"]["ExportType"] == "FULL_EXPORT"
    cli("export", "start", "--app", APP, "--bucket", "b", "--time", "yesterday", code=2)
    cli("export", "start", "--app", APP, "--bucket", "b", "--format", "CSV", code=2)

    result = cli(
        "import", "start", "--app", APP, "--bucket", "b", "--prefix", "imports/shop",
        "--upload", str(tmp_path), "--table-name", "exports-shop-new", "--dry-run",
    )  # fmt: skip
    (request,) = json.loads(result.stdout)
    parameters = request["parameters"]
    assert parameters["S3BucketSource"] == {"S3Bucket": "b", "S3KeyPrefix": "imports/shop/data/"}
    assert parameters["TableCreationParameters"]["TableName"] == "exports-shop-new"
    assert parameters["InputCompressionType"] == "GZIP"


# -- against the local backend --------------------------------------------------------------------


@pytest.fixture
def pitr(fresh_db: Backend, monkeypatch: pytest.MonkeyPatch) -> Backend:
    shop.replace(point_in_time_recovery=True).create(poll=0.01)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", fresh_db.endpoint_url)  # moto serves S3 too
    return fresh_db


def test_export_and_import_through_the_command_line(
    pitr: Backend, backend_name: str, tmp_path: Path
) -> None:
    if backend_name != "moto":
        out = cli("export", "start", "--app", APP, "--bucket", "b", "--prefix", "p", code=1)
        assert "does not support ExportTableToPointInTime" in out.output
        out = cli("import", "start", "--app", APP, "--bucket", "b", "--prefix", "p/",
                  "--table-name", "exports-new", code=1)  # fmt: skip
        assert "does not support ImportTable" in out.output
        return
    import boto3

    boto3.client("s3").create_bucket(Bucket="exports")
    for item in [*customers(2), *orders(2)]:
        item.save()
    result = cli(
        "export", "start", "--app", APP, "--bucket", "exports", "--prefix", "daily",
        "--wait", "--poll", "0.05", "--json",
    )  # fmt: skip
    described = json.loads(result.stdout)
    assert described["ExportStatus"] == "COMPLETED"
    status = cli("export", "status", described["ExportArn"]).output
    assert "COMPLETED" in status and described["ExportArn"] in status

    # moto's export has no manifests: --no-manifest reads its data files
    ready = tmp_path / "ready"
    cli(
        "export", "convert", "s3://exports/daily", "--app", APP, "--no-manifest",
        "--to", "import", "--out", str(ready),
    )  # fmt: skip
    assert len(list(read_export(ready, table=shop))) == 4

    # (moto's import parser mangles escaped quotes: the guards' keys have some; see
    # test_exports_live.py) so this import carries the orders only
    from dynamodel.ops.imports import write_import_files

    plain = [o.model_copy(update={"lines": []}) for o in orders(2)]
    write_import_files(tmp_path / "plain", plain)
    result = cli(
        "import", "start", "--app", APP, "--bucket", "exports", "--prefix", "imports/one",
        "--upload", str(tmp_path / "plain"), "--table-name", "exports-shop-copy",
        "--wait", "--poll", "0.05", "--json",
    )  # fmt: skip
    described = json.loads(result.stdout)
    assert described["ImportStatus"] == "COMPLETED" and described["ImportedItemCount"] == 2
    assert described["FollowUps"] == []
    status = cli("import", "status", described["ImportArn"]).output
    assert "COMPLETED" in status and "imported items: 2" in status


def test_status_of_an_unknown_export(fresh_db: Backend, backend_name: str) -> None:
    arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/x/export/{EXPORT_ID}"
    out = cli("export", "status", arn, code=1).output
    assert "error:" in out
