"""``wicket-hub``: the hub's command line.

    wicket-hub [--db URL] init     create or upgrade the hub database (and the data key file,
                                   when there is none)
    wicket-hub [--db URL] serve    serve the hub with gunicorn (production WSGI server); the
                                   pages' secret key comes from $WICKET_HUB_SECRET or an
                                   owner-only file made once (see cloud/web/secret.py)
    wicket-hub [--db URL] load-demo [--tickets N]   a demo venue, event and tickets
    wicket-hub [--db URL] compact [--keep-days N]   drop superseded changes and tombstones
                                   older than N days (default 30) from the change log
    wicket-hub [--db URL] worker [--poll SECONDS]   do the background work: jobs written by
                                   the hub's rules and the periodic tasks (any number of
                                   workers may run at once); stops cleanly on SIGTERM
    wicket-hub [--db URL] alerts [--every SECONDS]   evaluate the ops alert rules once, or
                                   every SECONDS until stopped (a scheduler of its own)
    wicket-hub [--db URL] rotate-data-key [--batch N]   a new data key first in the key file,
                                   every holder sealed again under it in batches of N while
                                   the hub serves (a progress bar on stderr), then the old key
                                   dropped; killed half-way, run it again to resume
    wicket-hub [--db URL] create-admin --username NAME   (the password is asked for, or read
                                   from standard input when it is not a terminal)
    wicket-hub [--db URL] export-allowlist --venue CODE|ID --out FILE   the venue's allowlist,
                                   signed with the active key, for an offline appliance
                                   (written owner-only: it holds holder data; audited)
    wicket-hub payments-keys --dir DIR   merchant keys for the online payment providers, for a
                                   sandbox (prints the settings that name them)
    wicket-hub payments-sandbox --port N --hub-keys DIR/public --publish DIR2   the payment
                                   sandbox playing WeChat Pay and Alipay (docs/payments.md)
    wicket-hub idcheck-sandbox --port N --publish DIR   the identity verification sandbox
                                   (name and number, signed answers; docs/identity.md)
    wicket-hub [--db URL] messenger [--batch N]   send the outbox (SMS, e-mail, WeChat);
                                   any number at once (docs/messaging.md)
    wicket-hub sms-sandbox --port N [--receipts-url URL]   the sandbox SMS gateway

Exit status: 0 done, 2 bad input or the database unreachable, 74 the disk is full or
read-only (one line says which file; see ``sync/diskfault.py``).

The database URL comes from ``--db``, else ``$WICKET_HUB_DB``, else a SQLite file
``wicket-hub.db`` in the current directory. PostgreSQL:
``postgresql+psycopg://user:password@host/dbname``. The data key that seals holders' names and
document numbers comes from the owner-only file ``--data-key`` names, else
``$WICKET_HUB_DATA_KEY``, else ``wicket-hub-data.key`` in the current directory.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import signal
import sys

import sqlalchemy as sa

from cloud.core.db import DEFAULT_URL, init_db
from cloud.core.seal import DEFAULT_PATH, ENV, data_key_path
from sync.diskfault import disk_problem, guard
from sync.websafe import bind_host, is_loopback


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def cmd_init(args) -> int:
    from cloud.core.seal import create_key_file

    if create_key_file(args.data_key):
        print(f"{args.data_key}: a new data key (owner-only; back it up apart from the "
              "database: without it no holder's name or number opens)")
    applied = init_db(args.db, args.data_key)
    if applied:
        print(f"{_safe(args.db)}: applied migrations {', '.join(applied)}")
    else:
        print(f"{_safe(args.db)}: up to date")
    return 0


def cmd_serve(args) -> int:
    from gunicorn.app.base import BaseApplication

    from cloud.app import create_app, instance_path
    from cloud.core.db import current_revision, make_engine
    from cloud.core.seal import SealError, load_keyring
    from cloud.web.secret import SecretError, hub_secret

    if not 0 <= args.trusted_proxies <= 5:
        print("wicket-hub: --trusted-proxies must be 0 to 5", file=sys.stderr)
        return 2
    engine = make_engine(args.db, args.data_key)
    if current_revision(engine) is None:
        print(f"wicket-hub: {_safe(args.db)} has no hub database yet; run `wicket-hub init`",
              file=sys.stderr)
        return 2
    engine.dispose()
    try:
        load_keyring(args.data_key)
    except SealError as e:
        print(f"wicket-hub: {e}", file=sys.stderr)
        return 2
    try:
        # made once here, before the workers start, so that they all sign with the same key
        secret = hub_secret(args.db, instance_path())
    except (SecretError, OSError) as e:
        if disk_problem(e, [instance_path()]):
            raise  # said as a disk problem, with its own exit status
        print(f"wicket-hub: no secret key for the pages: {e}", file=sys.stderr)
        return 2
    config = {"DATABASE_URL": args.db, "SECRET_KEY": secret, "DATA_KEY": args.data_key,
              "SESSION_COOKIE_SECURE": secure_cookies(args.secure_cookies, args.bind),
              "TRUSTED_PROXIES": args.trusted_proxies}
    if args.public_url:
        config["HUB_PUBLIC_URL"] = args.public_url

    from cloud.web.access_log import AccessLog

    class Hub(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", args.bind)
            self.cfg.set("workers", args.workers)
            self.cfg.set("threads", args.threads)  # more than 1: gunicorn's gthread workers
            self.cfg.set("accesslog", "-")
            self.cfg.set("logger_class", AccessLog)
            self.cfg.set("graceful_timeout", 10)

        def load(self):
            return create_app(config)

    print(f"wicket-hub: serving {_safe(args.db)} on http://{args.bind} (cookies "
          f"{'Secure' if config['SESSION_COOKIE_SECURE'] else 'Secure only over TLS'}, "
          f"{args.trusted_proxies} trusted proxies)", flush=True)
    Hub().run()
    return 0


def secure_cookies(mode: str, bind: str) -> bool:
    """Whether the page cookies are marked Secure: ``on``, ``off``, or ``auto`` — as
    $WICKET_HUB_SECURE_COOKIES says, else on unless the hub binds a loopback address (then
    only a proxy on the same machine reaches it, which tells it about TLS: see
    --trusted-proxies)."""
    from cloud.app import secure_cookies_env

    if mode != "auto":
        return mode == "on"
    env = secure_cookies_env()
    return (not is_loopback(bind_host(bind))) if env is None else env


def cmd_create_admin(args) -> int:
    from cloud.core.db import make_engine
    from cloud.staff.staff import StaffError, create_staff

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("wicket-hub: the passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\n")
    engine = make_engine(args.db, args.data_key)
    try:
        with engine.begin() as conn:
            staff_id = create_staff(conn, args.username, password, "admin",
                                    actor=f"cli:{getpass.getuser()}")
    except StaffError as e:
        print(f"wicket-hub: {e}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"created admin {args.username!r} (staff {staff_id})")
    return 0


def cmd_load_demo(args) -> int:
    from cloud.catalog.errors import CatalogError
    from cloud.core.db import make_engine
    from cloud.demo import load_demo

    engine = make_engine(args.db, args.data_key)
    try:
        with engine.begin() as conn:
            demo = load_demo(conn, tickets=args.tickets)
    except CatalogError as e:
        print(f"wicket-hub: {e} (the demo is loaded already?)", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"demo venue {demo.venue_id}: {demo.seats} seats, sessions "
          f"{', '.join(map(str, demo.session_ids))}, {demo.tickets} tickets issued")
    print(f"demo presale {demo.presale_id}: freeze and draw it at /presales/{demo.presale_id} "
          f"once its applications close (a minute from now)")
    return 0


def cmd_compact(args) -> int:
    from cloud.core.compaction import compact
    from cloud.core.db import make_engine

    if args.keep_days < 0:
        print("wicket-hub: --keep-days must not be negative", file=sys.stderr)
        return 2
    engine = make_engine(args.db, args.data_key)
    try:
        with engine.begin() as conn:
            done = compact(conn, args.keep_days)
    finally:
        engine.dispose()
    print(f"change log compacted: {done.superseded} superseded changes and {done.tombstones} "
          f"tombstones dropped; horizon {done.horizon} (appliances behind it take a snapshot)")
    return 0


def cmd_alerts(args) -> int:
    import signal
    import threading
    from datetime import timedelta

    from cloud.core.db import make_engine
    from cloud.ops import alerts

    engine = make_engine(args.db, args.data_key)
    stop = threading.Event()
    if args.every:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    try:
        while True:
            with engine.begin() as conn:
                ev = alerts.evaluate(conn, min_interval=timedelta(
                    seconds=min(args.every, 5) if args.every else 0))
            for a in ev.raised:
                print(f"raised: {a['kind']} {a['subject']}: {a['detail']}", flush=True)
            for a in ev.cleared:
                print(f"cleared: {a['kind']} {a['subject']}", flush=True)
            if not args.every or stop.wait(args.every):
                return 0
    finally:
        engine.dispose()


def worker_tasks():
    """What ``wicket-hub worker`` does: each area's job handlers and periodic tasks."""
    from cloud.buyers.tasks import register_tasks as buyers_tasks
    from cloud.core import idempotency, rate_limits
    from cloud.core.jobs import Tasks
    from cloud.inventory.sessions import REFUND_CANCELLED_JOB
    from cloud.payments import capturing, refund_approval
    from cloud.payments.settings import make_providers, notify_url, payment_settings
    from cloud.sales.orders import expire_lapsed_orders

    tasks = Tasks()
    tasks.every("tidy_idempotency_keys", 3600, lambda conn, now: idempotency.tidy(conn, now))
    # ended rate-limit windows (their keys are client addresses: not kept past their use)
    tasks.every("tidy_rate_limits", 3600, lambda conn, now: rate_limits.clear(conn, now=now))
    # holds lapse by themselves (every sale reads their deadline); this gives back the rows
    tasks.every("expire_lapsed_orders", 60, lambda conn, now: expire_lapsed_orders(conn, now))
    settings = payment_settings({}, os.environ)
    providers = make_providers(settings)
    public = os.environ.get("WICKET_HUB_PUBLIC_URL")
    online = [name for name in providers if name != "offline"]
    if online and not notify_url(settings, online[0], public):
        raise ValueError("payments: the worker asks providers to notify the hub: set "
                         "WICKET_HUB_PAYMENTS_NOTIFY_URL or WICKET_HUB_PUBLIC_URL")

    def notify(name: str) -> str:
        return notify_url(settings, name, public)

    # the provider is asked with no transaction open (apart): its answer is applied after
    tasks.register(capturing.REFUND_JOB, capturing.refund_handler(providers, notify),
                   apart=True)
    tasks.every("follow_up_payments", 60, capturing.follow_up(providers, notify), apart=True)
    # an approved refund request's money: asked of its provider with no transaction open
    tasks.register(refund_approval.REQUEST_JOB,
                   refund_approval.request_refund_handler(providers, notify), apart=True)
    # a cancelled session's paid orders, in batches of their own transactions
    tasks.register(REFUND_CANCELLED_JOB, refund_approval.refund_cancelled_handler, apart=True)
    buyers_tasks(tasks, os.environ)  # buyers (issue 16): verification, delivery, photos
    from cloud.lottery.refunding import register_tasks as lottery_tasks
    lottery_tasks(tasks, providers, notify)  # presale lottery (issue 18): losers' refunds
    from cloud.lottery.cancelling import register_tasks as cancelled_presale_tasks
    cancelled_presale_tasks(tasks)  # presales of cancelled sessions: given up and refunded
    from cloud.payments.statement_import import register_tasks as statement_tasks
    statement_tasks(tasks, providers)  # the ledger (issue 19): providers' daily statements
    from cloud.ledger.settlement import daily_settlement
    tasks.every("settle_partners", 3600, daily_settlement, apart=True)  # the ledger's cycle
    # flags (issue 16 §4): expired entry flags' blocks deleted at the venues (an expired flag
    # stops counting on the hub at once; its block lifts at the next run), and live ones'
    # blocks sent to venues made since
    from cloud.sales.flag_blocks import send_entry_blocks
    tasks.every("entry_flag_blocks", 60, lambda conn, now: send_entry_blocks(conn, now))
    # channels (issue 20): partners' webhooks delivered, their tickets' admissions told
    from cloud.channels.api_keys import tidy_nonces
    from cloud.channels.webhooks import register_tasks as webhook_tasks
    webhook_tasks(tasks)
    tasks.every("tidy_api_nonces", 3600, tidy_nonces)  # keys no longer used leave theirs
    return tasks


