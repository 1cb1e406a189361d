"""Global tables: the ``replicas`` declaration, the create and sync requests (through a client
that simulates replicas on top of moto, `global_tables_fake.GlobalTables`), the diff of
declared against live replicas, the CloudFormation export (checked with cfn-lint when it is
installed) and the CLI's diff and sync."""

from __future__ import annotations

import copy
import json
import pickle
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from global_tables_fake import AsyncGlobalTables, GlobalTables

from dynamodel import GSI, LSI, Connection, DynamodelError, Provisioned, Replica, Table
from dynamodel.core.errors import UnsupportedOperationWarning, ValidationError
from dynamodel.modelling.replicas import (
    described_replicas,
    replica_action,
    replica_change,
    replica_requests,
    table_region,
)
from dynamodel.schema import apply, cloudformation, compare, declared_shape, live_shape, plan
from dynamodel.testing import InProcessDynamoDB

STREAM = "NEW_AND_OLD_IMAGES"


def global_table(name: str = "gt-orders", **options: Any) -> Table:
    settings: dict[str, Any] = {
        "indexes": [GSI("gsi1", pk="gsi1pk", sk="gsi1sk")],
        "stream": STREAM,
        "replicas": ["eu-west-1", "ap-southeast-2"],
    }
    settings.update(options)
    return Table(name, **settings)


# -- declaration ----------------------------------------------------------------------------------


def test_replicas_are_regions_or_replica_objects() -> None:
    table = global_table(
        replicas=["eu-west-1", Replica("us-west-2", table_class="STANDARD_INFREQUENT_ACCESS")]
    )
    assert table.replicas == (
        Replica("eu-west-1"),
        Replica("us-west-2", table_class="STANDARD_INFREQUENT_ACCESS"),
    )
    assert repr(table.replicas[0]) == "Replica('eu-west-1')"
    assert repr(table.replicas[1]) == (
        "Replica('us-west-2', table_class='STANDARD_INFREQUENT_ACCESS')"
    )
    assert "replicas=(Replica('eu-west-1'), " in repr(table)
    assert table == global_table(replicas=table.replicas)  # what replace() passes back
    assert table.replace(replicas=(), stream=None).replicas == ()
    assert Table("gt-plain").replicas == ()
    replica = Replica("eu-west-1", "alias/orders", 10, {"gsi1": 5}, "STANDARD")
    assert pickle.loads(pickle.dumps(replica)) == replica
    assert replica.replace(read_capacity=11).read_capacity == 11
    assert replica.index_read_capacity == (("gsi1", 5),) and replica.overrides
    assert not Replica("eu-west-1").overrides
    assert hash(replica) == hash(
        Replica("eu-west-1", "alias/orders", 10, [("gsi1", 5)], "STANDARD")
    )


