"""The presale lottery's staff pages, the whole way on the test client: a presale set up and
opened, buyers applying and paying, the freeze with its list hash, the seed entered by two
different people (the same person twice refused, a mismatch starting again), the draw, the
results per lot, the refunds handed to the worker, the seats assigned, the session cancelled
and its applications' refunds shown; an imported result refused naming its line; and who may
do what."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.events import add_price_tier
from cloud.core.audit import audit_log
from cloud.core.jobs import jobs
from cloud.inventory.sessions import cancel_session
from cloud.lottery import applying, cancelling, refunding
from cloud.lottery.tables import presale_applications, presales
from cloud.payments.capturing import place
from cloud.payments.checkout import start_payment
from cloud.payments.offline import OfflineProvider
from cloud.staff.staff import create_staff
from cloud.staff.tables import role_permissions, roles
from cloud.web.web import form_local
from sync.timeutil import utcnow
from tests.cloud.pagekit import PASSWORD, build_hub, post, text

ZONE = "Asia/Shanghai"


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    with h.engine.begin() as conn:
        h.tier = add_price_tier(conn, h.session, "S", "Standard", 28_000,
                                seat_category="std", actor="test")
        h.staff["ticketing"] = create_staff(conn, "ticketing-user", PASSWORD, "ticketing",
                                            actor="test")
    yield h
    h.engine.dispose()


def local(dt) -> str:
    return form_local(dt, ZONE)


def create_presale(client, hub, *, closes_in: timedelta, name: str = "Final presale") -> int:
    now = utcnow()
    r = post(client, "/presales/", {
        "event_id": str(_event_of(hub)), "name": name,
        "opens_at": local(now - timedelta(hours=2)), "closes_at": local(now + closes_in),
        "max_quantity": "2", "buyer_limit": "", "payment_minutes": "15",
        "channels": ["storefront", "booth"]}, page="/presales/")
    assert r.status_code == 303, text(r)
    return int(r.headers["Location"].rsplit("/", 1)[1])


def _event_of(hub) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(sa.text("SELECT event_id FROM sessions WHERE id = :s"),
                            {"s": hub.session}).scalar_one()


def add_lot_and_open(client, hub, presale_id: int, tickets: int) -> None:
    page = f"/presales/{presale_id}"
    r = post(client, f"{page}/lots", {"lot": f"{hub.session}:{hub.tier}",
                                      "tickets": str(tickets)}, page=page)
    assert r.status_code == 303
    assert "Standard" in text(client.get(page))
    r = post(client, f"{page}/open", page=page, follow_redirects=True)
    assert "taking applications" in text(r)


def apply_and_pay(hub, presale_id: int, buyers: int, quantity: int = 1) -> list[str]:
    """Booth buyers' applications inside the window (30 minutes ago), paid at the booth."""
    at = utcnow() - timedelta(minutes=30)
    numbers = []
    with hub.engine.begin() as conn:
        lot_id = conn.execute(sa.text("SELECT id FROM presale_lots WHERE presale_id = :p"),
                              {"p": presale_id}).scalar_one()
        for n in range(buyers):
            a = applying.apply(conn, presale_id, lot_id, quantity, f"booth:buyer{n}", [],
                               channel="booth", actor="staff:booth", now=at)
            started = start_payment(conn, OfflineProvider(), a.order_id, a.amount,
                                    "presale", a.expires_at, at)
            assert place(conn, started.outcome, at).state == "paid"
            numbers.append(a.number)
    return numbers


def presale_row(hub, presale_id: int):
    with hub.engine.connect() as conn:
        return conn.execute(sa.select(presales).where(presales.c.id == presale_id)).first()