def cmd_worker(args) -> int:
    import signal

    from cloud.core.db import current_revision, make_engine
    from cloud.core.worker import Worker

    if args.poll <= 0:
        print("wicket-hub: --poll must be positive", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = make_engine(args.db, args.data_key)
    try:
        if current_revision(engine) is None:
            print(f"wicket-hub: {_safe(args.db)} has no hub schema: run `wicket-hub init` "
                  "first", file=sys.stderr)
            return 2
        try:
            tasks = worker_tasks()
        except ValueError as e:  # a setting missing: said at start, not at the first job
            print(f"wicket-hub: {e}", file=sys.stderr)
            return 2
        worker = Worker(engine, tasks, poll_s=args.poll)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: worker.stop())
        worker.run()
    finally:
        engine.dispose()
    return 0


def cmd_refund_session(args) -> int:
    from cloud.payments.refund_command import run

    return run(args.db, args.data_key, args.session, args.batch)


def cmd_export_allowlist(args) -> int:
    from cloud.core.db import make_engine
    from cloud.fleet.allowlist_export import ExportError, export_allowlist

    engine = make_engine(args.db, args.data_key)
    try:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"wicket-hub: {args.out}: already exists; not overwriting it", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"wicket-hub: {args.out}: {e.strerror}", file=sys.stderr)
        return 2
    try:
        with os.fdopen(fd, "wb") as f, engine.begin() as conn:
            # written inside the transaction: a file that cannot be written is not audited
            export = export_allowlist(conn, args.venue, f"cli:{getpass.getuser()}")
            f.write(export.data)
            f.flush()
            os.fsync(f.fileno())
    except ExportError as e:
        os.unlink(args.out)
        print(f"wicket-hub: {e}", file=sys.stderr)
        return 2
    except BaseException:
        os.unlink(args.out)
        raise
    finally:
        engine.dispose()
    print(f"{args.out}: the allowlist of venue {export.venue_code}, {export.changes} changes, "
          f"signed with key {export.key_id} (owner-only: it holds holder data)")
    return 0


