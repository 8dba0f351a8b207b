"""Bodies the security fuzzer found crashing the webhook endpoint (500s); each must be a clean 400."""

from __future__ import annotations

import json

import pytest

from service.background.webhooks.strava_events import BadEvent, parse_event

BASE = {"object_type": "activity", "aspect_type": "create", "object_id": 1, "owner_id": 1,
        "subscription_id": 1, "event_time": 1}


@pytest.mark.parametrize("change", [
    {"object_type": {"nested": 1}},
    {"aspect_type": ["create"]},
    {"updates": {"title": "\ud800"}},
    {"updates": {"\udfff": "x"}},
    {"updates": {"title": "nul\x00byte"}},
])
def test_found_by_fuzzing_is_a_400(change):
    with pytest.raises(BadEvent):
        parse_event(json.dumps({**BASE, **change}).encode())


def test_ordinary_event_still_parses():
    assert parse_event(json.dumps({**BASE, "updates": {"title": "Messy"}}).encode()).updates == {"title": "Messy"}
