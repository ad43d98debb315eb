"""When sync runs and how it backs off: pure functions, no clock, no network."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from edge.sync.schedule import (
    backoff_delay,
    in_window,
    parse_window,
    retry_delay,
    seconds_until_window,
    url_problem,
)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 25, hour, minute)


def test_a_nightly_window_may_wrap_midnight() -> None:
    night = parse_window("23:30-02:00")
    assert [in_window(at(h, m), night) for h, m in ((23, 29), (23, 30), (1, 59), (2, 0))] == [
        False, True, True, False]
    early = parse_window("02:00-05:00")
    assert in_window(at(3), early) and not in_window(at(5), early)
    assert seconds_until_window(at(3), early) == 0
    assert seconds_until_window(at(1, 30), early) == 30 * 60
    assert seconds_until_window(at(6), early) == 20 * 3600


@pytest.mark.parametrize("text", ["2:00-05:00", "02:00-24:00", "02:00-02:00", "night"])
def test_a_bad_window_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_window(text)


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    rng = random.Random(7)
    for failures, step in ((1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (1000, 300)):
        delays = [backoff_delay(failures, 1.0, 300.0, rng) for _ in range(50)]
        assert all(step / 2 <= delay <= step for delay in delays)
        assert len(set(delays)) > 40  # spread: stores back from one outage do not stampede


def test_a_lone_failure_is_retried_at_once_and_the_backoff_starts_at_the_second() -> None:
    rng = random.Random(7)
    assert retry_delay(0, 1.0, 300.0, rng) == retry_delay(1, 1.0, 300.0, rng) == 0
    assert 0.5 <= retry_delay(2, 1.0, 300.0, rng) <= 1.0
    assert 1.0 <= retry_delay(3, 1.0, 300.0, rng) <= 2.0
    assert 150.0 <= retry_delay(1000, 1.0, 300.0, rng) <= 300.0


def test_head_office_urls_are_https_unless_on_this_machine() -> None:
    assert url_problem("https://ho.example.com") is None
    assert url_problem("http://127.0.0.1:8443") is None
    assert url_problem("http://localhost:8443") is None
    assert url_problem("http://[::1]:8443") is None
    assert url_problem("http://ho.example.com") is not None
    assert url_problem("http://10.0.0.5") is not None
    assert url_problem("ftp://ho.example.com") is not None
