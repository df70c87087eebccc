"""``wicket-edge``: the technician's command line on the appliance.

    wicket-edge --config FILE init            create the config (with a new holder key) and the database, or upgrade it
    wicket-edge --config FILE import FILE     load an allowlist file the hub signed (see docs/sync-agent.md)
    wicket-edge --config FILE trust-key KEY_ID:BASE64   a hub key for an appliance without a hub
    wicket-edge --config FILE scan --lane L CODE
    wicket-edge --config FILE entries
    wicket-edge --config FILE web [--bind HOST:PORT]          serve the local web pages (gunicorn)
    wicket-edge --config FILE create-user --role ROLE NAME    a staff account for the web pages
    wicket-edge --config FILE enroll --hub URL --token TOKEN
    wicket-edge --config FILE sync [--once]   the sync agent (see docs/sync-agent.md)
    wicket-edge --config FILE status [--json]
    wicket-edge --config FILE gates                           run the lanes (the gate runtime)
    wicket-edge --config FILE handheld code|list|revoke       pair handhelds, list them, revoke one
    wicket-edge --config FILE tls [--new]     the web pages' certificate and its fingerprint

Exit status: 0 success (for ``scan``: admitted), 1 refused by the rules, 2 bad input or a fault;
``enroll`` and ``sync --once`` also 3 (the hub unreachable or failing: try again) and 4 (the
hub refused the token or the appliance); every command and service 74 when the disk is full or
read-only (one line says which file; see ``sync/diskfault.py``).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edge import audit
from edge import config as config_mod
from edge import db as db_mod
from edge.allowlist import AllowlistError, import_file
from edge.config import disk_paths
from edge.engine import Engine, IdDocument, Scan, ScanKind, UnknownLane
from edge.holders import DOC_TYPES, HolderKeyError, HolderVault, generate_holder_key
from edge.reasons import Reason, colour, words
from edge.tls import TlsError, ensure_certificate
from sync.diskfault import guard
from sync.timeutil import from_iso

EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2


class CliError(Exception):
    pass


def _lang(args) -> str:
    if args.lang:
        return args.lang
    env = os.environ.get("LC_ALL") or os.environ.get("LC_MESSAGES") or os.environ.get("LANG", "")
    return "zh" if env.lower().startswith("zh") else "en"


def _open(args):
    cfg = config_mod.load(args.config)
    if not cfg.database.exists():
        raise CliError(f"{cfg.database}: no database yet; run `wicket-edge init` first")
    conn = db_mod.connect(cfg.database)
    pending = db_mod.migrations.pending(db_mod.open_db(cfg.database))
    if pending:
        raise CliError(f"{cfg.database}: the database needs an upgrade; run `wicket-edge init`")
    try:
        vault = HolderVault(cfg.holder_key)
    except HolderKeyError as e:
        raise CliError(f"{cfg.path}: holder_key: {e}") from None
    return cfg, conn, vault


def initialise(path: Path, database: str | None = None, explicit: bool = True,
               say=print) -> tuple[config_mod.Config, bool, bool]:
    """Create the configuration file (owner-only, with a new holder key) if there is none, and
    create or upgrade the database; shared by ``init`` and ``wicket-provision enroll``.
    Returns the configuration and whether the file and the database were created now."""
    created_config = not path.exists()
    if created_config:
        values = {"holder_key": generate_holder_key()}
        if database:
            values["database"] = database
        elif explicit:
            values["database"] = "edge.db"  # beside the config file
        config_mod.write_new(path, values)
        say(f"created {path} (owner-only; it holds the key that seals holder data)")
    cfg = config_mod.load(path)
    HolderVault(cfg.holder_key)  # a bad key is reported now, not at the first scan
    existed = cfg.database.exists()
    db = db_mod.open_db(cfg.database)
    try:
        applied = db_mod.migrate(db)
        if not existed:
            say(f"created database {cfg.database}")
        if applied:
            say(f"applied migrations: {', '.join(applied)}")
        else:
            say(f"database {cfg.database} is up to date")
        check = db.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        db.conn.close()
    if check != "ok":
        raise CliError(f"{cfg.database}: integrity check failed: {check}")
    try:
        ensure_certificate(cfg.web_cert, cfg.web_key, cfg.web_bind, cfg.web_tls_names, say)
    except TlsError as e:
        raise CliError(str(e)) from None
    return cfg, created_config, not existed


def cmd_init(args) -> int:
    initialise(config_mod.config_path(args.config), args.database, explicit=bool(args.config))
    return EXIT_OK


def cmd_import(args) -> int:
    _, conn, vault = _open(args)
    path = Path(args.file)
    interactive = sys.stderr.isatty()

    def progress(done: int) -> None:
        if interactive:
            print(f"\r  applied {done} changes", end="", file=sys.stderr, flush=True)

    try:
        result = import_file(conn, vault, path, progress=progress)
    finally:
        if interactive:
            print(file=sys.stderr)
    audit.record(conn, f"cli:{getpass.getuser()}", "allowlist.import", str(path.resolve()),
                 {"applied": result.applied, "unchanged": result.unchanged,
                  "cursor": result.cursor, "counts": result.counts,
                  "signed_by": result.signed_by, "exported_at": result.exported_at})
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result.counts.items())) or "nothing new"
    print(f"imported {path} (signed by hub key {result.signed_by}, exported "
          f"{result.exported_at}): {result.applied} changes applied ({counts}), "
          f"{result.unchanged} already up to date; cursor {result.cursor}")
    return EXIT_OK


def cmd_trust_key(args) -> int:
    """A hub key given at the shell, for an appliance that has no hub (the walkthrough, a test
    bench): an enrolled appliance takes its keys only from its hub, by the authenticated sync,
    and a file import never brings one."""
    from edge.uplink.state import get_state
    from sync.keys import KeyFileError, KeyRing
    from sync.timeutil import to_iso, utcnow

    cfg, conn, _ = _open(args)
    if Path(cfg.credential_path).exists() or get_state(conn, "hub_appliance_id"):
        raise CliError("this appliance is enrolled with a hub: it takes hub keys only from "
                       "the hub, by sync")
    key_id, _, b64 = args.key.partition(":")
    try:
        if not key_id.isdigit():
            raise KeyFileError("the key id is not a number")
        kid = int(key_id)
        KeyRing().add(kid, b64)
    except KeyFileError as e:
        raise CliError(f"{args.key[:60]!r}: expected KEY_ID:BASE64 ({e})") from None
    with db_mod.immediate(conn):
        row = conn.execute("SELECT public_key FROM hub_keys WHERE key_id = ?", (kid,)).fetchone()
        if row is not None and row[0] != b64:
            raise CliError(f"hub key {kid} is already trusted with another public key")
        if row is None:
            conn.execute("INSERT INTO hub_keys (key_id, public_key, added_at) VALUES (?, ?, ?)",
                         (kid, b64, to_iso(utcnow())))
            audit.record(conn, f"cli:{getpass.getuser()}", "hub_key.trust", f"key:{kid}",
                         {"public_key": b64})
    print(f"hub key {kid} trusted" + (" already" if row is not None else ""))
    return EXIT_OK


def _read_secret(value: str) -> str:
    return sys.stdin.readline().strip() if value == "-" else value


def _cli_staff() -> str:
    """Who typed a ticket number at the command line: the technician's OS account."""
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