def test_the_staff_set_up_freeze_seed_draw_refund_and_assign_a_presale(hub):
    admin = hub.client("admin")
    presale_id = create_presale(admin, hub, closes_in=timedelta(hours=1))
    page = f"/presales/{presale_id}"
    assert "Final presale" in text(admin.get("/presales/"))
    assert 'href="/presales/"' in text(admin.get("/"))  # the nav link
    add_lot_and_open(admin, hub, presale_id, tickets=3)
    apply_and_pay(hub, presale_id, buyers=5)
    # still inside the window: the freeze is refused in the page's words
    r = post(admin, f"{page}/freeze", page=page, follow_redirects=True)
    assert "takes applications until" in text(r)
    with hub.engine.begin() as conn:  # the deadline passes
        conn.execute(sa.update(presales).where(presales.c.id == presale_id)
                     .values(closes_at=utcnow() - timedelta(minutes=1)))
    assert "confirm-freeze" in text(admin.get(f"{page}/confirm/freeze"))
    r = post(admin, f"{page}/freeze", page=f"{page}/confirm/freeze", follow_redirects=True)
    digest = presale_row(hub, presale_id).list_sha256
    assert digest and digest in text(r)
    listing = admin.get(f"{page}/list.txt")
    assert listing.mimetype == "text/plain" and listing.headers["X-Content-SHA256"] == digest
    assert hashlib.sha256(listing.data).hexdigest() == digest
    assert digest[:16] in listing.headers["Content-Disposition"]

    # the seed: a password field; the same person twice is refused; a mismatch starts again
    assert re.search(r'<input type="password" name="seed"', text(admin.get(page)))
    r = post(admin, f"{page}/seed", {"seed": "4711 0815"}, page=page, follow_redirects=True)
    assert "waiting for a second person" in text(r)
    r = post(admin, f"{page}/seed", {"seed": "4711 0815"}, page=page, follow_redirects=True)
    assert "two different people" in text(r)
    second = hub.client("ticketing")
    assert "admin-user entered the seed: waiting for a second person" in text(second.get(page))
    r = post(second, f"{page}/seed", {"seed": "4711 0816"}, page=page, follow_redirects=True)
    assert "the two seeds entered differ" in text(r)
    assert presale_row(hub, presale_id).seed_first_by is None
    post(admin, f"{page}/seed", {"seed": "4711 0815"}, page=page)
    r = post(second, f"{page}/seed", {"seed": "4711 0815"}, page=page, follow_redirects=True)
    assert "the seed is fixed" in text(r) and "admin-user, ticketing-user" in text(r)
    assert presale_row(hub, presale_id).seed is not None

    # the draw, confirmed, with the seat-choice window's end
    confirm = text(second.get(f"{page}/confirm-draw/draw"))
    assert "confirm-draw" in confirm and 'name="choose_closes_at"' in confirm
    until = local(utcnow() + timedelta(days=1))
    r = post(second, f"{page}/draw", {"choose_closes_at": until}, page=page,
             follow_redirects=True)
    row = presale_row(hub, presale_id)
    assert row.state == "drawn" and row.result_sha256 in text(r)
    result = admin.get(f"{page}/result.txt")
    assert hashlib.sha256(result.data).hexdigest() == row.result_sha256
    counts = re.search(r'<tr id="lot-\d+">(.*?)</tr>', text(r), re.S).group(1)
    cells = re.findall(r'<td class="num">([^<]*)</td>', counts)
    assert cells == ["3", "5", "5", "3", "1.67", "0", "2", "0"]  # tickets…refunded

    # the refunds go to the worker
    r = post(admin, f"{page}/refunds", page=page, follow_redirects=True)
    assert "refunds are started" in text(r)
    with hub.engine.connect() as conn:
        job = conn.execute(sa.select(jobs.c.kind, jobs.c.payload)).all()
    assert (refunding.REFUND_JOB, {"presale_id": presale_id}) in [tuple(j) for j in job]

    # seats now: every winner seated
    assert "confirm-assign" in text(admin.get(f"{page}/confirm/assign"))
    r = post(admin, f"{page}/assign", page=page, follow_redirects=True)
    assert "3 winners were given seats" in text(r)
    assert presale_row(hub, presale_id).state == "assigned"
    with hub.engine.connect() as conn:
        states = conn.execute(sa.select(presale_applications.c.state)).scalars().all()
        actions = set(conn.execute(sa.select(audit_log.c.action)).scalars())
    assert sorted(states) == ["lost", "lost", "seated", "seated", "seated"]
    assert {"presale.create", "presale.lot_add", "presale.open", "presale.freeze",
            "presale.seed_first", "presale.seed_mismatch", "presale.seed_fixed",
            "presale.draw", "presale.refunds_started", "presale.assign"} <= actions

    # the session is cancelled: what its applications come to, and their refunds restarted
    with hub.engine.begin() as conn:
        cancel_session(conn, hub.session, "test")
    cancelling.give_up_cancelled(hub.engine)
    shown = text(admin.get(page))
    assert "(cancelled)" in shown
    assert re.search(r'id="cancelled-progress">0 of 2 refunded; 0 asked of the payment '
                     r'provider; 2 waiting', shown)
    assert re.search(r'id="cancelled-others">[^<]*: 3\. [^<]*: 0\.', shown)
    r = post(admin, f"{page}/refunds", {"cancelled": "1"}, page=page, follow_redirects=True)
    assert "applications of the cancelled sessions" in text(r)
    with hub.engine.connect() as conn:
        job = conn.execute(sa.select(jobs.c.kind, jobs.c.payload)).all()
    assert (refunding.REFUND_JOB, {"presale_id": presale_id, "cancelled": True}) in [
        tuple(j) for j in job]
    zh = text(admin.get(page, headers={"Accept-Language": "zh"}))
    assert "已取消的场次" in zh and "2 份中已退款 0 份" in zh


