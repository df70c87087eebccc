"""The chart of accounts: the codes every area posts to, opened on first use.

- ``clearing:<provider>`` (asset): money a provider holds for the hub — buyers' payments in,
  refunds out; the booth's cash drawer is the ``offline`` provider's.
- ``provider_fees:<provider>`` (liability): what the provider keeps of each payment.
- ``platform:revenue`` (revenue): the platform's part of each payment.
- ``refunds_payable`` (liability): money taken that no order could keep, until refunded.
- ``undistributed`` (liability): a payment's rest when no organiser rule names who gets it.
- ``partner:<id>:payable`` (liability, guarded): what the hub owes a partner; a payout never
  takes it below zero. ``partner:<id>:receivable`` (asset): what a partner owes back (a refund
  after its money was paid out), set against its next statement.
- ``partner:<id>:prepaid`` (liability, guarded): a partner's prepaid balance (备用金), what the
  hub holds of the partner's money: topped up from the bank, its orders paid out of it, never
  below zero. ``partner:<id>:credit_line`` (liability, guarded): the credit (授信) the partner
  has not used yet, raised when the hub grants credit and when the partner repays, taken by its
  orders, never below zero. ``partner:<id>:credit_granted`` (asset): the credit granted, its
  balance the limit; what the partner owes on credit is ``credit_granted - credit_line``.
- ``bank`` (asset): the platform's bank account, payouts out of it.
- ``suspense`` (asset): reconciliation adjustments until finance clears them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from cloud.ledger.journal import open_account
from cloud.ledger.tables import ledger_accounts, partners

PLATFORM_REVENUE = "platform:revenue"
REFUNDS_PAYABLE = "refunds_payable"
UNDISTRIBUTED = "undistributed"
BANK = "bank"
SUSPENSE = "suspense"

_FIXED = {PLATFORM_REVENUE: ("Platform revenue", "revenue"),
          REFUNDS_PAYABLE: ("Buyers' refunds payable", "liability"),
          UNDISTRIBUTED: ("Undistributed (no organiser rule)", "liability"),
          BANK: ("Platform bank account", "asset"),
          SUSPENSE: ("Reconciliation suspense", "asset")}


def clearing(provider: str) -> str:
    return f"clearing:{provider}"


def provider_fees(provider: str) -> str:
    return f"provider_fees:{provider}"


def payable(partner_id: int) -> str:
    return f"partner:{partner_id}:payable"


def receivable(partner_id: int) -> str:
    return f"partner:{partner_id}:receivable"


def prepaid(partner_id: int) -> str:
    return f"partner:{partner_id}:prepaid"


def credit_line(partner_id: int) -> str:
    return f"partner:{partner_id}:credit_line"


def credit_granted(partner_id: int) -> str:
    return f"partner:{partner_id}:credit_granted"


# a partner's accounts by the code's last part: what it is called, its kind, guarded or not
_PARTNER = {"payable": ("payable", "liability", True),
            "receivable": ("receivable", "asset", False),
            "prepaid": ("prepaid balance", "liability", True),
            "credit_line": ("unused credit", "liability", True),
            "credit_granted": ("credit granted", "asset", False)}


def ensure(conn: sa.Connection, code: str, currency: str = "CNY",
           now: datetime | None = None) -> str:
    """Open the account ``code`` of the chart if it is not open yet; its code."""
    ensure_all(conn, [code], currency, now)
    return code


_FOUND = sa.select(ledger_accounts.c.code).where(
    ledger_accounts.c.code.in_(sa.bindparam("codes", expanding=True)))


def ensure_all(conn: sa.Connection, codes: Iterable[str], currency: str = "CNY",
               now: datetime | None = None) -> None:
    """Open those of the chart's accounts ``codes`` that are not open yet: one read when they
    all are (as they are for every payment but the first of its kind)."""
    wanted = set(codes)
    found = set(conn.execute(_FOUND, {"codes": sorted(wanted)}).scalars())
    for code in sorted(wanted - found):
        _open(conn, code, currency, now)


def _open(conn: sa.Connection, code: str, currency: str, now: datetime | None) -> None:
    if code in _FIXED:
        name, kind = _FIXED[code]
        open_account(conn, code, name, kind, currency=currency, now=now)
    elif code.startswith("clearing:"):
        open_account(conn, code, f"Clearing at {code[9:]}", "asset", currency=currency, now=now)
    elif code.startswith("provider_fees:"):
        open_account(conn, code, f"Fees kept by {code[14:]}", "liability", currency=currency,
                     now=now)
    elif code.startswith("partner:") and code.split(":")[-1] in _PARTNER:
        partner_id = int(code.split(":")[1])
        name = conn.execute(sa.select(partners.c.name)
                            .where(partners.c.id == partner_id)).scalar() or code
        what, kind, guarded = _PARTNER[code.split(":")[-1]]
        open_account(conn, code, f"{name}: {what}", kind, currency=currency, guarded=guarded,
                     partner_id=partner_id, now=now)
    else:
        raise ValueError(f"{code!r} is not in the chart of accounts")
