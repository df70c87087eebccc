"""Helpers for the finance pages' and the partner portal's tests: a page-test hub with a
finance account (no second step, as the test's roles say), two partners and a few entries
posted to the journal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

from cloud.ledger import chart
from cloud.ledger.journal import Facts, Leg, post
from cloud.ledger.partners import add_portal_user, create_partner
from cloud.ledger.reconciliation import CHINA, StatementLine, reconcile
from cloud.ledger.settlement import run_settlement, settle_partner, start_run
from cloud.staff import staff as staff_module
from cloud.staff.staff import create_staff
from tests.cloud.pagekit import PASSWORD, _hashed, build_hub

NOW = datetime.now(UTC).replace(microsecond=0)


def sale(partner_id: int, amount: int, fee: int) -> list[Leg]:
    return [Leg(chart.clearing("wechat"), amount, "clearing"),
            Leg(chart.payable(partner_id), -(amount - fee), "organiser"),
            Leg(chart.PLATFORM_REVENUE, -fee, "platform")]


def add_partner(conn, code: str, name: str) -> int:
    return create_partner(conn, code, name, "organiser", 0, "test", NOW - timedelta(days=3))


def build_ledger_hub(url: str, settled: bool = False):
    """The page hub, with ``finance-user`` and ``finance2-user`` (role finance) and two
    partners, ORG and RIVAL, each paid for one sale (entries ``payment:1`` and
    ``payment:2``), each with a portal user (``org-user``, ``rival-user``); with
    ``settled``, a settlement run by finance-user has made a statement for each."""
    hub = build_hub(url)
    hub.app.config["TOTP_REQUIRED_ROLES"] = ()  # the test signs in with passwords only
    with hub.engine.begin() as conn:
        with mock.patch.object(staff_module, "hash_password", _hashed):
            hub.staff["finance"] = create_staff(conn, "finance-user", PASSWORD, "finance",
                                                actor="test")
            hub.staff["finance2"] = create_staff(conn, "finance2-user", PASSWORD, "finance",
                                                 actor="test")
        for code in (chart.clearing("wechat"), chart.PLATFORM_REVENUE, chart.BANK):
            chart.ensure(conn, code, now=NOW - timedelta(days=3))
        hub.org = add_partner(conn, "ORG", "Orchard Live")
        hub.rival = add_partner(conn, "RIVAL", "Rival Promotions")
        post(conn, "payment:1", "payment", sale(hub.org, 10_000, 500),
             facts=Facts(provider="wechat", reference="W-ORG-0001", channel="web"),
             now=NOW - timedelta(days=2))
        post(conn, "payment:2", "payment", sale(hub.rival, 7_000, 300),
             facts=Facts(provider="wechat", reference="W-RIVAL-0002", channel="box_office"),
             now=NOW - timedelta(days=2))
        with mock.patch("cloud.ledger.partners.hash_password", _hashed):
            hub.org_user = add_portal_user(conn, hub.org, "org-user", "Li Lei", PASSWORD,
                                           "test", NOW)
            hub.rival_user = add_portal_user(conn, hub.rival, "rival-user", "Han Meimei",
                                             PASSWORD, "test", NOW)
    if settled:
        hub.run = run_settlement(hub.engine, NOW - timedelta(hours=1),
                                 f"staff:{hub.staff['finance']}", NOW)
    return hub


def ledger_sample(conn, now: datetime) -> None:
    """One partner paid for one sale and settled: account 1, entry 1 and statement 1 exist
    (the query fuzz's)."""
    for code in (chart.clearing("wechat"), chart.PLATFORM_REVENUE, chart.BANK):
        chart.ensure(conn, code, now=now)
    partner_id = add_partner(conn, "FUZZ", "Fuzz Partner")
    post(conn, "payment:fuzz", "payment", sale(partner_id, 1_000, 50),
         facts=Facts(provider="wechat", reference="W-FUZZ"), now=now - timedelta(hours=1))
    settle_partner(conn, start_run(conn, now, "test", now), partner_id, now)
    day = (now - timedelta(hours=1)).astimezone(CHINA).date()
    reconcile(conn, "wechat", day, [StatementLine("payment", "W-FUZZ", 999)], "test", now)


def reconcile_day(conn, when: datetime):
    """The provider's statement of the day of ``when`` (China time), differing from the
    ledger three ways: ORG's payment of 100.00 listed at 90.00, RIVAL's not listed, and a
    payment the ledger never heard of; the exceptions by kind."""
    day = when.astimezone(CHINA).date()
    imported = reconcile(conn, "wechat", day, [StatementLine("payment", "W-ORG-0001", 9_000),
                                               StatementLine("payment", "W-LOST-0003", 5_000)],
                         "test", NOW)
    return {x.kind: x for x in imported.exceptions}
