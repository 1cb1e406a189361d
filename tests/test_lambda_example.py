"""examples/lambda_stream_handler.py: the handler against the sample stream event."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVENT = ROOT / "tests" / "fixtures" / "stream_event.json"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "lambda_stream_handler", ROOT / "examples" / "lambda_stream_handler.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the models' annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def shop(example: ModuleType, fresh_db: Any) -> Iterator[ModuleType]:
    example.shop.create(poll=0.01)
    yield example


def event() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EVENT.read_text(encoding="utf-8"))
    return data


def sequence(n: int) -> str:
    return str(event()["Records"][n - 1]["dynamodb"]["SequenceNumber"])


def stats(module: ModuleType, customer_id: str) -> tuple[int, int, int] | None:
    found = module.CustomerStats.get_or_none(customer_id=customer_id)
    if found is None:
        return None
    return found.orders_placed, found.orders_shipped, found.carts_expired


def test_the_sample_batch_succeeds_and_updates_the_statistics(shop: ModuleType) -> None:
    assert shop.handler(event(), None) == {"batchItemFailures": []}
    assert stats(shop, "c1") == (1, 1, 0)  # o1 placed, then shipped; the cart only changed
    assert stats(shop, "c2") == (0, 0, 1)  # o2 removed by a user (not counted), cart expired


def test_a_record_that_does_not_fit_its_model_fails_there(shop: ModuleType) -> None:
    broken = copy.deepcopy(event())
    broken["Records"][2]["dynamodb"]["NewImage"]["total"] = {"S": "twenty-five"}
    assert shop.handler(broken, None) == {"batchItemFailures": [{"itemIdentifier": sequence(3)}]}
    assert stats(shop, "c1") == (1, 0, 0)  # records 1 and 2 were applied, nothing after
    assert stats(shop, "c2") is None


def test_a_downstream_failure_is_reported_for_its_record(
    shop: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = shop._count

    def flaky(customer_id: str, counter: str) -> None:
        if counter == "carts_expired":
            raise ConnectionError("statistics store unavailable")
        count(customer_id, counter)

    monkeypatch.setattr(shop, "_count", flaky)
    assert shop.handler(event(), None) == {"batchItemFailures": [{"itemIdentifier": sequence(6)}]}
    assert stats(shop, "c1") == (1, 1, 0)


def test_unknown_entity_types_are_skipped_but_unreadable_records_fail(shop: ModuleType) -> None:
    data = event()
    keys_only = data["Records"][3]["dynamodb"]
    del keys_only["NewImage"], keys_only["OldImage"]
    keys_only["StreamViewType"] = "KEYS_ONLY"
    assert shop.handler(data, None) == {"batchItemFailures": [{"itemIdentifier": sequence(4)}]}
    only_audit = {"Records": [event()["Records"][6]]}
    assert shop.handler(only_audit, None) == {"batchItemFailures": []}
