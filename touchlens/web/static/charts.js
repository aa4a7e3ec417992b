// Charts drawn by Plotly (served at /vendor/plotly.min.js) from the JSON each page carries.
"use strict";

(function () {
  const config = { displaylogo: false, responsive: true };
  const font = { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12 };
  const base = { font, margin: { l: 50, r: 50, t: 30, b: 60 }, paper_bgcolor: "#fff", plot_bgcolor: "#fff" };

  function emotion(element, data) {
    const traces = data.designed.map((d) => ({
      x: data.stages, y: d.values, name: "designed: " + d.name, mode: "lines+markers", connectgaps: true,
      line: { shape: "spline", dash: "dot" },
    }));
    traces.push({
      x: data.stages, y: data.measured, name: "measured: comment sentiment", yaxis: "y2",
      mode: "lines+markers", connectgaps: true, line: { shape: "spline", width: 4, color: "#2f5bd3" },
    });
    Plotly.newPlot(element, traces, Object.assign({}, base, {
      title: { text: "Emotion curve: designed and measured", font: { size: 14 } },
      height: 280,
      yaxis: { title: "designed (−2..2)", range: [-2.3, 2.3], zeroline: true },
      yaxis2: { title: "sentiment (−1..1)", range: [-1.15, 1.15], overlaying: "y", side: "right", showgrid: false },
      legend: { orientation: "h", y: -0.25 },
    }), config);
  }

  function trend(element, data) {
    const periods = data.points.map((p) => p.period);
    Plotly.newPlot(element, [
      { x: periods, y: data.points.map((p) => p.events), name: "events", type: "bar", marker: { color: "#c9d4f2" } },
      { x: periods, y: data.points.map((p) => p.csat), name: "CSAT", yaxis: "y2", mode: "lines+markers",
        connectgaps: true, line: { color: "#2e8b57" } },
    ], Object.assign({}, base, {
      height: 240, yaxis: { title: "events" },
      // A dashed line at each recorded change, labelled by its id only: Plotly reads some markup in labels, so
      // the notes (people's text) are listed by the page, escaped, not drawn here.
      shapes: (data.changes || []).map((c) => ({ type: "line", xref: "x", yref: "paper", x0: c.date, x1: c.date,
        y0: 0, y1: 1, line: { color: "#c0392b", dash: "dash", width: 1 } })),
      annotations: (data.changes || []).map((c) => ({ x: c.date, xref: "x", yref: "paper", y: 1, yanchor: "bottom",
        text: "change " + Number(c.id), showarrow: false, font: { size: 10, color: "#c0392b" } })),
      yaxis2: { title: "CSAT", overlaying: "y", side: "right", range: [0, 1.05], dtick: 0.25, tickformat: ".0%",
        showgrid: false },
      legend: { orientation: "h", y: -0.3 },
    }), config);
  }

  function sankey(element, data) {
    const index = new Map();
    const labels = [];
    data.nodes.forEach((n) => { index.set(n.step + "|" + n.touchpoint, labels.length); labels.push(n.touchpoint); });
    const links = { source: [], target: [], value: [] };
    data.links.forEach((l) => {
      const s = index.get(l.step + "|" + l.source);
      const t = index.get(l.step + 1 + "|" + l.target);
      if (s === undefined || t === undefined) return;
      links.source.push(s); links.target.push(t); links.value.push(l.count);
    });
    Plotly.newPlot(element, [{
      type: "sankey", arrangement: "snap",
      node: { label: labels, pad: 12, thickness: 14, color: "#5b7bd8" },
      link: Object.assign(links, { color: "rgba(47, 91, 211, 0.18)" }),
    }], Object.assign({}, base, { height: 560, margin: { l: 10, r: 10, t: 10, b: 10 } }), config);
  }

  function funnel(element, data) {
    const steps = data.steps.map((s, i) => i + 1 + ". " + s.step);
    Plotly.newPlot(element, [{
      type: "bar", x: steps, y: data.steps.map((s) => s.count), marker: { color: "#2f5bd3" },
      text: data.steps.map((s) => (s.conversion_from_first === null ? "" : (100 * s.conversion_from_first).toFixed(1) + "%")),
      textposition: "outside", hovertemplate: "%{x}: %{y} customers<extra></extra>",
    }], Object.assign({}, base, { height: 340, yaxis: { title: "customers" } }), config);
  }

  function attribution(element, data) {
    const traces = Object.keys(data.share).map((model) => ({
      type: "bar", name: model, x: data.keys, y: data.keys.map((k) => data.share[model][k] || 0),
    }));
    Plotly.newPlot(element, traces, Object.assign({}, base, {
      barmode: "group", height: 420, yaxis: { title: "share of conversions", tickformat: ".0%" },
      legend: { orientation: "h", y: -0.3 },
    }), config);
  }

  const kinds = { emotion, trend, sankey, funnel, attribution };

  document.addEventListener("DOMContentLoaded", () => {
    if (typeof Plotly === "undefined") return;
    document.querySelectorAll("[data-chart]").forEach((element) => {
      const draw = kinds[element.dataset.chart];
      const data = window.touchlens.pageData(element.dataset.source);
      if (draw && data) draw(element, data);
    });
  });
})();