def test_an_imported_result_is_checked_and_a_bad_line_is_named(hub):
    admin = hub.client("admin")
    presale_id = create_presale(admin, hub, closes_in=timedelta(hours=1))
    page = f"/presales/{presale_id}"
    add_lot_and_open(admin, hub, presale_id, tickets=2)
    numbers = apply_and_pay(hub, presale_id, buyers=3)
    with hub.engine.begin() as conn:
        conn.execute(sa.update(presales).where(presales.c.id == presale_id)
                     .values(closes_at=utcnow() - timedelta(minutes=1)))
    post(admin, f"{page}/freeze", page=page)
    assert 'enctype="multipart/form-data"' in text(admin.get(f"{page}/confirm-draw/import"))
    until = local(utcnow() + timedelta(days=1))
    r = post(admin, f"{page}/import", {"result": "not a result\n", "choose_closes_at": until},
             page=page, follow_redirects=True)
    assert "the imported result is refused: line 1" in text(r)
    zh = post(admin, f"{page}/import", {"result": "not a result\n", "choose_closes_at": until},
              page=page, follow_redirects=True, headers={"Accept-Language": "zh"})
    assert "导入的抽签结果被拒绝" in text(zh)
    assert presale_row(hub, presale_id).state == "frozen"
    # the hub's own draw of the list, brought back as a notarised program's file
    from cloud.lottery import draw
    row = presale_row(hub, presale_id)
    drawn = draw.draw(draw.parse_list(row.list_file), row.list_sha256, "notary 1")
    r = post(admin, f"{page}/import", {"result_file": (io.BytesIO(draw.result_file(drawn)),
                                                       "result.txt"),
                                       "choose_closes_at": until}, page=page,
             follow_redirects=True)  # uploaded as a file
    row = presale_row(hub, presale_id)
    assert row.state == "drawn" and row.result_source == "import"
    assert {w.number for w in drawn.wins} <= set(numbers)


def test_a_role_without_presale_draw_cannot_enter_the_seed_and_others_see_nothing(hub):
    with hub.engine.begin() as conn:
        conn.execute(sa.insert(roles).values(name="planner", title_en="Planner",
                                             title_zh="策划", totp_required=False,
                                             built_in=False, position=90))
        conn.execute(sa.insert(role_permissions).values(role="planner",
                                                        permission="presale.manage"))
        create_staff(conn, "planner-user", PASSWORD, "planner", actor="test")
    admin = hub.client("admin")
    presale_id = create_presale(admin, hub, closes_in=timedelta(hours=1))
    page = f"/presales/{presale_id}"
    add_lot_and_open(admin, hub, presale_id, tickets=2)
    with hub.engine.begin() as conn:
        conn.execute(sa.update(presales).where(presales.c.id == presale_id)
                     .values(closes_at=utcnow() - timedelta(minutes=1)))
    planner = hub.client("planner")
    post(planner, f"{page}/freeze", page=page)
    assert presale_row(hub, presale_id).state == "frozen"
    r = post(planner, f"{page}/open", page=page, follow_redirects=True,
             headers={"Accept-Language": "zh"})  # a state refused, in the page's words
    assert "预售当前为“已冻结”：此操作需要它为“草稿”" in text(r)
    assert 'name="seed"' not in text(planner.get(page))
    assert post(planner, f"{page}/seed", {"seed": "1"}, page=page).status_code == 403
    assert planner.get(f"{page}/confirm-draw/draw").status_code == 403
    assert presale_row(hub, presale_id).seed_first_by is None
    sales = hub.client("sales")
    assert sales.get("/presales/").status_code == 403
    assert 'href="/presales/"' not in text(sales.get("/"))


def test_a_refused_presale_is_shown_with_the_form_kept_in_both_languages(hub):
    admin = hub.client("admin")
    now = utcnow()
    form = {"event_id": str(_event_of(hub)), "name": "Backwards",
            "opens_at": local(now), "closes_at": local(now - timedelta(hours=1)),
            "max_quantity": "2", "payment_minutes": "15", "channels": ["storefront"]}
    r = post(admin, "/presales/", form, page="/presales/")
    assert r.status_code == 422 and "closes_at is missing or not valid" in text(r)
    assert 'value="Backwards"' in text(r)
    r = post(admin, "/presales/", {**form, "max_quantity": "x"}, page="/presales/",
             headers={"Accept-Language": "zh"})
    assert r.status_code == 422 and "预售" in text(r)
    assert admin.get("/presales/999").status_code == 404
    assert admin.get("/presales/999/list.txt").status_code == 404
