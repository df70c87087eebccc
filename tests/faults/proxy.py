"""A fault-injecting HTTP proxy on loopback, standing between the appliance and the hub.

It forwards each request to one upstream and, per request, may instead do one of the things a
venue's network does to HTTP: wait, drop the connection before the hub sees the request, let
the hub act and then lose the answer, cut the answer halfway through its body, deliver the
request twice, answer 500/503/429 itself, or answer with something that is not the hub's JSON
(random bytes, truncated JSON, a captive-portal page).

Which fault a request gets comes from a seeded RNG and per-path rules (path prefix → fault
kind → probability), switchable while the proxy runs; a test can also force the next fault on
a path. Hooks are called at three moments of every request — ``received`` (read from the
client, not yet forwarded), ``answered`` (the upstream has answered; the client has nothing
yet) and ``sent`` (the client has what it will get) — so a test can kill the client process
at exactly the moment it wants. Everything the proxy did is kept in :attr:`FaultProxy.records`
and logged.

One request per client connection (answers carry ``Connection: close``); HTTP/1.1 with a
``Content-Length`` or chunked body. Stdlib sockets and threads only.
"""

from __future__ import annotations

import http.client
import logging
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

FAULT_KINDS = (
    "delay",           # wait, then forward as usual (the wait falls before or after the hub)
    "drop_request",    # close the connection before forwarding: the hub never sees it
    "drop_response",   # forward, then close without a byte: the hub acted, the client can't know
    "cut_body",        # forward, send the head and part of the body, close
    "duplicate",       # send the request to the hub twice at once; answer with one of the two
    "status_500",      # forward, then answer 500 instead of the hub's answer
    "status_503",      # answer 503 without forwarding (the hub is overloaded or restarting)
    "status_429",      # answer 429 with Retry-After without forwarding
    "garbage",         # forward, then answer 200 with random bytes labelled as JSON
    "truncated_json",  # forward, then answer 200 with the hub's JSON cut short (consistent length)
    "wrong_type",      # forward, then answer 200 with an HTML captive-portal page
)
# kinds whose request reaches the hub: the client may not learn the outcome of what it did
FORWARDED = frozenset(FAULT_KINDS) - {"drop_request", "status_503", "status_429"}
PHASES = ("received", "answered", "sent")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
              "trailer", "upgrade", "content-length", "host"}
MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
PORTAL = (b"<!DOCTYPE html><html><head><title>Venue Wi-Fi</title></head><body>"
          b"<h1>Welcome</h1><p>Please accept the terms to continue.</p></body></html>")


class BadRequest(Exception):
    """The client sent something the proxy cannot parse as an HTTP/1.1 request."""


@dataclass(frozen=True)
class Request:
    n: int
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@dataclass
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def encode(self) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {self.reason}"]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() not in HOP_BY_HOP]
        lines += [f"Content-Length: {len(self.body)}", "Connection: close", "", ""]
        return "\r\n".join(lines).encode("latin-1") + self.body


@dataclass(frozen=True)
class Event:
    """What a hook is told: the request, the fault chosen for it (or None), the phase, and the
    upstream's status once there is one."""

    phase: str
    request: Request
    fault: str | None
    upstream_status: int | None = None
    upstream_bodies: tuple[bytes, ...] = ()  # every answer the upstream gave (two if duplicated)


@dataclass
class Record:
    n: int
    at: float
    method: str
    path: str
    fault: str | None
    upstream_status: int | None = None
    client_status: int | None = None
    detail: str = ""


@dataclass
class _Plan:
    rules: dict[str, dict[str, float]] = field(default_factory=dict)
    default: dict[str, float] = field(default_factory=dict)
    forced: list[tuple[str, str]] = field(default_factory=list)  # (path prefix, kind)


def _check_probabilities(p: dict[str, float]) -> dict[str, float]:
    unknown = set(p) - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kind {sorted(unknown)[0]!r}; known: "
                         f"{', '.join(FAULT_KINDS)}")
    if any(v < 0 for v in p.values()) or sum(p.values()) > 1.0 + 1e-9:
        raise ValueError("fault probabilities must be >= 0 and add up to at most 1")
    return dict(p)


