/* The execution timeline: draw the figure from timeline.json, then keep it live.
 *
 * Plotly.react with a fixed layout.uirevision keeps zoom and pan across updates. When the
 * version of the data changes, an "execution-changed" event tells htmx sections to refresh.
 */
(function () {
  "use strict";
  var el = document.getElementById("timeline");
  if (!el) return;
  var live = document.getElementById("tl-live");
  var compress = document.getElementById("tl-compress");
  var state = document.getElementById("tl-state");
  var version = el.dataset.version;
  var last = null;
  var timer = null;
  var POLL_MS = 1000;

  function render() {
    if (!last || !window.Plotly) return;
    var layout = last.figure.layout;
    layout.xaxis = layout.xaxis || {};
    var compressed = Boolean(compress && compress.checked);
    layout.xaxis.rangebreaks = compressed ? last.rangebreaks : [];
    if (compressed) delete layout.xaxis.range;
    // Each cut gets its marker ("⋯ 9.00 s idle ⋯"), so compressed time never looks continuous.
    (layout.shapes || []).concat(layout.annotations || []).forEach(function (item) {
      if (item.name === "idle-break") item.visible = compressed;
    });
    if (el.querySelector("p.muted")) el.innerHTML = "";
    window.DurablePlots.draw(el, last.figure.data, layout);
  }

  function schedule() {
    clearTimeout(timer);
    if (live && live.checked && last && last.running) timer = setTimeout(refresh, POLL_MS);
  }

  function refresh() {
    fetch(el.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (payload) {
        last = payload;
        render();
        if (state) state.textContent = payload.running ? (live.checked ? "live · " + payload.status : "paused") : payload.status;
        if (live && !payload.running) { live.checked = false; live.disabled = true; }
        if (payload.version !== version) {
          version = payload.version;
          if (window.htmx) window.htmx.trigger(document.body, "execution-changed");
        }
        schedule();
      })
      .catch(function (error) {
        if (state) state.textContent = "update failed (" + error.message + "), retrying…";
        timer = setTimeout(refresh, POLL_MS * 3);
      });
  }

  if (live) live.addEventListener("change", function () { if (live.checked) refresh(); else clearTimeout(timer); });
  if (compress) compress.addEventListener("change", render);
  var resizing = null;
  window.addEventListener("resize", function () { clearTimeout(resizing); resizing = setTimeout(render, 250); });
  // Clicking a mark jumps to that operation's row in the operations table (a deep link).
  function wireClicks() {
    if (!el.on) return;
    el.on("plotly_click", function (event) {
      var point = event.points && event.points[0];
      var rows = (last && last.figure.layout.meta && last.figure.layout.meta.rows) || {};
      var opId = point && rows[point.y];
      if (opId && window.htmx && el.dataset.opUrl) {
        // The drawer shows the operation's outcome, attempts and events.
        window.htmx.ajax("GET", el.dataset.opUrl.replace("OP_ID", encodeURIComponent(opId)), { target: "#op-drawer" });
      }
      var row = opId && document.getElementById("op-" + opId);
      if (!row) return;
      history.replaceState(null, "", "#op-" + opId);
      row.scrollIntoView({ behavior: "smooth", block: "center" });
      row.classList.add("flash");
      setTimeout(function () { row.classList.remove("flash"); }, 1500);
    });
  }
  function start() {
    refresh();
    var wait = setInterval(function () { if (el.on) { clearInterval(wait); wireClicks(); } }, 200);
  }
  if (document.readyState === "complete") start(); else window.addEventListener("load", start);
})();
