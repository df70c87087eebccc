"""What the public may see: sessions on sale and not over, their windows, how much is left in
words, and the search by text, venue, day (the venue's) and discipline — on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.errors import CatalogError
from cloud.catalog.events import create_event
from cloud.catalog.tables import events
from cloud.inventory.sessions import cancel_session, edit_session
from cloud.storefront import browse
from sync.timeutil import utcnow


def _ids(cards):
    return [c.session_id for c in cards]


def test_only_sessions_on_sale_not_cancelled_and_not_over_are_public(shop):
    with shop.engine.connect() as conn:
        shown = _ids(browse.upcoming(conn))
        assert shown == [shop.final, shop.heats, shop.postponed]
        assert browse.session_card(conn, shop.hidden) is None
        cards = {c.session_id: c for c in browse.upcoming(conn)}
        assert cards[shop.postponed].postponed and not cards[shop.final].postponed
        over = cards[shop.final].ends_at + timedelta(seconds=1)
        assert shop.final not in _ids(browse.upcoming(conn, now=over))
    with shop.engine.begin() as conn:
        cancel_session(conn, shop.heats)
    with shop.engine.connect() as conn:
        assert shop.heats not in _ids(browse.upcoming(conn))


def test_cards_say_the_cheapest_price_and_the_sale_window(shop):
    with shop.engine.connect() as conn:
        cards = {c.session_id: c for c in browse.upcoming(conn)}
    assert cards[shop.final].from_amount == 38000 and cards[shop.final].currency == "CNY"
    assert cards[shop.final].window.state == "open"
    assert cards[shop.heats].window.state == "soon"
    assert cards[shop.heats].window.opens_at > utcnow()
    with shop.engine.begin() as conn:
        edit_session(conn, shop.final, sale_closes_at=utcnow() - timedelta(minutes=1))
    with shop.engine.connect() as conn:
        assert browse.session_card(conn, shop.final).window.state == "closed"


def test_a_tier_window_is_narrowed_by_its_session():
    now = datetime(2027, 1, 1, tzinfo=UTC)
    session = browse.window(now - timedelta(days=1), now + timedelta(days=1), now)
    assert session.state == "open"
    later = browse.narrowed(session, now + timedelta(hours=2), None, now)
    assert later.state == "soon" and later.opens_at == now + timedelta(hours=2)
    assert later.closes_at == now + timedelta(days=1)
    assert browse.narrowed(session, None, now - timedelta(hours=1), now).state == "closed"
    assert browse.narrowed(session, now - timedelta(days=5), None, now).opens_at == \
        now - timedelta(days=1)


@pytest.mark.parametrize("free, sellable, level", [
    (0, 100, "sold_out"), (-1, 5, "sold_out"), (1, 100, "few"), (10, 100, "few"),
    (11, 100, "plenty"), (100, 1000, "few"), (101, 1000, "plenty"), (4, 4, "few")])
def test_what_is_left_in_words(free, sellable, level):
    assert browse.level(free, sellable) == level


def test_search_by_text_is_literal_and_case_blind(shop):
    with shop.engine.connect() as conn:
        assert _ids(browse.search(conn, browse.Search(text="100%"))) == [shop.final]
        assert _ids(browse.search(conn, browse.Search(text="swimming gala"))) == \
            [shop.heats, shop.postponed]
        assert _ids(browse.search(conn, browse.Search(text="olympic"))) == \
            [shop.final, shop.heats, shop.postponed]
        # % and _ are letters to a buyer, not patterns
        assert browse.search(conn, browse.Search(text="1_0")) == []
        assert browse.search(conn, browse.Search(text="%")) != []
        assert _ids(browse.search(conn, browse.Search(text="%%"))) == []
        assert browse.search(conn, browse.Search(text="Rehearsal")) == []


def test_search_by_venue_and_discipline(shop):
    with shop.engine.connect() as conn:
        assert _ids(browse.search(conn, browse.Search(discipline="athletics"))) == [shop.final]
        assert _ids(browse.search(conn, browse.Search(venue_id=shop.venue,
                                                      discipline="swimming"))) == \
            [shop.heats, shop.postponed]
        assert browse.search(conn, browse.Search(venue_id=shop.venue + 99)) == []
        offered = browse.choices(conn)
    assert offered["disciplines"] == ["athletics", "swimming"]
    assert offered["venues"] == [(shop.venue, "Olympic Sports Centre")]


def test_search_by_day_is_the_venue_day(shop):
    with shop.engine.begin() as conn:
        card = browse.session_card(conn, shop.final)
        # 23:30 in Shanghai is 15:30 UTC the same day; 00:30 is 16:30 UTC the day before
        late = datetime.combine(card.starts_at.date(), datetime.min.time(), UTC) + \
            timedelta(hours=15, minutes=30)
        conn.execute(sa.text("UPDATE sessions SET starts_at = :s, ends_at = :e WHERE id = :i"),
                     {"s": late, "e": late + timedelta(hours=2), "i": shop.final})
    local_day = late.date()
    with shop.engine.connect() as conn:
        assert shop.final in _ids(browse.search(conn, browse.Search(day=local_day)))
        assert shop.final not in _ids(browse.search(
            conn, browse.Search(day=local_day + timedelta(days=1))))
    with shop.engine.begin() as conn:
        after = late + timedelta(hours=1)  # 00:30 the next day in Shanghai
        conn.execute(sa.text("UPDATE sessions SET starts_at = :s WHERE id = :i"),
                     {"s": after, "i": shop.final})
    with shop.engine.connect() as conn:
        assert shop.final in _ids(browse.search(
            conn, browse.Search(day=local_day + timedelta(days=1))))
        assert shop.final not in _ids(browse.search(conn, browse.Search(day=local_day)))
        assert browse.Search().empty() and not browse.Search(day=date(2027, 1, 1)).empty()


def test_an_event_discipline_is_kept_and_bounded(shop):
    with shop.engine.begin() as conn:
        made = create_event(conn, "JUDO", "Judo", discipline="  judo ")
        assert conn.execute(sa.select(events.c.discipline).where(events.c.id == made)
                            ).scalar_one() == "judo"
        blank = create_event(conn, "NONE", "No discipline", discipline=" ")
        assert conn.execute(sa.select(events.c.discipline).where(events.c.id == blank)
                            ).scalar_one() is None
        with pytest.raises(CatalogError) as refused:
            create_event(conn, "LONG", "Long", discipline="x" * 41)
    assert refused.value.code == "bad_discipline"
