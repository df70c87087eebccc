"""The sandbox SMS gateway's HTTP server (``wicket-hub sms-sandbox``, state in
``cloud/messaging/sms_sandbox.py``):

- ``POST /sms/send`` and ``POST /wechat/template/send`` ``{"messages": [...]}`` with
  ``Authorization: Bearer <api key>``: one answer per message (accepted, duplicate, refused);
- ``GET /``: the phone's inbox, for the demo;
- control, for tests: ``GET /_sandbox/health``, ``GET /_sandbox/received``,
  ``GET /_sandbox/wait?count=N&receipts=N&timeout=S``, ``POST /_sandbox/faults
  {"faults": ["fail"|"timeout"|"hold", ...]}`` (one per coming batch), ``POST
  /_sandbox/release`` (answer the held batches).
"""

from __future__ import annotations

import logging
import signal
import threading

from flask import Flask, jsonify, render_template_string, request
from werkzeug.serving import make_server

from cloud.messaging.sms_sandbox import Gateway

log = logging.getLogger(__name__)
HOLD_S = 600.0
INBOX = """<!doctype html><html><head><meta charset="utf-8"><title>SMS sandbox</title></head>
<body><h1>SMS sandbox</h1><p>{{ received|length }} messages, {{ duplicates }} duplicates
dropped, {{ receipts_sent }} receipts sent.</p><table><tr><th>channel</th><th>to</th>
<th>text</th><th>receipt</th></tr>{% for r in received|reverse %}<tr><td>{{ r.channel }}</td>
<td>{{ r.to }}</td><td>{{ r.text }}</td><td>{{ r.receipt }}</td></tr>{% endfor %}</table>
</body></html>"""


def create_sandbox_app(gw: Gateway) -> Flask:
    app = Flask("cloud.messaging.sms_sandbox")

    def send(channel: str):
        if not gw.authorised(request.headers.get("Authorization")):
            return jsonify(error="unauthorized"), 401
        fault = gw.next_fault()
        if fault == "fail":
            return jsonify(error="the gateway is unavailable"), 503
        if fault == "timeout":
            gw.released.wait(HOLD_S)
            return jsonify(error="held"), 504
        body = request.get_json(silent=True) or {}
        items = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return jsonify(error="messages: a list"), 400
        answers = gw.take(channel, [i for i in items if isinstance(i, dict)])
        if fault == "hold":  # taken; the sender never hears it
            gw.released.wait(HOLD_S)
        return jsonify(results=answers)

    app.add_url_rule("/sms/send", "sms", lambda: send("sms"), methods=["POST"])
    app.add_url_rule("/wechat/template/send", "wechat", lambda: send("wechat"),
                     methods=["POST"])

    @app.get("/")
    def inbox():
        return render_template_string(INBOX, **gw.snapshot())

    @app.get("/_sandbox/health")
    def health():
        return jsonify(ok=True)

    @app.get("/_sandbox/received")
    def received():
        return jsonify(gw.snapshot())

    @app.get("/_sandbox/wait")
    def wait():
        a = request.args
        ok = gw.wait(int(a.get("count", 0)), int(a.get("receipts", 0)),
                     float(a.get("timeout", 30)))
        return jsonify(ok=ok, **gw.snapshot())

    @app.post("/_sandbox/faults")
    def faults():
        try:
            gw.inject(list((request.get_json(silent=True) or {}).get("faults", [])))
        except ValueError as e:
            return jsonify(error=str(e)), 400
        return jsonify(ok=True)

    @app.post("/_sandbox/release")
    def release():
        gw.released.set()
        gw.released.clear()
        return jsonify(ok=True)

    return app


def serve(gw: Gateway, port: int, host: str = "127.0.0.1") -> None:
    """Run the gateway until SIGTERM or SIGINT (exit status 0)."""
    server = make_server(host, port, create_sandbox_app(gw), threaded=True)

    def stop(signum, frame) -> None:
        gw.released.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    gw.start()
    log.info("SMS sandbox on http://%s:%s", host, port)
    try:
        server.serve_forever()
    finally:
        gw.stop()
        server.server_close()
