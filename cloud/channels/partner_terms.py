"""Partners' terms in distribution: a partner's profile, the prices agreed with it and the
sales codes (销售码) that bind a supplier's product to distributors and agents.

- A profile (``partner_profiles``) holds the partner's contact — name, phone and e-mail,
  sealed together (cloud/core/seal.py) and masked wherever shown — its address and, for a
  supplier, whether it may bind its own sales codes. The partner itself (name, state) is the
  ledger's (cloud/ledger/partners.py): a state change goes through ``edit_partner``.
- An agreed price is never edited: it ends (:func:`end_price`) and a new one starts
  (:func:`add_price`), neither in the past, so what a partner paid at any past moment stays
  what was agreed then. Where two prices are in force at once, the one that started last
  counts (:func:`price_at`).
- A sales code names one product of one supplier; binding it to a distributor or an agent
  lets that partner sell the product (:func:`bound_products`). Staff with
  ``channels.manage`` bind and unbind (their pages check the permission); a supplier's own
  portal user may only when its profile says ``may_bind_codes``, and only its own codes
  (``as_supplier``). A withdrawn code binds nothing.

Every change is audited (cloud/core/audit.py) in the caller's transaction, never with the
contact in clear.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.tables import price_tiers, products
from cloud.channels.tables import (
    agreed_prices,
    partner_profiles,
    sales_code_bindings,
    sales_codes,
)
from cloud.core.audit import record
from cloud.core.errors import Code, HubError
from cloud.core.seal import context, keyring_for
from cloud.ledger.partners import edit_partner, partner
from cloud.ledger.tables import partners

SELLERS = ("distributor", "agent")  # the partners prices are agreed with and codes bound to
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read out over a phone
CODE_LENGTH = 8
MAX_AMOUNT = 10**12
_CURRENCY = re.compile(r"[A-Z]{3}")
_PHONE = re.compile(r"\+?[0-9][0-9 -]{4,30}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")


class TermsError(HubError):
    """A partner's profile, agreed price or sales code that cannot be changed as asked."""

    codes = {
        "bad_terms_request": Code(422, "%(field)s is missing or not valid"),
        "unknown_agreed_price": Code(404, "no agreed price %(price_id)s"),
        "unknown_sales_code": Code(404, "no sales code %(code_id)s"),
        "sales_code_withdrawn": Code(409, "sales code %(code)s is withdrawn"),
        "binding_not_allowed": Code(403, "this supplier may not bind its sales codes itself"),
        "unknown_code_binding": Code(404, "sales code %(code)s is not bound to partner "
                                          "%(partner_id)s"),
        "stock_below_sold": Code(409, "the stock of %(day)s cannot be less than the %(used)s "
                                      "already sold"),
    }


def _bad(field: str) -> TermsError:
    return TermsError("bad_terms_request", field=field)


