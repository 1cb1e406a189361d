"""The shared scan segments of a distributed backfill: claims, leases, fenced checkpoints.

Each segment is one item in the migration partition (``SEGMENT#<job>#<segment>``, see
`dynamodel.migrations.store`) holding where the segment's scan stands (cursor, counts, failed
items) and who works on it. A worker *claims* a segment with a conditional update that
succeeds only if the segment is not finished and nobody holds a live lease on it. The claim
adds one to the segment's ``claims`` counter, and every later write of that worker (checkpoints,
lease renewals, hand-backs) is conditional on ``owner`` and ``claims`` still being its own: a
worker whose lease expired (it stalled, was frozen or killed) and whose segment another worker
claimed can never write to that segment again. Checkpoints are committed in the same
transaction as the writes they cover (`dynamodel.migrations.worker`), so a page's writes and
its checkpoint land together or not at all.

Leases are wall-clock epoch seconds: workers on several machines need clocks within a small
fraction of the lease (NTP gives milliseconds). Skew only delays or hastens a takeover; the
``claims`` fence keeps the data right whatever the clocks say.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dynamodel.core.codec import Item
from dynamodel.core.errors import ConditionFailed
from dynamodel.core.flows import Flow, Request, call
from dynamodel.migrations.errors import LeaseLost, MigrationError, SegmentLeased
from dynamodel.migrations.transform import FailedItem

if TYPE_CHECKING:
    from dynamodel.migrations.store import Store

#: BatchGetItem reads at most this many keys per call
_GET_CHUNK = 100
_NAMES = {
    "#owner": "owner",
    "#lease": "lease_until",
    "#claims": "claims",
    "#done": "done",
}


def _number(value: float) -> dict[str, str]:
    return {"N": repr(round(value, 6))}


@dataclass
class Segment:
    """Where one scan segment of a distributed backfill stands.

    Attributes:
        number / total: ``Segment`` and ``TotalSegments`` of its parallel scan.
        cursor: the key the scan continues after (None: from the start).
        done: its scan reached the end.
        scanned / written / unchanged / pages: counts over every worker that worked on it.
        failures: items whose transform failed (kept, reported, retried by the coordinator).
        owner: the worker holding its lease (None: free). lease_until: when that lease ends
            (epoch seconds). claims: how many times it was claimed (the fencing token).
    """

    number: int
    total: int
    cursor: str | None = None
    done: bool = False
    scanned: int = 0
    written: int = 0
    unchanged: int = 0
    pages: int = 0
    failures: list[FailedItem] = field(default_factory=list)
    owner: str | None = None
    lease_until: float = 0.0
    claims: int = 0

    @classmethod
    def from_item(cls, item: Item) -> Segment:
        """Parse a stored segment item."""

        def number(name: str) -> float:
            return float(item[name]["N"]) if name in item else 0.0

        cursor = item.get("cursor", {}).get("S") or None
        failures = json.loads(item["failures"]["S"]) if "failures" in item else []
        return cls(
            number=int(number("segment")),
            total=int(number("total")),
            cursor=cursor,
            done=bool(item.get("done", {}).get("BOOL")),
            scanned=int(number("scanned")),
            written=int(number("written")),
            unchanged=int(number("unchanged")),
            pages=int(number("pages")),
            failures=[FailedItem.from_dict(f) for f in failures],
            owner=item.get("owner", {}).get("S"),
            lease_until=number("lease_until"),
            claims=int(number("claims")),
        )

    def leased(self, now: float) -> bool:
        """Whether a worker holds a live lease on it at ``now``."""
        return self.owner is not None and self.lease_until >= now


class Segments:
    """The segment items of one job, and the requests that claim and checkpoint them."""

    def __init__(self, store: Store, job: str, total: int) -> None:
        self.store = store
        self.job = job
        self.total = total

    def name(self, number: int) -> str:
        """The runner item name of segment ``number``."""
        return f"SEGMENT#{self.job}#{number:06d}"

    def names(self) -> list[str]:
        """Every segment's item name."""
        return [self.name(n) for n in range(self.total)]

    # -- creating and reading ---------------------------------------------------------------

    def create_flow(self) -> Flow[None]:
        """Write every segment, fresh (the coordinator does this once, under the migration
        lock, before the job item that makes the job visible to workers)."""
        requests = [
            {
                "PutRequest": {
                    "Item": self.store.item(
                        self.name(n),
                        {
                            "job": {"S": self.job},
                            "segment": {"N": str(n)},
                            "total": {"N": str(self.total)},
                            "done": {"BOOL": False},
                            "claims": {"N": "0"},
                        },
                    )
                }
            }
            for n in range(self.total)
        ]
        for start in range(0, len(requests), 25):
            chunk = {self.store.name: requests[start : start + 25]}
            _, left = yield from self.store.batch_flow("batch_write_item", chunk)
            if left:
                raise MigrationError(
                    f"table {self.store.name!r}: could not create the segments of job "
                    f"{self.job} (unprocessed after the retries); run again"
                )

    def load_flow(self) -> Flow[list[Segment]]:
        """Every segment as stored now (strongly consistent reads), in segment order."""
        found: dict[int, Segment] = {}
        for chunk in _chunks(self.names(), _GET_CHUNK):
            keys = [self.store.key(name) for name in chunk]
            request = {self.store.name: {"Keys": keys, "ConsistentRead": True}}
            responses, left = yield from self.store.batch_flow("batch_get_item", request)
            if left:
                raise MigrationError(
                    f"table {self.store.name!r}: could not read the segments of job "
                    f"{self.job} (unprocessed after the retries)"
                )
            for response in responses:
                for item in response.get("Responses", {}).get(self.store.name, []):
                    segment = Segment.from_item(item)
                    found[segment.number] = segment
        missing = [n for n in range(self.total) if n not in found]
        if missing:
            raise MigrationError(
                f"table {self.store.name!r}: job {self.job} has no segment item for segment(s) "
                f"{missing[:10]}; its migration state is damaged (run `dynamodel migrate up` "
                "again to restart the job under a new run)"
            )
        return [found[n] for n in range(self.total)]

    # -- claiming -------------------------------------------------------------------------------

    def claim_flow(self, number: int, owner: str, now: float, lease: float) -> Flow[Segment]:
        """Take segment ``number`` for ``owner`` until ``now + lease``.

        Returns the claimed segment (or, when it is already done, the finished segment with
        another owner). Raises `SegmentLeased` when another worker holds a live lease on it.
        """
        request = Request(
            "update_item",
            {
                "TableName": self.store.name,
                "Key": self.store.key(self.name(number)),
                "UpdateExpression": "SET #owner = :me, #lease = :until ADD #claims :one",
                "ConditionExpression": (
                    "#done = :false AND (attribute_not_exists(#owner) OR #lease < :now)"
                ),
                "ExpressionAttributeNames": _NAMES,
                "ExpressionAttributeValues": {
                    ":me": {"S": owner},
                    ":until": _number(now + lease),
                    ":one": {"N": "1"},
                    ":false": {"BOOL": False},
                    ":now": _number(now),
                },
                "ReturnValues": "ALL_NEW",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        )
        try:
            response = yield from call(request)
        except ConditionFailed as error:
            if not error.item:
                raise MigrationError(
                    f"table {self.store.name!r}: job {self.job} has no segment {number}"
                ) from None
            current = Segment.from_item(error.item)
            if current.done:
                return current
            raise SegmentLeased(
                f"job {self.job}: segment {number} is leased by {current.owner} until "
                f"{current.lease_until:.0f} (epoch seconds)",
                owner=current.owner,
                until=current.lease_until,
            ) from None
        return Segment.from_item(response["Attributes"])

    # -- fenced writes --------------------------------------------------------------------------

    def _fence(self, segment: Segment, owner: str) -> tuple[str, dict[str, Any]]:
        return "#owner = :me AND #claims = :claims", {
            ":me": {"S": owner},
            ":claims": {"N": str(segment.claims)},
        }

    def checkpoint_params(
        self, segment: Segment, owner: str, now: float, lease: float, release: bool
    ) -> dict[str, Any]:
        """The update that stores ``segment`` (cursor, counts, failures) and renews its lease,
        or gives it up (``release``, or once it is done); fenced by owner and claims."""
        condition, values = self._fence(segment, owner)
        sets = [
            "#cursor = :cursor",
            "#done = :done",
            "#scanned = :scanned",
            "#written = :written",
            "#unchanged = :unchanged",
            "#pages = :pages",
            "#failures = :failures",
            "#lease = :until",
        ]
        values.update(
            {
                ":cursor": {"S": segment.cursor or ""},
                ":done": {"BOOL": segment.done},
                ":scanned": {"N": str(segment.scanned)},
                ":written": {"N": str(segment.written)},
                ":unchanged": {"N": str(segment.unchanged)},
                ":pages": {"N": str(segment.pages)},
                ":failures": {"S": json.dumps([f.as_dict() for f in segment.failures])},
                ":until": _number(0.0 if release or segment.done else now + lease),
            }
        )
        expression = "SET " + ", ".join(sets)
        if release or segment.done:
            expression += " REMOVE #owner"
        return {
            "TableName": self.store.name,
            "Key": self.store.key(self.name(segment.number)),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {
                **_NAMES,
                "#cursor": "cursor",
                "#scanned": "scanned",
                "#written": "written",
                "#unchanged": "unchanged",
                "#pages": "pages",
                "#failures": "failures",
            },
            "ExpressionAttributeValues": values,
        }

    def save_flow(
        self, segment: Segment, owner: str, now: float, lease: float, release: bool = False
    ) -> Flow[None]:
        """Store a checkpoint with no writes attached (see `checkpoint_params`)."""
        params = self.checkpoint_params(segment, owner, now, lease, release)
        yield from self._fenced(Request("update_item", params), segment, owner)
        segment.lease_until = 0.0 if release or segment.done else now + lease
        if release or segment.done:
            segment.owner = None

    def renew_flow(self, segment: Segment, owner: str, now: float, lease: float) -> Flow[None]:
        """Extend ``owner``'s lease on ``segment`` to ``now + lease``."""
        condition, values = self._fence(segment, owner)
        params = {
            "TableName": self.store.name,
            "Key": self.store.key(self.name(segment.number)),
            "UpdateExpression": "SET #lease = :until",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": _NAMES,
            "ExpressionAttributeValues": {**values, ":until": _number(now + lease)},
        }
        yield from self._fenced(Request("update_item", params), segment, owner)
        segment.lease_until = now + lease

    def _fenced(self, request: Request, segment: Segment, owner: str) -> Flow[None]:
        try:
            yield from call(request)
        except ConditionFailed:
            raise self.lost(segment, owner) from None

    def lost(self, segment: Segment, owner: str) -> LeaseLost:
        """The error of a fenced write that found the segment claimed by another worker."""
        return LeaseLost(
            f"job {self.job}: worker {owner} lost its lease on segment {segment.number} "
            f"(claimed again by another worker after the lease expired); it wrote nothing more"
        )

    def retry_done_params(self, segment: Segment) -> dict[str, Any]:
        """Store the failures left after the coordinator retried a finished segment's items."""
        return {
            "TableName": self.store.name,
            "Key": self.store.key(self.name(segment.number)),
            "UpdateExpression": "SET #failures = :failures, #written = :written",
            "ConditionExpression": "#done = :true",
            "ExpressionAttributeNames": {
                "#failures": "failures",
                "#written": "written",
                "#done": "done",
            },
            "ExpressionAttributeValues": {
                ":failures": {"S": json.dumps([f.as_dict() for f in segment.failures])},
                ":written": {"N": str(segment.written)},
                ":true": {"BOOL": True},
            },
        }


def _chunks(values: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
