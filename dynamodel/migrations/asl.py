"""A local Step Functions runner: enough Amazon States Language to run the backfill example.

```python
from dynamodel.migrations.asl import load_sam_definition, run_state_machine

definition = load_sam_definition(
    "examples/stepfunctions", {"WorkerFunctionArn": "worker"}
)
execution = run_state_machine(definition, {}, handlers={"worker": "myapp.worker:make"}, workers=4)
assert execution.status == "SUCCEEDED", execution.error
```

Supported: Task, Choice, Map (Inline and Distributed run alike), Pass, Wait, Succeed, Fail;
InputPath, Parameters/ItemSelector, ResultSelector, ResultPath, OutputPath with the paths ``$``,
``$.a.b`` and ``$$.a.b``; Retry and Catch. Anything else is refused by name before the run.
Map iterations invoke their Tasks in ``workers`` spawned processes, each of which builds its
handlers once from ``"package.module:factory"``; other Tasks run in the calling process (their
timeout is only checked once they return). A handler's exception becomes the States error named
after its class, as on Lambda; a worker process that dies becomes ``Lambda.ServiceException``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import multiprocessing
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "AslError",
    "Event",
    "Execution",
    "FakeContext",
    "load_definition",
    "load_sam_definition",
    "run_state_machine",
]

Handler = Callable[[Any, Any], Any]
Sleep = Callable[[float], None]

_COMMON = {"Type", "Comment", "Next", "End", "InputPath", "OutputPath"}
_FIELDS: dict[str, set[str]] = {
    "Task": _COMMON | {"Resource", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch"},
    "Choice": {"Type", "Comment", "Choices", "Default", "InputPath", "OutputPath"},
    "Map": _COMMON
    | {
        "ItemsPath",
        "ItemSelector",
        "ItemProcessor",
        "MaxConcurrency",
        "ToleratedFailurePercentage",
        "ToleratedFailureCount",
        "ResultSelector",
        "ResultPath",
        "Retry",
        "Catch",
        "Label",
    },
    "Pass": _COMMON | {"Result", "Parameters", "ResultPath"},
    "Wait": _COMMON | {"Seconds"},
    "Succeed": {"Type", "Comment", "InputPath", "OutputPath"},
    "Fail": {"Type", "Comment", "Error", "Cause"},
}
_RETRY_FIELDS = {
    "ErrorEquals",
    "IntervalSeconds",
    "MaxAttempts",
    "BackoffRate",
    "MaxDelaySeconds",
    "JitterStrategy",
    "Comment",
}
_CATCH_FIELDS = {"ErrorEquals", "Next", "ResultPath", "Comment"}
_COMPARATORS = {
    "BooleanEquals",
    "StringEquals",
    "NumericEquals",
    "NumericLessThan",
    "NumericGreaterThan",
    "NumericLessThanEquals",
    "NumericGreaterThanEquals",
    "IsPresent",
    "IsNull",
    "IsBoolean",
    "IsString",
    "IsNumeric",
}
_PATH = re.compile(r"^\$\$?(\.[A-Za-z_][A-Za-z0-9_-]*)*$")
_SUBSTITUTION = re.compile(r"\$\{([^}]*)\}")


class AslError(ValueError):
    """The definition uses something this runner does not support, or is invalid."""


class StatesError(Exception):
    """An error raised while running a state: ``name`` is what Retry and Catch match."""

    def __init__(self, name: str, cause: str = "") -> None:
        super().__init__(f"{name}: {cause}" if cause else name)
        self.name = name
        self.cause = cause


@dataclass(frozen=True)
class Event:
    """One history entry: ``kind`` is "enter", "retry", "caught" or "failed"."""

    kind: str
    state: str
    error: str | None = None
    delay: float | None = None
    item: int | None = None


@dataclass
class Execution:
    """The result of a run: status "SUCCEEDED" or "FAILED", the output or the error."""

    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    events: list[Event] = field(default_factory=list)

    def entered(self, state: str | None = None) -> list[str]:
        """Names of the states entered, in order (only ``state`` when given)."""
        return [e.state for e in self.events if e.kind == "enter" and state in (None, e.state)]

    def retries(self, state: str | None = None) -> list[Event]:
        """The retry events (of ``state`` when given)."""
        return [e for e in self.events if e.kind == "retry" and state in (None, e.state)]


class FakeContext:
    """The Lambda context a handler gets; its remaining time counts down from ``timeout``."""

    def __init__(self, timeout: float, function_name: str = "local") -> None:
        self._deadline = time.monotonic() + timeout
        self.function_name = function_name
        self.invoked_function_arn = function_name
        self.memory_limit_in_mb = 1024
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# --- loading -----------------------------------------------------------------------------------


def _substitute(text: str, substitutions: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in substitutions:
            raise AslError(f"no substitution for ${{{key}}}")
        return substitutions[key]

    return _SUBSTITUTION.sub(one, text)


def load_definition(
    source: str | Path | Mapping[str, Any], substitutions: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Parse an ASL file, JSON text or dict after replacing its ``${Key}`` substitutions.

    Substitution is textual, as CloudFormation's DefinitionSubstitutions: ``${MaxConcurrency}``
    may stand unquoted for a number.
    """
    if isinstance(source, Mapping):
        text = json.dumps(source)
    elif isinstance(source, Path) or not source.lstrip().startswith("{"):
        text = Path(source).read_text()
    else:
        text = source
    definition = json.loads(_substitute(text, substitutions or {}))
    if not isinstance(definition, dict):
        raise AslError("a state machine definition is a JSON object")
    _validate_machine(definition, "(top)")
    return definition


