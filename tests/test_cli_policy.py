"""``dynamodel schema policy`` and ``dynamodel schema --tenant-policy``: the tenant IAM policy
from the command line (no server needed)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dynamodel.cli._app import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
SHOP = "examples.fastapi_app.models"

REFUSED = """
from dynamodel import Model, Table

table = Table("cli-policy-{name}")


class Account(Model):
    class Meta:
        table = table
        pk = "ACCOUNT#{{tenant}}"
        sk = "ACCOUNT"

    tenant: str


class Audit(Model):
    class Meta:
        table = table
        pk = "AUDIT#{{region}}#{{tenant}}"
        sk = "X"
        unique = ("code",)

    region: str
    tenant: str
    code: str
"""


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("DYNAMODEL_APP", raising=False)


def run(*args: str, code: int = 0) -> Any:
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, f"exit {result.exit_code}: {result.output}"
    return result


def refused_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"cli_policy_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(REFUSED.format(name=name[-10:]))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_policy_json_for_the_shop() -> None:
    out = run(
        "schema", "policy", "--app", SHOP, "--field", "customer_id", "--public", "Product"
    ).stdout
    document = json.loads(out)
    read = document["Statement"][0]
    assert read["Sid"] == "TenantRead"
    assert read["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == [
        "CUSTOMER#${cognito-identity.amazonaws.com:sub}",
        "CUSTOMER#${cognito-identity.amazonaws.com:sub}#ORDER#*",
    ]
    assert read["Resource"] == ["arn:aws:dynamodb:*:*:table/fastapi-shop"]
    # the default models: every model with the field (Customer, Order, OrderItem)
    assert (
        json.loads(
            run(
                "schema",
                "policy",
                "--app",
                SHOP,
                "--field",
                "customer_id",
                "--public",
                "Product",
                "-m",
                "Customer",
                "-m",
                "Order",
                "-m",
                "OrderItem",
            ).stdout
        )
        == document
    )


def test_policy_options_and_arn() -> None:
    out = run(
        "schema",
        "policy",
        "--app",
        SHOP,
        "--field",
        "customer_id",
        "--identity",
        "tag:customer",
        "--access",
        "read-only",
        "--batch",
        "--region",
        "eu-west-1",
        "--account",
        "123456789012",
    ).stdout
    document = json.loads(out)
    sids = [s["Sid"] for s in document["Statement"]]
    assert "TenantWrite" not in sids
    read = document["Statement"][0]
    assert "dynamodb:BatchGetItem" in read["Action"]
    assert read["Resource"] == ["arn:aws:dynamodb:eu-west-1:123456789012:table/fastapi-shop"]
    assert "${aws:PrincipalTag/customer}" in json.dumps(read["Condition"])


def test_policy_cloudformation_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "policy.json"
    run(
        "schema",
        "policy",
        "--app",
        SHOP,
        "--field",
        "customer_id",
        "-f",
        "cloudformation",
        "-o",
        str(target),
    )
    template = json.loads(target.read_text())
    (resource,) = template["Resources"].values()
    assert resource["Type"] == "AWS::IAM::ManagedPolicy"


def test_refusals_go_to_stderr_with_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = refused_app(tmp_path, monkeypatch)
    result = run("schema", "policy", "--app", name, "--field", "tenant", code=1)
    assert result.stdout == ""
    assert "no tenant policy" in result.stderr
    assert "Audit: Meta.unique ['code']" in result.stderr  # brackets survive rich markup
    assert "  Account:" not in result.stderr  # Account alone could be confined


def test_bad_input_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run("schema", "policy", "--app", SHOP, "--field", "customer_id", "-m", "Nope", code=2)
    assert "has no model 'Nope'" in result.stderr
    result = run("schema", "policy", "--app", SHOP, "--field", "nobody", code=2)
    assert "no model of table 'fastapi-shop' has a field 'nobody'" in result.stderr
    result = run(
        "schema", "policy", "--app", SHOP, "--field", "customer_id", "--identity", "me", code=2
    )
    assert "give 'cognito'" in result.stderr


def test_schema_cloudformation_with_the_tenant_policy() -> None:
    out = run(
        "schema",
        "--app",
        SHOP,
        "-f",
        "cloudformation",
        "--tenant-policy",
        "customer_id",
        "--public-model",
        "Product",
    ).stdout
    template = json.loads(out)
    assert [r["Type"] for r in template["Resources"].values()] == [
        "AWS::DynamoDB::Table",
        "AWS::IAM::ManagedPolicy",
    ]
    document = template["Resources"]["TenantPolicy"]["Properties"]["PolicyDocument"]
    assert document["Statement"][0]["Resource"] == [{"Fn::GetAtt": ["FastapiShopTable", "Arn"]}]
    result = run("schema", "--app", SHOP, "--tenant-policy", "customer_id", code=2)
    assert "goes with --format cloudformation" in result.stderr


def test_schema_without_a_subcommand_still_exports() -> None:
    request = json.loads(run("schema", "--app", SHOP, "-f", "json").stdout)
    assert request["TableName"] == "fastapi-shop"
