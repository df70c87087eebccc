// Device page: asks before deleting, and polls each test still waiting until its result is in.
(function () {
  "use strict";
  document.querySelectorAll("button.danger").forEach(function (b) {
    b.addEventListener("click", function (ev) {
      if (!window.confirm(b.textContent + "?")) { ev.preventDefault(); }
    });
  });
  // picking what the box has fills the connection field (which is what is saved)
  document.querySelectorAll("select.found").forEach(function (select) {
    select.addEventListener("change", function () {
      var field = select.form.querySelector("input[name=connection]");
      if (field && select.value) { field.value = select.value; }
    });
  });
  // a turnstile is set up with its model's own fields: only the chosen model's are shown,
  // and the JSON settings only for the other kinds (the server reads the same way)
  document.querySelectorAll("select[name=kind]").forEach(function (kind) {
    var form = kind.form;
    var turnstile = form.querySelector(".turnstile-settings");
    var model = form.querySelector("select.turnstile-model");
    var json = form.querySelector(".json-settings");
    if (!turnstile || !model) { return; }
    function show() {
      var isTurnstile = kind.value === "turnstile";
      turnstile.hidden = !isTurnstile;
      if (json) { json.hidden = isTurnstile; }
      form.querySelectorAll(".model-settings").forEach(function (set) {
        set.hidden = set.dataset.model !== model.value;
      });
    }
    kind.addEventListener("change", show);
    model.addEventListener("change", show);
    show();
  });
  var section = document.getElementById("device-test");
  if (!section) { return; }
  var base = section.dataset.commandUrl.replace(/0\.json$/, "");
  function poll() {
    var waiting = section.querySelectorAll("tr[data-status=pending], tr[data-status=running]");
    if (!waiting.length) { return; }
    waiting.forEach(function (tr) {
      fetch(base + tr.dataset.command + ".json", {headers: {"Accept": "application/json", "X-Requested-With": "fetch"}, credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (c) { if (c.status !== tr.dataset.status) { window.location.reload(); } });
    });
    setTimeout(poll, 1500);
  }
  setTimeout(poll, 1500);
})();
