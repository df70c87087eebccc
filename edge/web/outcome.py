"""What a screen shows for an entry once its lane has had its say.

An admission at a lane with a turnstile is not finished when the engine says OK: the lane must
open and, where the turnstile reports passages, someone must pass (``edge/passages.py``). When
the turnstile is down, refuses to open, or nobody passes, the admission is annulled (the ticket
stays unused) and a screen must not go on showing the green "go ahead": it shows "Valid — lane
did not open" in amber, with the reason. The gate screen, its live feed and the handheld page
take their colours and words from here, so they agree.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from edge import passages, status
from edge.reasons import Reason, colour, words
from edge.web import detail_words
from edge.web.helpers import device_detail_words, device_state_name, kind_name
from sync.timeutil import utcnow

NOT_OPENED = (passages.FAILED, passages.TIMEOUT)
USABLE_STATES = ("up", "degraded")


def not_opened(reason: str, passage: str | None) -> bool:
    """A valid ticket whose lane never let anyone through: the admission was annulled."""
    return reason == Reason.OK.value and passage in NOT_OPENED


def settled(reason: str, passage: str | None) -> bool:
    """Whether the entry's outcome can still change (an admission waiting for its passage)."""
    return not (reason == Reason.OK.value and passage == "pending")


def shown(reason: str, passage: str | None, detail: str, lang: str,
          detail_code: str | None = None, detail_params: Mapping[str, Any] | None = None) -> dict:
    """``colour``, ``words``, ``detail`` (in the screen's language), ``admitted``, ``settled``
    and ``not_opened`` for an entry's reason, passage result and detail (its English words,
    and its code and parameters where it has them)."""
    r = Reason(reason) if reason in Reason.__members__ else Reason.DEVICE_ERROR
    if not_opened(reason, passage):
        why = detail.rsplit("; ", 1)[-1]  # passages.annul appends the reason to the detail
        return {"colour": "amber", "words": _("Valid — lane did not open"),
                "detail": passage_words(why), "admitted": False, "settled": True,
                "not_opened": True}
    return {"colour": colour(r), "words": words(r, lang),
            "detail": detail_words.translate(detail_code, detail_params, detail),
            "admitted": r is Reason.OK, "settled": settled(reason, passage),
            "not_opened": False}


# The gate runtime's reasons for annulling an admission (edge/gates/lane.py, edge/passages.py,
# and lane_turnstile below), which passages.annul appends to the entry's detail. They are not
# the engine's verdict details and carry no code: the fixed ones are looked up by their words,
# the few that name a value by their fixed beginning and end; anything else (a driver's own
# message) is shown as written.
_PASSAGE_FIXED = {
    "the turnstile reports nobody passed": _l("the turnstile reports nobody passed"),
    "passage unconfirmed: the gate runtime stopped while the lane was open":
        _l("passage unconfirmed: the gate runtime stopped while the lane was open"),
}
_TURNSTILE_STATES = ("up", "degraded", "down", "unknown", "disabled", "not reporting")


def passage_words(why: str) -> str:
    """Why an admission was annulled, in the screen's language."""
    fixed = _PASSAGE_FIXED.get(why)
    if fixed is not None:
        return str(fixed)
    head, sep, rest = why.partition("lane not opened: ")
    if sep and not head:
        return _("lane not opened: %(why)s", why=passage_words(rest))
    if why.startswith("no passage within ") and why.endswith(" s"):
        return _("no passage within %(s)s s", s=why[len("no passage within "):-2])
    if why.startswith("lane '") and why.endswith("' is not configured"):
        return _("lane %(lane)s is not configured", lane=why[6:-len("' is not configured")])
    device, sep, state = why.removeprefix("turnstile ").partition(" is ")
    if why.startswith("turnstile ") and sep and " " not in device and state in \
            _TURNSTILE_STATES:
        return _("turnstile %(device)s is %(state)s", device=device,
                 state=device_state_name("silent" if state == "not reporting" else state))
    return why


def lane_turnstile(conn: sqlite3.Connection, lane: str,
                   now: datetime | None = None) -> tuple[str, str] | None:
    """The lane's turnstile as the gate runtime last reported it: ``(device id, why it cannot
    open)``, the reason empty while it is up (or degraded) and reporting; None for a lane
    without an enabled turnstile (staff let people through by hand)."""
    for device in status.devices(conn, now or utcnow(), lane=lane, kind="turnstile"):
        if not device["enabled"]:
            continue
        if device["silent"]:
            return device["id"], f"turnstile {device['id']} is not reporting"
        if device["state"] not in USABLE_STATES:
            return device["id"], f"turnstile {device['id']} is {device['state']}"
        return device["id"], ""
    return None


def lane_devices(conn: sqlite3.Connection, lanes: list[str],
                 now: datetime | None = None) -> dict[str, list[dict]]:
    """Each lane's enabled devices (cameras, readers, turnstile) for the screen's strip."""
    out: dict[str, list[dict]] = {lane: [] for lane in lanes}
    for device in status.devices(conn, now or utcnow()):
        if device["lane"] in out and device["enabled"]:
            state = "silent" if device["silent"] else device["state"]
            out[device["lane"]].append({
                "id": device["id"], "kind": device["kind"], "kind_name": kind_name(
                    device["kind"]), "state": state, "state_name": device_state_name(state),
                "detail": device_detail_words(device["detail"])[0]})
    return out
