"""The sandbox's HTTP server (``wicket-hub payments-sandbox``): the providers' APIs
(``sandbox_wire.py``), the buyer's pay page, and the control API under ``/_sandbox/`` that
tests use to inject faults and to wait for what the sandbox did:

- ``POST /_sandbox/faults`` ``{"faults": [...], "out_trade_no": optional}``: for that trade,
  or the next one opened (``cloud/payments/sandbox.py`` ``FAULTS``);
- ``POST /_sandbox/pay/<out_trade_no>`` ``{"result": "pay"|"fail"}``: the buyer's click
  (answers the trade's state: a trade no longer waiting, a closed one too, is left as it is);
- ``POST /_sandbox/forget``: forget every trade and refund (statements list only later ones);
- ``POST /_sandbox/release``: answer the calls held by ``timeout_after_commit``;
- ``GET /_sandbox/requests``: every call the hub made (trade and refund numbers, amounts as
  sent, whether the signature held);
- ``GET /_sandbox/deliveries?out_trade_no=``: every notification and its attempts;
- ``GET /_sandbox/wait?out_trade_no=&acked=N&attempts=N&settled=1&timeout=S``: answers when
  the trade's notifications reach that (``ok`` false if the time ran out).
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from flask import Flask, Response, abort, jsonify, render_template, request
from werkzeug.serving import make_server

from cloud.payments import sandbox_wire
from cloud.payments.sandbox import FAULTS, Sandbox

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def _reply(sb: Sandbox, answer) -> Response:
    if answer.hold:     # committed; the answer waits to be released (the caller times out)
        sb.released.wait(sb.hold_timeout)
    return Response(answer.body, status=answer.status, headers=answer.headers)


def _target() -> str:
    return request.full_path.rstrip("?") if request.query_string else request.path


def create_sandbox_app(sb: Sandbox) -> Flask:
    app = Flask("cloud.payments.sandbox", template_folder=str(TEMPLATES))
    app.extensions["sandbox"] = sb

    @app.route("/v3/<path:rest>", methods=["GET", "POST"])
    def wechat(rest: str):
        body = request.get_data(cache=False)
        return _reply(sb, sandbox_wire.wechat(sb, request.method, "/v3/" + rest, _target(),
                                              request.headers, body, request.args))

    @app.route("/gateway.do", methods=["GET", "POST"])
    def gateway():
        params = {**request.args.to_dict(), **request.form.to_dict()}
        return _reply(sb, sandbox_wire.alipay(sb, params))

    @app.get("/_sandbox/bills/<token>")
    def alipay_bill(token: str):
        if token not in sb.bills:
            abort(404)
        return Response(sb.bills[token], content_type="application/zip")

    @app.route("/pay/<out_trade_no>", methods=["GET", "POST"])
    def pay_page(out_trade_no: str):
        trade = sb.trades.get(out_trade_no) or abort(404)
        status = 200
        if request.method == "POST":
            trade = sb.pay(out_trade_no, "pay" if request.form.get("result") == "pay" else "fail")
            # a trade the merchant closed cannot be paid: the click is refused
            status = 409 if trade.state == "CLOSED" else 200
        return render_template("payments/sandbox_pay.html", trade=trade,
                               yuan=f"{trade.amount // 100}.{trade.amount % 100:02d}"), status

    _control(app, sb)
    return app


def _control(app: Flask, sb: Sandbox) -> None:
    @app.get("/_sandbox/health")
    def health():
        return jsonify(ok=True, faults=FAULTS)

    @app.post("/_sandbox/faults")
    def faults():
        body = request.get_json(force=True)
        try:
            sb.inject(list(body.get("faults", [])), body.get("out_trade_no"))
        except (ValueError, KeyError) as e:
            return jsonify(error=str(e)), 400
        return jsonify(ok=True)

    @app.post("/_sandbox/pay/<out_trade_no>")
    def pay(out_trade_no: str):
        if out_trade_no not in sb.trades:
            abort(404)
        result = (request.get_json(silent=True) or {}).get("result", "pay")
        return jsonify(state=sb.pay(out_trade_no, result).state)

    @app.post("/_sandbox/forget")
    def forget():
        sb.forget()
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

    @app.get("/_sandbox/deliveries")
    def deliveries():
        with sb.dispatcher.cond:
            found = [d.as_json() for d in sb.dispatcher.of(request.args.get("out_trade_no"))]
        return jsonify(deliveries=found)

    @app.get("/_sandbox/wait")
    def wait():
        args = request.args
        acked, attempts = int(args.get("acked", 0)), int(args.get("attempts", 0))
        settled = args.get("settled") == "1"

        def reached(found) -> bool:
            return (sum(d.acked for d in found) >= acked
                    and sum(len(d.attempts) for d in found) >= attempts
                    and (not settled or all(d.done for d in found)))

        ok = sb.dispatcher.wait(reached, args.get("out_trade_no"),
                                float(args.get("timeout", 30)))
        with sb.dispatcher.cond:
            found = [d.as_json() for d in sb.dispatcher.of(args.get("out_trade_no"))]
        return jsonify(ok=ok, deliveries=found)


def serve(hub_keys: str, publish: str, port: int, host: str = "127.0.0.1",
          time_scale: float = 0.001, public_url: str | None = None) -> None:
    """Run the sandbox until it is stopped (its own process: ``wicket-hub payments-sandbox``):
    SIGTERM or SIGINT ends it cleanly (exit status 0), as the demo stops its processes."""
    sb = Sandbox(hub_keys, publish, public_url or f"http://{host}:{port}", time_scale)
    server = make_server(host, port, create_sandbox_app(sb), threaded=True)

    def stop(signum, frame) -> None:  # serve_forever returns once another thread asks it
        threading.Thread(target=server.shutdown, daemon=True).start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    sb.dispatcher.start()
    log.info("payment sandbox on %s", sb.base_url)
    try:
        server.serve_forever()
    finally:
        sb.dispatcher.stop()
        server.server_close()
