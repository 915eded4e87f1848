// Sign-up page: a slug suggested from the organisation's name, checked live (debounced) against
// GET /api/v1/signup/slug, and a show/hide switch for the password. The server checks everything
// again on submit; without this file the form works the same, minus the live hints.
(function () {
  "use strict";

  var form = document.getElementById("signup-form");
  if (!form) return;
  var name = document.getElementById("id_name");
  var slug = document.getElementById("id_slug");
  var status = document.getElementById("slug-status");
  var checkUrl = form.getAttribute("data-check-url");
  var suffix = form.getAttribute("data-host-suffix") || "";
  var edited = slug.value !== "";
  var timer = null;
  var sequence = 0;

  function slugify(text) {
    var value = text
      .normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^[^a-z]+/, "")
      .slice(0, 40)
      .replace(/-+$/, "");
    return value;
  }

  function show(kind, text, suggestion) {
    status.className = "slug-status " + kind;
    status.textContent = text;
    if (suggestion) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "button secondary small slug-suggestion";
      button.textContent = "Use " + suggestion;
      button.addEventListener("click", function () {
        slug.value = suggestion;
        edited = true;
        check();
        slug.focus();
      });
      status.appendChild(document.createTextNode(" "));
      status.appendChild(button);
    }
  }

  function check() {
    clearTimeout(timer);
    var value = slug.value.trim().toLowerCase();
    if (!value) {
      show("", "");
      return;
    }
    var mine = ++sequence;
    show("pending", "Checking " + value + suffix + "…");
    fetch(checkUrl + "?slug=" + encodeURIComponent(value), {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (response) {
        if (response.status === 429) return { limited: true };
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (body) {
        if (mine !== sequence) return; // a newer check is under way
        if (body.limited) {
          show("", "We'll check this address when you submit.");
        } else if (body.available) {
          slug.removeAttribute("aria-invalid");
          show("ok", "✓ " + body.slug + suffix + " is available");
        } else {
          slug.setAttribute("aria-invalid", "true");
          show("taken", body.errors.join(" "), body.suggestion);
        }
      })
      .catch(function () {
        if (mine === sequence) show("", "");
      });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(check, 350);
  }

  name.addEventListener("input", function () {
    if (edited) return;
    slug.value = slugify(name.value);
    later();
  });
  slug.addEventListener("input", function () {
    edited = slug.value !== "";
    later();
  });
  slug.addEventListener("blur", function () {
    if (slug.value !== slug.value.toLowerCase()) slug.value = slug.value.toLowerCase();
  });
  if (slug.value && !slug.hasAttribute("aria-invalid")) check();

  var toggle = document.getElementById("password-toggle");
  var password = document.getElementById("id_password");
  if (toggle && password) {
    toggle.addEventListener("click", function () {
      var hidden = password.type === "password";
      password.type = hidden ? "text" : "password";
      toggle.textContent = hidden ? "Hide" : "Show";
      toggle.setAttribute("aria-pressed", hidden ? "true" : "false");
    });
  }
})();
