"""The sandbox SMS gateway's state (``wicket-hub sms-sandbox``; its HTTP side is
``cloud/messaging/sms_sandbox_pages.py``): what a real gateway does, in one process.

- It takes batches of SMS and WeChat template messages from whoever holds the shared API key.
- It keeps every message once by its ``delivery_id``: the same id sent again is answered
  ``duplicate`` and not delivered again (this is what makes a worker killed mid-send harmless).
- It refuses numbers it is told to refuse (``refused``, for good), and can be told to fail
  (HTTP 503), to time out (hold the answer), or to take a batch and then hold the answer
  (the send happened; the sender never learns it).
- Some time after taking a message it sends a delivery receipt, signed with the receipt key,
  to the hub's receipt endpoint, in batches, from a thread of its own (``delivered``, or
  ``failed`` for numbers it is told cannot be reached).
- Tests and the demo read what it received.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from cloud.messaging.receipts import HEADER, sign

log = logging.getLogger(__name__)
FAULTS = ("fail", "timeout", "hold")


@dataclass
class Received:
    delivery_id: str
    channel: str
    to: str
    text: str
    kind: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    sends: int = 1
    receipt: str = ""

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Gateway:
    def __init__(self, api_key: str, receipt_key: str = "", receipts_url: str = "",
                 refuse: set[str] | None = None, undeliverable: set[str] | None = None,
                 receipt_delay_s: float = 0.05):
        self.api_key, self.receipt_key, self.receipts_url = api_key, receipt_key, receipts_url
        self.refuse, self.undeliverable = set(refuse or ()), set(undeliverable or ())
        self.receipt_delay_s = receipt_delay_s
        self.cond = threading.Condition()
        self.received: dict[str, Received] = {}
        self.duplicates = 0
        self.faults: list[str] = []   # one per coming batch
        self.released = threading.Event()
        self.pending: list[tuple[float, str, str, str]] = []  # due, id, status, reason
        self.receipts_sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._push_receipts, daemon=True)

    def authorised(self, header: str | None) -> bool:
        return bool(header) and hmac.compare_digest(header or "", f"Bearer {self.api_key}")

    def inject(self, faults: list[str]) -> None:
        bad = [f for f in faults if f not in FAULTS]
        if bad:
            raise ValueError(f"unknown faults {bad}: {', '.join(FAULTS)}")
        with self.cond:
            self.faults.extend(faults)

    def next_fault(self) -> str | None:
        with self.cond:
            return self.faults.pop(0) if self.faults else None

    def take(self, channel: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Keep a batch; one answer per message."""
        answers = []
        with self.cond:
            for item in items:
                answers.append(self._take_one(channel, item))
            self.cond.notify_all()
        return answers

    def _take_one(self, channel: str, item: dict[str, Any]) -> dict[str, Any]:
        delivery_id = str(item.get("delivery_id") or "")
        to = str(item.get("to") or item.get("touser") or "")
        if not delivery_id or not to:
            return {"delivery_id": delivery_id, "status": "error", "reason": "incomplete"}
        seen = self.received.get(delivery_id)
        if seen is not None:
            seen.sends += 1
            self.duplicates += 1
            return {"delivery_id": delivery_id, "status": "duplicate", "id": delivery_id}
        if to in self.refuse:
            return {"delivery_id": delivery_id, "status": "refused",
                    "reason": f"the number {to} is not in service"}
        self.received[delivery_id] = Received(
            delivery_id, channel, to, str(item.get("text") or ""),
            str(item.get("template_id") or ""), dict(item.get("data") or {}))
        if self.receipts_url:
            status = "failed" if to in self.undeliverable else "delivered"
            reason = "the phone is unreachable" if status == "failed" else ""
            self.pending.append((time.monotonic() + self.receipt_delay_s, delivery_id, status,
                                 reason))
        return {"delivery_id": delivery_id, "status": "accepted", "id": delivery_id}

    def snapshot(self) -> dict[str, Any]:
        with self.cond:
            return {"received": [r.as_json() for r in self.received.values()],
                    "duplicates": self.duplicates, "receipts_sent": self.receipts_sent,
                    "receipts_pending": len(self.pending)}

    def wait(self, count: int, receipts: int, timeout: float) -> bool:
        """Until ``count`` messages were received and ``receipts`` receipts sent."""
        with self.cond:
            return self.cond.wait_for(lambda: len(self.received) >= count
                                      and self.receipts_sent >= receipts, timeout)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.released.set()
        self._thread.join(timeout=5)

    def _due(self) -> list[tuple[float, str, str, str]]:
        with self.cond:
            now = time.monotonic()
            due = [p for p in self.pending if p[0] <= now][:500]
            return due

    def _push_receipts(self) -> None:
        http = requests.Session()
        failures = 0
        while not self._stop.wait(min(2.0, 0.02 * 2 ** failures)):
            due = self._due()
            if not due:
                continue
            body = json.dumps({"receipts": [{"delivery_id": d, "status": s, "reason": r}
                                            for _t, d, s, r in due]}).encode()
            try:
                r = http.post(self.receipts_url, data=body, timeout=10, headers={
                    "Content-Type": "application/json",
                    HEADER: sign(self.receipt_key, body, int(time.time()))})
                ok = r.status_code == 200
            except requests.RequestException as e:
                log.warning("receipts to %s: %s", self.receipts_url, e)
                ok = False
            if not ok:
                failures = min(failures + 1, 6)
                continue
            failures = 0
            with self.cond:
                sent = {d for _t, d, _s, _r in due}
                self.pending = [p for p in self.pending if p[1] not in sent]
                for _t, d, s, _r in due:
                    self.received[d].receipt = s
                self.receipts_sent += len(due)
                self.cond.notify_all()
