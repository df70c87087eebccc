// The public site's small helpers: countdowns, picking seats on the map, and waiting for a
// payment's confirmation. Every page works without them; they only make it quicker.
(function () {
  "use strict";

  function tick() {
    document.querySelectorAll(".countdown[data-until]").forEach(function (el) {
      var left = Math.max(0, Math.floor((Date.parse(el.dataset.until) - Date.now()) / 1000));
      var d = Math.floor(left / 86400), h = Math.floor(left % 86400 / 3600);
      var m = Math.floor(left % 3600 / 60), s = left % 60;
      el.textContent = (d ? d + "d " : "") + [h, m, s].map(function (n) {
        return String(n).padStart(2, "0");
      }).join(":");
    });
  }
  tick();
  setInterval(tick, 1000);

  // the seat map: a free seat toggles on a tap (or Enter / Space), up to the form's limit
  var form = document.getElementById("pick-form");
  if (form) {
    var limit = parseInt(form.dataset.limit, 10) || 6;
    var count = document.getElementById("picked-count");
    var picked = [];
    function toggle(rect) {
      var id = rect.dataset.seat, at = picked.indexOf(id);
      if (at >= 0) {
        picked.splice(at, 1);
        form.querySelector('input[value="' + id + '"]').remove();
        rect.classList.remove("picked");
        rect.setAttribute("aria-checked", "false");
      } else if (picked.length < limit) {
        picked.push(id);
        var input = document.createElement("input");
        input.type = "hidden"; input.name = "seat"; input.value = id;
        form.appendChild(input);
        rect.classList.add("picked");
        rect.setAttribute("aria-checked", "true");
      }
      count.textContent = picked.length;
      form.hidden = picked.length === 0;
    }
    // the drawing becomes a group of checkboxes, no longer a picture
    var drawing = document.getElementById("seat-svg");
    if (drawing) { drawing.setAttribute("role", "group"); }
    document.querySelectorAll("#seat-svg rect.pickable").forEach(function (rect) {
      rect.setAttribute("tabindex", "0");
      rect.setAttribute("role", "checkbox");
      rect.setAttribute("aria-checked", "false");
      rect.setAttribute("aria-label", rect.textContent.trim());
      rect.addEventListener("click", function () { toggle(rect); });
      rect.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(rect); }
      });
    });
  }

  // an order waiting for its payment: ask every two seconds; a change reloads the page
  var waiting = document.getElementById("waiting");
  var state = document.getElementById("order-state");
  if (waiting && state && waiting.dataset.stateUrl) {
    setInterval(function () {
      fetch(waiting.dataset.stateUrl, {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (got) {
          if (got && got.state !== state.dataset.state) {
            window.location.href = waiting.dataset.orderUrl;
          }
        })
        .catch(function () {});
    }, 2000);
  }
})();
