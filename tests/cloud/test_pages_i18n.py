"""Every string the staff pages translate has a Simplified Chinese translation, and the .po
file carries no leftovers."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from sync.i18n import translations_from_po

CLOUD = Path(__file__).resolve().parents[2] / "cloud"
PO = CLOUD / "translations" / "zh" / "LC_MESSAGES" / "messages.po"
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2.ext:babel_extract")]


def used_messages() -> dict[str, str]:
    found = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
            CLOUD, METHODS, keywords={"_": None, "_l": None, "gettext": None, "lazy_gettext": None}):
        for m in message if isinstance(message, tuple) else (message,):
            if m:
                found.setdefault(m, filename)
    return found


def test_every_page_string_has_a_chinese_translation_and_none_is_left_over():
    used = used_messages()
    assert len(used) > 200
    with open(PO, "rb") as f:
        catalog = read_po(f)
    have = {m.id: m.string for m in catalog if m.id}
    missing = sorted(f"{where}: {m}" for m, where in used.items() if not have.get(m))
    assert missing == []
    assert sorted(set(have) - set(used)) == []


def test_the_po_loader_translates_and_keeps_placeholders():
    t = translations_from_po(PO)
    assert t.gettext("Sign in") == "登录"
    for msgid in used_messages():
        zh = t.gettext(msgid)
        for placeholder in ("%(n)s", "%(name)s", "%(number)s", "%(code)s"):
            assert (placeholder in msgid) == (placeholder in zh), msgid


def test_a_rules_refusal_is_in_chinese_on_a_chinese_page(hub_url):
    """What the hub's rules refuse reaches a Chinese page in Chinese (by the rule's sentence, or
    a document error by its code); an English page keeps the rule's own sentence."""
    from tests.cloud.pagekit import build_hub, csrf, post, text

    hub = build_hub(hub_url)
    try:
        for lang, expected in (("zh", ("代码为 OSC 的场馆已存在。", "场次的结束时间必须晚于开始时间。",
                                       "密码至少需要 10 个字符。", "证件号码长度不对。")),
                               ("en", ("a venue with code 'OSC' exists already",
                                       "a session must end after it starts",
                                       "a password needs at least 10 characters",
                                       "must be 18 characters, not 5"))):
            admin = hub.client("admin")
            admin.post("/lang", data={"lang": lang, "next": "/",
                                      "csrf_token": csrf(admin, "/venues")})
            pages = [
                post(admin, "/venues", {"code": "OSC", "name": "Again"}, page="/venues"),
                post(admin, "/sessions", {"event_id": "1", "venue_id": hub.venue, "name": "B",
                                          "starts_at": "2027-08-01T19:30",
                                          "ends_at": "2027-08-01T18:00"}, page="/sessions"),
                post(admin, "/staff", {"username": "li", "role": "ops", "password": "short",
                                       "password_again": "short"}, page="/staff"),
                post(admin, "/tickets/holder", {"doc_type": "resident_id",
                                                "doc_number": "11010"}, page="/tickets")]
            for page, words in zip(pages, expected, strict=True):
                assert page.status_code in (400, 422)
                assert words in text(page).replace("&#39;", "'"), (lang, words)
    finally:
        hub.engine.dispose()


