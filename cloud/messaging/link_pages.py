"""The ticket link page (``/t/<token>``, public: the buyer follows a link from a message):
the ticket's QR code while it is valid, the holder masked, session, zone, seat, gates and
entry rules; a refunded or void ticket says so and shows no code. A form asks for the link to
be sent again to where it went (``cloud/messaging/delivery.py`` limits how often)."""

from __future__ import annotations

from flask import render_template
from flask_babel import gettext as _

from cloud.core.errors import HubError
from cloud.messaging.delivery import redeliver, ticket_by_link
from cloud.web.web import engine, ok, page_blueprint, public, qr_svg, refused
from cloud.web.words import rule_error

bp = page_blueprint("ticket_link")


@bp.get("/t/<token>")
@public
def show(token: str):
    try:
        with engine().connect() as conn:
            view = ticket_by_link(conn, token)
    except HubError as e:
        return render_template("messaging/ticket_link.html", view=None,
                               error=rule_error(e)), 404
    return render_template("messaging/ticket_link.html", view=view, token=token, error=None,
                           qr_svg=qr_svg)


@bp.post("/t/<token>")
@public
def send_again(token: str):
    try:
        with engine().begin() as conn:
            redeliver(conn, token)
    except HubError as e:
        refused(rule_error(e))
        status = e.status
    else:
        ok(_("The ticket is sent again."))
        status = 200
    try:
        with engine().connect() as conn:
            view = ticket_by_link(conn, token)
    except HubError as e:
        return render_template("messaging/ticket_link.html", view=None,
                               error=rule_error(e)), 404
    return render_template("messaging/ticket_link.html", view=view, token=token,
                           error=None, qr_svg=qr_svg), status
