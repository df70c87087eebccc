"""Every page of both sites, with the demo's data, in one language only.

The demo's own builders (``tools.demo.run.Demo``: ``wicket-hub load-demo``, the enrolled
appliance, its logins and lanes) make the hub and the appliance; the test adds what a day at
the demo leaves behind (the channels' sales, scans of every outcome, a refund, a void
admitted before the appliance knew of it, device states, the sync to the hub, alerts and a
conflict). Then Chromium, in
each language, signs in as an admin on each site (after one mistyped password) and
follows every same-origin link from the home page (GET only; never logout or a download), plus
the error states a GET reaches (an unknown id, a search that finds nothing, every GET form sent
with what it offers); on the appliance it also checks the help desk's verdict for each of the
demo's kinds of ticket and the handheld page's answer to a wrong pairing code, on the hub the
display links' page and the wall display a display link opens. The hub's two languages and the
appliance are crawled at once, each by a browser in a thread of its own.

On each page the visible text (``innerText``, the title, placeholders, ``aria-label``, ``alt``,
the ``title`` attribute and the words of input buttons) is checked: in Chinese no English word
may remain once the data is taken out, in English no Chinese character. The data is what the
test and the demo made (names of venue, zones, gates, lanes, sessions, devices, users, ticket
numbers, masked holders), plus numbers, times, ids, paths, a record shown as JSON, a short
list of units, protocols and formats and the product's name. Text marked as another language
(``lang``: the language switch's own names, a device driver's own message) is that
language's, on purpose. A failure lists every offending text with its page.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import sqlalchemy as sa

from tests.e2e.wrong_language import CODE_LIKE, wrong_language
from tools.demo.run import Demo, forged

SKIP_PATHS = re.compile(r"/(logout|lang|language)$|/shop/language/|\.(csv|json|jsonl|txt|png|svg|pdf|zip)$"
                        r"|/export|/download")
SKIP_QUERY = re.compile(r"(^|&)format=(csv|json)(&|$)")  # a page's download of its rows
MAX_PAGES = 800
PER_SHAPE = 3  # pages of one kind read (the same words around other data)
# a page whose scripts fill it in from the server (the public site's script only counts down,
# picks seats and polls an order's state, which changes nothing until the payment lands)
FILLS = "() => [...document.scripts].some(s => !s.src.endsWith('/static/shop.js'))"
NOTHING = "zz-nothing-9"  # what the error states search for
WALL_NAME = "North stand screen"  # the display link the test makes

COLLECT = """() => {
  const lang = (document.documentElement.lang || '').slice(0, 2);
  const marked = [...document.querySelectorAll('body [lang]')]
    .filter(e => e.lang.slice(0, 2) !== lang);
  const foreign = marked.map(e => e.innerText || e.textContent);
  // the page's text less what is marked as another language, element by element (taking a
  // marked text out of the page's text afterwards took "a" out of "admin" as well)
  const shown = marked.map(e => e.style.display);
  marked.forEach(e => { e.style.display = 'none'; });
  const text = document.body.innerText;
  marked.forEach((e, i) => { e.style.display = shown[i]; });
  const attrs = [];
  for (const e of document.querySelectorAll('[placeholder],[aria-label],[alt],[title]')) {
    for (const a of ['placeholder', 'aria-label', 'alt', 'title']) {
      if (e.hasAttribute(a)) attrs.push(e.getAttribute(a));
    }
  }
  for (const e of document.querySelectorAll(
      'input[type=submit],input[type=button],input[type=reset]')) attrs.push(e.value);
  const links = [...document.querySelectorAll('a[href]')].map(a => a.href);
  const forms = [...document.querySelectorAll('form')]
    .filter(f => (f.getAttribute('method') || 'get').toLowerCase() === 'get')
    .map(f => ({action: f.action, fields: [...f.elements].filter(e => e.name).map(e => ({
      name: e.name, type: e.type, tag: e.tagName,
      options: e.tagName === 'SELECT' ? [...e.options].map(o => o.value) : [],
      value: e.value}))}));
  return {title: document.title, text, foreign, attrs, links, forms};
}"""


# -- the demo's world ----------------------------------------------------------------------


def _edge_engine(demo: Demo):
    from edge import config as config_mod
    from edge.engine import Engine
    from edge.holders import HolderVault

    cfg = config_mod.load(demo.edge_config)
    return Engine(demo._edge_conn(), HolderVault(cfg.holder_key))


def _scan(engine, lane: str, text: str, device: str) -> str:
    from edge.engine import Scan, ScanKind

    return engine.decide(Scan(ScanKind.QR, text, device_id=device), lane).reason


def _id_card(engine, lane: str, card: dict) -> str:
    from edge.engine import IdDocument, Scan, ScanKind

    doc = IdDocument("resident_id", card["id_number"], card["name"])
    return engine.decide(Scan(ScanKind.ID_CARD, "", device_id="idcard-id1", document=doc),
                         lane).reason


def _devices(demo: Demo) -> None:
    """The demo's device rows (``Demo.start_devices``), in the states a day leaves them in."""
    rows = [("turnstile-n1", "N1", "turnstile", {"port": "/dev/ttyUSB0"}, "up", ""),
            ("camera-n1", "N1", "qr_camera", {"source": "http://127.0.0.1:8081/stream.mjpg",
                                              "debounce_s": 2.0}, "degraded",
             "camera camera-n1: no frame yet"),
            ("idcard-id1", "ID1", "id_reader", {"port": "/dev/ttyUSB1"}, "down",
             "gate runtime stopped"),
            ("rfid-n1", "N1", "rfid_reader", {"reader": "Virtual PCD 00 00"}, "unknown", "")]
    conn = demo._edge_conn()
    try:
        for device_id, lane, kind, config, state, detail in rows:
            conn.execute("INSERT INTO devices (id, lane_id, kind, name, config, enabled, state, "
                         "state_detail, state_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?, "
                         "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                         (device_id, demo.lanes[lane], kind, device_id, json.dumps(config),
                          state, detail or None))
    finally:
        conn.close()


