"""The messaging area's commands: ``wicket-hub messenger`` (send the outbox) and ``wicket-hub
sms-sandbox`` (the sandbox gateway); ``cloud/cli.py`` parses their arguments."""

from __future__ import annotations

import logging
import os
import signal
import sys
from datetime import timedelta

from cloud.core.db import current_revision, make_engine


def _say(text: str) -> None:
    sys.stderr.write(f"wicket-hub: {text}\n")


def run_messenger(db: str, data_key: str, batch: int, lease_s: float, poll_s: float) -> int:
    """Send until SIGTERM or SIGINT (the batch in hand is sent and recorded first)."""
    from cloud.messaging.channels import make_providers
    from cloud.messaging.sending import Messenger
    from cloud.messaging.settings import messaging_settings

    if batch < 1 or lease_s <= 0 or poll_s <= 0:
        _say("--batch, --lease and --poll must be positive")
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = messaging_settings({}, os.environ)
    settings["PUBLIC_URL"] = settings["PUBLIC_URL"] or os.environ.get(
        "WICKET_HUB_PUBLIC_URL", "")
    engine = make_engine(db, data_key)
    try:
        if current_revision(engine) is None:
            _say("the database has no hub schema: run `wicket-hub init` first")
            return 2
        providers = make_providers(settings)
        if not providers:
            _say("no channel is configured (WICKET_HUB_SMS_GATEWAY_URL, "
                 "WICKET_HUB_SMTP_HOST): nothing to send")
            return 2
        messenger = Messenger(engine, providers, batch=batch, lease=timedelta(seconds=lease_s),
                              poll_s=poll_s, public_url=settings["PUBLIC_URL"])
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: messenger.stop())
        messenger.run()
    finally:
        engine.dispose()
    return 0


def run_sms_sandbox(port: int, host: str, receipts_url: str, refuse: str,
                    undeliverable: str) -> int:
    """The sandbox gateway; its keys come from the environment the hub reads them from
    ($WICKET_HUB_SMS_API_KEY, $WICKET_HUB_SMS_RECEIPT_KEY), never from the command line."""
    from cloud.messaging.sms_sandbox import Gateway
    from cloud.messaging.sms_sandbox_pages import serve

    api_key = os.environ.get("WICKET_HUB_SMS_API_KEY", "")
    receipt_key = os.environ.get("WICKET_HUB_SMS_RECEIPT_KEY", "")
    if not api_key or (receipts_url and not receipt_key):
        _say("set WICKET_HUB_SMS_API_KEY (and WICKET_HUB_SMS_RECEIPT_KEY to send "
             "receipts)")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    def numbers(text: str) -> set[str]:
        return {n.strip() for n in text.split(",") if n.strip()}

    serve(Gateway(api_key, receipt_key, receipts_url, numbers(refuse), numbers(undeliverable)),
          port, host)
    return 0


def add_parsers(sub) -> None:
    s = sub.add_parser("messenger", help="send the outbox's messages until stopped (any "
                       "number may run at once; docs/messaging.md)")
    s.add_argument("--batch", type=int, default=100, help="messages taken at once "
                   "(default %(default)s)")
    s.add_argument("--lease", type=float, default=120.0, help="seconds a taken message is "
                   "this worker's before another may take it (default %(default)s)")
    s.add_argument("--poll", type=float, default=1.0, help="seconds to wait when nothing is "
                   "due (default %(default)s)")
    s.set_defaults(func=lambda a: run_messenger(a.db, a.data_key, a.batch, a.lease, a.poll))
    s = sub.add_parser("sms-sandbox", help="run the sandbox SMS gateway (also WeChat template "
                       "messages); keys from $WICKET_HUB_SMS_API_KEY and "
                       "$WICKET_HUB_SMS_RECEIPT_KEY")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--receipts-url", default="", help="the hub's receipt endpoint "
                   "(…/api/v1/messaging/receipts); unset, no receipts are sent")
    s.add_argument("--refuse", default="", help="numbers refused for good, separated by commas")
    s.add_argument("--undeliverable", default="", help="numbers taken whose receipt says "
                   "failed, separated by commas")
    s.set_defaults(func=lambda a: run_sms_sandbox(a.port, a.host, a.receipts_url, a.refuse,
                                                  a.undeliverable))
