"""Partners, their portal users and the split rules agreed with them.

- A partner (organiser, venue, distributor, agent, supplier) is settled on its own cycle:
  T + ``settle_days``. Creating one opens its payable account (cloud/ledger/chart.py).
- A portal user signs in to the partner portal with a password under the staff's policy and
  hash (cloud/staff/staff.py); a disabled user, or any user of a suspended partner, never
  signs in, and a refused sign-in costs one hash whatever the reason.
- A split rule is never edited: it ends (:func:`end_rule`) and a new one starts
  (:func:`add_rule`), neither in the past, so a change applies only to later sales and the
  rules in force at any past moment stay what the ledger split by (cloud/ledger/posting.py
  ``rules_for``). The organiser's part is what the other parts leave (cloud/ledger/split.py):
  its rule names who gets it and carries no percentage or fixed amount of its own.

Every change is audited (cloud/core/audit.py) in the caller's transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.tables import events, products
from cloud.core.audit import record
from cloud.ledger import chart
from cloud.ledger.errors import LedgerError
from cloud.ledger.tables import PARTNER_KINDS, SPLIT_PARTS, partner_users, partners, split_rules
from cloud.staff.staff import DUMMY_HASH, check_password, check_policy, hash_password

PARTNER_STATES = ("active", "suspended")
USER_STATES = ("active", "disabled")
# cloud/ledger/posting.py channel_of
CHANNELS = ("web", "presale", "box_office", "kiosk", "contract", "distributor", "agent")
PLATFORM_PARTS = ("platform", "provider_fee")  # the parts no partner gets
_CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,19}")
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{2,79}")
_PROVIDER = re.compile(r"[a-z][a-z0-9_]{0,19}")


@dataclass(frozen=True)
class PortalUser:
    """Who signed in to the partner portal: everything it shows is scoped to ``partner_id``."""

    id: int
    partner_id: int
    username: str
    display_name: str


def _bad(field: str) -> LedgerError:
    return LedgerError("bad_ledger_request", field=field)


def _whole(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(field)
    return value


def _text(value: object, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit \
            or not value.isprintable():
        raise _bad(field)
    return value.strip()


def _moment(value: object, field: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise _bad(field)
    return value


# partners

def create_partner(conn: sa.Connection, code: str, name: str, kind: str, settle_days: int,
                   actor: str, now: datetime) -> int:
    """A new partner, settled T+``settle_days`` (0 to 90), with its payable account open;
    its id. ``partner_code_taken`` when the code is someone's already."""
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise _bad("code")
    name = _text(name, "name", 200)
    if kind not in PARTNER_KINDS:
        raise _bad("kind")
    settle_days = _whole(settle_days, "settle_days", 0, 90)
    if conn.execute(sa.select(partners.c.id).where(partners.c.code == code)).first():
        raise LedgerError("partner_code_taken", code=code)
    partner_id = conn.execute(sa.insert(partners).values(
        code=code, name=name, kind=kind, settle_days=settle_days, state="active",
        created_by=actor, created_at=now)).inserted_primary_key[0]
    chart.ensure(conn, chart.payable(partner_id), now=now)
    record(conn, actor, "partner.create", f"partner:{partner_id}", None,
           {"code": code, "name": name, "kind": kind, "settle_days": settle_days})
    return partner_id


def partner(conn: sa.Connection, partner_id: int):
    """The partner's row; ``unknown_partner`` if there is none."""
    row = conn.execute(sa.select(partners).where(partners.c.id == partner_id)).first()
    if row is None:
        raise LedgerError("unknown_partner", partner_id=partner_id)
    return row


def list_partners(conn: sa.Connection) -> list[sa.Row]:
    return list(conn.execute(sa.select(partners).order_by(partners.c.code)))


