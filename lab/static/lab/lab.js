/* Lab pages: draw Plotly figures from <script type="application/json" data-plot="target-id"> and
 * redraw them after every htmx swap. The plot containers live outside the polled section, so
 * Plotly.react updates them in place and layout.uirevision keeps the reader's zoom.
 */
(function () {
  "use strict";

  function draw() {
    if (!window.Plotly) return;
    document.querySelectorAll("script[type='application/json'][data-plot]").forEach(function (script) {
      var target = document.getElementById(script.dataset.plot);
      if (!target) return;
      var figure = JSON.parse(script.textContent);
      if (target.querySelector("p.muted")) target.innerHTML = "";
      var card = target.closest(".card.hidden");
      if (card) card.classList.remove("hidden");
      window.DurablePlots.draw(target, figure.data, figure.layout);
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