def _void(demo: Demo, number: str) -> None:
    from cloud.sales.tables import tickets
    from cloud.sales.tickets import revoke_ticket

    engine = demo._hub_engine()
    try:
        with engine.begin() as conn:
            ticket_id = conn.execute(sa.select(tickets.c.id).where(tickets.c.number == number)
                                     ).scalar_one()
            revoke_ticket(conn, ticket_id, "void", actor="admin")
    finally:
        engine.dispose()


def _hub_extras(demo: Demo) -> None:
    """The alert rules an ops lead would tighten on the alerts page, evaluated now: the
    demo's own refusals and its one appliance raise alerts."""
    from datetime import timedelta

    from cloud.ops import alerts

    engine = demo._hub_engine()
    try:
        with engine.begin() as conn:
            alerts.set_rule(conn, "refused_ratio", 5, 60, True, actor="admin")
            alerts.set_rule(conn, "sync_lag", 0, 5, True, actor="admin")
            alerts.set_rule(conn, "clock_skew", 0, 5, True, actor="admin")
            alerts.set_rule(conn, "low_entry_rate", 1000, 5, True, actor="admin")
            alerts.evaluate(conn, min_interval=timedelta(0))
    finally:
        engine.dispose()


def _content(demo: Demo) -> None:
    """content (issue 17 §3): an announcement on the site with an image, written in both
    languages and edited since; a FAQ entry in review; a recommended event in draft."""
    import io

    from PIL import Image

    from cloud.catalog.tables import events
    from cloud.storefront import content
    from cloud.storefront.content import Draft

    out = io.BytesIO()
    Image.new("RGB", (8, 6), (20, 90, 160)).save(out, "PNG")
    words = {"title_zh": "开票通知", "title_en": "Sale opens", "body_zh": "第一段\n\n第二段",
             "body_en": "First paragraph\n\nSecond paragraph"}
    engine = demo._hub_engine()
    try:
        with engine.begin() as conn:
            image_id = content.add_image(conn, out.getvalue(), "staff:2")
            shown = content.create_item(conn, "announcement", Draft(**words, image_id=image_id),
                                        "staff:2")
            content.submit_item(conn, shown, "staff:2")
            content.publish_item(conn, shown, "staff:1")
            content.save_item(conn, shown, Draft(**{**words, "title_en": "Sale opens soon"}),
                              "staff:2")
            faq = content.create_item(conn, "faq", Draft(**words, position=1), "staff:2")
            content.submit_item(conn, faq, "staff:2")
            event_id = conn.execute(sa.select(events.c.id).limit(1)).scalar_one()
            content.create_item(conn, "event", Draft(**words, event_id=event_id), "staff:2")
    finally:
        engine.dispose()


