"""The ledger's command: ``wicket-hub settle`` runs a settlement as of a moment (each partner
up to its own T+N cut-off), or resumes a run that stopped, and prints each statement;
``cloud/cli.py`` parses its arguments."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from cloud.core.db import current_revision, make_engine
from sync.timeutil import utcnow

ACTOR = "wicket-hub"


def _say(text: str) -> None:
    sys.stderr.write(f"wicket-hub: {text}\n")


def _yuan(fen: int) -> str:
    return f"{'-' if fen < 0 else ''}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def cmd_settle(args) -> int:
    from cloud.ledger import settlement

    try:
        as_of = (datetime.fromisoformat(args.as_of) if args.as_of else utcnow())
    except ValueError:
        _say(f"--as-of: {args.as_of!r} is not a moment (YYYY-MM-DD or YYYY-MM-DDTHH:MM)")
        return 2
    as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    engine = make_engine(args.db, args.data_key)
    try:
        if current_revision(engine) is None:
            _say("the database has no hub schema: run `wicket-hub init` first")
            return 2

        def progress(done: int, total: int) -> None:
            _say(f"settled {done} of {total} partners")

        if args.resume:
            run_id = settlement.resume_run(engine, args.resume, utcnow())
        else:
            run_id = settlement.run_settlement(engine, as_of, args.actor, utcnow(), progress)
        with engine.connect() as conn:
            made = settlement.statements(conn, run_id=run_id)
    finally:
        engine.dispose()
    sys.stdout.write(f"settlement run {run_id}: {len(made)} statements\n")
    for s in made:
        sys.stdout.write(f"  statement {s.id} partner {s.partner_id}: {s.lines} lines, "
                         f"net {_yuan(s.net)} {s.currency}, {s.state}\n")
    return 0


def add_parsers(sub) -> None:
    s = sub.add_parser("settle", help="run a settlement: a statement per partner of what is "
                                      "owed up to its T+N cut-off (docs/ledger.md)")
    s.add_argument("--as-of", help="the run's moment (default: now); each partner is settled "
                                   "up to this less its settle days")
    s.add_argument("--resume", type=int, metavar="RUN", help="finish a run that stopped")
    s.add_argument("--actor", default=ACTOR, help="who prepares the statements (another "
                                                  "person marks them paid)")
    s.set_defaults(func=cmd_settle)