def load_sam_definition(
    folder: str | Path,
    substitutions: Mapping[str, str],
    relative: str = "statemachine/backfill.asl.json",
) -> dict[str, Any]:
    """The SAM example's state machine (``folder/relative``) with ``substitutions`` applied."""
    return load_definition(Path(folder) / relative, substitutions)


# --- validation --------------------------------------------------------------------------------


def _check_path(value: Any, where: str) -> None:
    if value is not None and not (isinstance(value, str) and _PATH.match(value)):
        raise AslError(f"{where}: path {value!r} is not supported (only $, $.a.b and $$.a.b)")


def _check_template(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith(".$"):
                _check_path(item, f"{where}.{key}")
            else:
                _check_template(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_template(item, f"{where}[{index}]")


def _check_errors(entries: Any, allowed: set[str], where: str) -> None:
    if not isinstance(entries, list):
        raise AslError(f"{where} must be a list")
    for index, entry in enumerate(entries):
        here = f"{where}[{index}]"
        unknown = set(entry) - allowed
        if unknown:
            raise AslError(f"{here}: unsupported field(s) {sorted(unknown)}")
        if not entry.get("ErrorEquals"):
            raise AslError(f"{here}: ErrorEquals is required")
        if entry.get("JitterStrategy", "NONE") != "NONE":
            raise AslError(f"{here}: JitterStrategy {entry['JitterStrategy']!r} not supported")


def _check_rule(rule: dict[str, Any], where: str, top: bool) -> None:
    keys = set(rule) - {"Next", "Comment"}
    if top and "Next" not in rule:
        raise AslError(f"{where}: Next is required")
    if keys & {"And", "Or"}:
        (key,) = keys
        for index, sub in enumerate(rule[key]):
            _check_rule(sub, f"{where}.{key}[{index}]", top=False)
        return
    if keys == {"Not"}:
        _check_rule(rule["Not"], f"{where}.Not", top=False)
        return
    comparators = keys - {"Variable"}
    if "Variable" not in keys or len(comparators) != 1 or not comparators <= _COMPARATORS:
        raise AslError(f"{where}: unsupported choice rule fields {sorted(keys)}")
    _check_path(rule["Variable"], f"{where}.Variable")


def _validate_machine(machine: dict[str, Any], where: str) -> None:
    unknown = set(machine) - {"StartAt", "States", "Comment", "ProcessorConfig", "TimeoutSeconds"}
    if unknown:
        raise AslError(f"{where}: unsupported field(s) {sorted(unknown)}")
    if "TimeoutSeconds" in machine:
        raise AslError(f"{where}: TimeoutSeconds is not supported")
    states = machine.get("States")
    if not isinstance(states, dict) or machine.get("StartAt") not in states:
        raise AslError(f"{where}: StartAt must name one of States")
    for name, state in states.items():
        _validate_state(name, state, states)


def _validate_state(name: str, state: dict[str, Any], states: dict[str, Any]) -> None:
    kind = state.get("Type")
    if kind not in _FIELDS:
        raise AslError(f"state {name!r}: Type {kind!r} is not supported")
    unknown = set(state) - _FIELDS[kind]
    if unknown:
        raise AslError(f"state {name!r} ({kind}): unsupported field(s) {sorted(unknown)}")
    targets = [state["Next"]] if "Next" in state else []
    if kind == "Choice":
        for index, rule in enumerate(state.get("Choices") or []):
            _check_rule(rule, f"state {name!r}: Choices[{index}]", top=True)
            targets.append(rule["Next"])
        if not state.get("Choices"):
            raise AslError(f"state {name!r}: Choices is required")
        if "Default" in state:
            targets.append(state["Default"])
    elif kind not in ("Succeed", "Fail") and ("Next" in state) == bool(state.get("End")):
        raise AslError(f"state {name!r}: exactly one of Next and End is required")
    for key in ("InputPath", "OutputPath", "ResultPath", "ItemsPath"):
        _check_path(state.get(key, "$"), f"state {name!r}: {key}")
    for key in ("Parameters", "ResultSelector", "ItemSelector"):
        _check_template(state.get(key), f"state {name!r}: {key}")
    if "Retry" in state:
        _check_errors(state["Retry"], _RETRY_FIELDS, f"state {name!r}: Retry")
    if "Catch" in state:
        _check_errors(state["Catch"], _CATCH_FIELDS, f"state {name!r}: Catch")
        targets += [catcher["Next"] for catcher in state["Catch"]]
    if kind == "Task" and not isinstance(state.get("Resource"), str):
        raise AslError(f"state {name!r}: Resource is required")
    if kind == "Map":
        _validate_map(name, state)
    for target in targets:
        if target not in states:
            raise AslError(f"state {name!r}: Next {target!r} is not a state")


def _validate_map(name: str, state: dict[str, Any]) -> None:
    processor = state.get("ItemProcessor")
    if not isinstance(processor, dict):
        raise AslError(f"state {name!r}: ItemProcessor is required")
    config = processor.get("ProcessorConfig", {})
    unknown = set(config) - {"Mode", "ExecutionType"}
    if unknown:
        raise AslError(f"state {name!r}: ItemProcessor.ProcessorConfig {sorted(unknown)}")
    if config.get("Mode", "INLINE") not in ("INLINE", "DISTRIBUTED"):
        raise AslError(f"state {name!r}: Mode {config['Mode']!r} is not supported")
    if config.get("ExecutionType", "STANDARD") != "STANDARD":
        raise AslError(f"state {name!r}: only ExecutionType STANDARD is supported")
    concurrency = state.get("MaxConcurrency", 0)
    if not isinstance(concurrency, int) or concurrency < 0:
        raise AslError(f"state {name!r}: MaxConcurrency must be a non-negative integer")
    _validate_machine(processor, f"state {name!r}: ItemProcessor")


# --- paths -------------------------------------------------------------------------------------


_MISSING = object()


def _get(path: str, data: Any, context: Mapping[str, Any]) -> Any:
    root, *parts = path.split(".")
    value: Any = context if root == "$$" else data
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _read(path: str, data: Any, context: Mapping[str, Any], where: str) -> Any:
    value = _get(path, data, context)
    if value is _MISSING:
        raise StatesError("States.Runtime", f"{where}: {path} matches nothing in the input")
    return value


def _render(template: Any, data: Any, context: Mapping[str, Any], where: str) -> Any:
    if isinstance(template, dict):
        return {
            (key[:-2] if key.endswith(".$") else key): (
                _read(value, data, context, where)
                if key.endswith(".$")
                else _render(value, data, context, where)
            )
            for key, value in template.items()
        }
    if isinstance(template, list):
        return [_render(item, data, context, where) for item in template]
    return template


def _place(data: Any, path: str | None, result: Any, where: str) -> Any:
    if path is None:
        return data
    parts = path.split(".")[1:]
    if not parts:
        return result
    if parts and not isinstance(data, dict):
        raise StatesError("States.Runtime", f"{where}: ResultPath {path} needs an object input")
    output = json.loads(json.dumps(data))
    node = output
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise StatesError("States.Runtime", f"{where}: ResultPath {path} crosses a value")
    node[parts[-1]] = result
    return output


def _matches(rule: dict[str, Any], data: Any, context: Mapping[str, Any]) -> bool:
    if "And" in rule:
        return all(_matches(sub, data, context) for sub in rule["And"])
    if "Or" in rule:
        return any(_matches(sub, data, context) for sub in rule["Or"])
    if "Not" in rule:
        return not _matches(rule["Not"], data, context)
    value = _get(rule["Variable"], data, context)
    (op,) = set(rule) - {"Variable", "Next", "Comment"}
    expected = rule[op]
    if op == "IsPresent":
        return bool((value is not _MISSING) == expected)
    if value is _MISSING:
        raise StatesError("States.Runtime", f"Choice: {rule['Variable']} matches nothing")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    checks: dict[str, Callable[[], bool]] = {
        "IsNull": lambda: (value is None) == expected,
        "IsBoolean": lambda: isinstance(value, bool) == expected,
        "IsString": lambda: isinstance(value, str) == expected,
        "IsNumeric": lambda: number == expected,
        "BooleanEquals": lambda: isinstance(value, bool) and value == expected,
        "StringEquals": lambda: isinstance(value, str) and value == expected,
        "NumericEquals": lambda: number and value == expected,
        "NumericLessThan": lambda: number and value < expected,
        "NumericGreaterThan": lambda: number and value > expected,
        "NumericLessThanEquals": lambda: number and value <= expected,
        "NumericGreaterThanEquals": lambda: number and value >= expected,
    }
    return bool(checks[op]())


def _error_matches(names: list[str], error: str) -> bool:
    if error in names:
        return True
    if error == "States.Runtime":
        return False
    return "States.ALL" in names or ("States.TaskFailed" in names and error != "States.Timeout")


# --- invoking handlers -------------------------------------------------------------------------


def _factory(spec: str) -> Handler:
    module, _, name = spec.partition(":")
    if not name:
        raise AslError(f"handler {spec!r} must be 'package.module:factory'")
    handler: Handler = getattr(importlib.import_module(module), name)()
    return handler


def _call(
    handlers: dict[str, Handler], spec: str, event: Any, timeout: float
) -> tuple[str, str, str]:
    """Run a handler as Lambda would: ("ok", json, "") or ("error", class name, message).

    The handler is built from ``spec`` on first use; a failing factory fails the call (the
    next call tries again), as a failed Lambda init does.
    """
    try:
        if spec not in handlers:
            handlers[spec] = _factory(spec)
        return "ok", json.dumps(handlers[spec](event, FakeContext(timeout))), ""
    except Exception as exc:
        return "error", type(exc).__name__, str(exc)


def _serve(conn: Any) -> None:  # pragma: no cover - runs in the worker processes
    handlers: dict[str, Handler] = {}
    while (message := conn.recv()) is not None:
        spec, event, timeout = message
        conn.send(_call(handlers, spec, json.loads(event), timeout))


class _Pool:
    """``size`` spawned processes; a process that dies is replaced and its call fails."""

    def __init__(self, size: int, crash_error: str) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._crash_error = crash_error
        self._free: queue.Queue[list[Any]] = queue.Queue()
        self._all = [self._start() for _ in range(size)]
        for slot in self._all:
            self._free.put(slot)

    def _start(self) -> list[Any]:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child,), daemon=True)
        process.start()
        child.close()
        return [process, parent]

    def _replace(self, slot: list[Any]) -> None:
        process, conn = slot
        if process.is_alive():
            process.kill()
        process.join()
        conn.close()
        slot[:] = self._start()

    def invoke(self, spec: str, event: Any, timeout: float) -> tuple[str, str, str]:
        slot = self._free.get()
        try:
            process, conn = slot
            conn.send((spec, json.dumps(event), timeout))
            deadline = time.monotonic() + timeout + 1.0
            while not conn.poll(0.02):
                if not process.is_alive() and not conn.poll():
                    code = process.exitcode
                    self._replace(slot)
                    return "error", self._crash_error, f"worker process exited ({code})"
                if time.monotonic() > deadline:
                    self._replace(slot)
                    return "error", "States.Timeout", f"no result after {timeout} s"
            try:
                result: tuple[str, str, str] = conn.recv()
            except EOFError:
                self._replace(slot)
                return "error", self._crash_error, "worker process exited"
            return result
        finally:
            self._free.put(slot)

    def close(self) -> None:
        for _process, conn in self._all:
            with contextlib.suppress(OSError):
                conn.send(None)
        for process, conn in self._all:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
            conn.close()


