// steemgate login page: one-click payment, live status, memo renewal.
//
// Why a served file: the page CSP allows no inline script. The page works
// without this file (a <noscript> meta refresh reloads it and the gateway
// redirects a logged-in browser to `rd`); this adds the Keychain button, the
// copy button, a live countdown and a return within a second of the gateway
// seeing the transfer. Login is confirmed ONLY by the gateway (the status and
// verify endpoints): what a wallet says about its own broadcast proves
// nothing. With Keychain, two faster methods come first when the gateway
// offers them: "Sign in" (requestSignBuffer on the gateway's challenge text,
// posting key, free) and "Instant login" (requestSignTx on the login
// transfer the gateway built, active key); both POST the wallet's answer to
// /.steemgate/verify, which checks it server-side.
(function () {
  "use strict";
  var card = document.getElementById("login");
  if (!card) return;
  var rd = card.getAttribute("data-rd") || "/";
  var chain = card.getAttribute("data-chain");
  var payTo = card.getAttribute("data-pay-to");
  var amount = card.getAttribute("data-amount");
  var currency = card.getAttribute("data-currency");
  var state = document.getElementById("state");
  var chainEl = document.getElementById("chain");
  var memoEl = document.getElementById("memo");
  var expiresEl = document.getElementById("expires");
  var expiresAt = Date.now() + 1000 * (parseInt(card.getAttribute("data-expires-in"), 10) || 0);
  var memo = memoEl ? memoEl.textContent : "";
  var done = false;
  var renewing = false;
  var chainTitle = chain === "hive" ? "Hive" : "Steem";
  var methods = (card.getAttribute("data-methods") || "transfer").split(",");
  var revokedEl = document.getElementById("revoked");

  function say(text) {
    if (state) state.textContent = text;
  }

  // Countdown; at zero, ask the gateway for a fresh code at once.
  function tick() {
    if (done) return;
    var left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
    if (expiresEl) expiresEl.textContent = Math.floor(left / 60) + ":" + ("0" + (left % 60)).slice(-2);
    if (left === 0 && !renewing) {
      renewing = true;
      fetchStatus(0).then(apply, function () {}).then(function () { renewing = false; });
    }
  }

  function fetchStatus(wait) {
    return fetch("/.steemgate/status" + (wait ? "?wait=" + wait : ""), {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" }
    }).then(function (r) {
      if (!r.ok) throw new Error("status " + r.status);
      return r.json();
    });
  }

  // A new memo: update every place that shows it, the links and the QR code.
  function renew(s) {
    memo = s.memo;
    if (memoEl) memoEl.textContent = memo;
    var copies = document.querySelectorAll(".memo-text");
    for (var i = 0; i < copies.length; i++) copies[i].textContent = memo;
    if (s.hot_sign_url) {
      var links = document.querySelectorAll("a.hot-sign");
      for (var j = 0; j < links.length; j++) links[j].setAttribute("href", s.hot_sign_url);
    }
    var qr = document.getElementById("qr");
    if (qr) {
      var img = document.createElement("img");
      img.alt = "QR code of the signing link";
      img.src = "/.steemgate/qr.svg?memo=" + encodeURIComponent(memo);
      qr.textContent = "";
      qr.appendChild(img);
    }
    say("Your code expired; this is a new one. Waiting for your transfer… the code expires in ");
    if (expiresEl) state.appendChild(expiresEl);
  }

  function showChain(c) {
    if (!chainEl || !c) return;
    if (c.reachable === false) {
      chainEl.textContent = "The gateway cannot reach the " + chainTitle +
        " chain right now: your transfer will be seen once it can.";
      chainEl.className = "muted warn";
    } else if (typeof c.behind_seconds === "number") {
      var slow = c.behind_seconds > 30;
      chainEl.textContent = "The gateway is " + c.behind_seconds + " s behind the " + chainTitle +
        " chain" + (slow ? ": your login may take longer." : ".");
      chainEl.className = slow ? "muted warn" : "muted";
    } else {
      chainEl.textContent = "The gateway is catching up with the " + chainTitle + " chain.";
    }
  }

  function apply(s) {
    if (done || !s) return;
    if (s.authenticated) {
      done = true;
      state.className = "status done";
      state.textContent = "";
      var ok = document.createElement("span");
      ok.className = "ok";
      ok.textContent = "Logged in as @" + s.account + ".";
      state.appendChild(ok);
      state.appendChild(document.createTextNode(" Taking you back…"));
      setTimeout(function () { window.location.replace(rd); }, 800);
      return;
    }
    if (revokedEl && s.revoked_reason) {
      revokedEl.textContent = s.revoked_reason;
      revokedEl.hidden = false;
    }
    if (s.memo && s.memo !== memo) renew(s);
    if (typeof s.expires_in === "number") expiresAt = Date.now() + 1000 * s.expires_in;
    showChain(s.chain);
  }

  function poll() {
    if (done) return;
    fetchStatus(25).then(function (s) {
      apply(s);
      poll();
    }, function () {
      setTimeout(poll, 2000);
    });
  }

  // Copy the memo; without the clipboard API the memo stays select-all.
  var copy = document.getElementById("copy");
  if (copy && memoEl) {
    copy.hidden = false;
    copy.addEventListener("click", function () {
      var copied = function () {
        copy.textContent = "Copied";
        setTimeout(function () { copy.textContent = "Copy code"; }, 1500);
      };
      var select = function () {
        var range = document.createRange();
        range.selectNodeContents(memoEl);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        copy.textContent = "Selected: press Ctrl+C";
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(memo).then(copied, select);
      } else {
        select();
      }
    });
  }

  // Keychain: the extension injects its object, possibly after this script.
  function keychain() {
    return chain === "hive" ? window.hive_keychain : window.steem_keychain;
  }
  var keychainBox = document.getElementById("keychain-box");
  var keychainButton = document.getElementById("keychain");
  var accountInput = document.getElementById("account");
  function detectKeychain() {
    if (keychainBox && keychain() && typeof keychain().requestTransfer === "function") {
      keychainBox.hidden = false;
      return true;
    }
    return false;
  }
  if (!detectKeychain()) {
    setTimeout(detectKeychain, 300);
    setTimeout(detectKeychain, 1500);
  }
  if (keychainButton) {
    keychainButton.addEventListener("click", function () {
      var k = keychain();
      if (!k || done) return;
      var account = accountInput ? accountInput.value.trim().replace(/^@/, "").toLowerCase() : "";
      keychainButton.disabled = true;
      say("Confirm the transfer in Keychain…");
      k.requestTransfer(account, payTo, amount, memo, currency, function (response) {
        keychainButton.disabled = false;
        if (done) return;
        if (response && response.success) {
          say("Sent, waiting for the chain…");
        } else {
          var why = response && (response.message || response.error);
          say("Keychain did not send the transfer" + (why ? ": " + why : ".") + " You can try again.");
        }
      });
    });
  }

  // Wallet logins: a challenge from the gateway, signed in Keychain, then
  // verified by the gateway. Errors name the gateway's reason.
  function postJson(path, body) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) throw new Error(j && j.error ? j.error : "the gateway answered " + r.status);
        return j;
      });
    });
  }
  function walletAccount() {
    var account = accountInput ? accountInput.value.trim().replace(/^@/, "").toLowerCase() : "";
    if (!account) {
      say("Enter your " + chainTitle + " account name first.");
      if (accountInput) accountInput.focus();
    }
    return account;
  }
  function walletLogin(button, method) {
    var k = keychain();
    if (!k || done) return;
    var account = walletAccount();
    if (!account) return;
    button.disabled = true;
    var again = function (why) {
      button.disabled = false;
      say(why + " You can try again.");
    };
    say("Asking the gateway for a login challenge…");
    postJson("/.steemgate/challenge", { account: account, method: method }).then(function (c) {
      say("Confirm in Keychain…");
      var verify = function (body) {
        say("Checking the signature…");
        postJson("/.steemgate/verify", body).then(function (s) {
          button.disabled = false;
          apply(s);
        }, function (e) { again("Not logged in: " + e.message + "."); });
      };
      if (method === "signature") {
        k.requestSignBuffer(account, c.challenge, "Posting", function (r) {
          if (r && r.success && r.result) verify({ signature: r.result, challenge: c.challenge });
          else again("Keychain did not sign" + (r && r.message ? ": " + r.message : ".") );
        });
      } else {
        k.requestSignTx(account, c.transaction, "Active", function (r) {
          if (r && r.success && r.result) verify({ transaction: r.result });
          else again("Keychain did not sign" + (r && r.message ? ": " + r.message : "."));
        });
      }
    }, function (e) { again("No challenge: " + e.message + "."); });
  }
  function setupWallet() {
    var k = keychain();
    if (!k) return;
    var offered = false;
    var pairs = [["wallet-signature", "signature", "requestSignBuffer"],
                 ["wallet-instant", "signed_transfer", "requestSignTx"]];
    for (var i = 0; i < pairs.length; i++) {
      var button = document.getElementById(pairs[i][0]);
      if (!button || !button.hidden || methods.indexOf(pairs[i][1]) < 0) continue;
      if (typeof k[pairs[i][2]] !== "function") continue;
      button.hidden = false;
      offered = true;
      (function (b, m) {
        b.addEventListener("click", function () { walletLogin(b, m); });
      })(button, pairs[i][1]);
    }
    var help = document.getElementById("wallet-help");
    if (offered && help) help.hidden = false;
  }
  setupWallet();
  setTimeout(setupWallet, 300);
  setTimeout(setupWallet, 1500);

  setInterval(tick, 1000);
  tick();
  poll();
})();
