"""The sandbox's notifications on their way to the hub: each is sent until the hub
acknowledges it, on its provider's retry schedule (compressed by the sandbox's time scale),
one at a time in the order they fall due, and every attempt is logged for the tests to read.

Waiting for something to have happened is :meth:`Dispatcher.wait` (a condition the
dispatcher signals after each attempt), never a sleep.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

log = logging.getLogger(__name__)

# seconds between attempts: WeChat Pay's published schedule and Alipay's (docs/payments.md)
SCHEDULES = {"wechat": (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800,
                        10800, 21600, 21600),
             "alipay": (240, 600, 600, 3600, 7200, 21600, 54000)}


@dataclass
class Delivery:
    """One notification: ``sign(attempt)`` gives the headers and body of that attempt (WeChat
    signs each attempt at its own time; the first may carry an injected fault)."""

    id: int
    provider: str
    kind: str
    out_trade_no: str
    notification_id: str
    url: str
    sign: Callable[[int], tuple[dict[str, str], bytes]]
    due: float
    attempts: list[dict] = field(default_factory=list)
    acked: bool = False
    gave_up: bool = False

    @property
    def done(self) -> bool:
        return self.acked or self.gave_up

    def as_json(self) -> dict:
        return {"id": self.id, "provider": self.provider, "kind": self.kind,
                "out_trade_no": self.out_trade_no, "notification_id": self.notification_id,
                "acked": self.acked, "gave_up": self.gave_up, "attempts": self.attempts}


def acknowledged(provider: str, status: int, body: bytes) -> bool:
    if provider == "alipay":
        return status == 200 and body.strip() == b"success"
    return 200 <= status < 300


class Dispatcher:
    def __init__(self, time_scale: float):
        self.time_scale = time_scale
        self.deliveries: list[Delivery] = []
        self.cond = threading.Condition()
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-deliveries",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self.cond:
            self.cond.notify_all()

    def add(self, provider: str, kind: str, out_trade_no: str, notification_id: str, url: str,
            sign: Callable[[int], tuple[dict[str, str], bytes]], after: float = 0.0) -> None:
        with self.cond:
            self.deliveries.append(Delivery(
                next(self._ids), provider, kind, out_trade_no, notification_id, url, sign,
                time.monotonic() + after * self.time_scale))
            self.cond.notify_all()

    def _next(self) -> Delivery | None:
        with self.cond:
            while not self._stop.is_set():
                waiting = [d for d in self.deliveries if not d.done]
                if waiting:
                    first = min(waiting, key=lambda d: (d.due, d.id))
                    pause = first.due - time.monotonic()
                    if pause <= 0:
                        return first
                    self.cond.wait(pause)
                else:
                    self.cond.wait()
        return None

    def _run(self) -> None:
        while (d := self._next()) is not None:
            self._attempt(d)

    def _attempt(self, d: Delivery) -> None:
        n = len(d.attempts) + 1
        headers, body = d.sign(n)
        try:
            r = requests.post(d.url, data=body, headers=headers, timeout=10)
            status, answer = r.status_code, r.content
        except requests.RequestException as e:
            status, answer = 0, type(e).__name__.encode()
        ok = acknowledged(d.provider, status, answer)
        schedule = SCHEDULES[d.provider]
        with self.cond:
            d.attempts.append({"n": n, "status": status, "acked": ok})
            d.acked = ok
            if not ok and n > len(schedule):
                d.gave_up = True
            elif not ok:
                d.due = time.monotonic() + schedule[n - 1] * self.time_scale
            self.cond.notify_all()
        log.info("%s notification %s of %s: attempt %s -> %s", d.provider,
                 d.notification_id, d.out_trade_no, n, status)

    def of(self, out_trade_no: str | None = None) -> list[Delivery]:
        return [d for d in self.deliveries
                if out_trade_no is None or d.out_trade_no == out_trade_no]

    def wait(self, test: Callable[[list[Delivery]], bool], out_trade_no: str | None,
             timeout: float) -> bool:
        """Wait until ``test`` holds of the trade's deliveries (or ``timeout`` s pass)."""
        with self.cond:
            return self.cond.wait_for(lambda: test(self.of(out_trade_no)), timeout)
