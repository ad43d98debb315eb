"""A fiscal period (a day, a month, a year) and the event times it holds: pure.

A period is named as store IT types it (`2026-11-30`, `2026-11`, `2026`) and
bounded by the store's midnights in its local time (the node's, as the day's
sales list is: edge/selling/sales_list.py). Event times are UTC
(`2026-11-30T23:10:00.000Z`), so the bounds are kept in that form too: an
archive says them in its manifest, and the verifier needs no time zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo

DAY, MONTH, YEAR = "day", "month", "year"
_PATTERNS = ((re.compile(r"(\d{4})-(\d{2})-(\d{2})"), DAY),
             (re.compile(r"(\d{4})-(\d{2})"), MONTH),
             (re.compile(r"(\d{4})"), YEAR))


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


def _midnight(day: date, zone: tzinfo | None) -> str:
    naive = datetime(day.year, day.month, day.day)
    return event_time(naive.replace(tzinfo=zone) if zone else naive.astimezone())


def parse_period(text: str, zone: tzinfo | None = None) -> Period:
    """The period `text` names; ValueError in words if it names none.

    `zone`: the store's time zone (None: this machine's local time).
    """
    for pattern, kind in _PATTERNS:
        match = pattern.fullmatch(text.strip())
        if match is None:
            continue
        numbers = [int(part) for part in match.groups()]
        try:
            if kind == DAY:
                first = date(*numbers)
                after = date.fromordinal(first.toordinal() + 1)
            elif kind == MONTH:
                first = date(numbers[0], numbers[1], 1)
                after = date(numbers[0] + numbers[1] // 12, numbers[1] % 12 + 1, 1)
            else:
                first, after = date(numbers[0], 1, 1), date(numbers[0] + 1, 1, 1)
        except ValueError:
            raise ValueError(f"{text!r} is no date") from None
        return Period(text.strip(), kind, _midnight(first, zone), _midnight(after, zone))
    raise ValueError(f"{text!r} is not a period: give a day (2026-11-30), a month (2026-11) "
                     "or a year (2026)")


def period_from_dict(data: object) -> Period:
    """A period as an archive's manifest says it; ValueError if it is not one."""
    if not isinstance(data, dict) or not all(
            isinstance(data.get(key), str) for key in ("label", "kind", "start", "end")):
        raise ValueError("the period must be {label, kind, start, end}")
    return Period(data["label"], data["kind"], data["start"], data["end"])
