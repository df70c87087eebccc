// The handheld page: pair once, pick a lane, scan (camera or wedge scanner), see the verdict.
// Scans that cannot reach the appliance are queued in localStorage with their client scan id
// and sent in a batch when it answers again; a resend of an id the appliance already recorded
// returns the verdict it got, so nothing is counted twice and nothing queued is dropped.
"use strict";

(function () {
  const APP_VERSION = "handheld-page/1";
  const API = "/api/v1";
  const KEY = {token: "wicket.handheld.token", lane: "wicket.handheld.lane",
               lanes: "wicket.handheld.lanes", name: "wicket.handheld.name",
               queue: "wicket.handheld.queue", rejected: "wicket.handheld.rejected",
               lang: "wicket.handheld.lang", fade: "wicket.handheld.fade"};
  const BATCH = 200;            // scans per upload (the appliance takes up to 500)
  const TIMEOUT_MS = 6000;      // a scan that takes longer is queued
  const HEARTBEAT_MS = 30000;

  const T = {
    en: {
      title: "Wicket handheld", pair_title: "Pair this handheld",
      pair_help: "Ask an admin for a pairing code: on the appliance's Devices page, under " +
        "Handhelds. Type it here, or scan its QR code with this device's camera.",
      pair_button: "Pair", lane: "Lane", ready: "Ready to scan", check: "Check",
      scan_placeholder: "Scan a ticket", camera_on: "Use the camera",
      number_placeholder: "Type a ticket number",
      camera_off: "Stop the camera", send_now: "Send now", unpair: "Unpair",
      checking: "Checking…", online: "online", offline: "offline",
      queued_words: "Saved: not checked yet",
      queued_detail: "No connection to the appliance. The scan is kept and checked when the " +
                     "connection is back: do not admit on this screen.",
      queue_count: n => n + " scan" + (n === 1 ? "" : "s") + " waiting to be sent",
      batch_done: n => n + " saved scan" + (n === 1 ? "" : "s") + " checked:",
      rejected: n => n + " saved scan" + (n === 1 ? "" : "s") + " refused by the appliance " +
                     "(kept on this handheld):",
      zone: "Zone", seat: "Seat", session: "Session", holder: "Holder", id: "ID",
      ticket: "Ticket", first_entry: "First entry", lang_button: "中文",
      lang_label: "Language",
      // the API's refusals, by their code (its own message is English)
      api_bad_code: "That is not a pairing code: ask an admin for a new one.",
      api_code_used: "This pairing code has been used already: ask an admin for a new one.",
      api_code_expired: "This pairing code has expired: ask an admin for a new one.",
      api_unauthorized: "This handheld is not paired, or its pairing was revoked: pair it again.",
      api_device_disabled: "This handheld is switched off on the appliance.",
      api_lane_not_allowed: "This handheld may not scan for this lane.",
      api_unknown_lane: "No such lane.",
      api_lane_disabled: "This lane is switched off.",
      api_client_scan_id_reused: "This scan's id was used already for another scan.",
      api_batch_too_large: "Too many saved scans at once.",
      api_internal_error: "The appliance could not handle this request; it is in its log.",
      no_lanes: "This handheld may not scan for any lane: ask an admin.",
      unpair_confirm: "Unpair this handheld? Scans not yet sent stay queued.",
      paired_as: name => "Paired as " + name,
      err_network: "The appliance does not answer: check the Wi-Fi.",
    },
    zh: {
      title: "Wicket 手持验票", pair_title: "配对此手持设备",
      pair_help: "请管理员在设备页面的“手持设备”处生成配对码，在此输入，或用本设备的摄像头扫描其二维码。",
      pair_button: "配对", lane: "通道", ready: "请扫码", check: "验票",
      scan_placeholder: "扫描票码", camera_on: "使用摄像头",
      number_placeholder: "输入票号",
      camera_off: "关闭摄像头", send_now: "立即上传", unpair: "解除配对",
      checking: "验票中…", online: "在线", offline: "离线",
      queued_words: "已保存，尚未验票",
      queued_detail: "无法连接验票主机。本次扫码已保存，恢复连接后自动验票：请勿凭此屏幕放行。",
      queue_count: n => "有 " + n + " 条扫码待上传",
      batch_done: n => "已验证 " + n + " 条离线扫码：",
      rejected: n => n + " 条离线扫码被主机拒收（仍保存在本机）：",
      zone: "区域", seat: "座位", session: "场次", holder: "持票人", id: "证件",
      ticket: "票号", first_entry: "首次入场", lang_button: "English",
      lang_label: "语言",
      api_bad_code: "这不是配对码：请向管理员索取新的配对码。",
      api_code_used: "此配对码已被使用：请向管理员索取新的配对码。",
      api_code_expired: "此配对码已过期：请向管理员索取新的配对码。",
      api_unauthorized: "此手持机未配对，或配对已被撤销：请重新配对。",
      api_device_disabled: "此手持机已在主机上停用。",
      api_lane_not_allowed: "此手持机不能为该通道验票。",
      api_unknown_lane: "没有这个通道。",
      api_lane_disabled: "该通道已停用。",
      api_client_scan_id_reused: "此扫码编号已用于另一条扫码。",
      api_batch_too_large: "一次上传的离线扫码过多。",
      api_internal_error: "主机无法处理此请求，详情见主机日志。",
      no_lanes: "此设备没有可用的通道，请联系管理员。",
      unpair_confirm: "确定解除配对？未上传的扫码仍会保留。",
      paired_as: name => "设备名：" + name,
      err_network: "验票主机无响应，请检查无线网络。",
    },
  };

  const $ = id => document.getElementById(id);
  const store = {
    get: (k, d) => { try { const v = localStorage.getItem(k); return v === null ? d : JSON.parse(v); }
                     catch (e) { return d; } },
    set: (k, v) => localStorage.setItem(k, JSON.stringify(v)),
    del: k => localStorage.removeItem(k),
  };
  let lang = store.get(KEY.lang, (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");
  let flushing = false;
  let flushTimer = null;
  let retryMs = 2000;
  let lastVerdict = null;

  function t(key, arg) {
    const v = T[lang][key];
    return typeof v === "function" ? v(arg) : v;
  }

  // A random (version 4) UUID; crypto.randomUUID exists only on HTTPS pages, getRandomValues
  // everywhere.
  function newId() {
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, x => x.toString(16).padStart(2, "0")).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) +
           "-" + h.slice(20);
  }

  class NetworkError extends Error {}
  class ApiError extends Error {
    constructor(status, body) {
      // the words for the refusal's code in the screen's language; else the API's own
      const words = body && body.error && T[lang]["api_" + body.error];
      super(words || body && body.message || ("HTTP " + status));
      this.status = status; this.body = body || {};
    }
  }

  async function api(method, path, body) {
    const headers = {"Accept": "application/json", "Accept-Language": lang};
    const token = store.get(KEY.token, null);
    if (token) headers["Authorization"] = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
    let r;
    try {
      r = await fetch(API + path, {method, headers, signal: ctrl.signal, cache: "no-store",
                                   body: body === undefined ? undefined : JSON.stringify(body)});
    } catch (e) {
      throw new NetworkError(String(e));
    } finally {
      clearTimeout(timer);
    }
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.status >= 500 || (data === null && !r.ok)) {
      // a proxy's or a crashing server's answer: the scan may or may not be recorded
      throw new NetworkError("HTTP " + r.status);
    }
    if (!r.ok) throw new ApiError(r.status, data);
    setNet(true);
    return data;
  }

  // -- screen ------------------------------------------------------------------------------

  function applyLang() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-t]").forEach(el => { el.textContent = t(el.dataset.t); });
    document.querySelectorAll("[data-tp]").forEach(el => { el.placeholder = t(el.dataset.tp); });
    $("lang").textContent = t("lang_button");  // the other language, in its own words
    $("lang").lang = lang === "zh" ? "en" : "zh-CN";
    $("lang").setAttribute("aria-label", t("lang_label"));
    document.title = t("title");
    const name = store.get(KEY.name, "");
    $("device-name").textContent = name ? t("paired_as", name) : "";
    setNet(navigator.onLine !== false && $("net").dataset.state !== "offline");
    renderQueue();
    if (lastVerdict && lastVerdict.local) showLocal(lastVerdict.local);
    else if (lastVerdict) showVerdict(lastVerdict);
  }

  function setNet(online) {
    const el = $("net");
    el.dataset.state = online ? "online" : "offline";
    el.textContent = t(online ? "online" : "offline");
  }

  function showPairing() {
    $("pairing").hidden = false;
    $("scanner").hidden = true;
    $("pair-code").focus();
  }

  function showScanner() {
    $("pairing").hidden = true;
    $("scanner").hidden = false;
    fillLanes(store.get(KEY.lanes, []));
    if (!lastVerdict) showLocal("ready");
    $("scan-input").focus();
  }

  function fillLanes(lanes) {
    const sel = $("lane");
    const keep = store.get(KEY.lane, null);
    sel.textContent = "";
    for (const l of lanes) {
      const o = document.createElement("option");
      o.value = l.code;
      const name = l.name && l.name !== l.code ? l.name : l.gate.name;
      o.textContent = l.code + " · " + name + (l.direction === "out" ? " ↑" : "");
      sel.appendChild(o);
    }
    if (lanes.some(l => l.code === keep)) sel.value = keep;
    if (sel.value) store.set(KEY.lane, sel.value);
    if (!lanes.length) showLocal("no_lanes");
  }

  function fact(dl, label, value) {
    if (value === null || value === undefined || value === "") return;
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = value;
    dl.append(dt, dd);
  }

  function localTime(iso) {
    try {
      return new Date(iso).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB",
                                          {dateStyle: "short", timeStyle: "short"});
    } catch (e) { return iso; }
  }

  // A verdict from the appliance shows its time and gives way to "Ready" after the
  // appliance's verdict_fade_s (0: it stays); what the page says itself (queued) stays.
  let fadeTimer = null;
  function clock(iso) {
    try {
      return new Date(iso).toLocaleTimeString(lang === "zh" ? "zh-CN" : "en-GB",
                                              {hour: "2-digit", minute: "2-digit", second: "2-digit"});
    } catch (e) { return iso; }
  }
  function showVerdict(v) {
    clearTimeout(fadeTimer);
    const fade = Number(store.get(KEY.fade, 8));
    $("verdict-at").textContent = v.at && !v.local ? clock(v.at) : "";
    if (v.at && !v.local && fade > 0) fadeTimer = setTimeout(() => showLocal("ready"), fade * 1000);
    lastVerdict = v;
    const box = $("verdict");
    box.className = "verdict " + (v.colour || "idle");
    $("verdict-words").textContent = v.words || "";
    $("verdict-detail").textContent = v.detail_words || v.detail || "";
    const dl = $("verdict-facts");
    dl.textContent = "";
    if (v.ticket) {
      fact(dl, t("ticket"), v.ticket.number);
      fact(dl, t("zone"), v.ticket.zone);
      fact(dl, t("seat"), v.ticket.seat);
      fact(dl, t("session"), v.ticket.session);
    }
    if (v.holder) {
      fact(dl, t("holder"), v.holder.name);
      fact(dl, t("id"), v.holder.document);
    }
    if (v.first_entry_at) fact(dl, t("first_entry"), localTime(v.first_entry_at));
    box.dataset.reason = v.reason || "";
    box.dataset.clientScanId = v.client_scan_id || "";
  }

  // what the page itself shows (in the screen's language, redrawn when it changes)
  function showLocal(what) {
    const v = {
      ready: {colour: "idle", words: t("ready")},
      checking: {colour: "busy", words: t("checking")},
      queued: {colour: "queued", words: t("queued_words"), detail: t("queued_detail"),
               reason: "QUEUED"},
      no_lanes: {colour: "red", words: t("no_lanes")},
    }[what];
    showVerdict({...v, local: what});
  }

  function renderQueue() {
    const q = store.get(KEY.queue, []);
    $("queue").hidden = q.length === 0;
    $("queue-count").textContent = t("queue_count", q.length);
    const rej = store.get(KEY.rejected, []);
    const box = $("rejected");
    box.hidden = rej.length === 0;
    box.textContent = "";
    if (rej.length) {
      box.append(t("rejected", rej.length));
      const ul = document.createElement("ul");
      for (const r of rej) {
        const li = document.createElement("li");
        li.textContent = localTime(r.scan.scanned_at) + " · " + r.scan.lane + " · " + r.message;
        ul.appendChild(li);
      }
      box.appendChild(ul);
    }
  }

  function reportBatch(results) {
    const box = $("batch-report");
    box.hidden = false;
    box.textContent = "";
    box.append(t("batch_done", results.length));
    const ul = document.createElement("ul");
    for (const r of results) {
      const li = document.createElement("li");
      li.className = "r-" + r.colour;
      li.textContent = localTime(r.at) + " · " + r.lane + " · " +
                       (r.ticket && r.ticket.number || "—") + " · " + r.words;
      ul.appendChild(li);
    }
    box.appendChild(ul);
  }

  let audio = null;
  function beep(colour) {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = colour === "green" ? 880 : colour === "orange" ? 520 : 220;
      g.gain.value = 0.08;
      o.connect(g); g.connect(audio.destination);
      o.start(); o.stop(audio.currentTime + (colour === "green" ? 0.12 : 0.35));
    } catch (e) { /* no sound on this device */ }
  }

  // -- pairing -----------------------------------------------------------------------------

  async function pair(code) {
    $("pair-error").textContent = "";
    try {
      const r = await api("POST", "/pair", {code, app_version: APP_VERSION});
      store.set(KEY.token, r.token);
      store.set(KEY.name, r.name);
      store.set(KEY.lanes, r.lanes);
      store.set(KEY.fade, r.verdict_fade_s);
      applyLang();
      showScanner();
      heartbeat();
      flushSoon(0);
    } catch (e) {
      $("pair-error").textContent = e instanceof NetworkError ? t("err_network") : e.message;
    }
  }

  async function refreshLanes() {
    try {
      const r = await api("GET", "/lanes");
      store.set(KEY.lanes, r.lanes);
      store.set(KEY.name, r.name);
      store.set(KEY.fade, r.verdict_fade_s);
      fillLanes(r.lanes);
      applyLang();
    } catch (e) {
      handleAuth(e);
    }
  }

  function handleAuth(e) {
    if (e instanceof ApiError && e.status === 401 && e.body.error === "unauthorized") {
      // revoked: pair again; the queue stays and is sent with the new token
      store.del(KEY.token);
      showPairing();
      $("pair-error").textContent = e.message;
      return true;
    }
    if (e instanceof ApiError && e.body.error === "device_disabled") {
      // switched off by an admin, perhaps for a moment: keep the token and the queue
      showVerdict({colour: "red", words: e.message, reason: "device_disabled"});
      return true;
    }
    if (e instanceof NetworkError) setNet(false);
    return false;
  }

  // -- scanning ----------------------------------------------------------------------------

  function enqueue(item) {
    const q = store.get(KEY.queue, []);
    if (!q.some(x => x.client_scan_id === item.client_scan_id)) q.push(item);
    store.set(KEY.queue, q);
    renderQueue();
  }

  async function submitScan(data, kind) {
    data = (data || "").trim();
    const lane = $("lane").value;
    if (!data || !lane) return;
    const item = {client_scan_id: newId(), lane, kind: kind || "qr", data,
                  scanned_at: new Date().toISOString()};
    if (store.get(KEY.queue, []).length) {
      // older scans first: the appliance decides in the order scans were made
      enqueue(item);
      showLocal("queued");
      await flush();
      return;
    }
    showLocal("checking");
    try {
      const v = await api("POST", "/scan", item);
      if (!v.recorded) {  // the appliance's database failed: keep it and try again later
        enqueue(item);
        flushSoon();
      }
      showVerdict(v);
      beep(v.colour);
    } catch (e) {
      if (handleAuth(e)) { enqueue(item); return; }
      if (e instanceof NetworkError) {
        // it may or may not have been recorded: the same id resent later returns the truth
        enqueue(item);
        showLocal("queued");
        beep("orange");
        flushSoon();
      } else {
        showVerdict({colour: "red", words: e.message, reason: e.body && e.body.error});
        beep("red");
      }
    }
  }

  function flushSoon(ms) {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = setTimeout(flush, ms === undefined ? retryMs : ms);
  }

  async function flush() {
    if (flushing) return;
    const q = store.get(KEY.queue, []);
    if (!q.length || !store.get(KEY.token, null)) return;
    flushing = true;
    const part = q.slice(0, BATCH);
    try {
      const r = await api("POST", "/scans", {sent_at: new Date().toISOString(), scans: part});
      const done = new Set(r.results.filter(x => x.recorded).map(x => x.client_scan_id));
      store.set(KEY.queue, store.get(KEY.queue, []).filter(x => !done.has(x.client_scan_id)));
      reportBatch(r.results);
      // the newest saved scan's verdict goes on the big screen only while its person may
      // still be waiting; older ones are in the report
      const newest = r.results[r.results.length - 1];
      const made = Date.parse(part[part.length - 1].scanned_at);
      if (newest && lastVerdict && lastVerdict.local === "queued" &&
          Date.now() - made < 60000) {
        showVerdict(newest);
        beep(newest.colour);
      }
      retryMs = 2000;
    } catch (e) {
      if (e instanceof ApiError && e.body.error === "bad_batch" && Array.isArray(e.body.items)) {
        // the appliance named the items it will never take: keep them aside, shown, and send
        // the rest (none of this batch was decided)
        const bad = new Map(e.body.items.map(i => [i.index, i]));
        const rej = store.get(KEY.rejected, []);
        part.forEach((s, i) => { if (bad.has(i)) rej.push({scan: s, error: bad.get(i).error,
                                                           message: bad.get(i).message}); });
        store.set(KEY.rejected, rej);
        const drop = new Set(part.filter((s, i) => bad.has(i)).map(s => s.client_scan_id));
        store.set(KEY.queue, store.get(KEY.queue, []).filter(x => !drop.has(x.client_scan_id)));
        retryMs = 0;
      } else if (!handleAuth(e)) {
        retryMs = Math.min(retryMs * 2, 15000);
      }
    } finally {
      flushing = false;
      renderQueue();
    }
    if (store.get(KEY.queue, []).length) flushSoon(retryMs);
  }

  async function heartbeat() {
    if (!store.get(KEY.token, null)) return;
    const body = {app_version: APP_VERSION, queue_depth: store.get(KEY.queue, []).length,
                  clock: new Date().toISOString()};
    try {
      if (navigator.getBattery) {
        const b = await navigator.getBattery();
        body.battery = Math.round(b.level * 100);
        body.charging = b.charging;
      }
    } catch (e) { /* no battery information */ }
    try {
      await api("POST", "/heartbeat", body);
      if (store.get(KEY.queue, []).length) flushSoon(0);
    } catch (e) {
      handleAuth(e);
    }
  }

  // -- camera (BarcodeDetector where the browser has it) -----------------------------------

  let stream = null;
  let lastCode = "", lastAt = 0;

  async function cameraOn() {
    const video = $("camera");
    const detector = new BarcodeDetector({formats: ["qr_code", "code_128", "ean_13"]});
    stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}});
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    $("camera-toggle").dataset.t = "camera_off";
    $("camera-toggle").textContent = t("camera_off");
    const tick = async () => {
      if (!stream) return;
      try {
        const found = await detector.detect(video);
        const now = Date.now();
        if (found.length && (found[0].rawValue !== lastCode || now - lastAt > 3000)) {
          lastCode = found[0].rawValue; lastAt = now;
          await submitScan(found[0].rawValue, "qr");
        }
      } catch (e) { /* a frame that could not be read */ }
      setTimeout(tick, 150);
    };
    tick();
  }

  function cameraOff() {
    if (stream) stream.getTracks().forEach(tr => tr.stop());
    stream = null;
    $("camera").hidden = true;
    $("camera-toggle").dataset.t = "camera_on";
    $("camera-toggle").textContent = t("camera_on");
  }

  // -- wiring ------------------------------------------------------------------------------

  function init() {
    $("lang").addEventListener("click", () => {
      lang = lang === "zh" ? "en" : "zh";
      store.set(KEY.lang, lang);
      applyLang();
    });
    $("pair-form").addEventListener("submit", ev => { ev.preventDefault(); pair($("pair-code").value); });
    $("scan-form").addEventListener("submit", ev => {
      ev.preventDefault();
      const input = $("scan-input");
      const value = input.value;
      input.value = "";
      input.focus();
      submitScan(value, "qr");  // what the scanner read (a wedge types it here): a code or nothing
    });
    // a ticket number typed by hand: admitted only where the gate allows ticket numbers
    $("number-form").addEventListener("submit", ev => {
      ev.preventDefault();
      const input = $("number-input");
      const value = input.value;
      input.value = "";
      if (value.trim()) submitScan(value, "manual");
      $("scan-input").focus();
    });
    $("lane").addEventListener("change", () => {
      store.set(KEY.lane, $("lane").value);
      $("scan-input").focus();
    });
    $("queue-send").addEventListener("click", () => flushSoon(0));
    $("unpair").addEventListener("click", () => {
      if (!window.confirm(t("unpair_confirm"))) return;
      store.del(KEY.token);
      store.del(KEY.name);
      showPairing();
    });
    if ("BarcodeDetector" in window && navigator.mediaDevices) {
      $("camera-box").hidden = false;
      $("camera-toggle").addEventListener("click", () => {
        if (stream) cameraOff(); else cameraOn().catch(() => cameraOff());
      });
    }
    // a wedge scanner types into whatever has focus: keep it on the scan field
    document.addEventListener("keydown", ev => {
      const el = document.activeElement;
      if (!$("scanner").hidden && (!el || el === document.body)) $("scan-input").focus();
    });
    window.addEventListener("online", () => { setNet(true); flushSoon(0); });
    window.addEventListener("offline", () => setNet(false));
    applyLang();
    if (store.get(KEY.token, null)) {
      showScanner();
      refreshLanes();
      heartbeat();
      flushSoon(0);
    } else {
      showPairing();
      // the QR code on the Devices page opens this page as /handheld/#code=K7QM-4XR2 (a pairing code): the
      // code is in the fragment (never sent to the server), taken out of the address at once
      const code = new URLSearchParams(location.hash.slice(1)).get("code");
      if (code) {
        history.replaceState(null, "", location.pathname + location.search);
        $("pair-code").value = code;
        pair(code);
      }
    }
    setInterval(heartbeat, HEARTBEAT_MS);
  }

  init();
})();
