"""``wicket-edge web``: the local web pages behind gunicorn, the production WSGI server.

Its own process (and systemd unit): it shares nothing with the gate runtime and the sync
agent but the database. Binds ``web_bind`` from the configuration (``127.0.0.1:8000`` unless
set), or ``--bind``; over HTTPS with ``web_cert`` and ``web_key`` unless the bind is a loopback
address or ``web_tls = "off"`` (see edge/tls.py). While the appliance has no admin it prints a one-time setup code that the
first-run page asks for, so a box reachable from the venue network cannot be claimed by
whoever finds it first.
"""

from __future__ import annotations

import argparse
import sys

from edge import config as config_mod
from edge import db as db_mod
from edge import staff as staff_mod
from edge import tls
from sync.diskfault import guard

# Answered successfully, these are the handheld API's steady traffic: every scan is an entry
# with its device already, and a log line each would cost the appliance as much as deciding it.
# Their refusals and errors, and every other request, are logged.
QUIET_ENDPOINTS = ("scan", "scans", "heartbeat")


def _access_log_class():
    """gunicorn's access log without the successful handheld traffic (gunicorn is imported
    only by the server, so the class is made when it starts)."""
    from gunicorn.glogging import Logger

    from edge.web.context import API_PREFIX

    quiet = frozenset(API_PREFIX + name for name in QUIET_ENDPOINTS)

    class AccessLog(Logger):
        def access(self, resp, req, environ, request_time):
            code = resp.status_code  # None when the status line was not a number
            if req.path in quiet and code is not None and code < 400:
                return
            super().access(resp, req, environ, request_time)

    return AccessLog


# How long a worker process that already has more connections than threads waits after taking
# one more, so that a less busy worker takes the next: handhelds that connect at the same moment
# (a shift starting, the Wi-Fi coming back) would otherwise all land in the first worker to wake,
# which then serves them all on one core while the other worker idles.
ACCEPT_YIELD_S = 0.002


def _worker_class():
    """gunicorn's threaded worker, spreading connections over the worker processes."""
    import time

    from gunicorn.workers.gthread import ThreadWorker

    class Worker(ThreadWorker):
        def accept(self, listener):
            super().accept(listener)
            if self.nr_conns > self.cfg.threads:
                time.sleep(ACCEPT_YIELD_S)

    return Worker


def serve(config_path: str | None, bind: str | None = None, workers: int | None = None,
          threads: int | None = None) -> int:
    from gunicorn.app.base import BaseApplication

    AccessLog = _access_log_class()  # noqa: N806 - a class
    WorkerClass = _worker_class()  # noqa: N806 - a class

    from edge.web.app import create_app
    from edge.web.auth import new_setup_code

    cfg = config_mod.load(config_path)
    if not cfg.database.exists():
        print(f"wicket-edge: {cfg.database}: no database yet; run `wicket-edge init`",
              file=sys.stderr)
        return 2
    db = db_mod.open_db(cfg.database)
    try:
        pending = list(db_mod.migrations.pending(db))
    finally:
        db.close()
    if pending:
        print(f"wicket-edge: {cfg.database}: the database needs an upgrade; run "
              "`wicket-edge init`", file=sys.stderr)
        return 2
    bind = bind or cfg.web_bind
    use_tls = tls.serves_tls(cfg.web_tls, bind)
    scheme = "https" if use_tls else "http"
    if use_tls:
        try:
            cert = tls.describe(cfg.web_cert)
        except tls.TlsError as e:
            print(f"wicket-edge: {e}; run `wicket-edge init` to make a self-signed one, or set "
                  "web_cert and web_key (or web_tls = \"off\" for plain HTTP)", file=sys.stderr)
            return 2
        if not cfg.web_key.exists():
            print(f"wicket-edge: {cfg.web_key}: the key of {cfg.web_cert} is missing",
                  file=sys.stderr)
            return 2
    conn = db_mod.connect(cfg.database)
    try:
        if not staff_mod.has_admin(conn):
            code = new_setup_code(conn)
            print(f"wicket-edge: no admin yet: open {scheme}://{bind}/first-run and give the "
                  f"setup code {code}", flush=True)
    finally:
        conn.close()
    # the session cookie is Secure whenever the request came over TLS (see edge.web.app)
    app_config = {"EDGE_CONFIG": str(cfg.path)}

    class EdgeWebServer(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers or cfg.web_workers)
            self.cfg.set("worker_class", WorkerClass)
            self.cfg.set("threads", threads or cfg.web_threads)
            self.cfg.set("accesslog", "-")
            self.cfg.set("logger_class", AccessLog)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("proc_name", "wicket-edge-web")
            # no runtime control socket: unused here, and its default path is shared by every
            # gunicorn of the user, so two servers on one box would fight over it
            self.cfg.set("control_socket_disable", True)
            if use_tls:
                self.cfg.set("certfile", str(cfg.web_cert))
                self.cfg.set("keyfile", str(cfg.web_key))

        def load(self):
            return create_app(app_config)

    print(f"wicket-edge: serving the appliance pages on {scheme}://{bind}", flush=True)
    if use_tls:
        print(f"wicket-edge: certificate SHA-256 fingerprint {cert.fingerprint}", flush=True)
    EdgeWebServer().run()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="wicket-edge web",
                                description="Serve the appliance's local web pages.")
    p.add_argument("--config", help="configuration file (default: $WICKET_CONFIG or "
                   f"{config_mod.DEFAULT_PATH})")
    p.add_argument("--bind", help="HOST:PORT (default: web_bind from the configuration)")
    p.add_argument("--workers", type=int, help="worker processes (default: web_workers)")
    p.add_argument("--threads", type=int, help="threads per worker (default: web_threads)")
    args = p.parse_args(argv)

    try:
        return guard("wicket-edge web", lambda: serve(args.config, args.bind, args.workers,
                                                      args.threads),
                     lambda: config_mod.disk_paths(args.config))
    except config_mod.ConfigError as e:
        print(f"wicket-edge: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