# --- running -----------------------------------------------------------------------------------


class _Run:
    def __init__(
        self,
        handlers: Mapping[str, str],
        workers: int,
        timeout: float,
        sleep: Sleep,
        crash_error: str,
        execution_input: Any,
    ) -> None:
        self.handlers = handlers
        self.workers = workers
        self.timeout = timeout
        self.sleep = sleep
        self.crash_error = crash_error
        self.events: list[Event] = []
        self.local: dict[str, Handler] = {}
        self.pool: _Pool | None = None
        self.lock = threading.Lock()
        self.execution = {
            "Id": f"local:{uuid.uuid4()}",
            "Input": execution_input,
            "StartTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def spec(self, resource: str, name: str) -> str:
        if resource not in self.handlers:
            raise AslError(f"state {name!r}: no handler for Resource {resource!r}")
        return self.handlers[resource]

    def invoke(self, resource: str, event: Any, item: int | None, name: str) -> Any:
        spec = self.spec(resource, name)
        if item is None:
            started = time.monotonic()
            status, value, message = _call(self.local, spec, event, self.timeout)
            if status == "ok" and time.monotonic() - started > self.timeout:
                status, value, message = "error", "States.Timeout", f"over {self.timeout} s"
        else:
            with self.lock:
                if self.pool is None:
                    self.pool = _Pool(self.workers, self.crash_error)
            status, value, message = self.pool.invoke(spec, event, self.timeout)
        if status != "ok":
            raise StatesError(value, message)
        return json.loads(value)

    def machine(self, machine: dict[str, Any], data: Any, item: dict[str, Any] | None) -> Any:
        context: dict[str, Any] = {"Execution": self.execution}
        if item is not None:
            context["Map"] = {"Item": item}
        index = None if item is None else item["Index"]
        name: str = machine["StartAt"]
        while True:
            state = machine["States"][name]
            self.events.append(Event("enter", name, item=index))
            context["State"] = {"Name": name}
            data, following = self.state(name, state, data, context, index)
            if following is None:
                return data
            name = following

    def state(
        self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any], item: int | None
    ) -> tuple[Any, str | None]:
        kind = state["Type"]
        if kind == "Fail":
            raise StatesError(state.get("Error", "States.Fail"), state.get("Cause", ""))
        effective = _select(state.get("InputPath", "$"), data, context, name)
        if kind == "Choice":
            following = next(
                (r["Next"] for r in state["Choices"] if _matches(r, effective, context)),
                state.get("Default"),
            )
            if following is None:
                raise StatesError("States.NoChoiceMatched", f"state {name!r}")
            return _select(state.get("OutputPath", "$"), effective, context, name), following
        if kind == "Succeed":
            return _select(state.get("OutputPath", "$"), effective, context, name), None
        attempts: dict[int, int] = {}
        while True:
            try:
                result = self.attempt(name, state, effective, context, item)
                break
            except StatesError as error:
                delay = self.retry_delay(state, error.name, attempts)
                if delay is None:
                    return self.catch(name, state, data, error, item)
                self.events.append(Event("retry", name, error.name, delay, item))
                self.sleep(delay)
        output = _place(data, state.get("ResultPath", "$"), result, name)
        output = _select(state.get("OutputPath", "$"), output, context, name)
        return output, None if state.get("End") else state["Next"]

    def attempt(
        self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any], item: int | None
    ) -> Any:
        kind = state["Type"]
        if "Parameters" in state:
            data = _render(state["Parameters"], data, context, f"state {name!r}: Parameters")
        if kind == "Task":
            result = self.invoke(state["Resource"], data, item, name)
        elif kind == "Map":
            result = self.map(name, state, data, context)
        elif kind == "Wait":
            self.sleep(float(state.get("Seconds", 0)))
            result = data
        else:  # Pass
            result = state.get("Result", data)
        if "ResultSelector" in state:
            result = _render(state["ResultSelector"], result, context, f"state {name!r}")
        return result

    def retry_delay(
        self, state: dict[str, Any], error: str, attempts: dict[int, int]
    ) -> float | None:
        for index, retrier in enumerate(state.get("Retry", [])):
            if _error_matches(retrier["ErrorEquals"], error):
                done = attempts.get(index, 0)
                if done >= retrier.get("MaxAttempts", 3):
                    return None
                attempts[index] = done + 1
                delay = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** done
                return float(min(delay, retrier.get("MaxDelaySeconds", delay)))
        return None

    def catch(
        self, name: str, state: dict[str, Any], data: Any, error: StatesError, item: int | None
    ) -> tuple[Any, str]:
        for catcher in state.get("Catch", []):
            if _error_matches(catcher["ErrorEquals"], error.name):
                self.events.append(Event("caught", name, error.name, item=item))
                value = {"Error": error.name, "Cause": error.cause}
                return _place(data, catcher.get("ResultPath", "$"), value, name), catcher["Next"]
        raise error

    def map(self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any]) -> Any:
        items = _read(state.get("ItemsPath", "$"), data, context, f"state {name!r}: ItemsPath")
        if not isinstance(items, list):
            raise StatesError("States.Runtime", f"state {name!r}: ItemsPath is not an array")
        limit = state.get("MaxConcurrency", 0) or len(items) or 1
        distributed = state["ItemProcessor"].get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"
        tolerated = state.get("ToleratedFailurePercentage", 0) / 100 * len(items)
        tolerated = max(tolerated, state.get("ToleratedFailureCount", 0))
        failures: list[StatesError] = []
        results: list[Any] = [None] * len(items)
        stop = threading.Event()

        def one(index: int) -> None:
            if stop.is_set():
                return
            item = {"Index": index, "Value": items[index]}
            selected = items[index]
            if "ItemSelector" in state:
                where = f"state {name!r}: ItemSelector"
                selected = _render(
                    state["ItemSelector"], data, {**context, "Map": {"Item": item}}, where
                )
            try:
                results[index] = self.machine(state["ItemProcessor"], selected, item)
            except StatesError as error:
                self.events.append(Event("failed", name, error.name, item=index))
                failures.append(error)
                if len(failures) > tolerated or not distributed:
                    stop.set()

        with ThreadPoolExecutor(max_workers=min(limit, self.workers)) as threads:
            list(threads.map(one, range(len(items))))
        if failures and (not distributed or len(failures) > tolerated):
            first = failures[0]
            if not distributed:
                raise first
            raise StatesError(
                "States.ExceedToleratedFailureThreshold",
                f"{len(failures)} of {len(items)} items failed; first: {first}",
            )
        return results

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def _select(path: str | None, data: Any, context: Mapping[str, Any], name: str) -> Any:
    return {} if path is None else _read(path, data, context, f"state {name!r}")


