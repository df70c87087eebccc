"""Starting a payment and settling one whose notification never came.

``start_payment`` writes the payment in the caller's transaction and asks the provider for
what the buyer is shown; ``open_payment``, ``ask_to_pay`` and ``record_asked`` are its three
steps, for a caller that must not keep a transaction open while the provider answers. Asking again for the same order, provider and amount reuses the open
payment and its ``out_trade_no`` (the provider answers the same trade again), so a call that
timed out after the provider committed is retried, never doubled.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.core.errors import HubError
from cloud.payments.errors import PaymentError
from cloud.payments.providers import Provider, Shown
from cloud.payments.tables import payments
from cloud.payments.transitions import Outcome, move_payment
from cloud.sales.orders import payable
from sync.timeutil import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkout:
    """A started payment and what to show the buyer: a QR code's text or an address; both
    None when the provider did not answer (``unavailable``: ask again, the same trade is
    reused). ``outcome`` is set when the payment succeeded at once (offline)."""

    payment_id: int
    out_trade_no: str
    state: str
    qr_text: str | None = None
    redirect_url: str | None = None
    unavailable: str | None = None
    outcome: Outcome | None = None


def new_trade_no() -> str:
    """32 characters of ``[0-9a-f]``: within both providers' alphabets and lengths."""
    return uuid.uuid4().hex


_OPEN = sa.select(payments).where(
    payments.c.order_id == sa.bindparam("order_id"),
    payments.c.provider == sa.bindparam("provider"), payments.c.amount == sa.bindparam("amount"),
    payments.c.state.in_(("created", "pending"))).order_by(payments.c.id.desc()).limit(1)
_NEW = sa.insert(payments).returning(*payments.c)
_PAYMENT_ROW = sa.select(payments).where(payments.c.id == sa.bindparam("pid"))


def _open_payment(conn: sa.Connection, provider: str, order_id: int, amount: int):
    return conn.execute(_OPEN, {"order_id": order_id, "provider": provider,
                                "amount": amount}).first()


@dataclass(frozen=True)
class Asked:
    """What a provider answered when a payment was opened with it: what the buyer is shown, or
    why it did not answer (``unavailable``)."""

    shown: Shown | None = None
    unavailable: str | None = None


