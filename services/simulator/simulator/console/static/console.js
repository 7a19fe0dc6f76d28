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

  const source = new EventSource("/console/stream");
  source.onopen = () => setLive(true, "live");
  source.onerror = () => setLive(false, "reconnecting");
  source.onmessage = (event) => {
    const view = JSON.parse(event.data);
    audit(view.audit);
    const since = document.getElementById("since");
    if (since) since.textContent = view.since || "— (not yet)";
    notices(view.notices);
    jobs(view.jobs);
    cells(view.groups, "data-group", "group", (g) => ({"data-lag": g.lag, "data-rate": g.consumed_per_s}));
    cells(view.topics, "data-topic", "name", (t) => ({"data-end": t.end, "data-rate": t.produced_per_s}));
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  };
})();
