"""Names and document numbers never appear unmasked: not in any page, JSON answer, export
file or log line, whatever the staff did before looking."""

from __future__ import annotations

import json
import logging

from flask import url_for

from edge.engine import Engine, IdDocument, Scan, ScanKind
from edge.holders import HolderVault
from tests.edge.web.test_routes import SAMPLE_VALUES


def secrets_of(venue) -> list[str]:
    """Every holder's full name and document number, raw and as JSON escapes them."""
    found = []
    for name, _doc_type, number in venue.holders.values():
        for text in (name, number):
            found += [text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]]
    return sorted(set(found), key=len, reverse=True)


def test_no_page_answer_file_or_log_line_shows_a_holder_unmasked(app, appliance, as_role,
                                                                 caplog):
    caplog.set_level(logging.DEBUG)
    venue = appliance["venue"]
    conn = appliance["conn"]
    engine = Engine(conn, HolderVault(appliance["holder_key"]))
    held = [t for t in venue.tickets.values() if t.holder_id]
    assert len(held) >= 10
    admin, sup = as_role("admin"), as_role("supervisor")
    bodies: list[tuple[str, str]] = []

    def keep(label, r):
        bodies.append((label, r.get_data(as_text=True)))
        return r

    # real-name scans of every kind, through the screen and through a lane's own reader
    for t in held:
        lane = "S1" if t.zone_id in (3, 4) else "N1"
        keep(f"scan {t.id}", sup.post_json("/gate/scan.json", {"lane": lane, "code": t.code}))
        keep(f"check {t.id}", sup.post_json("/gate/scan.json", {"lane": lane, "code": t.code,
                                                                 "mode": "check"}))
        name, doc_type, number = venue.holders[t.holder_id]
        engine.decide(Scan(ScanKind.ID_CARD, document=IdDocument(doc_type, number, name)), "ID1")
        engine.decide(Scan(ScanKind.QR, t.code, document=IdDocument(doc_type, number, name)),
                      "S1")
        engine.decide(Scan(ScanKind.QR, t.code, document=IdDocument(doc_type, "1" * 18)), "S1")
    refused = keep("refused", sup.post_json("/gate/scan.json", {
        "lane": "N1", "code": venue.tickets[venue.named["realname"]].code})).json
    keep("override", sup.post_json("/gate/override.json", {
        "lane": "N1", "reason": "holder shown to the help desk", "entry_id": refused["entry_id"]}))
    # an ID-card reader's test result as the runtime writes it (masked), and a lane device
    admin.get("/devices/")
    admin.post("/devices/", {"id": "ID1-READER", "kind": "id_reader", "lane_id": "4",
                             "connection": "/dev/ttyUSB3", "enabled": "1"})
    admin.post("/devices/ID1-READER/test")
    name, _, number = next(iter(venue.holders.values()))
    from edge.holders import mask_document
    conn.execute("UPDATE device_commands SET status = 'done', result = ? WHERE command = 'test'",
                 (json.dumps({"ok": True, "document": mask_document(number)}),))
    admin.get("/emergency/")
    keep("export", admin.post("/emergency/export"))

    # every page and JSON answer the app has, in both languages, for admin and supervisor
    with app.test_request_context():
        urls = []
        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods or rule.endpoint == "static":
                continue
            values = {a: SAMPLE_VALUES.get(type(rule._converters[a]).__name__
                                           .replace("Converter", "").lower(), "1")
                      for a in rule.arguments}
            urls.append(url_for(rule.endpoint, **values))
    urls += ["/gate/?lane=N1&lane=S1&lane=ID1", "/gate/feed.json?lane=N1&lane=S1&lane=ID1",
             "/gate/feed.json", "/devices/ID1-READER", "/audit?action=entry.",
             "/dashboard.json?minutes=600"]
    for who in (admin, sup):
        for lang in ("en", "zh"):
            who.post("/language", {"lang": lang})
            for url in urls:
                keep(f"{lang} {url}", who.get(url))
    masked_seen = sum(1 for _, body in bodies if "*" in body and "holder" in body)
    assert masked_seen > 10  # the pages do show holders, masked
    feed = sup.get("/gate/feed.json?lane=N1&lane=S1&lane=ID1").json
    assert any(i["holder"] for i in feed["items"])
    logs = [(f"log {r.name}", r.getMessage()) for r in caplog.records]
    audit = [("audit", json.dumps(row)) for row in conn.execute("SELECT * FROM audit_log")]
    entries = [("entries", json.dumps(row)) for row in conn.execute(
        "SELECT scan_ref, detail FROM entries")]
    assert len(bodies) > 100 and len(entries) > 40
    for secret in secrets_of(venue):
        for label, text in bodies + logs + audit + entries:
            assert secret not in text, f"{label} shows holder data"
