"""Signing keys: a new key is published to every venue, then activated to sign; an old one is
retired. Each key shows how many tickets it signed. Admins only."""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template, request
from flask_babel import gettext as _

from cloud.core.trust import signing_keys
from cloud.fleet.keys import SigningKeyError, activate_key, create_key, retire_key
from cloud.sales.tables import tickets
from cloud.web.web import actor, back, engine, ok, page_blueprint, permission, refused
from cloud.web.words import rule_error

bp = page_blueprint("keys", "/keys")


@bp.get("")
@permission("keys.manage")
def index():
    with engine().connect() as conn:
        rows = conn.execute(
            sa.select(signing_keys.c.key_id, signing_keys.c.public_key, signing_keys.c.state,
                      signing_keys.c.created_at, signing_keys.c.retired_at,
                      sa.select(sa.func.count()).select_from(tickets)
                      .where(tickets.c.key_id == signing_keys.c.key_id)
                      .scalar_subquery().label("tickets"))
            .order_by(signing_keys.c.key_id)).all()
    return render_template("sales/keys.html", keys=rows)


@bp.post("")
@permission("keys.manage")
def create():
    with engine().begin() as conn:
        key_id = create_key(conn, actor=actor())
    ok(_("Key %(id)s created and published to every venue; activate it to sign with it.",
         id=key_id))
    return back("keys.index")


@bp.post("/<int:key_id>/activate")
@permission("keys.manage")
def activate(key_id: int):
    try:
        with engine().begin() as conn:
            activate_key(conn, key_id, actor=actor())
    except SigningKeyError as e:
        refused(rule_error(e))
    else:
        ok(_("Key %(id)s now signs new tickets.", id=key_id))
    return back("keys.index")


@bp.get("/<int:key_id>/retire")
@permission("keys.manage")
def confirm_retire(key_id: int):
    with engine().connect() as conn:
        key = conn.execute(sa.select(signing_keys.c.key_id, signing_keys.c.state)
                           .where(signing_keys.c.key_id == key_id)).first()
    if key is None:
        refused(_("There is no such key."))
        return back("keys.index")
    return render_template("sales/key_retire.html", key=key)


@bp.post("/<int:key_id>/retire")
@permission("keys.manage")
def retire(key_id: int):
    if request.form.get("confirm") != "yes":
        refused(_("Tick the box to confirm."))
        return back("keys.confirm_retire", key_id=key_id)
    try:
        with engine().begin() as conn:
            retire_key(conn, key_id, actor=actor())
    except SigningKeyError as e:
        refused(rule_error(e))
    else:
        ok(_("Key %(id)s is retired: appliances no longer trust codes signed with it.",
             id=key_id))
    return back("keys.index")