def edit_partner(conn: sa.Connection, partner_id: int, *, actor: str, now: datetime,
                 name: str | None = None, settle_days: int | None = None,
                 state: str | None = None) -> None:
    """Change a partner's name, cycle or state (``active`` | ``suspended``: a suspended
    partner's users cannot sign in and its money is not settled). A new cycle applies from
    the next settlement run."""
    before = partner(conn, partner_id)
    values: dict = {}
    if name is not None:
        values["name"] = _text(name, "name", 200)
    if settle_days is not None:
        values["settle_days"] = _whole(settle_days, "settle_days", 0, 90)
    if state is not None:
        if state not in PARTNER_STATES:
            raise _bad("state")
        values["state"] = state
    changed = {k: v for k, v in values.items() if getattr(before, k) != v}
    if not changed:
        return
    conn.execute(sa.update(partners).where(partners.c.id == partner_id).values(**changed))
    record(conn, actor, "partner.edit", f"partner:{partner_id}",
           {k: getattr(before, k) for k in changed}, changed)


# portal users

def add_portal_user(conn: sa.Connection, partner_id: int, username: str, display_name: str,
                    password: str, actor: str, now: datetime) -> int:
    """A portal user of the partner; its id. The password passes the staff's policy (its
    refusal is the staff's code: password_too_short…); ``portal_username_taken`` on a duplicate."""
    partner(conn, partner_id)
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise _bad("username")
    display_name = _text(display_name, "display_name", 200)
    if not isinstance(password, str):
        raise _bad("password")
    check_policy(password, username)
    if conn.execute(sa.select(partner_users.c.id)
                    .where(partner_users.c.username == username)).first():
        raise LedgerError("portal_username_taken", username=username)
    user_id = conn.execute(sa.insert(partner_users).values(
        partner_id=partner_id, username=username, display_name=display_name,
        password_hash=hash_password(password), state="active", created_by=actor,
        created_at=now)).inserted_primary_key[0]
    record(conn, actor, "partner.user_add", f"partner_user:{user_id}", None,
           {"partner_id": partner_id, "username": username})
    return user_id


def set_portal_user_state(conn: sa.Connection, user_id: int, state: str, actor: str,
                          now: datetime) -> None:
    """Disable (or enable again) a portal user; an unknown user is ``bad_ledger_request``
    (field user_id)."""
    if state not in USER_STATES:
        raise _bad("state")
    row = conn.execute(sa.select(partner_users.c.state)
                       .where(partner_users.c.id == user_id)).first()
    if row is None:
        raise _bad("user_id")
    if row.state == state:
        return
    conn.execute(sa.update(partner_users).where(partner_users.c.id == user_id)
                 .values(state=state))
    record(conn, actor, "partner.user_state", f"partner_user:{user_id}",
           {"state": row.state}, {"state": state})


def portal_users(conn: sa.Connection, partner_id: int) -> list[sa.Row]:
    """The partner's portal users (never their password hashes), by user name."""
    t = partner_users
    return list(conn.execute(
        sa.select(t.c.id, t.c.partner_id, t.c.username, t.c.display_name, t.c.state,
                  t.c.created_by, t.c.created_at, t.c.last_sign_in_at)
        .where(t.c.partner_id == partner_id).order_by(t.c.username)))


def check_portal_sign_in(conn: sa.Connection, username: str, password: str,
                         now: datetime) -> PortalUser | None:
    """The portal user these credentials are, or None: a wrong password, an unknown name, a
    disabled user and a suspended partner are all None, after one hash each."""
    row = None
    if isinstance(username, str) and len(username) <= 80:
        row = conn.execute(
            sa.select(partner_users.c.id, partner_users.c.partner_id,
                      partner_users.c.username, partner_users.c.display_name,
                      partner_users.c.password_hash, partner_users.c.state,
                      partners.c.state.label("partner_state"))
            .join(partners, partners.c.id == partner_users.c.partner_id)
            .where(partner_users.c.username == username)).first()
    if not isinstance(password, str):
        password = ""
    ok = check_password(password, row.password_hash if row is not None else DUMMY_HASH)
    if row is None or not ok or row.state != "active" or row.partner_state != "active":
        return None
    conn.execute(sa.update(partner_users).where(partner_users.c.id == row.id)
                 .values(last_sign_in_at=now))
    return PortalUser(row.id, row.partner_id, row.username, row.display_name)


def sign_out_everywhere(conn: sa.Connection, user_id: int, now: datetime) -> None:
    """End every portal session of ``user_id`` begun before ``now``."""
    conn.execute(sa.update(partner_users).where(partner_users.c.id == user_id)
                 .values(signed_out_at=now))


