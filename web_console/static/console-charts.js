// Draws the audit console's charts from the page's JSON block (no inline script).
window.addEventListener("DOMContentLoaded", function () {
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var colours = ["#14532d", "#b45309", "#1d4ed8", "#7c3aed", "#be123c", "#0f766e", "#4d7c0f"];
  function stacked(id, block) {
    var names = Object.keys(block.series);
    return new Chart(document.getElementById(id), {
      type: "bar",
      data: {
        labels: data.days,
        datasets: names.map(function (name, n) {
          return { label: name, data: block.series[name], backgroundColor: colours[n % colours.length] };
        })
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        plugins: { title: { display: true, text: block.title } },
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } }
      }
    });
  }
  stacked("chart-reads", data.reads);
  stacked("chart-refusals", data.refusals);
  new Chart(document.getElementById("chart-consumers"), {
    type: "bar",
    data: { labels: data.consumers.labels, datasets: [{ label: data.consumers.title, data: data.consumers.values, backgroundColor: colours[0] }] },
    options: { animation: false, responsive: true, maintainAspectRatio: false, indexAxis: "y",
      plugins: { title: { display: true, text: data.consumers.title }, legend: { display: false } },
      scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } }
  });
  new Chart(document.getElementById("chart-changes"), {
    type: "line",
    data: { labels: data.days, datasets: [{ label: data.changes.title, data: data.changes.values, borderColor: colours[1] }] },
    options: { animation: false, responsive: true, maintainAspectRatio: false,
      plugins: { title: { display: true, text: data.changes.title }, legend: { display: false } },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
  });
  document.body.dataset.chartsDrawn = "true";
});