def build_world(demo: Demo) -> None:
    demo.prepare()
    demo.start_hub()
    demo.enroll_appliance()
    _devices(demo)
    engine = _edge_engine(demo)
    try:
        film = demo.film
        outcomes = [_scan(engine, "N1", film[0].code, "camera-n1"),
                    _scan(engine, "N1", film[0].code, "camera-n1"),
                    _scan(engine, "N1", forged(film[1].code), "camera-n1"),
                    _scan(engine, "N1", "HELLO-THERE", "camera-n1"),
                    _scan(engine, "ID1", film[4].code, "camera-n1"),
                    _scan(engine, "N1", film[2].code, "camera-n1")]
        for card in demo.id_cards:
            outcomes.append(_id_card(engine, "ID1", card))
        demo.make_refund()
        _void(demo, film[3].number)
        # admitted before the appliance heard of the void: a conflict at the hub
        outcomes.append(_scan(engine, "N1", film[3].code, "camera-n1"))
        demo._run("wicket-edge sync --once", demo._edge("sync", "--once"))
        outcomes += [_scan(engine, "N1", demo.refund["code"], "camera-n1"),
                     _scan(engine, "N1", film[4].code, "camera-n1"),
                     _scan(engine, "N1", film[4].code, "camera-n1")]
        outcomes += [_scan(engine, "N1", f"NOT-A-CODE-{i}", "camera-n1") for i in range(8)]
    finally:
        engine.conn.close()
    wanted = {"OK", "ALREADY_ENTERED", "FORGED", "UNKNOWN", "REALNAME_REQUIRED", "REVOKED"}
    assert wanted <= set(outcomes), outcomes
    demo._run("wicket-edge sync --once", demo._edge("sync", "--once"))
    _hub_extras(demo)
    _content(demo)  # content (issue 17 §3)
    demo.channels.run(demo.hub_url, demo._hub_engine)  # channels (issue 20): their sales
    web = demo._child("web", demo._edge("web", "--bind", f"127.0.0.1:{demo.web_port}",
                                        "--workers", "1"))
    demo._wait("waiting for the appliance's pages", demo._web_answers, child=web)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    demo = Demo(tmp_path_factory.mktemp("demo") / "demo", tickets=300, film_tickets=6)
    try:
        build_world(demo)
        yield demo
    finally:
        for child in demo.children.values():
            child.stop()


