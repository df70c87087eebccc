"""The one password policy of the hub and the appliance: how strong a chosen password must be,
when it is too old, and whether it was used before.

Strength is estimated with zxcvbn (Dropbox's estimator: dictionaries of common passwords,
names and words, keyboard walks, sequences, repeats, dates and l33t substitutions), not
counted by character classes: ``1234567890``, ``qwertyuiop`` and ``password12`` pass every
length-and-classes rule and fall to the first guesses of any cracker, while a long passphrase
of plain words is strong. The account's username and the words of the site (:data:`SITE_WORDS`
and whatever the caller adds, such as a venue's name) are given to the estimator as words an
attacker would try first. A refusal is a :class:`WeakPassword` carrying a stable code, which
each side words in its pages' languages.

Only plain values come in: the caller reads its own settings and its own stored hashes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from zxcvbn import zxcvbn

# Words every Wicket site would be guessed with first.
SITE_WORDS = ("wicket", "ticket", "tickets", "venue", "gate", "hub", "edge", "admin",
              "staff", "box office")
MIN_LENGTH = 10
MAX_LENGTH = 256
# zxcvbn's scale: 0 too guessable, 1 very guessable, 2 somewhat guessable, 3 safely
# unguessable (about 10^8 guesses and more), 4 very unguessable (10^10 and more)
MIN_SCORE = 3
# zxcvbn's own cut: matching is quadratic in the length, and past this much a password is
# judged on its first characters (the rest only adds to it)
_ESTIMATE_LENGTH = 72


@dataclass(frozen=True)
class Policy:
    """A site's settings of the policy: ``max_age_days`` 0 means passwords never expire,
    ``history`` 0 means a password may be chosen again at once."""

    min_score: int = MIN_SCORE
    max_age_days: int = 0
    history: int = 0

    def __post_init__(self):
        if not 0 <= self.min_score <= 4:
            raise ValueError("min_score is 0 to 4 (zxcvbn's scale)")
        if self.max_age_days < 0 or self.history < 0:
            raise ValueError("max_age_days and history are 0 or more")


class WeakPassword(ValueError):
    """A password the policy refuses; ``code`` says why and ``params`` carries the values the
    words name (never the password)."""

    def __init__(self, code: str, message: str, **params):
        super().__init__(message)
        self.code = code
        self.params = params


def check_strength(password: str, username: str, policy: Policy = Policy(),
                   site_words: Iterable[str] = ()) -> None:
    """Refuse a password that is too short or long, holds the username, or that zxcvbn scores
    below ``policy.min_score`` with the username and the site's words as likely guesses."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword("password_too_short",
                           f"a password needs at least {MIN_LENGTH} characters", min=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        raise WeakPassword("password_too_long",
                           f"a password has at most {MAX_LENGTH} characters", max=MAX_LENGTH)
    if username and username.lower() in password.lower():
        raise WeakPassword("password_has_username", "a password must not contain the username")
    guesses = [username, *SITE_WORDS, *site_words]
    result = zxcvbn(password[:_ESTIMATE_LENGTH], user_inputs=[w for w in guesses if w],
                    max_length=_ESTIMATE_LENGTH)
    if result["score"] < policy.min_score:
        raise WeakPassword("password_too_weak",
                           "this password is too easy to guess: choose a longer one, for "
                           "example a few unrelated words", score=result["score"],
                           min_score=policy.min_score)


def expired(changed_at: datetime | None, now: datetime, policy: Policy) -> bool:
    """Whether a password set at ``changed_at`` must be changed before anything else: never
    set by its holder (None: an admin chose it), or older than the policy's maximum age."""
    if changed_at is None:
        return True
    return policy.max_age_days > 0 and changed_at + timedelta(days=policy.max_age_days) <= now


def check_not_reused(password: str, recent_hashes: Iterable[str],
                     matches: Callable[[str, str], bool], policy: Policy) -> None:
    """Refuse a password that matches one of the account's last ``policy.history`` hashes
    (newest first; the current one included). ``matches`` is the side's own hash check."""
    if policy.history <= 0:
        return
    for n, stored in enumerate(recent_hashes):
        if n >= policy.history:
            break
        if matches(password, stored):
            raise WeakPassword("password_reused",
                               f"a password may not be one of the last {policy.history} used",
                               history=policy.history)
