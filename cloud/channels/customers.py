"""Contract customers (seed 004 §6.1.5): a company that books seats through its own
representatives, against two quota tracks, and pays offline.

- A customer has a code, a name, a contact (name and phone, sealed at rest:
  cloud/core/seal.py) and a state; creating one creates its channel of kind ``contract``
  (cloud/channels/channels.py), through which every order of its representatives is sold, so
  the order carries the channel and counts against the channel's quotas.
- Two quota tracks, both the inventory's counters (taken by the same conditional UPDATE as
  every other quota, under the same races): the *total* of all contract customers per
  session × price tier (kind ``contract``) and each customer's own per session × price tier
  (kind ``channel``, on the customer's channel). A booking fits both or holds nothing.
- Representatives sign in to the customer site (``/customer/``) with a password under the
  staff's policy and hash (cloud/staff/staff.py), exactly as the partner portal's users do
  (cloud/ledger/partners.py): a disabled representative, or any representative of a
  suspended customer, never signs in, and a refused sign-in costs one hash whatever the reason.
- Seats kept for a customer belong to the customer entity: the inventory's reservation is
  made under :func:`reservation_name` (``customer:<code>``), a name only this module writes,
  and a representative's order claims them under the same name.
- Notices are announcements to the representatives of one customer, or of all.

Every change is audited (cloud/core/audit.py) in the caller's transaction.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.tables import price_tiers, sessions
from cloud.channels.channels import (
    create_channel,
    set_channel_quota,
    set_contract_quota,
    set_enabled,
)
from cloud.channels.tables import channels, contract_customers, customer_notices, customer_reps
from cloud.core.audit import record
from cloud.core.errors import Code, HubError
from cloud.core.seal import context, keyring_for
from cloud.inventory.tables import quotas
from cloud.staff.staff import DUMMY_HASH, check_password, check_policy, hash_password

CUSTOMER_STATES = ("active", "suspended")
REP_STATES = ("active", "disabled")
_CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,19}")
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{2,79}")
_PHONE = re.compile(r"\+?[0-9][0-9 -]{4,19}")
MAX_NOTICE = 4000


class CustomerError(HubError):
    """A contract customer's change, sign-in, booking or payment that cannot be made;
    ``field`` names the part of the request at fault."""

    codes = {
        "bad_customer_request": Code(422, "%(field)s is missing or not valid"),
        "customer_code_taken": Code(409, "there is a contract customer %(code)s already"),
        "unknown_customer": Code(404, "no contract customer %(customer_id)s"),
        "customer_suspended": Code(403, "contract customer %(code)s is suspended"),
        "rep_username_taken": Code(409, "the user name %(username)s is taken"),
        "unknown_customer_order": Code(404, "no order %(number)s of this customer"),
        "customer_order_locked": Code(
            409, "order %(number)s is %(state)s: only an order waiting for payment can change"),
        "payment_not_placed": Code(
            409, "the payment cannot be recorded on order %(number)s (%(reason)s)"),
        "bad_holder_file": Code(
            422, "the holders file cannot be read: %(problem)s"),
        "holder_row_too_long": Code(422, "a holder's row has three columns: name, document "
                                         "type, document number"),
        "holder_document_repeated": Code(422, "this document is on an earlier row already"),
        "holder_file_old_excel": Code(422, "an old Excel workbook (.xls), or one locked with a "
                                           "password, cannot be read: save it as .xlsx or CSV"),
        "holder_workbook_unreadable": Code(422, "the workbook cannot be read: it is damaged or "
                                                "locked: save it again as .xlsx or CSV"),
    }


def bad(field: str) -> CustomerError:
    return CustomerError("bad_customer_request", field=field)


def _text(value: object, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit \
            or not value.isprintable():
        raise bad(field)
    return value.strip()


def _whole(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad(field)
    return value


@dataclass(frozen=True)
class Rep:
    """Who signed in to the customer site: everything it shows is scoped to
    ``customer_id``."""

    id: int
    customer_id: int
    customer_code: str
    username: str
    display_name: str


def reservation_name(code: str) -> str:
    """The name seats kept for the customer are reserved under (session_seats.reserved_for),
    and the one its representatives' orders claim them with."""
    return f"customer:{code}"


def channel_code(code: str) -> str:
    return f"CUST-{code}"


# customers

