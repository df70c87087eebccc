/* Wicket ops pages: ask for the page's live part again every few seconds and put it in place.
   A failed request marks the page stale (the banner says the numbers are not current); a
   request sent back to the sign-in page reloads the page, which then shows the sign-in. */
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) { return; }
  var url = live.getAttribute("data-live");
  var every = (parseInt(live.getAttribute("data-refresh"), 10) || 5) * 1000;

  function tick() {
    fetch(url, {credentials: "same-origin", cache: "no-store", redirect: "follow"})
      .then(function (r) {
        if (r.redirected || r.status === 401 || r.status === 403) {
          window.location.reload();
          return null;
        }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        live.innerHTML = html;
        document.body.classList.remove("stale");
      })
      .catch(function () { document.body.classList.add("stale"); })
      .then(function () { window.setTimeout(tick, every); });
  }
  window.setTimeout(tick, every);
}());
