"""Companions on both databases: added with a valid document, sealed, listed masked, one live
row per document, at most N per buyer (and on PostgreSQL two additions racing at the limit do
not both pass), removed by marking so that what was bought for them stays."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.buyers import companions as comp
from cloud.buyers.errors import BuyerError
from cloud.buyers.tables import buyers, companions
from sync.sample import resident_id as _with_check
from tests.cloud.buyers.buyerkit import NOW, new_buyer

OTHER = "13900139000"


def resident_id(n: int) -> str:
    """A valid resident ID number, a different one for each ``n``."""
    return _with_check(f"11010519900101{n:03d}")


def _refused(expected: str, call, *args, **kwargs) -> BuyerError:
    with pytest.raises(BuyerError) as e:
        call(*args, **kwargs)
    assert e.value.code == expected, e.value
    return e.value


def _add(conn, buyer_id, n=0, name="张小三", limit=comp.DEFAULT_LIMIT, **kw):
    return comp.add_companion(conn, buyer_id, name=name, doc_type="resident_id",
                              doc_number=resident_id(n), limit=limit, now=NOW, **kw)


def test_a_companion_is_sealed_and_shown_masked(engine):
    buyer_id = new_buyer(engine)
    number = resident_id(1)
    with engine.begin() as conn:
        added = comp.add_companion(conn, buyer_id, name=" 张小三 ", doc_type="resident_id",
                                   doc_number=number.lower(), now=NOW)
        assert (added.name, added.doc_number) == ("张*三", number[:4] + "*" * 10 + number[-4:])
        row = conn.execute(sa.select(companions)).one()
        assert "张小三" not in row.sealed_name and number not in row.sealed_doc_number
        # their verification is asked at once: the identity is linked, pending
        assert number not in row.doc_hash and row.identity_id == added.identity_id is not None
        assert added.verification == "pending"
        assert comp.opened(conn, row) == ("张小三", number)
        assert comp.list_companions(conn, buyer_id) == [added]
        passport = comp.add_companion(conn, buyer_id, name="John Smith", doc_type="passport",
                                      doc_number="E1234 5678", now=NOW)
        assert (passport.name, passport.doc_number) == ("J*** S****", "E1*****78")
        assert [c.id for c in comp.list_companions(conn, buyer_id)] == [added.id, passport.id]
        assert conn.execute(sa.select(buyers.c.live_companions)).scalar() == 2


def test_a_companion_needs_a_valid_name_and_document_and_is_added_once(engine):
    buyer_id, other = new_buyer(engine), new_buyer(engine, OTHER)
    bad = resident_id(2)[:-1] + ("0" if resident_id(2)[-1] != "0" else "1")
    with engine.begin() as conn:
        _refused("document_bad_check_digit", comp.add_companion, conn, buyer_id, name="李四",
                 doc_type="resident_id", doc_number=bad, now=NOW)
        _refused("document_unknown_type", comp.add_companion, conn, buyer_id, name="李四",
                 doc_type="library_card", doc_number="123", now=NOW)
        for name in ("", "   ", "x" * 201, "bad\x00name", None):
            _refused("companion_name_bad", _add, conn, buyer_id, name=name)
        _add(conn, buyer_id, 3)
        _refused("companion_exists", _add, conn, buyer_id, 3, name="another name")
        # another buyer may add the same person
        _add(conn, other, 3)
        assert conn.execute(sa.select(buyers.c.live_companions).order_by(buyers.c.id)
                            ).scalars().all() == [1, 1]


def test_at_most_n_live_companions_and_a_removed_one_keeps_its_row(engine):
    buyer_id, other = new_buyer(engine), new_buyer(engine, OTHER)
    with engine.begin() as conn:
        first, _second = _add(conn, buyer_id, 4, limit=2), _add(conn, buyer_id, 5, limit=2)
        e = _refused("companion_limit", _add, conn, buyer_id, 6, limit=2)
        assert e.params == {"limit": 2}
        _refused("unknown_companion", comp.remove_companion, conn, other, first.id, NOW)
        comp.remove_companion(conn, buyer_id, first.id, NOW + timedelta(hours=1))
        _refused("unknown_companion", comp.remove_companion, conn, buyer_id, first.id, NOW)
        _refused("unknown_companion", comp.companion_row, conn, buyer_id, first.id)
        # removed, not deleted: whatever was bought for them still names a row
        row = conn.execute(sa.select(companions).where(companions.c.id == first.id)).one()
        assert row.removed_at == NOW + timedelta(hours=1)
        assert comp.opened(conn, row)[1] == resident_id(4)
        # the place is free again, and the same document may come back
        again = _add(conn, buyer_id, 4, limit=2)
        assert again.id != first.id
        _refused("companion_limit", _add, conn, buyer_id, 6, limit=2)
        assert len(comp.list_companions(conn, buyer_id)) == 2
        assert conn.execute(sa.select(buyers.c.live_companions).where(
            buyers.c.id == buyer_id)).scalar() == 2


def test_the_default_limit_is_ten(engine):
    buyer_id = new_buyer(engine)
    with engine.begin() as conn:
        for n in range(10):
            _add(conn, buyer_id, 10 + n)
        _refused("companion_limit", _add, conn, buyer_id, 30)


def _waiting_on_lock(engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")).scalar())


@pytest.mark.parametrize("hub_url", ["postgresql"], indirect=True)
def test_on_postgresql_two_additions_at_the_limit_cannot_both_pass(engine):
    """One addition takes the last place and holds its transaction open; a second, on another
    connection, waits on the buyer's row and, once the first commits, is refused: the count
    never passes the limit, however the two interleave."""
    buyer_id = new_buyer(engine)
    with engine.begin() as conn:
        _add(conn, buyer_id, 40, limit=2)
    got: list = []

    def second() -> None:
        try:
            with engine.begin() as conn:
                got.append(_add(conn, buyer_id, 41, limit=2))
        except BaseException as e:  # noqa: BLE001 - checked below
            got.append(e)

    first = engine.connect()
    t = threading.Thread(target=second, daemon=True)
    try:
        first.begin()
        _add(first, buyer_id, 42, limit=2)
        t.start()
        deadline = time.monotonic() + 30
        while not _waiting_on_lock(engine):  # the order of events, not a duration, is tested
            assert time.monotonic() < deadline and t.is_alive(), got
            time.sleep(0.01)
        first.commit()
    finally:
        first.rollback()
        first.close()
        if t.ident is not None:
            t.join(30)
    assert len(got) == 1 and isinstance(got[0], BuyerError), got
    assert got[0].code == "companion_limit"
    with engine.connect() as conn:
        assert len(comp.list_companions(conn, buyer_id)) == 2
        assert conn.execute(sa.select(buyers.c.live_companions)).scalar() == 2
