// The gate-staff screen: wedge and manual scans, verdicts with sound, the live feed, override.
(function () {
  "use strict";
  var root = document.getElementById("gate");
  if (!root) { return; }
  var csrf = document.querySelector("meta[name=csrf-token]").content;
  var t = root.dataset;
  var panels = {};
  var shown = {};          // entry ids already shown as a verdict (our own scans)
  var watching = {};       // admissions whose passage is pending: entry id -> true
  var lastSeq = 0;
  var audio = null;
  var fadeMs = Math.max(0, parseFloat(t.fadeS || "0")) * 1000;

  root.querySelectorAll(".lane-panel").forEach(function (p) { panels[p.dataset.lane] = p; });

  // Sound cues, synthesised: no files. Browsers start audio only after a user gesture.
  function ensureAudio() {
    if (!audio && (window.AudioContext || window.webkitAudioContext)) {
      audio = new (window.AudioContext || window.webkitAudioContext)();
    }
  }
  document.addEventListener("keydown", ensureAudio, {once: true});
  document.addEventListener("pointerdown", ensureAudio, {once: true});
  function tone(freq, start, length) {
    var osc = audio.createOscillator(), gain = audio.createGain();
    osc.type = "square"; osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.15, audio.currentTime + start);
    gain.gain.setValueAtTime(0, audio.currentTime + start + length);
    osc.connect(gain); gain.connect(audio.destination);
    osc.start(audio.currentTime + start); osc.stop(audio.currentTime + start + length + 0.02);
  }
  function beep(colour) {
    if (!audio) { return; }
    if (colour === "green") { tone(1320, 0, 0.12); }
    else if (colour === "orange" || colour === "amber") { tone(660, 0, 0.15); tone(660, 0.25, 0.15); }
    else { tone(220, 0, 0.6); }
  }

  function fact(dl, label, value) {
    if (!value) { return; }
    var dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = label; dd.textContent = value;
    dl.appendChild(dt); dl.appendChild(dd);
  }
  // Back to "Ready" after the configured seconds; a help-desk check stays until dismissed.
  function ready(panel) {
    clearTimeout(panel.fadeTimer);
    panel.held = false;
    var box = panel.querySelector(".verdict");
    box.className = "verdict idle";
    box.dataset.reason = "";
    box.querySelector(".words").textContent = t.tReady;
    box.querySelector(".detail").textContent = "";
    box.querySelector(".facts").textContent = "";
    box.querySelector(".at").textContent = "";
    box.querySelector(".dismiss").hidden = true;
  }
  function timeOf(at) { return at ? String(at).slice(-8) : ""; }
  function show(lane, v, fromFeed) {
    var panel = panels[lane];
    if (!panel) { return; }
    if (fromFeed && panel.held) { return; }  // a help-desk check waits for staff to dismiss it
    if (v.settled === false && v.entry_id) { watching[v.entry_id] = lane; }
    clearTimeout(panel.fadeTimer);
    panel.held = !!v.checked_only;
    var box = panel.querySelector(".verdict");
    box.querySelector(".dismiss").hidden = !panel.held;
    box.querySelector(".at").textContent = timeOf(v.at);
    if (!panel.held && fadeMs > 0) { panel.fadeTimer = setTimeout(function () { ready(panel); }, fadeMs); }
    box.className = "verdict " + v.colour + (v.checked_only ? " checked" : "");
    box.dataset.reason = v.reason || "";
    box.querySelector(".words").textContent = v.words;
    var detail = v.checked_only ? t.tChecked : "";
    if (v.detail) { detail = detail ? detail + " · " + v.detail : v.detail; }
    if (v.offline_code) { detail = detail ? detail + " · " + t.tOffline : t.tOffline; }
    box.querySelector(".detail").textContent = detail;
    var dl = box.querySelector(".facts");
    dl.textContent = "";
    var ticket = v.ticket || {};
    fact(dl, t.tZone, typeof ticket === "string" ? v.zone : ticket.zone || v.zone);
    fact(dl, t.tSeat, typeof ticket === "string" ? v.seat : ticket.seat || v.seat);
    if (v.holder) { fact(dl, t.tHolder, v.holder.name + "  " + v.holder.document); }
    fact(dl, t.tFirst, v.first_entry_at);
    panel.dataset.lastEntry = v.entry_id || "";
    panel.dataset.lastReason = v.reason || "";
    panel.dataset.lastAdmitted = v.admitted ? "1" : "0";
    beep(v.colour);
  }
  function post(url, body) {
    return fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRF-Token": csrf, "X-Requested-With": "fetch"},
      body: JSON.stringify(body)})
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); }
        return r.json().then(function (data) { return {status: r.status, data: data}; });
      });
  }
  function failed(lane, message) {
    show(lane, {colour: "red", words: message || t.tError, reason: "DEVICE_ERROR"});
  }
  function scan(lane, code, kind, input) {
    post(t.scanUrl, {lane: lane, code: code, kind: kind, mode: t.mode}).then(function (res) {
      if (res.status !== 200) { failed(lane, res.data.message); return; }
      if (res.data.entry_id) { shown[res.data.entry_id] = true; }
      show(lane, res.data);
    }).catch(function () { failed(lane); }).finally(function () {
      input.value = "";
      focusWedge();
    });
  }

  // A ticket number typed by the signed-in staff member: its own route, recorded with them.
  function typeNumber(lane, form, input) {
    post(form.dataset.url, {lane: lane, code: input.value, mode: t.mode}).then(function (res) {
      if (res.status !== 200) { failed(lane, res.data.message); return; }
      var v = res.data;
      if (v.entry_id) { shown[v.entry_id] = true; }
      if (v.by_number) { v.detail = v.detail ? v.detail + " · " + form.dataset.tByNumber : form.dataset.tByNumber; }
      show(lane, v);
    }).catch(function () { failed(lane); }).finally(function () {
      input.value = "";
      focusWedge();
    });
  }

  Object.keys(panels).forEach(function (lane) {
    var panel = panels[lane];
    panel.querySelector("form.wedge").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var input = panel.querySelector(".wedge-input");
      if (input.value.trim()) { scan(lane, input.value, "qr", input); }
    });
    var typed = panel.querySelector("form.manual");  // only where the gate admits by number
    if (typed) {
      typed.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var input = typed.querySelector(".manual-input");
        if (input.value.trim()) { typeNumber(lane, typed, input); }
      });
    }
    panel.querySelector(".verdict .dismiss").addEventListener("click", function () { ready(panel); });
    var ov = panel.querySelector("form.override");
    if (ov) {
      // What is missing is said beside the form, never on the verdict (which keeps the refused
      // scan the override answers) and never as a browser validity flag (which blocked every
      // later submit of the form).
      var problem = ov.querySelector(".override-error");
      var say = function (message) { problem.textContent = message || ""; problem.hidden = !message; };
      ov.querySelector(".override-reason").addEventListener("input", function () { say(""); });
      ov.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var input = ov.querySelector(".override-reason");
        if (input.value.trim().length < 4) { say(t.tReasonNeeded); input.focus(); return; }
        say("");
        var refused = panel.dataset.lastEntry && panel.dataset.lastAdmitted !== "1" ? panel.dataset.lastEntry : null;
        post(t.overrideUrl, {lane: lane, reason: input.value, entry_id: refused || null}).then(function (res) {
          if (res.status !== 201) { say(res.data.message || t.tError); return; }
          shown[res.data.entry_id] = true;
          show(lane, {colour: "green", words: t.tOverrideDone, reason: "OK", admitted: true, entry_id: res.data.entry_id, detail: input.value, at: res.data.at});
          input.value = "";
        }).catch(function () { say(t.tError); });
      });
    }
  });

  // Keep the keyboard wedge's keystrokes landing in a scan field.
  function focusWedge() {
    var active = document.activeElement;
    if (active && active.tagName === "INPUT" && !active.classList.contains("wedge-input")) { return; }
    if (active && active.classList && active.classList.contains("wedge-input")) { return; }
    var first = root.querySelector(".wedge-input");
    if (first) { first.focus(); }
  }
  document.addEventListener("click", function () { setTimeout(focusWedge, 0); });

  // The live feed: the lanes' newest entries, whoever scanned them (lanes, handhelds, here).
  var feed = document.getElementById("feed");
  var feedUrl = t.feedUrl + "?" + Object.keys(panels).map(function (l) { return "lane=" + encodeURIComponent(l); }).join("&");
  function row(item) {
    var li = document.createElement("li");
    li.className = item.colour;
    li.dataset.reason = item.reason;
    li.dataset.entry = item.entry_id;
    [item.at, item.lane, item.words + (item.not_opened && item.detail ? ": " + item.detail : "") +
       (item.override ? " (" + t.tOverride + ")" : "") +
       (item.by_number ? " (" + feed.dataset.tByNumber + (item.staff ? ": " + item.staff : "") + ")" : ""),
     [item.ticket, item.zone, item.seat, item.holder ? item.holder.name + " " + item.holder.document : ""].filter(Boolean).join(" · ")
    ].forEach(function (text) { var s = document.createElement("span"); s.textContent = text || ""; li.appendChild(s); });
    return li;
  }
  // An admission whose passage was pending has settled: its feed row and, while it is still
  // the lane's verdict, the verdict show what the lane really did.
  function settle(item) {
    delete watching[item.entry_id];
    var old = feed.querySelector("li[data-entry='" + item.entry_id + "']");
    if (old) { feed.replaceChild(row(item), old); }
    var panel = panels[item.lane];
    if (panel && panel.dataset.lastEntry === item.entry_id && item.not_opened) { show(item.lane, item, true); }
  }
  function strip(devices) {
    Object.keys(devices || {}).forEach(function (lane) {
      var ul = panels[lane] && panels[lane].querySelector("ul.devices");
      if (!ul || !devices[lane].length) { return; }
      ul.textContent = "";
      devices[lane].forEach(function (dev) {
        var li = document.createElement("li");
        li.className = "state-" + dev.state;
        li.dataset.device = dev.id;
        li.title = dev.detail || "";
        li.textContent = dev.kind_name + " " + dev.id + ": " + dev.state_name;
        ul.appendChild(li);
      });
    });
  }
  function poll() {
    var ids = Object.keys(watching);  // the newest 20 (one left pending by a stopped runtime must not crowd out the rest)
    ids.slice(0, Math.max(0, ids.length - 20)).forEach(function (id) { delete watching[id]; });
    var watch = ids.slice(-20).map(function (id) { return "&watch=" + encodeURIComponent(id); }).join("");
    fetch(feedUrl + "&after=" + lastSeq + watch, {headers: {"Accept": "application/json", "X-Requested-With": "fetch"}, credentials: "same-origin"})
      .then(function (r) { if (r.status === 401) { window.location.reload(); } return r.json(); })
      .then(function (d) {
        var first = lastSeq === 0;
        d.items.slice().reverse().forEach(function (item) {
          feed.insertBefore(row(item), feed.firstChild);
          if (item.settled === false) { watching[item.entry_id] = item.lane; }
          if (!first && !shown[item.entry_id]) { show(item.lane, item, true); }
        });
        (d.updates || []).forEach(function (item) { if (item.settled) { settle(item); } });
        strip(d.devices);
        while (feed.children.length > 40) { feed.removeChild(feed.lastChild); }
        lastSeq = Math.max(lastSeq, d.last_seq);
        root.dataset.feedSeq = String(lastSeq);
      })
      .catch(function () { root.dataset.feedSeq = "failed"; })
      .finally(function () { setTimeout(poll, 1500); });
  }
  poll();
  focusWedge();
})();
