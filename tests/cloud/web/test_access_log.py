"""The hub's access log line is gunicorn's, built from its own fields only."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger, SafeAtoms

from cloud.web.access_log import AccessLog

ENVIRON = {"REMOTE_ADDR": "10.0.0.7", "REQUEST_METHOD": "POST", "RAW_URI": "/api/v1/x?y=1",
           "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_REFERER": "https://hub.example/",
           "HTTP_USER_AGENT": 'curl "8"', "PATH_INFO": "/api/v1/x", "QUERY_STRING": "y=1",
           "HTTP_AUTHORIZATION": "Bearer secret-token"}


def _line(logger_class, access_log_format: str | None = None) -> str:
    cfg = Config()
    if access_log_format is not None:
        cfg.set("access_log_format", access_log_format)
    logger = logger_class(cfg)
    logger.now = lambda: "[07/Dec/2026:15:00:00 +0000]"
    resp = SimpleNamespace(status="201 CREATED", sent=345,
                           headers=[("Content-Type", "application/json")])
    req = SimpleNamespace(headers=[("X-REQUEST-ID", "abc"), ("USER-AGENT", 'curl "8"')])
    atoms = logger.atoms(resp, req, ENVIRON, timedelta(microseconds=1500))
    return cfg.access_log_format % SafeAtoms(atoms)


def test_the_default_line_is_gunicorns_to_the_character():
    line = _line(AccessLog)
    assert line == _line(Logger)
    assert line.startswith('10.0.0.7 - - [07/Dec/2026:15:00:00 +0000] "POST /api/v1/x?y=1 '
                           'HTTP/1.1" 201 345 "https://hub.example/" "curl \\"8\\""')
    assert "secret-token" not in line


@pytest.mark.parametrize("fmt", ['%(h)s %({x-request-id}i)s %(D)s', '%(m)s %(U)s %(q)s'])
def test_a_format_of_its_own_is_built_as_gunicorn_builds_it(fmt):
    assert _line(AccessLog, fmt) == _line(Logger, fmt)
    assert "-" not in _line(AccessLog, fmt).split()
