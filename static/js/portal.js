/* Energy Data Portal: small behaviours on top of htmx. No framework.
 *
 * Charts: a <canvas data-chart="ID"> draws the JSON of <script id="ID" type="application/json">.
 * Chart.js (static/vendor) is loaded only on pages that have a chart, once.
 */
(function () {
  "use strict";

  var chartJsPromise = null;
  function loadChartJs() {
    if (window.Chart) return Promise.resolve(window.Chart);
    if (!chartJsPromise) {
      chartJsPromise = new Promise(function (resolve, reject) {
        var s = document.createElement("script");
        s.src = document.documentElement.dataset.chartjs;
        s.onload = function () { resolve(window.Chart); };
        s.onerror = reject;
        document.head.appendChild(s);
      });
    }
    return chartJsPromise;
  }

  var fmt = new Intl.DateTimeFormat(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: "UTC"
  });

  function drawChart(canvas) {
    if (canvas.dataset.drawn) return;
    canvas.dataset.drawn = "1";
    var island = document.getElementById(canvas.dataset.chart);
    if (!island) return;
    var data = JSON.parse(island.textContent);
    var labels = data.labels.map(function (iso) { return fmt.format(new Date(iso)); });
    loadChartJs().then(function (Chart) {
      var existing = Chart.getChart(canvas);
      if (existing) existing.destroy();
      // A min-max band only when buckets hold several readings that differ.
      var showBand = data.high.some(function (v, i) { return v !== data.low[i]; });
      var datasets = [{
        label: "Average (" + data.unit + ")", data: data.avg, borderColor: "#1f6feb",
        backgroundColor: "#1f6feb", borderWidth: 1.5, pointRadius: 0, tension: 0.15, order: 1
      }];
      if (showBand) {
        datasets.push({
          label: "Max", data: data.high, borderColor: "rgba(31,111,235,0)", pointRadius: 0,
          backgroundColor: "rgba(31,111,235,.14)", fill: "+1", order: 2
        });
        datasets.push({
          label: "Min", data: data.low, borderColor: "rgba(31,111,235,0)", pointRadius: 0,
          backgroundColor: "rgba(31,111,235,.14)", fill: false, order: 3
        });
      }
      new Chart(canvas, {
        type: "line",
        data: { labels: labels, datasets: datasets },
        options: {
          animation: false, responsive: true, maintainAspectRatio: false, normalized: true,
          interaction: { mode: "index", intersect: false },
          scales: {
            x: { ticks: { maxTicksLimit: 8, maxRotation: 0 }, grid: { display: false } },
            y: { title: { display: true, text: data.unit + (data.bucketMinutes ? " per interval" : "") }, beginAtZero: false }
          },
          plugins: {
            legend: { display: showBand, labels: { boxWidth: 12 } },
            tooltip: { callbacks: { title: function (items) { return items[0].label + " UTC"; } } }
          }
        }
      });
    });
  }

  function init(root) {
    (root || document).querySelectorAll("canvas[data-chart]").forEach(drawChart);
  }

  // <select data-autosubmit> submits its form on change (no inline handlers: the CSP forbids them).
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches("select[data-autosubmit]") && el.form) el.form.submit();
  });

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function () { init(document); });
})();
