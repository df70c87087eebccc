"""The verification sandbox's state and behaviour (``wicket-hub idcheck-sandbox``; its HTTP
server is ``idcheck_sandbox_api.py``): a service speaking the idcheck wire, with a register of
people and, per document number, a script of how it answers next.

Without a script the sandbox answers from its register: ``match`` when the number is
registered under that name (compared casefolded, spaces collapsed), ``no_match`` when it is
registered under another, and ``match`` for a number it does not know (so the demo's buyers
verify). A script is a list of :data:`BEHAVIOURS`, one used per call:

- ``match``, ``no_match``, ``unavailable``: that signed result;
- ``error``: HTTP 503; ``slow``: the register's answer after ``slow_s`` seconds;
- ``silent``: no answer at all until ``/_sandbox/release`` (the caller times out);
- ``forged``: the register's answer signed with another key; ``tampered``: signed, then
  changed to ``match``; ``unsigned``: no signature; ``replayed``: signed, for another request.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.buyers import idcheck_wire as wire
from sync.identity import mask_document

BEHAVIOURS = ("match", "no_match", "unavailable", "error", "slow", "silent", "forged",
              "tampered", "unsigned", "replayed")


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]


def _folded(name: str) -> str:
    return " ".join(name.split()).casefold()


@dataclass
class Sandbox:
    publish_dir: str
    url: str
    slow_s: float = 0.2
    hold_timeout: float = 120.0
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    lock: threading.Lock = field(default_factory=threading.Lock)
    released: threading.Event = field(default_factory=threading.Event)
    people: dict[str, str] = field(default_factory=dict)
    scripts: dict[str, deque[str]] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app_id, self.app_secret = wire.new_app()
        wire.publish(self.publish_dir, self.url, self.key, self.app_id, self.app_secret)

    def script(self, number: str, behaviours: list[str]) -> None:
        unknown = [b for b in behaviours if b not in BEHAVIOURS]
        if unknown:
            raise ValueError(f"unknown behaviours {unknown}; known: {', '.join(BEHAVIOURS)}")
        with self.lock:
            self.scripts.setdefault(number, deque()).extend(behaviours)

    def register(self, number: str, name: str) -> None:
        with self.lock:
            self.people[number] = name

    def _next(self, number: str, name: str) -> tuple[str, str]:
        """The behaviour for this call and the register's answer."""
        with self.lock:
            queued = self.scripts.get(number)
            behaviour = queued.popleft() if queued else ""
            known = self.people.get(number)
        truth = "match" if known is None or _folded(known) == _folded(name) else "no_match"
        return behaviour or truth, truth

    def verify(self, body: bytes, app: str | None, signature: str | None) -> Reply:
        if app != self.app_id or not wire.request_ok(self.app_secret, body, signature):
            return Reply(401, b'{"error": "bad_signature"}', {})
        try:
            asked = json.loads(body)
            request_id, name, number = asked["request_id"], asked["name"], asked["number"]
        except (ValueError, KeyError, TypeError):
            return Reply(400, b'{"error": "bad_request"}', {})
        behaviour, truth = self._next(number, name)
        with self.lock:
            self.requests.append({"request_id": request_id, "doc_type": asked.get("doc_type"),
                                  "number": mask_document(number), "behaviour": behaviour})
        if behaviour == "error":
            return Reply(503, b'{"error": "busy"}', {})
        if behaviour == "silent":
            self.released.wait(self.hold_timeout)
            return Reply(503, b'{"error": "late"}', {})
        if behaviour == "slow":
            time.sleep(self.slow_s)
        result = truth if behaviour in ("slow", "forged", "tampered", "unsigned",
                                        "replayed") else behaviour
        return self._signed(request_id if behaviour != "replayed" else "another", result,
                            behaviour)

    def _signed(self, request_id: str, result: str, behaviour: str) -> Reply:
        body = json.dumps({"request_id": request_id, "answer_id": secrets.token_hex(12),
                           "result": result,
                           "answered_at": datetime.now(UTC).isoformat(timespec="seconds")}
                          ).encode()
        key = Ed25519PrivateKey.generate() if behaviour == "forged" else self.key
        signature = wire.sign_answer(key, body)
        if behaviour == "tampered":
            body = body.replace(b'"no_match"', b'"match"').replace(b'"answer_id": "',
                                                                    b'"answer_id": "x')
        headers = {"Content-Type": "application/json"}
        if behaviour != "unsigned":
            headers[wire.SIGNATURE_HEADER] = signature
        return Reply(200, body, headers)
