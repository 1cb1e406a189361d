"""A DynamoDB client that adds global tables (version 2019.11.21) to moto's, for tests.

moto answers ``UpdateTable`` with ``ReplicaUpdates`` as if nothing was asked (and dynoxide
refuses it), so the replica flows are tested through `GlobalTables`: it wraps a client of
one region (an `InProcessDynamoDB` client, the *home* region), records every call, and keeps
the replicas of each table itself, with DynamoDB's rules as its documentation states them:

- one replica action per ``UpdateTable``, and none while the table is ``UPDATING``
  (``ResourceInUseException``);
- the table needs its stream with ``NEW_AND_OLD_IMAGES`` (``ValidationException``);
- a replica cannot be added twice, nor in the table's own region, nor removed when absent;
- after an accepted change the table is ``UPDATING`` and the replica ``CREATING``/``UPDATING``/
  ``DELETING`` for ``polls`` DescribeTable calls, then ``ACTIVE`` (or gone, after a delete);
  a region in ``fail`` ends in ``CREATION_FAILED``.

`AsyncGlobalTables` is the same for the async executor.
"""

from __future__ import annotations

import copy
from typing import Any

from botocore.exceptions import ClientError


def client_error(operation: str, code: str, message: str) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": 400, "RetryAttempts": 0},
    }
    return ClientError(response, operation)


class GlobalTables:
    """Wraps ``client`` (its region is the home region) and simulates replicas."""

    def __init__(self, client: Any, *, polls: int = 2, fail: tuple[str, ...] = ()) -> None:
        self.client = client
        self.meta = client.meta
        self.region: str = client.meta.region_name
        self.polls = polls
        self.fail = set(fail)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        #: table name -> region -> [ReplicaDescription, DescribeTable calls left before done]
        self.replicas: dict[str, dict[str, list[Any]]] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        operation = getattr(self.client, name)
        if not callable(operation):
            return operation

        def recorded(**params: Any) -> Any:
            self.calls.append((name, copy.deepcopy(params)))
            return operation(**params)

        return recorded

    def replica_updates(self) -> list[list[dict[str, Any]]]:
        """The ``ReplicaUpdates`` of every UpdateTable sent, in order."""
        return [
            p["ReplicaUpdates"]
            for op, p in self.calls
            if op == "update_table" and "ReplicaUpdates" in p
        ]

    def add_live_replica(self, table: str, region: str, **fields: Any) -> None:
        """A replica that already exists (as if made earlier), ACTIVE."""
        description = {"RegionName": region, "ReplicaStatus": "ACTIVE", **fields}
        self.replicas.setdefault(table, {})[region] = [description, 0]

    def _busy(self, table: str) -> bool:
        return any(left > 0 for _, left in self.replicas.get(table, {}).values())

    def _augment(self, description: dict[str, Any], tick: bool) -> dict[str, Any]:
        name = description["TableName"]
        states = self.replicas.get(name, {})
        for region, state in list(states.items()):
            replica, left = state
            if tick and left > 0:
                state[1] = left = left - 1
                if left == 0:
                    if replica["ReplicaStatus"] == "DELETING":
                        del states[region]
                        continue
                    failed = region in self.fail and replica["ReplicaStatus"] == "CREATING"
                    replica["ReplicaStatus"] = "CREATION_FAILED" if failed else "ACTIVE"
        out = dict(description)
        if states:
            out["Replicas"] = [copy.deepcopy(r) for r, _ in states.values()]
            out["GlobalTableVersion"] = "2019.11.21"
        if self._busy(name):
            out["TableStatus"] = "UPDATING"
        return out

    def describe_table(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("describe_table", copy.deepcopy(params)))
        response = dict(self.client.describe_table(**params))
        response["Table"] = self._augment(response["Table"], tick=True)
        return response

    def update_table(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("update_table", copy.deepcopy(params)))
        updates = params.get("ReplicaUpdates")
        if updates is None:
            if self._busy(params["TableName"]):
                raise client_error("UpdateTable", "ResourceInUseException", "table is UPDATING")
            response = dict(self.client.update_table(**params))
            response["TableDescription"] = self._augment(response["TableDescription"], False)
            return response
        name = params["TableName"]
        if len(updates) != 1 or len(updates[0]) != 1 or len(params) != 2:
            raise client_error(
                "UpdateTable", "ValidationException", "one replica update per UpdateTable"
            )
        table = self.client.describe_table(TableName=name)["Table"]
        if self._busy(name) or table.get("TableStatus") != "ACTIVE":
            raise client_error("UpdateTable", "ResourceInUseException", "table is UPDATING")
        stream = table.get("StreamSpecification") or {}
        if not stream.get("StreamEnabled") or stream.get("StreamViewType") != "NEW_AND_OLD_IMAGES":
            raise client_error(
                "UpdateTable",
                "ValidationException",
                "Table needs a stream with NEW_AND_OLD_IMAGES to add replicas",
            )
        ((action, spec),) = updates[0].items()
        region = spec["RegionName"]
        states = self.replicas.setdefault(name, {})
        if region == self.region:
            raise client_error("UpdateTable", "ValidationException", "the table's own region")
        if action == "Create":
            if region in states:
                raise client_error("UpdateTable", "ValidationException", "replica exists")
            replica = {"RegionName": region, "ReplicaStatus": "CREATING"}
            for key in ("KMSMasterKeyId", "ProvisionedThroughputOverride"):
                if key in spec:
                    replica[key] = spec[key]
            if "GlobalSecondaryIndexes" in spec:
                replica["GlobalSecondaryIndexes"] = spec["GlobalSecondaryIndexes"]
            replica["ReplicaTableClassSummary"] = {
                "TableClass": spec.get(
                    "TableClassOverride",
                    (table.get("TableClassSummary") or {}).get("TableClass", "STANDARD"),
                )
            }
            states[region] = [replica, self.polls]
        elif region not in states:
            raise client_error("UpdateTable", "ValidationException", f"no replica in {region}")
        elif action == "Update":
            replica = states[region][0]
            replica["ReplicaStatus"] = "UPDATING"
            for key in ("ProvisionedThroughputOverride", "GlobalSecondaryIndexes"):
                if key in spec:
                    replica[key] = spec[key]
            if "TableClassOverride" in spec:
                replica["ReplicaTableClassSummary"] = {"TableClass": spec["TableClassOverride"]}
            states[region][1] = self.polls
        else:
            states[region][0]["ReplicaStatus"] = "DELETING"
            states[region][1] = self.polls
        return {"TableDescription": self._augment(table, tick=False)}


class AsyncGlobalTables:
    """`GlobalTables` behind coroutine methods (what the async executor awaits)."""

    def __init__(self, sync: GlobalTables) -> None:
        self.sync = sync
        self.meta = sync.meta

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        operation = getattr(self.sync, name)

        async def call(**params: Any) -> Any:
            return operation(**params)

        return call
