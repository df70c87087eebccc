"""The waiting room in the browser: while a session's room is on (:mod:`waiting_room`),
the checkout sends a buyer without an admission pass to ``/shop/<lang>/sessions/<id>/queue``.
There they join the queue (a form: a new, later place each time it is sent without a token)
and the page shows their place, how many are ahead and a live estimate, asking again every
few seconds (a script, or the page's refresh without one). Once admitted the pass is kept in a
cookie for that session and the buyer goes back to the seats.

The queue token and the pass are the JSON API's (the same signed values); the cookies are
HttpOnly, SameSite=Lax, limited to ``/shop`` and live as long as what they carry.
"""

from __future__ import annotations

from datetime import timedelta

from flask import make_response, redirect, render_template, request, url_for

from cloud.core.errors import HubError
from cloud.storefront import browser_pages as buyer_session
from cloud.storefront import waiting_room
from cloud.storefront.pages import bp
from cloud.storefront.queue_api import room_settings
from cloud.web.limits import limited
from cloud.web.web import engine
from cloud.web.words import rule_error
from sync.timeutil import utcnow

REFRESH_S = 5
STALE = ("queue_token_invalid", "queue_token_expired")


def queue_cookie(session_id: int) -> str:
    return f"wicket_queue_{session_id}"


def pass_cookie(session_id: int) -> str:
    return f"wicket_pass_{session_id}"


def admitted(session_id: int) -> None:
    """Raise the waiting room's refusal unless this browser may buy for the session now."""
    with engine().connect() as conn:
        waiting_room.check_admission(conn, room_settings(), session_id,
                                     request.cookies.get(pass_cookie(session_id)), utcnow())


def needs_queue(session_id: int) -> bool:
    """Whether the session sells through its room and this browser holds no good pass."""
    try:
        admitted(session_id)
    except waiting_room.QueueError:
        return True
    return False


def _keep(response, name: str, value: str, expires) -> None:
    response.set_cookie(name, value, expires=expires, httponly=True, samesite="Lax",
                        secure=buyer_session._secure(), path="/shop")


def _answer(session_id: int, place: waiting_room.Place, new: bool):
    if place.admitted:
        response = make_response(redirect(url_for("shop.session", session_id=session_id,
                                                  admitted=1), 303))
        _keep(response, pass_cookie(session_id), place.pass_token, place.pass_expires_at)
    else:
        response = make_response(render_template(
            "storefront/queue.html", session_id=session_id, place=place, refresh=REFRESH_S,
            joined=True))
        response.headers["Refresh"] = str(REFRESH_S)
    if new:
        _keep(response, queue_cookie(session_id), place.token,
              utcnow() + timedelta(hours=room_settings().token_hours))
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/<lang>/sessions/<int:session_id>/queue")
def queue(session_id: int):
    token = request.cookies.get(queue_cookie(session_id))
    try:
        with engine().begin() as conn:
            if not waiting_room.needs_pass(conn, room_settings(), session_id):
                return redirect(url_for("shop.session", session_id=session_id), 303)
            if token:
                place = waiting_room.poll(conn, room_settings(), session_id, token, utcnow())
                return _answer(session_id, place, new=False)
    except HubError as e:
        if e.code == "unknown_session":
            return render_template("storefront/not_found.html"), 404
        if e.code not in STALE:
            return render_template("storefront/queue.html", session_id=session_id,
                                   place=None, error=rule_error(e), joined=False), e.status
    return render_template("storefront/queue.html", session_id=session_id, place=None,
                           joined=False)


@bp.post("/<lang>/sessions/<int:session_id>/queue")
@limited("WAITING_ROOM_ENTER_LIMIT")
def join(session_id: int):
    token = request.cookies.get(queue_cookie(session_id)) or None
    try:
        with engine().begin() as conn:
            try:
                place, new = waiting_room.enter(conn, room_settings(), session_id, utcnow(),
                                                token)
            except waiting_room.QueueError as e:
                if token is None or e.code not in STALE:
                    raise
                # a token of another time (expired, or of a secret since changed): a new place
                place, new = waiting_room.enter(conn, room_settings(), session_id, utcnow())
    except HubError as e:
        return render_template("storefront/queue.html", session_id=session_id, place=None,
                               error=rule_error(e), joined=False), e.status
    return _answer(session_id, place, new)
