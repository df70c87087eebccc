"""Payments fixtures: merchant keys, adapters on locally made provider keys (for the rules,
without a sandbox), and the sandbox as a real process with the hub served beside it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import make_server

from cloud.app import create_app
from cloud.core.db import init_db
from cloud.payments.keys import make_merchant_keys, sandbox_settings
from cloud.payments.settings import make_providers, payment_settings

ROOT = Path(__file__).resolve().parents[3]


def seat_sale(conn, seats: int = 2) -> int:
    """A session on sale in ten days with ``seats`` standard seats (ids from 1) at 380 yuan:
    its id."""
    from datetime import timedelta

    from cloud.catalog.events import add_price_tier, create_event
    from cloud.catalog.venues import add_zone, create_venue
    from cloud.inventory import seats as inventory
    from cloud.inventory.seat_map import import_seats_csv
    from cloud.inventory.sessions import create_session
    from sync.timeutil import utcnow

    start = utcnow() + timedelta(days=10)
    venue = create_venue(conn, "OSC", "Olympic Sports Centre")
    add_zone(conn, venue, "A", "Zone A")
    assert import_seats_csv(conn, venue, "level,zone,row,number,category\n" + "".join(
        f"L1,A,1,{n},std\n" for n in range(1, seats + 1))).ok
    session = create_session(conn, create_event(conn, "GAMES", "The Games"), venue, "Final",
                             start, start + timedelta(hours=3))
    add_price_tier(conn, session, "STD", "Standard", 38000, seat_category="std")
    inventory.confirm_configuration(conn, session)
    inventory.put_on_sale(conn, session)
    return session


@dataclass
class ProviderSide:
    """What a provider holds, made locally: its signing key and the shared APIv3 key."""

    platform: rsa.RSAPrivateKey
    platform_key_id: str
    alipay: rsa.RSAPrivateKey
    apiv3_key: bytes
    settings: dict[str, str]


def _pem(key: rsa.RSAPrivateKey, path: Path) -> str:
    path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(path)


@pytest.fixture(scope="session")
def provider_side(tmp_path_factory) -> ProviderSide:
    folder = tmp_path_factory.mktemp("merchant")
    settings = make_merchant_keys(folder)
    platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    alipay = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings.update({
        "PAYMENT_PROVIDERS": "offline,wechat,alipay", "WECHAT_PAY_APPID": "wx0000000000test",
        "WECHAT_PAY_PLATFORM_KEY": _pem(platform, folder / "platform.pem"),
        "WECHAT_PAY_PLATFORM_KEY_ID": "PUB_KEY_ID_0000TEST",
        "ALIPAY_PUBLIC_KEY": _pem(alipay, folder / "alipay.pem"),
        "ALIPAY_SELLER_ID": "2088000000000001",
        "WECHAT_PAY_ENDPOINT": "http://127.0.0.1:9", "ALIPAY_GATEWAY": "http://127.0.0.1:9"})
    return ProviderSide(platform, "PUB_KEY_ID_0000TEST", alipay,
                        (folder / "wechat_apiv3.key").read_bytes().strip(), settings)


@pytest.fixture
def providers(provider_side):
    return make_providers(payment_settings(provider_side.settings, {}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Exited(RuntimeError):
    """The process ended before it answered (most often: the free port it was given was taken
    by another process before it could bind it)."""


def wait_until_answering(url: str, process: subprocess.Popen, deadline: float = 60.0) -> None:
    """Ask until the server answers (a failed or unanswered connection is retried), or fail."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise Exited(f"the sandbox exited with {process.returncode}")
        try:
            requests.get(url, timeout=2)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {deadline} s")


def stop(process: subprocess.Popen) -> None:
    """End a child: asked first, killed if it does not end within 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_on_free_port(folder: Path, name: str, command: list[str], env: dict | None = None,
                       attempts: int = 3) -> tuple[subprocess.Popen, int]:
    """``wicket-hub <command> --port N`` on a free port, once its ``/_sandbox/health``
    answers; its stderr kept in ``folder``. A port chosen free is bound by the process only
    later, and another process may take it first: a process that exits before answering is
    started again on another port, up to ``attempts`` times."""
    why = []
    for attempt in range(attempts):
        port = free_port()
        log = folder / f"{name}-{attempt}.log"
        with log.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "cloud.cli", *command, "--port", str(port)],
                cwd=ROOT, env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
                stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_until_answering(f"http://127.0.0.1:{port}/_sandbox/health", process)
            return process, port
        except Exited as e:
            why.append(f"port {port}: {e}: {log.read_text(errors='replace')[-2000:]}")
        except BaseException:
            stop(process)
            raise
    raise RuntimeError(f"{name} never answered in {attempts} attempts:\n" + "\n".join(why))


@dataclass
class Running:
    url: str
    settings: dict[str, str]

    def control(self, method: str, path: str, **kw):
        r = requests.request(method, self.url + path, timeout=60, **kw)
        r.raise_for_status()
        return r.json()

    def wait(self, out_trade_no: str, **conditions) -> list[dict]:
        found = self.control("GET", "/_sandbox/wait", params={
            "out_trade_no": out_trade_no, "timeout": 30, **conditions})
        assert found["ok"], found
        return found["deliveries"]


def start_sandbox(folder: Path, attempts: int = 3,
                  time_scale: float = 0.0005) -> tuple[subprocess.Popen, int]:
    """The sandbox process and its port, once it answers; it reads the merchant's public keys
    from ``folder/merchant/public`` and publishes in ``folder/published``."""
    return start_on_free_port(folder, "sandbox", [
        "payments-sandbox", "--hub-keys", str(folder / "merchant" / "public"), "--publish",
        str(folder / "published"), "--time-scale", str(time_scale)], attempts=attempts)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    """``wicket-hub payments-sandbox`` as a real process on a free port."""
    folder = tmp_path_factory.mktemp("sandbox")
    merchant = make_merchant_keys(folder / "merchant")
    process, port = start_sandbox(folder)
    try:
        # the hub's calls wait long enough for a busy machine's sandbox; a test that wants a
        # call to time out makes an adapter of its own with a short timeout
        settings = {**merchant, **sandbox_settings(folder / "published"),
                    "PAYMENT_PROVIDERS": "offline,wechat,alipay", "PAYMENTS_TIMEOUT": "30"}
        assert json.loads((folder / "published" / "sandbox.json").read_text())["url"]
        yield Running(f"http://127.0.0.1:{port}", settings)
    finally:
        stop(process)


@pytest.fixture
def hub_server(hub_url, sandbox):
    """The hub app served in a thread on a port the server binds itself (port 0), configured
    for the sandbox: the app, which must know its own address, is made once the port is."""
    init_db(hub_url)
    served: dict = {}
    server = make_server("127.0.0.1", 0, lambda environ, start: served["app"](environ, start),
                         threaded=True)
    try:
        app = served["app"] = create_app({
            "DATABASE_URL": hub_url, "TESTING": True, "SECRET_KEY": "test",
            "HUB_PUBLIC_URL": f"http://127.0.0.1:{server.server_port}", **sandbox.settings})
    except BaseException:
        server.server_close()
        raise
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield app
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        app.extensions["db"].dispose()
