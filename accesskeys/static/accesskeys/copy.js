// "Copy" buttons on the page that shows a new secret once: the clipboard where the browser
// allows it (https or localhost), else the text is selected for Ctrl+C.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var source = document.querySelector(button.dataset.copy);
  var selectIt = function () {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = "Selected — press Ctrl+C";
  };
  if (!navigator.clipboard || !window.isSecureContext) return selectIt();
  navigator.clipboard.writeText(source.textContent.trim()).then(function () { button.textContent = "Copied"; }, selectIt);
});
