"""The sync agent's work: one step per stream, each safe to interrupt at any point.

* **revocations** — refunds and voids on their own, more often than the rest;
* **allowlist** — every change, page by page; each page and its cursor in one transaction; when
  caught up the count of changes received is compared with the hub's checksum, and a mismatch
  (or a 410 for a cursor older than the hub's horizon) takes a snapshot
  (:mod:`edge.uplink.snapshot`);
* **entries** — the outbox, in batches keyed by entry UUID; an entry is marked acknowledged only
  after the hub's answer names it, so a crash between send and answer just sends it again (the
  hub answers ``duplicate``); an entry the hub refuses is kept, with the reason, never dropped;
* **heartbeat** — device health, cursors, queue, clock; the hub's commands are carried out.

Every write is a short transaction: lanes keep deciding scans while the agent works. What each
step last did is kept in ``sync_state`` (per stream) and ``appliance_state`` (hub up or down,
clock skew), where ``wicket-edge status`` and the admin page read it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.allowlist import AllowlistError, apply_changes
from edge.config import Config
from edge.db import UNACKED, acked_mark, advance_acked_mark, immediate
from edge.holders import HolderVault
from edge.uplink import snapshot
from edge.uplink.state import cursor_of, get_state, set_state, stream_failed, stream_ok
from sync.changes import ChangeError, parse_change
from sync.client import CursorExpired, HubClient, HubError, HubUnavailable, Refused, Unauthorized
from sync.ids import uuid7
from sync.records import (
    BadField,
    DeviceReport,
    EntryRecord,
    LaneReport,
    QueueReport,
    StateReport,
)
from sync.timeutil import from_iso, to_iso, utcnow

log = logging.getLogger(__name__)
VERSION = "0.1.0"
STREAMS = ("revocations", "allowlist", "entries", "heartbeat")


class NotEnrolled(Exception):
    """There is no hub credential beside the configuration; ``revoked`` when it was wiped."""

    def __init__(self, message: str, revoked: bool = False):
        super().__init__(message)
        self.revoked = revoked


class Wiped(Exception):
    """The hub revoked this appliance (401) or told it to wipe: personal data is gone."""


# -- the credential file ---------------------------------------------------------------------


@dataclass(frozen=True)
class HubLink:
    hub_url: str
    credential: str
    appliance_id: int
    venue_id: int
    next_credential: str | None = None  # asked for in a roll whose answer may have been lost


def load_link(cfg: Config) -> HubLink:
    path = cfg.credential_path
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return HubLink(str(data["hub_url"]), str(data["credential"]),
                       int(data["appliance_id"]), int(data["venue_id"]),
                       data.get("next_credential"))
    except FileNotFoundError:
        raise NotEnrolled(f"{path}: this appliance is not enrolled; run `wicket-edge enroll "
                          f"--hub URL --token TOKEN`") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise NotEnrolled(f"{path}: unreadable hub credential file ({type(e).__name__}); "
                          "enroll again") from None


def save_link(cfg: Config, link: HubLink) -> None:
    """Write the credential file owner-only and atomically (a new file renamed over the old)."""
    path = cfg.credential_path
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"hub_url": link.hub_url, "credential": link.credential,
                   "appliance_id": link.appliance_id, "venue_id": link.venue_id,
                   "next_credential": link.next_credential}, f)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def enroll(cfg: Config, conn: sqlite3.Connection, hub_url: str, token: str,
           check: Callable[[dict[str, Any]], None] | None = None) -> HubLink:
    """Trade the one-time token for a credential; keep it, and the hub's public keys.
    ``check`` sees the hub's answer before anything is stored and may refuse it by raising."""
    client = HubClient(hub_url, timeout=cfg.hub_timeout_s)
    try:
        answer = client.enroll(token)
    finally:
        client.close()
    if check is not None:
        check(answer)
    link = HubLink(hub_url.rstrip("/"), answer["credential"], int(answer["appliance_id"]),
                   int(answer["venue_id"]))
    keys = [parse_change({"type": "key", "op": "upsert", "seq": 0, **k}) for k in answer["keys"]]
    save_link(cfg, link)
    with immediate(conn):
        for k in keys:
            conn.execute("INSERT INTO hub_keys (key_id, public_key, added_at) VALUES (?, ?, ?) "
                         "ON CONFLICT(key_id) DO UPDATE SET public_key = excluded.public_key",
                         (k.data["key_id"], k.data["public_key"], to_iso(utcnow())))
        set_state(conn, "hub_appliance_id", str(link.appliance_id))
        set_state(conn, "hub_venue_id", str(link.venue_id))
        set_state(conn, "revoked_at", None)
    return link


