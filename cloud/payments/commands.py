"""The payments area's commands: ``wicket-hub payments-keys`` (merchant keys for a sandbox),
``wicket-hub payments-sandbox`` (the sandbox that plays WeChat Pay and Alipay) and
``wicket-hub reconcile`` (a provider's daily statement against the ledger, its differences
queued as exceptions for finance); ``cloud/cli.py`` parses their arguments."""

from __future__ import annotations

import logging
import os
import sys
from datetime import date, datetime, timedelta

from cloud.core.db import current_revision, make_engine
from sync.timeutil import CHINA, utcnow

ACTOR = "wicket-hub"


def _say(text: str) -> None:
    sys.stderr.write(f"wicket-hub: {text}\n")


def cmd_payments_keys(args) -> int:
    from cloud.payments.keys import make_merchant_keys

    settings = make_merchant_keys(args.dir)
    for name, value in settings.items():
        sys.stdout.write(f"WICKET_HUB_{name}={value}\n")
    return 0


def cmd_payments_sandbox(args) -> int:
    from cloud.payments.sandbox_pages import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    serve(args.hub_keys, args.publish, args.port, args.host, args.time_scale, args.public_url)
    return 0


def cmd_reconcile(args) -> int:
    from cloud.payments.settings import make_providers, payment_settings
    from cloud.payments.statement_import import import_statement

    try:
        day = date.fromisoformat(args.day) if args.day else (
            datetime.now(CHINA).date() - timedelta(days=1))
    except ValueError:
        _say(f"--day: {args.day!r} is not a date (YYYY-MM-DD)")
        return 2
    try:
        providers = make_providers(payment_settings({}, os.environ))
    except ValueError as e:
        _say(f"payments: {e}")
        return 2
    adapter = providers.get(args.provider)
    if adapter is None or args.provider == "offline":
        _say(f"--provider: {args.provider!r} is not a configured online provider "
             f"({', '.join(n for n in providers if n != 'offline') or 'none'})")
        return 2
    engine = make_engine(args.db, args.data_key)
    try:
        if current_revision(engine) is None:
            _say("the database has no hub schema: run `wicket-hub init` first")
            return 2
        _say(f"asking {args.provider} for its statement of {day} …")
        imported = import_statement(engine, adapter, day, ACTOR, utcnow())
    finally:
        engine.dispose()
    sys.stdout.write(f"{args.provider} {day}: {imported.rows} statement lines, "
                     f"{len(imported.exceptions)} new exceptions\n")
    for e in imported.exceptions:
        sys.stdout.write(f"  {e.kind} {e.entry} {e.out_trade_no} {e.out_refund_no or ''} "
                         f"hub={e.hub_amount} statement={e.statement_amount}\n")
    return 0


def add_parsers(sub) -> None:
    s = sub.add_parser("payments-keys", help="make merchant keys for the online payment "
                       "providers (for a sandbox; production uses the providers' own)")
    s.add_argument("--dir", required=True, help="folder for the keys; its public/ subfolder "
                   "is what a provider (or the sandbox) may see")
    s.set_defaults(func=cmd_payments_keys)
    s = sub.add_parser("payments-sandbox", help="run the payment sandbox that plays WeChat Pay "
                       "and Alipay (docs/payments.md)")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--hub-keys", required=True, help="the merchant's public/ key folder "
                   "(wicket-hub payments-keys)")
    s.add_argument("--publish", required=True, help="folder the sandbox writes its public "
                   "keys, ids and address to (the hub's settings point at it)")
    s.add_argument("--time-scale", type=float, default=0.001, help="how much faster than the "
                   "providers' the retry schedule runs (default %(default)s: 15 s take 15 ms)")
    s.add_argument("--public-url", help="the sandbox's address as the hub and buyers reach it "
                   "(default http://HOST:PORT)")
    s.set_defaults(func=cmd_payments_sandbox)
    s = sub.add_parser("reconcile", help="match a provider's daily statement against the "
                                         "ledger; differences become exceptions "
                                         "(docs/ledger.md)")
    s.add_argument("--provider", required=True, help="wechat or alipay")
    s.add_argument("--day", help="the statement's day, YYYY-MM-DD in China time "
                                 "(default: yesterday)")
    s.set_defaults(func=cmd_reconcile)