def data_strings(demo: Demo) -> list[str]:
    """Everything the demo and the test put in, longest first (a name is taken out whole, so
    a word of it, "Gate" or "North", is not thereby allowed elsewhere)."""
    from cloud.catalog.tables import events, gates, price_tiers, products, sessions, venues, zones
    from cloud.channels import partner_terms
    from cloud.channels.customers import contact_of
    from cloud.channels.tables import (
        api_keys,
        channels,
        contract_customers,
        customer_notices,
        customer_reps,
        partner_profiles,
        sales_codes,
    )
    from cloud.core.trust import signing_keys
    from cloud.demo import TOP_UP_REFERENCE
    from cloud.fleet.tables import appliances
    from cloud.ledger.tables import (
        partner_users,
        partners,
        recon_exceptions,
        settlement_statements,
    )
    from cloud.lottery.tables import presales
    from cloud.sales.holders import holder
    from cloud.sales.tables import holders, orders, tickets
    from cloud.staff.tables import api_tokens, staff
    from sync.identity import mask_name

    # the demo's own wall display and handheld, this machine's names in the appliance's
    # certificate, and the turnstile makers' names in the driver forms
    strings: set[str] = {"demo appliance", demo.rfid_uid, NOTHING, WALL_NAME, "Demo wall",
                         "Demo handheld", "demo", socket.gethostname(), "localhost", "One-Tech"}
    engine = demo._hub_engine()
    try:
        with engine.connect() as conn:
            for table, cols in ((venues, ("code", "name", "address", "timezone")),
                                (zones, ("code", "name")), (gates, ("code", "name")),
                                (events, ("code", "name")), (sessions, ("name",)),
                                (price_tiers, ("code", "name")), (api_tokens, ("name",)),
                                (appliances, ("name",)), (staff, ("username",))):
                for row in conn.execute(sa.select(*(table.c[c] for c in cols))):
                    strings |= {str(v) for v in row if v}
            for holder_id in conn.execute(sa.select(holders.c.id)).scalars():
                name = holder(conn, holder_id).name  # sealed at rest: opened with the data key
                strings |= {name, mask_name(name)}
            # tickets' and orders' numbers (an order's may be all letters, which CODE_LIKE
            # does not take) and orders' buyers (references: booth:demo-001), taken out whole
            # before a shorter data string could be taken out of the middle of one ("ZH" of
            # ZH53Y4PBSVH, "demo" of booth:demo-016)
            whole = set(conn.execute(sa.select(tickets.c.number)).scalars())
            whole |= set(conn.execute(sa.select(orders.c.number)).scalars())
            whole |= set(conn.execute(sa.select(orders.c.buyer)).scalars()) - {None}
            # the demo's presale: its name and who set it up (an actor: system:demo-presale)
            for name, actor in conn.execute(sa.select(presales.c.name, presales.c.created_by)):
                strings.add(name)
                whole.add(actor)
            # the ledger (issue 19): partners, their portal users, a statement's bank
            # reference and an exception's note, as finance typed them
            for table, cols in ((partners, ("code", "name")), (partner_users, ("username",)),
                                (settlement_statements, ("pay_reference",)),
                                (recon_exceptions, ("note",))):
                for row in conn.execute(sa.select(*(table.c[c] for c in cols))):
                    strings |= {str(v) for v in row if v}
            # channels and distribution (issue 20): channels, day products, partners'
            # addresses and contacts (masked), sales codes (all letters, some: whole),
            # contract customers with their contacts (masked), representatives and notices,
            # API keys, the bank reference of the distributor's top-up
            for table, cols in ((channels, ("code", "name")), (products, ("code", "name")),
                                (sales_codes, ("name",)), (partner_profiles, ("address",)),
                                (contract_customers, ("code", "name")), (api_keys, ("name",)),
                                (customer_reps, ("username", "display_name")),
                                (customer_notices, ("title", "body"))):
                for row in conn.execute(sa.select(*(table.c[c] for c in cols))):
                    strings |= {str(v) for v in row if v}
            whole |= set(conn.execute(sa.select(sales_codes.c.code)).scalars())
            # orders' payment references (a contract customer's: contract-<order number>)
            whole |= set(conn.execute(sa.select(orders.c.payment_reference)).scalars()) - {None}
            # portal users and representatives, whose names the staff pages mask
            for table in (partner_users, customer_reps):
                strings |= {mask_name(n) for n in conn.execute(
                    sa.select(table.c.display_name)).scalars()}
            whole.add(TOP_UP_REFERENCE)
            for partner_id in conn.execute(sa.select(partner_profiles.c.partner_id)).scalars():
                strings |= set(partner_terms.profile(conn, partner_id)["contact"].values())
            for row in conn.execute(sa.select(contract_customers)):
                contact = contact_of(conn, row)
                if contact:
                    strings |= {mask_name(contact[0]), partner_terms.mask_name(contact[0])}
            # the keys page shows the start of each public key
            strings |= {k[:16] for k in conn.execute(sa.select(signing_keys.c.public_key)
                                                     ).scalars()}
    finally:
        engine.dispose()
    strings |= {v for card in demo.id_cards for v in (card["address"], card["authority"])}
    conn = demo._edge_conn()
    try:
        for (config,) in conn.execute("SELECT config FROM devices"):
            strings |= {str(v) for v in json.loads(config).values()}
        for sql in ("SELECT code, name FROM lanes", "SELECT id, name FROM devices",
                    "SELECT username FROM staff_users", "SELECT code, name FROM zones",
                    "SELECT code, name FROM gates", "SELECT name FROM sessions"):
            for row in conn.execute(sql):
                strings |= {str(v) for v in row if v}
    finally:
        conn.close()
    # what this machine has plugged in, as the Devices page lists it (a PC/SC reader's name)
    from edge import hardware

    for listing in (hardware.serial_ports(), hardware.cameras(), hardware.pcsc_readers()):
        strings |= {v for found in listing.items for v in (found.path, found.description)}
    # codes (N1, T000000010) are left to CODE_LIKE, which also takes them inside longer codes
    return sorted({s for s in strings if len(s) > 1 and not CODE_LIKE.fullmatch(s)} | whole,
                  key=len, reverse=True)


