"""Words on the staff pages for what the hub's rules and the appliances write in English.

A rule's refusal (``VenueError``, ``TicketError``, ...) is raised with an English sentence, for
the API, the command line and the logs; :func:`rule_error` gives a Chinese page its words: by
the error's code where it has one (document numbers), else by the sentence.

Alerts and conflicts keep an English detail line (for the audit log, the CSV export and the
operator log); appliances report their devices' kinds, states and details in English. The
pages show them in the reader's language: a detail the hub writes is matched by the pattern of
the sentence that wrote it (``cloud/alerts.py``, ``cloud/conflicts.py``) and put in words with
its values; a driver's own message, which no catalogue can know, is shown as it came and
marked as English (``lang="en"``). Anything not recognised is shown as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from babel import Locale
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup

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


def _rule(template: str) -> re.Pattern:
    """The sentence a hub rule raises, ``{name}`` for each value (quoted or not), as an
    anchored pattern."""
    parts = re.split(r"\{(\w+)\}", template)
    return re.compile("^" + "".join(re.escape(p) if i % 2 == 0 else f"'?(?P<{p}>.+?)'?"
                                    for i, p in enumerate(parts)) + "$")


# What the hub's rules (cloud/venues.py, tickets.py, inventory.py, alerts.py, ops.py) raise
# when a form asks for something they refuse: their sentence, and its words for the page.
_RULE_ERRORS: tuple[tuple[re.Pattern, Render], ...] = tuple((_rule(t), r) for t, r in (
    ("unknown time zone {tz}", lambda m: _("Unknown time zone %(tz)s.", tz=m["tz"])),
    ("a venue with code {code} exists already",
     lambda m: _("A venue with code %(code)s exists already.", code=m["code"])),
    ("zone {code} exists already at this venue",
     lambda m: _("Zone %(code)s exists already at this venue.", code=m["code"])),
    ("gate {code} exists already at this venue",
     lambda m: _("Gate %(code)s exists already at this venue.", code=m["code"])),
    ("gate {gate}: no zone {zone} at this venue",
     lambda m: _("Gate %(gate)s: this venue has no zone %(zone)s.", gate=m["gate"],
                 zone=m["zone"])),
    ("no gate {gate}", lambda m: _("No gate %(gate)s.", gate=m["gate"])),
    ("lane {code}: direction must be in or out",
     lambda m: _("Lane %(code)s: the direction is in or out.", code=m["code"])),
    ("lane {code}: no gate {gate} at this venue",
     lambda m: _("Lane %(code)s: this venue has no gate %(gate)s.", code=m["code"],
                 gate=m["gate"])),
    ("lane {code} exists already at this venue",
     lambda m: _("Lane %(code)s exists already at this venue.", code=m["code"])),
    ("all 255 key ids are in use", lambda m: _("All 255 key ids are in use.")),
    ("key {key} is {state}; only a published key can sign",
     lambda m: _("Key %(key)s is not published; only a published key can sign.",
                 key=m["key"])),
    ("key {key}: {n} active appliance(s) have not yet reported having it (appliance {first} "
     "first); activate it after they have synced",
     lambda m: _("Key %(key)s: %(n)s active appliances have not reported having it yet "
                 "(appliance %(first)s first); activate it after they have synced.",
                 key=m["key"], n=m["n"], first=m["first"])),
    ("no key {key}", lambda m: _("No key %(key)s.", key=m["key"])),
    ("key {key} is the active key; activate another one first",
     lambda m: _("Key %(key)s is the active key; activate another one first.", key=m["key"])),
    ("no active signing key: create one and activate it",
     lambda m: _("No active signing key: create one and activate it.")),
    ("an event with code {code} exists already",
     lambda m: _("An event with code %(code)s exists already.", code=m["code"])),
    ("a session must end after it starts", lambda m: _("A session must end after it starts.")),
    ("gates must open before the session starts",
     lambda m: _("Gates must open before the session starts.")),
    ("a price is a whole, non-negative number of fen (cents)",
     lambda m: _("A price is a whole, non-negative number of fen (cents).")),
    ("currency is a three-letter ISO 4217 code such as CNY",
     lambda m: _("The currency is a three-letter ISO 4217 code such as CNY.")),
    ("this session has a price tier {code} already",
     lambda m: _("This session has a price tier %(code)s already.", code=m["code"])),
    ("no seat {seat}", lambda m: _("No seat %(seat)s.", seat=m["seat"])),
    ("seat {seat} cannot be sold", lambda m: _("Seat %(seat)s cannot be sold.", seat=m["seat"])),
    ("price tier {tier} is not one of this session's",
     lambda m: _("Price tier %(tier)s is not one of this session's.", tier=m["tier"])),
    ("a seat already has a live ticket for this session",
     lambda m: _("The seat already has a live ticket for this session.")),
    ("no ticket {ticket}", lambda m: _("No ticket %(ticket)s.", ticket=m["ticket"])),
    ("ticket {ticket} is already {state}",
     lambda m: _("Ticket %(ticket)s is already %(state)s.", ticket=m["ticket"],
                 state=state_words(m["state"]))),
    ("category must be one of {choices}",
     lambda m: _("The category is one of %(choices)s.", choices=m["choices"])),
    ("some seats are not in this session's configuration",
     lambda m: _("Some seats are not in this session's configuration.")),
    ("seat {seat} is sold", lambda m: _("Seat %(seat)s is sold.", seat=m["seat"])),
    ("seat {seat}: after the configuration is confirmed only emergency seats may change "
     "category",
     lambda m: _("Seat %(seat)s: after the configuration is confirmed only emergency seats "
                 "may change category.", seat=m["seat"])),
    ("only available sellable seats can be reserved",
     lambda m: _("Only available sellable seats can be reserved.")),
    ("seat {seat} is not for sale in this session (sold, not sellable, or reserved for someone "
     "else)",
     lambda m: _("Seat %(seat)s is not for sale in this session (sold, not sellable, or "
                 "reserved for someone else).", seat=m["seat"])),
    ("a review needs a note saying what was found or done",
     lambda m: _("A review needs a note saying what was found or done.")),
    ("a note is at most {n} characters",
     lambda m: _("A note is at most %(n)s characters.", n=m["n"])),
    ("no conflict {id}", lambda m: _("No conflict %(id)s.", id=m["id"])),
    ("a password needs at least {n} characters",
     lambda m: _("A password needs at least %(n)s characters.", n=m["n"])),
    ("a password must not contain the username",
     lambda m: _("A password must not contain the username.")),
    ("a password needs more different characters",
     lambda m: _("A password needs more different characters.")),
    ("role must be one of {roles}", lambda m: _("Choose a role.")),
    ("a username is 1 to 80 printable characters",
     lambda m: _("A username is 1 to 80 printable characters.")),
    ("there is already a staff member {name}",
     lambda m: _("There is already a staff member %(name)s.", name=m["name"])),
    ("too many wrong passwords: try again later",
     lambda m: _("Too many wrong passwords: try again later.")),
    ("no staff member {id}", lambda m: _("No such staff member.")),
    ("refused_ratio: the threshold is a percentage (0 to 100)",
     lambda m: _("Refused scans: the threshold is a percentage (0 to 100).")),
    ("{kind}: threshold and window must be numbers",
     lambda m: _("%(rule)s: the threshold and the window are numbers.",
                 rule=_rule_name(m["kind"]))),
    ("{kind}: the threshold must be a number of 0 or more",
     lambda m: _("%(rule)s: the threshold is a number of 0 or more.",
                 rule=_rule_name(m["kind"]))),
    ("{kind}: the window is 1 to 240 minutes",
     lambda m: _("%(rule)s: the window is 1 to 240 minutes.", rule=_rule_name(m["kind"]))),
))

# what is wrong with a row of a seat map (cloud/venues.py, import_seats_csv); the column's
# name stays as the file spells it
_SEAT_ROW_ERRORS: tuple[tuple[re.Pattern, Render], ...] = tuple((_rule(t), r) for t, r in (
    ("missing column(s) {cols}; expected {all}",
     lambda m: _("Missing columns %(cols)s; the columns are %(all)s.", cols=m["cols"],
                 all=m["all"])),
    ("unknown column(s) {cols}; expected {all}",
     lambda m: _("Unknown columns %(cols)s; the columns are %(all)s.", cols=m["cols"],
                 all=m["all"])),
    ("more fields than the header has", lambda m: _("More fields than the header has.")),
    ("empty", lambda m: _("Empty.")),
    ("longer than {n} characters", lambda m: _("Longer than %(n)s characters.", n=m["n"])),
    ("no zone {zone} at this venue (zones: {zones})",
     lambda m: _("This venue has no zone %(zone)s (its zones: %(zones)s).", zone=m["zone"],
                 zones=m["zones"])),
    ("{value} is not yes/no", lambda m: _("%(value)s is not yes/no.", value=m["value"])),
    ("seat {seat} appears twice (first on line {line})",
     lambda m: _("Seat %(seat)s appears twice (first on line %(line)s).", seat=m["seat"],
                 line=m["line"])),
))

# a document number refused, by its code (sync/identity.py)
_DOCUMENT_ERRORS: dict[str, Callable[[], str]] = {
    "bad_birth_date": lambda: _("The birth date in the document number is not a real date."),
    "bad_length": lambda: _("The document number has the wrong length."),
    "bad_characters": lambda: _("The document number has characters this document does not "
                                "use."),
    "bad_region": lambda: _("The document number does not start as this document's do."),
    "bad_check_digit": lambda: _("The check digit does not match: the number is mistyped."),
    "unknown_type": lambda: _("Choose a document type."),
}


def _rule_name(kind: str) -> str:
    from cloud.ops.pages import rule_words

    return rule_words(kind)


def rule_error(error: Exception) -> str:
    """A hub rule's refusal in the page's language. In English it is the rule's own sentence
    (the most precise); in Chinese a document error is put in words by its code, another by
    the sentence the rule wrote; one not known here is shown as written."""
    text = str(error)
    if (get_locale() or Locale("en")).language == "en":
        return text
    if isinstance(error, DocumentError) and error.code in _DOCUMENT_ERRORS:
        return _DOCUMENT_ERRORS[error.code]()
    return _match(_RULE_ERRORS, text) or text


def seat_row_error(message: str) -> str:
    """What is wrong with a row of an imported seat map, in the page's language."""
    if (get_locale() or Locale("en")).language == "en":
        return message
    return _match(_SEAT_ROW_ERRORS, message) or message


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
