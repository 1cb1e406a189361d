"""The Step Functions example's SAM template (examples/stepfunctions): cfn-lint accepts it and
its roles are least-privilege. Pure: no AWS."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "stepfunctions"
TABLE_ACTIONS = {
    f"dynamodb:{name}"
    for name in (
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchWriteItem",
        "BatchGetItem",
        "TransactWriteItems",
        "ConditionCheckItem",
        "DescribeTable",
    )
}


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (!Sub, !Ref, !GetAtt, ...) as {"Fn::...": value}."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load((EXAMPLE / "template.yaml").read_text(), _CfnLoader)
    return loaded


def statements(role: str) -> list[dict[str, Any]]:
    policies = template()["Resources"][role]["Properties"]["Policies"]
    return [s for policy in policies for s in policy["PolicyDocument"]["Statement"]]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_cfn_lint_passes() -> None:
    pytest.importorskip("cfnlint", reason="cfn-lint is not installed")
    beside = Path(sys.executable).with_name("cfn-lint")
    command = [str(beside)] if beside.exists() else [shutil.which("cfn-lint") or "cfn-lint"]
    done = subprocess.run(
        [*command, str(EXAMPLE / "template.yaml")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""  # no errors, no warnings, no informational findings


def test_the_worker_may_only_touch_the_table() -> None:
    found = statements("WorkerRole")
    assert [s["Effect"] for s in found] == ["Allow", "Allow"]
    table, indexes = found
    assert set(table["Action"]) == TABLE_ACTIONS
    arn = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${TableName}"
    assert table["Resource"] == {"Fn::Sub": arn}
    # reads of its indexes (a migration may query a GSI), nothing else
    assert set(indexes["Action"]) == {"dynamodb:Query", "dynamodb:Scan"}
    assert indexes["Resource"] == {"Fn::Sub": arn + "/index/*"}
    managed = template()["Resources"]["WorkerRole"]["Properties"]["ManagedPolicyArns"]
    logs = "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    assert managed == [{"Fn::Sub": logs}]


def test_the_state_machine_may_only_invoke_the_worker_and_run_its_own_children() -> None:
    found = {s["Sid"]: s for s in statements("StateMachineRole")}
    assert found["InvokeWorker"]["Action"] == "lambda:InvokeFunction"
    assert found["InvokeWorker"]["Resource"] == {"Fn::GetAtt": ["WorkerFunction", "Arn"]}
    name = template()["Resources"]["BackfillStateMachine"]["Properties"]["Name"]["Fn::Sub"]
    machine = found["DistributedMapChildren"]
    assert machine["Action"] == "states:StartExecution"
    assert machine["Resource"]["Fn::Sub"].endswith(f":stateMachine:{name}")
    children = found["DistributedMapChildExecutions"]
    assert set(children["Action"]) == {"states:DescribeExecution", "states:StopExecution"}
    assert children["Resource"]["Fn::Sub"].endswith(f":execution:{name}/*")


def test_no_statement_grants_every_resource_or_action() -> None:
    for role in ("WorkerRole", "StateMachineRole"):
        for statement in statements(role):
            for resource in _as_list(statement["Resource"]):
                text = resource if isinstance(resource, str) else resource.get("Fn::Sub", "")
                assert text != "*" and ":*" not in text, (role, statement)
                assert not text.endswith("table/*"), (role, statement)
            for action in _as_list(statement["Action"]):
                assert "*" not in action, (role, statement)


def test_the_worker_and_the_state_machine() -> None:
    resources = template()["Resources"]
    worker = resources["WorkerFunction"]["Properties"]
    assert (worker["Handler"], worker["Runtime"], worker["Timeout"]) == (
        "app.handler",
        "python3.12",
        900,
    )
    assert (EXAMPLE / worker["CodeUri"] / "app.py").exists()
    machine = resources["BackfillStateMachine"]["Properties"]
    assert machine["Type"] == "STANDARD"
    assert (EXAMPLE / machine["DefinitionUri"]).exists()
    assert set(machine["DefinitionSubstitutions"]) == {"WorkerFunctionArn"}
    assert template()["Outputs"]["StateMachineArn"]["Value"] == {"Ref": "BackfillStateMachine"}
