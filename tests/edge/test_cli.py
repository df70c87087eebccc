"""The README walkthrough, run as a technician would: real commands, real files."""

from __future__ import annotations

import csv
import getpass
import subprocess
import sys
from pathlib import Path

import pytest

from sync import allowlist_file
from sync.keys import generate_signing_key, load_signing_key
from sync.timeutil import utcnow

ROOT = Path(__file__).resolve().parents[2]


def run(*args, stdin=None, check_exit=None):
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120)
    if check_exit is not None:
        assert proc.returncode == check_exit, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    d = tmp_path_factory.mktemp("site")
    run("sync.cli", "keygen", "--key-id", "1", "--out", str(d / "hub-key.json"), check_exit=0)
    run("sync.cli", "sample", "--key", str(d / "hub-key.json"), "--tickets", "50",
        "--out", str(d / "allowlist.jsonl"), "--codes", str(d / "codes.tsv"), check_exit=0)
    cfg = str(d / "edge.toml")
    d.joinpath("edge.toml")  # created by init
    init = run("edge.cli", "--config", cfg, "init", check_exit=0)
    assert "created" in init.stdout
    cfg_text = (d / "edge.toml").read_text()
    (d / "edge.toml").write_text(cfg_text.replace('log_level = "INFO"', 'log_level = "DEBUG"'))
    unsigned_by_a_known_key = run("edge.cli", "--config", cfg, "import",
                                  str(d / "allowlist.jsonl"))
    assert unsigned_by_a_known_key.returncode == 2
    assert "hub key 1, which this appliance does not trust" in unsigned_by_a_known_key.stderr
    pub = run("sync.cli", "pubkey", "--key", str(d / "hub-key.json"), check_exit=0).stdout
    run("edge.cli", "--config", cfg, "trust-key", pub.strip(), check_exit=0)
    imp = run("edge.cli", "--config", cfg, "import", str(d / "allowlist.jsonl"), check_exit=0)
    assert "changes applied" in imp.stdout and "signed by hub key 1" in imp.stdout
    with open(d / "codes.tsv", encoding="utf-8") as f:
        rows = {r[0]: r for r in csv.reader(f, delimiter="\t")}
    return d, cfg, rows


def scan(cfg, lane, code, *extra, stdin=None):
    return run("edge.cli", "--config", cfg, "scan", "--lane", lane, *extra, code, stdin=stdin)


def test_walkthrough_verdicts_and_exit_codes(site):
    d, cfg, rows = site
    ok = scan(cfg, "N1", rows["seated"][2])
    assert ok.returncode == 0 and ok.stdout.startswith("ADMIT") and " OK " in ok.stdout
    again = scan(cfg, "N2", rows["seated"][2])
    assert again.returncode == 1 and "ALREADY_ENTERED" in again.stdout
    assert "first entry" in again.stdout
    assert "REVOKED" in scan(cfg, "N1", rows["refunded"][2]).stdout
    offline = scan(cfg, "N1", rows["unsynced"][2])
    assert offline.returncode == 0 and "on its signature" in offline.stdout
    assert "WRONG_GATE" in scan(cfg, "N1", rows["wrong_gate"][2]).stdout
    assert "UNKNOWN" in scan(cfg, "N1", "NOT-A-TICKET").stdout
    rfid = scan(cfg, "N1", "04:A1:B2:C3:D4:E5:F6", "--kind", "rfid")
    assert rfid.returncode == 0
    zh = run("edge.cli", "--config", cfg, "--lang", "zh", "scan", "--lane", "N1",
             rows["seated"][2])
    assert "票已使用" in zh.stdout


def test_real_name_scan_and_personal_data_never_shown_in_full(site):
    d, cfg, rows = site
    _, number, code, id_number, name = rows["realname"][:5]
    outputs = []
    need = scan(cfg, "S1", code)
    assert need.returncode == 1 and "REALNAME_REQUIRED" in need.stdout
    outputs.append(need)
    good = scan(cfg, "S1", code, "--id-number", "-", stdin=id_number + "\n")
    assert good.returncode == 0, good.stdout + good.stderr
    assert id_number[:4] + "*" * 10 + id_number[-4:] in good.stdout
    outputs.append(good)
    wrong = scan(cfg, "S1", code, "--id-number", "-", stdin=rows["other_holder"][3] + "\n")
    outputs.append(wrong)
    outputs.append(run("edge.cli", "--config", cfg, "scan", "--lane", "ID1", "--kind",
                       "id_card", "--id-number", "-", stdin=id_number + "\n"))
    outputs.append(run("edge.cli", "--config", cfg, "entries", "--limit", "100", check_exit=0))
    for proc in outputs:
        text = proc.stdout + proc.stderr
        assert id_number not in text and name not in text
        assert rows["other_holder"][3] not in text and rows["other_holder"][4] not in text
    entries = outputs[-1].stdout
    assert "REALNAME_REQUIRED" in entries and "*" in entries


