"""A fiscal period (a day, a month, a year) and the event times it holds: pure.

A period is named as store IT types it (`2026-11-30`, `2026-11`, `2026`) and
bounded in the store's local time (the node's, as the day's sales list is:
edge/selling/sales_list.py). Event times are UTC
(`2026-11-30T23:10:00.000Z`), so the bounds are kept in that form too: an
archive says them in its manifest, and the verifier needs no time zone.

The store's **business day** (`Calendar`): day D runs from D at the cut-off
hour (`fiscal.day_cutoff`, 0-12, default 4) to D+1 at the cut-off, so a
bakery selling at 23:30, or a bar at 1:30, still sells on day D. A month runs
from its first business day's start to the next month's; a fiscal year
(`fiscal.year_start`, "MM-01", default "01-01") is named by the calendar
year it starts in and holds twelve months. Closures (closures.py) and
archives (`edge archive`) cut periods alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

DAY, MONTH, YEAR = "day", "month", "year"
KINDS = (DAY, MONTH, YEAR)
DEFAULT_CUTOFF = 4
DEFAULT_YEAR_START = "01-01"
_PATTERNS = ((re.compile(r"(\d{4})-(\d{2})-(\d{2})"), DAY),
             (re.compile(r"(\d{4})-(\d{2})"), MONTH),
             (re.compile(r"(\d{4})"), YEAR))
_YEAR_START = re.compile(r"(\d{2})-01")


@dataclass(frozen=True)
class Period:
    label: str  # as typed: 2026-11-30, 2026-11, 2026
    kind: str  # day, month or year
    start: str  # the first event time it holds (UTC, as events write it)
    end: str  # the first event time after it

    def holds(self, time: str) -> bool:
        return self.start <= time < self.end

    def as_dict(self) -> dict[str, str]:
        return {"label": self.label, "kind": self.kind, "start": self.start, "end": self.end}


def event_time(moment: datetime) -> str:
    """`moment` as event times are written (edge/journal/chain.py `utc_now`)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _month_after(year: int, month: int, months: int = 1) -> tuple[int, int]:
    index = year * 12 + month - 1 + months
    return index // 12, index % 12 + 1


