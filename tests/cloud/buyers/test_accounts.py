"""Buyer accounts on both databases: codes (sent through the outbox, expiring, resent no sooner
than a minute, limited per number and per address, never telling whether a number is
registered), registration, sign-in by code and by password, the lockout both count towards,
passwords set, changed and reset by SMS, the e-mail address. Times are explicit."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.buyers import accounts, codes, sessions
from cloud.buyers.contacts import mask_email, mask_mobile, normalize_mobile
from cloud.buyers.errors import BuyerError
from cloud.buyers.tables import buyer_codes, buyers
from tests.cloud.buyers.buyerkit import (
    ADDRESS,
    MOBILE,
    NOW,
    PASSWORD,
    ask,
    last_code,
    new_buyer,
    sent,
)

OTHER = "13900139000"


def _code(engine, purpose, code, mobile=MOBILE, now=NOW):
    return codes.check_code(engine, mobile=mobile, purpose=purpose, code=code, now=now)


def _refused(expected: str, call, *args, **kwargs) -> BuyerError:
    with pytest.raises(BuyerError) as e:
        call(*args, **kwargs)
    assert e.value.code == expected, e.value
    return e.value


@pytest.mark.parametrize("given", ["13800138000", "+86 138-0013-8000", "0086 13800138000",
                                   "8613800138000", "１３８００１３８０００", "(138) 0013 8000"])
def test_a_mainland_mobile_number_is_normalised(given):
    assert normalize_mobile(given) == "13800138000"
    assert mask_mobile("13800138000") == "138****8000"


@pytest.mark.parametrize("given", ["12800138000", "1380013800", "138001380001", "+1 13800138000",
                                   "1380013800a", "", None, 13800138000])
def test_anything_else_is_not_a_mobile_number(given):
    _refused("bad_mobile", normalize_mobile, given)


def test_a_register_code_goes_out_through_the_outbox_and_registers_once(engine):
    ask(engine, "register")
    [(kind, params)] = sent(engine)
    assert kind == "register_code" and params["minutes"] == 5 and len(params["code"]) == 6
    with engine.connect() as conn:
        stored = conn.execute(sa.select(buyer_codes)).one()
    assert params["code"] not in stored.code_hash
    assert stored.expires_at == NOW + timedelta(minutes=5)
    assert _code(engine, "register", params["code"]) == MOBILE
    with engine.begin() as conn:
        buyer_id = accounts.register(conn, mobile="+86 138 0013 8000", code=params["code"],
                                     language="en", now=NOW)
        row = conn.execute(sa.select(buyers)).one()
        assert MOBILE not in row.sealed_mobile and MOBILE not in row.mobile_hash
        me = accounts.profile(conn, buyer_id)
    assert (me.mobile, me.language, me.has_password, me.identity_id) == (MOBILE, "en", False,
                                                                         None)
    assert me.masked().mobile == "138****8000"
    # the code is spent: it registers nothing twice
    _refused("bad_code", _code, engine, "register", params["code"])
    with engine.begin() as conn:
        _refused("bad_code", accounts.register, conn, mobile=MOBILE, code=params["code"],
                 now=NOW)


def test_a_code_expires_after_five_minutes(engine):
    ask(engine, "register")
    code = last_code(engine)
    _refused("bad_code", _code, engine, "register", code, now=NOW + timedelta(minutes=5))
    assert _code(engine, "register", code, now=NOW + timedelta(minutes=4, seconds=59))


def test_a_new_code_is_sent_no_sooner_than_a_minute_and_replaces_the_last(engine):
    ask(engine, "register")
    first = last_code(engine)
    e = _refused("code_too_soon", ask, engine, "register", now=NOW + timedelta(seconds=59))
    assert (e.status, e.params) == (429, {"seconds": 60})
    assert len(sent(engine)) == 1
    ask(engine, "register", now=NOW + timedelta(seconds=60))
    second = last_code(engine)
    later = NOW + timedelta(seconds=61)
    if first != second:
        _refused("bad_code", _code, engine, "register", first, now=later)
    assert _code(engine, "register", second, now=later) == MOBILE


def test_codes_are_limited_per_number(engine):
    for n in range(3):
        ask(engine, "register", now=NOW + timedelta(minutes=n), address=f"198.51.100.{n}",
            per_number=3)
    _refused("code_rate_limited", ask, engine, "register", now=NOW + timedelta(minutes=3),
             address="198.51.100.9", per_number=3)
    assert len(sent(engine)) == 3
    # another number is not held back, and the window ends
    ask(engine, "register", OTHER, now=NOW + timedelta(minutes=3), per_number=3)
    ask(engine, "register", now=NOW + timedelta(hours=1), per_number=3)
    assert len(sent(engine)) == 4


def test_codes_are_limited_per_client_address(engine):
    numbers = [f"1390013900{n}" for n in range(4)]
    for number in numbers[:3]:
        ask(engine, "register", number, per_address=3)
    _refused("code_rate_limited", ask, engine, "register", numbers[3], per_address=3)
    assert sent(engine, numbers[3]) == []
    ask(engine, "register", numbers[3], address="198.51.100.1", per_address=3)
    assert len(sent(engine, numbers[3])) == 1


def test_asking_for_a_code_never_tells_whether_the_number_is_registered(engine):
    new_buyer(engine)
    later = NOW + timedelta(minutes=10)
    # to sign in or reset: the same answer; only an account gets a message
    for purpose in ("sign_in", "password_reset"):
        assert ask(engine, purpose, now=later) is None
        assert ask(engine, purpose, OTHER, now=later) is None
    assert [k for k, _ in sent(engine)] == ["register_code", "sign_in_code",
                                            "password_reset_code"]
    assert sent(engine, OTHER) == []
    # the resend limit holds for a number without an account just the same
    _refused("code_too_soon", ask, engine, "sign_in", OTHER, now=later + timedelta(seconds=5))
    _refused("code_too_soon", ask, engine, "sign_in", now=later + timedelta(seconds=5))
    # a code to sign in to a number without an account is simply wrong
    _refused("bad_code", _code, engine, "sign_in", "123456", mobile=OTHER, now=later)
    # to register: sent either way; only the holder of the code learns the number is taken
    ask(engine, "register", now=later)
    code = last_code(engine)
    _code(engine, "register", code, now=later)
    with engine.begin() as conn:
        _refused("mobile_taken", accounts.register, conn, mobile=MOBILE, code=code, now=later)


def test_sign_in_by_code_starts_a_session(engine):
    buyer_id = new_buyer(engine)
    ask(engine, "sign_in", now=NOW + timedelta(minutes=1))
    got, token = accounts.sign_in_by_code(engine, mobile=MOBILE, code=last_code(engine),
                                          user_agent="Phone/1.0", address=ADDRESS,
                                          now=NOW + timedelta(minutes=2))
    assert got == buyer_id and token.startswith("wkb_")
    with engine.begin() as conn:
        assert sessions.check_session(conn, token, NOW + timedelta(minutes=3)).buyer_id == buyer_id
        [listed] = sessions.list_sessions(conn, buyer_id, NOW + timedelta(minutes=3))
    assert (listed.user_agent, listed.address_masked) == ("Phone/1.0", "203.0.113.*")


def test_wrong_codes_count_on_the_code_and_towards_the_lockout(engine):
    buyer_id = new_buyer(engine)
    at = NOW + timedelta(minutes=1)
    ask(engine, "sign_in", now=at)
    good = last_code(engine)
    wrong = f"{(int(good) + 1) % 10**6:06d}"
    for _ in range(4):
        _refused("bad_code", _code, engine, "sign_in", wrong, now=at)
    with engine.connect() as conn:
        assert conn.execute(sa.select(buyer_codes.c.attempts).where(
            buyer_codes.c.purpose == "sign_in")).scalar() == 4
        assert conn.execute(sa.select(buyers.c.failed_sign_ins)).scalar() == 4
    _refused("bad_code", _code, engine, "sign_in", wrong, now=at)
    # the fifth wrong try locked the account: even the right code is refused now
    _refused("buyer_locked", accounts.sign_in_by_code, engine, mobile=MOBILE, code=good, now=at)
    # and once the lockout is over, that code is dead (five wrong tries): a new one works
    later = at + timedelta(minutes=16)
    _refused("bad_code", accounts.sign_in_by_code, engine, mobile=MOBILE, code=good, now=later)
    ask(engine, "sign_in", now=later)
    got, _ = accounts.sign_in_by_code(engine, mobile=MOBILE, code=last_code(engine), now=later)
    assert got == buyer_id


def test_sign_in_by_password_and_a_lockout_counting_passwords_and_codes(engine):
    buyer_id = new_buyer(engine, password=PASSWORD)
    assert accounts.sign_in_by_password(engine, mobile=MOBILE, password=PASSWORD,
                                        now=NOW)[0] == buyer_id
    no_password = new_buyer(engine, OTHER)
    _refused("bad_sign_in", accounts.sign_in_by_password, engine, mobile=OTHER,
             password=PASSWORD, now=NOW)
    _refused("bad_sign_in", accounts.sign_in_by_password, engine, mobile="13700137000",
             password=PASSWORD, now=NOW)
    at = NOW + timedelta(minutes=1)
    for _ in range(3):
        _refused("bad_sign_in", accounts.sign_in_by_password, engine, mobile=MOBILE,
                 password="not the password at all", now=at)
    ask(engine, "sign_in", now=at)
    for _ in range(2):
        _refused("bad_code", _code, engine, "sign_in", "000000", now=at)
    _refused("buyer_locked", accounts.sign_in_by_password, engine, mobile=MOBILE,
             password=PASSWORD, now=at)
    assert accounts.sign_in_by_password(engine, mobile=MOBILE, password=PASSWORD,
                                        now=at + timedelta(minutes=15))[0] == buyer_id
    with engine.connect() as conn:
        assert conn.execute(sa.select(buyers.c.failed_sign_ins).where(
            buyers.c.id == buyer_id)).scalar() == 0
        assert accounts.profile(conn, no_password).has_password is False


def test_a_password_follows_the_policy_and_changing_it_ends_the_other_sessions(engine):
    buyer_id = new_buyer(engine)
    with engine.begin() as conn:
        keep = sessions.start_session(conn, buyer_id, now=NOW)
        other = sessions.start_session(conn, buyer_id, now=NOW)
        kept = sessions.check_session(conn, keep, NOW).session_id
        _refused("password_too_short", accounts.set_password, conn, buyer_id, "short", now=NOW)
        _refused("password_too_weak", accounts.set_password, conn, buyer_id, "password1234",
                 now=NOW)
        _refused("password_has_username", accounts.set_password, conn, buyer_id,
                 f"x{MOBILE}yz", now=NOW)
        # the first password needs no current one
        assert accounts.set_password(conn, buyer_id, PASSWORD, session_id=kept, now=NOW) == 1
        _refused("bad_session", sessions.check_session, conn, other, NOW)
        assert sessions.check_session(conn, keep, NOW).buyer_id == buyer_id
        # a change does
        new = "a different long passphrase"
        _refused("wrong_password", accounts.set_password, conn, buyer_id, new, now=NOW)
        _refused("wrong_password", accounts.set_password, conn, buyer_id, new,
                 current="wrong one entirely", now=NOW)
        accounts.set_password(conn, buyer_id, new, current=PASSWORD, session_id=kept, now=NOW)
    accounts.sign_in_by_password(engine, mobile=MOBILE, password=new, now=NOW)


def test_a_password_reset_by_sms_ends_every_session_and_lifts_a_lockout(engine):
    buyer_id = new_buyer(engine, password=PASSWORD)
    _, token = accounts.sign_in_by_password(engine, mobile=MOBILE, password=PASSWORD, now=NOW)
    for _ in range(5):
        _refused("bad_sign_in", accounts.sign_in_by_password, engine, mobile=MOBILE,
                 password="not the password at all", now=NOW)
    at = NOW + timedelta(minutes=1)
    ask(engine, "password_reset", now=at)
    [*_, (kind, params)] = sent(engine)
    assert kind == "password_reset_code"
    new = "a different long passphrase"
    _code(engine, "password_reset", params["code"], now=at)
    with engine.begin() as conn:
        _refused("password_too_short", accounts.reset_password, conn, mobile=MOBILE,
                 code=params["code"], new="short", now=at)
    with engine.begin() as conn:
        assert accounts.reset_password(conn, mobile=MOBILE, code=params["code"], new=new,
                                       now=at) == buyer_id
        _refused("bad_session", sessions.check_session, conn, token, at)
    assert accounts.sign_in_by_password(engine, mobile=MOBILE, password=new, now=at)[0] == buyer_id
    _refused("bad_sign_in", accounts.sign_in_by_password, engine, mobile=MOBILE,
             password=PASSWORD, now=at)
    # the code reset once
    with engine.begin() as conn:
        _refused("bad_code", accounts.reset_password, conn, mobile=MOBILE, code=params["code"],
                 new="yet another long passphrase", now=at)


def test_sessions_are_listed_ended_one_by_one_or_all_but_this_and_expire(engine):
    buyer_id, other_buyer = new_buyer(engine), new_buyer(engine, OTHER)
    with engine.begin() as conn:
        tokens = [sessions.start_session(conn, buyer_id, user_agent=f"Phone/{n}\x00",
                                         address=a, now=NOW)
                  for n, a in enumerate([ADDRESS, "2001:db8:1:2::7", "not an address"])]
        ids = [sessions.check_session(conn, t, NOW).session_id for t in tokens]
        listed = sessions.list_sessions(conn, buyer_id, NOW)
        assert [s.id for s in listed] == ids[::-1]
        assert [s.address_masked for s in listed] == [None, "2001:db8:1::/48", "203.0.113.*"]
        assert listed[-1].user_agent == "Phone/0"
        _refused("unknown_buyer_session", sessions.end_session, conn, other_buyer, ids[0])
        sessions.end_session(conn, buyer_id, ids[0], NOW)
        _refused("bad_session", sessions.check_session, conn, tokens[0], NOW)
        assert sessions.end_sessions(conn, buyer_id, keep=ids[1], now=NOW) == 1
        _refused("bad_session", sessions.check_session, conn, tokens[2], NOW)
        assert [s.id for s in sessions.list_sessions(conn, buyer_id, NOW)] == [ids[1]]
        # idle for a week, or past thirty days whatever happens, a session is over
        idle = sessions.start_session(conn, buyer_id, now=NOW)
        _refused("bad_session", sessions.check_session, conn, idle, NOW + timedelta(days=7))
        at = NOW
        while at + timedelta(days=6) < NOW + timedelta(days=30):
            at += timedelta(days=6)
            sessions.check_session(conn, tokens[1], at)
        _refused("bad_session", sessions.check_session, conn, tokens[1],
                 NOW + timedelta(days=30))
        # a staff token, or anything else, is no buyer's session
        _refused("bad_session", sessions.check_session, conn, "wkt_" + tokens[1][4:], NOW)


def test_the_e_mail_address_is_optional_sealed_and_masked(engine):
    buyer_id = new_buyer(engine)
    with engine.begin() as conn:
        assert accounts.profile(conn, buyer_id).email is None
        _refused("bad_email", accounts.set_email, conn, buyer_id, "not an address")
        _refused("bad_email", accounts.set_email, conn, buyer_id, "a@b")
        accounts.set_email(conn, buyer_id, " Buyer@Example.COM ")
        row = conn.execute(sa.select(buyers)).one()
        assert "buyer" not in row.sealed_email.lower() and row.email_hash
        me = accounts.profile(conn, buyer_id)
        assert (me.email, me.masked().email) == ("buyer@example.com", "b****@example.com")
        assert [p.email for p, _ in accounts.list_buyers(conn)] == ["b****@example.com"]
        accounts.set_email(conn, buyer_id, None)
        assert accounts.profile(conn, buyer_id).email is None
    assert mask_email("a@example.com") == "a*@example.com"


def test_a_disabled_account_gets_no_code_and_cannot_sign_in(engine):
    buyer_id = new_buyer(engine, password=PASSWORD)
    with engine.begin() as conn:
        token = sessions.start_session(conn, buyer_id, now=NOW)
        conn.execute(sa.update(buyers).values(state="disabled"))
    ask(engine, "sign_in", now=NOW + timedelta(minutes=2))
    assert [k for k, _ in sent(engine)] == ["register_code"]
    _refused("bad_sign_in", accounts.sign_in_by_password, engine, mobile=MOBILE,
             password=PASSWORD, now=NOW)
    with engine.begin() as conn:
        _refused("bad_session", sessions.check_session, conn, token, NOW)


def test_the_worker_forgets_codes_and_sessions_long_over(engine):
    from cloud.buyers.tables import buyer_sessions

    buyer_id = new_buyer(engine)
    ask(engine, "sign_in", now=NOW + timedelta(minutes=1))
    with engine.begin() as conn:
        sessions.start_session(conn, buyer_id, now=NOW)
        assert codes.tidy_codes(conn, NOW + timedelta(hours=24)) == 0
        assert codes.tidy_codes(conn, NOW + timedelta(hours=24, minutes=6)) == 1
        assert codes.tidy_codes(conn, NOW + timedelta(hours=24, minutes=7)) == 1
        assert sessions.tidy_accounts(conn, NOW + timedelta(days=60)) == 0
        assert sessions.tidy_accounts(conn, NOW + timedelta(days=60, seconds=1)) == 1
        assert conn.execute(sa.select(buyer_codes)).all() == []
        assert conn.execute(sa.select(buyer_sessions)).all() == []
