"""Staff accounts, lockout, API tokens and the audit log, on both databases."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud import cli
from cloud.core.audit import audit_log
from cloud.core.db import init_db
from cloud.staff.staff import (
    MAX_FAILURES,
    StaffError,
    check_password,
    create_staff,
    hash_password,
    login,
)
from cloud.staff.tables import staff
from sync.timeutil import utcnow

GOOD = "correct horse battery"


def test_password_hashes_are_salted_and_slow_to_guess():
    a, b = hash_password(GOOD), hash_password(GOOD)
    assert a != b and a.startswith("scrypt$32768$8$1$")
    assert check_password(GOOD, a) and not check_password(GOOD + "!", a)
    assert not check_password(GOOD, "md5$abc") and not check_password(GOOD, "garbage")


@pytest.mark.parametrize("password, message", [
    ("short", "at least 10"), ("alice-is-here-1", "username"), ("aaaaaaaaaaaa", "easy to guess"),
    ("1234567890", "easy to guess"), ("qwertyuiop", "easy to guess"),
    ("password12", "easy to guess"),
])
def test_password_policy(engine, password, message):
    with pytest.raises(StaffError, match=message):
        with engine.begin() as conn:
            create_staff(conn, "alice", password, "sales", actor="test")


def test_login_lockout_and_audit(engine):
    with engine.begin() as conn:
        create_staff(conn, "alice", GOOD, "sales", actor="test")
    now = utcnow()
    for _ in range(MAX_FAILURES):
        with pytest.raises(StaffError, match="wrong username or password"):
            login(engine, "alice", "not the password", now)
    with pytest.raises(StaffError) as err:
        login(engine, "alice", GOOD, now)
    assert err.value.code == "locked"
    assert login(engine, "alice", GOOD, now + timedelta(minutes=16)).role == "sales"
    with engine.connect() as conn:
        row = conn.execute(sa.select(staff.c.failed_logins, staff.c.locked_until)).one()
    assert row == (0, None)
    with pytest.raises(StaffError) as err:
        login(engine, "nobody", GOOD, now)
    assert str(err.value) == "wrong username or password"
    with engine.connect() as conn:
        actions = [r.action for r in conn.execute(sa.select(audit_log).order_by(audit_log.c.id))]
        dump = str(conn.execute(sa.select(audit_log)).all())
    assert actions == ["staff.create", "staff.locked"] and GOOD not in dump


def test_cli_create_admin_reads_the_password_from_stdin(hub_url, monkeypatch, capsys):
    init_db(hub_url)
    monkeypatch.setattr("sys.stdin", io.StringIO(GOOD + "\n"))
    assert cli.main(["--db", hub_url, "create-admin", "--username", "root-admin"]) == 0
    assert "created admin 'root-admin'" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["--db", hub_url, "create-admin", "--username", "second"]) == 2
    assert "at least 10" in capsys.readouterr().err


def test_a_new_password_passes_the_policy_and_none_of_the_last_ones_comes_back(engine):
    from cloud.staff.accounts import AccountError, change_own_password, reset_password
    from cloud.staff.passwords import must_change, policy_from

    policy = policy_from({"PASSWORD_HISTORY": "2", "PASSWORD_MAX_AGE_DAYS": "90"})
    with engine.begin() as conn:
        alice = create_staff(conn, "alice", GOOD, "sales", actor="test")
        assert not must_change(conn, alice, policy)
        with pytest.raises(AccountError) as err:
            change_own_password(conn, alice, "not the password", "Amber-signal-58", policy)
        assert err.value.code == "wrong_current_password"
        with pytest.raises(StaffError) as err:
            change_own_password(conn, alice, GOOD, "password12", policy)
        assert err.value.code == "password_too_weak"
        change_own_password(conn, alice, GOOD, "Amber-signal-58", policy)
        change_own_password(conn, alice, "Amber-signal-58", "Quiet-river-77", policy)
        with pytest.raises(StaffError) as err:  # one of the last two
            change_own_password(conn, alice, "Quiet-river-77", "Amber-signal-58", policy)
        assert err.value.code == "password_reused"
        # GOOD is now the third-newest: a history of 2 lets it come back
        change_own_password(conn, alice, "Quiet-river-77", GOOD, policy)
        assert not must_change(conn, alice, policy, now=utcnow() + timedelta(days=89))
        assert must_change(conn, alice, policy, now=utcnow() + timedelta(days=91))
        temporary = reset_password(conn, alice, "staff:1")
        assert must_change(conn, alice, policy)  # an admin chose it: alice chooses her own
        actions = [r.action for r in conn.execute(sa.select(audit_log).order_by(audit_log.c.id))]
        dump = str(conn.execute(sa.select(audit_log)).all())
    assert actions[-4:] == ["staff.password"] * 3 + ["staff.password_reset"]
    assert temporary not in dump and "Quiet-river-77" not in dump
    assert login(engine, "alice", temporary).username == "alice"