# -- the agent -------------------------------------------------------------------------------


class Agent:
    """One appliance's sync work against one hub. Not thread-safe: one thread drives it."""

    def __init__(self, cfg: Config, conn: sqlite3.Connection, vault: HolderVault,
                 link: HubLink, client: HubClient | None = None,
                 progress: Callable[[int, int | None], None] | None = None):
        self.cfg = cfg
        self.conn = conn
        self.vault = vault
        self.link = link
        self.client = client or HubClient(link.hub_url, link.credential,
                                          timeout=cfg.hub_timeout_s)
        self.progress = progress

    # revocations ------------------------------------------------------------------------

    def pull_revocations(self) -> int:
        """Apply every revocation after the stream's cursor; returns how many were new."""
        cursor, _ = cursor_of(self.conn, "revocations")
        applied = 0
        while True:
            try:
                page = self.client.revocations(cursor, full=_full(self.conn))
            except CursorExpired as e:
                allowlist, _ = cursor_of(self.conn, "allowlist")
                if allowlist < e.horizon or allowlist <= cursor:
                    self.pull_allowlist()  # takes the snapshot, which moves both cursors
                    return applied
                # the allowlist stream carries every revocation up to its cursor
                with immediate(self.conn):
                    self.conn.execute("UPDATE sync_state SET cursor = max(cursor, ?) "
                                      "WHERE stream = 'revocations'", (allowlist,))
                cursor = allowlist
                continue
            _note_full(self.conn, cursor, page)
            changes = _parse(page["changes"])
            new = int(page["cursor"])
            r = apply_changes(self.conn, self.vault, changes, cursor=max(new, cursor),
                              stream="revocations")
            applied += r.applied
            cursor = max(new, cursor)
            if not page["more"]:
                return applied

    # allowlist --------------------------------------------------------------------------

    def pull_allowlist(self) -> int:
        """Catch the allowlist up with the hub; returns the changes applied."""
        if snapshot.pending(self.cfg, self.conn):
            return snapshot.take(self)
        try:
            applied, ok = self.pull_into(self.conn)
        except CursorExpired:
            log.warning("the hub no longer keeps changes this far back: taking a snapshot")
            return snapshot.take(self, reason="cursor expired")
        if not ok:
            log.warning("allowlist checksum differs from the hub's: taking a snapshot")
            return applied + snapshot.take(self, reason="checksum mismatch")
        return applied

    def pull_into(self, conn: sqlite3.Connection) -> tuple[int, bool]:
        """Pull pages into ``conn`` (the live database or a snapshot) until caught up; returns
        the changes applied and whether the count received matches the hub's checksum.

        The next page is fetched while this one is applied (its cursor is known as soon as
        this page arrives), so the hub's work and the appliance's overlap; a page is still
        applied only after the one before it has committed."""
        cursor, _ = cursor_of(conn, "allowlist")
        applied = done = 0
        total: int | None = None
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="allowlist") as pool:
            ahead: concurrent.futures.Future | None = None
            try:
                while True:
                    if ahead is None:
                        page = self.client.allowlist(
                            cursor, self.cfg.sync_page_size, full=_full(conn),
                            progress=self.progress is not None and total is None)
                    else:
                        page, ahead = ahead.result(), None
                    _note_full(conn, cursor, page)
                    if total is None and "remaining" in page:
                        total = int(page["remaining"]) + len(page["changes"])
                    new = max(int(page["cursor"]), cursor)
                    if page["more"]:
                        ahead = pool.submit(self.client.allowlist, new, self.cfg.sync_page_size,
                                            full=_full(conn))
                    changes = _parse(page["changes"])
                    received = len(changes) + (int(page.get("compacted", 0)) if cursor == 0
                                               else 0)
                    try:
                        r = apply_changes(conn, self.vault, changes, cursor=new,
                                          stream="allowlist", received=received)
                    except AllowlistError as e:
                        raise HubUnavailable(f"a change from the hub cannot be applied: {e}"
                                             ) from None
                    applied += r.applied
                    done += len(changes)
                    cursor = new
                    if self.progress is not None:
                        self.progress(done, total)
                    if not page["more"]:
                        break
            finally:
                if ahead is not None and not ahead.cancel():
                    ahead.exception()  # wait for it; its failure no longer matters
        count = cursor_of(conn, "allowlist").changes
        expected = int(page.get("checksum", {}).get("changes", count))
        if expected != count:
            log.warning("allowlist checksum: hub counts %s changes up to cursor %s, "
                        "this appliance received %s", expected, cursor, count)
        return applied, expected == count

    # entries ----------------------------------------------------------------------------

    def push_entries(self) -> int:
        """Send every unacknowledged entry, batch by batch; returns how many were sent. An
        admission still waiting for its passage is not final (no passage annuls it) and stays
        until the gate runtime settles it."""
        sent = 0
        after = acked_mark(self.conn)
        while True:
            rows = _named(self.conn,
                """SELECT e.seq, e.id, e.at, l.code AS lane, e.direction, e.ticket_id,
                          e.session_id, e.admitted, e.reason, e.cursor, e.batch_id,
                          e.scan_kind AS kind, e.staff
                   FROM entries e LEFT JOIN lanes l ON l.id = e.lane_id
                   WHERE e.acked_at IS NULL AND e.seq > ?
                     AND (e.passage IS NULL OR e.passage <> 'pending')
                   ORDER BY e.seq LIMIT ?""",
                (after, self.cfg.sync_batch_size))
            if not rows:
                return sent
            batch_id = next((r["batch_id"] for r in rows if r["batch_id"]), None) or str(uuid7())
            with immediate(self.conn):  # the batch is written down before it is sent
                self.conn.executemany("UPDATE entries SET batch_id = ? WHERE seq = ? "
                                      "AND batch_id IS NULL", [(batch_id, r["seq"]) for r in rows])
            self._send([_entry_record(r) for r in rows])
            sent += len(rows)
            after = rows[-1]["seq"]

    def _send(self, records: list[EntryRecord]) -> None:
        invalid = _unsendable(records)
        if invalid:  # the hub would refuse them: kept here as refused, the rest go on
            for entry_id, field in invalid.items():
                self._ack({entry_id: "refused"}, reason="bad_entry")
                log.warning("entry %s does not match the sync schema (%s); it is kept and "
                            "shown as refused", entry_id, field)
            records = [r for r in records if r.id not in invalid]
            if not records:
                return
        try:
            answer = self.client.push_entries([r.to_wire() for r in records])
        except Refused as e:
            if len(records) > 1:  # find the entries the hub refuses; send the others
                half = len(records) // 2
                self._send(records[:half])
                self._send(records[half:])
                return
            self._ack({records[0].id: "refused"}, reason=(e.code or str(e))[:200])
            log.warning("the hub refused entry %s (%s); it is kept and shown as refused",
                        records[0].id, e.code or e)
            return
        status: dict[str, str] = {}
        for i in answer["stored"]:
            status[str(i)] = "stored"
        for i in answer["duplicate"]:
            status[str(i)] = "duplicate"
        for i in answer["conflict"]:
            status[str(i)] = "conflict"
        refused = {}
        for item in answer["refused"]:
            if isinstance(item, dict):
                refused[str(item.get("id"))] = str(item.get("reason", "refused"))[:200]
            else:
                refused[str(item)] = "refused"
        ours = {r.id for r in records}
        self._ack({i: s for i, s in status.items() if i in ours})
        for i, reason in refused.items():
            if i in ours:
                self._ack({i: "refused"}, reason=reason)
        missing = ours - set(status) - set(refused)
        if missing:
            log.warning("the hub's answer left out %s entries; they will be sent again",
                        len(missing))

    def _ack(self, status: dict[str, str], reason: str | None = None) -> None:
        if not status:
            return
        now = to_iso(utcnow())
        with immediate(self.conn):
            self.conn.executemany(
                "UPDATE entries SET acked_at = ?, ack_status = ?, ack_reason = ? "
                "WHERE id = ? AND acked_at IS NULL",
                [(now, s, reason, i) for i, s in status.items()])
            advance_acked_mark(self.conn)

    # heartbeat --------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The heartbeat's report, as sent (:meth:`state_report` on the wire)."""
        return self.state_report().to_wire()

    def state_report(self) -> StateReport:
        c = self.conn
        devices = tuple(
            DeviceReport(id=r["id"], kind=r["kind"], state=r["state"],
                         detail=r["detail"] and r["detail"][:1000], at=r["at"], lane=r["lane"])
            for r in _named(c, "SELECT d.id, d.kind, d.state, d.state_detail AS detail, "
                            "d.state_at AS at, l.code AS lane FROM devices d LEFT JOIN lanes l "
                            "ON l.id = d.lane_id WHERE d.enabled = 1 ORDER BY d.id LIMIT 200"))
        # the venue's lanes and their gates, so that the hub counts each entry at its gate
        # (the sync schema's lengths: code 32, gate 64, name 128)
        lanes = tuple(
            LaneReport(code=r["code"][:32], gate=r["gate"][:64] if r["gate"] else None,
                       name=r["name"][:128])
            for r in _named(c, "SELECT l.code, g.code AS gate, l.name FROM lanes l LEFT JOIN "
                            "gates g ON g.id = l.gate_id ORDER BY l.code LIMIT 500"))
        cursors = {r["stream"]: r["cursor"] for r in _named(
            c, "SELECT stream, cursor FROM sync_state "
            "WHERE stream IN ('allowlist', 'revocations')")}
        queue = _named(c, "SELECT count(*) AS unsent, min(at) AS oldest, "
                       f"(SELECT max(seq) FROM entries) AS last_seq FROM entries WHERE {UNACKED}"
                       )[0]
        refused = c.execute("SELECT count(*) FROM entries WHERE ack_status = 'refused'"
                            ).fetchone()[0]
        keys = tuple(r["key_id"] for r in _named(
            c, "SELECT key_id FROM hub_keys WHERE retired_at IS NULL ORDER BY key_id"))
        return StateReport(
            software_version=VERSION, devices=devices, lanes=lanes, cursors=cursors, keys=keys,
            queue=QueueReport(unsent=queue["unsent"], oldest_unsent_at=queue["oldest"],
                              refused=refused, last_seq=queue["last_seq"] or 0))

    def heartbeat(self) -> list[str]:
        """Report, learn the clock skew, carry out the hub's commands; returns them."""
        done = json.loads(get_state(self.conn, "commands_done") or "[]")
        sent = time.time()
        answer = self.client.heartbeat(self.report(), to_iso(utcnow()), done=done)
        back = time.time()
        try:
            server = from_iso(str(answer["server_time"])).timestamp()
        except ValueError:
            raise HubUnavailable("the heartbeat answer has no usable server_time") from None
        offset_ms = int(((sent + back) / 2 - server) * 1000)
        with immediate(self.conn):
            set_state(self.conn, "clock_offset_ms", str(offset_ms))
        if abs(offset_ms) > 60_000:
            log.warning("this appliance's clock is %+.1f s off the hub's", offset_ms / 1000)
        commands = [str(x) for x in answer["commands"]]
        ids = answer.get("command_ids")
        if not isinstance(ids, list) or len(ids) != len(commands):
            ids = [None] * len(commands)  # a hub that hands commands over once, unconfirmed
        # the hub has recorded the ids this heartbeat confirmed and no longer lists them; a
        # listed id that was confirmed all the same is confirmed again, not carried out twice
        with immediate(self.conn):
            set_state(self.conn, "commands_done", json.dumps([i for i in ids if i in done]))
        for command_id, command in zip(ids, commands, strict=True):
            if command_id is not None and command_id in done:
                continue
            self.carry_out(command)
            if command_id is not None:  # confirmed to the hub in the next heartbeat
                with immediate(self.conn):
                    mine = json.loads(get_state(self.conn, "commands_done") or "[]")
                    set_state(self.conn, "commands_done", json.dumps(mine + [command_id]))
        return commands

    def carry_out(self, command: str) -> None:
        log.info("the hub asks for: %s", command)
        if command == "resync":
            snapshot.take(self, reason="asked by the hub")
        elif command == "roll_credential":
            self.roll_credential()
        elif command == "wipe":
            wipe(self.cfg, self.conn, "the hub asked for a wipe")
            raise Wiped("the hub asked this appliance to wipe its personal data")
        else:
            log.warning("unknown command from the hub ignored: %s", command)

    def roll_credential(self) -> None:
        """Choose the new credential, write it down, then ask the hub to switch to it: if the
        answer is lost, the next 401 tries the new credential before anything is wiped."""
        chosen = secrets.token_urlsafe(32)
        self.link = dataclasses.replace(self.link, next_credential=chosen)
        save_link(self.cfg, self.link)
        self.client.roll(chosen)
        self._promote()
        log.info("hub credential rolled")

    def _promote(self) -> None:
        assert self.link.next_credential is not None
        self.link = dataclasses.replace(self.link, credential=self.link.next_credential,
                                        next_credential=None)
        save_link(self.cfg, self.link)
        self.client.credential = self.link.credential

    # one round --------------------------------------------------------------------------

    def step(self, stream: str) -> Any:
        """Run one stream's step and record its outcome; Unauthorized wipes and raises Wiped."""
        fn = {"revocations": self.pull_revocations, "allowlist": self.pull_allowlist,
              "entries": self.push_entries, "heartbeat": self.heartbeat}[stream]
        try:
            try:
                result = fn()
            except Unauthorized:
                if self.link.next_credential is None:
                    raise
                # a roll whose answer was lost: the hub may already know the new credential
                self.client.credential = self.link.next_credential
                result = fn()
                self._promote()
                log.info("hub credential roll completed after a lost answer")
        except Unauthorized as e:
            wipe(self.cfg, self.conn, "the hub refused this appliance's credential")
            raise Wiped(str(e)) from None
        except HubError as e:
            with immediate(self.conn):
                stream_failed(self.conn, stream, str(e))
            raise
        with immediate(self.conn):
            stream_ok(self.conn, stream)
        return result

    def run_once(self) -> list[tuple[str, HubError]]:
        """Every step once; returns the failures. Stops early when the hub cannot be reached."""
        failures: list[tuple[str, HubError]] = []
        for stream in STREAMS:
            try:
                self.step(stream)
            except HubError as e:
                failures.append((stream, e))
                if isinstance(e, HubUnavailable) and e.status is None:
                    break
        return failures