# Test hook: SIGKILL the rotation after this many batches, as a power cut would stop it.
KILL_AFTER_BATCHES = "WICKET_HUB_TEST_KILL_ROTATION_AFTER"
MAX_PASSES = 5


class _Progress:
    """A progress bar on standard error, redrawn after each batch."""

    def __init__(self, total: int, what: str):
        self.total, self.done, self.what = max(total, 1), 0, what

    def add(self, n: int) -> None:
        self.done = min(self.done + n, self.total)
        filled = 30 * self.done // self.total
        sys.stderr.write(f"\r{self.what} [{'#' * filled}{'.' * (30 - filled)}] "
                         f"{100 * self.done // self.total:3d}% {self.done}/{self.total}")
        sys.stderr.flush()


def _reseal_pass(engine: sa.Engine, batch: int, bar: _Progress, batches: list[int]) -> int:
    """One pass over holders and change log records, each batch its own short transaction
    (the hub keeps serving meanwhile); how many values were sealed again."""
    from cloud.buyers.identity_reseal import reseal_identities  # identity (issue 16 §2)
    from cloud.buyers.reseal import reseal_buyers, reseal_companions  # buyers (accounts)
    from cloud.channels.reseal import reseal_channels  # channels (issue 20)
    from cloud.core.changes import reseal_changes
    from cloud.sales.flags import reseal_flags  # flags (issue 16 §4)
    from cloud.sales.holders import reseal_holders
    from cloud.staff.totp import reseal_secrets

    kill_after = int(os.environ.get(KILL_AFTER_BATCHES) or 0)
    changed = 0
    for step in (reseal_holders, reseal_changes, reseal_secrets, reseal_identities,
                 reseal_flags,
                 reseal_buyers, reseal_companions,  # buyers (accounts)
                 reseal_channels):  # channels (issue 20)
        after: int | None = 0
        while after is not None:
            with engine.begin() as conn:
                after, looked, n = step(conn, after, batch)
            changed += n
            bar.add(looked)
            batches[0] += 1
            if kill_after and batches[0] >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
    return changed


