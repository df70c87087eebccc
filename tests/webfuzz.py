"""Hostile query strings for every GET route of a Flask app, shared by the edge and hub tests.

The walk learns which query arguments each route reads by recording every name the view looks
up in ``request.args`` (a recording parameter class on the app's request class), so it follows
the code as it changes: no list of names to keep up to date. Each name read is then sent each
hostile value, alone and repeated, and every answer must be below 500.

A route is also sent names it never reads (:data:`COMMON`): what reaches it of those comes
through the raw query string (``request.full_path`` in a link back, the sign-in form's next
page), whatever the name. So of the common names a route neither reads nor takes with all its
arguments (iterating them, ``to_dict()``), one carries the hostile values, not each of them:
the others would repeat the same requests under another name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlencode

from flask import Flask
from werkzeug.datastructures import ImmutableMultiDict

# Names every route is sent even when it never reads them (the typical ones of a page).
COMMON = ("view", "page", "lang")
HOSTILE = ("x", "-1", "0", "99999999999999999999", "-99999999999999999999", "1e309", "nan",
           "inf", "1.5", "²", "１２", " 7", "abc", "<script>alert(1)</script>", "\x00",
           "1\x00", "2026-13-45T25:61:00Z", "9999-12-31T23:59:59+14:00", "%", "../../etc/passwd",
           "\u202e", "'; DROP TABLE staff; --", "A" * 20000)

_read: set[str] = set()
# recorded when a view takes the arguments as a whole (iterates them, copies them to a dict):
# it may read any name sent
EVERY = "\x00every name"


class _RecordingArgs(ImmutableMultiDict):
    """Query arguments that remember every name looked up, and whether all were taken."""

    def __getitem__(self, key):
        _read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None, type=None):  # noqa: A002 - MultiDict's signature
        _read.add(key)
        return super().get(key, default, type)

    def getlist(self, key, type=None):  # noqa: A002
        _read.add(key)
        return super().getlist(key, type)

    def __contains__(self, key):
        _read.add(key)
        return super().__contains__(key)

    def __iter__(self):
        _read.add(EVERY)
        return super().__iter__()

    def keys(self):
        _read.add(EVERY)
        return super().keys()

    def values(self):
        _read.add(EVERY)
        return super().values()

    def items(self, multi=False):
        _read.add(EVERY)
        return super().items(multi)

    def lists(self):
        _read.add(EVERY)
        return super().lists()

    def listvalues(self):
        _read.add(EVERY)
        return super().listvalues()

    def to_dict(self, flat=True):
        _read.add(EVERY)
        return super().to_dict(flat)


def record_reads(app: Flask) -> None:
    class RecordingRequest(app.request_class):
        parameter_storage_class = _RecordingArgs

    app.request_class = RecordingRequest


def queries(names: Iterable[str]) -> Iterable[str]:
    for name in sorted(names):
        for value in HOSTILE:
            yield urlencode({name: value})
        yield urlencode([(name, "1"), (name, "x"), (name, "")])


def fuzz(app: Flask, client, paths: dict[str, str],
         headers: Callable[[str], dict] = lambda path: {}) -> list[str]:
    """Send every path its hostile query strings; the answers of 500 and above, as
    ``"STATUS PATH?QUERY"``. ``paths`` maps each GET rule to a concrete path."""
    record_reads(app)
    failures = []
    for path in sorted(paths.values()):
        _read.clear()
        first = client.get(path, headers=headers(path))
        assert first.status_code < 500, f"{first.status_code} {path}"
        # of the common names the route does not read, the first stands in for the others
        unread = sorted(set(COMMON) - _read)
        names = _names_read(set(COMMON) - set(unread[1:]))
        done: set[str] = set()
        while names - done:  # a hostile value may lead the view to read further names
            batch = names - done
            done |= batch
            for query in queries(batch):
                _read.clear()
                try:  # a test app passes a view's exception on instead of answering 500
                    status = client.get(f"{path}?{query}", headers=headers(path)).status_code
                except Exception as e:  # noqa: BLE001 - every one is a finding
                    status = f"500 ({type(e).__name__}: {str(e)[:80]})"
                if not isinstance(status, int) or status >= 500:
                    failures.append(f"{status} {path}?{query[:100]}")
                names = _names_read(names)
    return failures


def _names_read(names: set[str]) -> set[str]:
    """``names`` and those the last request read; every common name if it took all."""
    return names | (_read - {EVERY}) | (set(COMMON) if EVERY in _read else set())


def concrete_paths(app: Flask, values: dict[str, str], skip: tuple[str, ...] = ()) -> dict:
    """Each GET rule of ``app`` with its arguments filled from ``values`` (by
    ``"endpoint.name"``, else by name); a rule with an argument not in ``values`` is an error,
    so a new route cannot slip past."""
    paths = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in skip:
            continue
        args = {}
        for a in rule.arguments:
            value = values.get(f"{rule.endpoint}.{a}", values.get(a))
            assert value is not None, f"{rule.rule}: no sample value for {a}"
            args[a] = value
        paths[rule.rule] = rule.build(args, append_unknown=False)[1]
    return paths
