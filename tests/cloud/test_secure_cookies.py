"""The hub's page cookies are Secure behind TLS: by a setting that `wicket-hub serve` turns on
unless it binds a loopback address, and whenever a trusted proxy says the page came over TLS
(X-Forwarded-Proto is believed only with TRUSTED_PROXIES)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from cloud.app import create_app
from cloud.cli import secure_cookies
from cloud.core.db import init_db
from tests.cloud.pagekit import SECRET

ROOT = Path(__file__).resolve().parents[2]


def login_cookie(app, headers=None) -> str:
    r = app.test_client().get("/login", headers=headers or {})
    assert r.status_code == 200
    return r.headers["Set-Cookie"]


def test_a_trusted_proxy_saying_https_makes_the_cookie_secure_and_nobody_else_can(tmp_path):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    init_db(url)
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    behind = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET, "TRUSTED_PROXIES": 1})
    assert "Secure" in login_cookie(behind, https)
    assert "Secure" not in login_cookie(behind)
    direct = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET})
    assert "Secure" not in login_cookie(direct, https)  # the header alone is not believed
    assert "Secure" in login_cookie(create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET,
                                                "SESSION_COOKIE_SECURE": True}))
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET, "TRUSTED_PROXIES": "many"})


@pytest.mark.parametrize("mode, bind, env, expected", [
    ("auto", "0.0.0.0:8080", None, True), ("auto", "10.0.0.2:8080", None, True),
    ("auto", "127.0.0.1:8080", None, False), ("auto", "[::1]:8080", None, False),
    ("auto", "localhost:8080", None, False), ("auto", "127.0.0.1:8080", "1", True),
    ("auto", "0.0.0.0:8080", "0", False), ("on", "127.0.0.1:8080", None, True),
    ("off", "0.0.0.0:8080", "1", False)])
def test_serve_marks_cookies_secure_unless_bound_to_loopback(monkeypatch, mode, bind, env,
                                                              expected):
    if env is None:
        monkeypatch.delenv("WICKET_HUB_SECURE_COOKIES", raising=False)
    else:
        monkeypatch.setenv("WICKET_HUB_SECURE_COOKIES", env)
    assert secure_cookies(mode, bind) is expected


def test_the_served_hub_on_a_network_address_sets_secure_cookies(tmp_path):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    init_db(url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "WICKET_HUB_SECURE_COOKIES"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloud.cli", "--db", url, "serve", "--bind", f"0.0.0.0:{port}",
         "--workers", "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**env, "PYTHONPATH": str(ROOT), "WICKET_HUB_INSTANCE": str(tmp_path)}, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/login", timeout=10)
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert r.status_code == 200 and "Secure" in r.headers["Set-Cookie"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stdout.close()
