"""Transactions against the local DynamoDB, each through the sync and the async API: a money
transfer with a balance check, a unique constraint held by a sentinel item written in the same
transaction, version checks inside transactions, typed TransactGet results, and cancellations
whose error names the failing action and its reason."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dynamodel import Attr, Model, Table, TransactionCanceled, ValidationError
from dynamodel.local import LocalDynamoDB
from dynamodel.ops.transactions import TransactGet, TransactWrite

BANK = Table("bank")


class Account(Model):
    class Meta:
        table = BANK
        pk = "ACCOUNT#{account_id}"
        sk = "ACCOUNT"
        version = "version"

    account_id: str
    owner: str = ""
    balance: int = 0
    version: int | None = None


class Transfer(Model):
    class Meta:
        table = BANK
        pk = "ACCOUNT#{account_id}"
        sk = "TRANSFER#{transfer_id}"

    account_id: str
    transfer_id: str
    amount: int


class User(Model):
    class Meta:
        table = BANK
        pk = "USER#{user_id}"
        sk = "USER"

    user_id: str
    email: str


class EmailClaim(Model):
    """The sentinel: one item per e-mail address, keyed by it."""

    class Meta:
        table = BANK
        pk = "EMAIL#{email}"
        sk = "EMAIL"

    email: str
    user_id: str


@pytest.fixture
def bank(fresh_db: LocalDynamoDB) -> Iterator[Table]:
    BANK.create(poll=0.01)
    yield BANK


pytestmark = pytest.mark.usefixtures("bank")


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


async def commit(tx: TransactWrite, mode: str) -> None:
    if mode == "sync":
        tx.commit()
    else:
        await tx.acommit()


async def execute(reads: TransactGet, mode: str) -> list[Any]:
    return reads.execute() if mode == "sync" else await reads.aexecute()


def transfer(source: Account, target: Account, amount: int, transfer_id: str) -> TransactWrite:
    tx = TransactWrite()
    tx.update(source, Attr("balance").add(-amount), condition=Attr("balance") >= amount)
    tx.update(target, Attr("balance").add(amount))
    tx.create(Transfer(account_id=source.account_id, transfer_id=transfer_id, amount=-amount))
    return tx


async def test_money_transfer_with_a_balance_check(mode: str) -> None:
    Account(account_id="alice", balance=100).save()
    Account(account_id="bob", balance=0).save()
    alice, bob = Account.get(account_id="alice"), Account.get(account_id="bob")
    await commit(transfer(alice, bob, 30, "t1"), mode)
    alice, bob = Account.get(account_id="alice"), Account.get(account_id="bob")
    assert (alice.balance, alice.version, bob.balance, bob.version) == (70, 2, 30, 2)
    assert Transfer.get(account_id="alice", transfer_id="t1").amount == -30

    with pytest.raises(TransactionCanceled) as info:
        await commit(transfer(alice, bob, 500, "t2"), mode)
    error = info.value
    # the error names the failing action and its reason, aligned with what was added
    assert [r.action for r in error.reasons] == ["update", "update", "create"]
    assert [r.index for r in error.failed] == [0]
    reason = error.failed[0]
    assert (reason.model, reason.key) == (Account, {"account_id": "alice"})
    assert reason.code == "ConditionalCheckFailed" and not reason.version_conflict
    assert reason.current == alice  # the stored item shows why: balance 70 < 500
    assert "action 0 (update Account {'account_id': 'alice'}): ConditionalCheckFailed" in str(error)
    # nothing was applied
    assert Account.get(account_id="alice") == alice
    assert Account.get(account_id="bob") == bob
    assert Transfer.get_or_none(account_id="alice", transfer_id="t2") is None


async def test_unique_constraint_with_a_sentinel_item(mode: str) -> None:
    async def register(user: User) -> None:
        tx = TransactWrite()
        tx.create(user)
        tx.create(EmailClaim(email=user.email, user_id=user.user_id))
        await commit(tx, mode)

    await register(User(user_id="u1", email="ann@example.com"))
    with pytest.raises(TransactionCanceled) as info:
        await register(User(user_id="u2", email="ann@example.com"))
    failed = info.value.failed
    assert [(r.index, r.action, r.model) for r in failed] == [(1, "create", EmailClaim)]
    assert failed[0].current == EmailClaim(email="ann@example.com", user_id="u1")
    assert User.get_or_none(user_id="u2") is None
    await register(User(user_id="u2", email="bob@example.com"))
    assert User.get(user_id="u2").email == "bob@example.com"


async def test_version_checks_inside_transactions(mode: str) -> None:
    Account(account_id="a", balance=10).save()
    Account(account_id="b", balance=10).save()
    stale = Account.get(account_id="a")
    fresh = Account.get(account_id="a")
    fresh.balance = 11
    fresh.save()
    b = Account.get(account_id="b")

    tx = TransactWrite()
    tx.condition_check(stale)  # depends on an item it does not write
    tx.put(b.model_copy(update={"balance": 20}))
    with pytest.raises(TransactionCanceled) as info:
        await commit(tx, mode)
    reason = info.value.failed[0]
    assert (reason.index, reason.action, reason.version_conflict) == (0, "condition_check", True)
    assert reason.current == fresh
    assert "(version conflict)" in str(info.value)

    b20 = b.model_copy(update={"balance": 20})
    tx = TransactWrite()
    tx.condition_check(fresh, Attr("balance") == 11)
    tx.put(b20)
    await commit(tx, mode)
    assert b20.version == 2  # a put records the version it wrote, like save()
    assert Account.get(account_id="b") == b20
    with pytest.raises(TransactionCanceled) as info:
        again = TransactWrite()
        again.put(b)  # b still holds version 1
        await commit(again, mode)
    assert info.value.failed[0].version_conflict


async def test_deletes_and_writes_by_key(mode: str) -> None:
    a = Account(account_id="a", balance=5)
    a.save()
    Transfer(account_id="a", transfer_id="t1", amount=5).save()
    tx = TransactWrite()
    tx.delete(a, condition=Attr("balance") == 5)
    tx.delete_item(Transfer, {"account_id": "a", "transfer_id": "t1"})
    tx.update_item(Account, {"account_id": "b"}, [Attr("balance").set(5)], upsert=True)
    tx.condition_check_item(User, {"user_id": "nobody"}, Attr("user_id").not_exists())
    await commit(tx, mode)
    assert Account.get_or_none(account_id="a") is None
    assert Transfer.get_or_none(account_id="a", transfer_id="t1") is None
    assert Account.get(account_id="b") == Account(account_id="b", balance=5, version=1)


async def test_transact_get_returns_typed_models(mode: str) -> None:
    Account(account_id="a", owner="Ann", balance=3).save()
    Transfer(account_id="a", transfer_id="t1", amount=3).save()
    reads = TransactGet()
    account = reads.get(Account, account_id="a")
    missing = reads.get(Account, account_id="zz")
    amount = reads.get(Transfer, account_id="a", transfer_id="t1", projection=["amount"])
    items = await execute(reads, mode)
    assert items == [account.item, None, amount.item]
    assert account.require() == Account(account_id="a", owner="Ann", balance=3, version=1)
    assert missing.item is None
    assert amount.item is not None and amount.item.amount == 3
    # a projected read is a partial model (moto ignores ProjectionExpression in
    # TransactGetItems and returns whole items; the unit tests check the request)
    with pytest.raises(ValidationError, match="projection"):
        amount.item.save()


async def test_many_actions_in_one_transaction(mode: str) -> None:
    tx = TransactWrite()
    for n in range(100):
        tx.put(Transfer(account_id="a", transfer_id=f"{n:03}", amount=n))
    await commit(tx, mode)
    assert Transfer.get(account_id="a", transfer_id="099").amount == 99
    reads = TransactGet()  # moto serves at most 25 reads per TransactGetItems (DynamoDB: 100)
    refs = [reads.get(Transfer, account_id="a", transfer_id=f"{n:03}") for n in range(25)]
    await execute(reads, mode)
    assert [ref.require().amount for ref in refs] == list(range(25))
