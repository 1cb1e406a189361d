"""One physical table per period of time: period arithmetic, table names, rotation plans.

Time-series data (events, logs, readings) is often kept in one table per period: the current
period's table takes the writes at full capacity, older ones move to a cheaper table class and
lower capacity, and expired periods are dropped whole instead of deleting items one by one.
`Periods` declares that on a `Table` (``Table("events", periods=Periods("month"))``).

Periods are in UTC. Their labels sort in time order and name the tables:

========  ===============  =========================================
every     label            period
========  ===============  =========================================
day       ``2026-12-04``   a calendar day
week      ``2026-W49``     an ISO week (Monday to Sunday)
month     ``2026-12``      a calendar month
quarter   ``2026-Q4``      a calendar quarter
year      ``2026``         a calendar year
========  ===============  =========================================

Pure: no clock, no I/O (callers pass the time).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dynamodel.core.errors import ValidationError
from dynamodel.core.frozen import Frozen

if TYPE_CHECKING:
    from dynamodel.modelling.table import Provisioned, TableClass

Every = Literal["day", "week", "month", "quarter", "year"]
EVERY: tuple[str, ...] = ("day", "week", "month", "quarter", "year")
_LABELS = {
    "day": re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"),
    "week": re.compile(r"^(\d{4})-W(\d{2})$"),
    "month": re.compile(r"^(\d{4})-(\d{2})$"),
    "quarter": re.compile(r"^(\d{4})-Q([1-4])$"),
    "year": re.compile(r"^(\d{4})$"),
}
_EPOCH_MONDAY = dt.date(1, 1, 1)  # a Monday: ISO weeks count from it


class Periods(Frozen):
    """One physical table per period (declared with ``Table(..., periods=Periods(...))``).

    Args:
        every: ``day``, ``week`` (ISO), ``month``, ``quarter`` or ``year``, in UTC.
        name: the physical table name of a period; ``{table}`` is the table's name (its bound
            name when bound), ``{period}`` the period's label. Default ``{table}-{period}``.
        retention: how many periods to keep, the current one included; rotation drops older
            ones whole. None: keep every period.
        ahead: how many periods after the current one rotation creates in advance (so a write
            at midnight never finds its table missing).
        cold_after: a period this many periods before the current one, or older, is *cold*:
            rotation moves it to ``cold_class`` and ``cold_billing`` (once: a table already
            in ``cold_class`` is left as it is). None: never.
        cold_class: the table class of cold periods.
        cold_billing: the billing of cold periods (e.g. ``Provisioned(5, 1)``); None keeps the
            table's billing.
    """

    _fields = ("every", "name", "retention", "ahead", "cold_after", "cold_class", "cold_billing")
    __slots__ = _fields
    every: Every
    name: str
    retention: int | None
    ahead: int
    cold_after: int | None
    cold_class: TableClass
    cold_billing: Provisioned | None

    def __init__(
        self,
        every: Every,
        *,
        name: str = "{table}-{period}",
        retention: int | None = None,
        ahead: int = 1,
        cold_after: int | None = 1,
        cold_class: TableClass = "STANDARD_INFREQUENT_ACCESS",
        cold_billing: Provisioned | None = None,
    ) -> None:
        if every not in EVERY:
            raise ValidationError(
                f"Periods: every must be one of {', '.join(EVERY)}, got {every!r}"
            )
        if "{period}" not in name or "{table}" not in name:
            raise ValidationError(
                f"Periods: name must contain {{table}} and {{period}}, got {name!r}"
            )
        try:
            name.format(table="t", period="p")
        except (KeyError, IndexError, ValueError) as error:
            raise ValidationError(
                f"Periods: name {name!r} may only use {{table}} and {{period}} ({error})"
            ) from None
        for what, value, least in (("retention", retention, 1), ("cold_after", cold_after, 1)):
            if value is not None and (not isinstance(value, int) or value < least):
                raise ValidationError(f"Periods: {what} must be an int >= {least} or None")
        if not isinstance(ahead, int) or ahead < 0:
            raise ValidationError(f"Periods: ahead must be an int >= 0, got {ahead!r}")
        if retention is not None and cold_after is not None and cold_after >= retention:
            cold_after = None  # every kept period is younger than cold: nothing goes cold
        if cold_class not in ("STANDARD", "STANDARD_INFREQUENT_ACCESS"):
            raise ValidationError(
                "Periods: cold_class must be STANDARD or STANDARD_INFREQUENT_ACCESS, "
                f"got {cold_class!r}"
            )
        self._set(
            every=every,
            name=name,
            retention=retention,
            ahead=ahead,
            cold_after=cold_after,
            cold_class=cold_class,
            cold_billing=cold_billing,
        )

    # -- periods --------------------------------------------------------------------------------

    def index(self, when: dt.datetime) -> int:
        """The period holding ``when`` as a number (consecutive periods differ by one)."""
        if when.tzinfo is None:
            raise ValidationError(
                f"the time {when.isoformat()} has no timezone; periods are in UTC: give an "
                "aware datetime (e.g. datetime.now(UTC))"
            )
        day = when.astimezone(dt.UTC).date()
        if self.every == "day":
            return day.toordinal()
        if self.every == "week":
            return (day.toordinal() - _EPOCH_MONDAY.toordinal()) // 7
        if self.every == "month":
            return day.year * 12 + day.month - 1
        if self.every == "quarter":
            return day.year * 4 + (day.month - 1) // 3
        return day.year

    def start(self, index: int) -> dt.datetime:
        """When period ``index`` starts (UTC midnight)."""
        if self.every == "day":
            day = dt.date.fromordinal(index)
        elif self.every == "week":
            day = dt.date.fromordinal(_EPOCH_MONDAY.toordinal() + index * 7)
        elif self.every == "month":
            day = dt.date(index // 12, index % 12 + 1, 1)
        elif self.every == "quarter":
            day = dt.date(index // 4, (index % 4) * 3 + 1, 1)
        else:
            day = dt.date(index, 1, 1)
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)

    def label(self, index: int) -> str:
        """Period ``index``'s label (see the module docstring)."""
        start = self.start(index)
        if self.every == "day":
            return start.strftime("%Y-%m-%d")
        if self.every == "week":
            year, week, _ = start.isocalendar()
            return f"{year:04d}-W{week:02d}"
        if self.every == "month":
            return start.strftime("%Y-%m")
        if self.every == "quarter":
            return f"{start.year:04d}-Q{(start.month - 1) // 3 + 1}"
        return f"{start.year:04d}"

    def parse(self, label: str) -> int | None:
        """The index of a label (None: not a label of these periods)."""
        match = _LABELS[self.every].match(label)
        if match is None:
            return None
        numbers = [int(g) for g in match.groups()]
        try:
            if self.every == "day":
                return dt.date(*numbers).toordinal()
            if self.every == "week":
                monday = dt.date.fromisocalendar(numbers[0], numbers[1], 1)
                return (monday.toordinal() - _EPOCH_MONDAY.toordinal()) // 7
        except ValueError:
            return None
        if self.every == "month":
            return numbers[0] * 12 + numbers[1] - 1 if 1 <= numbers[1] <= 12 else None
        if self.every == "quarter":
            return numbers[0] * 4 + numbers[1] - 1
        return numbers[0]

    def between(self, start: dt.datetime, end: dt.datetime) -> range:
        """The periods holding any time in ``[start, end)``, in time order."""
        first, last = self.index(start), self.index(end - dt.timedelta(microseconds=1))
        if end <= start:
            raise ValidationError(
                f"period range: the end {end.isoformat()} is not after the start "
                f"{start.isoformat()}"
            )
        return range(first, last + 1)

    # -- names ----------------------------------------------------------------------------------

    def table_name(self, table: str, index: int) -> str:
        """The physical name of period ``index`` of ``table``."""
        return self.name.format(table=table, period=self.label(index))

    def period_of(self, table: str, physical: str) -> int | None:
        """The period a physical table name belongs to (None: not one of ``table``'s)."""
        head, _, tail = self.name.partition("{period}")
        head, tail = head.format(table=table), tail.format(table=table)
        if not physical.startswith(head) or not physical.endswith(tail):
            return None
        label = physical[len(head) : len(physical) - len(tail) if tail else None]
        return self.parse(label)

    def _cold(self, age: int) -> bool:
        return self.cold_after is not None and age >= self.cold_after

    # -- rotation -------------------------------------------------------------------------------

    def plan(self, table: str, existing: dict[str, str], now: dt.datetime) -> RotationPlan:
        """What rotation does at ``now``, given the existing tables (physical name -> table
        class) of ``table``: tables to create (current and ``ahead``), to make cold, to drop."""
        current = self.index(now)
        wanted = [current + n for n in range(self.ahead + 1)]
        found = {
            index: (name, klass)
            for name, klass in existing.items()
            if (index := self.period_of(table, name)) is not None
        }
        create = [self.table_name(table, i) for i in wanted if i not in found]
        drop, cold = [], []
        for index, (name, klass) in sorted(found.items()):
            age = current - index
            if self.retention is not None and age >= self.retention:
                drop.append(name)
            elif (
                self.cold_after is not None and age >= self.cold_after and klass != self.cold_class
            ):
                cold.append(name)  # its class tells it was made cold already
        return RotationPlan(
            current=self.table_name(table, current), create=create, cold=cold, drop=drop
        )


@dataclass(frozen=True)
class RotationPlan:
    """What a rotation changes (physical table names).

    Attributes:
        current: the current period's table. create: tables to create (current and ahead).
        cold: tables to move to the cold class and billing. drop: expired tables to delete.
    """

    current: str
    create: list[str]
    cold: list[str]
    drop: list[str]

    @property
    def empty(self) -> bool:
        """Nothing to do."""
        return not (self.create or self.cold or self.drop)