def run_state_machine(
    definition: str | Path | Mapping[str, Any],
    input: Any,
    *,
    handlers: Mapping[str, str],
    substitutions: Mapping[str, str] | None = None,
    workers: int = os.cpu_count() or 1,
    timeout: float = 900.0,
    sleep: Sleep = time.sleep,
    crash_error: str = "Lambda.ServiceException",
) -> Execution:
    """Run ``definition`` on ``input`` and return the execution (never raises a States error).

    ``handlers`` maps each Task Resource (after ``substitutions``) to ``"module:factory"``; the
    factory is called once per process and returns ``handler(event, context)``. Map iterations
    run their Tasks in ``workers`` spawned processes; a process that dies fails its call with
    ``crash_error`` (Retry applies) and is replaced. ``sleep`` waits out Retry and Wait delays.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    machine = load_definition(definition, substitutions)
    for resource in _resources(machine):
        if resource not in handlers:
            raise AslError(f"no handler for Resource {resource!r}")
    run = _Run(handlers, workers, timeout, sleep, crash_error, input)
    try:
        output = run.machine(machine, input, None)
        return Execution("SUCCEEDED", output=output, events=run.events)
    except StatesError as error:
        return Execution("FAILED", error=error.name, cause=error.cause, events=run.events)
    finally:
        run.close()


def _resources(machine: dict[str, Any]) -> Iterator[str]:
    for state in machine["States"].values():
        if state["Type"] == "Task":
            yield state["Resource"]
        elif state["Type"] == "Map":
            yield from _resources(state["ItemProcessor"])
