"""Words on the staff pages for what the hub's rules and the appliances write in English.

A rule's refusal (a ``HubError``) carries a code, its parameters and an English sentence for the
API, the command line and the logs; :func:`rule_error` gives a Chinese page the words of its
code.

Alerts and conflicts keep an English detail line (for the audit log, the CSV export and the
operator log); appliances report their devices' kinds, states and details in English. The
pages show them in the reader's language: a detail the hub writes is matched by the pattern of
the sentence that wrote it (``cloud/ops/alerts.py``, ``cloud/ops/conflicts.py``) and put in words with
its values; a driver's own message, which no catalogue can know, is shown as it came and
marked as English (``lang="en"``). Anything not recognised is shown as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from babel import Locale
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from cloud.core.errors import HubError
from cloud.web.error_words import ERROR_WORDS
from cloud.web.web import state_words
from sync.identity import DocumentError


def device_kind(kind: str) -> str:
    return {"turnstile": _("turnstile"), "qr_camera": _("QR camera"),
            "barcode_scanner": _("barcode scanner"), "rfid_reader": _("RFID reader"),
            "id_reader": _("ID-card reader"), "handheld": _("handheld")}.get(kind, kind)


def device_state(state: str | None) -> str:
    return {"unknown": _("not opened yet"), "up": _("up"), "degraded": _("degraded"),
            "down": _("down"), "disabled": _("disabled")}.get(state or "unknown", state or "")


def reason_words(reason: str | None) -> str:
    """An entry's reason code (the edge's closed set, ``edge/reasons.py``) in words."""
    return {"OK": _("admitted"), "ALREADY_ENTERED": _("ticket already used"),
            "UNKNOWN": _("ticket not recognised"), "FORGED": _("not issued by us"),
            "REVOKED": _("cancelled or refunded"), "NOT_YET_VALID": _("not valid yet"),
            "EXPIRED": _("no longer valid"), "WRONG_SESSION": _("not for this session or venue"),
            "WRONG_GATE": _("wrong gate for this zone"), "REALNAME_REQUIRED": _("ID required"),
            "REALNAME_MISMATCH": _("ID does not match the holder"), "BLOCKED": _("blocked"),
            "DEVICE_ERROR": _("device fault")}.get(reason or "", reason or "")


Render = Callable[[re.Match], str]

_DEVICE_DETAILS: tuple[tuple[re.Pattern, Render], ...] = (
    (re.compile(r"^gate runtime stopped$"), lambda m: _("gate runtime stopped")),
    (re.compile(r"^token revoked$"), lambda m: _("token revoked")),
    (re.compile(r"^turnstile (?P<id>\S+) is (?P<state>\w+)$"),
     lambda m: _("turnstile %(id)s is %(state)s", id=m["id"], state=device_state(m["state"]))),
    (re.compile(r"^camera (?P<id>\S+): no frame yet$"),
     lambda m: _("camera %(id)s: no frame yet", id=m["id"])),
    (re.compile(r"^camera (?P<id>\S+) is not open$"),
     lambda m: _("camera %(id)s is not open", id=m["id"])),
)

_ALERT_DETAILS: tuple[tuple[re.Pattern, Render], ...] = (
    (re.compile(r"^(?P<who>.+): no contact for (?P<n>[\d.]+) min$"),
     lambda m: _("%(who)s: no contact for %(n)s min", who=m["who"], n=m["n"])),
    (re.compile(r"^(?P<who>.+): down (?P<down>\S+) s, up (?P<up>\S+) s$"),
     lambda m: _("%(who)s: %(down)s s behind the hub, %(up)s s of entries not sent",
                 who=m["who"], down=_none(m["down"]), up=_none(m["up"]))),
    (re.compile(r"^(?P<who>.+): clock (?P<s>[-+][\d.e+-]+) s from the hub's$"),
     lambda m: _("%(who)s: clock %(s)s s from the hub's", who=m["who"], s=m["s"])),
    (re.compile(r"^(?P<who>.+): (?P<r>\d+) of (?P<n>\d+) scans refused in the last "
                r"(?P<w>\d+) min$"),
     lambda m: _("%(who)s: %(r)s of %(n)s scans refused in the last %(w)s min",
                 who=m["who"], r=m["r"], n=m["n"], w=m["w"])),
    (re.compile(r"^(?P<who>.+): (?P<rate>[\d.]+) entries per minute over the last "
                r"(?P<w>\d+) min$"),
     lambda m: _("%(who)s: %(rate)s entries per minute over the last %(w)s min",
                 who=m["who"], rate=m["rate"], w=m["w"])),
)

_CONFLICT_DETAILS: tuple[tuple[re.Pattern, Render], ...] = (
    (re.compile(r"^admitted (?P<n>\d+) times \(allowed (?P<limit>\d+)\) by (?P<a>\d+) "
                r"appliances$"),
     lambda m: _("admitted %(n)s times (%(limit)s allowed) by %(a)s appliances",
                 n=m["n"], limit=m["limit"], a=m["a"])),
    (re.compile(r"^admitted with allowlist cursor (?P<c>\d+), which carried the revocation "
                r"at (?P<seq>\d+)$"),
     lambda m: _("admitted with allowlist cursor %(c)s, which already carried the "
                 "revocation (at %(seq)s)", c=m["c"], seq=m["seq"])),
    (re.compile(r"^admitted after the refund, before the venue had synced it \(cursor "
                r"(?P<c>\d+) < (?P<seq>\d+)\)$"),
     lambda m: _("admitted after the refund, before the venue had synced it (cursor %(c)s, "
                 "refund at %(seq)s)", c=m["c"], seq=m["seq"])),
)


# what is wrong with a row of a seat map, by its code (cloud/inventory/seat_map.py,
# ROW_PROBLEMS); the column's name stays as the file spells it
SEAT_ROW_WORDS = {
    "missing_columns": _l("Missing columns %(cols)s; the columns are %(all)s."),
    "unknown_columns": _l("Unknown columns %(cols)s; the columns are %(all)s."),
    "too_many_fields": _l("More fields than the header has."),
    "empty": _l("Empty."),
    "too_long": _l("Longer than %(n)s characters."),
    "no_such_zone": _l("This venue has no zone %(zone)s (its zones: %(zones)s)."),
    "not_yes_no": _l("%(value)s is not yes/no."),
    "seat_twice": _l("Seat %(seat)s appears twice (first on line %(line)s)."),
}


def rule_error(error: Exception, **shown: str) -> str:
    """A refusal in the page's language. In English it is the rule's own sentence (the most
    precise); in another language the words of its code (``cloud/web/error_words.py``) with
    its parameters, ``shown`` saying a parameter in words where the page knows better (an
    alert rule's name). A document number refused by ``sync/identity.py`` goes by its code
    the same way; anything else is shown as written."""
    if isinstance(error, DocumentError):
        code, params = f"document_{error.code}", {}
    elif isinstance(error, HubError):
        code, params = error.code, error.params
    else:
        return str(error)
    words = ERROR_WORDS.get(code)
    if words is None or (get_locale() or Locale("en")).language == "en":
        return str(error)
    return str(words) % {**{k: _param_words(k, v) for k, v in params.items()}, **shown}


def _param_words(name: str, value) -> str:
    if name == "state":
        return state_words(value)
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def seat_row_error(row) -> str:
    """What is wrong with a row of an imported seat map (a ``RowError``), in the page's
    language."""
    words = SEAT_ROW_WORDS.get(row.code)
    if words is None or (get_locale() or Locale("en")).language == "en":
        return row.message
    return str(words) % row.params


def _none(value: str) -> str:
    return "–" if value == "None" else value


def _match(table, text: str) -> str | None:
    for pattern, render in table:
        m = pattern.match(text)
        if m:
            return render(m)
    return None


def device_detail(detail: str | None) -> Markup:
    """What a device reported with its state: the gate runtime's own words translated, a
    driver's message shown as it came, marked as English."""
    if not detail:
        return Markup("")
    words = _match(_DEVICE_DETAILS, detail)
    if words is not None:
        return Markup.escape(words)
    return Markup('<span class="driver-said" lang="en">%s</span>') % detail


def alert_detail(detail: str | None) -> str:
    return (_match(_ALERT_DETAILS, detail) or detail) if detail else ""


def conflict_detail(detail: str | None) -> str:
    return (_match(_CONFLICT_DETAILS, detail) or detail) if detail else ""


TEMPLATE_GLOBALS = {"reason_words": reason_words, "device_kind": device_kind, "device_state": device_state,
                    "device_detail": device_detail, "alert_detail": alert_detail,
                    "conflict_detail": conflict_detail, "seat_row_error": seat_row_error}
