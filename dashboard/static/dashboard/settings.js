// Settings page: a hex field beside the colour picker (for pasting #rrggbb), kept in step with
// it, and a live preview of the brand colour. Without this file the picker alone still works.
(function () {
  "use strict";

  var picker = document.getElementById("id_brand_color");
  var text = document.getElementById("brand-color-text");
  var preview = document.getElementById("brand-preview-rect");
  if (!picker || !text) return;
  var HEX = /^#[0-9a-fA-F]{6}$/;

  function paint(value) {
    if (preview && HEX.test(value)) preview.setAttribute("fill", value);
  }

  text.hidden = false;
  text.value = picker.value;
  paint(picker.value);
  picker.addEventListener("input", function () {
    text.value = picker.value;
    text.removeAttribute("aria-invalid");
    paint(picker.value);
  });
  text.addEventListener("input", function () {
    var value = text.value.trim();
    if (value && value.charAt(0) !== "#") value = "#" + value;
    if (HEX.test(value)) {
      picker.value = value.toLowerCase();
      text.removeAttribute("aria-invalid");
      paint(value);
    } else {
      text.setAttribute("aria-invalid", "true");
    }
  });
})();