def test_bad_input_gets_a_clear_error_and_exit_2(site, tmp_path):
    d, cfg, rows = site
    missing = run("edge.cli", "--config", str(tmp_path / "none.toml"), "entries")
    assert missing.returncode == 2 and "wicket-edge init" in missing.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"seq": 1, "type": "zone", "op": "upsert", "id": "x", "code": "A", '
                   '"name": "A"}\n')
    imp = run("edge.cli", "--config", cfg, "import", str(bad))
    assert imp.returncode == 2 and "bad.jsonl: not signed by the hub" in imp.stderr
    key = load_signing_key(d / "hub-key.json")
    bad.write_bytes(allowlist_file.sign([{"seq": 1, "type": "zone", "op": "upsert", "id": "x",
                                          "code": "A", "name": "A"}], key,
                                        {"id": 1, "code": "OSC"}, utcnow()))
    imp = run("edge.cli", "--config", cfg, "import", str(bad))
    assert imp.returncode == 2 and "bad.jsonl:2: zone.id: must be an integer" in imp.stderr
    lane = scan(cfg, "NOPE", rows["seated"][2])
    assert lane.returncode == 2 and "no such lane: NOPE; nothing recorded" in lane.stderr
    assert "enabled lanes: " in lane.stderr and lane.stdout == ""
    listed = run("edge.cli", "--config", cfg, "entries")
    assert "NOPE" not in listed.stdout and "DEVICE_ERROR" not in listed.stdout
    at = scan(cfg, "N1", rows["seated"][2], "--at", "yesterday")
    assert at.returncode == 2 and "Traceback" not in at.stderr


def test_import_is_audited(site):
    import sqlite3

    d, cfg, rows = site
    conn = sqlite3.connect(d / "edge.db")
    rows = conn.execute("SELECT action, detail FROM audit_log ORDER BY id").fetchall()
    assert [a for a, _ in rows[:2]] == ["hub_key.trust", "allowlist.import"]
    assert '"applied":' in rows[1][1] and '"signed_by": 1' in rows[1][1]


def test_trust_key_is_refused_on_an_enrolled_appliance_and_never_replaces_a_key(site):
    d, cfg, rows = site
    other = generate_signing_key(1)
    r = run("edge.cli", "--config", cfg, "trust-key", f"1:{other.public_key_b64()}")
    assert r.returncode == 2 and "already trusted with another public key" in r.stderr
    for bad in ("one:AAAA", "1:not-base64", "300:" + other.public_key_b64()):
        r = run("edge.cli", "--config", cfg, "trust-key", bad)
        assert r.returncode == 2 and "expected KEY_ID:BASE64" in r.stderr, bad
    import sqlite3

    conn = sqlite3.connect(d / "edge.db")
    conn.execute("INSERT INTO appliance_state (key, value) VALUES ('hub_appliance_id', '7') "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value")
    conn.commit()
    try:
        r = run("edge.cli", "--config", cfg, "trust-key", f"2:{other.public_key_b64()}")
        assert r.returncode == 2 and "enrolled" in r.stderr
        assert conn.execute("SELECT count(*) FROM hub_keys WHERE key_id = 2").fetchone() == (0,)
    finally:
        conn.execute("DELETE FROM appliance_state WHERE key = 'hub_appliance_id'")
        conn.commit()
        conn.close()


def test_init_upgrades_and_is_idempotent(site):
    d, cfg, rows = site
    again = run("edge.cli", "--config", cfg, "init", check_exit=0)
    assert "up to date" in again.stdout


def test_a_technician_types_a_ticket_number_only_where_the_gate_allows_it(site):
    d, cfg, rows = site
    number = rows["ticket"][1]
    for kind in ("qr", "rfid"):
        refused = scan(cfg, "N1", number, "--kind", kind)
        assert refused.returncode == 1 and "UNKNOWN" in refused.stdout, refused.stdout
    typed = scan(cfg, "N1", number, "--kind", "manual")
    assert typed.returncode == 1 and "ticket numbers are not accepted at this gate" in typed.stdout
    gate = {"type": "gate", "op": "upsert", "seq": 10**9, "id": 1, "code": "G1",
            "name": "Gate 1 North", "zones": [1, 2], "manual_entry": True}
    # the gate's new policy comes as the hub's signed export would bring it
    (d / "policy.jsonl").write_bytes(allowlist_file.sign(
        [gate], load_signing_key(d / "hub-key.json"), {"id": 1, "code": "OSC"}, utcnow()))
    run("edge.cli", "--config", cfg, "import", str(d / "policy.jsonl"), check_exit=0)
    assert scan(cfg, "N1", number, "--kind", "qr").returncode == 1  # a reader: still refused
    typed = scan(cfg, "N1", number, "--kind", "manual")
    assert typed.returncode == 0 and typed.stdout.startswith("ADMIT"), typed.stdout
    assert f"typed by cli:{getpass.getuser()}" in typed.stdout
    listed = run("edge.cli", "--config", cfg, "entries", "--limit", "1", check_exit=0).stdout
    assert "admitted by ticket number, typed by cli:" in listed
    assert "override" not in run("edge.cli", "--config", cfg, "scan", "--help").stdout
