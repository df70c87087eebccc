"""The identity review pages (permission ``buyers.review_identity``): the queue of documents
waiting for a person (``/identities/review``), a case with the photo beside the name and
number it must show (``/identities/<id>``; opening it is audited), and approve or refuse, each
asking for confirmation (a refusal with its reason). The rules are cloud/buyers/review.py;
these views only translate."""

from __future__ import annotations

from flask import Response, abort, render_template, request
from flask_babel import gettext as _

from cloud.buyers.identity_errors import IdentityError
from cloud.buyers.review import (
    MAX_REASON,
    MIN_REASON,
    decide_review,
    photo,
    review_case,
    review_queue,
)
from cloud.core.errors import HubError
from cloud.web.web import actor, back, engine, ok, page_blueprint, permission, refused
from cloud.web.words import rule_error

bp = page_blueprint("identity_review")
REVIEWER = "buyers.review_identity"


@bp.get("/identities/review")
@permission(REVIEWER)
def queue():
    with engine().connect() as conn:
        waiting = review_queue(conn)
    return render_template("buyers/identity_queue.html", waiting=waiting)


def _case(identity_id: int, decide: str | None):
    try:
        with engine().begin() as conn:   # the opening is audited
            found = review_case(conn, identity_id, actor())
    except IdentityError:
        abort(404)
    return render_template("buyers/identity_case.html", **found, decide=decide,
                           low=MIN_REASON, high=MAX_REASON)


@bp.get("/identities/<int:identity_id>")
@permission(REVIEWER)
def case(identity_id: int):
    return _case(identity_id, None)


@bp.get("/identities/<int:identity_id>/photo")
@permission(REVIEWER)
def photo_file(identity_id: int):
    with engine().connect() as conn:
        found = photo(conn, identity_id)
    if found is None:
        abort(404)
    media_type, data = found
    # checked as an image when it came in; still, the browser is told not to guess
    return Response(data, content_type=media_type, headers={
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
        "Content-Disposition": "inline", "Content-Security-Policy": "default-src 'none'"})


@bp.get("/identities/<int:identity_id>/<any(approve, refuse):decision>")
@permission(REVIEWER)
def confirm(identity_id: int, decision: str):
    return _case(identity_id, decision)


@bp.post("/identities/<int:identity_id>/<any(approve, refuse):decision>")
@permission(REVIEWER)
def decide(identity_id: int, decision: str):
    reason = request.form.get("reason", "")[:2000]
    try:
        with engine().begin() as conn:
            decide_review(conn, identity_id, decision, actor=actor(), reason=reason)
    except HubError as e:
        refused(rule_error(e))
        return back("identity_review.confirm", identity_id=identity_id, decision=decision)
    ok(_("The document is approved: the person is verified.") if decision == "approve" else
       _("The document is refused: the buyer may send another photo."))
    return back("identity_review.queue")
