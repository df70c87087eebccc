"""``python -m tools.demo``: the demo's command line (see :mod:`tools.demo.run`)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from tools.demo.children import ROOT
from tools.demo.run import Demo, DemoError, say


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.demo",
                                description="Run the whole Wicket system on this machine.")
    p.add_argument("--dir", type=Path, default=ROOT / "demo",
                   help="where the demo keeps its databases and logs (made afresh)")
    p.add_argument("--for", dest="duration", type=float,
                   help="stop after this many seconds (from when everything runs) and print "
                   "a summary")
    p.add_argument("--tickets", type=int, default=3000,
                   help="tickets issued for the demo event (default %(default)s)")
    p.add_argument("--film-tickets", type=int, default=12,
                   help="valid tickets the lane camera shows (default %(default)s)")
    args = p.parse_args(argv)
    if args.film_tickets < 6:
        p.error("--film-tickets must be at least 6")
    demo = Demo(args.dir, args.tickets, args.film_tickets)

    def on_signal(signum, frame) -> None:
        demo.stop_requested.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    failed = False
    try:
        demo.run(args.duration)
    except DemoError as e:
        # a step cut short by Ctrl-C during the set-up is no failure
        if not demo.stop_requested.is_set():
            print(f"demo: {e}", file=sys.stderr)
            failed = True
    except KeyboardInterrupt:
        pass
    interrupted = demo.stop_requested.is_set()
    demo.shop.stop_buyers()
    if demo.started_at and not interrupted:
        demo.flush_entries()
        demo.settle_orders()
    summary = None
    if demo.started_at:
        try:
            summary = (demo.edge_counts(), demo.hub_counts())
        except Exception as e:  # noqa: BLE001 - the summary must not keep the processes up
            print(f"demo: no summary: {e}", file=sys.stderr)
    say("stopping …")
    codes = demo.stop()
    unclean = {name: code for name, code in codes.items() if code != 0}
    for name, code in codes.items():
        state = "stopped cleanly" if code == 0 else (
            "died on its own" if code is None and demo.children[name].proc.returncode
            is not None else f"exit {code}")
        say(f"  {name:9} pid {demo.children[name].pid}: {state}")
    if summary is not None:
        edge, hub = summary
        say(f"entries_at_edge: {edge['entries']}")
        say(f"admitted_at_edge: {edge['admitted']}")
        say(f"attendance_at_hub: {hub['attendance']}")
        say(f"processes_clean: {'yes' if not unclean else 'no'}")
        say(f"orders_paid: {hub['orders_paid']}")
        say(f"partner_orders: {hub['partner_orders']}")
        say(f"buyers_verified: {hub['buyers_verified']}")
        say(f"companions_verified: {hub['companions_verified']}")
        say(f"entries_at_hub: {hub['entries']}")
        say(f"refund_refused_at_gate: {'yes' if edge['refund_refused'] else 'no'}")
    return 1 if failed or unclean else 0


if __name__ == "__main__":
    sys.exit(main())
