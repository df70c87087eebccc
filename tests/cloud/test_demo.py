import json
from datetime import timedelta

import sqlalchemy as sa

from cloud import cli
from cloud.core.changes import changes_since, open_changes
from cloud.core.db import init_db, make_engine
from cloud.demo import PRESALE_CLOSES, PRESALE_TIERS
from cloud.sales.tables import tickets
from sync.changes import parse_change
from sync.timeutil import utcnow


def test_load_demo_builds_a_venue_whose_allowlist_the_edge_accepts(hub_url, capsys):
    init_db(hub_url)
    assert cli.main(["--db", hub_url, "load-demo", "--tickets", "600"]) == 0
    out = capsys.readouterr().out
    assert "650 tickets issued" in out
    assert "demo presale 1: freeze and draw it at /presales/1" in out
    seats = int(out.split(": ")[1].split(" seats")[0])
    assert 19_900 <= seats <= 20_000
    engine = make_engine(hub_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tickets)
                            .where(tickets.c.holder_id.is_not(None))).scalar() == 600
        changes = open_changes(conn, changes_since(conn, 1, 0, limit=100_000))  # as served
    engine.dispose()
    for change in changes:
        parse_change(change)
    _the_demo_presale_is_drawn_once_it_closes(hub_url)
    assert cli.main(["--db", hub_url, "load-demo"]) == 2
    assert "loaded already" in capsys.readouterr().err


def _the_demo_presale_is_drawn_once_it_closes(hub_url):
    from cloud.lottery import drawing, freezing
    from cloud.lottery.views import lot_counts

    engine = make_engine(hub_url)
    later = utcnow() + PRESALE_CLOSES + timedelta(seconds=1)
    try:
        with engine.begin() as conn:
            freezing.freeze(conn, 1, "staff:1", later)
            assert freezing.enter_seed(conn, 1, "staff:1", "demo 42", later) == "first"
            assert freezing.enter_seed(conn, 1, "staff:2", "demo 42", later) == "fixed"
            drawing.run_draw(conn, 1, "staff:1", later + timedelta(days=1), later)
            counts = lot_counts(conn, 1)
    finally:
        engine.dispose()
    assert [c["applications"] for c in counts] == [a for *_, a in PRESALE_TIERS]
    for c, (*_, in_draw, _apps) in zip(counts, PRESALE_TIERS, strict=True):
        assert 0 < c["drawn"] <= min(in_draw, c["applied"])
    assert counts[0]["ratio"] > 1 and counts[0]["drawn"] < counts[0]["applied"]  # asked for
    # several times over: some are not drawn


def test_a_dump_of_the_demo_hub_holds_no_clear_document_number_or_name(hub_url, capsys):
    """The demo's holders, opened with the data key, appear nowhere in clear in the database
    (the SQLite file's bytes, or pg_dump)."""
    from cloud.sales.holders import holder
    from cloud.sales.tables import holders
    from tests.cloud.test_seal_migration import _database_bytes

    init_db(hub_url)
    assert cli.main(["--db", hub_url, "load-demo", "--tickets", "120"]) == 0
    engine = make_engine(hub_url)
    with engine.connect() as conn:
        people = [holder(conn, i) for i in conn.execute(sa.select(holders.c.id)).scalars()]
    engine.dispose()
    assert len(people) == 120
    dump = _database_bytes(hub_url)
    assert [h.doc_number for h in people if h.doc_number.encode() in dump] == []
    assert [h.name for h in people if h.name.encode() in dump
            or json.dumps(h.name)[1:-1].encode() in dump] == []


