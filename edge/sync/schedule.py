"""When head-office sync runs, and how long it waits after a failure: pure, no I/O.

- The nightly window ("02:00-05:00", local time, may wrap midnight) is when
  sync runs even with `headoffice.continuous = false`.
- After a failure the next try waits `retry_delay`: none after a single
  failure (one lost request is the normal life of a link), then
  `backoff_delay`: doubling from `first` up to `cap`, with jitter so a
  hundred stores coming back from one outage do not all call head office in
  the same second. Failures are counted in a row: any success resets them.
"""

from __future__ import annotations

import ipaddress
import random
import re
from datetime import datetime, time, timedelta
from urllib.parse import urlsplit

WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def parse_window(text: str) -> tuple[time, time]:
    """("02:00", "05:00") from "02:00-05:00"; ValueError if it is not HH:MM-HH:MM."""
    match = WINDOW.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a window like 02:00-05:00")
    start_h, start_m, end_h, end_m = (int(group) for group in match.groups())
    if (start_h, start_m) == (end_h, end_m):
        raise ValueError(f"{text!r} is an empty window")
    return time(start_h, start_m), time(end_h, end_m)


def in_window(now: datetime, window: tuple[time, time]) -> bool:
    start, end = window
    clock = now.time()
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end  # wraps midnight


def seconds_until_window(now: datetime, window: tuple[time, time]) -> float:
    """0 inside the window; else how long until it opens."""
    if in_window(now, window):
        return 0.0
    opens = now.replace(hour=window[0].hour, minute=window[0].minute, second=0, microsecond=0)
    if opens <= now:
        opens += timedelta(days=1)
    return (opens - now).total_seconds()


def backoff_delay(
    failures: int, first: float, cap: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait after `failures` failures in a row: between half and all of the step."""
    step = min(cap, first * 2 ** min(max(failures - 1, 0), 30))
    return step * (rng or random).uniform(0.5, 1.0)


def retry_delay(
    failures: int, first: float, cap: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait after `failures` failed requests in a row: 0 after the first."""
    return 0.0 if failures <= 1 else backoff_delay(failures - 1, first, cap, rng)


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a head-office address (None: it can)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and is_loopback_url(url):
        return None  # a head office (or a TLS-terminating proxy) on this very machine
    return "must be an https:// URL (plain http only to this machine, e.g. http://127.0.0.1)"
