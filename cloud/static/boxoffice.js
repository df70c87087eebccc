/* The box office: pick seats on the seat map by click or keyboard (their labels go into the
   seats box, which a clerk may also type into), wait for an online payment, print a receipt.
   Plain script, no framework; the pages work without it (typing labels, the refresh button). */
(function () {
  "use strict";

  function labels(box) {
    return box.value.split(/[,;\n，；]+/).map(function (s) { return s.trim(); })
      .filter(function (s) { return s.length > 0; });
  }

  function same(a, b) { return a.toUpperCase() === b.toUpperCase(); }

  function setupSeatMap() {
    var box = document.getElementById("seats");
    var map = document.getElementById("seat-map");
    if (!box || !map) { return; }
    var seats = map.querySelectorAll("g.seat[data-status=free]");

    function show() {
      var picked = labels(box);
      seats.forEach(function (seat) {
        var on = picked.some(function (l) { return same(l, seat.dataset.seat); });
        seat.classList.toggle("picked", on);
        seat.setAttribute("aria-checked", on ? "true" : "false");
      });
    }

    function toggle(seat) {
      var picked = labels(box);
      var label = seat.dataset.seat;
      var kept = picked.filter(function (l) { return !same(l, label); });
      if (kept.length === picked.length) { kept.push(label); }
      box.value = kept.join(", ");
      show();
    }

    seats.forEach(function (seat) {
      seat.addEventListener("click", function () { toggle(seat); });
      seat.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(seat); }
      });
    });
    box.addEventListener("input", show);
    show();
    map.classList.add("ready");
  }

  function setupPayment() {
    var pane = document.getElementById("payment");
    if (!pane || !pane.dataset.stateUrl) { return; }
    function ask() {
      fetch(pane.dataset.stateUrl, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (answer) {
          if (answer && answer.state === "paid") {
            window.location.assign(answer.receipt);
          } else if (answer && answer.state !== "pending_payment") {
            window.location.reload();
          } else {
            window.setTimeout(ask, 2000);
          }
        })
        .catch(function () { window.setTimeout(ask, 5000); });
    }
    window.setTimeout(ask, 2000);
  }

  function setupPrint() {
    var button = document.getElementById("print-receipt");
    if (button) { button.addEventListener("click", function () { window.print(); }); }
  }

  setupSeatMap();
  setupPayment();
  setupPrint();
}());