def test_the_demo_has_a_distributor_a_contract_customer_and_a_booth_that_sell(hub_url, tmp_path,
                                                                              capsys):
    """Channels and distribution (issue 20): what load-demo makes, then the demo run's
    sign-ins and key (tools/demo/channels.py), a confirmed order of the distributor at its
    agreed price and a representative's booking paid by bank transfer."""
    from cloud.catalog.tables import products
    from cloud.channels import accounts, booths, customers, ordering, partner_terms
    from cloud.channels.api_keys import list_keys
    from cloud.channels.channels import channel_by_code
    from cloud.channels.customer_orders import Booking, book, confirm_payment
    from cloud.channels.products_admin import stock_for
    from cloud.channels.tables import channels, contract_customers
    from cloud.demo import (
        AGREED_PRICE,
        ALL_DAY,
        BOOTH,
        CONTRACT_TOTAL,
        CREDIT_LIMIT,
        CUSTOMER,
        CUSTOMER_QUOTA,
        DAILY_STOCK,
        DAY_TICKET,
        DISTRIBUTOR,
        STOCK_DAYS,
        TOP_UP,
        WARN_BELOW,
    )
    from cloud.inventory import seats as inventory
    from cloud.ledger.tables import partners
    from cloud.staff.tables import staff
    from sync.timeutil import CHINA
    from tools.demo.channels import (
        CLERK,
        DESK,
        PORTAL_USER,
        REP_USER,
        ChannelsDemo,
        paid_order,
        partner_orders,
    )

    init_db(hub_url)
    assert cli.main(["--db", hub_url, "load-demo", "--tickets", "60"]) == 0
    capsys.readouterr()
    engine = make_engine(hub_url)
    now = utcnow()
    today = now.astimezone(CHINA).date()
    try:
        with engine.begin() as conn:
            sunny = conn.execute(sa.select(partners).where(partners.c.code == DISTRIBUTOR[0])
                                 ).one()
            product = conn.execute(sa.select(products).where(products.c.code == DAY_TICKET[0])
                                   ).one()
            assert (sunny.name, sunny.kind) == DISTRIBUTOR[1:]
            contact = partner_terms.profile(conn, sunny.id)["contact"]
            assert contact["phone"] == "138****8100"  # sealed, shown masked
            assert partner_terms.bound_products(conn, sunny.id, now) == [product.id]
            assert partner_terms.price_at(conn, sunny.id, product.id, at=now) == AGREED_PRICE
            assert AGREED_PRICE < product.amount == DAY_TICKET[2]
            assert [d["capacity"] for d in stock_for(conn, product.id, today, STOCK_DAYS + 1)
                    ] == [DAILY_STOCK] * STOCK_DAYS + [0]
            money = accounts.balances(conn, sunny.id)
            assert (money["prepaid"], money["credit_limit"], money["warn_below"]) == (
                TOP_UP, CREDIT_LIMIT, WARN_BELOW)
            api = conn.execute(sa.select(channels).where(channels.c.partner_id == sunny.id)
                               ).one()
            assert api.kind == "api" and api.enabled
            harbour = conn.execute(sa.select(contract_customers).where(
                contract_customers.c.code == CUSTOMER[0])).one()
            assert harbour.name == CUSTOMER[1]
            [quota] = customers.customer_quotas(conn, harbour.id)
            assert quota.capacity == CUSTOMER_QUOTA and quota.total_capacity == CONTRACT_TOTAL
            assert len(customers.notices_for(conn, harbour.id)) == 1
            booth = channel_by_code(conn, BOOTH[0])
            assert (booth.name, booth.kind, booth.opening_hours) == (BOOTH[1], "booth", ALL_DAY)
            demo = ChannelsDemo(tmp_path)
            demo.set_up(conn, now)
            assert [s.username for s in booths.booth_staff(conn, booth.id)] == [CLERK]
            assert [r.username for r in customers.reps(conn, harbour.id)] == [REP_USER]
            assert [k["key_id"] for k in list_keys(conn, sunny.id, now)] == [demo.key_id]
            assert tmp_path.joinpath("partner-api-key.json").stat().st_mode & 0o777 == 0o600
            assert demo.logins["portal"][0] == PORTAL_USER
            assert conn.execute(sa.select(staff.c.role).where(staff.c.username == DESK)
                                ).scalar_one() == "ticketing"  # who confirms the payment
            made = ordering.place_order(conn, partner_id=sunny.id, channel_id=api.id, lines=[
                ordering.PartnerLine(product_id=product.id, day=today, quantity=2)],
                confirm=True, actor="test", now=now)
            assert (made["state"], made["total"]) == ("paid", 2 * AGREED_PRICE)
            assert partner_orders(conn) == 1
            # the evening final on sale, as the demo run's shop puts it
            session = int(demo.seats["session_id"])
            inventory.confirm_configuration(conn, session)
            inventory.put_on_sale(conn, session)
            rep = customers.check_rep_sign_in(conn, REP_USER, demo.logins["rep"][1], now)
            booked = book(conn, rep, Booking(session, zone_id=int(demo.seats["zone_id"]),
                                             price_tier_id=int(demo.seats["price_tier_id"]),
                                             count=2), now)
            confirm_payment(conn, harbour.id, booked.number, "T-1", "test", now)
            assert paid_order(conn, booked.number) == {"number": booked.number, "tickets": 2}
            [quota] = customers.customer_quotas(conn, harbour.id)
            assert (quota.used, quota.total_used) == (2, 2)  # both tracks
    finally:
        engine.dispose()
