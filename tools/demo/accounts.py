"""The demo's buyer accounts: a few people who register on the hub, have their identity and
their companions' verified, and buy tickets for themselves and a companion.

Three more processes serve them: the identity verification sandbox (``wicket-hub
idcheck-sandbox``, docs/identity.md), the sandbox SMS gateway (``wicket-hub sms-sandbox``,
docs/messaging.md) and the hub's ``wicket-hub messenger``, which sends the outbox to it. The
hub and its worker are started with the settings that point them at both
(:meth:`BuyerAccounts.hub_settings`; the SMS keys are made for the run and kept in memory).

Each account is made over HTTP as a buyer's app would (:meth:`BuyerAccounts.create`): a
registration code asked for and read from the SMS gateway's inbox, ``POST
/api/v1/buyer/register``, a sign-in code, ``POST /api/v1/buyer/sessions``, the buyer's own
document (``POST /me/identity``) and one or two companions (``POST /companions``). The worker
asks the sandbox, which answers ``match`` for a number it does not know; when every person is
verified the first buyer buys two seats of the evening session, one for themselves and one for
a companion, paid on the payment sandbox's page (:func:`tools.demo.shop.order_and_pay`): the
payment sends the tickets' links to their mobile. Names and document numbers are invented
(the numbers carry valid check digits, ``sync.sample.fake_resident_id``) and are logged only
masked.
"""

from __future__ import annotations

import random
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from sync.identity import mask_document, mask_name
from sync.sample import fake_resident_id
from tools.demo.children import DemoError, free_port
from tools.demo.shop import BuyerRefused, Sale, order_and_pay

# mobile number, the buyer's name, their companions' names
PEOPLE = (("13800138001", "王芳", ("王小明",)),
          ("13800138002", "李强", ("李静", "陈洋")),
          ("13800138003", "张丽", ("张伟",)))
DOC_TYPE = "resident_id"
TIMEOUT_S = 30.0
VERIFY_TIMEOUT_S = 180.0
CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
ASK_EVERY_S = 2.0    # the buyers' app asks for its state gently: API_LIMIT counts every call


@dataclass
class Person:
    name: str
    number: str

    def document(self) -> dict[str, str]:
        return {"name": self.name, "doc_type": DOC_TYPE, "doc_number": self.number}

    def masked(self) -> str:
        return f"{mask_name(self.name)} {mask_document(self.number)}"


@dataclass
class Account:
    mobile: str
    me: Person
    companions: list[Person]
    buyer_id: int = 0
    token: str = ""          # the buyer session's bearer token, in memory only


def people() -> list[Account]:
    """The accounts of :data:`PEOPLE` with their documents, the same every run: invented
    resident ID numbers with valid check digits."""
    rng = random.Random("wicket demo buyers")
    return [Account(mobile, Person(name, fake_resident_id(rng)),
                    [Person(n, fake_resident_id(rng)) for n in companions])
            for mobile, name, companions in PEOPLE]


