// The dashboard's widget page: mounts the real widget for the preview user.
(function () {
  "use strict";

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(url) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body.error || "Request failed (" + response.status + ")");
        return body;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var target = document.getElementById("widget-preview");
    var status = document.getElementById("preview-status");
    if (!target) return;
    if (!window.Herald) {
      status.textContent = "The widget script did not load.";
      return;
    }
    window.Herald.mount(target, {
      apiUrl: target.getAttribute("data-api-url"),
      getToken: function () {
        return post(target.getAttribute("data-token-url")).then(function (body) {
          return body.token;
        });
      },
    });
    document.getElementById("preview-send").addEventListener("click", function (event) {
      var button = event.currentTarget;
      button.disabled = true;
      status.textContent = "";
      post(target.getAttribute("data-send-url"))
        .then(function () { status.textContent = "Sent. Watch the bell."; })
        .catch(function (error) { status.textContent = error.message; })
        .then(function () { button.disabled = false; });
    });
  });
})();
