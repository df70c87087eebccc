"""``make demo ARGS="--for N"`` end to end: the orchestrator as its own process, exactly as the
Makefile runs it (the hub, the appliance's web, gates and sync services and the device
simulators all real processes), then what reached the hub read from the hub's database, the
refunded ticket's verdicts from the appliance's, and every process it started gone."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import requests

from cloud.core.db import make_engine
from cloud.ops import alerts
from tests.e2e.conftest import ENV, ROOT, wait_for
from tools.demo import accounts
from tools.demo.ops import DEMO_REFUSED_RATIO

RUN_FOR_S = 45


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_the_demo_runs_the_whole_system_for_a_fixed_time(tmp_path):
    out_dir = tmp_path / "demo"
    log = open(tmp_path / "demo.out", "w+")  # noqa: SIM115 (read back after the run)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.demo", "--dir", str(out_dir),
         "--for", str(RUN_FOR_S), "--film-tickets", "6"],
        cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT, text=True)
    seen: set[int] = set()
    try:
        run_file = out_dir / "run.json"
        wait_for(lambda: run_file.exists() or proc.poll() is not None, timeout=600,
                 what="the demo to start every process")
        assert proc.poll() is None, (tmp_path / "demo.out").read_text()
        run = json.loads(run_file.read_text())
        seen |= descendants(proc.pid)
        log.flush()
        banner = (tmp_path / "demo.out").read_text()
        pairing_code = check_banner(banner, run)
        watch_ops(banner, run, tmp_path / "screenshots")
        deadline = time.monotonic() + RUN_FOR_S + 300
        while proc.poll() is None and time.monotonic() < deadline:
            seen |= descendants(proc.pid)  # gunicorn workers, pcscd and all
            time.sleep(0.5)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log.seek(0)
    output = log.read()
    log.close()
    assert code == 0, output

    # the summary's last lines
    last = output.strip().splitlines()[-2:]
    assert re.fullmatch(r"entries_at_hub: \d+", last[0]), output
    assert last[1] == "refund_refused_at_gate: yes", output
    summary_hub = int(last[0].split(": ")[1])
    paid_line = re.search(r"^orders_paid: (\d+)$", output, re.M)
    assert paid_line, output
    summary_paid = int(paid_line.group(1))
    partner_line = re.search(r"^partner_orders: (\d+)$", output, re.M)
    assert partner_line, output
    accounts_lines = re.search(r"^buyers_verified: (\d+)\ncompanions_verified: (\d+)$",
                               output, re.M)
    assert accounts_lines, output
    summary_buyers, summary_companions = map(int, accounts_lines.groups())
    signs_in = re.search(r"sign in as (1\d{10}) with", output)
    assert signs_in, output
    assert re.search(r"the refund of ticket [0-9A-Z]{11} arrived [\d.]+ s after it was made",
                     output)

    # every process the demo started, and theirs, is gone; the ptys are closed
    names = set(run["children"])
    assert names == {"hub", "web", "gates", "sync", "devices", "worker", "payments",
                     "messenger", "sms", "idcheck"}
    started = set(run["children"].values()) | seen
    assert len(seen) > len(names)  # the gunicorn workers were seen too
    if run["pcscd_pid"]:
        started.add(run["pcscd_pid"])
    assert [pid for pid in started if alive(pid)] == []
    assert "stopped cleanly" in output and output.count("stopped cleanly") == 10, output
    assert not (out_dir / "devices" / "ttyTURNSTILE").exists()
    assert not (out_dir / "devices" / "ttyIDCARD").exists()

    # what reached the hub, from the hub's own database
    hub = sqlite3.connect(run["hub_db"])
    try:
        (entries, admitted) = hub.execute(
            "SELECT count(*), coalesce(sum(admitted), 0) FROM entries").fetchone()
        refunded = run["refunded_ticket"]
        state = hub.execute("SELECT state FROM tickets WHERE id = ?", (refunded,)).fetchone()[0]
        at_hub = hub.execute("SELECT reason, admitted FROM entries WHERE ticket_id = ?",
                             (refunded,)).fetchall()
        # the tickets the camera showed were signed in the run's SoftHSM2 token
        stores = hub.execute("SELECT store, token_object IS NOT NULL FROM signing_keys "
                             "WHERE state = 'active'").fetchall()
        # the buyers' orders, paid through the sandbox's WeChat Pay: each with its tickets
        paid = hub.execute(
            "SELECT o.number, o.payment_provider, (SELECT count(*) FROM order_lines l WHERE "
            "l.order_id = o.id), (SELECT count(*) FROM tickets t WHERE t.order_id = o.id), "
            "(SELECT count(*) FROM payments p WHERE p.order_id = o.id AND p.state = "
            "'succeeded' AND p.out_trade_no = o.payment_reference) FROM orders o "
            "WHERE o.state = 'paid' AND o.kind = 'sale' AND o.channel_id IS NULL").fetchall()
    finally:
        hub.close()
    assert entries == summary_hub and admitted >= 5, (entries, admitted)
    assert summary_paid == len(paid) > 0, (summary_paid, paid)
    assert all(provider == "wechat" and 1 <= lines == issued and captured == 1
               for _number, provider, lines, issued, captured in paid), paid
    assert state == "refunded"
    assert stores == [("token", 1)], stores
    assert at_hub and all(row == ("REVOKED", 0) for row in at_hub), at_hub

    # at the gate: the camera's tickets passed the turnstile, the refunded one was refused
    edge = sqlite3.connect(out_dir / "edge" / "edge.db")
    try:
        verdicts = edge.execute(
            "SELECT e.reason, e.admitted, e.passage FROM entries e JOIN lanes l "
            "ON l.id = e.lane_id WHERE l.code = 'N1' AND e.scan_kind = 'qr' ORDER BY e.seq"
        ).fetchall()
        refused = edge.execute("SELECT reason FROM entries WHERE ticket_id = ?",
                               (refunded,)).fetchall()
        unsent = edge.execute("SELECT count(*) FROM entries WHERE acked_at IS NULL"
                              ).fetchone()[0]
    finally:
        edge.close()
    reasons = [v[0] for v in verdicts]
    assert ("OK", 1, "passed") in verdicts
    assert {"ALREADY_ENTERED", "FORGED", "REVOKED"} <= set(reasons), reasons
    assert refused and {r[0] for r in refused} == {"REVOKED"}
    assert unsent == 0
    # no log of the run carries a holder's document number
    holders = json.loads((out_dir / "devices" / "script.json").read_text())["id_cards"]
    logs = "".join(p.read_text(errors="replace") for p in (out_dir / "logs").iterdir())
    assert holders and not any(card["id_number"] in logs + output for card in holders)
    # nor a buyer's or a companion's, nor their names (tools/demo/accounts.py)
    people = [p for a in accounts.people() for p in (a.me, *a.companions)]
    assert not any(p.number in logs + output or p.name in logs + output for p in people)
    # the run's passwords are in the banner only
    passwords = re.findall(r"login \S+ / (\S+)", output)
    # hub, appliance twice, the organiser's and the distributor's portal, the contract
    # customer's representative, the booth's clerk
    assert len(passwords) == 7 and len(set(passwords)) == 7
    assert not any(pw in logs for pw in passwords)
    stored = b"".join(p.read_bytes() for p in out_dir.rglob("*") if p.is_file())
    assert not any(pw.encode() in stored for pw in passwords)
    assert "Traceback" not in logs
    check_accounts(run, signs_in.group(1), summary_buyers, summary_companions)
    check_channels(run, output, int(partner_line.group(1)), out_dir, logs)
    assert os.stat(out_dir).st_mode & 0o077 == 0
    assert pairing_code not in logs and pairing_code.encode() not in stored

    # the demo's own scripted refusals leave no alert raised once its script has played
    engine = make_engine(f"sqlite:///{run['hub_db']}")
    try:
        with engine.begin() as conn:
            alerts.evaluate(conn, min_interval=timedelta(0))
            assert alerts.open_alerts(conn) == []
            assert alerts.get_rules(conn)["refused_ratio"].threshold == DEMO_REFUSED_RATIO
    finally:
        engine.dispose()


def check_accounts(run: dict, mobile: str, summary_buyers: int, summary_companions: int) -> None:
    """The buyer accounts (tools/demo/accounts.py), from the hub's database: every buyer and
    companion made is verified, and the summary says how many; the buyer the banner signs in
    with bought, paid through the sandbox, a ticket for themselves and one for a companion,
    whose links went out by SMS."""
    import sqlalchemy as sa

    from cloud.buyers.contacts import mobile_hash
    from cloud.buyers.tables import buyers, companions, identities
    from cloud.core.outbox import outbox
    from cloud.sales.tables import order_lines, orders

    hub_db = Path(run["hub_db"])
    engine = make_engine(f"sqlite:///{hub_db}", str(hub_db.parent / "data.key"))
    try:
        with engine.connect() as conn:
            made = conn.execute(sa.select(sa.func.count()).select_from(buyers)).scalar_one()
            added = conn.execute(sa.select(sa.func.count()).select_from(companions).where(
                companions.c.removed_at.is_(None))).scalar_one()
            states = conn.execute(sa.select(identities.c.state, sa.func.count())
                                  .group_by(identities.c.state)).all()
            buyer_id = conn.execute(sa.select(buyers.c.id).where(
                buyers.c.mobile_hash == mobile_hash(conn, mobile))).scalar_one()
            own = conn.execute(sa.select(orders.c.id).where(
                orders.c.buyer == f"buyer:{buyer_id}", orders.c.state == "paid")).scalars().all()
            holders = conn.execute(sa.select(sa.func.count(sa.distinct(order_lines.c.holder_id)))
                                   .where(order_lines.c.order_id.in_(own))).scalar_one()
            links = conn.execute(sa.select(outbox.c.state).where(
                outbox.c.kind == "ticket_delivery")).scalars().all()
    finally:
        engine.dispose()
    assert 0 < summary_buyers == made and 0 < summary_companions == added, (made, added)
    assert states == [("verified", made + added)], states
    assert len(own) == 1 and holders == 2, (own, holders)
    assert len(links) == 2 and set(links) <= {"sent", "delivered"}, links


def check_channels(run: dict, output: str, summary_partner: int, out_dir: Path,
                   logs: str) -> None:
    """Channels and distribution (tools/demo/channels.py), from the hub's database: the
    distributor's order the banner names came through the signed API with its key, paid at
    the agreed price from its account; the contract customer's booking is paid, with its
    tickets; the booth has its clerk. The key's secret is in its owner-only file only."""
    from cloud.demo import AGREED_PRICE, BOOTH, CUSTOMER, DISTRIBUTOR

    sold = re.search(r"Sunny Travel's order ([0-9A-Z]+) through the signed partner API:\n"
                     r" +2 x West Lake day ticket, (\d+\.\d\d) CNY at its agreed price",
                     output)
    booked = re.search(r"Harbour Corp's order ([0-9A-Z]+): 2 seats", output)
    key_id = re.search(r"API key (wk_\w+), its secret in (\S+) \(owner-only\)", output)
    assert sold and booked and key_id, output
    assert float(sold.group(2)) == 2 * AGREED_PRICE / 100
    hub = sqlite3.connect(run["hub_db"])
    try:
        partner_order = hub.execute(
            "SELECT o.state, o.total, c.kind, p.code FROM orders o JOIN channels c ON "
            "c.id = o.channel_id JOIN partners p ON p.id = c.partner_id WHERE o.number = ?",
            (sold.group(1),)).fetchone()
        partner_paid = hub.execute(
            "SELECT count(*) FROM orders o JOIN channels c ON c.id = o.channel_id WHERE "
            "o.state = 'paid' AND c.partner_id IS NOT NULL").fetchone()[0]
        signed = hub.execute(
            "SELECT l.method, l.path, l.status FROM api_access_log l JOIN api_keys k ON "
            "k.id = l.api_key_id WHERE k.key_id = ?", (key_id.group(1),)).fetchall()
        contract = hub.execute(
            "SELECT o.state, o.payment_provider, cu.code, (SELECT count(*) FROM tickets t "
            "WHERE t.order_id = o.id) FROM orders o JOIN channels c ON c.id = o.channel_id "
            "JOIN contract_customers cu ON cu.id = c.customer_id WHERE o.number = ?",
            (booked.group(1),)).fetchone()
        clerks = hub.execute(
            "SELECT s.username FROM channel_staff cs JOIN staff s ON s.id = cs.staff_id JOIN "
            "channels c ON c.id = cs.channel_id WHERE c.code = ?", (BOOTH[0],)).fetchall()
    finally:
        hub.close()
    assert partner_order == ("paid", 2 * AGREED_PRICE, "api", DISTRIBUTOR[0]), partner_order
    assert summary_partner == partner_paid == 1
    assert signed == [("POST", "/api/partner/v1/orders", 201)], signed
    assert contract == ("paid", "transfer", CUSTOMER[0], 2), contract
    assert clerks == [("north-clerk",)]
    secret_file = Path(key_id.group(2))
    assert secret_file.parent == out_dir.resolve() and secret_file.stat().st_mode & 0o077 == 0
    secret = json.loads(secret_file.read_text())["secret"]
    assert secret not in logs and secret not in output


