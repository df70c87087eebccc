"""The engine's details in the screen's language, looked up by their code.

The engine keeps each verdict's detail as a code of :data:`edge.rules.DETAILS` with its
parameters, beside the English words it writes into the entry for the hub and the logs.
Screens word it here: one translatable message per code, with the same ``%(name)s``
placeholders; a test keeps the codes here equal to the engine's. An entry recorded before
details had codes has none, and is shown with its English words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import lazy_gettext as _l

from edge.rules import render

WORDS = {
    # what the scan was
    "empty_scan": _l("empty scan"),
    "not_a_code": _l("not a ticket code"),
    "code_too_long": _l("too long to be a ticket code"),
    "incomplete_code": _l("incomplete ticket code"),
    "unknown_version": _l("ticket code of an unknown version"),
    "unknown_key": _l("signed with a key this appliance does not know yet: sync the appliance"),
    "bad_signature": _l("signature does not match"),
    "trailing_bytes": _l("extra data after the signature"),
    "out_of_range": _l("impossible values in the ticket code"),
    "invalid_code": _l("invalid ticket code"),
    "not_rfid": _l("not an RFID UID"),
    "card_unknown": _l("card not in the allowlist"),
    "not_a_reader_scan": _l("not a scan a reader makes"),
    "number_needs_staff": _l("a ticket number is accepted only from signed-in staff"),
    "numbers_not_accepted": _l("ticket numbers are not accepted at this gate"),
    "number_mistyped": _l("ticket number mistyped: its check character does not match"),
    "unknown_number": _l("neither a ticket code nor a known ticket number"),
    "no_document": _l("no document data from the reader"),
    "unreadable_document": _l("unreadable document: %(code)s"),
    "id_alone_refused": _l("an ID card alone is not accepted at this gate: scan the ticket"),
    "no_ticket_for_document": _l("no ticket for this document"),
    # 1. revoked
    "revoked": _l("revoked: %(why)s"),
    "ticket_refunded": _l("ticket refunded"),
    "ticket_void": _l("ticket void"),
    "ticket_state": _l("ticket %(state)s"),
    "replaced": _l("replaced by a newer code"),
    # 2. blocked
    "ticket_blocked": _l("ticket on the block list"),
    "card_blocked": _l("card on the block list"),
    "holder_blocked": _l("holder on the block list"),
    # 3. scope and time
    "pass_wrong_venue": _l("pass not valid at this venue"),
    "no_session_here": _l("not for a session held at this venue"),
    "gates_not_open": _l("%(session)s: gates open %(at)s"),
    "session_over": _l("%(session)s is over"),
    "valid_from": _l("valid from %(at)s"),
    "valid_until": _l("valid until %(at)s"),
    "late_window": _l("offline scan arrived after its entry window closed at %(at)s"),
    "late_max_age": _l("offline scan arrived more than %(n)s minutes after it was made"),
    # 4. zone
    "wrong_gate": _l("zone %(zone)s is not admitted at this gate: go to %(gates)s"),
    "wrong_gate_nowhere": _l("zone %(zone)s is not admitted at this gate"),
    # 5. real name
    "realname_required": _l("real-name ticket: read the holder's ID card with the ticket"),
    "holder_not_here": _l("holder not on this appliance yet: send to the help desk"),
    "not_holders_document": _l("document is not the ticket holder's"),
    # 6. usage
    "daily_limit": _l("daily limit of %(n)s entries reached"),
    "already_inside": _l("already inside"),
    "reentry_refused": _l("re-entry not allowed at this gate"),
    # not a rule: the appliance itself, and a supervisor
    "internal_error": _l("internal error: see the appliance log"),
    "database_failure": _l("database failure: %(error)s"),
    "override": _l("override by %(user)s: %(why)s"),}

# why the hub revoked a ticket (the revocation record's reason: the ticket's new state)
REVOCATION_REASONS = {"refunded": _l("refunded"), "void": _l("void")}


def _params(code: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
    if code == "revoked":
        known = REVOCATION_REASONS.get(params.get("why", ""))
        return {**params, "why": str(known) if known is not None else params.get("why", "")}
    if code == "ticket_state":
        known = REVOCATION_REASONS.get(params.get("state", ""))
        return {**params, "state": str(known) if known is not None else params.get("state")}
    return params


def translate(code: str | None, params: Mapping[str, Any] | None, english: str) -> str:
    """A verdict's detail in the current language: by its code where it has a known one,
    else the English words as they were kept."""
    message = WORDS.get(code) if code else None
    if message is None:
        return english or ""
    try:
        return render(str(message), _params(code, params or {}))
    except (KeyError, TypeError, ValueError):  # parameters that do not fit the words
        return english or ""
