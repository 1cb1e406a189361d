"""Where the migration runner keeps its state: items in the user's own table.

Every item lives in one reserved partition, so it never mixes with user data. On a table with
a sort key, the partition key is ``_dynamodel#migrations`` and the sort key names the item:

* ``LOCK``: the migration lock (owner, lease expiry, host, pid, command);
* ``STATE``: one record per migration version (JSON in the ``data`` attribute);
* ``CHECKPOINT#<version>#<run>#<backfill>#<segment>``: where one scan segment of a backfill
  stopped, its counts and its failed items (JSON);
* ``JOB#<job>``, ``SEGMENT#<job>#<segment>``, ``RATE#<job>``: a distributed backfill's job,
  its segments' leases and checkpoints, and its shared rate (`dynamodel.migrations.jobs`).

On a table without a sort key the two parts are joined with ``#`` in the partition key. Each
item's type attribute is ``_dynamodel:migrations``, so scans and queries of user models (which
filter on their own entity type) never return them, and the items carry no index key
attributes, so no index holds them.

Writes of the state and of checkpoints are conditional on the revision the run last read or
wrote (an optimistic check; a transaction with the lock would cost twice the capacity on every
checkpoint). A run that lost its lock while stalled (its lease expired and another run took
over) therefore cannot overwrite what the new holder wrote: its next write fails and it stops.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dynamodel.core.codec import Item
from dynamodel.core.errors import ConditionFailed
from dynamodel.core.flows import Flow, Request, Sleep, call, connection_policy
from dynamodel.migrations.errors import LockLost

if TYPE_CHECKING:
    from dynamodel.modelling.table import Table

RESERVED_PARTITION = "_dynamodel#migrations"
ENTITY = "_dynamodel:migrations"
LOCK = "LOCK"
STATE = "STATE"


class Store:
    """Builds the runner's keys and requests for one table, and reads and writes its items."""

    def __init__(self, table: Table) -> None:
        self.table = table

    @property
    def name(self) -> str:
        """The physical table name."""
        return self.table.physical_name

    def key(self, name: str) -> Item:
        """The primary key of the runner's item called ``name`` (``LOCK``, ``STATE``, ...)."""
        if self.table.sk:
            return {self.table.pk: {"S": RESERVED_PARTITION}, self.table.sk: {"S": name}}
        return {self.table.pk: {"S": f"{RESERVED_PARTITION}#{name}"}}

    def item(self, name: str, attributes: Mapping[str, Any]) -> Item:
        """A whole item: key, type attribute and the given AttributeValues."""
        return {**self.key(name), self.table.type_attribute: {"S": ENTITY}, **attributes}

    def json_item(self, name: str, data: Any) -> Item:
        """An item whose content is one JSON document in the ``data`` attribute."""
        return self.item(name, {"data": {"S": json.dumps(data, sort_keys=True)}})

    # -- reads ----------------------------------------------------------------------------------

    def get_flow(self, name: str) -> Flow[Item | None]:
        """Read one of the runner's items (strongly consistent)."""
        request = Request(
            "get_item", {"TableName": self.name, "Key": self.key(name), "ConsistentRead": True}
        )
        response = yield from call(request)
        item: Item | None = response.get("Item")
        return item

    def get_json_flow(self, name: str) -> Flow[tuple[Any, int]]:
        """``(document, revision)`` of an item written by `put_json_flow` (``(None, 0)``:
        absent)."""
        item = yield from self.get_flow(name)
        if item is None or "data" not in item:
            return None, 0
        return json.loads(item["data"]["S"]), self.revision(item)

    # -- conditional writes ----------------------------------------------------------------------

    def revision(self, item: Item | None) -> int:
        """The revision of a stored item (0: absent)."""
        if item is None or "rev" not in item:
            return 0
        return int(item["rev"]["N"])

    def put_json_flow(self, owner: str, name: str, data: Any, revision: int) -> Flow[int]:
        """Store a JSON document if the stored revision is still ``revision`` (0: absent).

        Returns the new revision. Raises `LockLost` naming the writer when another run wrote
        it meanwhile.
        """
        item = self.json_item(name, data)
        item["rev"] = {"N": str(revision + 1)}
        item["owner"] = {"S": owner}
        params: dict[str, Any] = {
            "TableName": self.name,
            "Item": item,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if revision == 0:
            params["ConditionExpression"] = "attribute_not_exists(#pk)"
            params["ExpressionAttributeNames"] = {"#pk": self.table.pk}
        else:
            params["ConditionExpression"] = "#rev = :rev"
            params["ExpressionAttributeNames"] = {"#rev": "rev"}
            params["ExpressionAttributeValues"] = {":rev": {"N": str(revision)}}
        try:
            yield from call(Request("put_item", params))
        except ConditionFailed as error:
            writer = (error.item or {}).get("owner", {}).get("S", "another run")
            raise LockLost(
                f"table {self.name!r}: {name} was changed by {writer} while this run "
                f"({owner}) held it; this run lost the migration lock and stopped"
            ) from None
        return revision + 1

    def delete_flow(self, names: list[str]) -> Flow[None]:
        """Delete some of the runner's items (best effort clean-up; batches of 25)."""
        for start in range(0, len(names), 25):
            requests = [{"DeleteRequest": {"Key": self.key(n)}} for n in names[start : start + 25]]
            _, left = yield from self.batch_flow("batch_write_item", {self.name: requests})
            if left:
                return  # leftovers are harmless: a later run uses new keys

    def batch_flow(
        self, operation: str, request_items: dict[str, Any]
    ) -> Flow[tuple[list[dict[str, Any]], dict[str, Any]]]:
        """Send a ``batch_write_item`` or ``batch_get_item`` again with what it left over until
        nothing is, backing off per the running connection's retry policy.

        Returns the responses and what is still left over when the policy gave up (empty:
        everything was processed).
        """
        leftover = "UnprocessedItems" if operation == "batch_write_item" else "UnprocessedKeys"
        policy = yield from connection_policy()
        responses = []
        pending = request_items
        attempt = 0
        while pending:
            response = yield from call(Request(operation, {"RequestItems": pending}), policy)
            responses.append(response)
            pending = response.get(leftover) or {}
            if pending:
                attempt += 1
                if policy.exhausted(attempt, 0.0):
                    return responses, pending
                yield Sleep(policy.backoff(attempt))
        return responses, {}
