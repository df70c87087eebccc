"""The hub client's error mapping, against a real HTTP server on loopback that misbehaves in
each of the ways a hub or the network between can."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sync.client import CursorExpired, HubClient, HubUnavailable, Refused, Unauthorized

PAGE = {"changes": [], "cursor": 7, "more": False}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def _send(self, status, body: bytes, headers=(), length=None):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - the stdlib's name
        mode = self.server.mode
        self.server.seen.append(dict(self.headers))
        if mode == "ok":
            self._send(200, json.dumps(PAGE).encode())
        elif mode == "gzip":
            self._send(200, gzip.compress(json.dumps(PAGE).encode()),
                       [("Content-Encoding", "gzip")])
        elif mode in ("500", "503", "429"):
            self._send(int(mode), b'{"error": "busy"}')
        elif mode == "401":
            self._send(401, b'{"error": "unauthorized", "message": "revoked"}')
        elif mode == "410":
            self._send(410, b'{"error": "cursor_expired", "horizon": 42}')
        elif mode == "400":
            self._send(400, b'{"error": "bad_argument", "message": "since"}')
        elif mode == "garbage":
            self._send(200, b"<html>captive portal</html>")
        elif mode == "wrong_shape":
            self._send(200, b'{"changes": []}')
        elif mode == "cut":
            body = json.dumps({**PAGE, "pad": "x" * 5000}).encode()
            self._send(200, body[:100], length=len(body))
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        elif mode == "cut_gzip":
            body = gzip.compress(json.dumps({**PAGE, "pad": "xy" * 5000}).encode())
            self._send(200, body[: len(body) // 2], [("Content-Encoding", "gzip")])
        elif mode == "slow":
            time.sleep(1.5)
            self._send(200, json.dumps(PAGE).encode())


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.mode, srv.seen = "ok", []
    t = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def client(srv, timeout=5.0):
    return HubClient(f"http://127.0.0.1:{srv.server_address[1]}", "secret-credential",
                     timeout=timeout)


def test_a_good_answer_plain_or_gzip_and_the_header(server):
    c = client(server)
    assert c.allowlist(0, 10)["cursor"] == 7
    assert server.seen[-1]["Authorization"] == "Appliance secret-credential"
    server.mode = "gzip"
    assert c.allowlist(0, 10)["cursor"] == 7
    assert c.traffic.requests == 2 and c.traffic.bytes_in > 0


@pytest.mark.parametrize("mode", ["500", "503", "429", "garbage", "wrong_shape", "cut",
                                  "cut_gzip", "slow"])
def test_temporary_failures(server, mode):
    server.mode = mode
    with pytest.raises(HubUnavailable) as e:
        client(server, timeout=0.5).allowlist(0, 10)
    assert "secret-credential" not in str(e.value)


def test_no_hub_at_all_is_temporary():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(HubUnavailable, match="cannot reach the hub") as e:
        HubClient(f"http://127.0.0.1:{port}", "c", timeout=2).heartbeat({}, "now")
    assert e.value.status is None


def test_unauthorized_expired_and_refused_are_told_apart(server):
    server.mode = "401"
    with pytest.raises(Unauthorized):
        client(server).allowlist(5, 10)
    server.mode = "410"
    with pytest.raises(CursorExpired) as e:
        client(server).allowlist(5, 10)
    assert e.value.horizon == 42
    server.mode = "400"
    with pytest.raises(Refused) as r:
        client(server).allowlist(5, 10)
    assert r.value.code == "bad_argument" and r.value.status == 400


def test_no_credential_never_calls_out(server):
    with pytest.raises(Unauthorized, match="enroll"):
        HubClient(f"http://127.0.0.1:{server.server_address[1]}").allowlist(0, 1)
    assert server.seen == []
