"""A role that may read but not write dynamodel's shard-layout records (what a generated tenant
policy allows) still writes and reads its items; a layout mismatch is still caught against the
record a trusted role wrote."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from dynamodel import Connection, Model, ShardCountMismatch, Shards, Table
from dynamodel.core.keys import RESERVED_PREFIX
from dynamodel.ops.shard_guard import forget_shard_checks

LR = Table("layout-records")


class Event(Model):
    class Meta:
        table = LR
        pk = "TENANT#{tenant}"
        sk = "EVENT#{n}"

    tenant: str
    n: int


class Denying:
    """A boto3 client whose IAM role may not write dynamodel's records (AccessDenied)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.denied = 0

    def put_item(self, **params: Any) -> Any:
        if params["Item"]["pk"]["S"].startswith(RESERVED_PREFIX):
            self.denied += 1
            error = {"Code": "AccessDeniedException", "Message": "not authorized"}
            raise ClientError({"Error": error}, "PutItem")
        return self._client.put_item(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def denying(fresh_db: Any, ddb: Any) -> Denying:
    LR.create(poll=0.01)
    return Denying(ddb)


def test_writes_go_on_when_the_record_cannot_be_written(denying: Denying) -> None:
    tenant_role = Connection(client=denying)
    Event(tenant="t1", n=1).save(connection=tenant_role)
    assert denying.denied == 1
    assert Event.get(tenant="t1", n=1, connection=tenant_role).n == 1


def test_a_record_written_by_a_trusted_role_is_still_checked(denying: Denying) -> None:
    Event(tenant="t1", n=1).save()  # the service's own role records "not sharded"
    forget_shard_checks()

    class ShardedEvent(Model):  # the same table, declared again by a newer deployment
        class Meta:
            table = Table("layout-records")
            entity = "Event"
            pk = "TENANT#{tenant}"
            sk = "EVENT#{n}"
            shards = Shards(4)

        tenant: str
        n: int

    with pytest.raises(ShardCountMismatch):
        ShardedEvent(tenant="t1", n=2).save(connection=Connection(client=denying))
    assert denying.denied == 1  # refused the record, then read the trusted one
