"""The fault proxy against a small real upstream on loopback: each fault, what the client sees
and how many times the upstream was reached."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.faults.proxy import FAULT_KINDS, FORWARDED, FaultProxy

BIG = {"changes": [{"seq": i, "text": "x" * 40} for i in range(200)], "cursor": 200}


class Upstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.hits: list[tuple[str, str, bytes]] = []
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep the test output quiet
        return

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.hits.append((self.command, self.path, body))
        if self.path.startswith("/big"):
            out = json.dumps(BIG).encode()
        else:
            out = json.dumps({"path": self.path, "echo": body.decode()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = _answer


@pytest.fixture
def upstream():
    server = Upstream()
    t = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream):
    p = FaultProxy(upstream.server_address[:2], seed=1, delay=(0.2, 0.2)).start()
    yield p
    p.close()


def _get(proxy, path="/big", **kw):
    return requests.get(proxy.url + path, timeout=10, **kw)


def _post(proxy, path="/api/entries", body=None):
    return requests.post(proxy.url + path, json=body or {"entries": [1, 2]}, timeout=10)


def _hits(upstream, n, deadline=10.0):
    """Wait until the upstream has seen at least n requests; returns how many it saw."""
    end = time.monotonic() + deadline
    while time.monotonic() < end and len(upstream.hits) < n:
        time.sleep(0.01)
    return len(upstream.hits)


def test_without_faults_the_answer_is_the_upstreams(proxy, upstream):
    r = _post(proxy, "/api/entries?x=1", {"entries": ["a"]})
    assert r.status_code == 200
    assert r.json() == {"path": "/api/entries?x=1", "echo": '{"entries": ["a"]}'}
    assert _get(proxy).json() == BIG
    assert len(upstream.hits) == 2
    assert proxy.counts() == {}
    assert [r.fault for r in proxy.records] == [None, None]


def test_a_chunked_request_body_is_forwarded_whole(proxy, upstream):
    r = requests.post(proxy.url + "/chunked", data=iter([b"abc", b"defg", b"h"]), timeout=10)
    assert r.status_code == 200 and r.json()["echo"] == "abcdefgh"


# kind -> (what the client sees, upstream hits)
TABLE = {
    "delay": ("ok", 1),
    "drop_request": (requests.ConnectionError, 0),
    "drop_response": (requests.ConnectionError, 1),
    "cut_body": (requests.exceptions.ChunkedEncodingError, 1),
    "duplicate": ("ok", 2),
    "status_500": (500, 1),
    "status_503": (503, 0),
    "status_429": (429, 0),
    "garbage": ("not json", 1),
    "truncated_json": ("not json", 1),
    "wrong_type": ("html", 1),
}


def test_the_table_covers_every_kind():
    assert set(TABLE) == set(FAULT_KINDS)
    assert {k for k, (_, hits) in TABLE.items() if hits} == FORWARDED


@pytest.mark.parametrize("kind", FAULT_KINDS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_each_fault_does_what_it_says(proxy, upstream, kind, method):
    seen, hits = TABLE[kind]
    proxy.force(kind, "/big")
    started = time.monotonic()
    send = (lambda: _get(proxy)) if method == "GET" else (lambda: _post(proxy, "/big"))
    if isinstance(seen, type):
        with pytest.raises(seen):
            send()
    else:
        r = send()
        if seen == "ok":
            assert r.status_code == 200 and r.json() == BIG
        elif seen == "not json":
            assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
            with pytest.raises(requests.JSONDecodeError):
                r.json()
        elif seen == "html":
            assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
            assert b"<html>" in r.content
        else:
            assert r.status_code == seen
            if seen == 429:
                assert r.headers["Retry-After"] == "1"
    if kind == "delay":
        assert time.monotonic() - started >= 0.2
    # the upstream sees what it sees even when the client has given up on the answer
    assert _hits(upstream, hits, deadline=10.0 if hits else 0.3) == hits
    assert all(h[0] == method for h in upstream.hits)
    assert proxy.counts() == {kind: 1}
    rec = proxy.records[-1]
    assert rec.fault == kind and rec.path == "/big" and rec.method == method
    # the next request is clean again: a forced fault is used once
    assert _get(proxy).json() == BIG


def test_a_cut_body_is_a_strict_prefix_of_the_real_answer(proxy):
    for _ in range(5):
        proxy.force("cut_body", "/big")
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            _get(proxy)
    cuts = [int(r.detail.split()[2]) for r in proxy.records if r.fault == "cut_body"]
    total = int(proxy.records[0].detail.split()[4])
    assert all(0 < c < total for c in cuts) and len(set(cuts)) > 1


def test_rules_pick_faults_by_path_and_the_seed_decides_which(upstream):
    def run(seed):
        with FaultProxy(upstream.server_address[:2], seed=seed) as p:
            p.set_faults({"/api/entries": {"status_503": 0.5}}, default={"status_429": 0.2})
            for i in range(40):
                requests.post(p.url + "/api/entries", json={"i": i}, timeout=10)
                requests.get(p.url + "/api/other", timeout=10)
            return [(r.path, r.fault) for r in p.records]

    first, again, other = run(7), run(7), run(8)
    assert first == again and first != other
    entries = [f for path, f in first if path == "/api/entries"]
    others = [f for path, f in first if path == "/api/other"]
    assert set(entries) == {None, "status_503"} and set(others) == {None, "status_429"}
    assert 8 <= entries.count("status_503") <= 32 and 1 <= others.count("status_429") <= 16


def test_the_longest_matching_prefix_wins_and_off_switches_everything_off(proxy, upstream):
    proxy.set_faults({"/api": {"status_503": 1.0}, "/api/ok": {}})
    assert _get(proxy, "/api/x").status_code == 503
    assert _get(proxy, "/api/ok/1").status_code == 200
    proxy.force("status_429", "/")
    proxy.off()
    assert _get(proxy, "/api/x").status_code == 200
    assert proxy.counts() == {"status_503": 1}


def test_bad_rules_are_refused(proxy):
    with pytest.raises(ValueError, match="unknown fault kind"):
        proxy.set_faults(default={"explode": 0.1})
    with pytest.raises(ValueError, match="add up"):
        proxy.set_faults(default={"delay": 0.7, "garbage": 0.6})
    with pytest.raises(ValueError):
        proxy.force("explode")


def test_hooks_see_each_phase_and_answered_comes_after_the_upstream_acted(proxy, upstream):
    seen = []

    def hook(event):
        seen.append((event.request.n, event.phase, event.fault, event.upstream_status,
                     len(upstream.hits)))

    proxy.add_hook(hook)
    proxy.force("drop_response", "/big")
    with pytest.raises(requests.ConnectionError):
        _get(proxy)
    _get(proxy, "/x")
    end = time.monotonic() + 10  # the "sent" hooks run after the client has its answer
    while len(seen) < 6 and time.monotonic() < end:
        time.sleep(0.01)
    proxy.remove_hook(hook)
    _get(proxy, "/y")
    # the client may send its next request before the first one's "sent" hook has run, and
    # by then the upstream may have had that request too
    first, second = ([s[1:] for s in seen if s[0] == n] for n in (1, 2))
    assert first[:2] == [("received", "drop_response", None, 0),
                         ("answered", "drop_response", 200, 1)]
    assert first[2][:3] == ("sent", "drop_response", 200) and first[2][3] in (1, 2)
    assert second == [("received", None, None, 1), ("answered", None, 200, 2),
                      ("sent", None, 200, 2)]
    assert len(seen) == 6


def test_an_unreachable_upstream_is_a_502(upstream):
    with FaultProxy(("127.0.0.1", 1)) as p:
        r = requests.get(p.url + "/x", timeout=10)
    assert r.status_code == 502


def test_garbage_from_the_client_is_logged_not_fatal(proxy):
    import socket

    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(b"NONSENSE\r\n\r\n")
        assert s.recv(100) == b""
    assert _get(proxy).json() == BIG


def test_a_duplicated_request_shows_both_upstream_answers_to_hooks(proxy, upstream):
    bodies = []
    proxy.add_hook(lambda e: bodies.append(e.upstream_bodies) if e.phase == "answered" else None)
    proxy.force("duplicate", "/api/entries")
    r = _post(proxy, "/api/entries", {"entries": ["z"]})
    assert r.status_code == 200
    (pair,) = bodies
    assert len(pair) == 2 and all(b'"echo": "{\\"entries\\": [\\"z\\"]}"' in b for b in pair)
    assert [h[2] for h in upstream.hits] == [b'{"entries": ["z"]}'] * 2