def cmd_scan(args) -> int:
    cfg, conn, vault = _open(args)
    engine = Engine(conn, vault)
    document = None
    if args.id_number is not None:
        document = IdDocument(args.id_type, _read_secret(args.id_number))
    kind = ScanKind(args.kind)
    if kind is ScanKind.ID_CARD and document is None:
        raise CliError("an id_card scan needs --id-number (use - to read it from stdin)")
    if kind is not ScanKind.ID_CARD and args.code is None:
        raise CliError("give the scanned code (or --kind id_card with --id-number)")
    now = from_iso(args.at) if args.at else None
    staff = _cli_staff() if kind is ScanKind.MANUAL else None
    scan = Scan(kind, args.code or "", device_id=args.device, document=document, staff=staff)
    try:
        d = engine.decide(scan, args.lane, now)
    except UnknownLane as e:
        known = ", ".join(r[0] for r in conn.execute(
            "SELECT code FROM lanes WHERE enabled = 1 ORDER BY code")) or "none"
        raise CliError(f"{e}; nothing recorded (enabled lanes: {known})") from None
    if kind is ScanKind.MANUAL:
        audit.record(conn, staff, "entry.manual", f"lane:{args.lane}", {
            "entry_id": d.entry_id, "reason": str(d.reason),
            "ticket_id": d.ticket.id if d.ticket else None})
    tz = _venue_tz(conn)
    lang = _lang(args)
    print(f"{d.verdict.upper():7} {d.reason}  {words(d.reason, lang)}  [{colour(d.reason)}]")
    if d.detail:
        print(f"  why:    {d.detail}")
    if d.ticket:
        t = d.ticket
        parts = [f"ticket {t.number or t.id}"]
        if t.role != "ticket":
            parts.append(t.role)
        if t.zone:
            parts.append(f"zone {t.zone}")
        if t.seat:
            parts.append(f"seat {t.seat}")
        if t.session:
            parts.append(f"session {t.session}")
        if d.offline_code:
            parts.append("not yet in the allowlist: admitted on its signature")
        if d.by_number:
            parts.append(f"admitted by ticket number, typed by {d.staff}")
        print("  " + ", ".join(parts))
    if d.holder_masked:
        print(f"  holder: {d.holder_masked.name}  {d.holder_masked.document}")
    if d.first_entry_at:
        print(f"  first entry: {_local(d.first_entry_at, tz)}")
    if d.entry_id:
        print(f"  entry {d.entry_id} at {_local(d.at, tz)}, lane {d.lane} ({d.direction})")
    if d.reason is Reason.DEVICE_ERROR:
        return EXIT_ERROR
    return EXIT_OK if d.open_lane else EXIT_REFUSED