@dataclass
class BuyerAccounts:
    directory: Path                 # demo/buyers: what the verification sandbox published
    log_path: Path
    idcheck_port: int = field(default_factory=free_port)
    sms_port: int = field(default_factory=free_port)
    sms_api_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    sms_receipt_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    made: list[Account] = field(default_factory=list)
    order: str = ""                 # what the first buyer bought for themselves and a companion

    @property
    def idcheck_url(self) -> str:
        return f"http://127.0.0.1:{self.idcheck_port}"

    @property
    def sms_url(self) -> str:
        return f"http://127.0.0.1:{self.sms_port}"

    def banner(self, hub_url: str) -> str:
        """The banner's lines: a buyer's demo login (sign-in by SMS code, the code read in the
        SMS sandbox's inbox) and the two sandboxes."""
        first = self.made[0]
        companions = sum(len(a.companions) for a in self.made)
        return f"""\
  Buyer accounts: {len(self.made)}, verified, with {companions} companions (logs/accounts.log);
                  {first.mobile} bought order {self.order} for themselves and a companion.
  Public site:    {hub_url}/shop/   (buy a seat: sign in as {first.mobile} with "Send me a
                  code", the code read in the SMS sandbox's inbox below; pay on the payment
                  sandbox's page the order page links to)
  SMS sandbox:    {self.sms_url}/ (its inbox: the codes and ticket links the hub sent)
  ID verification sandbox: {self.idcheck_url}/_sandbox/requests (numbers masked)"""

    # -- the processes ----------------------------------------------------------------------

    def start_sandboxes(self, child: Callable, hub_args: Callable, wait: Callable,
                        hub_url: str) -> dict[str, str]:
        """Start both sandboxes (``child(name, argv, env)``, ``hub_args(*args)`` the
        ``wicket-hub`` command line) and wait until they answer; the hub's settings for them."""
        idcheck = child("idcheck", hub_args("idcheck-sandbox", "--port", str(self.idcheck_port),
                                            "--publish", str(self.directory)))
        sms = child("sms", hub_args("sms-sandbox", "--port", str(self.sms_port),
                                    "--receipts-url", f"{hub_url}/api/v1/messaging/receipts"),
                    {"WICKET_HUB_SMS_API_KEY": self.sms_api_key,
                     "WICKET_HUB_SMS_RECEIPT_KEY": self.sms_receipt_key})
        wait("waiting for the identity verification sandbox", self._idcheck_answers,
             child=idcheck)
        wait("waiting for the SMS sandbox", lambda: _answers(self.sms_url), child=sms)
        return self.hub_settings()

    def _idcheck_answers(self) -> bool:
        return (self.directory / "idcheck.json").exists() and _answers(self.idcheck_url)

    def hub_settings(self) -> dict[str, str]:
        """The environment of the hub, its worker and the messenger: identities are asked of
        the verification sandbox, SMS go to the sandbox gateway, whose receipts are believed."""
        from cloud.buyers.idcheck_wire import sandbox_settings

        settings = {f"WICKET_HUB_{k}": v for k, v in sandbox_settings(self.directory).items()}
        settings.update({"WICKET_HUB_SMS_GATEWAY_URL": self.sms_url,
                         "WICKET_HUB_SMS_API_KEY": self.sms_api_key,
                         "WICKET_HUB_SMS_RECEIPT_KEY": self.sms_receipt_key})
        return settings

    # -- the accounts -----------------------------------------------------------------------

    def create(self, hub_url: str, sale: Sale, wait: Callable) -> None:
        """Every account of :data:`PEOPLE` made and verified, and the first buyer's order paid
        (``wait(what, condition, timeout)`` waits or raises DemoError)."""
        try:
            self._create(hub_url, sale, wait)
        except (requests.RequestException, BuyerRefused) as e:
            raise DemoError(f"buyer accounts: {type(e).__name__}: {e}; see "
                            f"{self.log_path}") from e

    def _create(self, hub_url: str, sale: Sale, wait: Callable) -> None:
        with requests.Session() as http, open(self.log_path, "a") as log:
            for account in people():
                self._open(http, hub_url, account, wait)
                self.made.append(account)
                log.write(f"buyer {account.buyer_id} ({account.mobile}): registered, "
                          f"{account.me.masked()} and {len(account.companions)} "
                          "companion(s) asked to be verified\n")
            wait("waiting for the worker to verify the buyers and their companions",
                 _every(ASK_EVERY_S, lambda: all(self._verified(http, hub_url, a)
                                                 for a in self.made)),
                 VERIFY_TIMEOUT_S)
            log.write("every buyer and companion verified\n")
            first = self.made[0]
            lines = [{"zone_id": sale.zone_id, "price_tier_id": sale.tier_id,
                      "holder": p.document()} for p in (first.me, first.companions[0])]
            with requests.Session() as till:
                till.headers["Authorization"] = f"Bearer {sale.token}"
                self.order = order_and_pay(till, hub_url, sale, lines,
                                           buyer=f"buyer:{first.buyer_id}")
            log.write(f"buyer {first.buyer_id}: order {self.order} for "
                      f"{first.me.masked()} and {first.companions[0].masked()}, "
                      "clicked Pay on the sandbox's page\n")
            # paid: the worker writes a link to each ticket, the messenger sends it
            wait(f"waiting for the ticket links of order {self.order} sent to {first.mobile}",
                 lambda: len([t for t in self.texts(first.mobile) if "/t/" in t]) >= 2,
                 TIMEOUT_S * 2)
            log.write(f"buyer {first.buyer_id}: both tickets' links arrived by SMS\n")

    def _open(self, http: requests.Session, hub_url: str, account: Account,
              wait: Callable) -> None:
        """Register, sign in, name oneself and one's companions, as a buyer's app does."""
        api = f"{hub_url}/api/v1/buyer"
        code = self._code(http, api, account.mobile, "register", wait)
        made = _call(http, "POST", f"{api}/register", {"mobile": account.mobile, "code": code},
                     idempotent=True)
        account.buyer_id = made["buyer"]["id"]
        code = self._code(http, api, account.mobile, "sign_in", wait)
        account.token = _call(http, "POST", f"{api}/sessions",
                              {"mobile": account.mobile, "code": code})["token"]
        _call(http, "POST", f"{api}/me/identity", account.me.document(), account.token,
              idempotent=True)
        for person in account.companions:
            _call(http, "POST", f"{api}/companions", person.document(), account.token,
                  idempotent=True)

    def _code(self, http: requests.Session, api: str, mobile: str, purpose: str,
              wait: Callable) -> str:
        """Ask the hub for a code and read it from the SMS the gateway received."""
        before = len(self.texts(mobile))
        _call(http, "POST", f"{api}/codes", {"mobile": mobile, "purpose": purpose})
        texts = wait(f"waiting for the {purpose} code sent to {mobile}",
                     lambda: self.texts(mobile)[before:], TIMEOUT_S)
        found = CODE.search(texts[-1])
        if found is None:
            raise DemoError(f"no code in the SMS sent to {mobile}")
        return found.group(1)

    def texts(self, mobile: str) -> list[str]:
        """The SMS the sandbox gateway took for a number, oldest first."""
        got = requests.get(f"{self.sms_url}/_sandbox/received", timeout=TIMEOUT_S).json()
        return [r["text"] for r in got["received"]
                if r["channel"] == "sms" and r["to"].endswith(mobile)]

    def _verified(self, http: requests.Session, hub_url: str, account: Account) -> bool:
        api = f"{hub_url}/api/v1/buyer"
        states = [_call(http, "GET", f"{api}/me", None, account.token)["buyer"]["verification"]]
        states += [c["verification"] for c in _call(
            http, "GET", f"{api}/companions", None, account.token)["companions"]]
        refused = [s for s in states if s not in ("pending", "verified")]
        if refused:
            raise DemoError(f"buyer {account.buyer_id}: verification {refused[0]}; see "
                            f"{self.log_path.parent / 'idcheck.log'}")
        return all(s == "verified" for s in states)


