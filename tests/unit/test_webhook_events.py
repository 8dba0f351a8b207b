"""Parsing Strava's event bodies: the documented shapes pass, anything else is a clear 400."""

from __future__ import annotations

import json

import pytest

from service.background.webhooks.strava_events import BadEvent, parse_event

CREATE = {"aspect_type": "create", "event_time": 1516126040, "object_id": 1360128428, "object_type": "activity",
          "owner_id": 134815, "subscription_id": 120475, "updates": {}}
DEAUTH = {"aspect_type": "update", "event_time": 1516126040, "object_id": 134815, "object_type": "athlete",
          "owner_id": 134815, "subscription_id": 120475, "updates": {"authorized": "false"}}


def raw(body) -> bytes:
    return json.dumps(body).encode()


def test_reference_vectors_parse():
    event = parse_event(raw(CREATE))
    assert (event.object_type, event.aspect_type, event.object_id, event.subscription_id) == (
        "activity", "create", 1360128428, 120475)
    assert not event.is_deauthorization
    assert parse_event(raw(DEAUTH)).is_deauthorization
    title = parse_event(raw({**CREATE, "aspect_type": "update", "updates": {"title": "Messy"}}))
    assert title.updates == {"title": "Messy"}


def test_redelivery_has_the_same_dedupe_key_and_other_events_do_not():
    key = parse_event(raw(CREATE)).dedupe_key
    assert parse_event(raw(dict(reversed(list(CREATE.items()))))).dedupe_key == key
    assert parse_event(raw({**CREATE, "event_time": 1516126041})).dedupe_key != key
    assert parse_event(raw({**CREATE, "aspect_type": "update", "updates": {"type": "Ride"}})).dedupe_key != \
        parse_event(raw({**CREATE, "aspect_type": "update", "updates": {"title": "Ride"}})).dedupe_key
    assert len(key) <= 300


def test_authorized_false_only_counts_as_the_string_or_boolean_false():
    assert not parse_event(raw({**DEAUTH, "updates": {"authorized": "true"}})).is_deauthorization
    assert parse_event(raw({**DEAUTH, "updates": {"authorized": False}})).is_deauthorization
    assert not parse_event(raw({**DEAUTH, "object_type": "activity"})).is_deauthorization


@pytest.mark.parametrize("body", [
    b"not json", b"[1,2]", b'"text"', b"\xff\xfe",
    raw({k: v for k, v in CREATE.items() if k != "owner_id"}),
    raw({**CREATE, "object_id": "1360128428"}),
    raw({**CREATE, "subscription_id": True}),
    raw({**CREATE, "object_id": -1}),
    raw({**CREATE, "object_id": 2**70}),
    raw({**CREATE, "object_type": "segment"}),
    raw({**CREATE, "aspect_type": "upsert"}),
    raw({**CREATE, "updates": ["title"]}),
    raw({**CREATE, "updates": {"title": {"nested": 1}}}),
])
def test_malformed_bodies_are_refused(body):
    with pytest.raises(BadEvent):
        parse_event(body)
