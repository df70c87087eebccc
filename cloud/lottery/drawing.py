"""The draw and what it decides.

The draw is :func:`cloud.lottery.draw.draw`, a pure function of the frozen list and the seed;
or the result of an external notarised draw program is imported, checked against the frozen
list first (cloud/lottery/draw.py ``parse_result``). Either way the result is kept with its
SHA-256 and, in the same transaction:

* the winners' applications become ``won`` (their order, paid, awaits seats) with their
  place in the draw order, every other frozen application ``lost`` (refunded in batches:
  cloud/lottery/refunding.py);
* the free seats of each lot's tier are kept for the presale (``presale:<id>``) until the
  seat-choice window closes, so nothing sold elsewhere meanwhile takes a winner's seat;
* each buyer is told, by SMS through the messaging outbox (and on the site).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from cloud.buyers.accounts import profile
from cloud.core.outbox import enqueue
from cloud.inventory.seats import end_reservations, keep_free_seats
from cloud.lottery import draw
from cloud.lottery.errors import LotteryError
from cloud.lottery.presales import lots, move, presale
from cloud.lottery.tables import presale_applications
from sync.timeutil import utcnow

log = logging.getLogger(__name__)

RESULT_KIND = "presale_result"
KEEP_AFTER_CHOICE = timedelta(days=1)  # seats stay kept this long after the window, for
# the assignment to run


def customer_of(presale_id: int) -> str:
    """The name the presale's kept seats are reserved for."""
    return f"presale:{presale_id}"


def _frozen(conn: sa.Connection, presale_id: int):
    p = presale(conn, presale_id, lock=True)
    if p.state != "frozen":
        raise LotteryError("presale_state", state=p.state, action="the draw", needs="frozen",
                           field="presale_id")
    return p, draw.parse_list(p.list_file)


def _choice_window(p, choose_closes_at: datetime, now: datetime) -> None:
    if not isinstance(choose_closes_at, datetime) or choose_closes_at <= now:
        raise LotteryError("bad_presale", field="choose_closes_at")


def run_draw(conn: sa.Connection, presale_id: int, actor: str, choose_closes_at: datetime,
             now: datetime | None = None) -> str:
    """Draw with the fixed seed; the result's SHA-256."""
    now = now or utcnow()
    p, frozen = _frozen(conn, presale_id)
    _choice_window(p, choose_closes_at, now)
    if p.seed is None:
        raise LotteryError("presale_state", state="frozen without a seed", action="the draw",
                           needs="frozen with its seed fixed by two people", field="seed")
    result = draw.draw(frozen, p.list_sha256, p.seed)
    data = draw.result_file(result)
    return _accept(conn, p, result.wins, data, "draw", actor, choose_closes_at, now)


def import_result(conn: sa.Connection, presale_id: int, actor: str, text: bytes,
                  choose_closes_at: datetime, now: datetime | None = None) -> str:
    """Accept the result of an external notarised draw once checked against the frozen list
    (only its applications, with their lots and quantities, within each lot's tickets); the
    result's SHA-256."""
    now = now or utcnow()
    p, frozen = _frozen(conn, presale_id)
    _choice_window(p, choose_closes_at, now)
    try:
        wins = draw.parse_result(text, frozen)
    except draw.DrawError as e:
        raise LotteryError("bad_result", detail=str(e), field="result") from None
    return _accept(conn, p, wins, text, "import", actor, choose_closes_at, now)


def _accept(conn: sa.Connection, p, wins, data: bytes, source: str, actor: str,
            choose_closes_at: datetime, now: datetime) -> str:
    a = presale_applications.c
    ranks: dict[int, int] = {}
    rows = []
    for w in wins:
        ranks[w.lot_id] = ranks.get(w.lot_id, 0) + 1
        rows.append({"n": w.number, "r": ranks[w.lot_id]})
    if rows:
        conn.execute(sa.update(presale_applications).where(
            a.number == sa.bindparam("n"), a.presale_id == p.id, a.state == "applied")
            .values(state="won", rank=sa.bindparam("r")), rows)
    conn.execute(sa.update(presale_applications).where(
        a.presale_id == p.id, a.state == "applied").values(state="lost", reason="not drawn"))
    kept = _keep_seats(conn, p.id, choose_closes_at + KEEP_AFTER_CHOICE, now)
    digest = draw.result_hash(data)
    move(conn, p.id, "frozen", "drawn", actor, "draw", result_source=source,
         result_sha256=digest, result_file=data, drawn_at=now, drawn_by=actor,
         choose_closes_at=choose_closes_at)
    told = tell_results(conn, p.id, now)
    log.info("presale %s drawn (%s): %s winners, %s seats kept, %s told, result %s", p.id,
             source, len(rows), kept, told, digest)
    return digest


def _keep_seats(conn: sa.Connection, presale_id: int, until: datetime, now: datetime) -> int:
    """Reserve the free seats of each lot's tier for the presale; how many."""
    return sum(keep_free_seats(conn, lot.session_id, lot.category, customer_of(presale_id),
                               until, now) for lot in lots(conn, presale_id))


def release_kept(conn: sa.Connection, presale_id: int) -> int:
    """The presale's kept seats not sold go back to everyone."""
    return end_reservations(conn, customer_of(presale_id))


def tell_results(conn: sa.Connection, presale_id: int, now: datetime) -> int:
    """An SMS to each buyer of a drawn application (won or lost), once (deduplicated)."""
    told = 0
    lot_names = {x.id: f"{x.session} · {x.tier}" for x in lots(conn, presale_id)}
    for r in conn.execute(sa.select(presale_applications.c.number,
                                    presale_applications.c.buyer,
                                    presale_applications.c.lot_id,
                                    presale_applications.c.state).where(
            presale_applications.c.presale_id == presale_id,
            presale_applications.c.state.in_(("won", "lost")))
            .order_by(presale_applications.c.id)):
        if not r.buyer.startswith("buyer:"):
            continue
        me = profile(conn, int(r.buyer.removeprefix("buyer:")))
        if me.state != "active":
            continue
        if enqueue(conn, kind=RESULT_KIND, channel="sms", to=me.mobile,
                   params={"application": r.number, "session": lot_names[r.lot_id],
                           "state": r.state}, language=me.language,
                   dedupe_key=f"presale-result:{r.number}", now=now) is not None:
            told += 1
    return told