def check_banner(banner: str, run: dict) -> str:
    """The banner names the handheld page with a code that pairs, and the wall display;
    returns the code."""
    web, hub = run["web_url"], run["hub_url"]
    handheld = re.search(rf"Handheld page +{re.escape(web)}/handheld/ +pairing code "
                         r"([A-Z2-9]{4}-[A-Z2-9]{4})", banner)
    assert handheld and "Devices, Handhelds" in banner, banner
    r = requests.post(f"{web}/api/v1/pair", json={"code": handheld.group(1)}, timeout=30)
    assert r.status_code == 201, r.text
    assert requests.get(f"{web}/handheld/", timeout=30).status_code == 200
    wall = re.search(rf"Wall display +({re.escape(hub)}/wall/open/\S+)", banner)
    assert wall, banner
    opened = requests.get(wall.group(1), timeout=30)
    assert opened.status_code == 200 and opened.url == f"{hub}/wall", opened.url
    # the ledger: the organiser's and the venue's statements, one reconciliation exception
    assert len(re.findall(r"settlement: statement \d+ partner \d+: \d+ lines, net \d+\.\d\d "
                          r"CNY, prepared", banner)) == 2, banner
    assert len(re.findall(r"reconciliation: amount_differs payment \w+", banner)) == 1, banner
    # the public site, where a visitor buys: the session the demo sells is on it
    assert re.search(rf"Public site: +{re.escape(hub)}/shop/ ", banner), banner
    shop = requests.get(f"{hub}/shop/zh/", timeout=30)
    assert shop.status_code == 200 and re.search(r'href="/shop/zh/sessions/\d+"', shop.text)
    return handheld.group(1)