def _unsendable(records: list[EntryRecord]) -> dict[str, str]:
    """Entries the sync schema refuses, with the field it names, by entry id."""
    bad = {}
    for r in records:
        try:
            EntryRecord.from_wire(r.to_wire())
        except BadField as e:
            bad[str(r.id)] = e.field + ": " + e.invalid.message
    return bad


def _named(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
    """Rows read by column name (the connection's own row type is left as it is)."""
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    return cur.execute(sql, params).fetchall()


def _entry_record(r: sqlite3.Row) -> EntryRecord:
    return EntryRecord(id=r["id"], seq=r["seq"], at=r["at"], lane=r["lane"],
                       direction=r["direction"], ticket_id=r["ticket_id"],
                       session_id=r["session_id"], admitted=bool(r["admitted"]),
                       reason=r["reason"], cursor=r["cursor"], kind=r["kind"],
                       staff=r["staff"])


def _full(conn: sqlite3.Connection) -> int | None:
    value = get_state(conn, "full_sync_horizon")
    return int(value) if value is not None else None


def _note_full(conn: sqlite3.Connection, since: int, page: dict[str, Any]) -> None:
    """A pull from cursor 0 remembers the hub's horizon, to page through the compacted part."""
    if since == 0 and "horizon" in page:
        with immediate(conn):
            set_state(conn, "full_sync_horizon", str(int(page["horizon"])))


def _parse(raw: list[Any]) -> list:
    try:
        return [parse_change(c) for c in raw]
    except ChangeError as e:
        raise HubUnavailable(f"the hub sent a change this appliance cannot read: {e}") from None


def wipe(cfg: Config, conn: sqlite3.Connection, why: str) -> None:
    """Remove the personal data (holder names and document numbers, sealed or masked) and the
    credential; entries and their outbox stay. Deleted pages are overwritten, not just freed."""
    conn.execute("PRAGMA secure_delete = ON")
    with immediate(conn):
        n = conn.execute("DELETE FROM holders").rowcount
        conn.execute("UPDATE tickets SET holder_id = NULL WHERE holder_id IS NOT NULL")
        set_state(conn, "revoked_at", to_iso(utcnow()))
        conn.execute("INSERT INTO audit_log (at, actor, action, subject, detail) "
                     "VALUES (?, 'sync', 'appliance.wipe', '', ?)",
                     (to_iso(utcnow()), json.dumps({"holders": n, "why": why})))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    Path(cfg.credential_path).unlink(missing_ok=True)
    log.error("personal data wiped (%s holders): %s", n, why)
