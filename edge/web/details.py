"""The engine's detail line in the screen's language.

The engine writes one short English detail per decision (``already inside``, ``zone East
Stand is not admitted at this gate``) into the entry, where it stays English for the hub and
the logs. Screens show it in the staff member's language: fixed details are looked up, the
ones carrying a value are matched by pattern; anything else is shown as the engine wrote it.
"""

from __future__ import annotations

import re

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

FIXED = {
    "not a ticket code": _l("not a ticket code"),
    "incomplete ticket code": _l("incomplete ticket code"),
    "ticket code of an unknown version": _l("ticket code of an unknown version"),
    "signed with a key this appliance does not know yet: sync the appliance":
        _l("signed with a key this appliance does not know yet: sync the appliance"),
    "signature does not match": _l("signature does not match"),
    "extra data after the signature": _l("extra data after the signature"),
    "impossible values in the ticket code": _l("impossible values in the ticket code"),
    "invalid ticket code": _l("invalid ticket code"),
    "internal error: see the appliance log": _l("internal error: see the appliance log"),
    "not an RFID UID": _l("not an RFID UID"),
    "card on the block list": _l("card on the block list"),
    "card not in the allowlist": _l("card not in the allowlist"),
    "empty scan": _l("empty scan"),
    "too long to be a ticket code": _l("too long to be a ticket code"),
    "neither a ticket code nor a known ticket number":
        _l("neither a ticket code nor a known ticket number"),
    "no document data from the reader": _l("no document data from the reader"),
    "an ID card alone is not accepted at this gate: scan the ticket":
        _l("an ID card alone is not accepted at this gate: scan the ticket"),
    "holder on the block list": _l("holder on the block list"),
    "no ticket for this document": _l("no ticket for this document"),
    "ticket void": _l("ticket void"),
    "ticket refunded": _l("ticket refunded"),
    "replaced by a newer code": _l("replaced by a newer code"),
    "ticket on the block list": _l("ticket on the block list"),
    "real-name ticket: read the holder's ID card with the ticket":
        _l("real-name ticket: read the holder's ID card with the ticket"),
    "holder not on this appliance yet: send to the help desk":
        _l("holder not on this appliance yet: send to the help desk"),
    "document is not the ticket holder's": _l("document is not the ticket holder's"),
    "pass not valid at this venue": _l("pass not valid at this venue"),
    "not for a session held at this venue": _l("not for a session held at this venue"),
    "already inside": _l("already inside"),
    "re-entry not allowed at this gate": _l("re-entry not allowed at this gate"),
    "the turnstile reports nobody passed": _l("the turnstile reports nobody passed"),
    "passage unconfirmed: the gate runtime stopped while the lane was open":
        _l("passage unconfirmed: the gate runtime stopped while the lane was open"),
    "not a scan a reader makes": _l("not a scan a reader makes"),
    "a ticket number is accepted only from signed-in staff":
        _l("a ticket number is accepted only from signed-in staff"),
    "ticket numbers are not accepted at this gate":
        _l("ticket numbers are not accepted at this gate"),
    "ticket number mistyped: its check character does not match":
        _l("ticket number mistyped: its check character does not match"),
}

def _state(state: str) -> str:
    from edge.web.helpers import device_state_name

    return device_state_name("silent" if state == "not reporting" else state)


# why the hub revoked a ticket (the revocation record's reason: the ticket's new state)
REVOCATION_REASONS = {"refunded": _l("refunded"), "void": _l("void")}


def _revocation_reason(why: str) -> str:
    known = REVOCATION_REASONS.get(why)
    return str(known) if known is not None else why


PATTERNS = (
    (re.compile(r"^lane not opened: (?P<why>.+)$"),
     lambda m: _("lane not opened: %(why)s", why=translate(m["why"]))),
    (re.compile(r"^turnstile (?P<device>\S+) is (?P<state>up|degraded|down|unknown|disabled|"
                r"not reporting)$"),
     lambda m: _("turnstile %(device)s is %(state)s", device=m["device"],
                 state=_state(m["state"]))),
    (re.compile(r"^no passage within (?P<s>[0-9.]+) s$"),
     lambda m: _("no passage within %(s)s s", s=m["s"])),
    (re.compile(r"^lane '(?P<lane>.+)' is not configured$"),
     lambda m: _("lane %(lane)s is not configured", lane=m["lane"])),
    (re.compile(r"^unreadable document: (?P<code>\w+)$"),
     lambda m: _("unreadable document: %(code)s", code=m["code"])),
    (re.compile(r"^revoked: (?P<why>.*)$"),
     lambda m: _("revoked: %(why)s", why=_revocation_reason(m["why"]))),
    (re.compile(r"^valid from (?P<at>.+)$"),
     lambda m: _("valid from %(at)s", at=m["at"])),
    (re.compile(r"^valid until (?P<at>.+)$"),
     lambda m: _("valid until %(at)s", at=m["at"])),
    (re.compile(r"^zone (?P<zone>.+?) is not admitted at this gate: go to (?P<gates>.+)$"),
     lambda m: _("zone %(zone)s is not admitted at this gate: go to %(gates)s",
                 zone=m["zone"], gates=m["gates"])),
    (re.compile(r"^zone (?P<zone>.+) is not admitted at this gate$"),
     lambda m: _("zone %(zone)s is not admitted at this gate", zone=m["zone"])),
    (re.compile(r"^daily limit of (?P<n>\d+) entries reached$"),
     lambda m: _("daily limit of %(n)s entries reached", n=m["n"])),
    (re.compile(r"^override by (?P<user>[^:]+): (?P<why>.*)$"),
     lambda m: _("override by %(user)s: %(why)s", user=m["user"], why=m["why"])),
    (re.compile(r"^(?P<session>.+): gates open (?P<at>.+)$"),
     lambda m: _("%(session)s: gates open %(at)s", session=m["session"], at=m["at"])),
    (re.compile(r"^(?P<session>.+) is over$"),
     lambda m: _("%(session)s is over", session=m["session"])),
    (re.compile(r"^offline scan arrived after its entry window closed at (?P<at>.+)$"),
     lambda m: _("offline scan arrived after its entry window closed at %(at)s", at=m["at"])),
    (re.compile(r"^offline scan arrived more than (?P<n>\d+) minutes after it was made$"),
     lambda m: _("offline scan arrived more than %(n)s minutes after it was made", n=m["n"])),
)


def translate(detail: str) -> str:
    if not detail:
        return ""
    fixed = FIXED.get(detail)
    if fixed is not None:
        return str(fixed)
    for pattern, render in PATTERNS:
        m = pattern.match(detail)
        if m:
            return render(m)
    return detail