def cmd_rotate_data_key(args) -> int:
    from cloud.core.changes import count_personal_changes
    from cloud.core.db import make_engine
    from cloud.core.seal import SealError, add_key, drop_old_keys, load_keyring

    if args.batch < 1:
        print("wicket-hub: --batch must be at least 1", file=sys.stderr)
        return 2
    try:
        ring = load_keyring(args.data_key)
        if len(ring.ids) == 1:
            print(f"{args.data_key}: new data key {add_key(args.data_key)}", file=sys.stderr)
        else:
            print(f"{args.data_key}: resuming the rotation to key {ring.current_id}",
                  file=sys.stderr)
    except SealError as e:
        print(f"wicket-hub: {e}", file=sys.stderr)
        return 2
    from cloud.buyers.identity_reseal import count_identities
    from cloud.buyers.reseal import count_sealed  # buyers (accounts)
    from cloud.channels.reseal import count_sealed as count_channels  # channels (issue 20)
    from cloud.sales.flags import count_flags  # flags (issue 16 §4)
    from cloud.sales.holders import count_holders
    from cloud.staff.totp import count_secrets

    engine = make_engine(args.db, args.data_key)
    batches = [0]
    try:
        for n in range(1, MAX_PASSES + 1):
            with engine.connect() as conn:
                total = (count_holders(conn) + count_personal_changes(conn)
                         + count_secrets(conn) + count_identities(conn) + count_flags(conn)
                         + count_sealed(conn)  # buyers (accounts)
                         + count_channels(conn))  # channels (issue 20)
            # a pass that changes nothing proves no value under an old key is left
            # (a sale that read the key file before the rotation began is caught here)
            if not _reseal_pass(engine, args.batch, _Progress(total, f"pass {n}"), batches):
                break
            print(file=sys.stderr)
        else:
            print("\nwicket-hub: values keep appearing under an old key; run again",
                  file=sys.stderr)
            return 2
    finally:
        engine.dispose()
    dropped = drop_old_keys(args.data_key)
    print(f"\n{args.data_key}: every value sealed with key {load_keyring(args.data_key).current_id}; "
          f"old keys {', '.join(dropped) or 'none'} dropped", file=sys.stderr)
    return 0


