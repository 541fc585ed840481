/* Durable Lab: small behaviours shared by every page (no framework beyond htmx). */
(function () {
  "use strict";

  // A form someone has typed into is "dirty": live refreshes must not wipe it.
  document.addEventListener("input", function (event) {
    var section = event.target.closest("[hx-trigger]");
    if (section) section.dataset.dirty = "1";
  });

  // A form that was just sent is no longer being edited: let its section refresh again.
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.target.tagName !== "FORM") return;
    var section = event.target.parentElement && event.target.parentElement.closest("[hx-trigger]");
    if (section) delete section.dataset.dirty;
  });

  // Used in hx-trigger filters: refresh a section only while nobody is editing inside it.
  window.durableIdle = function (element) {
    return !element.dataset.dirty && !element.contains(document.activeElement);
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

  // Confirm destructive POSTs (stop, kill) before they are sent.
  document.addEventListener("submit", function (event) {
    var message = event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });
})();
