"""Send tasks to all holders of a session, on both databases: the buyers area names the
addresses (buyers of live tickets, and a holder with a verified account of their own; refunded,
unpaid and booth orders left out, each address once), and the messaging area writes the task
through the audience the app hands it, by the rule and through the task page."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cloud.app import create_app
from cloud.buyers.accounts import set_email
from cloud.buyers.audience import session_audience
from cloud.buyers.identities import request_verification
from cloud.buyers.tables import buyers
from cloud.core.audit import audit_log
from cloud.core.errors import HubError
from cloud.core.outbox import address_hash, outbox
from cloud.messaging.audiences import SESSION_HOLDERS, Audiences, audience_task
from cloud.messaging.tables import send_tasks
from cloud.payments.capturing import place
from cloud.payments.checkout import start_payment
from cloud.payments.offline import OfflineProvider
from cloud.payments.refund_approval import approve_refund
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import create_order
from cloud.sales.refunds import request_refund
from cloud.staff.staff import create_staff
from tests.cloud.buyers.buyerkit import mark_verified, new_buyer
from tests.cloud.buyers.test_companions import resident_id
from tests.cloud.orderkit import NOW, build
from tests.cloud.pagekit import PASSWORD, SECRET, csrf, post, sign_in, text

A, B, C, D, E = "13800138000", "13900139000", "13700137000", "13600136000", "13500135000"
PARAMS = {"session": "Final", "change": "Gate 3 opens at 18:00"}


@pytest.fixture
def hub(hub_url, key_store):
    h = build(hub_url)
    yield h
    h.engine.dispose()


def _order(h, buyer: str | None, *places, holder=None, pay: bool = True):
    """An order of these seats (zone, row, number) for ``buyer`` (``buyer:<id>``, or a booth's
    order with none), paid offline unless told; its id and its tickets' ids."""
    lines = tuple(LineRequest(seat_id=h.seat(*p), holder=holder if i == 0 else None)
                  for i, p in enumerate(places))
    with h.engine.begin() as conn:
        made = create_order(conn, OrderRequest(h.session, lines, buyer=buyer, actor="clerk"),
                            NOW)
        if not pay:
            return made.order_id, []
        started = start_payment(conn, OfflineProvider(), made.order_id, made.total, "t",
                                made.expires_at, NOW)
        return made.order_id, [t.id for t in place(conn, started.outcome, NOW).tickets]


def _refund(h, order_id: int, ticket_ids: list[int] | None) -> None:
    with h.engine.begin() as conn:
        rid = request_refund(conn, order_id, ticket_ids, "clerk", "", NOW)
        assert approve_refund(conn, rid, "super", NOW) == "succeeded"


def _world(h) -> dict[str, int]:
    """Five accounts and their orders for the session (see each line); the ids by number."""
    ids = {m: new_buyer(h.engine, m) for m in (A, B, C, D, E)}
    person = resident_id(60)
    with h.engine.begin() as conn:
        set_email(conn, ids[B], "b@example.com")
        set_email(conn, ids[C], "c@example.com")
        identity = request_verification(conn, name="王五", doc_type="resident_id",
                                        number=person, now=NOW)
        conn.execute(sa.update(buyers).where(buyers.c.id == ids[E])
                     .values(identity_id=identity))
    mark_verified(h.engine, identity)
    # A: two paid orders (one number, one message); one ticket is held by E, who has an
    # account of their own verified as that document
    _order(h, f"buyer:{ids[A]}", ("A", "2", 1), holder=("王五", "resident_id", person))
    _order(h, f"buyer:{ids[A]}", ("A", "2", 2))
    # B: one of two tickets refunded, the other still live
    b_order, b_tickets = _order(h, f"buyer:{ids[B]}", ("A", "2", 3), ("A", "2", 4))
    _refund(h, b_order, b_tickets[:1])
    # C: paid, then wholly refunded; D: never paid; a booth's order: no account
    c_order, _ = _order(h, f"buyer:{ids[C]}", ("A", "2", 5))
    _refund(h, c_order, None)
    _order(h, f"buyer:{ids[D]}", ("A", "2", 6), pay=False)
    _order(h, None, ("B", "1", 1))
    return ids


def test_the_audience_of_a_session_is_its_live_holders_each_once(hub):
    ids = _world(hub)
    with hub.engine.connect() as conn:
        assert session_audience(conn, hub.session, "sms") == [A, B, E]
        assert session_audience(conn, hub.session, "email") == ["b@example.com"]
        assert session_audience(conn, hub.session, "wechat") == []
        assert session_audience(conn, hub.session + 1, "sms") == []
    # a disabled account is told nothing (as with ticket delivery)
    with hub.engine.begin() as conn:
        conn.execute(sa.update(buyers).where(buyers.c.id == ids[B]).values(state="disabled"))
        assert session_audience(conn, hub.session, "sms") == [A, E]


