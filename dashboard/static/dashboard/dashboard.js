// Herald dashboard: small progressive enhancements. Everything works without this file, except
// copying to the clipboard. No inline handlers: pages run under a CSP with script-src 'self'.
(function () {
  "use strict";

  // <button data-copy="#element-id">: copies the element's text (or value).
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = "value" in source && source.value !== undefined ? source.value : source.textContent;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text.trim()).then(done, done);
    } else {
      var area = document.createElement("textarea");
      area.value = text.trim();
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
      done();
    }
  });

  // <form data-confirm="Really?">: asks in a modal dialog before submitting.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    var dialog = document.getElementById("confirm-dialog");
    if (!question || !dialog || form.dataset.confirmed === "yes") return;
    event.preventDefault();
    dialog.querySelector(".confirm-text").textContent = question;
    var ok = dialog.querySelector(".confirm-ok");
    ok.textContent = form.getAttribute("data-confirm-label") || "Confirm";
    dialog.returnValue = "";
    dialog.addEventListener("close", function onClose() {
      dialog.removeEventListener("close", onClose);
      if (dialog.returnValue === "confirm") {
        form.dataset.confirmed = "yes";
        if (form.requestSubmit) form.requestSubmit(event.submitter || undefined);
        else form.submit();
      }
    });
    dialog.showModal();
  });
})();