def _contact(contact: object) -> tuple[str, str]:
    if not isinstance(contact, tuple | list) or len(contact) != 2:
        raise bad("contact")
    name = _text(contact[0], "contact_name", 200)
    phone = contact[1].strip() if isinstance(contact[1], str) else None
    if phone is None or not _PHONE.fullmatch(phone):
        raise bad("contact_phone")
    return name, phone


def _seal_contact(conn: sa.Connection, customer_id: int, contact: tuple[str, str]) -> str:
    return keyring_for(conn).seal(json.dumps({"name": contact[0], "phone": contact[1]},
                                             ensure_ascii=False),
                                  context("contract_customers", customer_id, "contact"))


def contact_of(conn: sa.Connection, row) -> tuple[str, str] | None:
    """The customer's contact (name, phone), opened: for masking on a page."""
    if not row.sealed_contact:
        return None
    data = json.loads(keyring_for(conn).open(
        row.sealed_contact, context("contract_customers", row.id, "contact")))
    return data["name"], data["phone"]


def create_customer(conn: sa.Connection, code: str, name: str, contact: tuple[str, str],
                    actor: str, now: datetime) -> int:
    """A new contract customer, active, with its channel of kind ``contract``; its id.
    ``customer_code_taken`` when the code is another's already."""
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise bad("code")
    name = _text(name, "name", 200)
    contact = _contact(contact)
    if conn.execute(sa.select(contract_customers.c.id)
                    .where(contract_customers.c.code == code)).first():
        raise CustomerError("customer_code_taken", code=code, field="code")
    customer_id = conn.execute(sa.insert(contract_customers).values(
        code=code, name=name, state="active", created_by=actor,
        created_at=now)).inserted_primary_key[0]
    conn.execute(sa.update(contract_customers).where(contract_customers.c.id == customer_id)
                 .values(sealed_contact=_seal_contact(conn, customer_id, contact)))
    create_channel(conn, channel_code(code), name, "contract", customer_id=customer_id,
                   actor=actor, now=now)
    record(conn, actor, "customer.create", f"customer:{customer_id}", None,
           {"code": code, "name": name})
    return customer_id


def customer(conn: sa.Connection, customer_id: int):
    """The customer's row; ``unknown_customer`` if there is none."""
    row = conn.execute(sa.select(contract_customers)
                       .where(contract_customers.c.id == customer_id)).first()
    if row is None:
        raise CustomerError("unknown_customer", customer_id=customer_id, field="customer_id")
    return row


def list_customers(conn: sa.Connection) -> list[sa.Row]:
    return list(conn.execute(sa.select(contract_customers)
                             .order_by(contract_customers.c.code)))


def customer_channel(conn: sa.Connection, customer_id: int) -> int:
    """The id of the customer's channel (made with the customer)."""
    return conn.execute(sa.select(channels.c.id).where(
        channels.c.customer_id == customer_id, channels.c.kind == "contract")
        .order_by(channels.c.id).limit(1)).scalar_one()


def edit_customer(conn: sa.Connection, customer_id: int, *, actor: str, now: datetime,
                  name: str | None = None, contact: tuple[str, str] | None = None) -> None:
    """Change a customer's name or contact (the contact's values are never audited)."""
    before = customer(conn, customer_id)
    values: dict = {}
    if name is not None and _text(name, "name", 200) != before.name:
        values["name"] = name.strip()
    if contact is not None and _contact(contact) != contact_of(conn, before):
        values["sealed_contact"] = _seal_contact(conn, customer_id, _contact(contact))
    if not values:
        return
    conn.execute(sa.update(contract_customers)
                 .where(contract_customers.c.id == customer_id).values(**values))
    record(conn, actor, "customer.edit", f"customer:{customer_id}",
           {"name": before.name} if "name" in values else None,
           {"name": values.get("name", before.name),
            "contact": "changed" if "sealed_contact" in values else "kept"})


def set_customer_state(conn: sa.Connection, customer_id: int, state: str, actor: str,
                       now: datetime) -> None:
    """Suspend a customer (or make it active again): a suspended customer's representatives
    cannot sign in, and its channel is switched off, so nothing is sold through it."""
    if state not in CUSTOMER_STATES:
        raise bad("state")
    before = customer(conn, customer_id)
    if before.state == state:
        return
    conn.execute(sa.update(contract_customers)
                 .where(contract_customers.c.id == customer_id).values(state=state))
    set_enabled(conn, customer_channel(conn, customer_id), state == "active", actor, now)
    record(conn, actor, "customer.state", f"customer:{customer_id}",
           {"state": before.state}, {"state": state})


