"""The channels a message leaves by, each behind one interface: a provider takes a batch of
rendered messages and says, for each, whether it was sent (with the provider's id), refused
for good (a number it will never reach), or failed in a way worth trying again.

- :class:`GatewaySms` and :class:`GatewayWeChat` speak the gateway protocol that the sandbox
  (``wicket-hub sms-sandbox``, ``cloud/messaging/sms_sandbox.py``) serves: a batch per request,
  authenticated by a shared key, every message named by its ``delivery_id``, which the gateway
  de-duplicates on (a message sent again after a worker died is answered ``duplicate`` and not
  delivered twice).
- :class:`SmtpMail` sends e-mail over real SMTP (``smtplib``), one connection per batch; the
  delivery id is the message's ``Message-ID``, which receiving systems de-duplicate on.

Every send happens with no database transaction open (``cloud/messaging/sending.py``).
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol

import requests

from cloud.core.outbox import Outcome


@dataclass(frozen=True)
class Outgoing:
    """One message, rendered, on its way out."""

    delivery_id: str
    channel: str
    to: str
    kind: str
    subject: str
    body: str
    params: dict[str, str] = field(default_factory=dict)


class Provider(Protocol):
    def send(self, batch: list[Outgoing]) -> list[Outcome]:
        """One outcome per message, in order; never raises for a message's failure."""


class _Gateway:
    """The gateway protocol: a batch posted to ``path`` as ``{"messages": [item, …]}``, each
    item made by ``item`` from a message, one answer per delivery id."""

    def __init__(self, url: str, api_key: str, timeout: float, path: str,
                 item: Callable[[Outgoing], dict[str, Any]]):
        self.url, self.timeout, self.item = url.rstrip("/") + path, timeout, item
        self.http = requests.Session()  # kept: one connection for every batch
        self.http.headers["Authorization"] = f"Bearer {api_key}"

    def send(self, batch: list[Outgoing]) -> list[Outcome]:
        try:
            r = self.http.post(self.url, json={"messages": [self.item(m) for m in batch]},
                               timeout=self.timeout)
        except requests.RequestException as e:
            return [Outcome("error", error=f"{type(e).__name__}: {e}")] * len(batch)
        if r.status_code != 200:
            return [Outcome("error", error=f"HTTP {r.status_code}: {r.text[:200]}")] * len(batch)
        try:
            answers = {a["delivery_id"]: a for a in r.json()["results"]}
        except (ValueError, KeyError, TypeError) as e:
            return [Outcome("error", error=f"bad answer: {e}")] * len(batch)
        return [self._outcome(answers.get(m.delivery_id)) for m in batch]

    @staticmethod
    def _outcome(a: Mapping[str, Any] | None) -> Outcome:
        if a is None:
            return Outcome("error", error="the gateway did not answer for this message")
        if a.get("status") in ("accepted", "duplicate"):
            return Outcome("sent", provider_ref=str(a.get("id") or ""))
        if a.get("status") == "refused":
            return Outcome("refused", error=str(a.get("reason") or "refused"))
        return Outcome("error", error=str(a.get("reason") or a.get("status")))


def _sms_item(m: Outgoing) -> dict[str, Any]:
    return {"delivery_id": m.delivery_id, "to": m.to, "text": m.body}


def _wechat_item(m: Outgoing) -> dict[str, Any]:
    return {"delivery_id": m.delivery_id, "touser": m.to, "template_id": m.kind,
            "title": m.subject, "data": {k: {"value": v} for k, v in m.params.items()},
            "text": m.body}


class GatewaySms(_Gateway):
    def __init__(self, url: str, api_key: str, timeout: float = 10.0):
        super().__init__(url, api_key, timeout, "/sms/send", _sms_item)


class GatewayWeChat(_Gateway):
    """WeChat template messages: the recipient is an openid, the template the message kind,
    the data the message's parameters (``{"name": {"value": ...}}``), as WeChat takes them."""

    def __init__(self, url: str, api_key: str, timeout: float = 10.0):
        super().__init__(url, api_key, timeout, "/wechat/template/send", _wechat_item)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    user: str = ""
    password: str = ""
    starttls: bool = False
    sender: str = "wicket@localhost"
    timeout: float = 10.0


class SmtpMail:
    def __init__(self, s: SmtpSettings):
        self.s = s

    def _mail(self, m: Outgoing) -> EmailMessage:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = self.s.sender, m.to, m.subject
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = f"<{m.delivery_id}@wicket>"
        mail["X-Wicket-Delivery-Id"] = m.delivery_id
        mail.set_content(m.body)
        return mail

    def send(self, batch: list[Outgoing]) -> list[Outcome]:
        try:
            smtp = smtplib.SMTP(self.s.host, self.s.port, timeout=self.s.timeout)
        except OSError as e:
            return [Outcome("error", error=f"SMTP {self.s.host}:{self.s.port}: {e}")] * len(batch)
        out = []
        with smtp:
            try:
                if self.s.starttls:
                    smtp.starttls()
                if self.s.user:
                    smtp.login(self.s.user, self.s.password)
            except (smtplib.SMTPException, OSError) as e:
                return [Outcome("error", error=f"SMTP: {e}")] * len(batch)
            for m in batch:
                out.append(self._one(smtp, m))
        return out

    def _one(self, smtp: smtplib.SMTP, m: Outgoing) -> Outcome:
        try:
            smtp.send_message(self._mail(m))
            return Outcome("sent", provider_ref=f"<{m.delivery_id}@wicket>")
        except smtplib.SMTPRecipientsRefused as e:
            return Outcome("refused", error=f"SMTP refused {m.to}: {e.recipients}")
        except (smtplib.SMTPException, OSError) as e:
            return Outcome("error", error=f"SMTP: {e}")


def make_providers(s: Mapping[str, str]) -> dict[str, Provider]:
    """The channels configured in the settings (``cloud/messaging/settings.py``); a channel
    without settings has no provider, and its messages wait."""
    timeout = float(s["MESSAGING_TIMEOUT"])
    out: dict[str, Provider] = {}
    if s["SMS_GATEWAY_URL"]:
        out["sms"] = GatewaySms(s["SMS_GATEWAY_URL"], s["SMS_API_KEY"], timeout)
    wechat = s["WECHAT_GATEWAY_URL"] or s["SMS_GATEWAY_URL"]
    if wechat:
        out["wechat"] = GatewayWeChat(wechat, s["SMS_API_KEY"], timeout)
    if s["SMTP_HOST"]:
        out["email"] = SmtpMail(SmtpSettings(
            s["SMTP_HOST"], int(s["SMTP_PORT"]), s["SMTP_USER"], s["SMTP_PASSWORD"],
            s["SMTP_STARTTLS"] == "1", s["SMTP_FROM"], timeout))
    return out
