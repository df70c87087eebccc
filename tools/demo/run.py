"""``make demo``: the whole system on this machine, from nothing.

    python -m tools.demo [--dir demo] [--for SECONDS] [--tickets N]

Everything lives in ``--dir`` (git-ignored ``demo/``), made afresh each run:

1. the hub: ``wicket-hub init`` and ``load-demo`` (the Olympic stadium, its event and tickets)
   on a SQLite file, one ticket given an RFID chip, an admin login, the payment sandbox
   (``wicket-hub payments-sandbox``, WeChat Pay for the hub), ``wicket-hub serve`` and
   ``wicket-hub worker``; its signing key made in a SoftHSM2 token of the run's own where
   SoftHSM2 is installed (else wrapped under a key file beside the database); with the
   identity verification and SMS sandboxes and ``wicket-hub messenger``, three buyer accounts
   made through the buyers' API, verified with their companions, the first buying for
   themselves and a companion (``tools/demo/accounts.py``): the summary's ``buyers_verified``
   and ``companions_verified``;
2. an enrollment token for one appliance; ``wicket-edge init``, ``enroll``, the first full
   ``sync --once``, an admin and a gate login on the appliance, two lanes (N1 at Gate 1, ID1
   at Gate 5, the ID-only gate);
3. the device simulators in their own process (``tools.demo.devices``): a Modbus
   turnstile board on a pty, a lane camera (MJPEG over loopback HTTP) playing a video of demo
   tickets — valid, repeated, forged, refunded — an ID-card reader on a pty, and a virtual RFID
   card where pcscd is available; their device rows written into the appliance's database;
4. the appliance's three services as separate processes: ``wicket-edge web``, ``gates``, ``sync``;
5. a refund on the hub, after the first sync, of a ticket the camera shows later: the gate
   refuses it once the next sync has brought the refund;
6. the organiser's portal login, a settlement run and WeChat Pay's statement reconciled with one
   amount planted wrong (``tools/demo/ledger.py``);
7. buyers ordering seats of the evening session through the hub's API and paying on the
   sandbox's page (``tools/demo/shop.py``): the summary's ``orders_paid``;
8. a distributor's order through the signed partner API, a contract customer's booking paid by
   bank transfer, a booth's clerk (``tools/demo/channels.py``): ``partner_orders``.

It prints the pages' addresses and logins (passwords made for this run, shown once and kept
nowhere), then a status line every few seconds. Ctrl-C (or SIGTERM) stops every process,
waits for each and exits 0; ``--for`` stops after that many seconds with a summary. The exit
status is 1 if a process died on its own or did not stop cleanly. Each process logs to
``demo/logs/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from tools.demo.accounts import BuyerAccounts, verified_counts
from tools.demo.channels import ChannelsDemo, partner_orders
from tools.demo.children import ROOT, Child, DemoError, answers, forged, free_port, password
from tools.demo.keystore import hub_token
from tools.demo.ledger import LedgerDemo
from tools.demo.ops import ops_setup
from tools.demo.shop import BUY_EVERY_S, Shop, orders_paid

FILM_FPS = 15
SHOW_FRAMES = 15      # a code held up for a second
GAP_FRAMES = 30       # two seconds between people
STATUS_EVERY_S = 5.0
PAIRING_TTL_MIN = 24 * 60
SYNC = {"sync_revocations_s": 1.0, "sync_allowlist_s": 1.0, "sync_entries_s": 1.0,
        "heartbeat_s": 5.0, "sync_backoff_max_s": 5.0, "hub_timeout_s": 10.0}


class Demo:
    def __init__(self, directory: Path, tickets: int, film_tickets: int):
        self.dir = directory.resolve()
        self.tickets = tickets
        self.film_tickets = film_tickets
        self.hub_env: dict[str, str] = {}  # what the hub's commands and server are started with
        self.logs = self.dir / "logs"
        self.hub_db = self.dir / "hub" / "hub.db"
        self.hub_url_db = f"sqlite:///{self.hub_db}"
        self.hub_data_key = self.dir / "hub" / "data.key"  # made by `wicket-hub init`
        self.edge_dir = self.dir / "edge"
        self.edge_config = self.edge_dir / "edge.toml"
        self.devices_dir = self.dir / "devices"
        self.shop = Shop(self.dir / "payments", self.dir / "logs" / "buyers.log")
        self.accounts = BuyerAccounts(self.dir / "buyers", self.logs / "accounts.log")
        self.ledger = LedgerDemo()
        self.channels = ChannelsDemo(self.dir)
        self.children: dict[str, Child] = {}
        self.logins: dict[str, tuple[str, str]] = {}
        self.hub_port = free_port()
        self.web_port = free_port()
        self.hub_url = f"http://127.0.0.1:{self.hub_port}"
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.refund: dict | None = None
        self.wall_url = self.pairing_code = ""
        self.presale_page = "/presales/"  # the demo's presale, as load-demo names it
        self.lanes: dict[str, int] = {}
        self.pcsc: dict | None = None
        self.devices_ready: dict = {}
        self.key_store = ""
        self.stop_requested = threading.Event()
        self.started_at = 0.0

    # -- helpers ------------------------------------------------------------------------

    def _run(self, what: str, argv: list[str], stdin: str | None = None) -> str:
        """A set-up step; its output goes to logs/setup.log, a failure stops the demo."""
        with open(self.logs / "setup.log", "a") as log:
            log.write(f"$ {' '.join(argv[2:] if argv[0] == sys.executable else argv)}\n")
            log.flush()
            r = subprocess.run(argv, cwd=ROOT, input=stdin, capture_output=True, text=True,
                               timeout=600, env={**os.environ, **self.hub_env})
            log.write(r.stdout + r.stderr)
        if r.returncode != 0:
            raise DemoError(f"{what} failed (exit {r.returncode}): "
                            f"{(r.stderr or r.stdout).strip().splitlines()[-1:]} — see "
                            f"{self.logs / 'setup.log'}")
        return r.stdout

    def _hub(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "cloud.cli", "--db", self.hub_url_db,
                "--data-key", str(self.hub_data_key), *args]

    def _edge(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "edge.cli", "--config", str(self.edge_config), *args]

    def _hub_engine(self):
        from cloud.core.db import make_engine

        return make_engine(self.hub_url_db, str(self.hub_data_key))

    def _edge_conn(self) -> sqlite3.Connection:
        from edge import config as config_mod
        from edge import db as db_mod

        return db_mod.connect(config_mod.load(self.edge_config).database)

    def _child(self, name: str, argv: list[str], env: dict | None = None) -> Child:
        child = Child(name, argv, self.logs / f"{name}.log", env or {})
        child.start()
        self.children[name] = child
        return child

    def _wait(self, what: str, condition, timeout: float = 120.0, child: Child | None = None):
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if child is not None and child.died():
                raise DemoError(f"{child.name} exited with {child.proc.returncode} while "
                                f"{what}; see {child.log_path}")
            if self.stop_requested.is_set():
                raise KeyboardInterrupt
            if time.monotonic() > deadline:
                raise DemoError(f"timed out {what}")
            time.sleep(0.2)

    # -- set-up -------------------------------------------------------------------------

    def prepare(self) -> None:
        """The previous run's files go (``make walkthrough``'s, beside them, stay)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)  # holder data, credentials and keys live here
        (self.dir / "run.json").unlink(missing_ok=True)
        for d in (self.logs, self.hub_db.parent, self.edge_dir, self.devices_dir,
                  self.shop.directory, self.accounts.directory):
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True)

    def start_hub(self) -> None:
        say("hub: creating the database and the demo stadium …")
        self.hub_env, self.key_store = hub_token(self.hub_db)
        self._run("wicket-hub init", self._hub("init"))
        loaded = self._run("wicket-hub load-demo", self._hub("load-demo", "--tickets",
                                                             str(self.tickets)))
        self.presale_page = next((w for w in loaded.split() if w.startswith("/presales/")),
                                 self.presale_page)
        hub_admin = password()
        self._run("wicket-hub create-admin", self._hub("create-admin", "--username", "admin"),
                  stdin=hub_admin + "\n")
        self.logins["hub"] = ("admin", hub_admin)
        # the presale's seed takes two people: a second account to be the other one
        witness = password()
        self._run("wicket-hub create-admin witness",
                  self._hub("create-admin", "--username", "witness"), stdin=witness + "\n")
        self.logins["hub-witness"] = ("witness", witness)
        self._pick_tickets()
        self._ops_setup()
        self._start_payments()
        say("buyers: the identity verification and SMS sandboxes …")
        self.hub_env.update(self.accounts.start_sandboxes(self._child, self._hub, self._wait,
                                                          self.hub_url))
        hub = self._child("hub", self._hub("serve", "--bind", f"127.0.0.1:{self.hub_port}",
                                           "--workers", "2"), self.hub_env)
        self._wait("waiting for the hub to answer", self._hub_answers, child=hub)
        self._child("worker", self._hub("worker", "--poll", "1"), self.hub_env)
        self._child("messenger", self._hub("messenger", "--poll", "0.5"), self.hub_env)
        say("buyers: registering, verifying them and their companions, buying (accounts.py) …")
        self.accounts.create(self.hub_url, self.shop.sale, self._wait)

    def _start_payments(self) -> None:
        """The payment sandbox (WeChat Pay for the hub), the settings that point the hub and
        its worker at it, and the evening session on sale (tools/demo/shop.py)."""
        say("payments: merchant keys, the payment sandbox, the evening session on sale …")
        self.shop.keys = self._run("wicket-hub payments-keys", self._hub(
            "payments-keys", "--dir", str(self.shop.merchant)))
        sandbox = self._child("payments", self._hub(*self.shop.sandbox_args()))
        self._wait("waiting for the payment sandbox", self.shop.answers, child=sandbox)
        self.hub_env.update(self.shop.hub_settings(self.hub_url))
        self.shop.open_sale(self._hub_engine)

    def _hub_answers(self) -> bool:
        return answers("POST", f"{self.hub_url}/api/sync/v1/heartbeat")

    def _pick_tickets(self) -> None:
        """The film's tickets: of the session open now, seated in Gate 1's zones; the ID
        cards: holders of two more (Gate 5 takes every zone); one more gets an RFID chip."""
        import sqlalchemy as sa

        from cloud.catalog.tables import sessions, zones
        from cloud.sales.holders import holder
        from cloud.sales.tables import tickets
        from cloud.sales.tickets import import_rfid_csv

        engine = self._hub_engine()
        try:
            with engine.begin() as conn:
                session_id = conn.execute(sa.select(sessions.c.id).order_by(sessions.c.id)
                                          ).scalars().first()
                gate1 = [r[0] for r in conn.execute(sa.select(zones.c.id).where(
                    zones.c.code.in_(["N1", "N2"])))]
                rows = conn.execute(
                    sa.select(tickets.c.id, tickets.c.number, tickets.c.code, tickets.c.zone_id,
                              tickets.c.holder_id)
                    .where(tickets.c.session_id == session_id, tickets.c.state == "issued")
                    .order_by(tickets.c.id)).all()
                at_gate1 = [r for r in rows if r.zone_id in gate1]
                need = self.film_tickets + 4
                if len(at_gate1) < need:
                    raise DemoError(f"the demo event has too few tickets for Gate 1 "
                                    f"({len(at_gate1)}); use --tickets with a larger number")
                self.film = at_gate1[:self.film_tickets]
                self.refund = {"id": at_gate1[self.film_tickets].id,
                               "number": at_gate1[self.film_tickets].number,
                               "code": at_gate1[self.film_tickets].code}
                chip = at_gate1[self.film_tickets + 1]
                self.rfid_uid = secrets.token_hex(4).upper()
                report = import_rfid_csv(conn, f"ticket_number,rfid_uid\n{chip.number},"
                                         f"{self.rfid_uid}\n", actor="demo")
                if report.errors:
                    raise DemoError(f"RFID chip for the demo: {report.errors[0]}")
                # the simulated ID card reader is handed the holders' own cards
                people = [holder(conn, r.holder_id) for r in at_gate1[need - 2:need]
                          if r.holder_id]
                self.id_cards = [{"name": h.name, "sex": "1", "nation": "01",
                                  "birth": h.doc_number[6:14], "address": "演示路1号",
                                  "id_number": h.doc_number, "authority": "演示公安局",
                                  "valid_from": "20200101", "valid_to": "长期"}
                                 for h in people]
        finally:
            engine.dispose()

    def _ops_setup(self) -> None:
        engine = self._hub_engine()
        try:
            self.wall_url = f"{self.hub_url}/wall/open/{ops_setup(engine)}"
        finally:
            engine.dispose()

    def enroll_appliance(self) -> None:
        from cloud.fleet import appliances

        say("appliance: enrolling with the hub and taking the first full sync …")
        engine = self._hub_engine()
        try:
            with engine.begin() as conn:
                venue_id = conn.execute(__import__("sqlalchemy").text(
                    "SELECT id FROM venues WHERE code = 'OSC'")).scalar_one()
                token = appliances.register(conn, venue_id, "demo appliance", actor="demo").token
        finally:
            engine.dispose()
        self._run("wicket-edge init", self._edge("init"))
        text = self.edge_config.read_text().splitlines()
        text = [line for line in text if line.split("=", 1)[0].strip() not in SYNC]
        text += [f"{k} = {v!r}" for k, v in SYNC.items()]
        self.edge_config.write_text("\n".join(text) + "\n")
        self._run("wicket-edge enroll", self._edge("enroll", "--hub", self.hub_url,
                                                   "--token", "-"), stdin=token + "\n")
        self._run("wicket-edge sync --once", self._edge("sync", "--once"))
        for role, user in (("admin", "admin"), ("gate", "gate")):
            pw = password()
            self._run(f"wicket-edge create-user {user}",
                      self._edge("create-user", "--role", role, user), stdin=pw + "\n")
            self.logins[f"edge-{role}"] = (user, pw)
        from edge import venue_config

        conn = self._edge_conn()
        try:
            gates = dict(conn.execute("SELECT code, id FROM gates"))
            for code, gate, name in (("N1", "G1", "Gate 1 North, lane 1"),
                                     ("ID1", "G5", "Gate 5 ID only, lane 1")):
                if gate not in gates:
                    raise DemoError(f"the first sync brought no gate {gate}")
                self.lanes[code] = venue_config.save_lane(
                    conn, "demo", code=code, name=name, gate_id=gates[gate], direction="in",
                    passage_timeout_s=6)
            # a handheld pairs with this code (shown in the banner only), as with one an admin
            # makes on the Devices page
            from datetime import timedelta

            from edge import handhelds

            self.pairing_code = handhelds.create_pairing(
                conn, "Demo handheld", [], actor="demo",
                ttl=timedelta(minutes=PAIRING_TTL_MIN)).code
        finally:
            conn.close()

    def start_devices(self) -> None:
        say("devices: turnstile, camera (rendering the film), ID-card reader, RFID …")
        film: list[list] = [[None, 30]]
        for i, t in enumerate(self.film):
            film += [[t.code, SHOW_FRAMES], [None, GAP_FRAMES]]
            if i == 2:  # a second person shows the first ticket again
                film += [[self.film[0].code, SHOW_FRAMES], [None, GAP_FRAMES]]
            if i == 3:  # a ticket nobody sold: one character changed
                film += [[forged(self.film[1].code), SHOW_FRAMES], [None, GAP_FRAMES]]
            if i == 5:  # refunded on the hub by then
                film += [[self.refund["code"], SHOW_FRAMES], [None, GAP_FRAMES]]
        self.film_seconds = sum(n for _, n in film) / FILM_FPS
        # played once, each card laid twice and the RFID card tapped twice: then the lanes are
        # quiet, and the hub's refused-scan ratio falls back as the window moves on
        script = {"film": film, "film_plays": 1, "id_cards": self.id_cards,
                  "id_card_rounds": 2, "rfid_uid": self.rfid_uid, "rfid_taps": 2}
        path = self.devices_dir / "script.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # holder data
        with os.fdopen(fd, "w") as f:
            json.dump(script, f)
        ready = self.devices_dir / "ready.json"
        child = self._child("devices", [sys.executable, "-m", "tools.demo.devices",
                                        "--dir", str(self.devices_dir)])
        self._wait("waiting for the device simulators", ready.exists, timeout=300, child=child)
        self.devices_ready = json.loads(ready.read_text())
        self.pcsc = self.devices_ready.get("pcsc")
        devices = [
            ("turnstile-n1", "N1", "turnstile", {"port": self.devices_ready["turnstile"]}),
            ("camera-n1", "N1", "qr_camera", {"source": self.devices_ready["camera"],
                                              "debounce_s": 2.0}),
            ("idcard-id1", "ID1", "id_reader", {"port": self.devices_ready["idcard"]}),
        ]
        if self.pcsc:
            devices.append(("rfid-n1", "N1", "rfid_reader", {"reader": self.pcsc["reader"]}))
        from edge import venue_config

        conn = self._edge_conn()
        try:
            for device_id, lane, kind, config in devices:
                # the readers are switched on once the turnstile is up (see start_services)
                venue_config.create_device(conn, "demo", device_id=device_id, kind=kind,
                                           name=device_id, lane_id=self.lanes[lane],
                                           config=config, enabled=kind == "turnstile")
        finally:
            conn.close()
        self.device_count = len(devices)

    def start_services(self) -> None:
        say("appliance: starting the web, gates and sync services …")
        env = {"PCSCLITE_CSOCK_NAME": self.pcsc["socket"]} if self.pcsc else {}
        self._child("gates", self._edge("gates", "--poll", "0.5"), env)
        web = self._child("web", self._edge("web", "--bind", f"127.0.0.1:{self.web_port}",
                                            "--workers", "2"))
        self._child("sync", self._edge("sync"))
        gates = self.children["gates"]
        self._wait("waiting for the turnstile", lambda: self.devices_up() >= 1, child=gates)
        self._set_readers(enabled=True)
        self._wait("waiting for the lanes' devices",
                   lambda: self.devices_up() >= self.device_count, child=gates)
        self._wait("waiting for the appliance's pages", self._web_answers, child=web)

    def _set_readers(self, enabled: bool) -> None:
        """The web pages' "enable" switch, through the same function: the gate runtime
        follows the devices table."""
        from edge import venue_config

        conn = self._edge_conn()
        try:
            for (device_id,) in conn.execute("SELECT id FROM devices WHERE kind != 'turnstile'"
                                             ).fetchall():
                venue_config.set_device_enabled(conn, "demo", device_id, enabled)
        finally:
            conn.close()

    def _web_answers(self) -> bool:
        return answers("GET", f"{self.web_url}/login")

    def make_refund(self) -> None:
        """Refund one ticket on the hub, as its sales staff would: the appliance has had its
        first sync, and the camera shows this ticket later in the film."""
        from cloud.sales.tickets import revoke_ticket

        engine = self._hub_engine()
        try:
            with engine.begin() as conn:
                revoke_ticket(conn, self.refund["id"], "refunded", actor="admin")
        finally:
            engine.dispose()
        say(f"hub: ticket {self.refund['number']} refunded; the camera shows it in about "
            f"{self._refund_at_s():.0f} s")

    def _refund_at_s(self) -> float:
        return (30 + 6 * (SHOW_FRAMES + GAP_FRAMES) + 2 * (SHOW_FRAMES + GAP_FRAMES)) / FILM_FPS

    # -- watching -----------------------------------------------------------------------

    def _refund_known(self) -> bool:
        conn = self._edge_conn()
        try:
            # the revocation list (the fast stream) or the ticket's own state
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM revocations WHERE ticket_id = :t) OR EXISTS "
                "(SELECT 1 FROM tickets WHERE id = :t AND state != 'issued')",
                {"t": self.refund["id"]}).fetchone()
        finally:
            conn.close()
        return bool(row[0])

    def devices_up(self) -> int:
        conn = self._edge_conn()
        try:
            return conn.execute("SELECT count(*) FROM devices WHERE state = 'up'").fetchone()[0]
        finally:
            conn.close()

    def edge_counts(self) -> dict:
        conn = self._edge_conn()
        try:
            total, admitted, unsent = conn.execute(
                "SELECT count(*), coalesce(sum(admitted), 0), count(*) - count(acked_at) "
                "FROM entries").fetchone()
            lanes_open = conn.execute(
                "SELECT count(*) FROM lanes l WHERE l.enabled = 1 AND EXISTS (SELECT 1 FROM "
                "devices d WHERE d.lane_id = l.id AND d.enabled = 1) AND NOT EXISTS (SELECT 1 "
                "FROM devices d WHERE d.lane_id = l.id AND d.enabled = 1 AND d.state != 'up')"
            ).fetchone()[0]
            refused = conn.execute(
                "SELECT count(*) FROM entries WHERE ticket_id = ? AND reason = 'REVOKED'",
                (self.refund["id"],)).fetchone()[0]
            admitted_refund = conn.execute(
                "SELECT count(*) FROM entries WHERE ticket_id = ? AND admitted = 1",
                (self.refund["id"],)).fetchone()[0]
        finally:
            conn.close()
        return {"entries": total, "admitted": admitted, "unsent": unsent,
                "lanes_open": lanes_open, "lanes": len(self.lanes),
                "refund_refused": refused > 0 and admitted_refund == 0}

    def hub_counts(self) -> dict:
        import sqlalchemy as sa

        engine = self._hub_engine()
        try:
            with engine.connect() as conn:
                total, admitted = conn.execute(sa.text(
                    "SELECT count(*), count(DISTINCT CASE WHEN admitted THEN ticket_id END) "
                    "FROM entries")).one()
                paid, partners = orders_paid(conn), partner_orders(conn)
                accounts = verified_counts(conn)
        finally:
            engine.dispose()
        return {"entries": total, "attendance": admitted, "orders_paid": paid,
                "partner_orders": partners, "buyers_verified": accounts[0],
                "companions_verified": accounts[1]}

    def status_line(self) -> str:
        e, h = self.edge_counts(), self.hub_counts()
        return (f"[{time.monotonic() - self.started_at:5.0f} s] edge: {e['entries']} entries "
                f"({e['admitted']} admitted, {e['unsent']} unsent) | hub: {h['entries']} "
                f"entries, attendance {h['attendance']}, orders paid {h['orders_paid']} | "
                f"lanes open {e['lanes_open']}/"
                f"{e['lanes']} | refund refused at gate: {'yes' if e['refund_refused'] else 'no'}")

    def banner(self) -> None:
        hub_user, hub_pw = self.logins["hub"]
        witness, witness_pw = self.logins["hub-witness"]
        admin, admin_pw = self.logins["edge-admin"]
        gate, gate_pw = self.logins["edge-gate"]
        rfid = (f"virtual card {self.rfid_uid} via pcscd" if self.pcsc
                else "none (pcscd and vsmartcard-vpcd not available)")
        print(f"""
Wicket demo is running. Passwords are made for this run and shown only here.

  Hub (central ops)        {self.hub_url}/            login {hub_user} / {hub_pw}
                           (an admin sets up a one-time password on the first sign-in:
                           any authenticator app, or with the key the page shows:
                           .venv/bin/python -c "import pyotp; print(pyotp.TOTP('KEY').now())")
  Appliance admin          {self.web_url}/            login {admin} / {admin_pw}
  Appliance gate screen    {self.web_url}/gate/       login {gate} / {gate_pw}
  Handheld page            {self.web_url}/handheld/   pairing code {self.pairing_code}
                           (type it there once; valid 24 h; more codes: appliance admin,
                           Devices, Handhelds)
  Wall display             {self.wall_url}
                           (no login; more links: hub, Operations, Wall display)

  Lane N1 (Gate 1 North): camera {self.devices_ready['camera']}
                          turnstile {self.devices_ready['turnstile']}, RFID: {rfid}
  Lane ID1 (Gate 5, ID only): ID-card reader {self.devices_ready['idcard']}
  Refunded on the hub: ticket {self.refund['number']}
  Presale lottery          {self.hub_url}{self.presale_page}
                           (closes a minute after loading: freeze it, two people enter
                           the seed — the second signs in as {witness} / {witness_pw} —
                           then draw)
  Payment sandbox: {self.shop.url}/ (WeChat Pay for the hub; a buyer orders
                   and pays there every {BUY_EVERY_S:.0f} s: logs/buyers.log)
{self.accounts.banner(self.hub_url)}
{self.ledger.banner(self.hub_url)}
{self.channels.banner(self.hub_url)}
  Hub signing key: {self.key_store}
  Logs: {self.logs}/
""", flush=True)

    # -- the run ------------------------------------------------------------------------

    def run(self, duration: float | None) -> int:
        self.prepare()
        self.start_hub()
        self.enroll_appliance()
        self.start_devices()
        self.start_services()
        self.started_at = time.monotonic()
        self.make_refund()
        self.ledger.portal_user(self._hub_engine)
        self.ledger.settle_and_reconcile(self._run, self._hub, self.shop.url)
        self.channels.run(self.hub_url, self._hub_engine)
        self.shop.start_buyers(self.hub_url)
        refund_made: float | None = time.monotonic()
        self.banner()
        with open(self.dir / "run.json.part", "w") as f:  # whole or not there, for scripts
            json.dump({"pid": os.getpid(), "children": {n: c.pid for n, c in
                                                         self.children.items()},
                       "pcscd_pid": (self.pcsc or {}).get("pcscd_pid"),
                       "hub_db": str(self.hub_db), "refunded_ticket": self.refund["id"],
                       "hub_url": self.hub_url, "web_url": self.web_url}, f, indent=2)
        os.replace(self.dir / "run.json.part", self.dir / "run.json")
        say("Ctrl-C stops the demo." if duration is None else f"running for {duration:.0f} s")
        next_status = 0.0
        while not self.stop_requested.is_set():
            now = time.monotonic() - self.started_at
            dead = [c for c in self.children.values() if c.died()]
            if dead:
                for c in dead:
                    say(f"{c.name} exited on its own with status {c.proc.returncode}; "
                        f"see {c.log_path}")
                break
            if duration is not None and now >= duration:
                break
            if refund_made is not None and self._refund_known():
                say(f"appliance: the refund of ticket {self.refund['number']} arrived "
                    f"{time.monotonic() - refund_made:.1f} s after it was made")
                refund_made = None
            if now >= next_status:
                say(self.status_line())
                next_status = now + STATUS_EVERY_S
            self.stop_requested.wait(0.25)
        return 0

    def flush_entries(self, timeout: float = 20.0) -> None:
        """Before stopping, give the sync agent a moment to send what is queued."""
        sync = self.children.get("sync")
        deadline = time.monotonic() + timeout
        while sync is not None and sync.alive() and time.monotonic() < deadline:
            if self.edge_counts()["unsent"] == 0:
                return
            time.sleep(0.3)

    def settle_orders(self, timeout: float = 20.0) -> None:
        """Before stopping, let the last buyers' payment notifications reach the hub."""
        self.shop.settle(self._hub_engine, timeout, self.stop_requested.is_set)

    def stop(self) -> dict[str, int | None]:
        """Stop every child in order (the lanes first, the hub last), each waited for."""
        codes: dict[str, int | None] = {}
        for name in ("gates", "devices", "sync", "web", "messenger", "worker", "hub", "payments",
                     "sms", "idcheck"):
            child = self.children.get(name)
            if child is not None:
                died = child.died()
                code = child.stop()
                codes[name] = None if died else code
        return codes


def say(text: str) -> None:
    print(text, flush=True)
