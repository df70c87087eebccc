"""The ledger at full size, on PostgreSQL.

- ``entries_per_s``: journal entries of three postings (a provider's clearing account
  debited, an organiser's guarded payable and the platform's revenue credited), each posted
  by ``post()`` in a transaction of its own, by ``--writers`` processes at once for
  ``--seconds``; each entry picks one of ``--partners`` organisers, so writers meet on the
  same payable rows as a real day's sales do.
- ``settlement_1m_s``: a whole settlement run (``run_settlement``) over ``--sales`` sales
  split between the organisers and the platform, with 2 % of them refunded in full later: the
  entries and postings are loaded by SQL first (not timed), the run is timed.

    .venv/bin/python bench/ledger.py [postgresql://…] [--writers CPUs] [--seconds 10]
        [--sales 1000000] [--partners 100]

Without a URL it makes a scratch database on $WICKET_TEST_PG (bench/benchkit.py). Prints
``entries_per_s``, ``settlement_1m_s``, ``settled_lines`` and ``statements``, one per line;
progress goes to stderr. Targets: entries_per_s ≥ 2,000; settlement_1m_s ≤ 60.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from benchkit import note, scratch_hub  # noqa: E402

from cloud.core.db import init_db, make_engine  # noqa: E402
from cloud.ledger import chart  # noqa: E402
from cloud.ledger.journal import Leg, post, trial_balance  # noqa: E402
from cloud.ledger.partners import create_partner  # noqa: E402
from cloud.ledger.settlement import run_settlement, statements  # noqa: E402
from cloud.ledger.tables import ledger_accounts, settlement_items  # noqa: E402

T0 = datetime(2026, 7, 1, tzinfo=UTC)
PROVIDER = "wechat"
FEE_BP = 500  # the platform's 5 %
REFUND_EVERY = 50  # one sale in 50 is refunded


def set_up(url: str, partners: int) -> list[int]:
    """The chart's accounts and ``partners`` organisers (T+7), their ids."""
    init_db(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        for code in (chart.clearing(PROVIDER), chart.PLATFORM_REVENUE, chart.BANK):
            chart.ensure(conn, code, now=T0)
        ids = [create_partner(conn, f"ORG{n:04d}", f"Organiser {n}", "organiser", 7, "bench",
                              T0) for n in range(partners)]
    engine.dispose()
    return ids


# entries per second

def _writer(url: str, worker: int, partner_ids: list[int], start_at: float,
            seconds: float) -> tuple[int, float]:
    """Post entries from ``start_at`` for ``seconds``: how many committed in that time, and
    the writer's own CPU seconds meanwhile."""
    engine = make_engine(url)
    rng = random.Random(worker)
    posted = 0
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = start_at + seconds
    conn = engine.connect()  # as a worker process holds its connection
    cpu = time.process_time()
    while time.time() < deadline:
        amount = rng.randint(1, 500) * 100
        fee = amount * FEE_BP // 10_000
        legs = [Leg(chart.clearing(PROVIDER), amount, "clearing"),
                Leg(chart.payable(rng.choice(partner_ids)), fee - amount, "organiser"),
                Leg(chart.PLATFORM_REVENUE, -fee, "platform")]
        with conn.begin():  # one transaction per entry, on the writer's own connection
            post(conn, f"bench:{worker}:{posted}", "payment", legs,
                 now=datetime.now(UTC))
        if time.time() <= deadline:
            posted += 1
    cpu = time.process_time() - cpu
    conn.close()
    engine.dispose()
    return posted, cpu


def entries_per_s(url: str, partner_ids: list[int], writers: int, seconds: float) -> float:
    start_at = time.time() + 2.0  # every writer connected and waiting
    with multiprocessing.get_context("spawn").Pool(writers) as pool:
        done = pool.starmap(_writer, [(url, w, partner_ids, start_at, seconds)
                                      for w in range(writers)])
    posted = sum(n for n, _ in done)
    cpu = sum(c for _, c in done)
    note(f"{writers} writers posted {posted} entries in {seconds:.0f}s "
         f"({[n for n, _ in done]}); the writers' own CPU: "
         f"{1000 * cpu / max(posted, 1):.2f} ms per entry on {os.cpu_count()} CPUs")
    return posted / seconds


# a million sales, settled

LOAD = (
    # the sales, one a second from T0, to the organisers in turn
    """INSERT INTO ledger_entries (key, kind, state, currency, amount, memo, payment_id,
           provider, reference, actor, created_at, posted_at)
       SELECT 'bench-sale:' || g, 'payment', 'posted', 'CNY', 1000 + (g % 97) * 100, '', g,
              :provider, 'T' || g, 'bench', :t0 + g * interval '1 second',
              :t0 + g * interval '1 second'
       FROM generate_series(1, :sales) AS g""",
    # the refunds, each a day after its sale
    """INSERT INTO ledger_entries (key, kind, state, currency, amount, memo, payment_id,
           provider, reference, actor, created_at, posted_at)
       SELECT 'bench-refund:' || e.payment_id, 'refund', 'posted', 'CNY', e.amount, '',
              e.payment_id, :provider, 'R' || e.payment_id, 'bench',
              e.posted_at + interval '1 day', e.posted_at + interval '1 day'
       FROM ledger_entries e
       WHERE e.key LIKE 'bench-sale:%' AND e.payment_id % :refund_every = 0""",
    # their postings: clearing, the organiser's part, the platform's fee (negated on refunds)
    """INSERT INTO ledger_postings (entry_id, account_id, amount, part)
       SELECT e.id, a.account_id, s.sign * a.amount, a.part
       FROM ledger_entries e
       CROSS JOIN LATERAL (SELECT CASE e.kind WHEN 'payment' THEN 1 ELSE -1 END AS sign,
                                  e.amount * :fee_bp / 10000 AS fee) s
       CROSS JOIN LATERAL (VALUES
           (:clearing, e.amount, 'clearing'),
           ((:payables)[1 + e.payment_id % :partners], s.fee - e.amount, 'organiser'),
           (:platform, -s.fee, 'platform')) AS a(account_id, amount, part)
       WHERE e.key LIKE 'bench-%'""",
    # the guarded payables' balances, as post() keeps them
    """UPDATE ledger_accounts a SET balance = a.balance + t.total
       FROM (SELECT account_id, -sum(amount) AS total FROM ledger_postings
             WHERE part = 'organiser' AND entry_id IN (
                 SELECT id FROM ledger_entries WHERE key LIKE 'bench-%')
             GROUP BY account_id) t
       WHERE a.id = t.account_id""",
)


BENCH_TABLES = ("ledger_entries", "ledger_postings", "ledger_accounts", "settlement_items",
                "settlement_statements")


def load_sales(url: str, partner_ids: list[int], sales: int) -> None:
    """The sales and refunds, by SQL; then VACUUM ANALYZE, and no autovacuum from then on
    (a worker started on the fresh rows would run during the timed run, and hold the
    scratch database when it is dropped)."""
    engine = make_engine(url)
    with engine.begin() as conn:
        for table in BENCH_TABLES:
            conn.exec_driver_sql(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
    with engine.begin() as conn:
        ids = {r.code: r.id for r in conn.execute(
            sa.select(ledger_accounts.c.code, ledger_accounts.c.id))}
        params = {"provider": PROVIDER, "t0": T0, "sales": sales, "fee_bp": FEE_BP,
                  "refund_every": REFUND_EVERY, "partners": len(partner_ids),
                  "clearing": ids[chart.clearing(PROVIDER)],
                  "platform": ids[chart.PLATFORM_REVENUE],
                  "payables": [ids[chart.payable(p)] for p in partner_ids]}
        for n, statement in enumerate(LOAD, start=1):
            t = time.perf_counter()
            conn.execute(sa.text(statement), params)
            note(f"load step {n}/{len(LOAD)} in {time.perf_counter() - t:.1f}s")
        assert trial_balance(conn) == {"CNY": 0}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")  # as autovacuum would have, days after the sales
    engine.dispose()


def settle(url: str, sales: int) -> tuple[float, int, int]:
    """The timed run: seconds, lines settled, statements written."""
    engine = make_engine(url)
    as_of = T0 + timedelta(seconds=sales) + timedelta(days=9)  # every sale due, T+7

    def progress(done: int, total: int) -> None:
        if done % 10 == 0 or done == total:
            note(f"settled {done}/{total} partners")

    t = time.perf_counter()
    run_id = run_settlement(engine, as_of, "bench", as_of, progress=progress)
    took = time.perf_counter() - t
    with engine.begin() as conn:
        lines = conn.execute(sa.select(sa.func.count()).select_from(settlement_items)).scalar()
        written = statements(conn, run_id=run_id)
        net = sum(s.net for s in written)
        owed = -conn.execute(sa.text(
            "SELECT sum(p.amount) FROM ledger_postings p JOIN ledger_entries e "
            "ON e.id = p.entry_id WHERE e.key LIKE 'bench-%' AND p.part = 'organiser'")).scalar()
        assert net == owed, (net, owed)  # every fen owed for the loaded sales is stated
    engine.dispose()
    return took, lines, len(written)


def measure(url: str, args) -> None:
    partner_ids = set_up(url, args.partners)
    rate = entries_per_s(url, partner_ids, args.writers, args.seconds)
    t = time.perf_counter()
    load_sales(url, partner_ids, args.sales)
    note(f"loaded {args.sales} sales in {time.perf_counter() - t:.1f}s")
    took, lines, written = settle(url, args.sales)
    print(f"entries_per_s: {rate:.0f}")
    print(f"settlement_1m_s: {took:.2f}")
    print(f"settled_lines: {lines}")
    print(f"statements: {written}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url", nargs="?", help="an empty PostgreSQL database (default: a scratch "
                                          "one on $WICKET_TEST_PG)")
    p.add_argument("--writers", type=int, default=max(2, os.cpu_count() or 1))
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--sales", type=int, default=1_000_000)
    p.add_argument("--partners", type=int, default=100)
    args = p.parse_args()
    if args.url:
        measure(args.url, args)
    else:
        with scratch_hub("wicket-bench-ledger") as url:
            measure(url, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
