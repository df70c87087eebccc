// The dashboard refreshes itself: it polls its JSON every 5 seconds and rewrites the figures.
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root) { return; }
  function get(obj, path) {
    return path.split(".").reduce(function (o, k) { return o == null ? o : o[k]; }, obj);
  }
  function duration(s) {
    if (s == null) { return "–"; }
    s = Math.floor(s);
    if (s < 120) { return s + " s"; }
    if (s < 7200) { return Math.floor(s / 60) + " min"; }
    return Math.floor(s / 3600) + " h";
  }
  function cells(tr, values) {
    values.forEach(function (v) {
      var td = document.createElement("td");
      if (v != null && typeof v === "object") {  // words in another language: {text, lang}
        if (v.lang) { td.lang = v.lang; }
        v = v.text;
      }
      td.textContent = v == null ? "" : String(v);
      tr.appendChild(td);
    });
  }
  var rows = {
    gates: function (d) { return d.gates.map(function (g) { return [g.gate + " " + (g.gate_name || ""), g.admitted, g.refused]; }); },
    lanes: function (d) { return d.lanes.map(function (l) { return [l.lane, l.gate, l.direction_name, l.admitted, l.refused]; }); },
    devices: function (d) { return d.devices.map(function (x) { return [x.id, x.kind_name, x.lane, x.state_name, {text: x.detail_words, lang: x.detail_lang}]; }); },
    streams: function (d) { return d.sync.streams.map(function (s) { return [s.stream_name, s.cursor, s.last_ok_local, s.detail]; }); },
    refused: function (d) { return d.sync.refused_by_reason.map(function (r) { return [r.words, r.count]; }); }
  };
  function refresh() {
    fetch(root.dataset.url, {headers: {"Accept": "application/json", "X-Requested-With": "fetch"}, credentials: "same-origin"})
      .then(function (r) { if (r.status === 401) { window.location.reload(); } return r.json(); })
      .then(function (d) {
        root.querySelectorAll("[data-field]").forEach(function (el) {
          var v = get(d, el.dataset.field);
          el.textContent = el.dataset.format === "duration" ? duration(v) : (v == null ? "–" : String(v));
        });
        root.querySelectorAll("[data-rows]").forEach(function (table) {
          var body = table.querySelector("tbody");
          var data = rows[table.dataset.rows](d);
          if (!data.length) { return; }
          body.textContent = "";
          data.forEach(function (values) { var tr = document.createElement("tr"); cells(tr, values); body.appendChild(tr); });
        });
        root.dataset.refreshed = d.at;
      })
      .catch(function () { root.dataset.refreshed = "failed"; });
  }
  setInterval(refresh, 5000);
})();
