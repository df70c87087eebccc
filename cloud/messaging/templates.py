"""The templates in use: staff's edited words where a kind has them, else the built-in ones
(``cloud/messaging/rendering.py``). Edits are checked before they are kept and audited; a
preview renders a template with sample values, without saving it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cloud.core import audit
from cloud.core.outbox import LANGUAGES
from cloud.messaging.errors import MessagingError
from cloud.messaging.rendering import DEFAULTS, KINDS, Text, check_kind, check_template, render
from cloud.messaging.tables import message_templates
from sync.timeutil import utcnow

SAMPLES: dict[str, Any] = {
    "code": "428913", "minutes": 5, "order": "W20270301A1", "amount": "880.00 CNY",
    "session": "The Games — Final", "seat": "A 1-7", "link": "https://hub.example/t/xxxxxxxx",
    "state": "verified", "name": "张*三", "change": "Gate 3 opens at 18:30 instead of Gate 1",
    "application": "PK7Q2M9XW3",
    "partner": "Harbour Travel", "balance": "180.00", "threshold": "200.00",
}


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise MessagingError("unknown_language", language=language)


def templates_in_use(conn: sa.Connection) -> dict[tuple[str, str], tuple[str, str]]:
    """Every (kind, language)'s subject and body as they are sent now."""
    edited = {(r.kind, r.language): (r.subject, r.body)
              for r in conn.execute(sa.select(message_templates))}
    return {key: edited.get(key, words) for key, words in DEFAULTS.items()}


def template(conn: sa.Connection, kind: str, language: str) -> tuple[str, str, bool]:
    """A kind's subject and body in a language, and whether staff changed them."""
    check_kind(kind)
    _check_language(language)
    row = conn.execute(sa.select(message_templates).where(
        message_templates.c.kind == kind, message_templates.c.language == language)).first()
    if row is None:
        return (*DEFAULTS[(kind, language)], False)
    return row.subject, row.body, True


def preview(kind: str, subject: str, body: str) -> Text:
    """The words a template gives with sample values (checked as a save would check it)."""
    check_template(kind, subject, body)
    return render(kind, subject, body, SAMPLES)


def save_template(conn: sa.Connection, kind: str, language: str, subject: str, body: str,
                  actor: str, now: datetime | None = None) -> None:
    """Keep staff's words for a kind and language (audited, with the words before)."""
    _check_language(language)
    preview(kind, subject, body)
    before = template(conn, kind, language)
    now = now or utcnow()
    conn.execute(sa.delete(message_templates).where(
        message_templates.c.kind == kind, message_templates.c.language == language))
    conn.execute(sa.insert(message_templates).values(
        kind=kind, language=language, subject=subject, body=body, updated_at=now,
        updated_by=actor))
    audit.record(conn, actor, "messages.template", f"{kind}:{language}",
                 {"subject": before[0], "body": before[1]}, {"subject": subject, "body": body})


def reset_template(conn: sa.Connection, kind: str, language: str, actor: str) -> bool:
    """Go back to the built-in words (audited); False when the kind had none of staff's."""
    subject, body, edited = template(conn, kind, language)
    if not edited:
        return False
    conn.execute(sa.delete(message_templates).where(
        message_templates.c.kind == kind, message_templates.c.language == language))
    audit.record(conn, actor, "messages.template_reset", f"{kind}:{language}",
                 {"subject": subject, "body": body}, None)
    return True


def all_templates(conn: sa.Connection) -> list[dict[str, Any]]:
    """For the templates page: each kind and language, its words and whether edited."""
    edited = {(r.kind, r.language) for r in conn.execute(
        sa.select(message_templates.c.kind, message_templates.c.language))}
    words = templates_in_use(conn)
    return [{"kind": k, "language": lang, "subject": words[(k, lang)][0],
             "body": words[(k, lang)][1], "edited": (k, lang) in edited}
            for k in KINDS for lang in LANGUAGES]
