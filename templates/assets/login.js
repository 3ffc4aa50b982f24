// steemgate login page: waits for the gateway to see the transfer, then returns to `rd`.
// Uses the long-polling status endpoint; the page also works without JavaScript
// (a meta refresh reloads it, and a logged-in session is redirected to `rd`).
(function () {
  "use strict";
  var card = document.getElementById("login");
  if (!card) return;
  var rd = card.getAttribute("data-rd") || "/";
  var state = document.getElementById("state");
  var memoEl = document.getElementById("memo");
  var expiresEl = document.getElementById("expires");
  var expiresAt = Date.now() + 1000 * (parseInt(card.getAttribute("data-expires-in"), 10) || 0);

  function tick() {
    var left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
    if (expiresEl) expiresEl.textContent = Math.floor(left / 60) + ":" + ("0" + (left % 60)).slice(-2);
  }
  setInterval(tick, 1000);
  tick();

  function poll() {
    fetch("/.steemgate/status?wait=25", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.authenticated) {
          state.textContent = "Logged in as @" + s.account + ". Taking you back…";
          window.location.replace(rd);
          return;
        }
        if (s.memo && memoEl && memoEl.textContent !== s.memo) {
          memoEl.textContent = s.memo; // the old code expired: a fresh one
        }
        if (typeof s.expires_in === "number") expiresAt = Date.now() + 1000 * s.expires_in;
        poll();
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  poll();
})();