def active_customer(conn: sa.Connection, customer_id: int):
    row = customer(conn, customer_id)
    if row.state != "active":
        raise CustomerError("customer_suspended", code=row.code, field="customer_id")
    return row


# representatives

def add_rep(conn: sa.Connection, customer_id: int, username: str, display_name: str,
            password: str, actor: str, now: datetime) -> int:
    """A representative of the customer; its id. The password passes the staff's policy
    (its refusal is the staff's code: password_too_short…); ``rep_username_taken`` on a
    duplicate."""
    customer(conn, customer_id)
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise bad("username")
    display_name = _text(display_name, "display_name", 200)
    if not isinstance(password, str):
        raise bad("password")
    check_policy(password, username)
    if conn.execute(sa.select(customer_reps.c.id)
                    .where(customer_reps.c.username == username)).first():
        raise CustomerError("rep_username_taken", username=username, field="username")
    rep_id = conn.execute(sa.insert(customer_reps).values(
        customer_id=customer_id, username=username, display_name=display_name,
        password_hash=hash_password(password), state="active", created_by=actor,
        created_at=now)).inserted_primary_key[0]
    record(conn, actor, "customer.rep_add", f"customer_rep:{rep_id}", None,
           {"customer_id": customer_id, "username": username})
    return rep_id


def set_rep_state(conn: sa.Connection, customer_id: int, rep_id: int, state: str,
                  actor: str, now: datetime) -> None:
    """Disable (or enable again) one of the customer's representatives."""
    if state not in REP_STATES:
        raise bad("state")
    row = conn.execute(sa.select(customer_reps.c.state).where(
        customer_reps.c.id == rep_id, customer_reps.c.customer_id == customer_id)).first()
    if row is None:
        raise bad("rep_id")
    if row.state == state:
        return
    conn.execute(sa.update(customer_reps).where(customer_reps.c.id == rep_id)
                 .values(state=state))
    record(conn, actor, "customer.rep_state", f"customer_rep:{rep_id}",
           {"state": row.state}, {"state": state})


def reps(conn: sa.Connection, customer_id: int) -> list[sa.Row]:
    """The customer's representatives (never their password hashes), by user name."""
    t = customer_reps
    return list(conn.execute(
        sa.select(t.c.id, t.c.customer_id, t.c.username, t.c.display_name, t.c.state,
                  t.c.created_by, t.c.created_at, t.c.last_sign_in_at)
        .where(t.c.customer_id == customer_id).order_by(t.c.username)))


def check_rep_sign_in(conn: sa.Connection, username: str, password: str,
                      now: datetime) -> Rep | None:
    """The representative these credentials are, or None: a wrong password, an unknown
    name, a disabled representative and a suspended customer are all None, after one hash
    each."""
    row = None
    if isinstance(username, str) and len(username) <= 80:
        row = conn.execute(
            sa.select(customer_reps.c.id, customer_reps.c.customer_id,
                      customer_reps.c.username, customer_reps.c.display_name,
                      customer_reps.c.password_hash, customer_reps.c.state,
                      contract_customers.c.code, contract_customers.c.state.label("c_state"))
            .join(contract_customers, contract_customers.c.id == customer_reps.c.customer_id)
            .where(customer_reps.c.username == username)).first()
    if not isinstance(password, str):
        password = ""
    ok = check_password(password, row.password_hash if row is not None else DUMMY_HASH)
    if row is None or not ok or row.state != "active" or row.c_state != "active":
        return None
    conn.execute(sa.update(customer_reps).where(customer_reps.c.id == row.id)
                 .values(last_sign_in_at=now))
    return Rep(row.id, row.customer_id, row.code, row.username, row.display_name)


def signed_in_rep(conn: sa.Connection, rep_id: int, customer_id: int, began: datetime):
    """The representative of a session begun at ``began``, read again: None when it was
    disabled, its customer suspended, or it signed out everywhere since."""
    row = conn.execute(
        sa.select(customer_reps.c.id, customer_reps.c.customer_id, customer_reps.c.username,
                  customer_reps.c.display_name, customer_reps.c.signed_out_at,
                  contract_customers.c.code.label("customer_code"),
                  contract_customers.c.name.label("customer_name"))
        .join(contract_customers, contract_customers.c.id == customer_reps.c.customer_id)
        .where(customer_reps.c.id == rep_id, customer_reps.c.customer_id == customer_id,
               customer_reps.c.state == "active", contract_customers.c.state == "active")
    ).first()
    if row is not None and row.signed_out_at is not None and began <= row.signed_out_at:
        return None
    return row


