"""Verification services: the interface the verification job uses, the adapter for services
that speak the idcheck wire (``cloud/buyers/idcheck_wire.py``; the sandbox does), and the
settings that choose one.

A service answers a question (name, document type, number, and a request id of the hub's)
with a signed :class:`Answer`, ``match`` or ``no_match``; anything else — no answer in time,
a refused connection, an HTTP 5xx or 429, a signed ``unavailable`` — is
:class:`ServiceUnavailable` (the job tries again later), and an answer that is unsigned,
forged, tampered with or names another request is :class:`AnswerRefused` (never believed;
the job tries again too, and the error is kept for operators). Another service plugs in as
another class with :meth:`Verifier.verify`, chosen by ``IDCHECK_PROVIDER``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import requests

from cloud.buyers import idcheck_wire as wire

SETTINGS: dict[str, tuple[str, str]] = {
    "IDCHECK_PROVIDER": ("", "the verification service: empty (none: service-checked "
                             "documents wait until one is set) or idcheck (a service "
                             "speaking the idcheck wire, as the sandbox does)"),
    "IDCHECK_URL": ("", "the service's address"),
    "IDCHECK_APP_ID": ("", "the app id the service issued to the hub"),
    "IDCHECK_APP_SECRET": ("", "file: the secret the hub signs its requests with"),
    "IDCHECK_PUBLIC_KEY": ("", "file: the service's Ed25519 public key (PEM) its answers "
                               "are signed with"),
    "IDCHECK_TIMEOUT": ("10", "seconds to wait for the service's answer"),
    "IDENTITY_PHOTO_KEEP_DAYS": ("30", "days a reviewed document photo is kept after the "
                                       "decision"),
}


@dataclass(frozen=True)
class Question:
    request_id: str
    name: str
    doc_type: str
    number: str


@dataclass(frozen=True)
class Answer:
    result: str        # match or no_match
    ref: str           # the service's id of its answer
    evidence: str      # the signed answer as received (body and signature), no personal data


class ServiceUnavailable(Exception):
    """No usable answer now: try again later."""


class AnswerRefused(Exception):
    """An answer that is not the service's own, for this request: never believed."""


class Verifier(Protocol):
    name: str

    def verify(self, question: Question) -> Answer: ...


@dataclass
class IdcheckVerifier:
    """A service speaking the idcheck wire."""

    url: str
    app_id: str
    app_secret: bytes
    public_key: Any
    timeout: float = 10.0
    name: str = "idcheck"

    def verify(self, question: Question) -> Answer:
        body = json.dumps({"request_id": question.request_id, "name": question.name,
                           "doc_type": question.doc_type, "number": question.number},
                          ensure_ascii=False).encode("utf-8")
        try:
            r = requests.post(self.url.rstrip("/") + wire.PATH, data=body, timeout=self.timeout,
                              allow_redirects=False, headers={
                                  "Content-Type": "application/json",
                                  wire.APP_HEADER: self.app_id,
                                  wire.SIGNATURE_HEADER: wire.request_signature(
                                      self.app_secret, body)})
        except requests.RequestException as e:
            raise ServiceUnavailable(f"{type(e).__name__}") from None
        if r.status_code >= 500 or r.status_code == 429:
            raise ServiceUnavailable(f"HTTP {r.status_code}")
        return self.read(question, r.status_code, r.content,
                         r.headers.get(wire.SIGNATURE_HEADER))

    def read(self, question: Question, status: int, body: bytes,
             signature: str | None) -> Answer:
        if not wire.answer_ok(self.public_key, body, signature):
            raise AnswerRefused(f"HTTP {status}: the answer's signature is "
                                f"{'wrong' if signature else 'missing'}")
        if status != 200:
            raise AnswerRefused(f"HTTP {status}")
        try:
            answer = json.loads(body)
            result, ref, asked = answer["result"], str(answer["answer_id"]), answer["request_id"]
        except (ValueError, KeyError, TypeError):
            raise AnswerRefused("a signed answer that is not the wire's") from None
        if asked != question.request_id:
            raise AnswerRefused("the answer is for another request")
        if result == "unavailable":
            raise ServiceUnavailable("the service answered: unavailable")
        if result not in ("match", "no_match"):
            raise AnswerRefused(f"unknown result {result!r}")
        return Answer(result, ref[:120], json.dumps(
            {"body": body.decode("utf-8"), "signature": signature}))


def identity_settings(config: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Each setting from ``config``, else ``$WICKET_HUB_<NAME>``, else its default."""
    return {name: str(config.get(name) or environ.get(f"WICKET_HUB_{name}") or default)
            for name, (default, _help) in SETTINGS.items()}


def make_verifier(s: Mapping[str, str]) -> Verifier | None:
    """The configured service, or None; incomplete settings are an error at start."""
    provider = s["IDCHECK_PROVIDER"].strip()
    if not provider:
        return None
    if provider != "idcheck":
        raise ValueError(f"identity: no verification service {provider!r} (idcheck)")
    missing = [n for n in ("IDCHECK_URL", "IDCHECK_APP_ID", "IDCHECK_APP_SECRET",
                           "IDCHECK_PUBLIC_KEY") if not s.get(n)]
    if missing:
        raise ValueError("identity: set " + ", ".join(missing))
    return IdcheckVerifier(s["IDCHECK_URL"], s["IDCHECK_APP_ID"],
                           Path(s["IDCHECK_APP_SECRET"]).read_bytes().strip(),
                           wire.load_public_key(s["IDCHECK_PUBLIC_KEY"]),
                           float(s["IDCHECK_TIMEOUT"]))
