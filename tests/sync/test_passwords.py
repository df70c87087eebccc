"""The one password policy of hub and appliance (sync/passwords.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync.passwords import (
    MIN_SCORE,
    Policy,
    WeakPassword,
    check_not_reused,
    check_strength,
    expired,
)


@pytest.mark.parametrize("password", ["1234567890", "qwertyuiop", "password12", "aaaaaaaaaaaa",
                                      "wicketwicket", "iloveyou2026"])
def test_the_first_guesses_of_any_cracker_are_refused_whatever_their_length(password):
    with pytest.raises(WeakPassword) as e:
        check_strength(password, "li")
    assert e.value.code == "password_too_weak"
    assert e.value.params["min_score"] == MIN_SCORE and e.value.params["score"] < MIN_SCORE


@pytest.mark.parametrize("password", ["a long passphrase of plain words", "Lantern-Harbor-81",
                                      "correct horse battery"])
def test_a_passphrase_is_strong_without_capitals_or_symbols(password):
    check_strength(password, "li")


def test_the_username_and_the_site_words_are_guessed_first():
    with pytest.raises(WeakPassword) as e:
        check_strength("xX-zhangwei-Xx", "ZhangWei")
    assert e.value.code == "password_has_username"
    check_strength("Fenghuang2027", "li")  # a plain word and a year are enough, unless…
    with pytest.raises(WeakPassword) as e:
        check_strength("Fenghuang2027", "li", site_words=["fenghuang"])  # …the venue's name
    assert e.value.code == "password_too_weak"


def test_length_limits_and_the_score_setting():
    with pytest.raises(WeakPassword) as e:
        check_strength("Ab3$-x", "li")
    assert (e.value.code, e.value.params) == ("password_too_short", {"min": 10})
    with pytest.raises(WeakPassword) as e:
        check_strength("x" * 257, "li")
    assert e.value.code == "password_too_long"
    check_strength("Green-field-31" + "q" * 200, "li")  # long input is judged quickly
    check_strength("qwertyuiop", "li", Policy(min_score=0))
    with pytest.raises(ValueError):
        Policy(min_score=5)


def test_age_and_reuse_limits():
    now = datetime(2026, 12, 6, tzinfo=UTC)
    assert expired(None, now, Policy())  # set by someone else: to be changed
    assert not expired(now - timedelta(days=999), now, Policy())  # no maximum age
    assert not expired(now - timedelta(days=89), now, Policy(max_age_days=90))
    assert expired(now - timedelta(days=90), now, Policy(max_age_days=90))
    same = lambda password, stored: password == stored  # noqa: E731
    history = ["newest", "older", "oldest"]
    check_not_reused("oldest", history, same, Policy(history=2))
    check_not_reused("newest", history, same, Policy(history=0))
    with pytest.raises(WeakPassword) as e:
        check_not_reused("older", history, same, Policy(history=2))
    assert (e.value.code, e.value.params) == ("password_reused", {"history": 2})
