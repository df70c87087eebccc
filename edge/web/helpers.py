"""Template helpers: local times, durations and the words for roles, kinds and states."""

from __future__ import annotations

import json

from flask import Flask
from flask_babel import gettext as _

from edge import staff as staff_mod
from edge import status
from edge.web.app import get_conn
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
    return _("At least %(n)d characters, three of: lower-case letters, capitals, digits, other "
             "characters (or 16 characters or more); not the username, not a common password.",
             n=staff_mod.MIN_PASSWORD)


def extra_settings(config: dict, kind: str) -> str:
    from edge.web.devices import CONNECTION_KEY

    rest = {k: v for k, v in config.items() if k != CONNECTION_KEY.get(kind, "port")}
    return json.dumps(rest, ensure_ascii=False, sort_keys=True) if rest else ""


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(local=local, duration=duration, extra_settings=extra_settings)
    app.jinja_env.globals.update(role_name=role_name, kind_name=kind_name, mode_name=mode_name,
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
