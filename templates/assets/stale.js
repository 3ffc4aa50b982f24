// steemgate stale-follows report: selection, unfollow through the visitor's
// wallet, and the chain as the only judge of what was unfollowed.
//
// Why a served file: the page CSP allows no inline script. The page works
// without it (overview, sorting, paging, CSV); this adds the checkboxes'
// memory, "select all stale", and the unfollow. The operations are never
// built here: the report hands them out (`?prepare=`, built by
// chain::follow), so what Keychain signs is byte for byte what the report
// shows. After each batch the page asks the report to re-read the follow
// list from the chain (`?verify=`, which drops the report's cache) and
// removes only the rows the chain no longer lists; names still followed
// after the wallet said "done" are flagged, never counted as unfollowed.
(function () {
  "use strict";
  var root = document.getElementById("report");
  if (!root) return;
  var account = root.getAttribute("data-account");
  var chain = root.getAttribute("data-chain");
  var batchSize = parseInt(root.getAttribute("data-batch"), 10) || 5;
  var simulated = root.getAttribute("data-simulated") === "1";
  var toolbar = document.getElementById("toolbar");
  if (!toolbar) return;
  var namesEl = document.getElementById("stale-names");
  var allStale = [];
  try { allStale = JSON.parse(namesEl ? namesEl.textContent : "[]"); } catch (e) { allStale = []; }
  // Null-prototype maps: an account may be called "constructor".
  var staleSet = Object.create(null);
  allStale.forEach(function (n) { staleSet[n] = true; });

  var storeKey = "steemgate-stale-selection:" + account;
  var selected = Object.create(null);
  try {
    (JSON.parse(sessionStorage.getItem(storeKey) || "[]") || []).forEach(function (n) {
      if (staleSet[n]) selected[n] = true;
    });
  } catch (e) { selected = Object.create(null); }

  var countEl = document.getElementById("selected-count");
  var keychainButton = document.getElementById("unfollow-keychain");
  var simButton = document.getElementById("unfollow-simulated");
  var progress = document.getElementById("progress");
  var byHand = document.getElementById("by-hand");
  var byHandList = document.getElementById("by-hand-list");
  var busy = false;

  function names() { return Object.keys(selected).sort(); }
  function save() {
    try { sessionStorage.setItem(storeKey, JSON.stringify(names())); } catch (e) { /* private mode */ }
  }
  function boxes() { return Array.prototype.slice.call(document.querySelectorAll("input.pick")); }
  function keychain() { return chain === "hive" ? window.hive_keychain : window.steem_keychain; }

  function refresh() {
    var count = names().length;
    countEl.textContent = count + " selected";
    boxes().forEach(function (box) { box.checked = !!selected[box.value]; });
    var k = keychain();
    keychainButton.hidden = !(k && typeof k.requestBroadcast === "function");
    simButton.hidden = !simulated;
    keychainButton.disabled = busy || count === 0;
    simButton.disabled = busy || count === 0;
    byHand.hidden = count === 0;
    save();
  }

  toolbar.hidden = false;
  boxes().forEach(function (box) {
    box.addEventListener("change", function () {
      if (box.checked) selected[box.value] = true; else delete selected[box.value];
      refresh();
      byHandStale = true;
    });
  });
  document.getElementById("select-all").addEventListener("click", function () {
    allStale.forEach(function (n) { selected[n] = true; });
    byHandStale = true;
    refresh();
  });
  document.getElementById("select-none").addEventListener("click", function () {
    selected = {};
    byHandStale = true;
    refresh();
  });

  function getJSON(query) {
    return fetch("?" + query, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" }
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body && body.error ? body.error : "HTTP " + r.status);
        return body;
      });
    });
  }

  // The demo's wallet: the gateway broadcasts the same operations to the
  // devnet for the logged-in account (devnet only, no keys anywhere).
  var simulatedWallet = {
    requestBroadcast: function (who, operations, keyType, callback) {
      fetch("/.steemgate/devnet/broadcast", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ operations: operations })
      }).then(function (r) { return r.json(); }).then(callback, function (e) {
        callback({ success: false, error: "network", message: String(e) });
      });
    }
  };

  function broadcast(wallet, operations) {
    return new Promise(function (resolve) {
      try {
        wallet.requestBroadcast(account, operations, "Posting", resolve);
      } catch (e) {
        resolve({ success: false, error: "wallet", message: String(e) });
      }
    });
  }

  function wait(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function rowOf(name) {
    return document.querySelector('tr[data-name="' + name + '"]');
  }

  function bump(selector, delta) {
    var el = document.querySelector(selector);
    if (!el) return;
    var n = parseInt(el.textContent, 10);
    if (!isNaN(n)) el.textContent = String(Math.max(0, n + delta));
  }

  function gone(name) {
    var row = rowOf(name);
    if (row) {
      if (/never posted/.test(row.textContent)) bump(".never-count", -1);
      row.parentNode.removeChild(row);
    }
    delete selected[name];
    delete staleSet[name];
    allStale = allStale.filter(function (n) { return n !== name; });
    bump(".stale-count", -1);
    bump(".following-count", -1);
  }

  function flag(name, text) {
    var row = rowOf(name);
    if (!row) return;
    row.className = "failed";
    var cell = row.querySelector(".row-state");
    if (cell) cell.textContent = text;
  }

  function step(text) {
    var li = document.createElement("li");
    li.textContent = text;
    progress.appendChild(li);
    progress.hidden = false;
    return li;
  }

  // Asks the chain (through the report) until every name is gone or the
  // time is up; resolves with {gone: [...], still: [...]}.
  function confirm(batch) {
    var pending = batch.slice();
    var confirmed = [];
    var tries = 0;
    function once() {
      tries += 1;
      return getJSON("verify=" + pending.join(",")).then(function (answer) {
        answer.gone.forEach(function (n) { confirmed.push(n); gone(n); });
        pending = answer.still_following;
        if (pending.length === 0 || tries >= 20) return { gone: confirmed, still: pending };
        return wait(1500).then(once);
      });
    }
    return wait(1000).then(once);
  }

  function run(wallet, label) {
    var all = names();
    if (!all.length || busy) return;
    busy = true;
    refresh();
    progress.innerHTML = "";
    var batches = [];
    for (var i = 0; i < all.length; i += batchSize) batches.push(all.slice(i, i + batchSize));
    step("Unfollowing " + all.length + " accounts with " + label + " in " + batches.length +
      " batch" + (batches.length === 1 ? "" : "es") + " of up to " + batchSize + ".");
    var done = 0;
    var index = 0;
    function next() {
      if (index >= batches.length) {
        step("Done: " + done + " unfollowed, as the chain shows.").className = "ok";
        return Promise.resolve();
      }
      var batch = batches[index];
      index += 1;
      var li = step("Batch " + index + " of " + batches.length + " (" + batch.join(", ") + "): asking the wallet…");
      li.setAttribute("data-batch", String(index));
      return getJSON("prepare=" + batch.join(",")).then(function (prepared) {
        // Another tab may have logged in as someone else since this page
        // loaded: never sign or send one account's operations as another.
        if (prepared.account !== account) {
          throw new Error("you are now logged in as @" + prepared.account + ", not @" + account + "; reload the page");
        }
        return broadcast(wallet, prepared.operations);
      }).then(function (answer) {
        if (!answer || !answer.success) {
          var why = (answer && (answer.message || answer.error)) || "no answer";
          // Both Keychains say "user_cancel" when the person declines.
          var refused = !!answer && answer.error === "user_cancel";
          var rest = index < batches.length ? "; the remaining batches were not sent." : ".";
          li.className = "failed";
          li.setAttribute("data-outcome", refused ? "refused" : "failed");
          if (refused) {
            li.textContent = "Batch " + index + ": approval refused: " + why + ". Nothing in it was sent" + rest;
            batch.forEach(function (n) { flag(n, "not sent: approval refused"); });
            return "stop";
          }
          // A wallet or node error may come after the node took the
          // transaction: ask the chain instead of assuming nothing happened.
          li.textContent = "Batch " + index + ": failed: " + why + "; asking the chain what it shows…";
          return getJSON("verify=" + batch.join(",")).then(function (answer) {
            answer.gone.forEach(function (n) { done += 1; gone(n); });
            answer.still_following.forEach(function (n) { flag(n, "failed: " + why); });
            li.textContent = "Batch " + index + ": failed: " + why + ". The chain shows " + answer.gone.length +
              " of " + batch.length + " unfollowed" + rest;
          }, function () {
            batch.forEach(function (n) { flag(n, "unknown: the chain could not be asked"); });
            li.textContent = "Batch " + index + ": failed: " + why + ". The chain could not be asked what it shows" + rest;
          }).then(function () { return "stop"; });
        }
        li.textContent = "Batch " + index + ": the wallet broadcast it; waiting for the chain…";
        return confirm(batch).then(function (result) {
          done += result.gone.length;
          var text = "Batch " + index + ": " + result.gone.length + " of " + batch.length + " confirmed on the chain";
          if (result.still.length) {
            text += "; still followed after the wallet said done: " + result.still.join(", ");
            result.still.forEach(function (n) { flag(n, "still followed on the chain"); });
            li.className = "failed";
            li.setAttribute("data-outcome", "unconfirmed");
          } else {
            li.className = "ok";
            li.setAttribute("data-outcome", "confirmed");
          }
          li.textContent = text + ".";
        });
      }).then(function (stop) {
        return stop === "stop" ? null : next();
      }, function (e) {
        li.textContent = "Batch " + index + ": failed: " + e.message +
          (index < batches.length ? "; the remaining batches were not sent." : ".");
        li.className = "failed";
        li.setAttribute("data-outcome", "failed");
        batch.forEach(function (n) { flag(n, "unknown: " + e.message); });
      });
    }
    next().then(function () {
      busy = false;
      byHandStale = true;
      refresh();
    });
  }

  keychainButton.addEventListener("click", function () {
    var k = keychain();
    if (k) run(k, chain === "hive" ? "Hive Keychain" : "Steem Keychain");
  });
  simButton.addEventListener("click", function () { run(simulatedWallet, "the simulated wallet"); });

  // Without Keychain: one hot-sign link per account, and the operation.
  var byHandStale = true;
  function fillByHand() {
    if (!byHandStale || !byHand.open) return;
    byHandStale = false;
    var list = names().slice(0, 50);
    byHandList.innerHTML = "";
    if (!list.length) return;
    getJSON("prepare=" + list.join(",")).then(function (prepared) {
      prepared.by_hand.forEach(function (item) {
        var li = document.createElement("li");
        var a = document.createElement("a");
        a.href = item.hot_sign_url;
        a.rel = "noopener";
        a.target = "_blank";
        a.textContent = "Unfollow @" + item.name;
        var code = document.createElement("code");
        code.textContent = item.operation;
        li.appendChild(a);
        li.appendChild(code);
        byHandList.appendChild(li);
      });
      if (names().length > list.length) {
        var more = document.createElement("li");
        more.textContent = "(the first 50 of " + names().length + " selected)";
        byHandList.appendChild(more);
      }
    }, function (e) {
      byHandList.textContent = "Could not prepare the operations: " + e.message;
    });
  }
  byHand.addEventListener("toggle", fillByHand);
  document.getElementById("check-chain").addEventListener("click", function () {
    var list = names().slice(0, 50);
    if (!list.length) return;
    var li = step("Checking the chain for " + list.length + " selected accounts…");
    getJSON("verify=" + list.join(",")).then(function (answer) {
      answer.gone.forEach(gone);
      li.textContent = answer.gone.length + " gone from your follows; " + answer.still_following.length + " still followed.";
      byHandStale = true;
      refresh();
      fillByHand();
    }, function (e) { li.textContent = "Could not check: " + e.message; });
  });

  // Keychain injects itself after load; look again a moment later.
  refresh();
  setTimeout(refresh, 500);
  // For bench/report_page.rs: when the page became usable.
  if (window.performance && performance.mark) performance.mark("stale-ready");
})();
