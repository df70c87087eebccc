"""The outbox: a message exists exactly when its cause committed, its recipient and
parameters are sealed, and a replayed event writes no second message."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from cloud.core.outbox import address_hash, enqueue, opened, outbox

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def test_a_message_exists_only_if_its_cause_committed(engine):
    with pytest.raises(RuntimeError), engine.begin() as conn:
        enqueue(conn, kind="login_code", channel="sms", to="138 0013 8000",
                params={"code": "123456"}, now=NOW)
        raise RuntimeError("the cause failed")
    with engine.begin() as conn:
        msg_id = enqueue(conn, kind="login_code", channel="sms", to="138 0013 8000",
                         params={"code": "654321"}, now=NOW)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox)).all()
        assert [r.id for r in rows] == [msg_id]
        row = rows[0]
        assert (row.state, row.attempts, row.channel, row.language) == ("waiting", 0, "sms", "zh")
        assert "13800138000" not in row.sealed_to and "654321" not in row.sealed_params
        assert opened(conn, row) == ("13800138000", {"code": "654321"})
        assert row.to_hash == address_hash(conn, "sms", "13800138000")


def test_a_replayed_event_writes_nothing_twice(engine):
    with engine.begin() as conn:
        first = enqueue(conn, kind="order_paid", channel="email", to="Buyer@Example.COM",
                        params={"order": "A1"}, dedupe_key="order:1:paid", now=NOW)
        again = enqueue(conn, kind="order_paid", channel="email", to="buyer@example.com",
                        params={"order": "A1"}, dedupe_key="order:1:paid", now=NOW)
    assert first is not None and again is None
    with engine.connect() as conn:
        row = conn.execute(sa.select(outbox)).one()
        assert opened(conn, row)[0] == "buyer@example.com"


def test_a_sealed_field_copied_to_another_message_does_not_open(engine):
    with engine.begin() as conn:
        a = enqueue(conn, kind="k", channel="sms", to="13800138000", params={"code": "1"},
                    now=NOW)
        b = enqueue(conn, kind="k", channel="sms", to="13900139000", params={"code": "2"},
                    now=NOW)
        sealed = conn.execute(sa.select(outbox.c.sealed_to).where(outbox.c.id == a)).scalar()
        conn.execute(sa.update(outbox).where(outbox.c.id == b).values(sealed_to=sealed))
    with engine.connect() as conn, pytest.raises(Exception, match="does not open"):
        opened(conn, conn.execute(sa.select(outbox).where(outbox.c.id == b)).one())


def test_unknown_channels_and_languages_are_refused(engine):
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="channel"):
            enqueue(conn, kind="k", channel="fax", to="1", params={}, now=NOW)
        with pytest.raises(ValueError, match="language"):
            enqueue(conn, kind="k", channel="sms", to="1", params={}, language="fr", now=NOW)
