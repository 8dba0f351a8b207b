"""service.core.inputs: the one place outside numbers, ids, limits, e-mails and WHO are parsed (issue 9, kind 8)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.inputs import (
    MAX_ID,
    MAX_LIMIT,
    MAX_ROW_ID,
    BadEmail,
    BadInput,
    Who,
    is_email,
    normalize_email,
    parse_cursor,
    parse_form,
    parse_id,
    parse_json_object,
    parse_json_whole_number,
    parse_limit,
    parse_port,
    parse_row_id,
    parse_since,
    parse_text,
    parse_who,
    parse_who_value,
    storable,
)

# Digits of other scripts, superscripts, fractions: str.isdigit() or int() accept many of them.
odd_digits = st.text(alphabet=st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=25).filter(
    lambda t: not t.isascii())


@pytest.mark.parametrize("raw", ["²", "١٢٣", "+5", " 7", "7 ", "1_000", "-1", "0x10", "1e3", "", "٣", "𝟗"])
def test_ids_are_ascii_digits_only(raw):
    with pytest.raises(BadInput) as info:
        parse_id(raw, "job id")
    assert "job id" in str(info.value)


def test_ids_are_bounded_by_the_database():
    assert parse_id("1", "id") == 1 and parse_id(str(MAX_ID), "id") == MAX_ID and parse_id("007", "id") == 7
    for raw in ("0", str(MAX_ID + 1), "9" * 20, "9" * 100_000):
        with pytest.raises(BadInput):
            parse_id(raw, "id")


@given(odd_digits)
@settings(max_examples=200, deadline=None)
def test_no_other_scripts_digits_become_numbers(raw):
    for parse in (lambda r: parse_id(r, "x"), lambda r: parse_port(r, "x"),
                  lambda r: parse_limit(r, "x", default=1), lambda r: parse_cursor(r, "x")):
        with pytest.raises(BadInput):
            parse(raw)
    with pytest.raises(BadInput):
        parse_who(raw)


@given(st.integers(min_value=-(10**30), max_value=10**30))
@settings(max_examples=200, deadline=None)
def test_any_integer_is_an_id_exactly_when_it_fits_bigint(number):
    if 1 <= number <= MAX_ID:
        assert parse_id(str(number), "x") == number
        assert parse_who(str(number)) == Who(None, number)
    else:
        with pytest.raises(BadInput):
            parse_id(str(number), "x")
        with pytest.raises(BadInput):
            parse_who(str(number))


def test_limits_are_refused_outside_their_range_never_clamped():
    assert parse_limit(None, "limit", default=50) == 50 and parse_limit("", "limit", default=50) == 50
    assert parse_limit(str(MAX_LIMIT), "limit", default=50) == MAX_LIMIT
    for raw in ("0", str(MAX_LIMIT + 1), "-5", "²"):
        with pytest.raises(BadInput):
            parse_limit(raw, "limit", default=50)


def test_ports():
    assert parse_port("0", "--port") == 0 and parse_port("65535", "--port") == 65535
    with pytest.raises(BadInput, match="--port"):
        parse_port("65536", "--port")


@pytest.mark.parametrize("email", ["alice@example.com", "Alice.B+tag@mail.example.org", "jürgen@bücher.de",
                                   "²@example.com"])
def test_well_formed_emails(email):
    assert is_email(email) and normalize_email(f"  {email} ") == email
    assert parse_who(email) == Who(email.lower(), None)


@pytest.mark.parametrize("email", ["a@b", "a@b.", "a@.b", "@example.com", "alice@", "a b@example.com",
                                   "alice@example.com\x00", "ali\u200bce@example.com", "a@b@example.com",
                                   "<mailto:a@example.com>", "a@example.com,b@example.com", "\udcff@example.com",
                                   "a" * 310 + "@example.com", "alice@exa\u202emple.com"])
def test_malformed_emails_are_refused_by_every_rule(email):
    assert not is_email(email)
    with pytest.raises(BadEmail):
        normalize_email(email)
    with pytest.raises(BadInput):
        parse_who(email)


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_who_is_an_email_an_id_or_a_usage_error(text):
    try:
        who = parse_who(text)
    except BadInput as exc:
        assert exc.code == "bad_argument" and str(exc)
        return
    if who.athlete_id is not None:
        assert text.strip().isascii() and text.strip().isdigit() and 1 <= who.athlete_id <= MAX_ID
    else:
        assert who.email == text.strip().lower() and is_email(text.strip())


def test_text_filters_refuse_control_characters_and_huge_values():
    assert parse_text(None, "actor") is None and parse_text("cli:root", "actor") == "cli:root"
    for raw in ("a\x00b", "\udcff", "x" * 321):
        with pytest.raises(BadInput, match="actor"):
            parse_text(raw, "actor")


def test_forms_are_parsed_strictly():
    assert parse_form(b"a=1&b=%C3%A9&c=") == {"a": "1", "b": "é", "c": ""}
    assert parse_form(b"") == {}
    for body in (b"a=%FF", b"\xff=1", b"a=1&&b=2", b"novalue"):
        with pytest.raises(BadInput):
            parse_form(body)


def test_json_objects_only():
    assert parse_json_object('{"a": 1}') == {"a": 1}
    for text in ("{", "[1]", "1", '"x"', "[" * 100_000):
        with pytest.raises(BadInput):
            parse_json_object(text)


def test_our_row_ids_fit_an_integer_column():
    assert parse_row_id(str(MAX_ROW_ID), "job id") == MAX_ROW_ID == 2**31 - 1
    with pytest.raises(BadInput, match="job id"):
        parse_row_id(str(MAX_ROW_ID + 1), "job id")
    assert parse_cursor(str(MAX_ROW_ID), "before") == MAX_ROW_ID
    with pytest.raises(BadInput):
        parse_cursor(str(MAX_ROW_ID + 1), "before")


def test_recorded_text_holds_nothing_a_database_refuses():
    assert storable("diagnose alice@example.com\x00", 320) == "diagnose alice@example.com\ufffd"
    assert storable("\udcff" + "x" * 400, 320) == "\ufffd" + "x" * 319
    assert storable(None, 10) is None and storable("jürgen ²", 320) == "jürgen ²"


# --- WHO and whole numbers from a JSON body (the access-token endpoint) ---------------------------

@given(st.integers())
def test_a_json_number_is_an_athlete_id_exactly_when_it_fits_bigint(number):
    if 1 <= number <= MAX_ID:
        assert parse_who_value(number) == Who(None, number)
    else:
        with pytest.raises(BadInput):
            parse_who_value(number)


@pytest.mark.parametrize("raw", [True, False, None, 1.0, 1.5, float("nan"), float("inf"), [], {}, [1], {"who": 1}])
def test_who_from_json_refuses_bools_fractions_and_containers(raw):
    with pytest.raises(BadInput) as info:
        parse_who_value(raw)
    assert len(str(info.value)) < 200


@given(odd_digits)
def test_who_from_json_refuses_other_scripts_digits(text):
    with pytest.raises(BadInput):
        parse_who_value(text)


def test_who_from_json_strings_follow_the_who_rule():
    assert parse_who_value("Alice@Example.com") == Who("alice@example.com", None)
    assert parse_who_value("12345") == Who(None, 12345)


@pytest.mark.parametrize("raw", [True, False, "5", 5.0, None, [5], float("nan")])
def test_json_whole_numbers_are_json_integers_only(raw):
    with pytest.raises(BadInput) as info:
        parse_json_whole_number(raw, "min_valid_s", low=0, high=3600)
    assert "min_valid_s" in str(info.value)


def test_json_whole_numbers_are_bounded():
    assert parse_json_whole_number(0, "n", low=0, high=10) == 0
    assert parse_json_whole_number(10, "n", low=0, high=10) == 10
    for raw in (-1, 11, 10**4000):
        with pytest.raises(BadInput) as info:
            parse_json_whole_number(raw, "n", low=0, high=10)
        assert len(str(info.value)) < 120


@pytest.mark.parametrize("raw", ["0001-01-01T00:00:00+01:00", "0001-01-01T00:59+01:00", "9999-12-31T23:30:00-01:00"])
def test_a_time_that_leaves_the_calendar_in_utc_is_bad_input(raw):
    """Python's datetime ends at year 1 and 9999: the conversion to UTC raised OverflowError (a 500)."""
    with pytest.raises(BadInput, match="since"):
        parse_since(raw, "since")


def test_a_key_named_twice_is_refused_only_where_asked():
    body = '{"who": "a@example.com", "nested": {"x": 1, "x": 2}}'
    assert parse_json_object(body)["nested"] == {"x": 2}  # Strava's and Slack's bodies: as json.loads
    with pytest.raises(BadInput, match="'x' more than once"):
        parse_json_object(body, unique_keys=True)
