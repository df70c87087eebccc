"""Messaging fixtures: the sandbox SMS gateway as a real process, a local SMTP server
(aiosmtpd) that keeps what it received, and the hub served in a thread for receipts."""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
import requests
from aiosmtpd.controller import Controller
from werkzeug.serving import make_server

from cloud.app import create_app
from cloud.core.db import init_db
from tests.cloud.payments.conftest import free_port, start_on_free_port, stop

ROOT = Path(__file__).resolve().parents[3]
API_KEY = "sandbox-api-key-0123456789"
RECEIPT_KEY = "sandbox-receipt-key-0123456789"
KEYS = {"WICKET_HUB_SMS_API_KEY": API_KEY, "WICKET_HUB_SMS_RECEIPT_KEY": RECEIPT_KEY}


@dataclass
class Gateway:
    url: str
    process: subprocess.Popen

    def control(self, method: str, path: str, **kw):
        r = requests.request(method, self.url + path, timeout=120, **kw)
        r.raise_for_status()
        return r.json()

    def wait(self, count: int = 0, receipts: int = 0) -> dict:
        found = self.control("GET", "/_sandbox/wait", params={
            "count": count, "receipts": receipts, "timeout": 60})
        assert found["ok"], found
        return found


def start_gateway(folder: Path, receipts_url: str = "", refuse: str = "",
                  undeliverable: str = "", attempts: int = 3) -> Gateway:
    """``wicket-hub sms-sandbox`` on a free port, once it answers."""
    process, port = start_on_free_port(folder, "sms-sandbox", [
        "sms-sandbox", "--receipts-url", receipts_url, "--refuse", refuse,
        "--undeliverable", undeliverable], env=KEYS, attempts=attempts)
    return Gateway(f"http://127.0.0.1:{port}", process)


@pytest.fixture
def gateway(tmp_path):
    gw = start_gateway(tmp_path, refuse="13000000000")
    yield gw
    stop(gw.process)


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        with self.arrived:
            self.messages.append(message_from_bytes(envelope.content))
            self.arrived.notify_all()
        return "250 Message accepted for delivery"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("nobody@"):
            return "550 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def smtp_server():
    """A real SMTP server on a free local port, keeping every message it received."""
    box = Mailbox("127.0.0.1", 0)
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture
def served_hub(hub_url):
    """The hub app served in a thread on a port of its own, with the receipt key."""
    init_db(hub_url)
    served: dict = {}
    server = make_server("127.0.0.1", 0, lambda environ, start: served["app"](environ, start),
                         threaded=True)
    app = served["app"] = create_app({
        "DATABASE_URL": hub_url, "TESTING": True, "SECRET_KEY": "test" * 10,
        "SMS_RECEIPT_KEY": RECEIPT_KEY})
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        app.extensions["db"].dispose()