@dataclass(frozen=True)
class Calendar:
    """How the store cuts time into business days, months and fiscal years."""

    day_cutoff: int = DEFAULT_CUTOFF  # hour of the local day a business day starts at
    year_start: str = DEFAULT_YEAR_START  # "MM-01": the fiscal year's first day
    zone: tzinfo | None = None  # the store's time zone; None: this machine's local time

    def __post_init__(self) -> None:
        if not 0 <= self.day_cutoff <= 12:
            raise ValueError("fiscal.day_cutoff is an hour from 0 to 12")
        match = _YEAR_START.fullmatch(self.year_start)
        if match is None or not 1 <= int(match.group(1)) <= 12:
            raise ValueError("fiscal.year_start is the first day of a month, \"MM-01\"")

    @property
    def first_month(self) -> int:
        return int(self.year_start[:2])

    def day_start(self, day: date) -> str:
        naive = datetime(day.year, day.month, day.day, self.day_cutoff)
        return event_time(naive.replace(tzinfo=self.zone) if self.zone else naive.astimezone())

    def business_day(self, moment: datetime) -> date:
        """The business day `moment` (aware, or UTC if naive) falls in."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        local = moment.astimezone(self.zone) if self.zone else moment.astimezone()
        return (local - timedelta(hours=self.day_cutoff)).date()

    def period(self, kind: str, label: str) -> Period:
        """The period of `kind` named `label`; ValueError in words if it names none."""
        text = label.strip()
        for pattern, found in _PATTERNS:
            match = pattern.fullmatch(text)
            if match is not None and found == kind:
                return self._bounded(kind, text, [int(part) for part in match.groups()])
        example = {DAY: "2026-11-30", MONTH: "2026-11", YEAR: "2026"}.get(kind)
        if example is None:
            raise ValueError(f"{kind!r} is not a kind of period: day, month or year")
        raise ValueError(f"{label!r} is not a {kind}: write it as {example}")

    def _bounded(self, kind: str, text: str, numbers: list[int]) -> Period:
        try:
            if kind == DAY:
                first = date(*numbers)
                after = first + timedelta(days=1)
            elif kind == MONTH:
                first = date(numbers[0], numbers[1], 1)
                after = date(*_month_after(numbers[0], numbers[1]), 1)
            else:
                first = date(numbers[0], self.first_month, 1)
                after = date(numbers[0] + 1, self.first_month, 1)
        except ValueError:
            raise ValueError(f"{text!r} is no date") from None
        return Period(text, kind, self.day_start(first), self.day_start(after))

    def label_of(self, kind: str, day: date) -> str:
        """The label of the period of `kind` business day `day` falls in."""
        if kind == DAY:
            return day.isoformat()
        if kind == MONTH:
            return f"{day.year:04d}-{day.month:02d}"
        return str(day.year if day.month >= self.first_month else day.year - 1)

    def previous(self, kind: str, label: str) -> str:
        """The label of the period just before `label`."""
        if kind == DAY:
            return (date.fromisoformat(label) - timedelta(days=1)).isoformat()
        if kind == MONTH:
            year, month = _month_after(int(label[:4]), int(label[5:7]), -1)
            return f"{year:04d}-{month:02d}"
        return str(int(label) - 1)

    def following(self, kind: str, label: str) -> str:
        """The label of the period just after `label`."""
        if kind == DAY:
            return (date.fromisoformat(label) + timedelta(days=1)).isoformat()
        if kind == MONTH:
            year, month = _month_after(int(label[:4]), int(label[5:7]))
            return f"{year:04d}-{month:02d}"
        return str(int(label) + 1)

    def parts(self, kind: str, label: str) -> list[str]:
        """What a month (its days) or a year (its months) sums, in order."""
        if kind == MONTH:
            first = date(int(label[:4]), int(label[5:7]), 1)
            after = date(*_month_after(first.year, first.month), 1)
            return [(first + timedelta(days=n)).isoformat()
                    for n in range((after - first).days)]
        if kind == YEAR:
            return [f"{y:04d}-{m:02d}" for y, m in
                    (_month_after(int(label), self.first_month, n) for n in range(12))]
        return []


def calendar_of(config: Any, zone: tzinfo | None = None) -> Calendar:
    """The store's calendar from its config (`[fiscal] day_cutoff, year_start`)."""
    return Calendar(config.fiscal_day_cutoff, config.fiscal_year_start, zone)


def business_day(moment_utc: datetime, cutoff: int = DEFAULT_CUTOFF,
                 zone: tzinfo | None = None) -> date:
    """The business day a moment falls in: before the cut-off hour, the day before's."""
    return Calendar(cutoff, zone=zone).business_day(moment_utc)


def business_day_bounds(day: date, cutoff: int = DEFAULT_CUTOFF,
                        zone: tzinfo | None = None) -> tuple[str, str]:
    """Business day `day`'s first event time and the first after it (UTC event times)."""
    period = Calendar(cutoff, zone=zone).period(DAY, day.isoformat())
    return period.start, period.end


def parse_period(text: str, zone: tzinfo | None = None,
                 calendar: Calendar | None = None) -> Period:
    """The period `text` names; ValueError in words if it names none.

    `zone`: the store's time zone (None: this machine's local time).
    `calendar`: the store's business days and fiscal year; none: midnight to
    midnight and calendar years.
    """
    calendar = calendar or Calendar(0, zone=zone)
    for pattern, kind in _PATTERNS:
        if pattern.fullmatch(text.strip()):
            return calendar.period(kind, text)
    raise ValueError(f"{text!r} is not a period: give a day (2026-11-30), a month (2026-11) "
                     "or a year (2026)")


def period_from_dict(data: object) -> Period:
    """A period as an archive's manifest says it; ValueError if it is not one."""
    if not isinstance(data, dict) or not all(
            isinstance(data.get(key), str) for key in ("label", "kind", "start", "end")):
        raise ValueError("the period must be {label, kind, start, end}")
    return Period(data["label"], data["kind"], data["start"], data["end"])