# split rules

def _rule_scope(conn: sa.Connection, event_id, product_id, channel, provider) -> None:
    if event_id is not None and not conn.execute(
            sa.select(events.c.id).where(events.c.id == event_id)).first():
        raise _bad("event_id")
    if product_id is not None and not conn.execute(
            sa.select(products.c.id).where(products.c.id == product_id)).first():
        raise _bad("product_id")
    if channel is not None and channel not in CHANNELS:
        raise _bad("channel")
    if provider is not None and (not isinstance(provider, str)
                                 or not _PROVIDER.fullmatch(provider)):
        raise _bad("provider")


def add_rule(conn: sa.Connection, *, part: str, partner_id: int | None, basis_points: int,
             fixed_per_ticket: int, effective_from: datetime, actor: str, now: datetime,
             event_id: int | None = None, product_id: int | None = None,
             channel: str | None = None, provider: str | None = None) -> int:
    """A split rule for sales from ``effective_from`` (not before ``now``): ``part`` of a
    payment goes to ``partner_id`` (none for the platform's and the provider's fee), in
    ``basis_points`` of the amount (1 = 0.01 %) and ``fixed_per_ticket`` minor units per
    ticket, for one event, product, channel or provider or for all. Its id."""
    if part not in SPLIT_PARTS:
        raise _bad("part")
    if part in PLATFORM_PARTS:
        if partner_id is not None:
            raise _bad("partner_id")
    elif isinstance(partner_id, bool) or not isinstance(partner_id, int):
        raise _bad("partner_id")
    else:
        partner(conn, partner_id)
    basis_points = _whole(basis_points, "basis_points", 0, 10_000)
    fixed_per_ticket = _whole(fixed_per_ticket, "fixed_per_ticket", 0, 10**12)
    if part == "organiser" and (basis_points or fixed_per_ticket):
        raise _bad("basis_points" if basis_points else "fixed_per_ticket")
    if _moment(effective_from, "effective_from") < now:
        raise _bad("effective_from")
    _rule_scope(conn, event_id, product_id, channel, provider)
    values = {"part": part, "partner_id": partner_id, "basis_points": basis_points,
              "fixed_per_ticket": fixed_per_ticket, "event_id": event_id,
              "product_id": product_id, "channel": channel, "provider": provider}
    rule_id = conn.execute(sa.insert(split_rules).values(
        **values, effective_from=effective_from, created_by=actor,
        created_at=now)).inserted_primary_key[0]
    record(conn, actor, "split_rule.add", f"split_rule:{rule_id}", None,
           {**values, "effective_from": effective_from.isoformat()})
    return rule_id


def end_rule(conn: sa.Connection, rule_id: int, effective_until: datetime, actor: str,
             now: datetime) -> None:
    """The rule applies to no sale from ``effective_until`` on (not before ``now``, after
    it started, and only ever earlier than an end it had)."""
    row = conn.execute(sa.select(split_rules).where(split_rules.c.id == rule_id)).first()
    if row is None:
        raise LedgerError("unknown_rule", rule_id=rule_id)
    until = _moment(effective_until, "effective_until")
    if until < now or until <= row.effective_from or (
            row.effective_until is not None and until >= row.effective_until):
        raise _bad("effective_until")
    conn.execute(sa.update(split_rules).where(split_rules.c.id == rule_id)
                 .values(effective_until=until))
    record(conn, actor, "split_rule.end", f"split_rule:{rule_id}",
           {"effective_until": row.effective_until.isoformat() if row.effective_until
            else None}, {"effective_until": until.isoformat()})


def list_rules(conn: sa.Connection, at: datetime | None = None) -> list[sa.Row]:
    """Every rule (those in force at ``at`` when given), with its partner's code and name,
    by part then start."""
    t = split_rules
    q = (sa.select(t, partners.c.code.label("partner_code"),
                   partners.c.name.label("partner_name"))
         .outerjoin(partners, partners.c.id == t.c.partner_id)
         .order_by(t.c.part, t.c.effective_from, t.c.id))
    if at is not None:
        q = q.where(t.c.effective_from <= at,
                    sa.or_(t.c.effective_until.is_(None), t.c.effective_until > at))
    return list(conn.execute(q))
