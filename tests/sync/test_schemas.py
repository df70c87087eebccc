"""The sync contract's schemas and secrets, without a hub: the closed sets agree with the
edge's enums, the checks name the field, and guessable secrets are refused."""

from __future__ import annotations

import random
import string
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.engine import ScanKind
from edge.reasons import Reason
from sync import credentials, schemas
from sync.ids import uuid7
from sync.timeutil import to_iso, utcnow


def test_the_closed_sets_are_the_edges():
    assert set(schemas.REASONS) == {r.value for r in Reason}
    assert set(schemas.SCAN_KINDS) == {k.value for k in ScanKind}
    assert "manual" in schemas.SCAN_KINDS


def entry(**over):
    return {"id": str(uuid7()), "seq": 1, "at": to_iso(utcnow()), "lane": "N1",
            "direction": "in", "ticket_id": 1, "session_id": 1, "admitted": True,
            "reason": "OK", "cursor": 0, **over}


def test_times_within_a_year_of_the_hubs_clock():
    now = utcnow()
    for delta in (timedelta(days=-365), timedelta(0), timedelta(days=365)):
        schemas.check("entries", {"entries": [entry(at=to_iso(now + delta))]}, now)
    for delta in (timedelta(days=-367), timedelta(days=367)):
        with pytest.raises(schemas.Invalid) as e:
            schemas.check("entries", {"entries": [entry(at=to_iso(now + delta))]}, now)
        assert e.value.field == "/entries/0/at"


def test_an_unknown_field_is_named_and_escaped_as_a_json_pointer():
    with pytest.raises(schemas.Invalid) as e:
        schemas.check("entries", {"entries": [entry(**{"a/b~c": 1})]})
    assert e.value.field == "/entries/0/a~1b~0c" and e.value.message == "unknown field"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda kids: st.lists(kids, max_size=4)
                    | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=20))
def test_anything_at_all_is_either_valid_or_invalid_with_a_field(body):
    for kind in schemas.SCHEMAS:
        try:
            schemas.check(kind, body)
        except schemas.Invalid as e:
            assert e.field == "" or e.field.startswith("/")
            assert len(e.message) < 200


def test_query_arguments_become_numbers_only_where_they_are_numbers():
    assert schemas.query_args({"since": "12", "limit": "x", "colour": "1"}) == {
        "since": 12, "limit": "x", "colour": "1"}
    assert schemas.query_args({"since": "9" * 40}) == {"since": "9" * 40}
    for text in ("--5", "-", "+5", " 5", "5 ", "٣", "0x10", "1e3"):
        assert schemas.query_args({"since": text}) == {"since": text}
    assert schemas.query_args({"since": "-5"}) == {"since": -5}


# -- secrets -----------------------------------------------------------------------------------


def test_random_secrets_pass_with_a_wide_margin():
    """Secrets shaped as ``secrets.token_urlsafe(32)`` and ``token_hex(32)`` make them, drawn
    from a seeded generator so that the test is the same every run."""
    rng = random.Random(20261206)
    urlsafe = string.ascii_letters + string.digits + "-_"
    for _ in range(2000):
        credential = "".join(rng.choice(urlsafe) for _ in range(43))
        token = "".join(rng.choice("0123456789abcdef") for _ in range(64))
        assert credentials.estimate_bits(credential) > 1.3 * credentials.MIN_BITS
        assert credentials.estimate_bits(token) > 1.3 * credentials.MIN_BITS
        credentials.check_credential(credential)
        credentials.check_token(token)


@pytest.mark.parametrize("secret", [
    "a" * 64, "0" * 64, string.ascii_letters[:43], "abc" * 20, "ab" * 40,
    (string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_")[:64],
    "0123456789abcdef" * 4, "fedcba9876543210" * 4, "Aa0" * 20,
])
def test_all_same_sequential_and_repeating_secrets_are_refused(secret):
    assert credentials.estimate_bits(secret) < credentials.MIN_BITS
    with pytest.raises(credentials.WeakSecret) as e:
        if all(c in "0123456789abcdef" for c in secret) and len(secret) == 64:
            credentials.check_token(secret)
        else:
            credentials.check_credential(secret)
    assert e.value.code == "weak_secret" and secret not in str(e.value)


# fixed values, not drawn at import: every test process must name the same tests
URLSAFE_32 = "k1jUMuVlrJNixVG6bGCEScNUQgn4nY-JJakCQ3vpWEY"  # what token_urlsafe(32) gives
HEX_32 = "b0fc53250edc3eac9af4f7eb09dd592532e2771c70c7a81e2ee66d50aa93ce42"


@pytest.mark.parametrize("secret, code", [
    ("short", "bad_credential"), ("x" * 129, "bad_credential"), (None, "bad_credential"),
    ("with space " + URLSAFE_32, "bad_credential"),
    (URLSAFE_32 + "=", "bad_credential"),
])
def test_malformed_credentials_are_refused(secret, code):
    with pytest.raises(credentials.WeakSecret) as e:
        credentials.check_credential(secret)
    assert e.value.code == code


@pytest.mark.parametrize("token", ["not-a-token", HEX_32.upper(), HEX_32[:62], HEX_32 + "ab",
                                   "", 64])
def test_malformed_tokens_are_refused(token):
    with pytest.raises(credentials.WeakSecret) as e:
        credentials.check_token(token)
    assert e.value.code == "token_malformed"


def test_the_client_never_sends_a_weak_chosen_credential():
    from sync.client import HubClient

    client = HubClient("http://127.0.0.1:9", "x" * 43)
    try:
        with pytest.raises(credentials.WeakSecret):
            client.roll("a" * 43)
        assert client.traffic.requests == 0
    finally:
        client.close()
