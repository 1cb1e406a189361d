"""Period arithmetic, period table names and rotation plans (pure: no server)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, strategies as st

from dynamodel.core.errors import ValidationError
from dynamodel.modelling.periods import EVERY, Periods

UTC = dt.UTC


@pytest.mark.parametrize(
    ("every", "when", "label"),
    [
        ("day", dt.datetime(2026, 12, 4, 23, 59, tzinfo=UTC), "2026-12-04"),
        ("week", dt.datetime(2026, 12, 4, tzinfo=UTC), "2026-W49"),
        ("week", dt.datetime(2027, 1, 1, tzinfo=UTC), "2026-W53"),  # ISO: week of 2026
        ("month", dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), "2026-12"),
        ("quarter", dt.datetime(2026, 10, 1, tzinfo=UTC), "2026-Q4"),
        ("year", dt.datetime(2026, 6, 1, tzinfo=UTC), "2026"),
    ],
)
def test_labels(every: str, when: dt.datetime, label: str) -> None:
    periods = Periods(every)  # type: ignore[arg-type]
    assert periods.label(periods.index(when)) == label
    assert periods.parse(label) == periods.index(when)


def test_times_in_other_zones_count_in_utc_and_naive_ones_are_refused() -> None:
    periods = Periods("day")
    tokyo = dt.timezone(dt.timedelta(hours=9))
    assert periods.label(periods.index(dt.datetime(2026, 12, 5, 8, tzinfo=tokyo))) == "2026-12-04"
    with pytest.raises(ValidationError, match="no timezone"):
        periods.index(dt.datetime(2026, 12, 4))


@given(
    st.sampled_from(EVERY),
    st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(9998, 1, 1)),
)
def test_every_time_falls_in_the_period_that_starts_before_it(
    every: str, naive: dt.datetime
) -> None:
    periods = Periods(every)  # type: ignore[arg-type]
    when = naive.replace(tzinfo=UTC)
    index = periods.index(when)
    assert periods.start(index) <= when < periods.start(index + 1)
    label = periods.label(index)
    assert periods.parse(label) == index
    assert periods.label(index) < periods.label(index + 1)  # labels sort in time order


def test_between_lists_the_periods_of_a_range() -> None:
    months = Periods("month")
    start = dt.datetime(2026, 11, 15, tzinfo=UTC)
    end = dt.datetime(2027, 1, 1, tzinfo=UTC)  # exclusive: January is not included
    assert [months.label(i) for i in months.between(start, end)] == ["2026-11", "2026-12"]
    with pytest.raises(ValidationError, match="not after the start"):
        months.between(end, start)


def test_names_and_parsing_them_back() -> None:
    periods = Periods("month", name="{table}_{period}_v1")
    index = periods.parse("2026-12")
    assert index is not None
    assert periods.table_name("events", index) == "events_2026-12_v1"
    assert periods.period_of("events", "events_2026-12_v1") == index
    assert periods.period_of("events", "events_2026-13_v1") is None  # no month 13
    assert periods.period_of("events", "other_2026-12_v1") is None
    assert periods.period_of("events", "events_2026-12") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every": "hour"}, "every must be one of"),
        ({"every": "day", "name": "{table}"}, "must contain"),
        ({"every": "day", "name": "{table}-{period}-{x}"}, "may only use"),
        ({"every": "day", "retention": 0}, "retention must be"),
        ({"every": "day", "ahead": -1}, "ahead must be"),
        ({"every": "day", "cold_class": "GLACIER"}, "cold_class must be"),
    ],
)
def test_bad_declarations_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Periods(**kwargs)  # type: ignore[arg-type]


def test_the_rotation_plan_creates_ahead_cools_and_drops() -> None:
    periods = Periods("month", retention=3, ahead=1, cold_after=1)
    now = dt.datetime(2026, 12, 4, tzinfo=UTC)
    existing = {
        "events-2026-08": "STANDARD_INFREQUENT_ACCESS",  # expired (4 months old)
        "events-2026-09": "STANDARD",  # expired too
        "events-2026-10": "STANDARD",  # kept, cold
        "events-2026-11": "STANDARD_INFREQUENT_ACCESS",  # kept, already cold
        "events-2026-12": "STANDARD",  # current
        "other-2026-01": "STANDARD",  # not ours
        "events-archive": "STANDARD",  # not a period table
    }
    plan = periods.plan("events", existing, now)
    assert plan.current == "events-2026-12"
    assert plan.create == ["events-2027-01"]
    assert plan.cold == ["events-2026-10"]
    assert plan.drop == ["events-2026-08", "events-2026-09"]
    again = periods.plan(
        "events",
        {
            "events-2026-10": "STANDARD_INFREQUENT_ACCESS",
            "events-2026-11": "STANDARD_INFREQUENT_ACCESS",
            "events-2026-12": "STANDARD",
            "events-2027-01": "STANDARD",
        },
        now,
    )
    assert again.empty  # rotation is idempotent