def cmd_entries(args) -> int:
    _, conn, _ = _open(args)
    tz = _venue_tz(conn)
    rows = conn.execute(
        """SELECT e.at, l.code, e.direction, e.reason, t.number, e.ticket_id, h.name_masked,
                  h.doc_masked, e.detail, e.acked_at, e.scan_kind, e.staff, e.admitted
           FROM entries e LEFT JOIN lanes l ON l.id = e.lane_id
           LEFT JOIN tickets t ON t.id = e.ticket_id LEFT JOIN holders h ON h.id = t.holder_id
           WHERE (? IS NULL OR l.code = ?) ORDER BY e.seq DESC LIMIT ?""",
        (args.lane, args.lane, args.limit)).fetchall()
    print(f"{'time':19}  {'lane':8} {'dir':3}  {'reason':17} {'ticket':14} {'holder':24} sent why")
    for (at, lane, direction, reason, number, ticket_id, name, doc, detail, acked, kind, staff,
         admitted) in rows:
        if kind == ScanKind.MANUAL and admitted:
            detail = f"admitted by ticket number, typed by {staff}"
        ticket = number or (str(ticket_id) if ticket_id else "-")
        holder = f"{name} {doc}" if name else "-"
        print(f"{_local(from_iso(at), tz):19}  {lane or '-':8} {direction:3}  {reason:17} "
              f"{ticket:14} {holder:24} {'yes' if acked else 'no ':4} {detail}")
    (total, unsent) = conn.execute(
        "SELECT count(*), count(*) - count(acked_at) FROM entries").fetchone()
    print(f"{total} entries recorded, {unsent} not yet acknowledged by the hub")
    return EXIT_OK


def cmd_web(args) -> int:
    from edge.web.cli import serve

    return serve(args.config, args.bind, args.workers, args.threads)


def cmd_create_user(args) -> int:
    from edge import staff

    _, conn, _ = _open(args)
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise CliError("the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        staff.create_user(conn, args.username, password, args.role, f"cli:{getpass.getuser()}",
                          lang=args.user_lang, must_change=args.must_change)
    except staff.StaffError as e:
        raise CliError(str(e)) from None
    print(f"created {args.role} account {args.username!r}"
          + (" (the password must be changed at the first login)" if args.must_change else ""))
    return EXIT_OK


def cmd_enroll(args) -> int:
    from edge.uplink.agent import enroll
    from sync.client import HubUnavailable, Refused, Unauthorized

    cfg, conn, _ = _open(args)
    try:
        link = enroll(cfg, conn, args.hub, _read_secret(args.token))
    except Unauthorized as e:
        print(f"wicket-edge: {e}", file=sys.stderr)
        return 4
    except HubUnavailable as e:
        print(f"wicket-edge: {e}", file=sys.stderr)
        return 3
    except Refused as e:
        raise CliError(str(e)) from None
    audit.record(conn, f"cli:{getpass.getuser()}", "appliance.enroll", link.hub_url,
                 {"appliance_id": link.appliance_id, "venue_id": link.venue_id})
    print(f"enrolled as appliance {link.appliance_id} of venue {link.venue_id} at "
          f"{link.hub_url}; credential kept in {cfg.credential_path} (owner-only)")
    return EXIT_OK


def cmd_sync(args) -> int:
    from edge.uplink import service as sync_service

    return sync_service.main(args.config, once=args.once)


def cmd_status(args) -> int:
    import json

    from edge.uplink.status import render, status

    cfg, conn, _ = _open(args)
    s = status(cfg, conn)
    print(json.dumps(s, indent=2, sort_keys=True) if args.json else render(s))
    return EXIT_OK


