"""The local Step Functions runner (dynamodel.migrations.asl) runs the SAM example's real state
machine against a fake worker (tests/asl_fake_handler.py): no AWS, no DynamoDB."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dynamodel.migrations.asl import (
    AslError,
    Execution,
    load_definition,
    load_sam_definition,
    run_state_machine,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "stepfunctions"
WORKER = "arn:aws:lambda:eu-west-1:123456789012:function:worker"
HANDLERS = {WORKER: "asl_fake_handler:make"}


def definition(concurrency: int = 8) -> dict[str, Any]:
    machine = load_sam_definition(EXAMPLE, {"WorkerFunctionArn": WORKER})
    assert machine["States"]["Backfill"]["MaxConcurrency"] == 8  # the file's value
    machine["States"]["Backfill"]["MaxConcurrency"] = concurrency
    return machine


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ASL_FAKE_DIR", str(tmp_path))
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))  # spawned workers too
    return tmp_path


def plan(root: Path, **values: Any) -> None:
    settings = {"backfills": 1, "segments": 4, "calls": {}, **values}
    (root / "plan.json").write_text(json.dumps(settings))


def calls(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / "calls.log").read_text().splitlines()]


def run(root: Path, workers: int, execution_input: Any = None, **kwargs: Any) -> Execution:
    delays: list[float] = []
    execution = run_state_machine(
        definition(kwargs.pop("concurrency", 8)),
        {} if execution_input is None else execution_input,
        handlers=HANDLERS,
        workers=workers,
        sleep=delays.append,
        **kwargs,
    )
    assert sorted(delays) == sorted(e.delay for e in execution.retries())
    return execution


@pytest.mark.parametrize("workers", [1, 4])
def test_every_segment_is_worked_to_done_then_start_again_then_verify(
    fake: Path, workers: int
) -> None:
    plan(fake, backfills=2, segments=5, calls={"0": 3, "2": 2}, leased=[1], kill=[3])
    execution = run(fake, workers)
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.output == {"state": "applied", "migrations": ["0001_backfill"], "failed": 0}

    log = calls(fake)
    assert [c["action"] for c in log if c["action"] != "work"] == ["start"] * 3 + ["verify"]
    assert log[-1]["action"] == "verify"
    for job in ("job-0", "job-1"):
        for segment in range(5):
            assert (fake / f"done-{job}-{segment}").exists()
    work = [(c["job"], c["segment"]) for c in log if c["action"] == "work"]
    # segment 0 needs 3 calls, 2 needs 2; 1 is refused once (leased); 3 is killed once
    assert work.count(("job-0", 0)) == 3 and work.count(("job-0", 2)) == 2
    assert work.count(("job-1", 1)) == 2 and work.count(("job-1", 3)) == 2
    # the parent ran Start and Verify, the worker processes ran Work
    parent = {c["pid"] for c in log if c["action"] != "work"}
    assert len(parent) == 1 and not parent & {c["pid"] for c in log if c["action"] == "work"}

    entered = execution.entered()
    assert entered[:3] == ["Target?", "Start", "Waiting?"]
    assert entered.count("Backfill") == 2 and entered.count("Start") == 3
    assert entered[-2:] == ["Verify", "Applied"]
    leased = [e for e in execution.retries("Work") if e.error == "SegmentLeased"]
    crashed = [e for e in execution.retries("Work") if e.error == "Lambda.ServiceException"]
    assert [(e.item, e.delay) for e in leased] == [(1, 30.0), (1, 30.0)]
    assert [(e.item, e.delay) for e in crashed] == [(3, 2.0), (3, 2.0)]


def test_a_worker_past_its_timeout_is_killed_and_retried(fake: Path) -> None:
    plan(fake, segments=2, slow=[1])
    execution = run(fake, 2, timeout=0.5)
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    timeouts = [(e.error, e.item, e.delay) for e in execution.retries("Work")]
    assert timeouts == [("States.Timeout", 1, 5.0)]
    work = [c for c in calls(fake) if c["action"] == "work"]
    assert len(work) == 3  # segment 0 once, segment 1 timed out then done


def test_the_context_counts_down_from_the_timeout(fake: Path) -> None:
    plan(fake, segments=1)
    machine = definition()
    machine["States"]["Backfill"]["ResultPath"] = "$.results"
    machine["States"]["Backfill"]["Next"] = "Stop"
    machine["States"]["Stop"] = {"Type": "Succeed", "OutputPath": "$.results"}
    execution = run_state_machine(machine, {}, handlers=HANDLERS, workers=1, timeout=60)
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    (result,) = execution.output
    assert 50_000 < result["remaining_ms"] <= 60_000


def test_a_target_reaches_the_start_action(fake: Path) -> None:
    plan(fake, segments=2)
    execution = run(fake, 2, {"target": "0001"})
    assert execution.status == "SUCCEEDED"
    starts = [c for c in calls(fake) if c["action"] == "start"]
    assert [c.get("target") for c in starts] == ["0001", "0001"]
    assert "StartToTarget" in execution.entered() and "Start" not in execution.entered()


def test_an_error_without_a_retry_fails_the_execution(fake: Path) -> None:
    plan(fake, boom=["start"])
    execution = run(fake, 1)
    assert (execution.status, execution.error) == ("FAILED", "Boom")
    assert execution.cause == "start failed"
    assert execution.retries() == []


def test_a_failing_segment_fails_the_distributed_map(fake: Path) -> None:
    plan(fake, segments=3, boom=[2])
    execution = run(fake, 2)
    assert (execution.status, execution.error) == (
        "FAILED",
        "States.ExceedToleratedFailureThreshold",
    )
    assert "Boom" in (execution.cause or "")
    assert [(e.kind, e.error, e.item) for e in execution.events if e.kind == "failed"] == [
        ("failed", "Boom", 2)
    ]
    assert "Verify" not in execution.entered()


def test_retries_run_out(fake: Path) -> None:
    machine = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": WORKER,
                "Parameters": {"action": "start"},
                "Retry": [
                    {
                        "ErrorEquals": ["States.TaskFailed"],
                        "IntervalSeconds": 1,
                        "MaxAttempts": 3,
                        "BackoffRate": 3,
                        "MaxDelaySeconds": 5,
                    }
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "P"}],
                "End": True,
            },
            "P": {"Type": "Pass", "Parameters": {"caught.$": "$.error.Error"}, "End": True},
        },
    }
    plan(fake, boom=["start"])
    delays: list[float] = []
    execution = run_state_machine(
        machine, {"x": 1}, handlers=HANDLERS, workers=1, sleep=delays.append
    )
    assert delays == [1.0, 3.0, 5.0]
    assert (execution.status, execution.output) == ("SUCCEEDED", {"caught": "Boom"})


def test_paths_choice_and_map_inline() -> None:
    machine = {
        "StartAt": "Shape",
        "States": {
            "Shape": {
                "Type": "Pass",
                "InputPath": "$.in",
                "Parameters": {"items.$": "$.values", "fixed": [1, {"a.$": "$.flag"}]},
                "ResultPath": "$.shaped",
                "Next": "Each",
            },
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.shaped.items",
                "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
                "ItemProcessor": {
                    "StartAt": "Big?",
                    "States": {
                        "Big?": {
                            "Type": "Choice",
                            "Choices": [
                                {
                                    "And": [
                                        {"Variable": "$.v", "IsNumeric": True},
                                        {"Variable": "$.v", "NumericGreaterThan": 2},
                                    ],
                                    "Next": "Big",
                                }
                            ],
                            "Default": "Small",
                        },
                        "Big": {"Type": "Pass", "Result": "big", "End": True},
                        "Small": {"Type": "Pass", "OutputPath": "$.i", "End": True},
                    },
                },
                "ResultPath": "$.out",
                "OutputPath": "$.out",
                "End": True,
            },
        },
    }
    execution = run_state_machine(
        machine, {"in": {"values": [1, 5, 2], "flag": True}}, handlers={}, workers=2
    )
    assert (execution.status, execution.output) == ("SUCCEEDED", [0, "big", 2])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s["Start"].update(TimeoutSeconds=60),
            "'Start' (Task): unsupported field(s) ['TimeoutSeconds']",
        ),
        (
            lambda s: s["Start"].update(Type="Parallel"),
            "state 'Start': Type 'Parallel' is not supported",
        ),
        (
            lambda s: s["Backfill"].update(
                ItemReader={"Resource": "arn:aws:states:::s3:getObject"}
            ),
            "'Backfill' (Map): unsupported field(s) ['ItemReader']",
        ),
        (
            lambda s: s["Start"]["Parameters"].update({"x.$": "States.Format('{}', $.a)"}),
            "state 'Start': Parameters.x.$: path \"States.Format('{}', $.a)\" is not supported",
        ),
        (
            lambda s: s["Backfill"].update(ItemsPath="$.segments[0]"),
            "ItemsPath: path '$.segments[0]'",
        ),
        (
            lambda s: s["Waiting?"]["Choices"][0].update(StringMatches="w*"),
            "state 'Waiting?': Choices[0]: unsupported choice rule fields",
        ),
        (
            lambda s: s["Start"]["Retry"][0].update(JitterStrategy="FULL"),
            "state 'Start': Retry[0]: JitterStrategy 'FULL' not supported",
        ),
        (
            lambda s: s["Start"]["Retry"][0].update(Backoff=2),
            "state 'Start': Retry[0]: unsupported field(s) ['Backoff']",
        ),
        (
            lambda s: s["Start"].update(Next="Nowhere"),
            "state 'Start': Next 'Nowhere' is not a state",
        ),
        (
            lambda s: s["Backfill"]["ItemProcessor"]["ProcessorConfig"].update(
                ExecutionType="EXPRESS"
            ),
            "only ExecutionType STANDARD",
        ),
        (
            lambda s: s["Backfill"]["ItemProcessor"]["States"]["Work"].update(Credentials={}),
            "state 'Work' (Task): unsupported field(s) ['Credentials']",
        ),
    ],
)
def test_unsupported_fields_are_refused_by_name(change: Any, message: str) -> None:
    machine = definition()
    change(machine["States"])
    with pytest.raises(AslError) as refused:
        load_definition(machine)
    assert message in str(refused.value)


def test_a_handler_that_cannot_be_built_fails_its_task(fake: Path) -> None:
    plan(fake, segments=1)
    handlers = {WORKER: "asl_fake_handler_missing:make"}
    execution = run_state_machine(definition(), {}, handlers=handlers, workers=1)
    assert (execution.status, execution.error) == ("FAILED", "ModuleNotFoundError")
    assert execution.entered() == ["Target?", "Start"]


def test_substitutions_and_handlers_must_be_complete() -> None:
    with pytest.raises(AslError, match=r"no substitution for \$\{WorkerFunctionArn\}"):
        load_sam_definition(EXAMPLE, {})
    with pytest.raises(AslError, match="no handler for Resource"):
        run_state_machine(definition(), {}, handlers={}, workers=1)


def test_the_example_definition_is_what_the_template_promises() -> None:
    machine = definition(3)
    backfill = machine["States"]["Backfill"]
    assert backfill["MaxConcurrency"] == 3
    assert backfill["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "STANDARD",
    }
    assert backfill["ItemSelector"] == {"job.$": "$.job", "segment.$": "$$.Map.Item.Value"}
    assert (backfill["ItemsPath"], backfill["ResultPath"]) == ("$.segments", None)
    assert backfill["ToleratedFailurePercentage"] == 0
    work = backfill["ItemProcessor"]["States"]["Work"]
    retried = {name for retrier in work["Retry"] for name in retrier["ErrorEquals"]}
    assert {"SegmentLeased", "Lambda.ServiceException", "States.Timeout"} <= retried