# -- the crawl -----------------------------------------------------------------------------


def _same_site(base: str, url: str) -> str | None:
    parts = urlsplit(url)
    if (f"{parts.scheme}://{parts.netloc}" != base or SKIP_PATHS.search(parts.path)
            or SKIP_QUERY.search(parts.query)):
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


def _form_urls(base: str, form: dict) -> list[str]:
    """A GET form sent with what it offers (every box ticked, the first choice), and once
    with a value that matches nothing in every text field."""
    filled, nothing = [], []
    for f in form["fields"]:
        if f["type"] in ("checkbox", "radio"):
            filled.append((f["name"], f["value"]))
        elif f["tag"] == "SELECT":
            value = next((o for o in f["options"] if o), "")
            filled.append((f["name"], value))
            nothing.append((f["name"], value))
        elif f["type"] not in ("submit", "button", "hidden"):
            filled.append((f["name"], f["value"]))
            nothing.append((f["name"], NOTHING))
        elif f["type"] == "hidden":
            filled.append((f["name"], f["value"]))
            nothing.append((f["name"], f["value"]))
    action = form["action"].split("?")[0]
    return [f"{action}?{urlencode(q)}" for q in (filled, nothing) if q]


def _error_urls(url: str) -> list[str]:
    """An unknown id in place of each id of the path; a nonsense value for each parameter."""
    parts = urlsplit(url)
    segments = parts.path.split("/")
    out = []
    for i, seg in enumerate(segments):
        if seg.isdigit() or re.fullmatch(r"T\d{6,}|[A-Z0-9]{8,}", seg):
            wrong = segments[:i] + ["999999" if seg.isdigit() else "ZZ9999999"] + segments[i + 1:]
            out.append(urlunsplit((parts.scheme, parts.netloc, "/".join(wrong), "", "")))
    for name, _value in parse_qsl(parts.query):
        out.append(urlunsplit((parts.scheme, parts.netloc, parts.path,
                               urlencode({name: "zz<bad>"}), "")))
    return out


def visible_text(got: dict) -> str:
    """What a reader sees and hears, less what is marked as another language."""
    # the page's text comes without the marked elements; what they still leave in it (the
    # options of a select, which no style hides from innerText) is a line of its own
    foreign = [f.strip() for f in got["foreign"]]
    lines = []
    for line in got["text"].splitlines():
        if line.strip() and line.strip() in foreign:
            foreign.remove(line.strip())
        else:
            lines.append(line)
    return "\n".join([got["title"], *lines, *got["attrs"]])


def handheld_pairing(page, base: str) -> list[tuple[str, str]]:
    """The handheld page refusing a pairing code nobody made."""
    page.goto(base + "/handheld/", wait_until="networkidle")
    page.fill("#pair-code", "ZZZZ-ZZZZ-ZZZZ")
    page.locator("#pair-form button[type=submit]").click()
    page.wait_for_function("() => document.getElementById('pair-error').textContent")
    return [(page.url + " (a wrong pairing code)", visible_text(page.evaluate(COLLECT)))]