class FaultProxy:
    """``FaultProxy(("127.0.0.1", port), seed)``; ``start()``, then talk to :attr:`url`."""

    def __init__(self, upstream: tuple[str, int], seed: int = 0, *,
                 delay: tuple[float, float] = (0.05, 0.4), retry_after: str = "1",
                 upstream_timeout: float = 30.0):
        self.upstream = upstream
        self.delay = delay
        self.retry_after = retry_after
        self.upstream_timeout = upstream_timeout
        self.records: list[Record] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._plan = _Plan()
        self._hooks: list[Callable[[Event], None]] = []
        self._n = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self.port = 0

    # -- control ---------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        self._sock, self.port = s, s.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy",
                                        daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closing = True
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # not connected: close() below is what ends accept()
            self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def set_faults(self, rules: dict[str, dict[str, float]] | None = None,
                   default: dict[str, float] | None = None) -> None:
        """Per-path rules (the longest matching path prefix wins) and the rule for every other
        path; each maps a fault kind to its probability per request."""
        checked = {prefix: _check_probabilities(p) for prefix, p in (rules or {}).items()}
        with self._lock:
            self._plan.rules = checked
            self._plan.default = _check_probabilities(default or {})

    def force(self, kind: str, path_prefix: str = "/", times: int = 1) -> None:
        """The next ``times`` requests under ``path_prefix`` get ``kind``, whatever the rules."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        with self._lock:
            self._plan.forced += [(path_prefix, kind)] * times

    def off(self) -> None:
        """Forward everything untouched from now on (forced faults included)."""
        with self._lock:
            self._plan = _Plan()

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng.seed(seed)

    def add_hook(self, hook: Callable[[Event], None]) -> None:
        with self._lock:
            self._hooks.append(hook)

    def remove_hook(self, hook: Callable[[Event], None]) -> None:
        with self._lock:
            if hook in self._hooks:
                self._hooks.remove(hook)

    def counts(self) -> Counter:
        """How many times each fault kind was injected."""
        with self._lock:
            return Counter(r.fault for r in self.records if r.fault)

    # -- the work --------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._closing:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), name="fault-proxy-conn",
                             daemon=True).start()

    def _choose(self, path: str) -> tuple[str | None, float]:
        with self._lock:
            for i, (prefix, kind) in enumerate(self._plan.forced):
                if path.startswith(prefix):
                    del self._plan.forced[i]
                    return kind, self._rng.random()
            matches = [p for p in self._plan.rules if path.startswith(p)]
            probabilities = (self._plan.rules[max(matches, key=len)] if matches
                             else self._plan.default)
            u = self._rng.random()
            chosen = None
            acc = 0.0
            for kind in FAULT_KINDS:  # a fixed order, so a seed means the same thing each run
                acc += probabilities.get(kind, 0.0)
                if u < acc:
                    chosen = kind
                    break
            return chosen, self._rng.random()

    def _hook(self, event: Event) -> None:
        with self._lock:
            hooks = list(self._hooks)
        for hook in hooks:
            hook(event)

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(30)
        with client:
            try:
                req = self._read_request(client)
            except (BadRequest, OSError) as e:
                log.warning("fault proxy: unreadable request: %s", e)
                return
            if req is None:
                return
            fault, u = self._choose(req.path)
            rec = Record(req.n, time.monotonic(), req.method, req.target, fault)
            with self._lock:
                self.records.append(rec)
            if fault:
                log.info("fault proxy: request %s %s %s: %s", req.n, req.method, req.target,
                         fault)
            try:
                self._handle(client, req, fault, u, rec)
            except OSError as e:  # the client went away: nothing more to do for it
                rec.detail = (rec.detail + f" client gone: {e}").strip()

    def _handle(self, client: socket.socket, req: Request, fault: str | None, u: float,
                rec: Record) -> None:
        self._hook(Event("received", req, fault))
        if fault == "delay" and u < 0.5:
            self._sleep(u * 2, rec)
        if fault == "drop_request":
            rec.detail = "connection closed before forwarding"
            self._abort(client)
            self._hook(Event("sent", req, fault))
            return
        bodies: tuple[bytes, ...] = ()
        if fault in ("status_503", "status_429"):
            answer = self._own_answer(fault)
        elif fault == "duplicate":
            first, answer = self._forward_twice(req, rec)
            bodies = (first.body, answer.body)
            rec.upstream_status = answer.status
        else:
            answer = self._forward(req)
            bodies = (answer.body,)
            rec.upstream_status = answer.status
        self._hook(Event("answered", req, fault, rec.upstream_status, bodies))
        if fault == "delay" and u >= 0.5:
            self._sleep((u - 0.5) * 2, rec)
        if fault == "drop_response":
            rec.detail = "upstream answered; connection closed without the answer"
            self._abort(client)
        elif fault == "cut_body":
            data = answer.encode()
            head = len(data) - len(answer.body)
            cut = head + int(u * len(answer.body)) if answer.body else int(u * head)
            # recorded before the client can see the cut, so a test reading the records
            # right after its request failed finds them complete
            rec.client_status = answer.status
            rec.detail = f"cut after {cut} of {len(data)} bytes"
            client.sendall(data[:cut])
            self._abort(client)
        else:
            if fault in ("status_500", "garbage", "truncated_json", "wrong_type"):
                answer = self._replace(fault, answer, u)
            rec.client_status = answer.status
            client.sendall(answer.encode())
        self._hook(Event("sent", req, fault, rec.upstream_status, bodies))

    def _sleep(self, fraction: float, rec: Record) -> None:
        lo, hi = self.delay
        seconds = lo + (hi - lo) * fraction
        rec.detail = f"delayed {seconds:.3f} s"
        time.sleep(seconds)

    @staticmethod
    def _abort(client: socket.socket) -> None:
        try:
            client.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already gone

    def _own_answer(self, fault: str) -> Answer:
        if fault == "status_429":
            return Answer(429, "Too Many Requests",
                          [("Content-Type", "application/json"),
                           ("Retry-After", self.retry_after)],
                          b'{"error": "rate_limited", "message": "slow down"}')
        return Answer(503, "Service Unavailable", [("Content-Type", "text/html")],
                      b"<html><body><h1>503 Service Unavailable</h1></body></html>")

    def _replace(self, fault: str, answer: Answer, u: float) -> Answer:
        if fault == "status_500":
            return Answer(500, "Internal Server Error", [("Content-Type", "text/plain")],
                          b"Internal Server Error")
        if fault == "garbage":
            rng = random.Random(u)
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
            return Answer(200, "OK", [("Content-Type", "application/json")], body)
        if fault == "truncated_json":
            body = answer.body or b'{"changes": []}'
            return Answer(200, "OK", [("Content-Type", "application/json")],
                          body[:max(1, min(len(body) - 1, int(u * len(body))))])
        return Answer(200, "OK", [("Content-Type", "text/html; charset=utf-8")], PORTAL)

    def _forward(self, req: Request) -> Answer:
        host, port = self.upstream
        conn = http.client.HTTPConnection(host, port, timeout=self.upstream_timeout)
        try:
            headers = {k: v for k, v in req.headers if k.lower() not in HOP_BY_HOP}
            headers["Host"] = f"{host}:{port}"
            headers["Connection"] = "close"
            conn.request(req.method, req.target, body=req.body or None, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            return Answer(resp.status, resp.reason, resp.getheaders(), body)
        except (OSError, http.client.HTTPException) as e:
            log.warning("fault proxy: upstream failed for %s %s: %s", req.method, req.target, e)
            return Answer(502, "Bad Gateway", [("Content-Type", "text/plain")],
                          f"upstream failed: {e}".encode())
        finally:
            conn.close()

    def _forward_twice(self, req: Request, rec: Record) -> tuple[Answer, Answer]:
        answers: list[Answer | None] = [None, None]

        def send(i: int) -> None:
            answers[i] = self._forward(req)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        first, second = answers
        assert first is not None and second is not None
        rec.detail = f"sent twice: upstream answered {first.status} and {second.status}"
        return first, second

    def _read_request(self, client: socket.socket) -> Request | None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = client.recv(65536)
            if not chunk:
                if buf:
                    raise BadRequest("connection closed inside the request head")
                return None
            buf += chunk
            if len(buf) > MAX_HEAD:
                raise BadRequest("request head too large")
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError:
            raise BadRequest(f"bad request line {lines[0][:80]!r}") from None
        if not version.startswith("HTTP/1."):
            raise BadRequest(f"unsupported version {version!r}")
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise BadRequest(f"bad header line {line[:80]!r}")
            headers.append((name.strip(), value.strip()))
        lower = {k.lower(): v for k, v in headers}
        if "chunked" in lower.get("transfer-encoding", "").lower():
            body = self._read_chunked(client, rest)
        else:
            try:
                length = int(lower.get("content-length", "0"))
            except ValueError:
                raise BadRequest("bad Content-Length") from None
            if not 0 <= length <= MAX_BODY:
                raise BadRequest("body too large")
            body = rest
            while len(body) < length:
                chunk = client.recv(min(65536, length - len(body)))
                if not chunk:
                    raise BadRequest("connection closed inside the request body")
                body += chunk
            body = body[:length]
        with self._lock:
            self._n += 1
            n = self._n
        return Request(n, method, target, headers, body)

    @staticmethod
    def _read_chunked(client: socket.socket, buf: bytes) -> bytes:
        body = b""

        def fill(need: int) -> None:
            nonlocal buf
            while len(buf) < need:
                chunk = client.recv(65536)
                if not chunk:
                    raise BadRequest("connection closed inside a chunked body")
                buf += chunk

        while True:
            while b"\r\n" not in buf:
                fill(len(buf) + 1)
            line, _, buf = buf.partition(b"\r\n")
            try:
                size = int(line.split(b";")[0], 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            if size == 0:
                while b"\r\n\r\n" not in b"\r\n" + buf:  # trailers end with an empty line
                    fill(len(buf) + 1)
                return body
            fill(size + 2)
            body += buf[:size]
            buf = buf[size + 2:]
            if len(body) > MAX_BODY:
                raise BadRequest("body too large")