@pytest.mark.parametrize(
    ("replicas", "message"),
    [
        (["eu-west1"], "'eu-west1' is not an AWS region name"),
        (["EU-WEST-1"], "not an AWS region name"),
        ([""], "not an AWS region name"),
        ([7], "each entry is a region name or a Replica"),
        ("eu-west-1", "replicas=['eu-west-1']"),
        (["eu-west-1", Replica("eu-west-1")], "['eu-west-1'] listed more than once"),
    ],
)
def test_replica_regions_are_checked(replicas: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        global_table(replicas=replicas)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kms_key": ""}, "kms_key must be a non-empty string"),
        ({"read_capacity": 0}, "read_capacity must be a whole number"),
        ({"read_capacity": True}, "read_capacity must be a whole number"),
        ({"index_read_capacity": {"gsi1": 1.5}}, "index_read_capacity\\['gsi1'\\] must be"),
        ({"index_read_capacity": {"": 1}}, "index names must be non-empty"),
        ({"table_class": "GLACIER"}, "table_class must be one of"),
    ],
)
def test_replica_settings_are_checked(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Replica("eu-west-1", **options)


def test_a_table_with_replicas_needs_the_new_and_old_images_stream() -> None:
    for stream in (None, "NEW_IMAGE"):
        with pytest.raises(ValidationError, match="needs stream='NEW_AND_OLD_IMAGES'") as error:
            global_table(stream=stream)
        assert f"got stream={stream!r}" in str(error.value)


def test_read_capacity_overrides_need_a_provisioned_table_and_real_gsis() -> None:
    with pytest.raises(ValidationError, match="only a provisioned table has"):
        global_table(replicas=[Replica("eu-west-1", read_capacity=5)])
    with pytest.raises(ValidationError, match="only a provisioned table has"):
        global_table(replicas=[Replica("eu-west-1", index_read_capacity={"gsi1": 5})])
    with pytest.raises(ValidationError, match=r"names \['lsi1'\], which are not GSIs"):
        global_table(
            indexes=[GSI("gsi1", pk="gsi1pk"), LSI("lsi1", sk="lsi1sk")],
            billing=Provisioned(5, 5),
            replicas=[Replica("eu-west-1", index_read_capacity={"lsi1": 5})],
        )
    ok = global_table(
        billing=Provisioned(5, 5),
        replicas=[Replica("eu-west-1", read_capacity=9, index_read_capacity={"gsi1": 3})],
    )
    assert ok.replicas[0].read_capacity == 9


# -- request shapes -------------------------------------------------------------------------------


def test_create_table_request_is_the_table_alone() -> None:
    table = global_table()
    request = table.create_table_request()
    assert request["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": STREAM}
    assert "Replicas" not in request and "ReplicaUpdates" not in request
    assert request == global_table(replicas=(), stream=STREAM).create_table_request()


def test_replica_requests_one_update_table_per_replica() -> None:
    table = global_table(
        billing=Provisioned(5, 5),
        replicas=[
            "eu-west-1",
            Replica(
                "us-west-2",
                kms_key="alias/orders",
                read_capacity=10,
                index_read_capacity={"gsi1": 4},
                table_class="STANDARD_INFREQUENT_ACCESS",
            ),
        ],
    )
    requests = replica_requests(table)
    assert [(r.op, r.control) for r in requests] == [("update_table", True)] * 2
    assert [r.params for r in requests] == [
        {"TableName": "gt-orders", "ReplicaUpdates": [{"Create": {"RegionName": "eu-west-1"}}]},
        {
            "TableName": "gt-orders",
            "ReplicaUpdates": [
                {
                    "Create": {
                        "RegionName": "us-west-2",
                        "KMSMasterKeyId": "alias/orders",
                        "ProvisionedThroughputOverride": {"ReadCapacityUnits": 10},
                        "GlobalSecondaryIndexes": [
                            {
                                "IndexName": "gsi1",
                                "ProvisionedThroughputOverride": {"ReadCapacityUnits": 4},
                            }
                        ],
                        "TableClassOverride": "STANDARD_INFREQUENT_ACCESS",
                    }
                }
            ],
        },
    ]
    assert [replica_change(r) for r in requests] == [
        ("Create", "eu-west-1"),
        ("Create", "us-west-2"),
    ]
    update = replica_action(table.replicas[1], "Update")["Update"]
    assert "KMSMasterKeyId" not in update and update["TableClassOverride"]  # keys: at creation
    assert replica_action(table.replicas[1], "Delete") == {"Delete": {"RegionName": "us-west-2"}}
    table.bind(name="gt-orders-staging")
    assert replica_requests(table)[0].params["TableName"] == "gt-orders-staging"


def test_region_and_replicas_of_a_description() -> None:
    description = {
        "TableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/gt-orders",
        "Replicas": [
            {"RegionName": "us-east-1", "ReplicaStatus": "ACTIVE"},  # itself, when listed
            {"RegionName": "eu-west-1", "ReplicaStatus": "CREATING"},
        ],
    }
    assert table_region(description) == "us-east-1"
    assert list(described_replicas(description)) == ["eu-west-1"]
    assert table_region({}) is None and described_replicas({}) == {}


# -- create ---------------------------------------------------------------------------------------


@pytest.fixture
def home() -> Iterator[InProcessDynamoDB]:
    with InProcessDynamoDB(region="us-east-1") as db:
        yield db


def operations(fake: GlobalTables) -> list[str]:
    """The calls made, replica changes spelled out (``update_table:Create:eu-west-1``)."""
    out = []
    for op, params in fake.calls:
        if "ReplicaUpdates" in params:
            ((action, spec),) = params["ReplicaUpdates"][0].items()
            op = f"{op}:{action}:{spec['RegionName']}"
        out.append(op)
    return out


def test_create_adds_each_replica_and_waits_until_it_is_active(home: InProcessDynamoDB) -> None:
    fake = GlobalTables(home.client(), polls=2)
    table = global_table(ttl="expires")
    description = table.create(connection=Connection(client=fake), poll=0)
    calls = operations(fake)
    assert calls[0] == "create_table" and "update_time_to_live" in calls
    first = calls.index("update_table:Create:eu-west-1")
    second = calls.index("update_table:Create:ap-southeast-2")
    # TTL first, then one replica per UpdateTable, each waited for (an UPDATING answer, then
    # the ACTIVE one) before the next is asked for
    assert calls.index("update_time_to_live") < first
    assert calls[first + 1 : second] == ["describe_table"] * 2
    assert calls[second + 1 :] == ["describe_table"] * 2
    assert description["TableStatus"] == "ACTIVE"
    assert {r["RegionName"]: r["ReplicaStatus"] for r in description["Replicas"]} == {
        "eu-west-1": "ACTIVE",
        "ap-southeast-2": "ACTIVE",
    }


async def test_acreate_adds_the_replicas_too(home: InProcessDynamoDB) -> None:
    fake = GlobalTables(home.client(), polls=1)
    connection = Connection(client=fake, aclient=AsyncGlobalTables(fake))
    description = await global_table().acreate(connection=connection, poll=0)
    assert fake.replica_updates() == [
        [{"Create": {"RegionName": "eu-west-1"}}],
        [{"Create": {"RegionName": "ap-southeast-2"}}],
    ]
    assert len(description["Replicas"]) == 2


def test_create_refuses_the_connection_region_as_a_replica(home: InProcessDynamoDB) -> None:
    fake = GlobalTables(home.client())
    table = global_table(replicas=["us-east-1", "eu-west-1"])
    with pytest.raises(ValidationError, match="lists 'us-east-1' as a replica, but that is the"):
        table.create(connection=Connection(client=fake))
    assert fake.calls == []  # refused before anything was sent
    # with exist_ok, asked in a replica region: the replica there is the table
    with pytest.raises(ValidationError, match="create the table from its home region"):
        table.create(connection=Connection(client=fake), exist_ok=True)
    assert operations(fake) == ["describe_table"]  # not there: refused all the same
    global_table(name="gt-orders", replicas=()).create(connection=Connection(client=home.client()))
    found = table.create(connection=Connection(client=fake), exist_ok=True)
    assert found["TableName"] == "gt-orders" and "create_table" not in operations(fake)


class NoRegion(GlobalTables):
    """A client whose region is not known before the table exists (its ARN tells it)."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.meta = None


def test_a_home_region_known_only_from_the_arn_is_refused_before_any_replica(
    home: InProcessDynamoDB,
) -> None:
    fake = NoRegion(home.client())
    table = global_table(replicas=["eu-west-1", "us-east-1"])
    with pytest.raises(ValidationError, match="the region the table was just created in"):
        table.create(connection=Connection(client=fake), poll=0)
    assert "create_table" in operations(fake) and fake.replica_updates() == []


def test_a_failed_replica_stops_the_creation(home: InProcessDynamoDB) -> None:
    fake = GlobalTables(home.client(), polls=1, fail=("eu-west-1",))
    with pytest.raises(DynamodelError, match="creating the replica in 'eu-west-1' failed"):
        global_table().create(connection=Connection(client=fake), poll=0)
    assert fake.replica_updates() == [[{"Create": {"RegionName": "eu-west-1"}}]]


def test_a_replica_that_never_becomes_active_times_out(home: InProcessDynamoDB) -> None:
    fake = GlobalTables(home.client(), polls=10**9)
    table = global_table()
    connection = Connection(client=fake, clock=iter(range(0, 10**6, 30)).__next__)
    with pytest.raises(DynamodelError, match=r"replica create in 'eu-west-1' not done after 60s"):
        table.create(connection=connection, timeout=60, poll=0)


def test_an_endpoint_without_global_tables_warns_and_skips(home: InProcessDynamoDB) -> None:
    client = home.client()  # moto: UpdateTable ReplicaUpdates is answered, nothing is made
    with pytest.warns(UnsupportedOperationWarning, match="does not create global table") as got:
        description = global_table().create(connection=Connection(client=client), poll=0)
    assert "['eu-west-1', 'ap-southeast-2']" in str(got[0].message)
    assert description["TableStatus"] == "ACTIVE" and not description.get("Replicas")


# -- diff and sync --------------------------------------------------------------------------------


def described(table: Table, region: str = "us-east-1", **extra: Any) -> dict[str, Any]:
    """DescribeTable of the table in ``region``, created from ``table`` (without replicas)."""
    request = copy.deepcopy(table.create_table_request())
    out: dict[str, Any] = {
        "TableName": request["TableName"],
        "TableArn": f"arn:aws:dynamodb:{region}:123456789012:table/{request['TableName']}",
        "KeySchema": request["KeySchema"],
        "AttributeDefinitions": request["AttributeDefinitions"],
        "TableStatus": "ACTIVE",
        "BillingModeSummary": {"BillingMode": request["BillingMode"]},
        "ProvisionedThroughput": request.get(
            "ProvisionedThroughput", {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0}
        ),
        "GlobalSecondaryIndexes": [
            {**i, "IndexStatus": "ACTIVE"} for i in request.get("GlobalSecondaryIndexes", [])
        ],
    }
    if "StreamSpecification" in request:
        out["StreamSpecification"] = request["StreamSpecification"]
    out.update(extra)
    return out


def replicas(*regions: str, **fields: Any) -> list[dict[str, Any]]:
    return [{"RegionName": r, "ReplicaStatus": "ACTIVE", **fields} for r in regions]


def summary(changes: list[Any]) -> dict[str, str]:
    return {c.subject: c.safety for c in changes}


def test_declared_and_live_replicas_in_sync() -> None:
    table = global_table()
    live = live_shape(
        described(table, Replicas=replicas("us-east-1", "eu-west-1", "ap-southeast-2"))
    )
    assert sorted(live.replicas) == ["ap-southeast-2", "eu-west-1"] and live.region == "us-east-1"
    assert compare(declared_shape(table), live) == []
    assert declared_shape(table).summary()["replicas"] == "ap-southeast-2, eu-west-1"
    assert live.summary()["replicas"] == declared_shape(table).summary()["replicas"]
    assert declared_shape(Table("gt-plain")).summary()["replicas"] == "none"


def test_missing_replicas_are_added_last_and_extra_ones_removed_first() -> None:
    table = global_table(replicas=["eu-west-1", "ap-southeast-2", "us-west-2"])
    live = live_shape(described(table, Replicas=replicas("eu-west-1", "sa-east-1")))
    changes = compare(declared_shape(table), live)
    assert summary(changes) == {
        "replica ap-southeast-2": "safe",
        "replica us-west-2": "safe",
        "replica sa-east-1": "destructive",
    }
    removal = next(c for c in changes if c.subject == "replica sa-east-1")
    assert "deletes the table in sa-east-1" in removal.note
    assert (removal.declared, removal.live) == ("absent", "sa-east-1")
    safe = plan(changes)
    assert [s.request.params["ReplicaUpdates"] for s in safe] == [
        [{"Create": {"RegionName": "ap-southeast-2"}}],  # in the declaration's order
        [{"Create": {"RegionName": "us-west-2"}}],
    ]
    everything = plan(changes, destructive=True)
    assert everything[0].request.params["ReplicaUpdates"] == [
        {"Delete": {"RegionName": "sa-east-1"}}
    ]
    assert [s.describe for s in everything] == [
        "remove replica sa-east-1",
        "add replica ap-southeast-2",
        "add replica us-west-2",
    ]


def test_the_stream_is_turned_on_before_replicas_and_off_after_them() -> None:
    table = global_table()
    plain = Table("gt-orders", indexes=table.indexes)  # no stream, no replicas
    steps = plan(compare(declared_shape(table), live_shape(described(plain))))
    assert [s.describe for s in steps] == [
        f"stream {STREAM}",
        "add replica eu-west-1",
        "add replica ap-southeast-2",
    ]
    live = live_shape(described(table, Replicas=replicas("eu-west-1", "ap-southeast-2")))
    changes = compare(declared_shape(plain), live)
    assert set(summary(changes).values()) == {"destructive"}
    assert [s.describe for s in plan(changes, destructive=True)] == [
        "remove replica ap-southeast-2",
        "remove replica eu-west-1",
        "stream off",
    ]


def test_adding_replicas_waits_for_a_stream_view_change_that_needs_confirmation() -> None:
    table = global_table()
    other_view = Table("gt-orders", indexes=table.indexes, stream="NEW_IMAGE")
    changes = compare(declared_shape(table), live_shape(described(other_view)))
    assert summary(changes) == {
        "stream": "destructive",
        "replica eu-west-1": "destructive",
        "replica ap-southeast-2": "destructive",
    }
    assert "applied with it" in changes[1].note
    assert plan(changes) == []
    assert [s.describe for s in plan(changes, destructive=True)] == [
        "stream off",
        f"stream {STREAM}",
        "add replica eu-west-1",
        "add replica ap-southeast-2",
    ]


def test_replica_overrides_are_compared_and_updated() -> None:
    table = global_table(
        billing=Provisioned(5, 5),
        replicas=[
            Replica("eu-west-1", "alias/eu", read_capacity=9, index_read_capacity={"gsi1": 3}),
            Replica("ap-southeast-2", table_class="STANDARD_INFREQUENT_ACCESS"),
        ],
    )
    live_replicas = [
        {
            "RegionName": "eu-west-1",
            "ReplicaStatus": "ACTIVE",
            "KMSMasterKeyId": "arn:aws:kms:eu-west-1:123456789012:key/abc",  # not compared
            "ProvisionedThroughputOverride": {"ReadCapacityUnits": 9},
            "GlobalSecondaryIndexes": [
                {"IndexName": "gsi1", "ProvisionedThroughputOverride": {"ReadCapacityUnits": 3}}
            ],
        },
        {
            "RegionName": "ap-southeast-2",
            "ReplicaStatus": "ACTIVE",
            "ReplicaTableClassSummary": {"TableClass": "STANDARD_INFREQUENT_ACCESS"},
        },
    ]
    live = live_shape(described(table, Replicas=live_replicas))
    assert compare(declared_shape(table), live) == []
    live_replicas[0]["GlobalSecondaryIndexes"][0]["ProvisionedThroughputOverride"] = {
        "ReadCapacityUnits": 1
    }
    live_replicas[1]["ReplicaTableClassSummary"] = {"TableClass": "STANDARD"}
    live_replicas[1]["ReplicaStatus"] = "UPDATING"
    changes = compare(declared_shape(table), live_shape(described(table, Replicas=live_replicas)))
    assert summary(changes) == {"replica eu-west-1": "safe", "replica ap-southeast-2": "safe"}
    assert changes[0].declared == "eu-west-1; 9 RCU; gsi1 3 RCU"
    assert changes[0].live == "eu-west-1; 9 RCU; gsi1 1 RCU"
    assert changes[1].live == "ap-southeast-2; STANDARD (UPDATING)"
    updates = [s.request.params["ReplicaUpdates"] for s in plan(changes)]
    assert updates == [
        [
            {
                "Update": {
                    "RegionName": "eu-west-1",
                    "ProvisionedThroughputOverride": {"ReadCapacityUnits": 9},
                    "GlobalSecondaryIndexes": [
                        {
                            "IndexName": "gsi1",
                            "ProvisionedThroughputOverride": {"ReadCapacityUnits": 3},
                        }
                    ],
                }
            }
        ],
        [
            {
                "Update": {
                    "RegionName": "ap-southeast-2",
                    "TableClassOverride": "STANDARD_INFREQUENT_ACCESS",
                }
            }
        ],
    ]


def test_described_from_a_replica_region() -> None:
    table = global_table(
        billing=Provisioned(5, 5),
        replicas=[Replica("eu-west-1", read_capacity=9, table_class="STANDARD_INFREQUENT_ACCESS")],
    )
    # the replica in eu-west-1: its own read capacity and table class, the home one listed
    replica_view = described(
        table,
        region="eu-west-1",
        ProvisionedThroughput={"ReadCapacityUnits": 9, "WriteCapacityUnits": 5},
        TableClassSummary={"TableClass": "STANDARD_INFREQUENT_ACCESS"},
        Replicas=replicas("us-east-1"),
    )
    assert compare(declared_shape(table), live_shape(replica_view)) == []
    # a replica too many (or one missing): only the home region can change them
    replica_view["Replicas"] = replicas("us-east-1", "sa-east-1")
    (change,) = compare(declared_shape(table), live_shape(replica_view))
    assert (change.subject, change.safety) == ("replicas", "impossible")
    assert "from the table's home region" in change.note
    assert change.live == "sa-east-1, us-east-1, eu-west-1 (this replica)"
    assert plan([change], destructive=True) == []


def test_multi_region_strong_consistency_tables_are_left_alone() -> None:
    table = global_table()
    strong = described(
        table, MultiRegionConsistency="STRONG", Replicas=replicas("eu-west-1", "ap-southeast-2")
    )
    assert compare(declared_shape(table), live_shape(strong)) == []
    assert "(multi-Region strong consistency)" in live_shape(strong).summary()["replicas"]
    strong["Replicas"] = replicas("eu-west-1", "eu-west-2")
    (change,) = compare(declared_shape(table), live_shape(strong))
    assert (change.subject, change.safety) == ("replicas", "impossible")


def test_apply_adds_and_removes_replicas_one_call_at_a_time(home: InProcessDynamoDB) -> None:
    fake = GlobalTables(home.client(), polls=1)
    connection = Connection(client=fake)
    Table("gt-orders", indexes=global_table().indexes, stream=STREAM).create(
        connection=connection, poll=0
    )
    fake.add_live_replica("gt-orders", "sa-east-1")
    table = global_table()
    result = apply(table, connection=connection, poll=0)
    assert [s.describe for s in result.applied] == [
        "add replica eu-west-1",
        "add replica ap-southeast-2",
    ]
    assert [c.subject for c in result.refused] == ["replica sa-east-1"] and not result.in_sync
    assert sorted(fake.replicas["gt-orders"]) == ["ap-southeast-2", "eu-west-1", "sa-east-1"]
    result = apply(table, connection=connection, poll=0, destructive=True)
    assert [s.describe for s in result.applied] == ["remove replica sa-east-1"] and result.in_sync
    assert sorted(fake.replicas["gt-orders"]) == ["ap-southeast-2", "eu-west-1"]
    assert apply(table, connection=connection, poll=0).changes == []


def test_apply_on_an_endpoint_without_global_tables_skips_with_a_warning(
    home: InProcessDynamoDB,
) -> None:
    connection = Connection(client=home.client())
    Table("gt-orders", indexes=global_table().indexes, stream=STREAM).create(connection=connection)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        result = apply(global_table(), connection=connection, poll=0)
    assert len(result.skipped) == 2 and result.applied == []
    assert all(issubclass(w.category, UnsupportedOperationWarning) for w in got)


# -- CloudFormation -------------------------------------------------------------------------------


def exported(table: Table, **options: Any) -> dict[str, Any]:
    template = cloudformation(table, **options)
    (resource,) = template["Resources"].values()
    return resource  # type: ignore[no-any-return]


def test_a_table_with_replicas_exports_as_a_global_table() -> None:
    table = global_table(
        indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk"), LSI("lsi1", sk="lsi1sk")],
        ttl="expires",
        point_in_time_recovery=True,
        deletion_protection=True,
        table_class="STANDARD",
        tags={"team": "orders"},
        replicas=[
            "eu-west-1",
            Replica(
                "ap-southeast-2",
                kms_key="alias/orders-ap",
                table_class="STANDARD_INFREQUENT_ACCESS",
            ),
        ],
    )
    template = cloudformation(table)
    resource = template["Resources"]["GtOrdersTable"]
    assert resource["Type"] == "AWS::DynamoDB::GlobalTable"
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")
    props = resource["Properties"]
    request = table.create_table_request()
    assert props["StreamSpecification"] == {"StreamViewType": STREAM}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires", "Enabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    for key in ("TableName", "AttributeDefinitions", "KeySchema", "BillingMode"):
        assert props[key] == request[key]
    assert props["GlobalSecondaryIndexes"] == request["GlobalSecondaryIndexes"]
    assert props["LocalSecondaryIndexes"] == request["LocalSecondaryIndexes"]
    assert not {"TableClass", "Tags", "PointInTimeRecoverySpecification"} & set(props)
    shared = {
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "DeletionProtectionEnabled": True,
        "Tags": [{"Key": "team", "Value": "orders"}],
    }
    assert props["Replicas"] == [
        {"Region": {"Ref": "AWS::Region"}, "TableClass": "STANDARD", **shared},
        {"Region": "eu-west-1", "TableClass": "STANDARD", **shared},
        {
            "Region": "ap-southeast-2",
            "TableClass": "STANDARD_INFREQUENT_ACCESS",
            **shared,
            "SSESpecification": {"KMSMasterKeyId": "alias/orders-ap"},
        },
    ]
    (rule,) = template["Rules"]["HomeRegionIsNotAReplica"]["Assertions"]
    assert rule["Assert"] == {
        "Fn::Not": [{"Fn::Contains": [["eu-west-1", "ap-southeast-2"], {"Ref": "AWS::Region"}]}]
    }


def test_provisioned_global_table_export() -> None:
    table = global_table(
        indexes=[GSI("gsi1", pk="gsi1pk", capacity=Provisioned(3, 4))],
        billing=Provisioned(5, 6),
        replicas=[Replica("eu-west-1", read_capacity=10, index_read_capacity={"gsi1": 7})],
    )
    resource = exported(table, region="us-east-1")
    props = resource["Properties"]

    def fixed(units: int) -> dict[str, Any]:
        return {
            "WriteCapacityAutoScalingSettings": {
                "MinCapacity": units,
                "MaxCapacity": units,
                "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 70.0},
            }
        }

    assert props["BillingMode"] == "PROVISIONED"
    assert props["WriteProvisionedThroughputSettings"] == fixed(6)
    (gsi,) = props["GlobalSecondaryIndexes"]
    assert "ProvisionedThroughput" not in gsi and gsi[
        "WriteProvisionedThroughputSettings"
    ] == fixed(4)
    home, europe = props["Replicas"]
    assert home["Region"] == "us-east-1"
    assert home["ReadProvisionedThroughputSettings"] == {"ReadCapacityUnits": 5}
    assert home["GlobalSecondaryIndexes"] == [
        {"IndexName": "gsi1", "ReadProvisionedThroughputSettings": {"ReadCapacityUnits": 3}}
    ]
    assert europe["ReadProvisionedThroughputSettings"] == {"ReadCapacityUnits": 10}
    assert europe["GlobalSecondaryIndexes"][0]["ReadProvisionedThroughputSettings"] == {
        "ReadCapacityUnits": 7
    }
    assert "Rules" not in cloudformation(table, region="us-east-1")
    with pytest.raises(ValidationError, match="'eu-west-1' as a replica, but that is the region"):
        cloudformation(table, region="eu-west-1")
    with pytest.raises(ValidationError, match="not an AWS region name"):
        cloudformation(table, region="Europe")


def test_a_table_without_replicas_still_exports_as_a_table() -> None:
    assert exported(Table("gt-plain"))["Type"] == "AWS::DynamoDB::Table"


def cfn_lint() -> str:
    beside = Path(sys.executable).with_name("cfn-lint")  # the test environment's own first
    found = str(beside) if beside.exists() else shutil.which("cfn-lint")
    if found is None:
        pytest.skip("cfn-lint is not installed (pip install cfn-lint) to validate the templates")
    return found


def test_cfn_lint_accepts_the_global_table_templates(tmp_path: Path) -> None:
    linter = cfn_lint()
    on_demand = global_table(
        indexes=[
            GSI("gsi1", pk="gsi1pk", sk="gsi1sk"),
            GSI("by_tenant", pk=("tenant", "region"), types={"tenant": "S", "region": "S"}),
            LSI("lsi1", sk="lsi1sk"),
        ],
        ttl="expires",
        point_in_time_recovery=True,
        deletion_protection=True,
        tags={"team": "orders"},
        replicas=[
            "eu-west-1",
            Replica(
                "ap-southeast-2", kms_key="alias/orders", table_class="STANDARD_INFREQUENT_ACCESS"
            ),
        ],
    )
    provisioned = global_table(
        name="gt-provisioned",
        indexes=[GSI("gsi1", pk="gsi1pk", capacity=Provisioned(3, 4))],
        billing=Provisioned(5, 6),
        replicas=[Replica("eu-west-1", read_capacity=10, index_read_capacity={"gsi1": 7})],
    )
    files = []
    for name, template in (
        ("on-demand.json", cloudformation(on_demand)),
        ("provisioned.json", cloudformation(provisioned, region="us-east-1")),
    ):
        path = tmp_path / name
        path.write_text(json.dumps(template, indent=2))
        files.append(str(path))
    done = subprocess.run([linter, *files], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    # and it would notice a property GlobalTable does not have
    broken = cloudformation(on_demand)
    broken["Resources"]["GtOrdersTable"]["Properties"]["TableClass"] = "STANDARD"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    done = subprocess.run([linter, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "TableClass" in done.stdout


# -- command line ---------------------------------------------------------------------------------

APP = """
from dynamodel import Replica, Table

table = Table(
    "{table}",
    stream="NEW_AND_OLD_IMAGES",
    replicas=["eu-west-1", Replica("ap-southeast-2", table_class="STANDARD_INFREQUENT_ACCESS")],
)
"""


@pytest.fixture
def global_endpoint(
    fresh_db: Any, ddb: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[GlobalTables, str]]:
    """Every connection's client is a `GlobalTables` around the local server's client; yields
    it and the ``--app`` module of a table with two replicas."""
    import uuid

    fake = GlobalTables(ddb, polls=1)
    monkeypatch.setattr(Connection, "_dynamodb_client", lambda self: fake)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DYNAMODEL_APP", raising=False)
    monkeypatch.setattr("dynamodel.cli._common.console.width", 200)  # rows on one line
    module = f"gtapp_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{module}.py").write_text(APP.format(table=f"gt-{uuid.uuid4().hex[:8]}"))
    yield fake, module


def run_cli(*args: str, code: int = 0) -> str:
    from typer.testing import CliRunner

    from dynamodel.cli._app import app

    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, f"exit {result.exit_code}: {result.output}"
    return result.output


def test_cli_create_diff_and_sync_replicas(global_endpoint: tuple[GlobalTables, str]) -> None:
    fake, app = global_endpoint
    requests = json.loads(run_cli("table", "create", "--app", app, "--dry-run"))
    assert [r["operation"] for r in requests] == ["CreateTable", "UpdateTable", "UpdateTable"]
    assert requests[2]["parameters"]["ReplicaUpdates"] == [
        {
            "Create": {
                "RegionName": "ap-southeast-2",
                "TableClassOverride": "STANDARD_INFREQUENT_ACCESS",
            }
        }
    ]
    assert fake.calls == []  # a dry run sends nothing

    # the table exists with one replica too many and two missing
    table = requests[0]["parameters"]["TableName"]
    fake.client.create_table(**requests[0]["parameters"])
    fake.add_live_replica(table, "sa-east-1")
    out = run_cli("table", "diff", "--app", app)
    for row in ("replica eu-west-1", "replica ap-southeast-2", "replica sa-east-1"):
        assert row in out
    assert "safe" in out and "destructive" in out and "deletes the table in sa-east-1" in out
    changes = json.loads(run_cli("table", "diff", "--app", app, "--json", "--exit-code", code=1))
    assert {c["subject"]: c["safety"] for c in changes} == {
        "replica eu-west-1": "safe",
        "replica ap-southeast-2": "safe",
        "replica sa-east-1": "destructive",
    }
    removal = next(c for c in changes if c["subject"] == "replica sa-east-1")
    assert removal["requests"] == [
        {
            "operation": "UpdateTable",
            "parameters": {
                "TableName": table,
                "ReplicaUpdates": [{"Delete": {"RegionName": "sa-east-1"}}],
            },
        }
    ]
    described = json.loads(run_cli("table", "describe", "--app", app, "--json"))
    assert (
        described["declared"]["replicas"] == "ap-southeast-2; STANDARD_INFREQUENT_ACCESS, eu-west-1"
    )
    assert described["live"]["replicas"] == "sa-east-1"

    # sync adds the missing replicas, one call each; the removal needs --yes
    out = run_cli("table", "sync", "--app", app, code=1)
    assert "add replica eu-west-1" in out and "add replica ap-southeast-2" in out
    assert "not applied replica sa-east-1: destructive: run again with --yes" in out
    assert sorted(fake.replicas[table]) == ["ap-southeast-2", "eu-west-1", "sa-east-1"]
    out = run_cli("table", "sync", "--app", app, "--yes")
    assert "remove replica sa-east-1" in out
    assert sorted(fake.replicas[table]) == ["ap-southeast-2", "eu-west-1"]
    assert "matches the declaration" in run_cli("table", "diff", "--app", app, "--exit-code")
    assert fake.replica_updates() == [
        [{"Create": {"RegionName": "eu-west-1"}}],
        [
            {
                "Create": {
                    "RegionName": "ap-southeast-2",
                    "TableClassOverride": "STANDARD_INFREQUENT_ACCESS",
                }
            }
        ],
        [{"Delete": {"RegionName": "sa-east-1"}}],
    ]


def test_replicated_write_conflicts_are_retried() -> None:
    """Multi-Region strong consistency: DynamoDB marks the error safe to retry."""
    from botocore.exceptions import ClientError

    from dynamodel import RetryPolicy
    from dynamodel.core.errors import map_client_error

    error = map_client_error(
        ClientError(
            {"Error": {"Code": "ReplicatedWriteConflictException", "Message": "other region"}},
            "PutItem",
        ),
        "put_item",
    )
    assert error is not None and error.code == "ReplicatedWriteConflictException"
    assert RetryPolicy().retryable(error)
