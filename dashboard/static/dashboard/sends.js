// Test-send form: suggests existing users in the recipient box as the admin types (a <datalist>
// filled from the dashboard's own JSON endpoint). The box works without it.
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var list = document.getElementById("recipient-options");
    var input = document.querySelector("input[list='recipient-options']");
    if (!list || !input) return;
    var source = list.getAttribute("data-source");
    var timer = null;
    var sequence = 0;

    function fill(results) {
      var options = results.map(function (user) {
        var option = document.createElement("option");
        option.value = user.id;
        option.textContent = user.name || user.email || "";
        return option;
      });
      list.replaceChildren.apply(list, options);
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var mine = ++sequence;
        fetch(source + "?q=" + encodeURIComponent(input.value), { credentials: "same-origin" })
          .then(function (response) { return response.ok ? response.json() : { results: [] }; })
          .then(function (body) { if (mine === sequence) fill(body.results || []); })
          .catch(function () { /* keep the current suggestions */ });
      }, 200);
    });
  });
})();
