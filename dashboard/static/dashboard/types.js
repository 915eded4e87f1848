// Type editor: live preview of the email templates. No inline code: the page's CSP allows only
// scripts from this host. Without this file the "Refresh preview" button does the same by hand.
//
// As the admin types, the editor form is submitted (debounced) to the preview endpoint in two
// ways: into the sandboxed <iframe name="preview"> through the button's formaction/formtarget
// (the rendered HTML email, under the preview's own CSP), and with fetch() for the subject and
// plain-text parts, which are shown as text (never as HTML) in the page.
(function () {
  "use strict";

  var DELAY_MS = 400;

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
    var form = document.getElementById("type-form");
    var button = document.getElementById("preview-button");
    if (!form || !button) return;
    var subject = document.getElementById("preview-subject");
    var text = document.getElementById("preview-text");
    var title = document.getElementById("preview-title");
    var message = document.getElementById("preview-message");
    var locale = document.getElementById("id_preview_locale");
    var error = document.getElementById("preview-error");
    var status = document.getElementById("preview-status");
    var unsaved = document.getElementById("unsaved-note");
    var url = form.getAttribute("data-preview-url");
    var timer = null;
    var sequence = 0;

    function showError(message) {
      error.textContent = message || "";
      error.classList.toggle("hidden", !message);
    }

    function refresh() {
      var mine = ++sequence;
      status.textContent = "Updating…";
      // The HTML part: the form itself, posted into the sandboxed frame.
      if (form.requestSubmit) form.requestSubmit(button);
      else button.click();
      // The subject and text parts, as JSON.
      fetch(url, { method: "POST", body: new FormData(form), credentials: "same-origin" })
        .then(function (response) {
          return response.json().catch(function () {
            throw new Error("The preview is unavailable (HTTP " + response.status + ").");
          });
        })
        .then(function (body) {
          if (mine !== sequence) return; // a newer preview is on its way
          if (body.error) {
            showError(body.error);
          } else {
            showError("");
            subject.textContent = body.subject;
            text.textContent = body.text;
            if (title) title.textContent = body.title;
            if (message) message.textContent = body.message;
            Object.keys(body.sources || {}).forEach(function (field) {
              var label = document.getElementById("source-" + field);
              if (label) label.textContent = body.sources[field];
            });
          }
          status.textContent = body.error ? "Template error" : "Up to date";
        })
        .catch(function (failure) {
          if (mine !== sequence) return;
          showError(failure.message || "The preview is unavailable.");
          status.textContent = "";
        });
    }

    function changed(event) {
      var name = event.target && event.target.name;
      if (name && name.indexOf("sample_") !== 0 && name !== "preview_locale") {
        unsaved.classList.remove("hidden");
      }
      clearTimeout(timer);
      timer = setTimeout(refresh, DELAY_MS);
    }

    // "Add another locale": one more blank block, from the formset's empty form.
    var addLocale = document.getElementById("add-locale");
    var blank = document.getElementById("locale-template");
    var total = form.querySelector("input[name=locales-TOTAL_FORMS]");
    if (addLocale && blank && total) {
      addLocale.classList.remove("hidden");
      addLocale.addEventListener("click", function () {
        var index = parseInt(total.value, 10) || 0;
        var holder = document.createElement("div");
        holder.innerHTML = blank.innerHTML.replace(/__prefix__/g, String(index));
        var block = holder.firstElementChild;
        addLocale.parentNode.parentNode.insertBefore(block, addLocale.parentNode);
        total.value = String(index + 1);
        var tag = block.querySelector("input[name$='-tag']");
        if (tag) tag.focus();
      });
    }

    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
    // The preview's locale sits in the preview pane, outside the form (form="type-form").
    if (locale) locale.addEventListener("input", changed);
    // The button still works by hand; keep its JSON half in step.
    button.addEventListener("click", function (event) {
      if (event.isTrusted) {
        event.preventDefault();
        clearTimeout(timer);
        refresh();
      }
    });
    // After a refused save the page shows the posted templates, not the saved ones: preview
    // those once on load. (Otherwise the frame's own src shows the saved ones. Posting into it
    // while that first load was under way left the frame empty now and then.)
    if (form.hasAttribute("data-refused")) refresh();
  });
})();
