// Device form: the meters offered are those of the chosen site; others are hidden and unticked.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var data = document.getElementById("meter-sites");
    var site = document.getElementById("id_site");
    if (!data || !site) { return; }
    var siteOf = JSON.parse(data.textContent);
    function follow() {
      document.querySelectorAll("input[name='meters']").forEach(function (box) {
        var other = siteOf[box.value] !== site.value;
        var row = box.closest("div") || box.parentElement;
        row.hidden = other;
        if (other) { box.checked = false; }
      });
    }
    site.addEventListener("change", follow);
    follow();
  });
})();
