"""The demo's money (issue 19): a sign-in to the partners' portal for the organiser, a
settlement run over what has been sold so far (each demo partner is settled daily, T+0), and
WeChat Pay's statement of the day reconciled with the ledger after the sandbox was told to
get one amount wrong — one exception for finance to look at."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import requests
import sqlalchemy as sa

from sync.timeutil import CHINA
from tools.demo.children import password

PORTAL_USER = "goc-finance"


class LedgerDemo:
    def __init__(self) -> None:
        self.portal: tuple[str, str] | None = None
        self.statements: list[str] = []
        self.exceptions: list[str] = []

    def portal_user(self, engine_factory: Callable[[], sa.Engine]) -> None:
        """The organiser's finance person, on the partners' portal."""
        from cloud.ledger.partners import add_portal_user
        from cloud.ledger.tables import partners
        from sync.timeutil import utcnow

        secret = password()
        engine = engine_factory()
        try:
            with engine.begin() as conn:
                organiser = conn.execute(sa.select(partners.c.id)
                                         .where(partners.c.code == "GOC")).scalar_one()
                add_portal_user(conn, organiser, PORTAL_USER, "GOC finance", secret,
                                "system:demo", utcnow())
        finally:
            engine.dispose()
        self.portal = (PORTAL_USER, secret)

    def settle_and_reconcile(self, run: Callable[[str, list[str]], str],
                             hub: Callable[..., list[str]], sandbox_url: str) -> None:
        """``wicket-hub settle``, then the sandbox's statement with one wrong amount planted,
        through ``wicket-hub reconcile``; what each printed is kept for the banner."""
        settled = run("wicket-hub settle", hub("settle"))
        self.statements = [line.strip() for line in settled.splitlines()
                           if line.strip().startswith("statement ")]
        requests.post(f"{sandbox_url}/_sandbox/faults", json={"faults": ["bill_wrong_amount"]},
                      timeout=30).raise_for_status()
        day = datetime.now(CHINA).date().isoformat()
        found = run("wicket-hub reconcile", hub("reconcile", "--provider", "wechat",
                                                "--day", day))
        self.exceptions = [line.strip() for line in found.splitlines()
                           if re.match(r"\s+\w+ (payment|refund) ", line)]

    def banner(self, hub_url: str) -> str:
        user, secret = self.portal or ("-", "-")
        lines = [f"  Finance (ledger)         {hub_url}/finance/",
                 f"  Partners' portal         {hub_url}/partner/   login {user} / {secret}"]
        lines += [f"                           settlement: {s}" for s in self.statements[:3]]
        lines += [f"                           reconciliation: {e}" for e in self.exceptions[:3]]
        return "\n".join(lines)
