// The console's live updates: one EventSource on /console/stream; each message is the whole view (audit,
// notices, recent jobs), so a reconnect after the server or the network was away needs no catching up.
(function () {
  "use strict";
  const dot = document.getElementById("live-dot");
  const state = document.getElementById("live-state");

  function setLive(on, text) {
    if (dot) dot.classList.toggle("on", on);
    if (state) state.textContent = text;
  }

  function bar(job) {
    const wrap = document.createElement("div");
    wrap.className = "bar" + (job.finished ? " done" : "");
    wrap.title = job.percent + " %";
    const fill = document.createElement("span");
    fill.style.width = job.percent + "%";
    wrap.appendChild(fill);
    return wrap;
  }

  function row(job) {
    const tr = document.createElement("tr");
    tr.dataset.job = job.id;
    tr.dataset.status = job.status;
    const link = document.createElement("a");
    link.href = "/console/jobs/" + job.kind + "/" + job.id;
    const code = document.createElement("code");
    code.textContent = job.id.slice(0, 12);
    link.appendChild(code);
    const badge = document.createElement("span");
    badge.className = "badge badge-" + job.status;
    badge.textContent = job.status;
    const percent = document.createElement("small");
    percent.dataset.percent = "";
    percent.textContent = " " + job.percent + " %";
    const created = document.createElement("small");
    created.textContent = job.created_at;
    const cells = [[link], [document.createTextNode(job.kind)], [badge], [bar(job), percent], [created]];
    for (const parts of cells) {
      const td = document.createElement("td");
      parts.forEach((p) => td.appendChild(p));
      tr.appendChild(td);
    }
    return tr;
  }

  function notices(list) {
    const box = document.getElementById("notices");
    if (!box) return;
    box.replaceChildren(...list.map((text) => {
      const div = document.createElement("div");
      div.className = "flash flash-warning";
      div.dataset.notice = "";
      div.textContent = text;
      return div;
    }));
  }

  function audit(view) {
    for (const [name, value] of Object.entries(view)) {
      const cell = document.querySelector('[data-value="' + name + '"]');
      if (cell) cell.textContent = value;
    }
  }

  function jobs(list) {
    const body = document.getElementById("jobs");
    if (body) body.replaceChildren(...list.map(row));
    const page = document.getElementById("job");
    if (!page) return;
    const mine = list.find((j) => j.id === page.dataset.job);
    if (!mine) return;
    page.querySelector(".bar > span").style.width = mine.percent + "%";
    page.querySelector("[data-percent]").textContent = mine.percent + " %";
    // A job that finished while the page was open shows its result and figures after one reload.
    if (mine.finished && page.dataset.status !== mine.status) window.location.reload();
  }

  function cells(list, attribute, key, values) {
    for (const item of list) {
      const tr = document.querySelector("[" + attribute + '="' + CSS.escape(item[key]) + '"]');
      if (!tr) continue;
      for (const [cell, value] of Object.entries(values(item))) {
        const td = tr.querySelector("[" + cell + "]");
        if (td) td.textContent = value === null ? "—" : String(value);
      }
    }
  }

  // A fault is a shaded band from its start to its end (still growing while it lasts), named at its start.
  function faultMarks(faults) {
    const shapes = [];
    const annotations = [];
    for (const f of faults) {
      const colour = f.ok ? "#dc2626" : "#6b7280";
      shapes.push({
        type: "rect", xref: "x", yref: "paper", x0: f.start, x1: Math.max(f.end, f.start + 1000), y0: 0, y1: 1,
        fillcolor: colour, opacity: 0.15, line: { width: 1, color: colour }, layer: "below",
      });
      annotations.push({
        x: f.start, y: 1, xref: "x", yref: "paper", xanchor: "left", yanchor: "top", showarrow: false,
        text: f.name + (f.ongoing ? " …" : ""), font: { size: 10, color: "#991b1b" },
      });
    }
    return { shapes, annotations };
  }

  function drawCharts(chart) {
    const box = document.getElementById("charts");
    if (!box || !window.Plotly) return;
    const x = chart.t;
    const marks = faultMarks(chart.faults);
    const line = (y, name, color) => ({ x, y, name, type: "scatter", mode: "lines", line: { color, width: 2 } });
    const layout = (title, unit) => ({
      title: { text: title, font: { size: 13 } }, height: 240, margin: { l: 44, r: 8, t: 28, b: 24 },
      xaxis: { type: "date" }, yaxis: { title: { text: unit }, rangemode: "tozero" },
      legend: { orientation: "h", y: -0.2 }, shapes: marks.shapes, annotations: marks.annotations,
    });
    const config = { responsive: true, displaylogo: false, displayModeBar: false };
    const lags = Object.entries(chart.lag).map(([group, y]) => line(y, group));
    window.Plotly.react("chart-throughput", [
      line(chart.accepted, "accepted / s", "#2563eb"),
      line(chart.completed, "completed / s", "#059669"),
      line(chart.failed, "failed / s", "#dc2626"),
    ], layout("Throughput", "jobs / s"), config);
    window.Plotly.react("chart-latency", [
      line(chart.p50, "p50", "#7c3aed"), line(chart.p95, "p95", "#b45309"),
    ], layout("Latency, request to outcome", "s"), config);
    window.Plotly.react("chart-lag", lags, layout("Consumer lag", "records"), config);
    box.dataset.points = String(x.length);
    box.dataset.faults = String(chart.faults.length);
  }

  // The capacity search: its figures, its charts per interval and its intervals, newest first. A search that
  // ended while the page was open shows its result and plot after one reload.
  const MOVE_COLOURS = {
    "slow start": "#2563eb", "additive increase": "#059669", "multiplicative decrease": "#dc2626",
    "steady": "#6b7280", "hold": "#7c3aed", "done": "#111827",
  };
  const fixed = (value, digits) => (value === null || value === undefined ? "—" : Number(value).toFixed(digits));

  function capacitySteps(series) {
    const body = document.getElementById("capacity-steps");
    if (!body) return;
    const rows = [];
    for (let i = series.t.length - 1; i >= 0 && rows.length < 50; i -= 1) {
      const tr = document.createElement("tr");
      tr.dataset.step = String(i + 1);
      const values = [series.t[i], series.move[i], fixed(series.offered[i], 2), fixed(series.achieved[i], 2),
        fixed(series.p95[i], 3), series.lag[i] === null ? "—" : series.lag[i]];
      for (const value of values) {
        const td = document.createElement("td");
        td.textContent = String(value);
        tr.appendChild(td);
      }
      rows.push(tr);
    }
    body.replaceChildren(...rows);
  }

  function drawCapacity(view) {
    const box = document.getElementById("capacity");
    if (!box) return;
    const running = view.status === "running" || view.status === "stopping";
    const last = view.last || {};
    const figures = {
      status: view.status, move: view.move || "—", rate: running ? view.rate : "—", achieved: fixed(last.achieved, 2),
      p95: fixed(last.p95_s, 2), lag: last.lag === null || last.lag === undefined ? "—" : last.lag,
      intervals: view.intervals || 0,
    };
    for (const [name, value] of Object.entries(figures)) {
      const cell = box.querySelector('[data-cap="' + name + '"]');
      if (cell) cell.textContent = String(value);
    }
    const wasRunning = box.dataset.status === "running" || box.dataset.status === "stopping";
    if (wasRunning !== running || (view.id || "") !== box.dataset.id) {
      window.location.reload();
      return;
    }
    const series = view.series || { t: [], offered: [], achieved: [], p95: [], lag: [], move: [] };
    capacitySteps(series);
    box.dataset.points = String(series.t.length);
    if (!window.Plotly) return;
    const x = series.t;
    const colours = series.move.map((m) => MOVE_COLOURS[m] || "#6b7280");
    const layout = (title, unit) => ({
      title: { text: title, font: { size: 13 } }, height: 240, margin: { l: 44, r: 8, t: 28, b: 24 },
      xaxis: { ticksuffix: " s" }, yaxis: { title: { text: unit }, rangemode: "tozero" },
      legend: { orientation: "h", y: -0.25 },
    });
    const config = { responsive: true, displaylogo: false, displayModeBar: false };
    window.Plotly.react("cap-rates", [
      { x, y: series.offered, name: "offered / s", type: "scatter", mode: "lines", line: { shape: "vh", color: "#2563eb" } },
      { x, y: series.achieved, name: "achieved / s", type: "scatter", mode: "lines+markers", text: series.move,
        line: { color: "#059669" }, marker: { color: colours, size: 7 } },
    ], layout("Offered and achieved rate", "jobs / s"), config);
    window.Plotly.react("cap-latency", [
      { x, y: series.p95, name: "p95", type: "scatter", mode: "lines+markers", line: { color: "#b45309" } },
    ], layout("p95 latency, request to result", "s"), config);
    window.Plotly.react("cap-lag", [
      { x, y: series.lag, name: "lag", type: "scatter", mode: "lines+markers", line: { color: "#7c3aed" } },
    ], layout("Workers' lag at each interval's end", "jobs"), config);
  }

  const capacity = document.getElementById("capacity");
  if (capacity) drawCapacity(JSON.parse(capacity.dataset.view));

  const charts = document.getElementById("charts");
  if (charts) drawCharts(JSON.parse(charts.dataset.chart));

  const kind = document.getElementById("kind");
  const examples = document.getElementById("examples");
  if (kind && examples) {
    const texts = JSON.parse(examples.textContent);
    kind.addEventListener("change", () => { document.getElementById("spec").value = texts[kind.value] || ""; });
  }

  const plan = document.getElementById("plan3d");
  if (plan && window.Plotly) {
    const figure = JSON.parse(plan.dataset.figure);
    window.Plotly.newPlot(plan, figure.data, figure.layout, { responsive: true, displaylogo: false })
      .then(() => { plan.dataset.drawn = "true"; });
  }

  const source = new EventSource("/console/stream" + (capacity ? "?capacity=1" : ""));
  source.onopen = () => setLive(true, "live");
  source.onerror = () => setLive(false, "reconnecting");
  source.onmessage = (event) => {
    const view = JSON.parse(event.data);
    audit(view.audit);
    drawCharts(view.chart);
    if (view.capacity) drawCapacity(view.capacity);
    const since = document.getElementById("since");
    if (since) since.textContent = view.since || "— (not yet)";
    notices(view.notices);
    jobs(view.jobs);
    cells(view.groups, "data-group", "group", (g) => ({"data-lag": g.lag, "data-rate": g.consumed_per_s}));
    cells(view.topics, "data-topic", "name", (t) => ({"data-end": t.end, "data-rate": t.produced_per_s}));
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  };
})();
