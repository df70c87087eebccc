"""``wicket-hub refund-session <id>``: a cancelled session's paid orders refunded in batches
(:func:`cloud.payments.refund_approval.refund_session`), with a progress line on standard
error and the report as JSON on standard output. Run again after a stop, it does only what
is left."""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import TextIO

from cloud.core.db import make_engine
from cloud.core.errors import HubError
from cloud.payments.refund_approval import BulkReport, refund_session, remaining

# Test hook: SIGKILL the bulk refund after this many batches, as a power cut would stop it.
KILL_REFUND_AFTER = "WICKET_HUB_TEST_KILL_REFUND_AFTER"


def run(db: str, data_key: str | None, session_id: int, batch: int,
        out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """The command: 0 when every order is refunded (or asked of its provider), 1 when some
    could not be (the report names them), 2 when it cannot start."""
    if batch < 1:
        print("wicket-hub: --batch must be 1 or more", file=err)
        return 2
    kill_after = int(os.environ.get(KILL_REFUND_AFTER) or 0)
    engine = make_engine(db, data_key)
    try:
        total = max(remaining(engine, session_id), 1)

        def after_batch(report: BulkReport) -> None:
            done = report.orders + len(report.failures)
            err.write(f"\rrefunding orders: {done}/{total} ({report.amount} fen, "
                      f"{len(report.failures)} failed)")
            err.flush()
            if kill_after and report.batches >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

        try:
            report = refund_session(engine, session_id, batch=batch, after_batch=after_batch)
        except HubError as e:
            print(f"wicket-hub: {e}", file=err)
            return 2
    finally:
        engine.dispose()
    err.write("\n")
    print(json.dumps(report.as_json(), sort_keys=True), file=out)
    return 1 if report.failures else 0
