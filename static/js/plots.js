/* What every page that draws Plotly figures shares: the execution timeline (timeline.js) and
 * the lab's figures (lab/lab.js) both draw through draw(), which sizes the legend and names the rows.
 */
window.DurablePlots = (function () {
  "use strict";

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

  // Row labels are cut short: each one's tooltip (SVG <title>) has the whole name, from
  // meta.row_names (by category, or a list by category index). The names come escaped by the
  // server like all user text in a figure: parsed inertly, set as text.
  function nameRows(target, layout) {
    var names = layout.meta && layout.meta.row_names;
    if (!names) return;
    var keys = (layout.yaxis && layout.yaxis.categoryarray) || [];
    target.querySelectorAll(".ytick").forEach(function (tick) {
      var index = tick.__data__ && tick.__data__.x;
      var name = Array.isArray(names) ? names[index] : names[keys[index]];
      var label = tick.querySelector("text");
      if (!label || !name) return;
      var title = label.querySelector("title") || label.appendChild(document.createElementNS("http://www.w3.org/2000/svg", "title"));
      title.textContent = decode(name);
      label.style.pointerEvents = "all";
    });
  }

  function decode(html) {
    return new DOMParser().parseFromString(html, "text/html").documentElement.textContent;
  }

  // Not Plotly's "responsive": on a window resize it redraws at once with the layout fitted to
  // the old width (a one-row legend over a phone-width plot leaves the plot a negative height,
  // and Plotly throws). The pages redraw on resize themselves, through draw(), at the new width.
  var config = { responsive: false, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

  // Fit the layout to the target's width now, then draw (or update) the figure. A hidden target
  // (no width) is left alone: the next draw, after it is shown or resized, draws it.
  function draw(target, data, layout) {
    var width = target.clientWidth;
    if (!width) return Promise.resolve(false);
    fitLegend(target, data, layout);
    layout.width = width;
    return window.Plotly.react(target, data, layout, config).then(function () {
      nameRows(target, layout);
      return true;
    }, function (reason) {
      console.warn("chart redraw abandoned:", reason);  // a newer redraw overtook it: it draws the same figure
      return false;
    });
  }

  return { draw: draw };
})();
