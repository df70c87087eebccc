"""Typed query arguments for the hub's pages: the one place a page reads ``?name=value``.

A value that is not what the page expects is refused with 400 and a message naming the
argument, never passed on to the database (where a 20-digit id overflows) or to ``int()``
(which takes ``²`` for a digit and raises). An absent or empty argument gives the default.
"""

from __future__ import annotations

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
