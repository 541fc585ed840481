/* Lab pages: draw Plotly figures from <script type="application/json" data-plot="target-id"> and
 * redraw them after every htmx swap. The plot containers live outside the polled section, so
 * Plotly.react updates them in place and layout.uirevision keeps the reader's zoom.
 */
(function () {
  "use strict";
  var config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

  function draw() {
    if (!window.Plotly) return;
    document.querySelectorAll("script[type='application/json'][data-plot]").forEach(function (script) {
      var target = document.getElementById(script.dataset.plot);
      if (!target) return;
      var figure = JSON.parse(script.textContent);
      if (target.querySelector("p.muted")) target.innerHTML = "";
      var card = target.closest(".card.hidden");
      if (card) card.classList.remove("hidden");
      fitLegend(target, figure.data, figure.layout);
      window.Plotly.react(target, figure.data, figure.layout, config).then(
        function () { nameRows(target, figure.layout); },
        function (reason) { console.warn("chart redraw abandoned:", reason); }  // a newer redraw overtook it
      );
    });
  }

  // A horizontal legend wraps into more lines the narrower the page (one entry a line on a
  // phone): make room for it above the plot instead of squeezing the rows (meta.legend_fit).
  function fitLegend(target, data, layout) {
    var fit = layout.meta && layout.meta.legend_fit;
    if (!fit) return;
    var entries = data.filter(function (trace) { return trace.showlegend !== false; }).length;
    var width = (target.clientWidth || 800) - 20;
    var columns = Math.max(1, Math.floor(width / 260));
    var legendPx = Math.ceil(entries / columns) * 20 + 10;
    // Columns as counted: each entry gets its share of the width (the whole width on a phone,
    // where Plotly's own sizing squeezed entries and cut their names).
    layout.legend = Object.assign({}, layout.legend, { entrywidth: Math.floor(width / columns), entrywidthmode: "pixels" });
    layout.margin = Object.assign({}, layout.margin, { t: fit.top + legendPx });
    layout.height = fit.height + legendPx;
  }

  // Row labels are cut at ~28 characters: each one's tooltip (SVG <title>) has the whole name.
  function nameRows(target, layout) {
    var names = layout.meta && layout.meta.row_names;
    if (!names) return;
    target.querySelectorAll(".ytick").forEach(function (tick) {
      var name = tick.__data__ && names[tick.__data__.x];
      var label = tick.querySelector("text");
      if (!label || !name) return;
      var title = label.querySelector("title") || label.appendChild(document.createElementNS("http://www.w3.org/2000/svg", "title"));
      title.textContent = name;
      label.style.pointerEvents = "all";
    });
  }

  // Amount presets on the fraud form.
  document.addEventListener("click", function (event) {
    var preset = event.target.closest("[data-amount]");
    if (!preset) return;
    var input = document.getElementById("id_amount");
    if (input) input.value = preset.dataset.amount;
  });

  document.addEventListener("htmx:afterSettle", draw);
  var resizing = null;
  window.addEventListener("resize", function () { clearTimeout(resizing); resizing = setTimeout(draw, 250); });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
