"""Template helpers: local times, durations and the words for roles, kinds and states."""

from __future__ import annotations

import json
import re

from flask import Flask
from flask_babel import gettext as _
from markupsafe import Markup

from edge import staff as staff_mod
from edge import status
from edge.web import device_forms
from edge.web.context import get_conn
from sync.timeutil import from_iso, to_iso, utcnow


def local(iso: str | None) -> str:
    """An ISO UTC time as the venue's local time (times are UTC everywhere but on screens)."""
    if not iso:
        return ""
    try:
        dt = from_iso(iso)
    except ValueError:
        return iso
    return dt.astimezone(status.venue_tz(get_conn())).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    if seconds < 120:
        return _("%(n)d s", n=seconds)
    if seconds < 7200:
        return _("%(n)d min", n=seconds // 60)
    return _("%(n)d h", n=seconds // 3600)


def role_name(role: str) -> str:
    return {"admin": _("admin"), "supervisor": _("supervisor"), "gate": _("gate staff")
            }.get(role, role)


def kind_name(kind: str) -> str:
    return {"turnstile": _("turnstile"), "qr_camera": _("QR camera"),
            "barcode_scanner": _("barcode scanner"), "rfid_reader": _("RFID reader"),
            "id_reader": _("ID-card reader")}.get(kind, kind)


def device_state_name(state: str) -> str:
    """A device's state as the gate runtime reports it (``silent``: not reported lately)."""
    return {"up": _("up"), "degraded": _("degraded"), "down": _("down"),
            "unknown": _("unknown"), "disabled": _("disabled"),
            "silent": _("not reporting")}.get(state, state)


def state_name(state: str | None) -> str:
    """A device's state (:class:`drivers.base.DeviceState`) in the page's language."""
    return {"unknown": _("not opened yet"), "up": _("up"), "degraded": _("degraded"),
            "down": _("down"), "disabled": _("disabled")}.get(state or "unknown", state)


def stream_name(stream: str) -> str:
    """A sync stream of ``sync_state`` in the page's language."""
    return {"allowlist": _("allowlist"), "revocations": _("revocations"),
            "entries": _("entries"), "heartbeat": _("heartbeat")}.get(stream, stream)


_DEVICE_DETAILS = (
    (re.compile(r"^gate runtime stopped$"), lambda m: _("gate runtime stopped")),
    (re.compile(r"^token revoked$"), lambda m: _("token revoked")),
    (re.compile(r"^turnstile (?P<id>\S+) is (?P<state>\w+)$"),
     lambda m: _("turnstile %(id)s is %(state)s", id=m["id"], state=state_name(m["state"]))),
    (re.compile(r"^camera (?P<id>\S+): no frame yet$"),
     lambda m: _("camera %(id)s: no frame yet", id=m["id"])),
    (re.compile(r"^camera (?P<id>\S+) is not open$"),
     lambda m: _("camera %(id)s is not open", id=m["id"])),
)


def device_detail_words(detail: str | None) -> tuple[str, str | None]:
    """What a device reported with its state, and the language it is in: the gate runtime's
    own words are looked up; a driver's message (an exception's text) stays as the driver
    wrote it, in English."""
    if not detail:
        return "", None
    for pattern, render in _DEVICE_DETAILS:
        m = pattern.match(detail)
        if m:
            return render(m), None
    return detail, "en"


def device_detail(detail: str | None) -> Markup:
    """:func:`device_detail_words` for a template: a driver's English marked as such for the
    browser and screen readers."""
    words, lang = device_detail_words(detail)
    if lang is None:
        return Markup.escape(words)
    return Markup('<span class="driver-said" lang="%s">%s</span>') % (lang, words)


def _sentence(template: str) -> re.Pattern:
    """A sentence written with ``{name}`` for each value (quoted or not), as a pattern."""
    parts = re.split(r"\{(\w+)\}", template)
    return re.compile("^" + "".join(re.escape(p) if i % 2 == 0 else f"'?(?P<{p}>.+?)'?"
                                    for i, p in enumerate(parts)) + "$")


# why an emergency entry export is refused (edge/emergency.py writes them in English, for the
# audit log and the command line)
_EXPORT_FILE_ERRORS = tuple((_sentence(t), r) for t, r in (
    ("the file is too large to be an entry export",
     lambda m: _("The file is too large to be an entry export.")),
    ("not an entry export: no header and signature lines",
     lambda m: _("Not an entry export: no header and signature lines.")),
    ("not an entry export: unreadable header or signature",
     lambda m: _("Not an entry export: unreadable header or signature.")),
    ("not an entry export (wrong format)", lambda m: _("Not an entry export (wrong format).")),
    ("entry export version {v} is not supported here",
     lambda m: _("Entry export version %(v)s is not supported here.", v=m["v"])),
    ("the signature does not match: the file was changed or damaged after it was exported",
     lambda m: _("The signature does not match: the file was changed or damaged after it was "
                 "exported.")),
    ("this file comes from appliance {fp}: give that appliance's fingerprint (shown on its "
     "emergency page) to import it",
     lambda m: _("This file comes from appliance %(fp)s: give that appliance's fingerprint "
                 "(shown on its emergency page) to import it.", fp=m["fp"])),
    ("this file was signed by appliance {fp}, not by the appliance whose fingerprint was given",
     lambda m: _("This file was signed by appliance %(fp)s, not by the appliance whose "
                 "fingerprint was given.", fp=m["fp"])),
    ("the header announces {n} entries, the file holds {m}",
     lambda m: _("The header announces %(n)s entries, the file holds %(m)s.", n=m["n"],
                 m=m["m"])),
    ("line {n}: not JSON", lambda m: _("Line %(n)s: not JSON.", n=m["n"])),
    ("line {n}: not an entry record", lambda m: _("Line %(n)s: not an entry record.", n=m["n"])),
    ("line {n}: bad {field}",
     lambda m: _("Line %(n)s: bad %(field)s.", n=m["n"], field=m["field"])),
    ("this file comes from venue {theirs}, not from this appliance's venue {ours}",
     lambda m: _("This file comes from venue %(theirs)s, not from this appliance's venue "
                 "%(ours)s.", theirs=m["theirs"], ours=m["ours"])),
))


def export_file_error(text: str) -> str:
    """Why an entry export was refused, in the page's language (as written if not known)."""
    for pattern, render in _EXPORT_FILE_ERRORS:
        m = pattern.match(text)
        if m:
            return render(m)
    return text


def hardware_note(listing) -> str:
    """Why a list of the box's ports, cameras or readers is empty, in the page's language."""
    return {"serial_unlisted": _("Serial ports cannot be listed."),
            "no_serial": _("No serial ports found."),
            "no_camera": _("No cameras (/dev/video*) found; a network camera takes its RTSP or "
                           "HTTP URL."),
            "pcsc_missing": _("PC/SC support is not installed."),
            "pcsc_down": _("The PC/SC service (pcscd) is not running or has no readers."),
            "no_pcsc_reader": _("No PC/SC readers connected.")}.get(listing.code, listing.note)


def mode_name(mode: str) -> str:
    return {"ticket": _("ticket only"), "ticket_and_id": _("ticket and matching ID card"),
            "id_only": _("ID card alone finds the ticket")}.get(mode, mode)


def status_name(state: str) -> str:
    return {"pending": _("waiting for the gate runtime"), "running": _("running"),
            "done": _("done"), "failed": _("failed"), "expired": _("expired: not carried out")
            }.get(state, state)


def test_hint(kind: str) -> str:
    return {"turnstile": _("Unlocks the lane for one passage and reports the passage input."),
            "qr_camera": _("Takes one frame and shows it with the decoded codes outlined."),
            "barcode_scanner": _("Waits for one scan and shows what was read."),
            "rfid_reader": _("Waits for a card and shows its UID."),
            "id_reader": _("Waits for an ID card and shows it masked.")}.get(kind, "")


def password_rules() -> str:
    return _("At least %(n)d characters, not the username, and hard to guess: a few unrelated "
             "words are better than a short word with digits and symbols.",
             n=staff_mod.MIN_PASSWORD)


def extra_settings(config: dict, kind: str) -> str:
    connection = device_forms.CONNECTION_KEY.get(kind, "port")
    rest = {k: v for k, v in config.items() if k != connection}
    return json.dumps(rest, ensure_ascii=False, sort_keys=True) if rest else ""


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(local=local, duration=duration, extra_settings=extra_settings)
    app.jinja_env.globals.update(role_name=role_name, kind_name=kind_name, mode_name=mode_name,
                                 state_name=state_name, stream_name=stream_name,
                                 device_detail=device_detail, hardware_note=hardware_note,
                                 status_name=status_name, test_hint=test_hint,
                                 password_rules=password_rules,
                                 now_iso=lambda: to_iso(utcnow()))


def refusal_words(code: str) -> str:
    """Why the hub refused an entry (its reason code), in the page's language; a code without
    words is shown as it is."""
    words = {
        "other_venue": _("a ticket or session of another venue"),
        "unknown_ticket": _("a ticket the hub does not know"),
        "unknown_session": _("a session the hub does not know"),
        "bad_entry": _("not a valid entry record"),
    }
    return words.get(code, code)
