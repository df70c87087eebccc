"""Every text on the pages has its Simplified Chinese; the .po loader compiles in memory."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from sync.i18n import translations_from_po

WEB = Path(__file__).resolve().parents[3] / "edge" / "web"
PO = WEB / "translations" / "zh.po"


def _used_messages() -> set[str]:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    found = set()
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(WEB), method_map, options_map={"templates/**.html": {}}, keywords=keywords):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_message_has_a_chinese_translation():
    with PO.open("rb") as f:
        catalog = read_po(f)
    translated = {m.id for m in catalog if m.id and m.string}
    used = _used_messages()
    assert len(used) > 200
    assert used - translated == set()


def test_translations_from_po_compiles_in_memory(tmp_path):
    t = translations_from_po(PO)
    assert t.gettext("Log in") == "登录"
    assert t.gettext("Last %(n)d minutes; refreshes itself every 5 seconds.") % {"n": 5} \
        == "最近 5 分钟；每 5 秒自动刷新。"
    assert t.gettext("not a message") == "not a message"
    po = tmp_path / "x.po"
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
                  '#, fuzzy\nmsgid "Hello"\nmsgstr "你好"\n\nmsgid "Bye"\nmsgstr "再见"\n',
                  encoding="utf-8")
    t = translations_from_po(po)
    assert t.gettext("Hello") == "Hello"  # fuzzy entries are left out, as msgfmt does
    assert t.gettext("Bye") == "再见"


def test_device_states_details_streams_and_notes_are_in_the_page_language(as_role, appliance):
    """A device's state is a code (``up``, ``down``...): the pages put it in words; the gate
    runtime's own detail is translated, a driver's message is kept and marked as English."""
    from edge import hardware

    conn = appliance["conn"]
    conn.execute("INSERT INTO devices (id, kind, enabled, state, state_detail, state_at) VALUES "
                 "('N1-GATE', 'turnstile', 1, 'down', 'gate runtime stopped', "
                 "'2026-06-01T10:00:00Z'), ('N1-CAM', 'qr_camera', 1, 'degraded', "
                 "'cannot open camera source ''rtsp://cam'' (rtsp)', '2026-06-01T10:00:00Z')")
    b = as_role("admin")
    b.post("/language", {"lang": "zh"})
    listing = b.get("/devices/").data.decode()
    assert "<td>离线</td>" in listing and "<td>异常</td>" in listing
    page = b.get("/devices/N1-GATE").data.decode()
    assert "离线</strong> – 闸机运行服务已停止" in page
    page = b.get("/devices/N1-CAM").data.decode()
    assert '<span class="driver-said" lang="en">cannot open camera source' in page
    for note in (hardware.cameras(), hardware.serial_ports(), hardware.pcsc_readers()):
        assert not note.note or note.note not in page  # the notes are in Chinese
    d = b.get("/dashboard.json").json
    states = {x["id"]: (x["state_name"], x["detail_words"], x["detail_lang"])
              for x in d["devices"]}
    # both stopped reporting long ago
    assert states["N1-GATE"] == ("离线 (未上报)", "闸机运行服务已停止", None)
    assert states["N1-CAM"][0] == "异常 (未上报)" and states["N1-CAM"][2] == "en"
    assert {s["stream_name"] for s in d["sync"]["streams"]} >= {"白名单", "吊销列表"}
    b.post("/language", {"lang": "en"})
    assert "<td>down</td>" in b.get("/devices/").data.decode()


def test_a_refused_entry_import_says_why_in_the_page_language(as_role):
    """edge/emergency.py refuses a file in English (for the audit log); the page says why in
    the staff member's language."""
    import io

    b = as_role("admin")
    b.post("/language", {"lang": "zh"})
    for data, words in ((b"just one line", "不是入场记录导出文件：没有文件头和签名行。"),
                        (b"{]\n{]\n", "不是入场记录导出文件：文件头或签名无法读取。")):
        b.get("/emergency/")
        r = b.client.post("/emergency/import-entries", data={
            "csrf_token": b.csrf, "fingerprint": "",
            "file": (io.BytesIO(data), "entries.jsonl")})
        assert r.status_code == 303
        assert "导入被拒绝" in (page := b.get("/emergency/").data.decode()) and words in page


def test_the_json_refusals_a_page_shows_are_in_its_language(app):
    """A page's script shows the message of a refused request: it is in the page's language."""
    r = app.test_client().get("/dashboard.json", headers={
        "Accept-Language": "zh-CN", "X-Requested-With": "fetch"})
    assert r.status_code == 401 and r.json == {"error": "first_run",
                                               "message": "本主机还没有管理员。"}