def _every(seconds: float, condition: Callable[[], Any]) -> Callable[[], Any]:
    """``condition`` asked at most once every ``seconds`` (falsy in between)."""
    last = [float("-inf")]

    def asked() -> Any:
        if time.monotonic() - last[0] < seconds:
            return False
        last[0] = time.monotonic()
        return condition()
    return asked


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/_sandbox/health", timeout=2).ok
    except (requests.ConnectionError, requests.Timeout):  # still starting
        return False


def _call(http: requests.Session, method: str, url: str, body: dict | None,
          token: str | None = None, idempotent: bool = False) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if idempotent:
        headers["Idempotency-Key"] = f"demo-{uuid.uuid4()}"
    r = http.request(method, url, json=body, headers=headers, timeout=TIMEOUT_S)
    if r.status_code not in (200, 201, 202):
        raise DemoError(f"{method} {url} answered {r.status_code}: {r.text[:200]}")
    return r.json()


def verified_counts(conn: sa.Connection) -> tuple[int, int]:
    """Buyers whose own identity is verified, and live companions whose identity is: from
    the hub's database."""
    from cloud.buyers.tables import buyers, companions, identities

    verified = identities.c.state == "verified"
    own = conn.execute(sa.select(sa.func.count()).select_from(
        buyers.join(identities, identities.c.id == buyers.c.identity_id)).where(verified)
    ).scalar_one()
    theirs = conn.execute(sa.select(sa.func.count()).select_from(
        companions.join(identities, identities.c.id == companions.c.identity_id))
        .where(verified, companions.c.removed_at.is_(None))).scalar_one()
    return own, theirs