def _audiences() -> Audiences:
    audiences = Audiences()
    audiences.provide(SESSION_HOLDERS, session_audience)
    return audiences


def test_a_task_to_the_holders_of_a_session_goes_to_exactly_them_and_says_so(hub):
    _world(hub)
    with hub.engine.begin() as conn:
        task_id = audience_task(conn, _audiences(), SESSION_HOLDERS, hub.session,
                                kind="session_changed", params=PARAMS, title="Gate change",
                                actor="staff:1", now=NOW)
    with hub.engine.connect() as conn:
        sent = set(conn.execute(sa.select(outbox.c.to_hash).where(
            outbox.c.task_id == task_id)).scalars())
        assert sent == {address_hash(conn, "sms", m) for m in (A, B, E)}
        task = conn.execute(sa.select(send_tasks)).one()
        assert (task.title, task.recipients) == (
            f"Gate change · session_holders:{hub.session}", 3)
        audited = conn.execute(sa.select(audit_log.c.actor, audit_log.c.after).where(
            audit_log.c.action == "messages.task")).one()
    assert audited.actor == "staff:1"
    assert audited.after["audience"] == f"session_holders:{hub.session}"
    for name, argument, channel, code in (
            ("everyone", hub.session, "sms", "unknown_audience"),
            (SESSION_HOLDERS, hub.session + 99, "sms", "unknown_session"),
            (SESSION_HOLDERS, hub.session, "wechat", "empty_audience"),
            (SESSION_HOLDERS, hub.session, "fax", "bad_recipient")):
        with hub.engine.begin() as conn, pytest.raises(HubError) as e:
            audience_task(conn, _audiences(), name, argument, kind="session_changed",
                          params=PARAMS, channel=channel, now=NOW)
        assert e.value.code == code
    with pytest.raises(ValueError):
        Audiences().provide("everyone", session_audience)


@pytest.fixture
def pages(hub, hub_url):
    app = create_app({"DATABASE_URL": hub_url, "TESTING": True, "SECRET_KEY": SECRET})
    with app.extensions["db"].begin() as conn:
        create_staff(conn, "admin-user", PASSWORD, "admin", actor="test")
    client = app.test_client()
    sign_in(client, "admin-user")
    yield client
    app.extensions["db"].dispose()


def test_the_task_page_sends_to_all_holders_of_a_session_picked(hub, pages):
    _world(hub)
    new = "/messages/tasks/new?kind=session_changed"
    form = text(pages.get(new))
    assert "All holders of a session" in form and "A list typed in" in form
    assert f'<option value="{hub.session}">The Games · Final' in form
    r = post(pages, new, {"title": "Gate change", "channel": "sms", "language": "en",
                          "audience": "session_holders", "session_id": str(hub.session),
                          "recipients": "13000000000", **{f"param_{k}": v
                                                          for k, v in PARAMS.items()}},
             page=new)
    assert r.status_code == 303, text(r)
    page = text(pages.get(r.headers["Location"]))
    assert "0 of 3 finished" in page and "135****5000" in page and "130****0000" not in page
    assert f"Gate change · session_holders:{hub.session}" in text(pages.get("/messages/tasks"))
    # nobody of the session on this channel: refused, saying so, and nothing written
    empty = post(pages, new, {"channel": "wechat", "audience": "session_holders",
                              "session_id": str(hub.session),
                              **{f"param_{k}": v for k, v in PARAMS.items()}}, page=new)
    assert empty.status_code == 422
    assert f"nobody in session_holders:{hub.session} has an address for wechat" in text(empty)
    for bad in ("", "x", "99999"):
        refused = post(pages, new, {"channel": "sms", "audience": "session_holders",
                                    "session_id": bad,
                                    **{f"param_{k}": v for k, v in PARAMS.items()}}, page=new)
        assert refused.status_code == 422 and "no session" in text(refused)
    # a typed list is still a typed list
    typed = post(pages, new, {"channel": "sms", "audience": "list", "recipients": "13000000000",
                              **{f"param_{k}": v for k, v in PARAMS.items()}}, page=new)
    assert typed.status_code == 303
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(send_tasks.c.recipients).order_by(send_tasks.c.id)
                            ).scalars().all() == [3, 1]
    pages.post("/lang", data={"lang": "zh", "next": "/", "csrf_token": csrf(pages, new)})
    assert "某场次的全部持票人" in text(pages.get(new))
