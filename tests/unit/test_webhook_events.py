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


def test_dedupe_keys_are_those_stored_before_the_hot_path_change():
    """Keys already in webhook_events must still match Strava's redeliveries after an upgrade: these
    are the values the cached_property version (before b75df76) derived for the same bodies."""
    assert parse_event(raw(CREATE)).dedupe_key == "120475:activity:1360128428:create:1516126040:44136fa355b3678a"
    odd = {**CREATE, "aspect_type": "update", "updates": {"title": "Ride \u00e9 \U0001F6B4"}}
    assert parse_event(raw(odd)).dedupe_key == "120475:activity:1360128428:update:1516126040:95f7b99e1907d3c2"
    # Escaped or raw UTF-8 in the body is the same event; NFC and NFD spellings are not merged.
    assert parse_event(json.dumps(odd, ensure_ascii=False).encode()).dedupe_key == parse_event(raw(odd)).dedupe_key
    assert parse_event(raw({**odd, "updates": {"title": "\u00e9"}})).dedupe_key != \
        parse_event(raw({**odd, "updates": {"title": "e\u0301"}})).dedupe_key


def test_derived_fields_follow_the_event_through_copies_and_replace():
    import copy
    import dataclasses
    import pickle

    event = parse_event(raw({**CREATE, "aspect_type": "update", "updates": {"title": "\u2028\ufeff"}}))
    for twin in (pickle.loads(pickle.dumps(event)), copy.copy(event), copy.deepcopy(event)):
        assert twin == event and (twin.dedupe_key, twin.updates_json) == (event.dedupe_key, event.updates_json)
    later = dataclasses.replace(event, event_time=event.event_time + 1)
    assert later != event and later.dedupe_key != event.dedupe_key
    assert later.dedupe_key.endswith(event.dedupe_key.rsplit(":", 1)[1])
    # Equality is the event's fields only; the derived strings are neither compared nor shown.
    assert event == parse_event(raw({**CREATE, "aspect_type": "update", "updates": {"title": "\u2028\ufeff"}}))
    assert "dedupe_key" not in repr(event) and "updates_json" not in repr(event)


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