def test_alert_conflict_and_device_details_are_put_in_chinese(hub_url):
    """The sentences cloud/ops/alerts.py and cloud/ops/conflicts.py write, and what appliances report
    of their devices, in the words of a Chinese page (values kept)."""
    from cloud.web import words
    from tests.cloud.pagekit import build_hub

    hub = build_hub(hub_url)
    try:
        with hub.app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
            assert words.alert_detail("box (OSC): no contact for 7.5 min") == \
                "box (OSC)：已 7.5 分钟无联系"
            assert words.alert_detail("box (OSC): down 12 s, up None s") == \
                "box (OSC)：落后中心 12 秒，入场记录积压 – 秒"
            assert words.alert_detail("box (OSC): clock +3.2 s from the hub's") == \
                "box (OSC)：时钟与中心相差 +3.2 秒"
            assert words.alert_detail("Gate 1: 4 of 10 scans refused in the last 5 min") == \
                "Gate 1：最近 5 分钟内 10 次验票中拒绝 4 次"
            assert words.alert_detail("Gate 1 (Final): 0.5 entries per minute over the last "
                                      "10 min") == "Gate 1 (Final)：最近 10 分钟内每分钟入场 0.5 人"
            assert words.conflict_detail("admitted 2 times (allowed 1) by 2 appliances") == \
                "由 2 台主机放行 2 次（允许 1 次）"
            assert words.conflict_detail("admitted with allowlist cursor 9, which carried the "
                                         "revocation at 7") == \
                "放行时白名单位置为 9，已包含该吊销（位于 7）"
            assert words.conflict_detail("admitted after the refund, before the venue had "
                                         "synced it (cursor 5 < 7)") == \
                "退票后、场馆同步前被放行（白名单位置 5，退票位于 7）"
            assert words.device_kind("qr_camera") == "二维码摄像头"
            assert words.device_state("down") == "离线"
            assert str(words.device_detail("gate runtime stopped")) == "闸机运行服务已停止"
            assert str(words.device_detail("port /dev/ttyUSB0 <gone>")) == \
                '<span class="driver-said" lang="en">port /dev/ttyUSB0 &lt;gone&gt;</span>'
            assert words.reason_words("ALREADY_ENTERED") == "票已使用"
            assert words.alert_detail("something new") == "something new"
    finally:
        hub.engine.dispose()


def test_a_bad_seat_map_is_explained_in_chinese(hub_url):
    import io

    from tests.cloud.pagekit import build_hub, csrf, post, text

    hub = build_hub(hub_url)
    try:
        admin = hub.client("admin")
        admin.post("/lang", data={"lang": "zh", "next": "/",
                                  "csrf_token": csrf(admin, "/venues")})
        data = (b"level,zone,row,number,category,damaged\n"
                b"L1,A,A1,1,std,perhaps\nL1,Q,A1,2,,\nL1,A,A1,1,std,\nL1,A,A1,1,std,\n")
        r = post(admin, f"/venues/{hub.venue}/seats", {"file": (io.BytesIO(data), "s.csv")},
                 page="/venues", content_type="multipart/form-data")
        page = text(r).replace("&#39;", "'")
        assert r.status_code == 422
        for words in ("perhaps 不是 yes/no。", "本场馆没有区域 Q（现有区域：A, B）。", "为空。",
                      "座位 L1/A1/1 出现了两次（第一次在第 4 行）。"):
            assert words in page, words
    finally:
        hub.engine.dispose()


def test_every_reason_device_kind_and_state_has_its_words_on_both_sites(hub_url):
    """The sets of codes the pages put in words are the sets the code has: the engine's
    reasons, the device kinds and the device states."""
    from flask import Flask

    from cloud.web import words
    from drivers.base import DeviceState
    from edge.commands import DEVICE_KINDS
    from edge.reasons import Reason
    from edge.web import helpers
    from edge.web import i18n as edge_i18n
    from tests.cloud.pagekit import build_hub

    hub = build_hub(hub_url)
    try:
        with hub.app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
            for code in Reason:
                assert words.reason_words(code.value) != code.value, code
            for kind in DEVICE_KINDS:
                assert words.device_kind(kind) != kind, kind
            for state in DeviceState:
                assert words.device_state(state.value) != state.value, state
    finally:
        hub.engine.dispose()
    edge_pages = Flask("edge_words")
    edge_i18n.init_app(edge_pages)  # the appliance's catalogue, as its pages load it
    with edge_pages.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        for kind in DEVICE_KINDS:
            assert helpers.kind_name(kind) != kind, kind
        for state in DeviceState:
            assert helpers.state_name(state.value) != state.value, state