def wall_display(page, base: str, together: Callable[[], object]) -> list[tuple[str, str]]:
    """The display links' page before any link is made and once one is, the wall display an
    ops user opens with the link (made on its POST form), and the page a wrong link shows.
    ``together()`` waits for the other language's crawl to come to the same step, so that
    each sees the page with no link, and then with its own."""
    page.goto(base + "/ops/display", wait_until="networkidle")
    shown = [(page.url + " (no link yet)", visible_text(page.evaluate(COLLECT)))]
    together()
    page.fill("input[name=name]", WALL_NAME)
    page.locator("main form.row button").click()
    link = page.locator("#display-url").inner_text()
    shown.append((page.url + " (a link made)", visible_text(page.evaluate(COLLECT))))
    for url in (link, base + "/wall/open/" + NOTHING):
        page.goto(url, wait_until="networkidle")
        shown.append((page.url, visible_text(page.evaluate(COLLECT))))
    return shown


def _page_key(url: str) -> str:
    """A page as the crawl tells pages apart. The address to return to after signing in
    (``next``) is only carried in hidden fields and links, and one that is not on the site is
    dropped: the sign-in and register pages, linked with a dozen of them (one from each
    checkout), show the same words with any, so one stands for all (beside none at all)."""
    parts = urlsplit(url)
    query = [(k, "*" if k == "next" else v)
             for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _shape(url: str) -> str:
    """A page's kind: its address with every number as ``#`` (the fifth gate of a venue and
    the sixth are one kind of page, with other data)."""
    return re.sub(r"\d+", "#", _page_key(url))


def crawl(page, base: str, seeds: list[str], strings: list[str], lang: str) -> tuple[dict[str, list], set[str]]:
    problems: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    shapes: Counter = Counter()
    todo = [base + "/", *(base + s for s in seeds)]
    errors_done: set[str] = set()
    while todo and len(seen) < MAX_PAGES:
        url = todo.pop(0)
        if _page_key(url) in seen or shapes[_shape(url)] >= PER_SHAPE:
            continue
        seen.add(_page_key(url))
        shapes[_shape(url)] += 1
        page.goto(url, wait_until="load")
        if page.evaluate(FILLS):
            # a page that fills itself in from the server: wait for its first answers
            page.wait_for_load_state("networkidle")
        got = page.evaluate(COLLECT)
        found = wrong_language(visible_text(got), strings, lang)
        if found:
            problems[url] += found
        links = [u for u in (_same_site(base, h) for h in got["links"]) if u]
        for form in got["forms"]:
            links += [u for u in (_same_site(base, f) for f in _form_urls(base, form)) if u]
        shape = re.sub(r"\d+", "#", urlsplit(url).path)
        if shape not in errors_done:
            errors_done.add(shape)
            links += _error_urls(url)
        todo += [u for u in links if _page_key(u) not in seen]
    return problems, seen


def gate_verdicts(page, base: str, codes: list[str]) -> list[tuple[str, str]]:
    """The help desk's check of each code on lane N1 (nothing admitted): what the lane's
    panel says, verdict, detail and facts."""
    url = base + "/gate/?lane=N1&mode=check"
    page.goto(url, wait_until="networkidle")
    panel = page.locator(".lane-panel[data-lane=N1]")
    shown = []
    for code in codes:
        panel.evaluate("p => { p.dataset.lastReason = ''; }")
        panel.locator(".wedge-input").fill(code)
        panel.locator(".wedge-input").press("Enter")
        page.wait_for_function("() => document.querySelector('.lane-panel[data-lane=N1]')"
                               ".dataset.lastReason")
        shown.append((f"{url} (checking {code[:12]}…)", panel.locator(".verdict").inner_text()))
    return shown


def sign_in(page, url: str, username: str, password: str) -> list[tuple[str, str]]:
    """Sign in as a person would, after a mistyped password: what the sign-in page and its
    refusal said, then signed in."""
    shown = []
    for attempt in (password + "-typo", password):
        page.goto(url + "/login", wait_until="networkidle")
        if attempt == password:
            shown.append((page.url, visible_text(page.evaluate(COLLECT))))
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", attempt)
        page.locator("main form button[type=submit]").first.click()
        page.wait_for_load_state("networkidle")
        if attempt != password:
            shown.append((page.url + " (wrong password)", visible_text(page.evaluate(COLLECT))))
    return shown


@contextmanager
def browser_page(lang: str):
    """A page of a Chromium of the calling thread's own (Playwright's objects stay in the
    thread that made them), in the language's locale."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            # the appliance may serve its own self-signed certificate
            context = browser.new_context(locale={"zh": "zh-CN", "en": "en-GB"}[lang],
                                          ignore_https_errors=True)
            context.set_default_timeout(60_000)
            yield context.new_page()
        finally:
            browser.close()


def check_site(world, site: str, lang: str, strings: list[str],
               together: Callable[[], object] = lambda: None) -> tuple[list[str], int]:
    """One site in one language: what it showed in the wrong language, and how many pages
    the crawl saw. On the hub, ``together()`` is where the other language's crawl is waited
    for: both make their changes (a mistyped password, a display link) before either
    crawls, so what a crawl finds does not depend on how far the other has got."""
    if site == "hub":
        # beside the links: the pages the demo's banner names (the refunded ticket), a ticket
        # that admitted someone and one that did not, the public site in the address's language
        base, login = world.hub_url, "hub"
        seeds = [*(f"/tickets/{n}" for n in (world.refund["number"], world.film[0].number,
                                             world.film[5].number)),
                 f"/shop/{lang}/", f"/shop/{lang}/account"]
    else:  # the handheld page and the gate screen admitting
        base, login = world.web_url, "edge-admin"
        seeds = ["/gate/?lane=N1&lane=ID1", "/handheld/"]
    with browser_page(lang) as page:
        shown = sign_in(page, base, *world.logins[login])
        if site == "hub":
            shown += wall_display(page, base, together)
            together()
        problems, seen = crawl(page, base, seeds, strings, lang)
        print(f"{lang} {site}: {len(seen)} pages", *sorted(seen), sep="\n  ")
        if site == "appliance":
            # every verdict the demo's lane shows: used, refunded, void, forged, not a code
            codes = [world.film[0].code, world.refund["code"], world.film[3].code,
                     forged(world.film[1].code), "HELLO-THERE"]
            shown += gate_verdicts(page, base, codes) + handheld_pairing(page, base)
    for url, text in shown:
        problems[url] += wrong_language(text, strings, lang)
    return [f"[{lang}] {url}: {f}" for url, found in sorted(problems.items())
            for f in found], len(seen)


def test_every_page_of_both_sites_speaks_one_language(world):
    """The hub in each language and the appliance in both (Chinese, then English) are
    crawled at once, by threads of their own: the sites share nothing while they are crawled
    (the appliance syncs with the hub only when told to, and was told before), and the hub's
    two crawls wait for each other where they change what the other would see."""
    strings = data_strings(world)
    hub_ready = threading.Barrier(2, timeout=600)

    def hub(lang: str):
        try:
            return {("hub", lang): check_site(world, "hub", lang, strings, hub_ready.wait)}
        except BaseException:
            hub_ready.abort()  # the other crawl is not left waiting
            raise

    def appliance():
        return {("appliance", lang): check_site(world, "appliance", lang, strings)
                for lang in ("zh", "en")}

    with ThreadPoolExecutor(max_workers=3) as pool:
        crawls = [pool.submit(hub, "zh"), pool.submit(hub, "en"), pool.submit(appliance)]
        results = {key: value for c in crawls for key, value in c.result().items()}
    counts = {key: n for key, (_, n) in results.items()}
    print(counts)
    assert len(counts) == 4 and all(n > 5 for n in counts.values()), counts
    report = [line for key in sorted(results) for line in results[key][0]]
    if report:
        pytest.fail(f"{len(report)} texts in the wrong language:\n" + "\n".join(report),
                    pytrace=False)
