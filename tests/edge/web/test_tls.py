"""HTTPS on the venue network: `wicket-edge init` makes the certificate, `wicket-edge web`
serves it (real gunicorn process, the certificate pinned by the client), cookies are Secure
over TLS, handhelds pair over HTTPS; a venue's own certificate is used as given."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from edge import config as config_mod
from edge import handhelds, tls
from edge.allowlist import apply_changes
from edge.db import connect
from edge.holders import HolderVault, generate_holder_key
from sync import sample
from sync.changes import parse_change
from sync.timeutil import utcnow

ROOT = Path(__file__).resolve().parents[3]


def edge(config: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(config), *argv],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_init_makes_a_self_signed_certificate_for_the_box_and_tls_shows_its_fingerprint(
        tmp_path):
    config = tmp_path / "edge.toml"
    config_mod.write_new(config, {"holder_key": generate_holder_key(), "database": "edge.db",
                                  "web_bind": "0.0.0.0:8443",
                                  "web_tls_names": "gate-box.venue.lan, 10.20.0.5"})
    init = edge(config, "init")
    assert init.returncode == 0, init.stderr
    cert_path, key_path = tmp_path / "web-cert.pem", tmp_path / "web-key.pem"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(san.get_values_for_type(x509.DNSName))
    ips = {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    assert {socket.gethostname(), "localhost", "gate-box.venue.lan"} <= dns
    assert {"127.0.0.1", "::1", "10.20.0.5", *tls.local_addresses()} <= ips
    assert cert.not_valid_after_utc - utcnow() > timedelta(days=800)
    fingerprint = cert.fingerprint(hashes.SHA256()).hex().upper()
    shown = edge(config, "tls")
    assert shown.returncode == 0, shown.stderr
    assert ":".join(fingerprint[i:i + 2] for i in range(0, 64, 2)) in shown.stdout
    assert "https://0.0.0.0:8443/" in shown.stdout  # auto: HTTPS off the loopback
    assert "SHA-256 fingerprint" in init.stdout
    # init again keeps it; a half-present pair is refused
    before = cert_path.read_bytes()
    assert edge(config, "init").returncode == 0 and cert_path.read_bytes() == before
    key_path.unlink()
    half = edge(config, "init")
    assert half.returncode == 2 and "web-key.pem: missing" in half.stderr


def test_https_served_with_the_venues_certificate_secure_cookies_and_handheld_pairing(
        tmp_path, hub_key):
    own = tmp_path / "venue-pki"
    info = tls.make_self_signed(own / "cert.pem", own / "key.pem", ["localhost", "127.0.0.1"])
    config = tmp_path / "edge.toml"
    port = free_port()
    config_mod.write_new(config, {
        "holder_key": generate_holder_key(), "database": "edge.db", "web_tls": "on",
        "web_bind": f"127.0.0.1:{port}", "web_cert": str(own / "cert.pem"),
        "web_key": str(own / "key.pem")})
    assert edge(config, "init").returncode == 0
    assert not (tmp_path / "web-cert.pem").exists()  # the venue's own certificate is kept
    cfg = config_mod.load(config)
    conn = connect(cfg.database)
    venue = sample.build(hub_key, utcnow(), tickets=5)
    apply_changes(conn, HolderVault(cfg.holder_key), [parse_change(c) for c in venue.changes])
    code = handhelds.create_pairing(conn, "PDA 1", [], "test").code
    log = tmp_path / "web.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "--config", str(config), "web", "--workers", "1"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=out,
            stderr=subprocess.STDOUT)
    try:
        url = f"https://127.0.0.1:{port}"
        pinned = str(own / "cert.pem")
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                login = requests.get(f"{url}/login", verify=pinned, timeout=10)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert login.status_code == 200
        cookie = login.headers["Set-Cookie"]
        assert cookie.startswith("wicket_edge=") and "Secure" in cookie and "HttpOnly" in cookie
        served = ssl.get_server_certificate(("127.0.0.1", port))
        assert tls.describe_pem(served.encode()).fingerprint == info.fingerprint
        paired = requests.post(f"{url}/api/v1/pair", json={"code": code}, verify=pinned,
                               timeout=10)
        assert paired.status_code == 201 and paired.json()["token"]
        with pytest.raises(requests.ConnectionError):  # no plain HTTP on the TLS port
            requests.get(f"http://127.0.0.1:{port}/login", timeout=10)
        assert f"serving the appliance pages on https://127.0.0.1:{port}" in log.read_text()
        assert info.fingerprint in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        conn.close()


@pytest.mark.parametrize("mode, bind, expected", [
    ("auto", "127.0.0.1:8000", False), ("auto", "[::1]:8000", False),
    ("auto", "localhost:8000", False), ("auto", "0.0.0.0:8000", True),
    ("auto", "10.20.0.5:8000", True), ("on", "127.0.0.1:8000", True),
    ("off", "0.0.0.0:8000", False)])
def test_https_unless_the_pages_answer_only_on_the_box(mode, bind, expected):
    assert tls.serves_tls(mode, bind) is expected


def test_web_tls_takes_only_its_three_values(tmp_path):
    config = tmp_path / "edge.toml"
    config_mod.write_new(config, {"holder_key": generate_holder_key(), "web_tls": "maybe"})
    with pytest.raises(config_mod.ConfigError, match="web_tls must be auto, on or off"):
        config_mod.load(config)


def test_the_dashboard_shows_the_certificates_fingerprint(appliance, as_role):
    info = tls.make_self_signed(appliance["config"].parent / "web-cert.pem",
                                appliance["config"].parent / "web-key.pem", ["localhost"])
    page = as_role("supervisor").get("/dashboard").get_data(as_text=True)
    assert f'<code id="cert-fingerprint">{info.fingerprint}</code>' in page
