// t-minus pages: live countdowns, live regions refreshed from the log's
// stream, and the answer buttons (which sign with a passkey through
// /assets/passkey.js). The pages are complete without this script; it only
// keeps them current and makes the buttons work.
(function () {
  "use strict";

  var body = document.body;
  // The server's clock when the page was made, against the browser's: the
  // countdowns count from the server's time.
  var serverNow = Date.parse(body.getAttribute("data-now") || "");
  var skew = isNaN(serverNow) ? 0 : serverNow - Date.now();

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  // The CLI's countdown: 2d03h04m, 1h02m03s, 4m05s, 7s.
  function countdown(ms) {
    // Whole seconds left, rounded up: T-1s until the deadline itself.
    var total = Math.ceil(ms / 1000);
    var days = Math.floor(total / 86400);
    var hours = Math.floor((total % 86400) / 3600);
    var mins = Math.floor((total % 3600) / 60);
    var secs = total % 60;
    if (days > 0) return days + "d" + pad(hours) + "h" + pad(mins) + "m";
    if (hours > 0) return hours + "h" + pad(mins) + "m" + pad(secs) + "s";
    if (mins > 0) return mins + "m" + pad(secs) + "s";
    return secs + "s";
  }

  function tick() {
    var now = Date.now() + skew;
    var clocks = document.querySelectorAll("time[data-fire]");
    for (var i = 0; i < clocks.length; i++) {
      var fire = Date.parse(clocks[i].getAttribute("datetime"));
      if (isNaN(fire)) continue;
      var left = fire - now;
      var text = left > 0 ? "T-" + countdown(left) : "due";
      if (clocks[i].textContent !== text) clocks[i].textContent = text;
    }
  }

  // What happened since the last announcement, read out together.
  var heard = [];
  function announce(text) {
    heard.push(text);
  }
  function flushAnnouncements() {
    var region = document.getElementById("announce");
    if (region && heard.length) region.textContent = heard.join("; ");
    heard = [];
  }

  // Fetches the page again and puts its new live regions in place of the
  // old ones (elements with `data-live` and an id); forms are left alone,
  // so what someone is typing stays.
  var refreshing = false;
  var again = false;
  function refresh() {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    fetch(window.location.href, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "text/html" }
    })
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var regions = document.querySelectorAll("[data-live][id]");
        for (var i = 0; i < regions.length; i++) {
          var next = fresh.getElementById(regions[i].id);
          if (next && next.innerHTML !== regions[i].innerHTML) {
            regions[i].innerHTML = next.innerHTML;
            regions[i].classList.remove("flash");
            void regions[i].offsetWidth;
            regions[i].classList.add("flash");
          }
        }
        var freshBody = fresh.body;
        var now = freshBody && Date.parse(freshBody.getAttribute("data-now") || "");
        if (now && !isNaN(now)) skew = now - Date.now();
        body.setAttribute("data-refreshed", String(Number(body.getAttribute("data-refreshed") || "0") + 1));
        tick();
      })
      .catch(function () {})
      .then(function () {
        refreshing = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  var pendingRefresh = null;
  function soon() {
    if (pendingRefresh) return;
    pendingRefresh = setTimeout(function () {
      pendingRefresh = null;
      flushAnnouncements();
      refresh();
    }, 50);
  }

  // The log's actions that change what a page shows.
  var ACTIONS = [
    "scheduled", "updated", "linked", "confirmed", "deferred", "declined",
    "opened", "blocked", "fired", "missed", "cancelled", "escalated", "removed"
  ];

  function follow(url) {
    if (!url || !window.EventSource) return;
    var source = new EventSource(url, { withCredentials: true });
    ACTIONS.forEach(function (action) {
      source.addEventListener(action, function (message) {
        try {
          var entry = JSON.parse(message.data);
          var who = entry.agent ? entry.agent + " " : "";
          announce(who + action);
        } catch (e) {
          announce(action);
        }
        soon();
      });
    });
    source.addEventListener("open", function () {
      body.setAttribute("data-live-connected", "true");
    });
  }

  function errorText(error) {
    if (!error) return "the answer failed";
    if (error.message) return error.message;
    return String(error);
  }

  var DONE = { confirm: "Confirmed", defer: "Deferred", decline: "Declined" };

  function answerForms() {
    var section = document.querySelector("section.answer[data-event]");
    if (!section) return;
    var fieldset = section.querySelector("fieldset[data-needs-script]");
    var status = document.getElementById("answer-status");
    function say(text, isError) {
      if (!status) return;
      status.textContent = text;
      status.className = isError ? "error" : "";
    }
    var passkey = window.tMinusPasskey;
    if (!passkey || typeof passkey.answer !== "function") {
      say("Answering is unavailable: the passkey script did not load.", true);
      return;
    }
    if (fieldset) fieldset.disabled = false;
    var eventRef = section.getAttribute("data-event");
    var forms = section.querySelectorAll("form[data-answer]");
    for (var i = 0; i < forms.length; i++) {
      forms[i].addEventListener("submit", function (submitted) {
        submitted.preventDefault();
        var form = submitted.currentTarget;
        var answer = form.getAttribute("data-answer");
        var options = { answer: answer };
        if (form.elements.duration) options.duration = form.elements.duration.value;
        if (form.elements.reason && form.elements.reason.value) options.reason = form.elements.reason.value;
        if (fieldset) fieldset.disabled = true;
        say("Waiting for your passkey to sign the answer…", false);
        Promise.resolve()
          .then(function () {
            return passkey.answer(eventRef, options);
          })
          .then(
            function () {
              say(DONE[answer] + ": signed with your passkey and recorded.", false);
              refresh();
            },
            function (error) {
              say("Not recorded: " + errorText(error), true);
            }
          )
          .then(function () {
            if (fieldset) fieldset.disabled = false;
          });
      });
    }
  }

  function signOut() {
    var buttons = document.querySelectorAll("[data-signout]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function () {
        var passkey = window.tMinusPasskey;
        var done = function () {
          window.location.assign("/");
        };
        if (passkey && typeof passkey.signOut === "function") {
          Promise.resolve(passkey.signOut()).then(done, done);
        } else {
          done();
        }
      });
    }
  }

  function start() {
    tick();
    setInterval(tick, 1000);
    follow(body.getAttribute("data-stream"));
    answerForms();
    signOut();
  }

  // Deferred scripts (this one and passkey.js) have all run by then.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
