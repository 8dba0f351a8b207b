"""Rate-limit window arithmetic and header parsing, with plain values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.ratelimit.windows import (
    background_cap,
    next_midnight,
    next_quarter,
    parse_pair,
    quarter_start,
    read_headers,
    same_window,
    window_resets_at,
)


def at(hour: int, minute: int, second: int = 0, day: int = 27) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(("value", "expected"), [
    ("200,2000", (200, 2000)),
    (" 79 , 222 ", (79, 222)),
    ("0,0", (0, 0)),
    ("", None), (None, None), ("200", None), ("200,2000,3", None), ("a,b", None), ("-1,5", None),
])
def test_parse_pair(value, expected):
    assert parse_pair(value) == expected


def test_headers_are_read_case_insensitively_for_both_budgets():
    # The casing Strava actually sends (reference §3) and the documented one.
    wire = {"X-Ratelimit-Limit": "200,2000", "X-Ratelimit-Usage": "79,222",
            "X-Readratelimit-Limit": "100,1000", "X-Readratelimit-Usage": "78,221"}
    documented = {"X-RateLimit-Limit": "200,2000", "X-RateLimit-Usage": "79,222",
                  "x-readratelimit-limit": "100,1000", "X-READRATELIMIT-USAGE": "78,221"}
    for headers in (wire, documented):
        readings = read_headers(headers)
        assert (readings["overall"].limit_15min, readings["overall"].limit_daily) == (200, 2000)
        assert (readings["overall"].usage_15min, readings["overall"].usage_daily) == (79, 222)
        assert (readings["read"].limit_15min, readings["read"].usage_daily) == (100, 221)


def test_a_budget_needs_both_limit_and_usage():
    assert read_headers({"X-RateLimit-Limit": "600,30000"}) == {}
    only_overall = read_headers({"X-RateLimit-Limit": "600,30000", "X-RateLimit-Usage": "314,27536"})
    assert set(only_overall) == {"overall"}
    assert read_headers({"X-RateLimit-Limit": "garbage", "X-RateLimit-Usage": "1,2"}) == {}


@pytest.mark.parametrize(("now", "start", "reset"), [
    (at(14, 3), at(14, 0), at(14, 15)),
    (at(14, 15), at(14, 15), at(14, 30)),
    (at(14, 29, 59), at(14, 15), at(14, 30)),
    (at(14, 44), at(14, 30), at(14, 45)),
    (at(14, 59, 59), at(14, 45), at(15, 0)),
    (at(23, 50), at(23, 45), at(0, 0, day=28)),
])
def test_quarter_hour_windows(now, start, reset):
    assert quarter_start(now) == start
    assert next_quarter(now) == reset
    assert window_resets_at("15min", now) == reset


def test_daily_window_resets_at_midnight_utc_whatever_the_input_zone():
    from datetime import timedelta, timezone

    assert next_midnight(at(14, 3)) == at(0, 0, day=28)
    assert next_midnight(at(0, 0)) == at(0, 0, day=28)
    # 01:30 at UTC+2 is 23:30 UTC the day before
    local = datetime(2026, 11, 28, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert next_midnight(local) == at(0, 0, day=28)


def test_usage_counts_only_within_the_window_it_was_seen_in():
    assert same_window("15min", at(14, 1), at(14, 14, 59))
    assert not same_window("15min", at(14, 14, 59), at(14, 15))
    assert same_window("daily", at(0, 0), at(23, 59))
    assert not same_window("daily", at(23, 59, day=26), at(0, 1))
    assert not same_window("15min", None, at(14, 0))


@pytest.mark.parametrize(("limit", "reserve", "cap"), [(100, 10, 90), (1000, 10, 900), (200, 0, 200), (7, 10, 6)])
def test_background_cap_keeps_the_reserve(limit, reserve, cap):
    assert background_cap(limit, reserve) == cap


def test_reserve_is_released_shortly_before_each_reset():
    from datetime import UTC, datetime

    from service.ratelimit.windows import background_share, reserve_released_at

    early = datetime(2026, 11, 27, 14, 3, tzinfo=UTC)
    assert reserve_released_at("15min", early) == datetime(2026, 11, 27, 14, 14, tzinfo=UTC)
    assert reserve_released_at("daily", early) == datetime(2026, 11, 27, 23, 45, tzinfo=UTC)
    assert background_share("15min", early, 10) == 90
    assert background_share("15min", datetime(2026, 11, 27, 14, 14, tzinfo=UTC), 10) == 100
    assert background_share("daily", datetime(2026, 11, 27, 23, 44, 59, tzinfo=UTC), 10) == 90
    assert background_share("daily", datetime(2026, 11, 27, 23, 45, tzinfo=UTC), 10) == 100
