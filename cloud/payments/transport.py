"""The HTTP calls the online adapters make: one place that turns the network's failures into
``provider_unavailable`` (a timeout after the provider committed looks the same: the caller
retries with the same trade or refund number, which the provider honours once)."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from cloud.payments.errors import PaymentError


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]   # lower-case names
    body: bytes


def send(provider: str, method: str, url: str, *, headers: dict[str, str],
         body: bytes | None = None, timeout: float = 10.0) -> Answer:
    try:
        r = requests.request(method, url, headers=headers, data=body, timeout=timeout,
                             allow_redirects=False)
    except requests.RequestException as e:
        raise PaymentError("provider_unavailable", provider=provider,
                           detail=type(e).__name__) from None
    if r.status_code >= 500 or r.status_code == 429:   # try again later, same numbers
        raise PaymentError("provider_unavailable", provider=provider,
                           detail=f"HTTP {r.status_code}")
    return Answer(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)