def cmd_handheld(args) -> int:
    from datetime import timedelta

    from edge import handhelds

    _, conn, _ = _open(args)
    actor = f"cli:{getpass.getuser()}"
    try:
        if args.action == "code":
            p = handhelds.create_pairing(conn, args.name or "", args.lane or [], actor,
                                         ttl=timedelta(minutes=args.minutes))
            lanes = ", ".join(p.lanes) or "every enabled lane"
            print(f"pairing code {p.code} for {p.name!r} ({lanes}); valid once, until "
                  f"{_local(p.expires_at, _venue_tz(conn))}")
        elif args.action == "list":
            for h in handhelds.list_handhelds(conn):
                token = "paired" if h["token_live"] else "revoked"
                seen = h["seen_at"] or "never"
                print(f"{h['device_id']:16} {h['name'][:24]:24} {token:8} "
                      f"{','.join(h['lanes']) or 'all lanes':16} last heard {seen}  "
                      f"{h['state']}")
        else:
            if not args.device:
                raise CliError("revoke needs the handheld's device id (see `handheld list`)")
            n = handhelds.revoke(conn, args.device, actor)
            print(f"{args.device}: {n} token(s) revoked" if n else
                  f"{args.device}: no live token (unknown, or revoked already)")
    except handhelds.HandheldError as e:
        raise CliError(e.message) from None
    return EXIT_OK


def _venue_tz(conn) -> ZoneInfo:
    row = conn.execute("SELECT timezone FROM venue LIMIT 1").fetchone()
    return ZoneInfo(row[0] if row else "UTC")


def _local(dt: datetime, tz: ZoneInfo) -> str:
    return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def cmd_tls(args) -> int:
    """The web pages' certificate: its fingerprint for staff to compare when a browser or a
    handheld first meets it (docs/handheld.md); ``--new`` replaces it with a new one."""
    from edge import tls

    cfg = config_mod.load(args.config)
    try:
        if args.new:
            info = tls.make_self_signed(cfg.web_cert, cfg.web_key, tls.certificate_names(
                cfg.web_bind, cfg.web_tls_names))
            audit_path = cfg.database if cfg.database.exists() else None
            if audit_path is not None:
                conn = db_mod.connect(audit_path)
                audit.record(conn, f"cli:{getpass.getuser()}", "web.certificate",
                             str(cfg.web_cert), {"fingerprint": info.fingerprint})
                conn.close()
            print(f"created a new self-signed certificate {cfg.web_cert}; restart the web "
                  "service (systemctl restart wicket-edge-web) and trust it again on every "
                  "handheld")
        else:
            info = tls.describe(cfg.web_cert)
    except tls.TlsError as e:
        raise CliError(f"{e}; run `wicket-edge init` to make one") from None
    served = tls.serves_tls(cfg.web_tls, cfg.web_bind)
    print(f"certificate  {cfg.web_cert}")
    print(f"SHA-256      {info.fingerprint}")
    print(f"valid for    {', '.join(info.names) or '(no names)'}")
    print(f"valid until  {info.not_after:%Y-%m-%d}")
    print(f"web pages    {'https' if served else 'http'}://{cfg.web_bind}/ (web_tls = "
          f"{cfg.web_tls})")
    return EXIT_OK


def cmd_gates(args) -> int:
    from edge.gates import runtime

    return runtime.run_from_config(config_mod.load(args.config), **runtime.options_from(args))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wicket-edge", description="Wicket venue appliance tools.")
    p.add_argument("--config", help=f"configuration file (default: ${config_mod.ENV_VAR} or "
                   f"{config_mod.DEFAULT_PATH})")
    p.add_argument("--lang", choices=("en", "zh"), help="language of verdicts (default: $LANG)")
    sub = p.add_subparsers(dest="command", required=True)
    _data_commands(sub)
    _service_commands(sub)
    return p