def open_payment(conn: sa.Connection, provider: str, order_id: int, amount: int,
                 now: datetime | None = None, *, currency: str = "CNY"):
    """The payment of ``amount`` fen for ``order_id`` with ``provider``: the open one (created or
    pending, with its ``out_trade_no``), else a new one, ``created``. Nothing is asked yet."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise PaymentError("bad_payment_amount")
    row = _open_payment(conn, provider, order_id, amount)
    if row is None:
        row = conn.execute(_NEW, {
            "order_id": order_id, "provider": provider, "out_trade_no": new_trade_no(),
            "amount": amount, "currency": currency, "state": "created",
            "created_at": now or utcnow()}).one()
    return row


def ask_to_pay(provider: Provider, row, description: str, expires_at: datetime,
               notify_url: str = "") -> Asked:
    """Open the payment ``row`` at its provider: a call to another service, so with no
    transaction open where it can be (the same trade asked twice is one trade)."""
    try:
        return Asked(shown=provider.create(row.out_trade_no, row.amount, description,
                                           expires_at, notify_url))
    except PaymentError as e:
        if e.code != "provider_unavailable":
            raise
        log.warning("payment %s: %s did not answer (%s); the same trade is asked again",
                    row.id, provider.name, e.params.get("detail"))
        return Asked(unavailable=e.params.get("detail") or "no answer")


def record_asked(conn: sa.Connection, payment_id: int, asked: Asked,
                 now: datetime | None = None, *, row=None) -> Checkout:
    """What the provider answered, applied to the payment (``pending``, or ``succeeded`` when
    it settled as it was made) as it stands now: a notification that came in between wins
    (its row is read again, unless this transaction read it as ``row`` with nothing asked of
    another service since: a move is conditional on the state anyway)."""
    if row is None:
        row = conn.execute(_PAYMENT_ROW, {"pid": payment_id}).one()
    if asked.shown is None:
        return Checkout(row.id, row.out_trade_no, row.state, unavailable=asked.unavailable)
    shown = asked.shown
    outcome = move_payment(conn, row, "succeeded" if shown.settled else "pending",
                           shown.reference, now or utcnow())
    return Checkout(row.id, row.out_trade_no, outcome.state, shown.qr_text, shown.redirect_url,
                    outcome=outcome if outcome.newly_succeeded else None)


def open_and_ask(engine: sa.Engine, provider: Provider, order_id: int,
                 notify_url: str = "") -> Checkout:
    """A page's "pay with this provider": the order's payment opened (or the open one
    reused) and committed, the provider asked with no transaction open (on SQLite one kept
    open would stop every other sale while the provider takes its time), and its answer
    recorded. A provider that refused or did not answer is ``unavailable`` (the same trade is
    asked again next time)."""
    with engine.begin() as conn:
        due = payable(conn, order_id)
        row = open_payment(conn, provider.name, order_id, due.amount, currency=due.currency)
    try:
        asked = ask_to_pay(provider, row, due.description, due.expires_at, notify_url)
    except HubError as e:
        log.warning("payment %s: %s refused to open it (%s)", row.id, provider.name, e.code)
        asked = Asked(unavailable=e.code)
    with engine.begin() as conn:
        return record_asked(conn, row.id, asked)


def start_payment(conn: sa.Connection, provider: Provider, order_id: int, amount: int,
                  description: str, expires_at: datetime, now: datetime | None = None, *,
                  notify_url: str = "", currency: str = "CNY") -> Checkout:
    """Open (or reopen) the payment of ``amount`` fen for ``order_id`` with ``provider``, all in
    the caller's transaction (the offline provider, which calls nothing; the HTTP API opens,
    asks and records in steps instead: ``cloud/payments/order_api.py``)."""
    row = open_payment(conn, provider.name, order_id, amount, now, currency=currency)
    return record_asked(conn, row.id, ask_to_pay(provider, row, description, expires_at,
                                                 notify_url), now, row=row)


def payment_by_trade(conn: sa.Connection, provider: str, out_trade_no: str):
    row = conn.execute(sa.select(payments).where(payments.c.out_trade_no == out_trade_no,
                                                 payments.c.provider == provider)).first()
    if row is None:
        raise PaymentError("unknown_trade", out_trade_no=out_trade_no)
    return row


def settle_payment(conn: sa.Connection, provider: Provider, payment_id: int,
                   now: datetime | None = None) -> Outcome:
    """Ask the provider where a payment stands and apply it as a notification would be: for a
    payment whose notification never came (the worker's follow-up)."""
    row = payment_of(conn, provider.name, payment_id)
    return apply_trade_status(conn, row, provider.query(row.out_trade_no), now)


def payment_of(conn: sa.Connection, provider: str, payment_id: int):
    row = conn.execute(sa.select(payments).where(payments.c.id == payment_id)).first()
    if row is None or row.provider != provider:
        raise PaymentError("unknown_payment", payment_id=payment_id)
    return row


def apply_trade_status(conn: sa.Connection, row, status, now: datetime | None = None) -> Outcome:
    """What the provider said of a payment (``row``), applied as a notification would be."""
    now = now or utcnow()
    provider = row.provider
    if status.amount is not None and status.amount != row.amount:
        log.error("payment %s: %s says %s fen, the payment is %s fen", row.id, provider,
                  status.amount, row.amount)
        raise PaymentError("amount_mismatch", out_trade_no=row.out_trade_no,
                           notified=status.amount, amount=row.amount)
    return move_payment(conn, row, status.state, status.provider_reference, now)
