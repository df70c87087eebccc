"""`wicket-edge create-user` and `wicket-edge web`'s refusals, run as a technician would, and
the web settings of the configuration file."""

from __future__ import annotations

import datetime
import logging
import subprocess
import sys
import types
from pathlib import Path

import pytest

from edge import config as config_mod
from edge import db as db_mod
from edge import staff

ROOT = Path(__file__).resolve().parents[3]


def run(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "edge.toml"
    assert run("--config", str(path), "init").returncode == 0
    return path


def test_create_user_reads_the_password_from_stdin(cfg):
    r = run("--config", str(cfg), "create-user", "--role", "admin", "--must-change", "boss",
            stdin="Harbour-lamp-2026\n")
    assert r.returncode == 0, r.stderr
    assert "created admin account 'boss'" in r.stdout and "Harbour" not in r.stdout
    conn = db_mod.connect(config_mod.load(cfg).database)
    user = staff.login(conn, "boss", "Harbour-lamp-2026")
    assert user.role == "admin" and user.must_change_password
    r = run("--config", str(cfg), "create-user", "--role", "gate", "weakling", stdin="abc\n")
    assert r.returncode == 2 and "at least 10 characters" in r.stderr
    r = run("--config", str(cfg), "create-user", "--role", "gate", "boss",
            stdin="Another-pass-99\n")
    assert r.returncode == 2 and "already an account" in r.stderr


def test_web_refuses_a_missing_or_old_database(tmp_path):
    path = tmp_path / "edge.toml"
    config_mod.write_new(path, {"holder_key": "x" * 43 + "=", "database": "none.db"})
    r = run("--config", str(path), "web", "--bind", "127.0.0.1:0")
    assert r.returncode == 2 and "run `wicket-edge init`" in r.stderr
    db = db_mod.open_db(tmp_path / "old.db")
    db_mod.migrate(db, stop_before="m006_web")
    db.close()
    path.write_text(path.read_text().replace("none.db", "old.db"))
    r = run("--config", str(path), "web", "--bind", "127.0.0.1:0")
    assert r.returncode == 2 and "needs an upgrade" in r.stderr


def test_web_settings_defaults_and_refusals(tmp_path):
    path = tmp_path / "edge.toml"
    path.write_text('holder_key = "k"\n')
    c = config_mod.load(path)
    assert (c.web_bind, c.web_workers, c.web_threads, c.web_idle_minutes, c.web_session_hours,
            c.password_max_age_days) == ("127.0.0.1:8000", 2, 8, 30, 12, 180)
    for text, message in (('web_bind = "8000"', "HOST:PORT"),
                          ('web_bind = "0.0.0.0:99999"', "HOST:PORT"),
                          ("web_workers = 0", "at least 1"),
                          ("web_threads = 0", "at least 1"),
                          ('web_idle_minutes = "30"', "must be a int"),
                          ("password_max_age_days = -1", "0 or more")):
        path.write_text(f'holder_key = "k"\n{text}\n')
        with pytest.raises(config_mod.ConfigError, match=message):
            config_mod.load(path)
    path.write_text('holder_key = "k"\nweb_bind = "0.0.0.0:8080"\npassword_max_age_days = 0\n')
    c = config_mod.load(path)
    assert c.web_bind == "0.0.0.0:8080" and c.password_max_age_days == 0


def test_the_access_log_skips_only_successful_handheld_traffic():
    from gunicorn.config import Config
    from gunicorn.http.wsgi import Response

    from edge.web.cli import _access_log_class

    logged = []
    cfg = Config()
    cfg.set("accesslog", "-")
    log = _access_log_class()(cfg)
    log.access_log.handlers[:] = []
    log.access_log.addHandler(type("H", (logging.Handler,), {
        "emit": lambda self, record: logged.append(record.getMessage())})())

    def answer(method, path, status):
        req = types.SimpleNamespace(method=method, path=path, query="", version=(1, 1),
                                    headers=[], uri=path)
        resp = Response(req, sock=None, cfg=log.cfg)
        resp.status, resp.status_code, resp.headers, resp.sent = status, int(status[:3]), [], 10
        log.access(resp, req, {"REMOTE_ADDR": "10.0.0.7", "REQUEST_METHOD": method,
                               "RAW_URI": path, "SERVER_PROTOCOL": "HTTP/1.1"},
                   datetime.timedelta(milliseconds=3))

    answer("POST", "/api/v1/scan", "200 OK")
    answer("POST", "/api/v1/scans", "200 OK")
    answer("POST", "/api/v1/heartbeat", "200 OK")
    assert logged == []
    answer("POST", "/api/v1/scan", "401 UNAUTHORIZED")
    answer("POST", "/api/v1/scans", "413 REQUEST ENTITY TOO LARGE")
    answer("POST", "/api/v1/pair", "201 CREATED")
    answer("GET", "/admin/", "200 OK")
    assert len(logged) == 4
    assert [line.split('"')[1] for line in logged] == [
        "POST /api/v1/scan HTTP/1.1", "POST /api/v1/scans HTTP/1.1", "POST /api/v1/pair HTTP/1.1",
        "GET /admin/ HTTP/1.1"]


def test_a_worker_with_more_connections_than_threads_lets_another_take_the_next(monkeypatch):
    from gunicorn.workers.gthread import ThreadWorker

    from edge.web import cli

    waits = []
    monkeypatch.setattr("time.sleep", waits.append)

    def accepted(self, listener):
        self.nr_conns += 1

    monkeypatch.setattr(ThreadWorker, "accept", accepted)
    worker = cli._worker_class().__new__(cli._worker_class())
    worker.cfg = type("Cfg", (), {"threads": 2})()
    worker.nr_conns = 0
    for _ in range(4):
        worker.accept(None)
    assert worker.nr_conns == 4
    assert waits == [cli.ACCEPT_YIELD_S] * 2  # the third and fourth: more than its 2 threads
