/* Durable Lab: small behaviours shared by every page (no framework beyond htmx). */
(function () {
  "use strict";

  // A form someone has typed into is "dirty": live refreshes must not wipe it.
  document.addEventListener("input", function (event) {
    var section = event.target.closest("[hx-trigger]");
    if (section) section.dataset.dirty = "1";
  });

  // A form that was just sent is no longer being edited: let its section refresh again.
  function clearDirty(element) {
    var section = element && element.closest("[hx-trigger]");
    if (section) delete section.dataset.dirty;
  }
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.target.tagName === "FORM") clearDirty(event.target.parentElement);
  });
  // A form sent by one of its buttons (a callback card's Approve / Reject) comes back as the
  // swapped-in answer: clear its section while the old card is still in the page.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.parentElement && target.querySelector("form")) clearDirty(target.parentElement);
  });

  // Used in hx-trigger filters: refresh a section only while nobody is editing inside it, and
  // while it shows no error and no open raw editor (a refresh would wipe what the person reads).
  window.durableIdle = function (element) {
    return !element.dataset.dirty && !element.contains(document.activeElement) &&
      !element.querySelector(".field-error, details.raw[open]");
  };

  // The operation drawer on the execution page: close with its button or Escape.
  function closeDrawer() {
    var drawer = document.getElementById("op-drawer");
    if (drawer) drawer.innerHTML = "";
  }
  document.addEventListener("click", function (event) {
    if (event.target.closest(".op-panel-close")) closeDrawer();
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closeDrawer();
  });

  // Relative times ("483 ms ago", "in 2 min 3 s") stay current: the server renders them once,
  // this re-renders them each second in the same words (the same units as the `duration` filter).
  function duration(seconds) {
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 60) return seconds.toFixed(2) + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min " + Math.floor(seconds % 60) + " s";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
    return (seconds / 86400).toFixed(1) + " d";
  }
  function refreshRelativeTimes() {
    var now = Date.now();
    document.querySelectorAll("time[data-since]").forEach(function (element) {
      var seconds = (now - Date.parse(element.getAttribute("datetime"))) / 1000;
      if (isNaN(seconds)) return;
      element.textContent = seconds < 0 ? "in " + duration(-seconds) : duration(seconds) + " ago";
    });
  }
  window.setInterval(refreshRelativeTimes, 1000);

  // Callback countdowns: the server renders the seconds left (its clock runs the timers); each
  // element counts down from the moment it appeared, so a phone's wrong clock does not matter.
  // The words come from the server (COUNTDOWN_WORDS in executions/templatetags/dashboard.py,
  // written into the page as #countdown-words): one table, so both renderers say the same.
  var countdownWords = null;
  function countdownText(left) {
    if (!countdownWords) {
      var table = document.getElementById("countdown-words");
      if (!table) return null;
      countdownWords = JSON.parse(table.textContent);
    }
    if (left <= 0) return countdownWords.expired;
    var seconds = Math.floor(left);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    var values = {
      s: seconds, ss: pad(seconds % 60), m: Math.floor(seconds / 60), h: Math.floor(seconds / 3600),
      mm: pad(Math.floor((seconds % 3600) / 60)), d: (seconds / 86400).toFixed(1)
    };
    var words = countdownWords.rules.find(function (rule) { return rule[0] === null || seconds < rule[0]; })[1];
    return words.replace(/\{(\w+)\}/g, function (_, name) { return String(values[name]); });
  }
  window.durableCountdownText = countdownText;
  // A live refresh swaps in a new element for the same deadline, rendered a moment earlier on the
  // server: counting on from the first sighting of that deadline keeps the countdown from jumping back.
  var countdownAnchors = {};
  function countdownAnchor(element, now) {
    var key = element.getAttribute("datetime");
    if (!countdownAnchors[key]) countdownAnchors[key] = { left: parseFloat(element.dataset.countdown), at: now };
    return countdownAnchors[key];
  }
  function refreshCountdowns() {
    var now = Date.now();
    document.querySelectorAll("time[data-countdown]").forEach(function (element) {
      var anchor = countdownAnchor(element, now);
      var left = anchor.left - (now - anchor.at) / 1000;
      var text = countdownText(left);
      if (isNaN(left) || text === null) return;
      element.textContent = text;
      element.classList.toggle("urgent", left > 0 && left < 60);
      element.classList.toggle("expired", left <= 0);
    });
  }
  refreshCountdowns();
  window.setInterval(refreshCountdowns, 1000);
  document.addEventListener("htmx:afterSettle", refreshCountdowns);

  // The Start page: choosing a demo function fills in its example input, unless the person
  // already typed their own (anything other than an empty object or the previous example).
  function prefillExample() {
    var data = document.getElementById("example-inputs");
    var select = document.getElementById("id_function");
    var payload = document.getElementById("id_payload");
    if (!data || !select || !payload) return;
    var examples = JSON.parse(data.textContent);
    var shown = null;
    function apply() {
      var current = payload.value.trim();
      var untouched = current === "" || current === "{}" || (shown !== null && current === shown.trim());
      var example = examples[select.value];
      if (untouched && example) {
        payload.value = example;
        shown = example;
      }
      var note = document.getElementById("example-note");
      if (note) note.hidden = !(example && payload.value === example);
    }
    select.addEventListener("change", apply);
    apply();
  }
  document.addEventListener("DOMContentLoaded", prefillExample);

  // Confirm destructive POSTs (stop, kill) before they are sent.
  document.addEventListener("submit", function (event) {
    var message = event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });
})();
