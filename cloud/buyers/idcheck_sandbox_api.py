"""The verification sandbox's HTTP server (``wicket-hub idcheck-sandbox``): the wire's
``POST /v1/verify`` and the control API tests and the demo use:

- ``POST /_sandbox/people`` ``{"number", "name"}``: register a person (the truth it checks);
- ``POST /_sandbox/script`` ``{"number", "behaviours": [...]}``: how the next calls for that
  number are answered (``cloud/buyers/idcheck_sandbox.py``);
- ``POST /_sandbox/release``: end the calls held by ``silent``;
- ``GET /_sandbox/requests``: every call the hub made (numbers masked), for counting;
- ``GET /_sandbox/health``.
"""

from __future__ import annotations

import logging
import signal
import threading

from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

from cloud.buyers import idcheck_wire as wire
from cloud.buyers.idcheck_sandbox import BEHAVIOURS, Sandbox

log = logging.getLogger(__name__)


def create_sandbox_app(sb: Sandbox) -> Flask:
    app = Flask("cloud.buyers.idcheck_sandbox")

    @app.post(wire.PATH)
    def verify():
        reply = sb.verify(request.get_data(cache=False), request.headers.get(wire.APP_HEADER),
                          request.headers.get(wire.SIGNATURE_HEADER))
        return Response(reply.body, status=reply.status, headers=reply.headers)

    @app.get("/_sandbox/health")
    def health():
        return jsonify(ok=True, behaviours=BEHAVIOURS)

    @app.post("/_sandbox/people")
    def people():
        body = request.get_json(force=True)
        sb.register(str(body["number"]), str(body["name"]))
        return jsonify(ok=True)

    @app.post("/_sandbox/script")
    def script():
        body = request.get_json(force=True)
        try:
            sb.script(str(body["number"]), list(body.get("behaviours", [])))
        except (ValueError, KeyError) as e:
            return jsonify(error=str(e)), 400
        return jsonify(ok=True)

    @app.post("/_sandbox/release")
    def release():
        sb.released.set()     # wakes every held call; later ones are held again
        sb.released.clear()
        return jsonify(ok=True)

    @app.get("/_sandbox/requests")
    def requests_made():
        with sb.lock:
            return jsonify(requests=list(sb.requests))

    return app


def serve(publish: str, port: int, host: str = "127.0.0.1", slow_s: float = 0.2,
          public_url: str | None = None) -> None:
    """Run the sandbox until SIGTERM or SIGINT (exit status 0); its public key, the app id and
    secret it issued and its address are written to ``publish``."""
    sb = Sandbox(publish, public_url or f"http://{host}:{port}", slow_s)
    server = make_server(host, port, create_sandbox_app(sb), threaded=True)

    def stop(signum, frame) -> None:
        sb.released.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    log.info("identity verification sandbox on %s", sb.url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
