"""Sending the outbox: ``wicket-hub messenger`` processes, any number at once.

One turn (:meth:`Messenger.turn`): claim a batch of due messages with a lease
(``cloud/core/outbox.py`` ``claim``: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers take
disjoint batches), open and render them, and commit; send each channel's part through its
provider with **no transaction open**; then record every outcome in one short transaction,
each only while the lease is still this worker's. A send that failed waits its backoff and is
tried again, a message is *dead* after its last attempt, and one the provider refused for good
is *failed*. The providers' delivery receipts later move a sent message to delivered or failed
(``cloud/messaging/receipts.py``).

A worker killed between the send and its record loses nothing: the lease passes, another
worker takes the message and sends it again under the same delivery id, and the provider drops
the second copy. The messenger is its own command rather than a job kind of ``wicket-hub
worker``: it sends in batches, holds its provider connections open, and is scaled apart from
the hub's other background work.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from cloud.core.jobs import worker_name
from cloud.core.outbox import LEASE, Outcome, Taken, claim, opened, record
from cloud.messaging.channels import Outgoing, Provider
from cloud.messaging.errors import MessagingError
from cloud.messaging.rendering import render
from cloud.messaging.templates import templates_in_use
from sync.timeutil import utcnow

log = logging.getLogger(__name__)


def _params(params: dict[str, Any], public_url: str) -> dict[str, Any]:
    """A ticket link's message carries the link's path; the address buyers reach the hub at is
    the sender's setting (``PUBLIC_URL``), joined here."""
    if "path" in params and "link" not in params:
        params = {**params, "link": public_url.rstrip("/") + params["path"]}
    return params


def prepare(conn: sa.Connection, taken: list[Taken], public_url: str = ""
            ) -> tuple[list[tuple[Taken, Outgoing]], list[tuple[Taken, Outcome]]]:
    """Open and render claimed messages: those ready to send, and those that cannot be
    rendered (failed for good: a template that names a value the message lacks)."""
    words = templates_in_use(conn)
    ready, broken = [], []
    for m in taken:
        to, params = opened(conn, m)
        params = _params(params, public_url)
        subject, body = words.get((m.kind, m.language), ("", ""))
        try:
            text = render(m.kind, subject, body, params)
        except MessagingError as e:
            broken.append((m, Outcome("refused", error=f"{e.code}: {e}")))
            continue
        ready.append((m, Outgoing(m.delivery_id, m.channel, to, m.kind, text.subject,
                                  text.body, {k: str(v) for k, v in params.items()
                                              if k != "path"})))
    return ready, broken


class Messenger:
    """A sending loop over ``providers`` (by channel; a channel without one is not taken)."""

    def __init__(self, engine: sa.Engine, providers: dict[str, Provider], *,
                 name: str | None = None, batch: int = 100, lease: timedelta = LEASE,
                 poll_s: float = 1.0, public_url: str = ""):
        self.engine, self.providers, self.batch = engine, providers, batch
        self.lease, self.poll_s, self.public_url = lease, poll_s, public_url
        self.name = name or worker_name()
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def turn(self, now: datetime | None = None) -> dict[str, int]:
        """Claim, send and record one batch: the counts by new state (empty: nothing due)."""
        if not self.providers:
            return {}
        with self.engine.begin() as conn:
            taken = claim(conn, self.name, now=now or utcnow(), lease=self.lease,
                          limit=self.batch, channels=sorted(self.providers))
            if not taken:
                return {}
            ready, done = prepare(conn, taken, self.public_url)
        for channel, provider in self.providers.items():
            part = [(m, out) for m, out in ready if m.channel == channel]
            if part:  # no transaction is open here: a slow provider holds no rows
                outcomes = provider.send([out for _m, out in part])
                done += [(m, o) for (m, _out), o in zip(part, outcomes, strict=True)]
        with self.engine.begin() as conn:
            counted = record(conn, done, now or utcnow())
        log.info("messenger %s: %s", self.name,
                 ", ".join(f"{n} {state}" for state, n in sorted(counted.items())))
        return counted

    def run(self) -> None:
        """Send until :meth:`stop`: a full batch is followed at once by the next."""
        log.info("messenger %s started: channels %s", self.name,
                 ", ".join(sorted(self.providers)) or "none")
        while not self._stopping.is_set():
            try:
                counted = self.turn()
            except sa.exc.OperationalError as e:
                log.error("messenger %s: the database is unreachable (%s); trying again",
                          self.name, e.orig)
                counted = {}
            if sum(counted.values()) < self.batch:
                self._stopping.wait(self.poll_s if not counted else 0.05)
        log.info("messenger %s stopped", self.name)