def _data_commands(sub) -> None:
    """The database's own commands: set it up, load and trust, scan and read."""
    s = sub.add_parser("init", help="create or upgrade the configuration and the database")
    s.add_argument("--database", help="database path to write into a new configuration file")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("import", help="load an allowlist file the hub signed (JSON lines)")
    s.add_argument("file")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("trust-key", help="trust a hub key on an appliance without a hub "
                       "(an enrolled one takes keys from its hub only)")
    s.add_argument("key", help="KEY_ID:BASE64, as `wicket-codes pubkey` prints it")
    s.set_defaults(func=cmd_trust_key)

    s = sub.add_parser("scan", help="decide a scan as a lane would, and record it")
    s.add_argument("--lane", required=True, help="lane code")
    s.add_argument("--kind", default="qr",
                   choices=[k.value for k in ScanKind if k is not ScanKind.OVERRIDE],
                   help="what read it: qr (any camera or barcode scanner), rfid, id_card; "
                   "manual is a ticket number typed by the technician, admitted only where "
                   "the gate's policy allows it and recorded with the OS user")
    s.add_argument("--device", help="device id to record with the entry")
    s.add_argument("--id-type", default="resident_id", choices=DOC_TYPES,
                   help="type of the ID document shown")
    s.add_argument("--id-number", help="number of the ID document shown; - reads it from stdin")
    s.add_argument("--at", help="decide as of this ISO 8601 time (testing)")
    s.add_argument("code", nargs="?", help="the scanned code, RFID UID or ticket number")
    s.set_defaults(func=cmd_scan)

    s = sub.add_parser("entries", help="recent entries, newest first (holder data masked)")
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--lane", help="only this lane")
    s.set_defaults(func=cmd_entries)


def _service_commands(sub) -> None:
    """The appliance's processes and their accounts, hub link, certificate and handhelds."""
    s = sub.add_parser("web", help="serve the local web pages (gunicorn)")
    s.add_argument("--bind", help="HOST:PORT (default: web_bind from the configuration)")
    s.add_argument("--workers", type=int, help="worker processes (default: web_workers)")
    s.add_argument("--threads", type=int, help="threads per worker (default: web_threads)")
    s.set_defaults(func=cmd_web)

    s = sub.add_parser("create-user", help="create a staff account for the web pages "
                       "(password from the terminal, or one line on stdin)")
    s.add_argument("--role", required=True, choices=("admin", "supervisor", "gate"))
    s.add_argument("--user-lang", choices=("en", "zh"), help="the account's page language")
    s.add_argument("--must-change", action="store_true",
                   help="make the first login choose a new password")
    s.add_argument("username")
    s.set_defaults(func=cmd_create_user)

    s = sub.add_parser("enroll", help="enroll this appliance with the hub (one-time token)")
    s.add_argument("--hub", required=True, help="the hub's base URL, e.g. https://hub.example")
    s.add_argument("--token", required=True, help="the enrollment token; - reads it from stdin")
    s.set_defaults(func=cmd_enroll)

    s = sub.add_parser("sync", help="run the sync agent (until SIGTERM), or one round")
    s.add_argument("--once", action="store_true", help="one round of every step, then exit "
                   "(0 done, 3 hub unreachable or failing, 4 appliance refused, 2 config)")
    s.set_defaults(func=cmd_sync)

    s = sub.add_parser("status", help="sync status: streams, lag, queue, refused entries, clock")
    s.add_argument("--json", action="store_true", help="as JSON")
    s.set_defaults(func=cmd_status)

    from edge.gates.runtime import add_options

    s = sub.add_parser("gates", help="run the lanes: devices, decisions, turnstiles")
    add_options(s)
    s.set_defaults(func=cmd_gates)

    s = sub.add_parser("tls", help="the web pages' certificate: its SHA-256 fingerprint, "
                       "names and expiry (--new: replace it with a new self-signed one)")
    s.add_argument("--new", action="store_true", help="make a new self-signed certificate "
                   "and key in place of the configured ones")
    s.set_defaults(func=cmd_tls)

    s = sub.add_parser("handheld", help="handhelds: a one-time pairing code, the list, revoke one")
    s.add_argument("action", choices=("code", "list", "revoke"))
    s.add_argument("device", nargs="?", help="for revoke: the handheld's device id")
    s.add_argument("--name", help="for code: the handheld's name, e.g. 'Gate 1 PDA 3'")
    s.add_argument("--lane", action="append", help="for code: a lane it may scan for "
                   "(repeat; default every enabled lane)")
    s.add_argument("--minutes", type=int, default=10, help="for code: how long it is valid")
    s.set_defaults(func=cmd_handheld)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        level = config_mod.load(args.config).log_level if args.command != "init" else "INFO"
    except config_mod.ConfigError:
        level = "INFO"
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return guard("wicket-edge", lambda: args.func(args), lambda: disk_paths(args.config))
    except (CliError, config_mod.ConfigError, AllowlistError, HolderKeyError) as e:
        print(f"wicket-edge: {e}", file=sys.stderr)
        return EXIT_ERROR
    except ValueError as e:  # e.g. a malformed --at time
        print(f"wicket-edge: {e}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:
        print(f"wicket-edge: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
