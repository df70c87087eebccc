// The public site's small helpers: countdowns to a sale's opening, in the reader's clock.
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
})();
