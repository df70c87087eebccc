"""Typed query arguments for the hub's pages: the one place a page reads ``?name=value``.

A value that is not what the page expects is refused with 400 and a message naming the
argument, never passed on to the database (where a 20-digit id overflows) or to ``int()``
(which takes ``²`` for a digit and raises). An absent or empty argument gives the default.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import request
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest

from sync.websafe import plain_text, whole_number

MAX_ID = 2**31 - 1  # the largest id either database stores


class BadArgument(BadRequest):
    """A query argument the page cannot use; the description names it."""


def query_int(name: str, default: int | None = None, lo: int = 1, hi: int = MAX_ID
              ) -> int | None:
    """``?name=`` as a whole number from ``lo`` to ``hi``."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    number = whole_number(raw, lo, hi)
    if number is None:
        raise BadArgument(_("The address asks for %(name)s=%(value)s: a whole number from "
                            "%(lo)s to %(hi)s is expected.", name=name, value=raw[:40],
                            lo=lo, hi=hi))
    return number


def query_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    """``?name=`` as one of ``choices``."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if raw not in choices:
        raise BadArgument(_("The address asks for %(name)s=%(value)s: one of %(choices)s is "
                            "expected.", name=name, value=raw[:40], choices=", ".join(choices)))
    return raw


def query_text(name: str, max_length: int = 200) -> str:
    """``?name=`` as free text (a search), printable and at most ``max_length`` characters."""
    raw = request.args.get(name, "").strip()
    if not plain_text(raw, max_length):
        raise BadArgument(_("The address asks for %(name)s with text that is too long or holds "
                            "control characters (at most %(n)s characters).", name=name,
                            n=max_length))
    return raw


def query_time(name: str) -> datetime | None:
    """``?name=`` as a UTC moment: a date (``2027-08-01``, its midnight) or a date and time
    (``2027-08-01T19:30``); None when absent. An offset, if given, is honoured."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        if len(raw) > 32 or not raw[:4].isascii() or not raw[:4].isdigit():
            raise ValueError(raw)
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise BadArgument(_("The address asks for %(name)s=%(value)s: a date (2027-08-01) or a "
                            "date and time in UTC (2027-08-01T19:30) is expected.", name=name,
                            value=raw[:40])) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
