"""The secrets the sync contract trades: what a well-formed, strong one looks like.

Two kinds, both made by ``secrets`` on one side or the other:

* the **enrollment token** the hub makes for a new appliance: 64 lowercase hexadecimal
  characters (256 bits), typed or scanned once by a field tech;
* the **appliance credential** the hub hands over at enrollment, or the appliance chooses when
  it rolls it: 43 to 128 URL-safe base64 characters (``A-Z a-z 0-9 - _``).

A chosen secret must also carry at least :data:`MIN_BITS` bits by :func:`estimate_bits`, a
deliberately pessimistic estimate for machine-made secrets: the length times the smaller of
two empirical Shannon entropies per character, that of the characters and that of the steps
between neighbours. A uniformly random 43-character credential scores about 200 bits (never
near the floor); ``aaaa…``, ``abcd…`` or ``abcabc…`` score close to nothing, as do strings of
few distinct characters. A password-strength library would judge words people choose; these
secrets are never chosen by people.
"""

from __future__ import annotations

import math
import re
from collections import Counter

MIN_BITS = 128
TOKEN_RE = re.compile(r"[0-9a-f]{64}")
CREDENTIAL_RE = re.compile(r"[A-Za-z0-9_-]{43,128}")


class WeakSecret(ValueError):
    """A malformed or low-entropy secret; ``code`` says which, the message says it in words
    (never the secret itself)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _shannon(symbols: list) -> float:
    counts = Counter(symbols)
    n = len(symbols)
    return -sum(c / n * math.log2(c / n) for c in counts.values()) if n else 0.0


def estimate_bits(secret: str) -> float:
    """Pessimistic bits of entropy of ``secret`` (see the module's docstring)."""
    if len(secret) < 2:
        return 0.0
    steps = [ord(b) - ord(a) for a, b in zip(secret, secret[1:], strict=False)]
    return max(0.0, len(secret) * min(_shannon(list(secret)), _shannon(steps)))


def _strong(secret: str, what: str) -> None:
    bits = estimate_bits(secret)
    if bits < MIN_BITS:
        raise WeakSecret("weak_secret", f"{what} is too predictable (about {bits:.0f} bits of "
                         f"entropy, at least {MIN_BITS} needed): make it with a random "
                         "generator")


def check_credential(secret: object) -> str:
    """``secret`` if it is a well-formed, strong appliance credential; else WeakSecret."""
    if not isinstance(secret, str) or not CREDENTIAL_RE.fullmatch(secret):
        raise WeakSecret("bad_credential", "a credential must be 43 to 128 URL-safe base64 "
                         "characters (A-Z a-z 0-9 - _)")
    _strong(secret, "the credential")
    return secret


def check_token(token: object) -> str:
    """``token`` if it is a well-formed, strong enrollment token; else WeakSecret."""
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        raise WeakSecret("token_malformed", "this enrollment token is not valid: a token is "
                         "64 hexadecimal characters (0-9, a-f)")
    _strong(token, "the enrollment token")
    return token
