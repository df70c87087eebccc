"""A person's identity, verified once and reused by every order (issue 16 §2).

A person is their document: the type and the keyed hash of the normalised number, unique in
``identities``; name and number are sealed for the row (``cloud/core/seal.py``, as holders
are). :func:`request_verification` finds or creates the person and, the first time, starts
the check their document allows: a verification service for the documents it can check
(``sync.identity.service_checkable``: a job, ``verify_identity``, asks it with no transaction
open, see ``cloud/buyers/verifying.py``), a person's review of a photo for the others
(``cloud/buyers/review.py``).

The same document under another name is not another person. While the identity is verified,
pending, waiting for review or refused by a reviewer, another name is refused
(``identity_name_mismatch``): a verified person's document is not lent to another name. When
the service answered that name and number do not match (``no_match``), the name was most
likely mistyped, so a corrected name asks the service again, on the same row, up to
:data:`MAX_NAMES` names per document in all (``identity_too_many_names``): the service is not
an oracle for guessing whose number it is. The same name again reuses what is known: no
second question, except for an identity left ``unavailable`` (the service did not answer),
which is asked again.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cloud.buyers.identity_errors import IdentityError
from cloud.buyers.tables import identities
from cloud.core import audit, jobs
from cloud.core.seal import Keyring, SealError, context, keyring_for
from cloud.sales.tickets import normal_document
from sync.identity import service_checkable
from sync.timeutil import utcnow

log = logging.getLogger(__name__)

VERIFY_JOB = "verify_identity"
ATTEMPTS = 5          # calls to the service before an identity is left unavailable
MAX_NAMES = 3         # names asked for one document before only customer service can help
MAX_NAME = 100


@dataclass(frozen=True)
class Person:
    """An identity opened: shown only through ``sync.identity``'s masks, except to its
    reviewer."""

    id: int
    name: str
    doc_type: str
    doc_number: str
    state: str


@dataclass(frozen=True)
class Contact:
    """Where the result of a verification is said (optional: the outbox's channel, address
    and language)."""

    channel: str
    to: str
    language: str = "zh"


def normal_name(name: Any) -> str:
    """A name as asked and compared: NFKC (full-width forms typed with a Chinese input method
    become ASCII), spaces collapsed; 1 to :data:`MAX_NAME` printable characters."""
    if not isinstance(name, str):
        raise IdentityError("identity_name_bad", high=MAX_NAME)
    n = " ".join(unicodedata.normalize("NFKC", name).split())
    if not n or len(n) > MAX_NAME or not n.isprintable():
        raise IdentityError("identity_name_bad", high=MAX_NAME)
    return n


def same_name(a: str, b: str) -> bool:
    return normal_name(a).casefold() == normal_name(b).casefold()


def open_person(ring: Keyring, row: Any) -> Person:
    return Person(row.id, ring.open(row.sealed_name, context("identities", row.id, "name")),
                  row.doc_type,
                  ring.open(row.sealed_doc_number, context("identities", row.id, "doc_number")),
                  row.state)


def person(conn: sa.Connection, identity_id: int) -> Person:
    return open_person(keyring_for(conn), _row(conn, identity_id))


def _row(conn: sa.Connection, identity_id: int, lock: bool = False) -> Any:
    query = sa.select(identities).where(identities.c.id == identity_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise IdentityError("unknown_identity", identity_id=identity_id)
    return row


def identity_state(conn: sa.Connection, identity_id: int) -> str:
    """pending, verified, refused, unavailable or review."""
    return _row(conn, identity_id).state


def is_verified(conn: sa.Connection, identity_id: int | None) -> bool:
    return identity_id is not None and conn.execute(sa.select(identities.c.state).where(
        identities.c.id == identity_id)).scalar() == "verified"


def find_identity(conn: sa.Connection, doc_type: str, number: str) -> int | None:
    """The identity of a document (any number form), or None; during a data key rotation the
    hash under every key finds it."""
    n = normal_document(doc_type, number)
    return conn.execute(sa.select(identities.c.id).where(
        identities.c.doc_type == doc_type,
        identities.c.doc_hash.in_(keyring_for(conn).doc_hashes(n)))).scalar()


def request_verification(conn: sa.Connection, *, name: str, doc_type: str, number: str,
                         now: datetime | None = None, contact: Contact | None = None) -> int:
    """The person's identity id, created the first time and its check started; reused after
    (see the module's rules for another name). ``contact``, if given, is told the result."""
    now = now or utcnow()
    name = normal_name(name)
    n = normal_document(doc_type, number)
    ring = keyring_for(conn)
    existing = _locked_by_document(conn, ring, doc_type, n)
    if existing is None:
        created = _insert(conn, ring, doc_type, n, name, now)
        if created is not None:
            _start(conn, created, doc_type, 0, now, contact)
            return created
        # another request made the person meanwhile (it committed: we waited for it)
        existing = _locked_by_document(conn, ring, doc_type, n)
    p = open_person(ring, existing)
    if same_name(p.name, name):
        if existing.state == "unavailable":
            _start(conn, existing.id, doc_type, existing.attempts, now, contact)
        return existing.id
    if existing.state != "refused" or existing.refusal != "no_match":
        raise IdentityError("identity_name_mismatch")
    if existing.names_asked >= MAX_NAMES:
        raise IdentityError("identity_too_many_names", names=existing.names_asked)
    conn.execute(sa.update(identities).where(identities.c.id == existing.id).values(
        sealed_name=ring.seal(name, context("identities", existing.id, "name")),
        names_asked=identities.c.names_asked + 1, refusal=None, updated_at=now))
    _start(conn, existing.id, doc_type, existing.attempts, now, contact)
    return existing.id


def _locked_by_document(conn: sa.Connection, ring: Keyring, doc_type: str, n: str) -> Any:
    return conn.execute(sa.select(identities).where(
        identities.c.doc_type == doc_type, identities.c.doc_hash.in_(ring.doc_hashes(n)))
        .with_for_update()).first()


def _insert(conn: sa.Connection, ring: Keyring, doc_type: str, n: str, name: str,
            now: datetime) -> int | None:
    """A new identity row, or None when the document's row exists (a concurrent request
    made it: on PostgreSQL this waits for that request's commit)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    new_id = conn.execute(dialect.insert(identities).values(
        doc_type=doc_type, doc_hash=ring.doc_hash(n), sealed_name="", sealed_doc_number="",
        state="pending", attempts=0, names_asked=1, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["doc_type", "doc_hash"])
        .returning(identities.c.id)).scalar()
    if new_id is not None:
        conn.execute(sa.update(identities).where(identities.c.id == new_id).values(
            sealed_name=ring.seal(name, context("identities", new_id, "name")),
            sealed_doc_number=ring.seal(n, context("identities", new_id, "doc_number"))))
    return new_id


def _start(conn: sa.Connection, identity_id: int, doc_type: str, attempts: int, now: datetime,
           contact: Contact | None) -> None:
    """Start the check the document allows: a job asking the service, or a review."""
    if not service_checkable(doc_type):
        conn.execute(sa.update(identities).where(identities.c.id == identity_id)
                     .values(state="review", updated_at=now))
        return
    conn.execute(sa.update(identities).where(identities.c.id == identity_id)
                 .values(state="pending", updated_at=now))
    payload: dict[str, Any] = {"identity_id": identity_id, "until": attempts + ATTEMPTS}
    if contact is not None:
        payload["contact"] = keyring_for(conn).seal(
            json.dumps([contact.channel, contact.to, contact.language]),
            context("jobs", identity_id, "identity_contact"))
    # the job outlives the service's attempts: the identity's own count ends it first
    jobs.enqueue(conn, VERIFY_JOB, payload, now=now, max_attempts=ATTEMPTS + 2)


def contact_of(conn: sa.Connection, payload: dict[str, Any]) -> Contact | None:
    """The contact a verification job was given, or None (none given, or sealed under a data
    key rotated away since: the result is then not said, rather than the job failing)."""
    sealed = payload.get("contact")
    if not sealed:
        return None
    try:
        channel, to, language = json.loads(keyring_for(conn).open(
            sealed, context("jobs", payload["identity_id"], "identity_contact")))
    except SealError:
        log.warning("identity %s: the contact for its result does not open; not said",
                    payload["identity_id"])
        return None
    return Contact(channel, to, language)


def record_change(conn: sa.Connection, identity_id: int, actor: str, action: str,
                  before: str, after: str, **more: Any) -> None:
    """An identity's change of state in the audit log (states and references only: never a
    name or number)."""
    audit.record(conn, actor, action, f"identity:{identity_id}", {"state": before},
                 {"state": after, **more})