def _id(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**31:
        raise _bad(field)
    return value


def _moment(value: object, field: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise _bad(field)
    return value


def _text(value: object, field: str, limit: int, *, empty: bool = False) -> str:
    if not isinstance(value, str) or len(value) > limit or not value.isprintable() \
            or (not empty and not value.strip()):
        raise _bad(field)
    return value.strip()


def _partner_of(conn: sa.Connection, partner_id: object, field: str,
                kinds: tuple[str, ...] | None = None):
    row = conn.execute(sa.select(partners).where(
        partners.c.id == _id(partner_id, field))).first()
    if row is None or (kinds is not None and row.kind not in kinds):
        raise _bad(field)
    return row


# -- profiles ---------------------------------------------------------------------------------


def contact_context(partner_id: int) -> str:
    """What a partner's sealed contact belongs to (its associated data)."""
    return context("partner_profiles", partner_id, "sealed_contact")


def mask_phone(phone: str) -> str:
    """13800138000 → 138****8000."""
    digits = phone.replace(" ", "").replace("-", "")
    return digits[:3] + "****" + digits[-4:] if len(digits) > 7 else "****"


def mask_email(address: str) -> str:
    """agent@example.com → a****@example.com."""
    local, _sep, domain = address.partition("@")
    return local[:1] + "****@" + domain


def mask_name(name: str) -> str:
    """张三丰 → 张**; Li Lei → L******."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def profile(conn: sa.Connection, partner_id: int, *, masked: bool = True) -> dict:
    """The partner with its profile: contact (masked unless asked otherwise), address and
    ``may_bind_codes``; a partner with no profile yet has an empty one."""
    row = partner(conn, partner_id)
    prof = conn.execute(sa.select(partner_profiles)
                        .where(partner_profiles.c.partner_id == partner_id)).first()
    contact = {"name": "", "phone": "", "email": ""}
    if prof is not None and prof.sealed_contact:
        contact.update(json.loads(keyring_for(conn).open(prof.sealed_contact,
                                                         contact_context(partner_id))))
    if masked:
        contact = {"name": mask_name(contact["name"]),
                   "phone": mask_phone(contact["phone"]) if contact["phone"] else "",
                   "email": mask_email(contact["email"]) if contact["email"] else ""}
    return {"id": row.id, "code": row.code, "name": row.name, "kind": row.kind,
            "state": row.state, "contact": contact,
            "address": prof.address if prof is not None else "",
            "may_bind_codes": bool(prof.may_bind_codes) if prof is not None else False}


def _contact(name: object, phone: object, email: object) -> dict:
    contact = {"name": _text(name, "contact_name", 100, empty=True),
               "phone": _text(phone, "contact_phone", 32, empty=True),
               "email": _text(email, "contact_email", 254, empty=True).lower()}
    if contact["phone"] and not _PHONE.fullmatch(contact["phone"]):
        raise _bad("contact_phone")
    if contact["email"] and not _EMAIL.fullmatch(contact["email"]):
        raise _bad("contact_email")
    return contact


def set_profile(conn: sa.Connection, partner_id: int, *, actor: str, now: datetime,
                contact_name: str | None = None, contact_phone: str | None = None,
                contact_email: str | None = None, address: str | None = None,
                may_bind_codes: bool | None = None, name: str | None = None,
                state: str | None = None) -> None:
    """Change what is given of a partner's profile. The contact is given whole (its three
    fields, each may be empty) or not at all; ``may_bind_codes`` only for a supplier; name and
    state are the ledger's partner's (``edit_partner``)."""
    row = _partner_of(conn, partner_id, "partner_id")
    before = profile(conn, partner_id, masked=False)
    values: dict = {}
    given = (contact_name, contact_phone, contact_email)
    if any(v is not None for v in given):
        contact = _contact(*("" if v is None else v for v in given))
        if contact != before["contact"]:
            values["sealed_contact"] = keyring_for(conn).seal(
                json.dumps(contact, ensure_ascii=False, sort_keys=True), contact_context(partner_id))
    if address is not None and _text(address, "address", 300, empty=True) != before["address"]:
        values["address"] = address.strip()
    if may_bind_codes is not None:
        if not isinstance(may_bind_codes, bool) or (may_bind_codes and row.kind != "supplier"):
            raise _bad("may_bind_codes")
        if may_bind_codes != before["may_bind_codes"]:
            values["may_bind_codes"] = may_bind_codes
    if name is not None or state is not None:
        edit_partner(conn, partner_id, actor=actor, now=now, name=name, state=state)
    if not values:
        return
    exists = conn.execute(sa.select(partner_profiles.c.partner_id)
                          .where(partner_profiles.c.partner_id == partner_id)).first()
    stamp = {"updated_by": actor, "updated_at": now}
    if exists:
        conn.execute(sa.update(partner_profiles)
                     .where(partner_profiles.c.partner_id == partner_id)
                     .values(**values, **stamp))
    else:
        conn.execute(sa.insert(partner_profiles).values(partner_id=partner_id, **values, **stamp))
    shown = {k: ("changed" if k == "sealed_contact" else v) for k, v in values.items()}
    record(conn, actor, "partner.profile", f"partner:{partner_id}",
           {k: before[k] for k in ("address", "may_bind_codes") if k in values}, shown)


def may_bind_codes(conn: sa.Connection, supplier_id: int) -> bool:
    """Whether the supplier's own portal users may bind its sales codes."""
    return bool(conn.execute(sa.select(partner_profiles.c.may_bind_codes).where(
        partner_profiles.c.partner_id == supplier_id)).scalar())


def list_partners(conn: sa.Connection, kinds: tuple[str, ...] = (*SELLERS, "supplier")
                  ) -> list[sa.Row]:
    """The partners of these kinds with their address and whether they may bind codes (no
    contact: a list shows none), by kind then code."""
    return list(conn.execute(
        sa.select(partners.c.id, partners.c.code, partners.c.name, partners.c.kind,
                  partners.c.state, partner_profiles.c.address,
                  partner_profiles.c.may_bind_codes)
        .outerjoin(partner_profiles, partner_profiles.c.partner_id == partners.c.id)
        .where(partners.c.kind.in_(kinds)).order_by(partners.c.kind, partners.c.code)))


# -- agreed prices ------------------------------------------------------------------------------


def _priced(conn: sa.Connection, product_id: object, price_tier_id: object) -> dict:
    if (product_id is None) == (price_tier_id is None):
        raise _bad("product_id" if product_id is None else "price_tier_id")
    if product_id is not None:
        if not conn.execute(sa.select(products.c.id).where(
                products.c.id == _id(product_id, "product_id"))).first():
            raise _bad("product_id")
        return {"product_id": product_id, "price_tier_id": None}
    if not conn.execute(sa.select(price_tiers.c.id).where(
            price_tiers.c.id == _id(price_tier_id, "price_tier_id"))).first():
        raise _bad("price_tier_id")
    return {"product_id": None, "price_tier_id": price_tier_id}


def add_price(conn: sa.Connection, partner_id: int, *, product_id: int | None = None,
              price_tier_id: int | None = None, amount: int, currency: str = "CNY",
              effective_from: datetime, actor: str, now: datetime) -> int:
    """A price agreed with a distributor or agent for a product (or a session's price tier),
    in minor units, from ``effective_from`` (not before ``now``); its id."""
    _partner_of(conn, partner_id, "partner_id", SELLERS)
    what = _priced(conn, product_id, price_tier_id)
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_AMOUNT:
        raise _bad("amount")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise _bad("currency")
    if _moment(effective_from, "effective_from") < now:
        raise _bad("effective_from")
    price_id = conn.execute(sa.insert(agreed_prices).values(
        partner_id=partner_id, **what, amount=amount, currency=currency,
        effective_from=effective_from, created_by=actor, created_at=now)).inserted_primary_key[0]
    record(conn, actor, "agreed_price.add", f"agreed_price:{price_id}", None,
           {"partner_id": partner_id, **what, "amount": amount, "currency": currency,
            "effective_from": effective_from.isoformat()})
    return price_id


def end_price(conn: sa.Connection, price_id: int, effective_until: datetime, actor: str,
              now: datetime) -> None:
    """The price applies to nothing sold from ``effective_until`` on (not before ``now``,
    after it started, and only ever earlier than an end it had)."""
    row = conn.execute(sa.select(agreed_prices)
                       .where(agreed_prices.c.id == _id(price_id, "price_id"))).first()
    if row is None:
        raise TermsError("unknown_agreed_price", price_id=price_id)
    until = _moment(effective_until, "effective_until")
    if until < now or until <= row.effective_from or (
            row.effective_until is not None and until >= row.effective_until):
        raise _bad("effective_until")
    conn.execute(sa.update(agreed_prices).where(agreed_prices.c.id == price_id)
                 .values(effective_until=until))
    record(conn, actor, "agreed_price.end", f"agreed_price:{price_id}",
           {"effective_until": row.effective_until.isoformat() if row.effective_until
            else None}, {"effective_until": until.isoformat()})


def _in_force(at: datetime):
    t = agreed_prices
    return sa.and_(t.c.effective_from <= at,
                   sa.or_(t.c.effective_until.is_(None), t.c.effective_until > at))


def _price_of(column: sa.Column):
    t = agreed_prices
    return sa.select(t).where(
        t.c.partner_id == sa.bindparam("partner_id"), column == sa.bindparam("of"),
        _in_force(sa.bindparam("at", type_=t.c.effective_from.type))
    ).order_by(t.c.effective_from.desc(), t.c.id.desc()).limit(1)


_PRICE_OF_PRODUCT = _price_of(agreed_prices.c.product_id)
_PRICE_OF_TIER = _price_of(agreed_prices.c.price_tier_id)


def agreed_price(conn: sa.Connection, partner_id: int, product_id: int | None = None,
                 price_tier_id: int | None = None, *, at: datetime):
    """The agreed price row in force at ``at`` (the one that started last), or None."""
    if product_id is not None:
        return conn.execute(_PRICE_OF_PRODUCT, {"partner_id": partner_id, "of": product_id,
                                                "at": at}).first()
    return conn.execute(_PRICE_OF_TIER, {"partner_id": partner_id, "of": price_tier_id,
                                         "at": at}).first()


def price_at(conn: sa.Connection, partner_id: int, product_id: int | None = None,
             price_tier_id: int | None = None, *, at: datetime) -> int | None:
    """The amount agreed with the partner for the product (or tier) at ``at``, or None."""
    row = agreed_price(conn, partner_id, product_id, price_tier_id, at=at)
    return None if row is None else row.amount


def list_prices(conn: sa.Connection, partner_id: int, at: datetime | None = None
                ) -> list[sa.Row]:
    """The partner's agreed prices (those in force at ``at`` when given) with the product's
    code and name, newest start first."""
    t = agreed_prices
    q = (sa.select(t, products.c.code.label("product_code"),
                   products.c.name.label("product_name"),
                   price_tiers.c.code.label("tier_code"),
                   price_tiers.c.session_id.label("tier_session_id"))
         .outerjoin(products, products.c.id == t.c.product_id)
         .outerjoin(price_tiers, price_tiers.c.id == t.c.price_tier_id)
         .where(t.c.partner_id == partner_id)
         .order_by(t.c.effective_from.desc(), t.c.id.desc()))
    if at is not None:
        q = q.where(_in_force(at))
    return list(conn.execute(q))


# -- sales codes --------------------------------------------------------------------------------


def _new_code(conn: sa.Connection) -> str:
    """A code no other sales code has (the unique index stands behind the check)."""
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if not conn.execute(sa.select(sales_codes.c.id)
                            .where(sales_codes.c.code == code)).first():
            return code


def create_code(conn: sa.Connection, supplier_id: int, product_id: int, name: str, actor: str,
                now: datetime) -> str:
    """A new sales code for a supplier's product, bound to no one yet; the code (eight
    characters that cannot be misread: no 0, O, 1, I or L)."""
    _partner_of(conn, supplier_id, "supplier_id", ("supplier",))
    if not conn.execute(sa.select(products.c.id).where(
            products.c.id == _id(product_id, "product_id"))).first():
        raise _bad("product_id")
    name = _text(name, "name", 200)
    code = _new_code(conn)
    code_id = conn.execute(sa.insert(sales_codes).values(
        code=code, product_id=product_id, supplier_id=supplier_id, name=name, state="active",
        created_by=actor, created_at=now)).inserted_primary_key[0]
    record(conn, actor, "sales_code.create", f"sales_code:{code_id}", None,
           {"code": code, "supplier_id": supplier_id, "product_id": product_id, "name": name})
    return code


def sales_code(conn: sa.Connection, code_id: int, *, as_supplier: int | None = None):
    """The sales code with its product's code and name; ``unknown_sales_code`` if there is
    none — or, ``as_supplier``, if it is another supplier's."""
    t = sales_codes
    row = conn.execute(
        sa.select(t, products.c.code.label("product_code"),
                  products.c.name.label("product_name"), partners.c.code.label("supplier_code"),
                  partners.c.name.label("supplier_name"))
        .join(products, products.c.id == t.c.product_id)
        .join(partners, partners.c.id == t.c.supplier_id)
        .where(t.c.id == _id(code_id, "code_id"))).first()
    if row is None or (as_supplier is not None and row.supplier_id != as_supplier):
        raise TermsError("unknown_sales_code", code_id=code_id)
    return row


def code_id_of(conn: sa.Connection, code: str) -> int | None:
    """The id of the sales code with this text, or None."""
    return conn.execute(sa.select(sales_codes.c.id).where(sales_codes.c.code == code)).scalar()


def list_codes(conn: sa.Connection, *, supplier_id: int | None = None) -> list[sa.Row]:
    """Sales codes (a supplier's, when given) with their product and how many partners each
    is bound to now, newest first."""
    t, b = sales_codes, sales_code_bindings
    bound = (sa.select(sa.func.count()).where(b.c.sales_code_id == t.c.id,
                                              b.c.revoked_at.is_(None))
             .correlate(t).scalar_subquery())
    q = (sa.select(t, products.c.code.label("product_code"),
                   products.c.name.label("product_name"), partners.c.code.label("supplier_code"),
                   bound.label("bound"))
         .join(products, products.c.id == t.c.product_id)
         .join(partners, partners.c.id == t.c.supplier_id)
         .order_by(t.c.id.desc()))
    if supplier_id is not None:
        q = q.where(t.c.supplier_id == supplier_id)
    return list(conn.execute(q))


def withdraw_code(conn: sa.Connection, code_id: int, actor: str, now: datetime, *,
                  as_supplier: int | None = None) -> None:
    """The code binds nothing from now on (its bindings stay, as history); for good."""
    row = sales_code(conn, code_id, as_supplier=as_supplier)
    if row.state == "withdrawn":
        return
    conn.execute(sa.update(sales_codes).where(sales_codes.c.id == row.id)
                 .values(state="withdrawn"))
    record(conn, actor, "sales_code.withdraw", f"sales_code:{row.id}", {"state": row.state},
           {"state": "withdrawn", "at": now.isoformat()})


def _may_bind(conn: sa.Connection, code_id: int, as_supplier: int | None):
    row = sales_code(conn, code_id, as_supplier=as_supplier)
    if as_supplier is not None and not may_bind_codes(conn, as_supplier):
        raise TermsError("binding_not_allowed")
    return row


def bind(conn: sa.Connection, code_id: int, partner_id: int, actor: str, now: datetime, *,
         as_supplier: int | None = None) -> None:
    """Bind the code to a distributor or agent (again, if it was unbound): from ``now`` the
    partner may sell the code's product. ``as_supplier``: done by that supplier's own portal
    user, which its profile must allow, on its own code."""
    row = _may_bind(conn, code_id, as_supplier)
    if row.state != "active":
        raise TermsError("sales_code_withdrawn", code=row.code)
    _partner_of(conn, partner_id, "partner_id", SELLERS)
    b = sales_code_bindings
    key = sa.and_(b.c.sales_code_id == row.id, b.c.partner_id == partner_id)
    had = conn.execute(sa.select(b.c.revoked_at).where(key)).first()
    if had is not None and had.revoked_at is None:
        return
    values = {"granted_by": actor, "granted_at": now, "revoked_at": None}
    if had is None:
        conn.execute(sa.insert(b).values(sales_code_id=row.id, partner_id=partner_id, **values))
    else:
        conn.execute(sa.update(b).where(key).values(**values))
    record(conn, actor, "sales_code.bind", f"sales_code:{row.id}", None,
           {"partner_id": partner_id})


def unbind(conn: sa.Connection, code_id: int, partner_id: int, actor: str, now: datetime, *,
           as_supplier: int | None = None) -> None:
    """The partner may no longer sell the code's product from ``now``."""
    row = _may_bind(conn, code_id, as_supplier)
    b = sales_code_bindings
    done = conn.execute(sa.update(b).where(
        b.c.sales_code_id == row.id, b.c.partner_id == _id(partner_id, "partner_id"),
        b.c.revoked_at.is_(None)).values(revoked_at=now)).rowcount
    if not done:
        raise TermsError("unknown_code_binding", code=row.code, partner_id=partner_id)
    record(conn, actor, "sales_code.unbind", f"sales_code:{row.id}",
           {"partner_id": partner_id}, None)


def bindings(conn: sa.Connection, code_id: int) -> list[sa.Row]:
    """Who the code is (or was) bound to, current first, with the partner's code and name."""
    b = sales_code_bindings
    return list(conn.execute(
        sa.select(b, partners.c.code.label("partner_code"),
                  partners.c.name.label("partner_name"), partners.c.kind.label("partner_kind"))
        .join(partners, partners.c.id == b.c.partner_id).where(b.c.sales_code_id == code_id)
        .order_by(b.c.revoked_at.is_not(None), partners.c.code)))


def _bound_at(partner_id: int, at: datetime):
    t, b = sales_codes, sales_code_bindings
    return (sa.select(t.c.product_id).join(b, b.c.sales_code_id == t.c.id)
            .where(b.c.partner_id == partner_id, t.c.state == "active", b.c.granted_at <= at,
                   sa.or_(b.c.revoked_at.is_(None), b.c.revoked_at > at)))


_BOUND = _bound_at(sa.bindparam("partner_id"),
                   sa.bindparam("at", type_=sales_code_bindings.c.granted_at.type))


# whether the product is bound to the partner, and the amount agreed for it, in one statement
_BOUND_PRICE = sa.select(
    sa.exists(_BOUND.where(sales_codes.c.product_id == sa.bindparam("of"))).label("bound"),
    _PRICE_OF_PRODUCT.with_only_columns(agreed_prices.c.amount).scalar_subquery()
    .label("amount"))


def bound_price(conn: sa.Connection, partner_id: int, product_id: int,
                at: datetime) -> tuple[bool, int | None]:
    """Whether some active sales code binds the product to the partner at ``at``, and the
    amount agreed for it then (None: no price in force)."""
    row = conn.execute(_BOUND_PRICE, {"partner_id": partner_id, "of": product_id,
                                      "at": at}).one()
    return bool(row.bound), row.amount


def bound_products(conn: sa.Connection, partner_id: int, at: datetime) -> list[int]:
    """The products some active sales code binds to the partner at ``at``, by id."""
    return sorted(set(conn.execute(_BOUND, {"partner_id": partner_id, "at": at}).scalars()))


def partner_codes(conn: sa.Connection, partner_id: int, at: datetime) -> list[dict]:
    """What a distributor or agent may sell at ``at``: each bound code with its product,
    supplier and the price agreed now (None: none in force)."""
    t, b = sales_codes, sales_code_bindings
    rows = conn.execute(
        sa.select(t.c.id, t.c.code, t.c.name, t.c.product_id,
                  products.c.code.label("product_code"), products.c.name.label("product_name"),
                  products.c.kind.label("product_kind"), partners.c.name.label("supplier_name"))
        .join(b, b.c.sales_code_id == t.c.id)
        .join(products, products.c.id == t.c.product_id)
        .join(partners, partners.c.id == t.c.supplier_id)
        .where(b.c.partner_id == partner_id, t.c.state == "active", b.c.granted_at <= at,
               sa.or_(b.c.revoked_at.is_(None), b.c.revoked_at > at))
        .order_by(products.c.code, t.c.code)).all()
    out = []
    for r in rows:
        price = agreed_price(conn, partner_id, r.product_id, at=at)
        out.append({**r._mapping, "amount": price.amount if price else None,
                    "currency": price.currency if price else None})
    return out