def watch_ops(banner: str, run: dict, shots: Path) -> None:
    """The hub's ops dashboard in a browser while the demo runs: every entry counted at its
    gate (the appliance reports its lanes) and the gates with devices up online. Its screenshot
    is the README's (``WICKET_SCREENSHOTS=docs/screenshots`` writes it there)."""
    from playwright.sync_api import expect, sync_playwright

    user, pw = re.search(r"Hub \(central ops\) +\S+ +login (\S+) / (\S+)", banner).groups()
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"{run['hub_url']}/ops")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", pw)
        page.click("main button[type=submit]")
        page.wait_for_url(re.compile(r"/ops$"))
        venue = page.locator("#by-venue tbody tr", has_text="Olympic")
        expect(venue.locator("td").nth(4)).to_have_text("2 / 6", timeout=120_000)
        gate1 = page.locator("#by-gate tbody tr", has_text="Gate 1")
        expect(gate1).to_have_count(1, timeout=120_000)
        wait_for(lambda: int(gate1.locator("td").nth(2).text_content()) >= 3, timeout=120,
                 what="three entries at Gate 1 on the dashboard")
        assert "not on the hub" not in page.text_content("#by-gate")
        page.screenshot(path=shots / "ops-dashboard.png", full_page=True)
        browser.close()
    target = os.environ.get("WICKET_SCREENSHOTS")
    if target:
        shutil.copy(shots / "ops-dashboard.png", Path(target) / "ops-dashboard.png")
