// New upload: choosing a meter ticks the targets that fit its data (bills, or intervals and Wattics).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var data = document.getElementById("targets-by-meter");
    var select = document.getElementById("id_meter");
    if (!data || !select) { return; }
    var fits = JSON.parse(data.textContent);
    select.addEventListener("change", function () {
      var wanted = fits[select.value] || ["wattcarbon_intervals", "wattics"];
      document.querySelectorAll("input[name='targets']").forEach(function (box) {
        box.checked = wanted.indexOf(box.value) !== -1;
      });
    });
  });
})();
