"""The verification job (``verify_identity``): asks the service with no transaction open.

Registered ``apart`` (``cloud/cli.py``): a short transaction counts the attempt and reads the
question, the call is made with nothing locked, and another short transaction applies the
answer — only to an identity still ``pending``, so a second worker that took the job over
after a lost lease changes nothing twice. No usable answer (:class:`ServiceUnavailable`,
:class:`AnswerRefused`) raises, and the jobs table retries with its backoff, until the
identity's attempts reach the job's ``until``: the identity is then left ``unavailable`` (and
the job done); asking for it again starts a new round.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cloud.buyers.identities import VERIFY_JOB, contact_of, open_person, record_change
from cloud.buyers.review import delete_decided_photos
from cloud.buyers.tables import identities
from cloud.buyers.verification import (
    Answer,
    AnswerRefused,
    Question,
    ServiceUnavailable,
    Verifier,
    identity_settings,
    make_verifier,
)
from cloud.core import outbox
from cloud.core.seal import keyring_for
from cloud.messaging.rendering import verification_result
from sync.identity import mask_name

log = logging.getLogger(__name__)


def verify_handler(verifier: Verifier):
    """The job's handler for ``tasks.register(VERIFY_JOB, ..., apart=True)``."""

    def handle(engine: sa.Engine, payload: dict[str, Any], now: datetime) -> None:
        identity_id = payload["identity_id"]
        with engine.begin() as conn:
            question = ask(conn, identity_id, now)
        if question is None:
            return
        try:
            answer = verifier.verify(question)
        except (ServiceUnavailable, AnswerRefused) as e:
            if isinstance(e, AnswerRefused):
                log.error("identity %s: the answer of %s is refused: %s", identity_id,
                          verifier.name, e)
            with engine.begin() as conn:
                ended = not_answered(conn, identity_id, payload, now)
            if not ended:
                raise
            return
        with engine.begin() as conn:
            answered(conn, identity_id, answer, verifier.name, payload, now)

    return handle


def _pending(conn: sa.Connection, identity_id: int) -> Any:
    return conn.execute(sa.select(identities).where(
        identities.c.id == identity_id, identities.c.state == "pending").with_for_update()
    ).first()


def ask(conn: sa.Connection, identity_id: int, now: datetime) -> Question | None:
    """The question for the service, its attempt counted; None when the identity is no longer
    pending (answered meanwhile)."""
    row = _pending(conn, identity_id)
    if row is None:
        return None
    attempt = row.attempts + 1
    conn.execute(sa.update(identities).where(identities.c.id == identity_id).values(
        attempts=attempt, checked_at=now, updated_at=now))
    p = open_person(keyring_for(conn), row)
    return Question(f"{identity_id}.{attempt}.{secrets.token_hex(8)}", p.name, p.doc_type,
                    p.doc_number)


def not_answered(conn: sa.Connection, identity_id: int, payload: dict[str, Any],
                 now: datetime) -> bool:
    """After a call without a usable answer: True when this round is over (the identity left
    ``unavailable``, or no longer pending), False when the job should try again."""
    row = _pending(conn, identity_id)
    if row is None:
        return True
    if row.attempts < payload["until"]:
        return False
    conn.execute(sa.update(identities).where(identities.c.id == identity_id).values(
        state="unavailable", updated_at=now))
    record_change(conn, identity_id, "system", "identity.unavailable", "pending",
                  "unavailable", attempts=row.attempts)
    _tell(conn, row, "unavailable", payload, now)
    return True


def answered(conn: sa.Connection, identity_id: int, answer: Answer, provider: str,
             payload: dict[str, Any], now: datetime) -> str | None:
    """Apply the service's answer to a pending identity; its new state (None when it was no
    longer pending: nothing changes)."""
    row = _pending(conn, identity_id)
    if row is None:
        return None
    state = "verified" if answer.result == "match" else "refused"
    conn.execute(sa.update(identities).where(identities.c.id == identity_id).values(
        state=state, refusal=None if state == "verified" else "no_match", provider=provider,
        answer_ref=answer.ref, answer=answer.evidence, updated_at=now,
        verified_at=now if state == "verified" else None))
    record_change(conn, identity_id, "system", f"identity.{state}", "pending", state,
                  provider=provider, answer_ref=answer.ref)
    _tell(conn, row, state, payload, now)
    return state


def _tell(conn: sa.Connection, row: Any, state: str, payload: dict[str, Any],
          now: datetime) -> None:
    """The result to the contact the request named, if any, through the outbox: the state in
    the words of the contact's language (the template's ``result``), the state's code and the
    name masked beside them."""
    contact = contact_of(conn, payload)
    if contact is None:
        return
    name = open_person(keyring_for(conn), row).name
    params = {"result": verification_result(state, contact.language), "state": state,
              "name": mask_name(name)}
    outbox.enqueue(conn, kind="verification_result", channel=contact.channel, to=contact.to,
                   params=params, language=contact.language,
                   dedupe_key=f"identity:{row.id}:{state}:{row.attempts}", now=now)


def register_tasks(tasks: Any, environ: Any) -> None:
    """The identity part's work for ``wicket-hub worker``: the verification job, asked with
    no transaction open (apart; with no service configured, the jobs wait for one), and the
    reviewed photos deleted after their retention period."""
    settings = identity_settings({}, environ)
    verifier = make_verifier(settings)
    if verifier is not None:
        tasks.register(VERIFY_JOB, verify_handler(verifier), apart=True)
    keep = float(settings["IDENTITY_PHOTO_KEEP_DAYS"])
    tasks.every("delete_reviewed_photos", 3600,
                lambda conn, now: delete_decided_photos(conn, now, keep))
