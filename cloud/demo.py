"""``wicket-hub load-demo``: a realistic venue and event, for trying the hub and for the demo.

An Olympic-style stadium with about 20,000 seats in eight zones over two levels, six gates,
an event with three sessions (today, tonight, tomorrow) and a day pass, and several thousand
issued real-name tickets; and a presale of tomorrow's session with paid applications from the
booths, closing a minute after loading, ready to be frozen and drawn on its staff page
(``/presales/<id>``); and the channels of distribution: a scenic spot's day ticket with two
weeks of daily stock, bound to a travel agency at an agreed price, with its prepaid and credit
accounts and an API channel; a company booking seats of the evening final through its
representatives against its quota and the contract total; a booth at the stadium. Every name and document number is invented; the resident ID
numbers carry valid check digits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa

from cloud.catalog.events import create_event
from cloud.catalog.tables import seats
from cloud.catalog.venues import add_gate, add_zone, create_venue
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session
from cloud.sales.tickets import TicketSpec, issue_tickets
from cloud.storefront import content  # content (issue 17 §3)
from sync import codes
from sync.sample import GIVEN, SURNAMES, fake_resident_id
from sync.timeutil import utcnow

ZONES = [("N1", "North lower"), ("N2", "North upper"), ("E1", "East lower"),
         ("E2", "East upper"), ("S1", "South lower"), ("S2", "South upper"),
         ("W1", "West lower (VIP)"), ("W2", "West upper")]
GATES = [("G1", "Gate 1 North", ["N1", "N2"], "ticket"),
         ("G2", "Gate 2 East", ["E1", "E2"], "ticket_and_id"),
         ("G3", "Gate 3 South", ["S1", "S2"], "ticket"),
         ("G4", "Gate 4 West VIP", ["W1", "W2"], "ticket_and_id"),
         ("G5", "Gate 5 ID only", [], "id_only"),
         ("G6", "Gate 6 Staff", [], "ticket")]


@dataclass(frozen=True)
class Demo:
    venue_id: int
    session_ids: list[int]
    seats: int
    tickets: int
    presale_id: int | None = None  # presale lottery (issue 18)


def load_demo(conn: sa.Connection, tickets: int = 5000, now: datetime | None = None,
              seed: int = 7) -> Demo:
    rng = random.Random(seed)
    now = now or utcnow()
    if conn.execute(sa.text("SELECT count(*) FROM signing_keys")).scalar() == 0:
        activate_key(conn, create_key(conn))
    venue = create_venue(conn, "OSC", "Olympic Sports Centre Stadium",
                         "1 Olympic Avenue", "Asia/Shanghai")
    for code, name in ZONES:
        add_zone(conn, venue, code, name)
    for code, name, zones, mode in GATES:
        add_gate(conn, venue, code, name, zones, realname_mode=mode)
    lines = ["level,zone,row,number,category,damaged,removed,obstructed"]
    for zone, _ in ZONES:
        level = "L1" if zone.endswith("1") else "L2"
        for row in range(1, 51):
            for number in range(1, 51):
                category = "vip" if zone.startswith("W1") else ("a" if row <= 20 else "b")
                damaged = "yes" if rng.random() < 0.002 else ""
                lines.append(f"{level},{zone},{zone}{row:02d},{number},{category},{damaged},,")
    report = import_seats_csv(conn, venue, "\n".join(lines) + "\n")
    if not report.ok:
        raise RuntimeError(f"demo seat map refused: {report.errors[0]}")
    event = create_event(conn, "GAMES", "The Games")
    base = now.replace(minute=0, second=0, microsecond=0)
    sessions = [
        create_session(conn, event, venue, "Athletics — morning", base - timedelta(hours=1),
                       base + timedelta(hours=2), base - timedelta(hours=2)),
        create_session(conn, event, venue, "Athletics — evening final", base + timedelta(hours=6),
                       base + timedelta(hours=9), base + timedelta(hours=5)),
        create_session(conn, event, venue, "Football — semifinal", base + timedelta(days=1),
                       base + timedelta(days=1, hours=2), base + timedelta(days=1, hours=-1)),
    ]
    seat_ids = [r[0] for r in conn.execute(
        sa.select(seats.c.id).where(seats.c.venue_id == venue, seats.c.damaged.is_(False))
        .order_by(seats.c.id))]
    specs = []
    for i in range(tickets):
        session = sessions[i % len(sessions)]
        seat = seat_ids[(i // len(sessions)) % len(seat_ids)]
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        specs.append(TicketSpec(session_id=session, seat_id=seat,
                                holder=(name, "resident_id", fake_resident_id(rng))))
    day = (base - timedelta(hours=3), base + timedelta(hours=21))
    specs += [TicketSpec(kind=codes.Kind.SESSIONS, scope=tuple(sessions[:2]), daily_limit=2,
                         valid_from=day[0], valid_until=day[1]) for _ in range(50)]
    for start in range(0, len(specs), 5000):
        issue_tickets(conn, specs[start:start + 5000], now)
    _content(conn, event, now)  # content (issue 17 §3)
    _partners(conn, event, now)  # the ledger (issue 19): before any payment is posted
    _channels_demo(conn, venue, sessions[1], now)  # channels and distribution (issue 20)
    presale_id = _presale(conn, event, sessions[2], now, rng)  # presale lottery (issue 18)
    return Demo(venue, sessions, len(seat_ids), len(specs), presale_id)


# content (issue 17 §3): what the public site's home shows, written by one editor and
# published by another, as the back office requires
DEMO_CONTENT = (
    ("announcement", content.Draft(
        title_zh="入场须知", title_en="Before you come",
        body_zh="请携带购票时登记的身份证件，检票口凭票和证件入场。\n\n开场前一小时开放入场。",
        body_en="Bring the identity document your ticket names: the gates check both.\n\n"
                "Gates open an hour before each session.")),
    ("faq", content.Draft(
        title_zh="可以退票吗？", title_en="Can I get a refund?",
        body_zh="开场前可以在个人账户中申请退票，按场次的退票规则退款。",
        body_en="Until the session starts you can ask for a refund in your account; the "
                "session's refund policy says how much comes back.", position=1)),
    ("event", content.Draft(title_zh="今晚决赛", title_en="Tonight's final", position=1)),
)
DEMO_WRITER, DEMO_PUBLISHER = "system:content-writer", "system:content-publisher"


def _content(conn: sa.Connection, event: int, now: datetime) -> None:
    for kind, draft in DEMO_CONTENT:
        if kind == "event":
            draft = replace(draft, event_id=event)
        item = content.create_item(conn, kind, draft, DEMO_WRITER, now)
        content.submit_item(conn, item, DEMO_WRITER, now)
        content.publish_item(conn, item, DEMO_PUBLISHER, now)


# presale lottery (issue 18): tomorrow's session sold by lottery in two tiers, the upper one
# asked for several times over, with paid booth applications; it closes a minute after loading
PRESALE_TIERS = (("PA", "Presale rows 1-20", 68_000, "a", 16, 24),
                 ("PB", "Presale rows 21-50", 38_000, "b", 30, 12))  # code, name, fen,
# seat category, tickets in the draw, applications
PRESALE_CLOSES = timedelta(minutes=1)
PRESALE_ACTOR = "system:demo-presale"


# the ledger (issue 19): the organiser takes what the others leave; the venue 8 %, the
# platform 3 % and 2 yuan a ticket, each provider 0.6 % — settled daily (T+0) for the demo
DEMO_PARTNERS = (("GOC", "The Games Organising Committee", "organiser"),
                 ("OSC", "Olympic Sports Centre", "venue"))
DEMO_RULES = (("organiser", "GOC", 0, 0, None), ("venue", "OSC", 800, 0, None),
              ("platform", None, 300, 200, None), ("provider_fee", None, 60, 0, "wechat"),
              ("provider_fee", None, 60, 0, "alipay"))
LEDGER_ACTOR = "system:finance"


def _partners(conn: sa.Connection, event: int, now: datetime) -> None:
    from cloud.ledger.partners import add_rule, create_partner

    made = {code: create_partner(conn, code, name, kind, 0, LEDGER_ACTOR, now)
            for code, name, kind in DEMO_PARTNERS}
    since = now - timedelta(days=30)  # agreed before the demo's past sales (the presale's)
    for part, partner, bp, fixed, provider in DEMO_RULES:
        add_rule(conn, part=part, partner_id=made.get(partner), basis_points=bp,
                 fixed_per_ticket=fixed, effective_from=since, actor=LEDGER_ACTOR, now=since,
                 event_id=event if part == "organiser" else None, provider=provider)


# channels and distribution (issue 20): the spot's operator supplies its day ticket (and takes
# its whole price: it is its own organiser and venue), a travel agency sells it through its
# booking system at an agreed price, paid from its prepaid balance and credit; a company
# books seats of the evening final for its staff; the stadium has a booth. The passwords, the
# portal user and the API key are the demo run's (tools/demo/channels.py)
SPOT = ("WLK", "West Lake Scenic Area", "1 Lakeside Road, Hangzhou")
SUPPLIER = ("WLOP", "West Lake Scenic Area Operator", "supplier")
DISTRIBUTOR = ("SUNNY", "Sunny Travel", "distributor")
DISTRIBUTOR_CONTACT = {"contact_name": "Chen Yu", "contact_phone": "13800138100",
                       "contact_email": "bookings@sunny-travel.example",
                       "address": "88 Wulin Road, Hangzhou"}
DAY_TICKET = ("WLK-DAY", "West Lake day ticket", 8_000)  # code, name, list price (fen)
SALES_CODE_NAME = "West Lake day ticket for travel agencies"
AGREED_PRICE = 6_500
STOCK_DAYS, DAILY_STOCK = 14, 500
TOP_UP, TOP_UP_REFERENCE = 300_000, "DEMO-BANK-0001"
CREDIT_LIMIT, WARN_BELOW = 200_000, 100_000
API_CHANNEL = ("SUNNY-API", "Sunny Travel booking system")
CUSTOMER = ("HARBOUR", "Harbour Corp", ("Zhou Lan", "13800138200"))
CONTRACT_TIER = ("CT", "Contract seats, West lower (VIP)", 88_000, "vip")
CONTRACT_TOTAL, CUSTOMER_QUOTA = 200, 40
NOTICE = ("Evening final: your staff's seats",
          "Book the seats of the West lower stand for your staff here. Each booking is "
          "confirmed when your bank transfer arrives.")
BOOTH = ("NORTH-BOOTH", "North booth")
ALL_DAY = {"days": list(range(7)), "opens": "00:00", "closes": "23:59"}
CHANNELS_ACTOR = "system:channels"


def _channels_demo(conn: sa.Connection, venue: int, session: int, now: datetime) -> None:
    from cloud.catalog.events import add_price_tier
    from cloud.channels import accounts, customers, partner_terms
    from cloud.channels.booths import set_booth_hours
    from cloud.channels.channels import create_channel
    from cloud.channels.products_admin import add_day_product, set_daily_stock
    from cloud.ledger.partners import add_rule, create_partner
    from sync.timeutil import CHINA

    actor = CHANNELS_ACTOR
    spot = create_venue(conn, *SPOT, "Asia/Shanghai")
    supplier, distributor = (create_partner(conn, code, name, kind, 0, actor, now)
                             for code, name, kind in (SUPPLIER, DISTRIBUTOR))
    product = add_day_product(conn, *DAY_TICKET, venue_id=spot, actor=actor)
    today = now.astimezone(CHINA).date()
    set_daily_stock(conn, product, today, today + timedelta(days=STOCK_DAYS - 1), DAILY_STOCK,
                    actor, now)
    for part in ("organiser", "venue"):  # the operator's own spot: neither GOC's nor OSC's
        add_rule(conn, part=part, partner_id=supplier, basis_points=0, fixed_per_ticket=0,
                 effective_from=now, actor=actor, now=now, product_id=product)
    partner_terms.set_profile(conn, distributor, actor=actor, now=now, **DISTRIBUTOR_CONTACT)
    code = partner_terms.create_code(conn, supplier, product, SALES_CODE_NAME, actor, now)
    partner_terms.bind(conn, partner_terms.code_id_of(conn, code), distributor, actor, now)
    partner_terms.add_price(conn, distributor, product_id=product, amount=AGREED_PRICE,
                            effective_from=now, actor=actor, now=now)
    accounts.top_up(conn, distributor, TOP_UP, "CNY", TOP_UP_REFERENCE, actor, now)
    accounts.set_credit_limit(conn, distributor, CREDIT_LIMIT, actor, now)
    accounts.set_warn_below(conn, distributor, WARN_BELOW, actor, now)
    create_channel(conn, *API_CHANNEL, "api", partner_id=distributor, actor=actor, now=now)
    code, name, contact = CUSTOMER
    customer = customers.create_customer(conn, code, name, contact, actor, now)
    tier = add_price_tier(conn, session, *CONTRACT_TIER[:3], actor=actor,
                          seat_category=CONTRACT_TIER[3])
    customers.set_total_quota(conn, session, tier, CONTRACT_TOTAL, actor, now)
    customers.set_customer_quota(conn, customer, session, tier, CUSTOMER_QUOTA, actor, now)
    customers.post_notice(conn, customer, *NOTICE, actor, now)
    booth = create_channel(conn, *BOOTH, "booth", venue_id=venue, actor=actor, now=now)
    set_booth_hours(conn, booth, ALL_DAY, actor, now)


def _presale(conn: sa.Connection, event: int, session: int, now: datetime,
             rng: random.Random) -> int:
    from cloud.catalog.events import add_price_tier
    from cloud.lottery.applying import apply
    from cloud.lottery.presales import add_lot, create_presale, open_presale
    from cloud.payments.capturing import place
    from cloud.payments.checkout import start_payment
    from cloud.payments.offline import OfflineProvider

    presale_id = create_presale(
        conn, event_id=event, name="The Games — football semifinal presale",
        opens_at=now - timedelta(days=1), closes_at=now + PRESALE_CLOSES, actor=PRESALE_ACTOR,
        real_name=False, max_quantity=4, buyer_limit=4, channels=("storefront", "booth"),
        now=now)
    lots = [(add_lot(conn, presale_id, session, add_price_tier(
        conn, session, code, name, amount, seat_category=category, actor=PRESALE_ACTOR),
        tickets, PRESALE_ACTOR), applications)
        for code, name, amount, category, tickets, applications in PRESALE_TIERS]
    open_presale(conn, presale_id, PRESALE_ACTOR)
    at = now - timedelta(hours=1)
    n = 0
    for lot_id, applications in lots:
        for _ in range(applications):
            n += 1
            a = apply(conn, presale_id, lot_id, rng.choice((1, 1, 2, 2, 3, 4)),
                      f"booth:demo-{n:03d}", [], channel="booth", actor=PRESALE_ACTOR, now=at)
            started = start_payment(conn, OfflineProvider(), a.order_id, a.amount,
                                    "presale", a.expires_at, at)
            place(conn, started.outcome, at)
    return presale_id
