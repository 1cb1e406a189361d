"""Unique constraints without a server: guard keys, the requests each write builds, and the
mapping of transaction cancellations to `UniqueConstraintViolation` / `VersionConflict`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import throw_into
from test_unique import UNIQ, Account, Member, member

from dynamodel import UniqueConstraintViolation, VersionConflict
from dynamodel.core.errors import TransactionCanceled, parse_reasons
from dynamodel.core.flows import Request
from dynamodel.ops.shard_guard import forget_shard_checks, trust_layout
from dynamodel.ops.unique import GUARD_PREFIX, GUARD_SK, GUARD_TYPE, guard_key


@pytest.fixture(autouse=True)
def _trusted_layouts() -> Iterator[None]:
    for model in (Member, Account):
        spec = model._spec()
        trust_layout(UNIQ.physical_name, spec.entity, spec.guard_slots())
    yield
    forget_shard_checks()


def first_request(flow: Any) -> Request:
    step = next(flow)
    assert isinstance(step, Request)
    return step


def cancel(*reasons: dict[str, Any]) -> TransactionCanceled:
    return TransactionCanceled("cancelled", reasons=parse_reasons(list(reasons)))


def test_guard_keys_are_unambiguous() -> None:
    key = guard_key(Member, "email", "a@x.io")
    assert key == {
        "pk": {"S": GUARD_PREFIX + '["Member","email","a@x.io"]'},
        "sk": {"S": GUARD_SK},
    }
    values = ['a","b', "a", 'a"', "a#b", "a\\", "é", '["x"]', ""]
    keys = {guard_key(Member, "email", v)["pk"]["S"] for v in values}
    assert len(keys) == len(values)
    for v in values:  # the value decodes back exactly
        pk = guard_key(Member, "email", v)["pk"]["S"]
        assert json.loads(pk[len(GUARD_PREFIX) :]) == ["Member", "email", v]
    assert guard_key(Member, "handle", "a") != guard_key(Member, "email", "a")


def test_create_is_one_transaction_with_a_guard_per_value() -> None:
    ann = member(handle="ann")
    request = first_request(ann._create_flow(None))
    assert request.op == "transact_write_items"
    items = request.params["TransactItems"]
    assert 1 <= len(request.params["ClientRequestToken"]) <= 36
    assert [next(iter(i)) for i in items] == ["Put", "Put", "Put"]
    assert "attribute_not_exists" in items[0]["Put"]["ConditionExpression"]
    guard = items[1]["Put"]
    assert guard["Item"]["_type"] == {"S": GUARD_TYPE}
    assert guard["Item"]["unique_owner"] == {"S": '{"pk":"ORG#o","sk":"MEMBER#m1"}'}
    assert guard["ConditionExpression"] == "attribute_not_exists(#pk) OR #owner = :owner"
    assert guard["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    assert items[2]["Put"]["Item"]["unique_field"] == {"S": "handle"}


def test_a_failed_guard_is_a_violation_naming_the_owner() -> None:
    flow = member()._create_flow(None)
    first_request(flow)
    owner = {"unique_owner": {"S": '{"pk":"ORG#o","sk":"MEMBER#m0"}'}}
    with pytest.raises(UniqueConstraintViolation) as caught:
        throw_into(
            flow, cancel({"Code": "None"}, {"Code": "ConditionalCheckFailed", "Item": owner})
        )
    error = caught.value
    assert (error.model, error.field, error.value) == ("Member", "email", "ann@example.com")
    assert error.owner == {"pk": "ORG#o", "sk": "MEMBER#m0"}


def test_save_without_a_change_is_one_conditioned_put() -> None:
    ann = member()
    flow = ann._save_flow(None, False)
    read = first_request(flow)
    assert read.op == "get_item" and read.params["ConsistentRead"] is True
    put = flow.send({"Item": ann.to_item()})
    assert put.op == "put_item"
    assert "attribute_exists" in put.params["ConditionExpression"]
    assert {"S": "ann@example.com"} in put.params["ExpressionAttributeValues"].values()
    with pytest.raises(StopIteration):
        flow.send({})


def test_save_with_a_change_claims_and_releases() -> None:
    ann = member()
    stored = ann.to_item()
    ann.email = "new@example.com"
    flow = ann._save_flow(None, False)
    first_request(flow)
    request = flow.send({"Item": stored})
    kinds = [next(iter(i)) for i in request.params["TransactItems"]]
    assert kinds == ["Put", "Put", "Delete"]
    released = request.params["TransactItems"][2]["Delete"]["Key"]
    assert released == guard_key(Member, "email", "ann@example.com")


def test_a_version_conflict_stays_a_version_conflict() -> None:
    account = Account(account_id="a1", email="a@x.io", version=1)
    stored = {**account.to_item(), "version": {"N": "2"}}
    account.email = "b@x.io"
    flow = account._save_flow(None, False)
    first_request(flow)
    flow.send({"Item": {**stored}})
    with pytest.raises(VersionConflict):
        throw_into(
            flow, cancel({"Code": "ConditionalCheckFailed", "Item": stored}, {"Code": "None"}, {})
        )