def sign_out_everywhere(conn: sa.Connection, rep_id: int, now: datetime) -> None:
    """End every session of the representative begun before ``now``."""
    conn.execute(sa.update(customer_reps).where(customer_reps.c.id == rep_id)
                 .values(signed_out_at=now))


# the two quota tracks

def set_total_quota(conn: sa.Connection, session_id: int, price_tier_id: int, capacity: int,
                    actor: str, now: datetime) -> int:
    """The seats all contract customers together may take of a session's price tier."""
    _whole(capacity, "capacity", 0, 10**6)
    return set_contract_quota(conn, session_id, price_tier_id, capacity, actor, now)


def set_customer_quota(conn: sa.Connection, customer_id: int, session_id: int,
                       price_tier_id: int, capacity: int, actor: str, now: datetime) -> int:
    """The seats this customer may take of a session's price tier (its channel's quota)."""
    customer(conn, customer_id)
    _whole(capacity, "capacity", 0, 10**6)
    return set_channel_quota(conn, customer_channel(conn, customer_id), capacity,
                             session_id=session_id, price_tier_id=price_tier_id,
                             actor=actor, now=now)


def customer_quotas(conn: sa.Connection, customer_id: int) -> list[sa.Row]:
    """The customer's own quotas with what is used of each, beside the contract total of the
    same session and tier (None where there is none)."""
    total = quotas.alias("total")
    return list(conn.execute(
        sa.select(quotas.c.id, quotas.c.session_id, quotas.c.price_tier_id,
                  quotas.c.capacity, quotas.c.used, total.c.capacity.label("total_capacity"),
                  total.c.used.label("total_used"), sessions.c.name.label("session_name"),
                  price_tiers.c.name.label("tier_name"))
        .outerjoin(total, sa.and_(total.c.kind == "contract",
                                  total.c.session_id == quotas.c.session_id,
                                  total.c.price_tier_id == quotas.c.price_tier_id))
        .outerjoin(sessions, sessions.c.id == quotas.c.session_id)
        .outerjoin(price_tiers, price_tiers.c.id == quotas.c.price_tier_id)
        .where(quotas.c.kind == "channel",
               quotas.c.channel_id == customer_channel(conn, customer_id))
        .order_by(quotas.c.session_id, quotas.c.price_tier_id)))


def total_quotas(conn: sa.Connection) -> list[sa.Row]:
    """The contract customers' total track: every quota of kind ``contract``."""
    return list(conn.execute(
        sa.select(quotas, sessions.c.name.label("session_name"),
                  price_tiers.c.name.label("tier_name"))
        .outerjoin(sessions, sessions.c.id == quotas.c.session_id)
        .outerjoin(price_tiers, price_tiers.c.id == quotas.c.price_tier_id)
        .where(quotas.c.kind == "contract")
        .order_by(quotas.c.session_id, quotas.c.price_tier_id)))


# notices

def post_notice(conn: sa.Connection, customer_id: int | None, title: str, body: str,
                actor: str, now: datetime) -> int:
    """An announcement to one customer's representatives (or, with None, to every
    customer's); its id."""
    if customer_id is not None:
        customer(conn, customer_id)
    title = _text(title, "title", 200)
    if not isinstance(body, str) or not body.strip() or len(body) > MAX_NOTICE \
            or any(not (c.isprintable() or c in "\r\n\t") for c in body):
        raise bad("body")
    notice_id = conn.execute(sa.insert(customer_notices).values(
        customer_id=customer_id, title=title, body=body.strip(), created_by=actor,
        created_at=now)).inserted_primary_key[0]
    record(conn, actor, "customer.notice", f"customer_notice:{notice_id}", None,
           {"customer_id": customer_id, "title": title})
    return notice_id


def notices_for(conn: sa.Connection, customer_id: int, limit: int = 50) -> list[sa.Row]:
    """What a customer's representatives read: its own notices and those to all, newest
    first."""
    t = customer_notices
    return list(conn.execute(sa.select(t).where(
        sa.or_(t.c.customer_id == customer_id, t.c.customer_id.is_(None)))
        .order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit)))


def all_notices(conn: sa.Connection, limit: int = 100) -> list[sa.Row]:
    t = customer_notices
    return list(conn.execute(
        sa.select(t, contract_customers.c.code.label("customer_code"))
        .outerjoin(contract_customers, contract_customers.c.id == t.c.customer_id)
        .order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit)))