def _area_parsers(sub) -> None:
    """The commands each area keeps in its own commands module."""
    # payments-keys, payments-sandbox, reconcile (the ledger, issue 19)
    from cloud.payments.commands import add_parsers as payments_parsers

    payments_parsers(sub)
    from cloud.ledger.commands import add_parsers as ledger_parsers

    ledger_parsers(sub)  # the ledger (issue 19): wicket-hub settle
    # identity (issue 16 §2): wicket-hub idcheck-sandbox
    from cloud.buyers.commands import add_parsers as identity_parsers

    identity_parsers(sub)
    # messaging (issue 16): wicket-hub messenger, wicket-hub sms-sandbox
    from cloud.messaging.commands import add_parsers as messaging_parsers

    messaging_parsers(sub)
    # waiting room (issue 17 §2): wicket-hub waiting-room
    from cloud.storefront.commands import add_parsers as waiting_room_parsers

    waiting_room_parsers(sub)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wicket-hub", description="Wicket hub tools.")
    p.add_argument("--db", default=os.environ.get("WICKET_HUB_DB", DEFAULT_URL),
                   help="database URL (default: $WICKET_HUB_DB or sqlite:///wicket-hub.db)")
    p.add_argument("--data-key", default=data_key_path(),
                   help="the owner-only file holding the key that seals holders' personal "
                   f"data (default: ${ENV} or {DEFAULT_PATH}; `init` makes it)")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("init", help="create or upgrade the hub database")
    s.set_defaults(func=cmd_init)
    s = sub.add_parser("serve", help="serve the hub (gunicorn)")
    s.add_argument("--bind", default="127.0.0.1:8080", help="address:port (default %(default)s)")
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--threads", type=int, default=1,
                   help="requests each worker serves at once (default %(default)s); more than "
                   "one lets a worker answer others while one waits for the database")
    s.add_argument("--public-url", help="the hub's address as appliances reach it, put in "
                   "enrollment QR codes (default: $WICKET_HUB_PUBLIC_URL, else the address "
                   "the page was asked for)")
    s.add_argument("--secure-cookies", choices=("auto", "on", "off"), default="auto",
                   help="mark the page cookies Secure (default auto: "
                   "$WICKET_HUB_SECURE_COOKIES=1/0, else on unless --bind is a loopback "
                   "address; a page that came over TLS sets a Secure cookie anyway)")
    s.add_argument("--trusted-proxies", type=int,
                   default=int(os.environ.get("WICKET_HUB_TRUSTED_PROXIES") or 0),
                   help="how many reverse proxies in front of the hub to believe about "
                   "X-Forwarded-Proto/-Host/-Port/-For (default $WICKET_HUB_TRUSTED_PROXIES "
                   "or 0: the headers are ignored)")
    s.set_defaults(func=cmd_serve)
    s = sub.add_parser("load-demo", help="load a demo venue, event and tickets")
    s.add_argument("--tickets", type=int, default=5000)
    s.set_defaults(func=cmd_load_demo)
    s = sub.add_parser("compact", help="drop superseded changes and old tombstones from the "
                       "change log")
    s.add_argument("--keep-days", type=float, default=30.0,
                   help="keep every change younger than this (default %(default)s days)")
    s.set_defaults(func=cmd_compact)
    s = sub.add_parser("alerts", help="evaluate the ops alert rules (once, or --every N s)")
    s.add_argument("--every", type=float, default=0.0,
                   help="keep evaluating every this many seconds until stopped")
    s.set_defaults(func=cmd_alerts)
    s = sub.add_parser("worker", help="do the hub's background work (jobs and periodic "
                       "tasks) until stopped")
    s.add_argument("--poll", type=float, default=1.0,
                   help="seconds to wait when there is no job (default %(default)s)")
    s.set_defaults(func=cmd_worker)
    s = sub.add_parser("export-allowlist", help="write a venue's allowlist as a signed file "
                       "for an appliance without the network")
    s.add_argument("--venue", required=True, help="the venue's code or id")
    s.add_argument("--out", required=True, help="the file to write (not overwritten)")
    s.set_defaults(func=cmd_export_allowlist)
    s = sub.add_parser("rotate-data-key", help="seal every holder again under a new data key, "
                       "in batches, while the hub serves (run again to resume)")
    s.add_argument("--batch", type=int, default=500, help="rows per transaction "
                   "(default %(default)s)")
    s.set_defaults(func=cmd_rotate_data_key)
    s = sub.add_parser("refund-session", help="refund every paid order of a cancelled "
                       "session, in batches (run again to resume); prints a JSON report")
    s.add_argument("session", type=int, help="the cancelled session's id")
    s.add_argument("--batch", type=int, default=50, help="orders per transaction "
                   "(default %(default)s)")
    s.set_defaults(func=cmd_refund_session)
    s = sub.add_parser("create-admin", help="create an admin staff account")
    s.add_argument("--username", required=True)
    s.set_defaults(func=cmd_create_admin)
    _area_parsers(sub)
    return p


def _disk_paths(args) -> list[str]:
    """What the hub writes on this machine: a SQLite database, the instance folder."""
    from cloud.app import instance_path

    url = sa.engine.make_url(args.db)
    database = [url.database] if url.get_backend_name() == "sqlite" and url.database else []
    return [*database, instance_path()]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return guard("wicket-hub", lambda: args.func(args), lambda: _disk_paths(args))
    except sa.exc.ArgumentError as e:
        print(f"wicket-hub: bad database URL: {e}", file=sys.stderr)
        return 2
    except sa.exc.OperationalError as e:
        print(f"wicket-hub: cannot reach the database {_safe(args.db)}: {e.orig}",
              file=sys.stderr)
        return 2
    except sa.exc.DBAPIError as e:
        print(f"wicket-hub: the database {_safe(args.db)} refused: {e.orig}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
