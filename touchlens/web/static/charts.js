// Charts drawn by Plotly (served at /vendor/plotly.min.js) from the JSON each page carries.
"use strict";

(function () {
  const config = { displaylogo: false, responsive: true };
  const font = { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12 };
  const base = { font, margin: { l: 50, r: 50, t: 30, b: 60 }, paper_bgcolor: "#fff", plot_bgcolor: "#fff" };

  // One scale for both: the designed emotion (−2..2 on the canvas) is halved onto comment sentiment's −1..1, so
  // a sentiment of 0.45 sits where a designed +0.9 would, not level with +1; the hover says the designed value.
  function emotion(element, data) {
    const traces = data.designed.map((d) => ({
      x: data.stages, y: d.values.map((v) => (v === null || v === undefined ? null : v / 2)),
      customdata: d.values, hovertemplate: "%{x}: designed %{customdata:+d} of ±2<extra></extra>",
      name: "designed: " + d.name, mode: "lines+markers", connectgaps: true, line: { shape: "spline", dash: "dot" },
    }));
    if ((data.audited || []).some((v) => v !== null)) {
      traces.push({
        x: data.stages, y: data.audited.map((v) => (v === null ? null : v / 2)), customdata: data.audited,
        hovertemplate: "%{x}: audited %{customdata:+.1f} of ±2<extra></extra>",
        name: "audited: walkthroughs", mode: "lines+markers", connectgaps: true,
        line: { shape: "spline", dash: "dash", color: "#b3541e" },
      });
    }
    traces.push({
      x: data.stages, y: data.measured, name: "measured: comment sentiment",
      hovertemplate: "%{x}: sentiment %{y:+.2f}<extra></extra>",
      mode: "lines+markers", connectgaps: true, line: { shape: "spline", width: 4, color: "#2f5bd3" },
    });
    Plotly.newPlot(element, traces, Object.assign({}, base, {
      title: { text: "Emotion curve: designed and measured, on one scale", font: { size: 14 } },
      height: 280,
      yaxis: { title: "−1 negative … +1 positive", range: [-1.15, 1.15], zeroline: true,
        tickvals: [-1, -0.5, 0, 0.5, 1] },
      legend: { orientation: "h", y: -0.25 },
      annotations: [{ xref: "paper", yref: "paper", x: 0, y: -0.42, showarrow: false, align: "left",
        font: { size: 11, color: "#666" },
        text: "designed emotion (−2..2) drawn at half, on comment sentiment's scale (−1..1)" }],
    }), config);
  }

  // Each bar spans its period (a month bar from the 1st to the end of the month), so January is labelled
  // January; a period the data covers only in part is pale and hatched, and says so, so it does not read
  // as a collapse.
  const PERIOD = { month: "M1", week: 7 * 86400000, day: 86400000 };

  function trend(element, data) {
    const periods = data.points.map((p) => p.period);
    const partial = data.points.map((p) => p.complete === false);
    const xperiod = PERIOD[data.period];
    const span = xperiod ? { xperiod, xperiod0: periods[0], xperiodalignment: "middle" } : {};
    const word = data.period || "period";
    Plotly.newPlot(element, [
      Object.assign({ x: periods, y: data.points.map((p) => p.events), name: "events", type: "bar",
        marker: { color: partial.map((p) => (p ? "#e8ecf8" : "#c9d4f2")),
          pattern: { shape: partial.map((p) => (p ? "/" : "")), fgcolor: "#9aa9d6" } },
        customdata: partial.map((p) => (p ? " (partial " + word + ": the data covers only part of it)" : "")),
        hovertemplate: "%{x}: %{y:,} events%{customdata}<extra></extra>" }, span),
      Object.assign({ x: periods, y: data.points.map((p) => p.csat), name: "CSAT", yaxis: "y2", mode: "lines+markers",
        connectgaps: true, line: { color: "#2e8b57" } }, span),
    ], Object.assign({}, base, {
      height: 240, yaxis: { title: "events" },
      xaxis: data.period === "month" ? { dtick: "M1", tickformat: "%b %Y", ticklabelmode: "period" } : {},
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
