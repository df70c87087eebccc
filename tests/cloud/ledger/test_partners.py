"""Partners, their portal users and split rules, on both databases: every field checked, every
change audited, a rule never edited (it ends and another starts), and only an active user of
an active partner signs in to the portal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.events import create_event
from cloud.core.audit import audit_log
from cloud.core.errors import HubError
from cloud.ledger import chart
from cloud.ledger.errors import LedgerError
from cloud.ledger.journal import accounts
from cloud.ledger.partners import (
    PortalUser,
    add_portal_user,
    add_rule,
    check_portal_sign_in,
    create_partner,
    edit_partner,
    end_rule,
    list_partners,
    list_rules,
    partner,
    portal_users,
    set_portal_user_state,
)
from cloud.ledger.posting import Sale, rules_for
from cloud.ledger.tables import partner_users

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
PASSWORD = "lantern-orchard-quietly-91"


def _actions(conn) -> list[str]:
    return list(conn.execute(sa.select(audit_log.c.action).order_by(audit_log.c.id)).scalars())


def test_a_partner_is_created_with_its_payable_account_and_audited(engine):
    with engine.begin() as conn:
        pid = create_partner(conn, "ORG1", "Spring Concerts", "organiser", 7, "fin", NOW)
        row = partner(conn, pid)
        assert (row.code, row.name, row.kind, row.settle_days, row.state) == (
            "ORG1", "Spring Concerts", "organiser", 7, "active")
        payable = accounts(conn, [chart.payable(pid)])[chart.payable(pid)]
        assert payable.guarded and payable.kind == "liability"
        assert _actions(conn) == ["partner.create"]
        with pytest.raises(LedgerError) as taken:
            create_partner(conn, "ORG1", "Other", "venue", 3, "fin", NOW)
        assert taken.value.code == "partner_code_taken"
        assert [p.code for p in list_partners(conn)] == ["ORG1"]


@pytest.mark.parametrize("field, args", [
    ("code", ("org 1", "N", "organiser", 7)),
    ("code", ("", "N", "organiser", 7)),
    ("name", ("ORG", " ", "organiser", 7)),
    ("kind", ("ORG", "N", "bank", 7)),
    ("settle_days", ("ORG", "N", "venue", 91)),
    ("settle_days", ("ORG", "N", "venue", -1)),
    ("settle_days", ("ORG", "N", "venue", True)),
])
def test_a_partner_with_a_bad_field_is_refused(engine, field, args):
    with engine.begin() as conn:
        with pytest.raises(LedgerError) as refused:
            create_partner(conn, *args, "fin", NOW)
        assert (refused.value.code, refused.value.params["field"]) == (
            "bad_ledger_request", field)
        assert list_partners(conn) == []


def test_editing_a_partner_changes_only_what_is_given_and_audits_before_and_after(engine):
    with engine.begin() as conn:
        pid = create_partner(conn, "VEN", "Arena", "venue", 7, "fin", NOW)
        edit_partner(conn, pid, actor="fin", now=NOW, settle_days=3, state="suspended")
        row = partner(conn, pid)
        assert (row.name, row.settle_days, row.state) == ("Arena", 3, "suspended")
        last = conn.execute(sa.select(audit_log).order_by(audit_log.c.id.desc())).first()
        assert (last.action, last.before, last.after) == (
            "partner.edit", {"settle_days": 7, "state": "active"},
            {"settle_days": 3, "state": "suspended"})
        with pytest.raises(LedgerError) as refused:
            edit_partner(conn, pid, actor="fin", now=NOW, state="gone")
        assert refused.value.params["field"] == "state"
        with pytest.raises(LedgerError) as unknown:
            edit_partner(conn, pid + 1, actor="fin", now=NOW, name="X")
        assert unknown.value.code == "unknown_partner"


def test_only_an_active_user_of_an_active_partner_signs_in(engine):
    with engine.begin() as conn:
        pid = create_partner(conn, "ORG", "Org", "organiser", 7, "fin", NOW)
        uid = add_portal_user(conn, pid, "org.clerk", "Clerk", PASSWORD, "fin", NOW)
        assert check_portal_sign_in(conn, "org.clerk", PASSWORD, NOW) == PortalUser(
            uid, pid, "org.clerk", "Clerk")
        assert portal_users(conn, pid)[0].last_sign_in_at == NOW
        assert "password_hash" not in portal_users(conn, pid)[0]._fields
        assert check_portal_sign_in(conn, "org.clerk", PASSWORD + "x", NOW) is None
        assert check_portal_sign_in(conn, "nobody", PASSWORD, NOW) is None
        set_portal_user_state(conn, uid, "disabled", "fin", NOW)
        assert check_portal_sign_in(conn, "org.clerk", PASSWORD, NOW) is None
        set_portal_user_state(conn, uid, "active", "fin", NOW)
        edit_partner(conn, pid, actor="fin", now=NOW, state="suspended")
        assert check_portal_sign_in(conn, "org.clerk", PASSWORD, NOW) is None
        edit_partner(conn, pid, actor="fin", now=NOW, state="active")
        assert check_portal_sign_in(conn, "org.clerk", PASSWORD, NOW) is not None
        assert _actions(conn)[1:] == ["partner.user_add", "partner.user_state",
                                      "partner.user_state", "partner.edit", "partner.edit"]


def test_a_portal_user_needs_a_free_name_and_a_strong_password(engine):
    with engine.begin() as conn:
        pid = create_partner(conn, "ORG", "Org", "organiser", 7, "fin", NOW)
        add_portal_user(conn, pid, "clerk", "Clerk", PASSWORD, "fin", NOW)
        with pytest.raises(LedgerError) as taken:
            add_portal_user(conn, pid, "clerk", "Clerk 2", PASSWORD, "fin", NOW)
        assert taken.value.code == "portal_username_taken"
        with pytest.raises(HubError) as weak:
            add_portal_user(conn, pid, "clerk2", "Clerk 2", "abc", "fin", NOW)
        assert weak.value.code == "password_too_short"
        with pytest.raises(LedgerError) as bad:
            add_portal_user(conn, pid, "Clerk Two", "Clerk 2", PASSWORD, "fin", NOW)
        assert bad.value.params["field"] == "username"
        with pytest.raises(LedgerError) as unknown:
            set_portal_user_state(conn, 999, "disabled", "fin", NOW)
        assert unknown.value.params["field"] == "user_id"
        hashes = conn.execute(sa.select(partner_users.c.password_hash)).scalars().all()
        assert len(hashes) == 1 and PASSWORD not in hashes[0]


def test_a_rule_change_applies_only_to_later_sales(engine):
    later = NOW + timedelta(days=10)
    with engine.begin() as conn:
        org = create_partner(conn, "ORG", "Org", "organiser", 7, "fin", NOW)
        ven = create_partner(conn, "VEN", "Venue", "venue", 7, "fin", NOW)
        add_rule(conn, part="organiser", partner_id=org, basis_points=0, fixed_per_ticket=0,
                 effective_from=NOW, actor="fin", now=NOW)
        first = add_rule(conn, part="venue", partner_id=ven, basis_points=1000,
                         fixed_per_ticket=0, effective_from=NOW, actor="fin", now=NOW)
        end_rule(conn, first, later, "fin", NOW + timedelta(days=1))
        second = add_rule(conn, part="venue", partner_id=ven, basis_points=1500,
                          fixed_per_ticket=50, effective_from=later, actor="fin",
                          now=NOW + timedelta(days=1))
        sale = Sale(None, None, "web", 2, frozenset())
        before = {r.part: r.basis_points for r in rules_for(conn, sale, "wechat",
                                                          later - timedelta(seconds=1))}
        after = {r.part: (r.basis_points, r.fixed_per_ticket)
                 for r in rules_for(conn, sale, "wechat", later)}
        assert before == {"organiser": 0, "venue": 1000}
        assert after == {"organiser": (0, 0), "venue": (1500, 50)}
        assert [r.id for r in list_rules(conn, at=later) if r.part == "venue"] == [second]
        assert [r.partner_code for r in list_rules(conn)] == ["ORG", "VEN", "VEN"]
        assert _actions(conn)[-3:] == ["split_rule.add", "split_rule.end", "split_rule.add"]


@pytest.mark.parametrize("field, change", [
    ("part", {"part": "bank"}),
    ("partner_id", {"part": "platform"}),
    ("partner_id", {"partner_id": None}),
    ("unknown_partner", {"partner_id": 999}),
    ("basis_points", {"basis_points": 10_001}),
    ("basis_points", {"basis_points": 1.5}),
    ("fixed_per_ticket", {"fixed_per_ticket": -1}),
    ("basis_points", {"part": "organiser", "basis_points": 100}),
    ("effective_from", {"effective_from": NOW - timedelta(seconds=1)}),
    ("effective_from", {"effective_from": datetime(2026, 8, 1)}),
    ("event_id", {"event_id": 999}),
    ("product_id", {"product_id": 999}),
    ("channel", {"channel": "phone"}),
    ("provider", {"provider": "We Chat"}),
])
def test_a_rule_with_a_bad_field_is_refused(engine, field, change):
    with engine.begin() as conn:
        ven = create_partner(conn, "VEN", "Venue", "venue", 7, "fin", NOW)
        args = {"part": "venue", "partner_id": ven, "basis_points": 500,
                "fixed_per_ticket": 0, "effective_from": NOW, "actor": "fin", "now": NOW}
        with pytest.raises(LedgerError) as refused:
            add_rule(conn, **{**args, **change})
        got = refused.value.params.get("field", refused.value.code)
        assert got == field
        assert list_rules(conn) == []


def test_a_rule_scoped_to_an_event_channel_and_provider_is_kept_so(engine):
    with engine.begin() as conn:
        event = create_event(conn, "EV", "Event")
        rule = add_rule(conn, part="platform", partner_id=None, basis_points=300,
                        fixed_per_ticket=0, effective_from=NOW, actor="fin", now=NOW,
                        event_id=event, channel="web", provider="alipay")
        row = list_rules(conn)[0]
        assert (row.id, row.event_id, row.channel, row.provider, row.partner_code) == (
            rule, event, "web", "alipay", None)


def test_a_rule_ends_only_forward_and_never_before_it_starts(engine):
    with engine.begin() as conn:
        ven = create_partner(conn, "VEN", "Venue", "venue", 7, "fin", NOW)
        rule = add_rule(conn, part="venue", partner_id=ven, basis_points=500,
                        fixed_per_ticket=0, effective_from=NOW + timedelta(days=2),
                        actor="fin", now=NOW)
        for until in (NOW + timedelta(days=1), NOW + timedelta(days=2)):
            with pytest.raises(LedgerError) as refused:
                end_rule(conn, rule, until, "fin", NOW)
            assert refused.value.params["field"] == "effective_until"
        end_rule(conn, rule, NOW + timedelta(days=9), "fin", NOW)
        with pytest.raises(LedgerError) as later:
            end_rule(conn, rule, NOW + timedelta(days=10), "fin", NOW)
        assert later.value.params["field"] == "effective_until"
        end_rule(conn, rule, NOW + timedelta(days=5), "fin", NOW)
        with pytest.raises(LedgerError) as past:
            end_rule(conn, rule, NOW + timedelta(days=4), "fin", NOW + timedelta(days=4, hours=1))
        assert past.value.params["field"] == "effective_until"
        assert list_rules(conn)[0].effective_until == NOW + timedelta(days=5)
        with pytest.raises(LedgerError) as unknown:
            end_rule(conn, 999, NOW + timedelta(days=5), "fin", NOW)
        assert unknown.value.code == "unknown_rule"
