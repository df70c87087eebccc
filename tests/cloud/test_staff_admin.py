"""What an administrator does to staff accounts and API tokens, on both databases: every
change audited with before/after and the request's source address, the last admin kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.core.audit import audit_log, reset_source, set_source
from cloud.staff import accounts, passwords, sessions, tokens
from cloud.staff.accounts import AccountError
from cloud.staff.staff import StaffError, create_staff, login
from cloud.staff.tables import staff
from sync.timeutil import utcnow

GOOD = "correct horse battery"


@pytest.fixture
def people(engine):
    with engine.begin() as conn:
        return {role: create_staff(conn, f"{role}-user", GOOD, role, actor="test")
                for role in ("admin", "sales", "ops")}


def audit_rows(engine, action):
    with engine.connect() as conn:
        return conn.execute(sa.select(audit_log).where(audit_log.c.action == action)
                            .order_by(audit_log.c.id)).all()


def test_a_disabled_account_loses_its_sessions_and_cannot_sign_in(engine, people):
    sales = people["sales"]
    who = login(engine, "sales-user", GOOD)
    with engine.begin() as conn:
        token = sessions.start_session(conn, who)
    source = set_source("203.0.113.7")
    try:
        with engine.begin() as conn:
            assert accounts.disable_staff(conn, sales, actor=f"staff:{people['admin']}")
            assert not accounts.disable_staff(conn, sales, actor=f"staff:{people['admin']}")
    finally:
        reset_source(source)
    with engine.begin() as conn, pytest.raises(sessions.SessionEnded) as ended:
        sessions.check_session(conn, token)
    assert ended.value.reason == "ended"
    with pytest.raises(StaffError):
        login(engine, "sales-user", GOOD)
    (row,) = audit_rows(engine, "staff.disable")
    assert (row.before, row.after, row.source) == (
        {"disabled": False}, {"disabled": True, "sessions_ended": 1}, "203.0.113.7")
    with engine.begin() as conn:
        assert accounts.enable_staff(conn, sales, actor="test")
    assert login(engine, "sales-user", GOOD).role == "sales"
    (enabled,) = audit_rows(engine, "staff.enable")
    assert enabled.after == {"disabled": False} and enabled.source is None  # no request


def test_the_last_enabled_admin_can_be_neither_disabled_nor_demoted(engine, people):
    admin = people["admin"]
    with engine.begin() as conn:
        for refuse in (lambda: accounts.disable_staff(conn, admin, actor="test"),
                       lambda: accounts.change_role(conn, admin, "ops", actor="test")):
            with pytest.raises(AccountError) as err:
                refuse()
            assert err.value.code == "last_admin"
        second = create_staff(conn, "second-admin", GOOD, "admin", actor="test")
        with pytest.raises(AccountError) as err:
            accounts.disable_staff(conn, second, actor=f"staff:{second}")
        assert err.value.code == "own_account"
        assert accounts.change_role(conn, admin, "ops", actor=f"staff:{second}")
        with pytest.raises(AccountError):
            accounts.disable_staff(conn, second, actor="test")
        assert conn.execute(sa.select(staff.c.role).where(staff.c.id == admin)).scalar() == "ops"
    (row,) = audit_rows(engine, "staff.role")
    assert (row.before, row.after, row.actor) == ({"role": "admin"}, {"role": "ops"},
                                                   f"staff:{second}")


def test_a_changed_role_must_be_known(engine, people):
    with engine.begin() as conn, pytest.raises(StaffError) as err:
        accounts.change_role(conn, people["ops"], "root", actor="test")
    assert err.value.code == "bad_role"
    with engine.begin() as conn, pytest.raises(StaffError) as err:
        accounts.change_role(conn, 999, "ops", actor="test")
    assert err.value.code == "unknown_staff"


def test_a_reset_password_is_temporary_and_must_be_changed(engine, people):
    ops = people["ops"]
    who = login(engine, "ops-user", GOOD)
    with engine.begin() as conn:
        token = sessions.start_session(conn, who)
        temporary = accounts.reset_password(conn, ops, actor="test")
    with pytest.raises(StaffError):
        login(engine, "ops-user", GOOD)
    who = login(engine, "ops-user", temporary)
    with engine.begin() as conn:
        with pytest.raises(sessions.SessionEnded):
            sessions.check_session(conn, token)
        assert passwords.must_change(conn, ops)
    with engine.begin() as conn, pytest.raises(AccountError) as err:
        accounts.change_own_password(conn, ops, "not it", "Brand-new-lantern-42")
    assert err.value.code == "wrong_current_password"
    with engine.begin() as conn, pytest.raises(StaffError) as err:
        accounts.change_own_password(conn, ops, temporary, "short")
    assert err.value.code == "password_too_short"
    with engine.begin() as conn:
        accounts.change_own_password(conn, ops, temporary, "Brand-new-lantern-42")
    login(engine, "ops-user", "Brand-new-lantern-42")
    with engine.begin() as conn:
        assert not passwords.must_change(conn, ops)
    (reset,) = audit_rows(engine, "staff.password_reset")
    assert reset.after == {"must_change": True, "sessions_ended": 1}
    dump = str(audit_rows(engine, "staff.password_reset") +
               audit_rows(engine, "staff.password"))
    assert temporary not in dump and "Brand-new-lantern-42" not in dump


def test_ending_all_sessions_and_the_last_sign_in(engine, people):
    sales = people["sales"]
    now = utcnow()
    who = login(engine, "sales-user", GOOD)
    with engine.begin() as conn:
        for _ in range(2):
            sessions.start_session(conn, who)
        accounts.note_sign_in(conn, sales, "2001:db8::1", now)
        assert accounts.end_all_sessions(conn, sales, actor="test") == 2
        assert accounts.end_all_sessions(conn, sales, actor="test") == 0
        row = conn.execute(sa.select(staff.c.last_sign_in_at, staff.c.last_sign_in_from)
                           .where(staff.c.id == sales)).one()
    assert row.last_sign_in_at == now and row.last_sign_in_from == "2001:db8::1"
    assert [r.after for r in audit_rows(engine, "staff.sessions_end")] == [
        {"sessions_ended": 2}, {"sessions_ended": 0}]
    assert audit_rows(engine, "staff.sign_in")[0].after == {"from": "2001:db8::1"}


def test_tokens_are_shown_once_scoped_expiring_and_revocable(engine, people):
    admin, sales = people["admin"], people["sales"]
    now = utcnow()
    with engine.begin() as conn:
        plain_id, plain = tokens.create_token(conn, sales, "till", actor="test")
        scoped_id, scoped = tokens.create_token(conn, admin, "report", actor="test",
                                                roles=("sales", "ops"))
        _, brief = tokens.create_token(conn, admin, "brief", actor="test",
                                       expires_at=now + timedelta(hours=1))
        listed = tokens.list_tokens(conn)
    assert [t.name for t in listed] == ["till", "report", "brief"]
    assert plain not in str(listed) and "token_hash" not in listed[0]._fields
    with engine.connect() as conn:
        assert tokens.bearer(conn, plain).roles == ("sales",)
        who = tokens.bearer(conn, scoped)
        assert who.roles == ("sales", "ops") and who.staff.role == "admin"
        # what the token may do: its roles' permissions (selling), never its owner's others
        assert "tickets.sell" in who.permissions and "staff.manage" not in who.permissions
        assert tokens.bearer(conn, brief, now).staff.id == admin
        with pytest.raises(StaffError):
            tokens.bearer(conn, brief, now + timedelta(hours=2))
    with engine.begin() as conn:
        assert tokens.revoke_token(conn, plain_id, actor="test")
        assert not tokens.revoke_token(conn, plain_id, actor="test")
        with pytest.raises(StaffError):
            tokens.bearer(conn, plain)
    (made,) = [r for r in audit_rows(engine, "token.create") if r.subject ==
               f"token:{scoped_id}"]
    assert made.after["roles"] == "sales,ops" and scoped not in str(made)
    assert audit_rows(engine, "token.revoke")[0].before == {"revoked_at": None}


def test_a_token_carries_only_roles_its_owner_has(engine, people):
    with engine.begin() as conn:
        for kwargs, code in (({"roles": ("admin",)}, "bad_token_roles"),
                             ({"expires_at": utcnow() - timedelta(seconds=1)}, "bad_expiry")):
            with pytest.raises(tokens.TokenError) as err:
                tokens.create_token(conn, people["sales"], "x", actor="test", **kwargs)
            assert err.value.code == code
        with pytest.raises(tokens.TokenError) as err:
            tokens.create_token(conn, people["sales"], " ", actor="test")
        assert err.value.code == "bad_token_name"
        _, token = tokens.create_token(conn, people["ops"], "wall", actor="test")
        _, ops_scoped = tokens.create_token(conn, people["admin"], "o", actor="test",
                                            roles=("admin",))
        second = create_staff(conn, "second-admin", GOOD, "admin", actor="test")
        accounts.change_role(conn, people["admin"], "ops", actor=f"staff:{second}")
        # the owner lost the admin role: a token scoped to admin stops working
        with pytest.raises(StaffError):
            tokens.bearer(conn, ops_scoped)
        accounts.disable_staff(conn, people["ops"], actor="test")
        with pytest.raises(StaffError):
            tokens.bearer(conn, token)
        with pytest.raises(tokens.TokenError) as err:
            tokens.revoke_token(conn, 999, actor="test")
        assert err.value.code == "unknown_token"
