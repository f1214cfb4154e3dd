// The dashboard: three views over the service's API, routed by the URL's hash.
//   #/                         jobs, live
//   #/jobs/ID                  one job: progress, Pareto scatter, hypervolume history
//   #/jobs/ID/candidates/CID   one candidate: architecture, per-layer latency and energy, export
//   #/jobs/ID/compare          the job's front re-priced on every shipped accelerator
// Plots are hand-drawn SVG: the page loads nothing from outside the service.
"use strict";

const API = "..";  // the dashboard sits at /ui/, the API at /
const POLL_MS = 2000;
const METRICS = ["accuracy", "measured_accuracy", "accuracy_std", "latency_ms", "throughput_fps", "energy_mj", "power_w", "params", "weight_mib", "macs", "utilisation", "area_mm2"];
const UNIT_COLOURS = { imc: "#2f6fde", dwpu: "#e08a1e", dpu: "#2e8b57", dma: "#8e59c7", host: "#c23b3b" };
const FINISHED = ["completed", "cancelled", "failed", "interrupted"];
const view = document.getElementById("view");
const tooltip = document.getElementById("tooltip");
let timer = null;
let shownList = null;  // the job list's data as last drawn: a poll that brings nothing new redraws nothing
let plotState = { x: "latency_ms", y: "accuracy", all: false };

// ---- plumbing ---------------------------------------------------------------------------------

const tokenInput = document.getElementById("token");
tokenInput.value = localStorage.getItem("nas-token") || "";
tokenInput.addEventListener("change", () => { localStorage.setItem("nas-token", tokenInput.value.trim()); route(); });

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  const token = tokenInput.value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(API + path, { ...options, headers });
  if (response.status === 401) document.getElementById("token-box").hidden = false;
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const detail = Array.isArray(body?.detail) ? body.detail.map(d => `${d.loc.slice(1).join(".")}: ${d.msg}`).join("; ") : body?.detail;
    throw new Error(`${response.status}: ${detail || response.statusText}`);
  }
  return body;
}

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const c of children) el.append(c);
  return el;
}

function fmt(v, digits = 4) {
  if (v === null || v === undefined) return "–";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v) && Math.abs(v) >= 1e4) return v.toLocaleString("en");
  return Number(v.toPrecision(digits)).toString();
}

// A job's accuracy as it is: measured, predicted with its spread, or a unitless proxy score.
function accuracyText(c, kind) {
  const v = metric(c, "accuracy");
  if (v === null || v === undefined) return "–";
  if (kind === "score") return fmt(v);
  if (metric(c, "measured_accuracy") !== null && metric(c, "measured_accuracy") !== undefined) return `${v.toFixed(4)} measured`;
  const sd = metric(c, "accuracy_std");
  return sd === null || sd === undefined ? v.toFixed(4) : `${v.toFixed(4)} ± ${sd.toFixed(4)}`;
}

function axisLabel(job, key) {
  if (key !== "accuracy") return key;
  if (job.accuracy_kind === "score") return "score (proxy, no units)";
  const r = (job.calibration || {}).recipe;
  return r ? `accuracy (top-1 on ${r.dataset}, ${r.epochs} ep.)` : "accuracy";
}

function calibrationCard(job) {
  const c = job.calibration || {};
  if (job.accuracy_kind === "score") return h("div", { class: "card", id: "calibration" }, h("h3", {}, "Accuracy"),
    h("p", { class: "muted" }, "This job trains nothing: its accuracy axis is the proxy's ranking score, without units."));
  if (job.accuracy_kind !== "predicted") return null;
  const row = (label, e) => e ? h("tr", {}, h("td", {}, label), ...["n", "mae", "rmse", "kendall_tau", "within_1sd", "within_2sd"].map(k => h("td", { class: "num" }, fmt(e[k], 3)))) : null;
  const r = c.recipe || {};
  return h("div", { class: "card", id: "calibration" }, h("h3", {}, "Accuracy predictor"),
    h("p", {}, `Accuracy is top-1 on ${r.dataset ?? "?"} at ${r.resolution ?? "?"} px after ${r.epochs ?? "?"} epochs over ${r.images ?? "?"} images; `,
      `${c.measured ?? 0} candidates measured, the rest predicted (mean ± std) by a model fitted on them.`),
    h("table", {}, h("thead", {}, h("tr", {}, ["held-out check", "n", "MAE", "RMSE", "Kendall tau", "within 1 sd", "within 2 sd"].map(t => h("th", {}, t)))),
      h("tbody", {}, row("leave-one-out", c.leave_one_out), row("predicted before training", c.prospective_errors))));
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const m = Math.floor(seconds / 60);
  return m ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.round(seconds)} s`;
}

function render(...children) {
  view.replaceChildren(...children.filter(c => c !== null && c !== undefined));
}

function crumbs(...parts) {
  const el = document.getElementById("crumbs");
  el.replaceChildren(...parts.flatMap((p, i) => [i ? " / " : "", p]));
}

function showError(err) {
  render(h("p", { class: "error", id: "error" }, err.message));
}

function status(job) {
  return h("span", { class: `status ${job.status}`, "data-status": job.status }, job.cancel_requested && job.status === "running" ? "cancelling" : job.status);
}

function poll(fn, job) {
  clearTimeout(timer);
  if (!job || !FINISHED.includes(job.status)) timer = setTimeout(fn, POLL_MS);
}

// ---- job list ---------------------------------------------------------------------------------

async function jobList(stale) {
  const page = await api("/jobs?limit=100");
  if (stale()) return;
  crumbs("jobs");
  const key = JSON.stringify([page.total, page.items.map(j => [j.id, j.status, j.cancel_requested, j.progress, j.hypervolume])]);
  poll(() => route(), null);  // always: new jobs appear, running ones move
  if (key === shownList) return;
  shownList = key;
  const rows = page.items.map(j => h("tr", { "data-job": j.id },
    h("td", {}, h("a", { href: `#/jobs/${j.id}` }, `${j.id}`)),
    h("td", {}, h("a", { href: `#/jobs/${j.id}` }, j.name)),
    h("td", {}, status(j)),
    h("td", { style: "width:18%" }, progressBar(j)),
    h("td", { class: "num" }, `${j.progress.trials}/${j.progress.budget_trials ?? "∞"}`),
    h("td", { class: "num" }, j.progress.complete),
    h("td", { class: "num" }, j.progress.infeasible),
    h("td", { class: "num" }, j.progress.failed),
    h("td", { class: "num" }, j.progress.front),
    h("td", { class: "num" }, fmt(j.hypervolume)),
    h("td", {}, j.tags.join(", ")),
  ));
  render(
    h("h2", {}, `Jobs (${page.total})`),
    page.items.length ? h("table", { id: "jobs" },
      h("thead", {}, h("tr", {}, ...["id", "name", "status", "progress", "trials", "scored", "infeasible", "failed", "front", "HV", "tags"].map(c => h("th", {}, c)))),
      h("tbody", {}, rows)) : h("p", { class: "muted", id: "no-jobs" }, "No jobs yet: POST /jobs, or `nas run SPEC --server URL`."),
  );
}

function progressBar(job) {
  const p = job.progress;
  const share = p.budget_trials ? p.trials / p.budget_trials
    : (p.budget_wall_time_s ? Math.min(1, job.run_seconds / p.budget_wall_time_s) : 0);
  return h("div", { class: "bar", title: `${Math.round(share * 100)} %` }, h("div", { style: `width:${(share * 100).toFixed(1)}%` }));
}

// ---- job page ---------------------------------------------------------------------------------

async function jobPage(id, stale) {
  const [job, front, history] = await Promise.all([
    api(`/jobs/${id}`), api(`/jobs/${id}/pareto?limit=1000`), api(`/jobs/${id}/hypervolume`),
  ]);
  const others = plotState.all ? (await api(`/jobs/${id}/candidates?status=complete&limit=1000`)).items : [];
  if (stale()) return;
  crumbs(h("a", { href: "#/" }, "jobs"), `job ${job.id}`);
  const p = job.progress;
  const stat = (label, value, key) => h("div", { class: "stat", "data-stat": key }, h("b", {}, value), h("span", {}, label));
  render(
    h("h2", {}, `${job.name} `, status(job)),
    job.error ? h("p", { class: "error" }, job.error) : null,
    h("div", { class: "card" },
      progressBar(job),
      h("div", { class: "grid", style: "margin-top:.8em" },
        stat("trials", `${p.trials}/${p.budget_trials ?? "∞"}`, "trials"),
        stat("feasible, scored", p.complete, "complete"),
        stat("infeasible", p.infeasible, "infeasible"),
        stat("failed", p.failed, "failed"),
        stat("duplicates", p.duplicates, "duplicates"),
        stat("on the front", p.front, "front"),
        stat("hypervolume", fmt(job.hypervolume), "hypervolume"),
        stat(job.status === "running" ? "ETA" : "ran", job.status === "running" ? duration(job.eta_s) : duration(job.run_seconds), "time"),
        job.best ? stat(`best ${job.best.objective}`, fmt(job.best.value), "best") : null,
      )),
    h("div", { class: "card" }, h("h3", {}, "Pareto front"), scatter(job, front.items, others)),
    calibrationCard(job),
    h("div", { class: "card" }, h("h3", {}, "Hypervolume"), hvChart(history)),
    h("div", { class: "card" }, h("h3", {}, "Front"), frontTable(job, front.items),
      h("p", {}, h("a", { id: "compare-link", href: `#/jobs/${job.id}/compare` }, "the front on other accelerators →"))),
  );
  poll(() => route(), job);
}

// ---- what-if across chips ---------------------------------------------------------------------

async function comparePage(id, stale) {
  const result = await api(`/jobs/${id}/compare`);
  if (stale()) return;
  crumbs(h("a", { href: "#/" }, "jobs"), h("a", { href: `#/jobs/${id}` }, `job ${id}`), "other accelerators");
  const summary = h("table", { id: "compare" },
    h("thead", {}, h("tr", {}, ["accelerator", "area mm²", "feasible", "front", "kept from the job's front",
      "best latency ms", "best energy mJ", "best FPS"].map((c, i) => h("th", { class: i ? "num" : "" }, c)))),
    h("tbody", {}, result.accelerators.map(a => h("tr", {},
      h("td", {}, a.accelerator), h("td", { class: "num" }, fmt(a.area_mm2, 3)),
      h("td", { class: "num" }, a.feasible), h("td", { class: "num" }, a.front),
      h("td", { class: "num" }, a.kept_from_job_front),
      ...["latency_ms", "energy_mj", "throughput_fps"].map(m => h("td", { class: "num" }, a.best[m] === undefined ? "–" : fmt(a.best[m])))))));
  const fronts = result.accelerators.map(a => h("div", { class: "card" }, h("h3", {}, `front on ${a.accelerator}`),
    h("table", {}, h("thead", {}, h("tr", {}, ["id", "name", "accuracy", "latency ms", "FPS", "energy mJ", "bound"]
      .map((c, i) => h("th", { class: i === 1 ? "" : "num" }, c)))),
      h("tbody", {}, a.rows.filter(r => r.on_front).map(r => h("tr", {},
        h("td", { class: "num" }, r.id), h("td", {}, h("a", { href: `#/jobs/${id}/candidates/${r.id}` }, r.name)),
        ...[r.accuracy, r.latency_ms, r.throughput_fps, r.energy_mj].map(v => h("td", { class: "num" }, fmt(v))),
        h("td", { class: "num" }, r.bound)))))));
  render(h("h2", {}, `job ${id}: its ${result.candidates} on other accelerators`),
    h("p", { class: "muted" }, "Accuracy stays; the hardware figures and the job's constraints are re-checked on each chip."),
    h("div", { class: "card" }, summary), ...fronts);
}

function scatter(job, points, others) {
  const options = m => METRICS.map(k => h("option", { value: k, selected: k === m }, k));
  const xSel = h("select", { id: "x-axis", onchange: e => { plotState.x = e.target.value; route(); } }, options(plotState.x));
  const ySel = h("select", { id: "y-axis", onchange: e => { plotState.y = e.target.value; route(); } }, options(plotState.y));
  const all = h("input", { type: "checkbox", id: "show-all", checked: plotState.all, onchange: e => { plotState.all = e.target.checked; route(); } });
  const controls = h("div", { class: "controls" },
    h("label", {}, "x ", xSel), h("label", {}, "y ", ySel), h("label", {}, all, " all feasible candidates"),
    h("span", { class: "muted" }, "colour: energy per frame (mJ), low = blue; ringed: accuracy measured; click a point to open it"));
  if (!points.length) return h("div", {}, controls, h("p", { class: "muted", id: "pareto-empty" }, "No feasible candidate yet."));

  const W = 760, H = 380, L = 60, R = 20, T = 15, B = 45;
  const all_ = [...points, ...others];
  const xs = all_.map(c => metric(c, plotState.x)), ys = all_.map(c => metric(c, plotState.y));
  const es = points.map(c => metric(c, "energy_mj"));
  const sx = scale(xs, L, W - R), sy = scale(ys, H - B, T), se = scale(es, 0, 1);
  const svg = s("svg", { id: "pareto-plot", viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img" });
  svg.append(...axes(sx, sy, W, H, L, R, T, B, axisLabel(job, plotState.x), axisLabel(job, plotState.y)));
  for (const c of others) {
    if (c.on_front) continue;
    svg.append(s("circle", { class: "other-point", cx: sx(metric(c, plotState.x)), cy: sy(metric(c, plotState.y)), r: 3 }));
  }
  for (const c of points) {
    const measured = metric(c, "measured_accuracy") !== null && metric(c, "measured_accuracy") !== undefined;
    const dot = s("circle", {
      class: measured ? "front-point measured" : "front-point", "data-id": c.id, r: 6,
      cx: sx(metric(c, plotState.x)), cy: sy(metric(c, plotState.y)), fill: colour(se(metric(c, "energy_mj"))),
      onmousemove: e => showTip(e, `${c.name}\naccuracy ${accuracyText(c, job.accuracy_kind)}\n${plotState.x} ${fmt(metric(c, plotState.x))}, ${plotState.y} ${fmt(metric(c, plotState.y))}, ${fmt(metric(c, "energy_mj"))} mJ`),
      onmouseleave: hideTip,
      onclick: () => { location.hash = `#/jobs/${job.id}/candidates/${c.id}`; },
    });
    dot.append(s("title", {}, c.name));
    svg.append(dot);
  }
  return h("div", {}, controls, svg);
}

function metric(c, key) {
  return c.metrics ? c.metrics[key] : c[key];
}

function scale(values, a, b) {
  const v = values.filter(x => x !== null && x !== undefined && isFinite(x));
  let lo = Math.min(...v), hi = Math.max(...v);
  if (!v.length) { lo = 0; hi = 1; }
  if (lo === hi) { lo -= Math.abs(lo) * 0.05 || 1; hi += Math.abs(hi) * 0.05 || 1; }
  const pad = (hi - lo) * 0.05;
  lo -= pad; hi += pad;
  const f = x => a + (x - lo) / (hi - lo) * (b - a);
  f.domain = [lo, hi];
  return f;
}

function axes(sx, sy, W, H, L, R, T, B, xLabel, yLabel) {
  const out = [
    s("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }),
    s("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }),
    s("text", { x: (L + W - R) / 2, y: H - 8, "text-anchor": "middle" }, xLabel),
    s("text", { x: 12, y: (T + H - B) / 2, transform: `rotate(-90 12 ${(T + H - B) / 2})`, "text-anchor": "middle" }, yLabel),
  ];
  for (let i = 0; i <= 4; i++) {
    const xv = sx.domain[0] + (sx.domain[1] - sx.domain[0]) * i / 4;
    const yv = sy.domain[0] + (sy.domain[1] - sy.domain[0]) * i / 4;
    out.push(s("text", { x: sx(xv), y: H - B + 15, "text-anchor": "middle" }, fmt(xv, 3)));
    out.push(s("text", { x: L - 5, y: sy(yv) + 4, "text-anchor": "end" }, fmt(yv, 3)));
  }
  return out;
}

function colour(t) {  // blue (low energy) -> red (high)
  const r = Math.round(47 + t * (194 - 47)), g = Math.round(111 + t * (59 - 111)), b = Math.round(222 + t * (59 - 222));
  return `rgb(${r},${g},${b})`;
}

function showTip(e, text) {
  tooltip.hidden = false;
  tooltip.textContent = text;
  tooltip.style.whiteSpace = "pre";
  tooltip.style.left = `${e.clientX + 12}px`;
  tooltip.style.top = `${e.clientY + 12}px`;
}

function hideTip() { tooltip.hidden = true; }

function hvChart(history) {
  if (!history.length) return h("p", { class: "muted", id: "hv-empty" }, "No hypervolume yet (the reference point is fixed after the first scored candidates).");
  const W = 760, H = 220, L = 60, R = 20, T = 10, B = 40;
  const sx = scale(history.map(p => p.n_trials), L, W - R), sy = scale(history.map(p => p.hypervolume), H - B, T);
  const path = history.map((p, i) => `${i ? "L" : "M"}${sx(p.n_trials).toFixed(1)},${sy(p.hypervolume).toFixed(1)}`).join(" ");
  const svg = s("svg", { id: "hv-plot", viewBox: `0 0 ${W} ${H}`, width: "100%" });
  svg.append(...axes(sx, sy, W, H, L, R, T, B, "trials", "hypervolume"));
  svg.append(s("path", { d: path, fill: "none", stroke: "#2f6fde", "stroke-width": 2 }));
  return svg;
}

function frontTable(job, points) {
  const cols = ["id", "name", ...job.objectives.filter(o => o !== "params"), "params"];
  return h("table", { id: "front" },
    h("thead", {}, h("tr", {}, cols.map(c => h("th", { class: c === "name" ? "" : "num" }, axisLabel(job, c))))),
    h("tbody", {}, points.slice(0, 50).map(c => h("tr", {}, cols.map(k => h("td", { class: k === "name" ? "" : "num" },
      k === "name" ? h("a", { href: `#/jobs/${job.id}/candidates/${c.id}` }, c.name)
        : k === "accuracy" ? accuracyText(c, job.accuracy_kind) : fmt(c[k])))))));
}

// ---- candidate page ---------------------------------------------------------------------------

async function candidatePage(jobId, ref, stale) {
  clearTimeout(timer);
  const [c, job] = await Promise.all([api(`/jobs/${jobId}/candidates/${ref}`), api(`/jobs/${jobId}`)]);
  if (stale()) return;
  crumbs(h("a", { href: "#/" }, "jobs"), h("a", { href: `#/jobs/${jobId}` }, `job ${jobId}`), `candidate ${c.id}`);
  const m = c.metrics;
  const exportOut = h("span", { id: "export-result", class: "muted" });
  const button = h("button", { id: "export", disabled: c.status !== "complete", onclick: async () => {
    button.disabled = true;
    try {
      // the service queues the export and runs it apart: poll its card until it is complete or failed
      let e = await api(`/jobs/${jobId}/export`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ candidate: c.id }) });
      while (e.status === "queued" || e.status === "running") {
        exportOut.textContent = `export ${e.id} ${e.status} (state_dict, TorchScript, ONNX, ExportedProgram)…`;
        await new Promise(resolve => setTimeout(resolve, 1000));
        e = await api(e.card_url);
      }
      if (e.status === "complete") exportOut.replaceChildren("ready: ", h("a", { href: API + e.url, id: "export-link", download: "" }, `export ${e.id} (zip)`));
      else exportOut.replaceChildren(h("span", { class: "error", id: "export-error" }, `export ${e.id} failed: ${e.error}`));
    } catch (err) { exportOut.replaceChildren(h("span", { class: "error" }, err.message)); }
    button.disabled = false;
  } }, "Export (zip)");
  render(
    h("h2", {}, c.name, " ", h("span", { class: `status ${c.status}` }, c.on_front ? "on the front" : c.status)),
    c.failure ? h("p", { class: "error" }, c.failure) : null,
    h("div", { class: "card" }, h("div", { class: "grid" },
      h("div", { class: "stat", id: "candidate-accuracy" }, h("b", {}, accuracyText(c, job.accuracy_kind)), h("span", {}, axisLabel(job, "accuracy"))),
      ...["latency_ms", "throughput_fps", "energy_mj", "power_w", "params", "utilisation"].map(k =>
        h("div", { class: "stat" }, h("b", {}, fmt(m[k])), h("span", {}, k)))),
      h("p", {}, button, " ", exportOut)),
    h("div", { class: "card" }, h("h3", {}, "Architecture"), archTable(c.arch),
      h("p", { class: "muted" }, `stem ${c.arch.stem ?? "–"} (stride ${c.arch.stem_stride ?? "–"}), norm ${c.arch.norm ?? "–"}, act ${c.arch.act ?? "–"}, head ${c.arch.head ?? "–"}; hash ${c.arch_hash}`)),
    h("div", { class: "card" }, h("h3", {}, "By unit"), unitTable(c.hardware || {})),
    h("div", { class: "card" }, h("h3", {}, "Per layer"), legend(), layerBars(c.layers || [])),
  );
}

function archTable(arch) {
  const stages = arch.stages || [];
  if (!stages.length) return h("pre", {}, JSON.stringify(arch, null, 2));
  const cols = ["stage", "mixer", "depth", "dim", "mlp_ratio", "head_dim", "window_size", "kernel_size"];
  return h("table", { id: "stages" },
    h("thead", {}, h("tr", {}, cols.map(c => h("th", {}, c)))),
    h("tbody", {}, stages.map((st, i) => h("tr", {}, cols.map(c => h("td", {}, c === "stage" ? i + 1 : fmt(st[c])))))));
}

function unitTable(hw) {
  const units = Object.entries(hw.per_unit || {});
  if (!units.length) return h("p", { class: "muted" }, "No per-unit summary.");
  return h("table", { id: "units" },
    h("thead", {}, h("tr", {}, ["unit", "layers", "time (µs)", "energy (µJ)"].map(c => h("th", { class: c === "unit" ? "" : "num" }, c)))),
    h("tbody", {}, units.map(([u, v]) => h("tr", {},
      h("td", {}, h("span", { style: `color:${UNIT_COLOURS[u] || "#999"}` }, "■ "), u),
      h("td", { class: "num" }, v.layers), h("td", { class: "num" }, fmt(v.time_us)), h("td", { class: "num" }, fmt(v.energy_uj))))));
}

function legend() {
  return h("p", { class: "legend" }, "unit:", ...Object.entries(UNIT_COLOURS).flatMap(([u, col]) => [h("span", { style: `background:${col}` }), u]));
}

function layerBars(layers) {
  if (!layers.length) return h("p", { class: "muted" }, "No layers.");
  const W = 900, row = 14, L = 230, gap = 20, half = (W - L - gap) / 2;
  const H = layers.length * row + 30;
  const tMax = Math.max(...layers.map(l => l.time_us)) || 1, eMax = Math.max(...layers.map(l => l.energy_uj)) || 1;
  const svg = s("svg", { id: "layer-bars", viewBox: `0 0 ${W} ${H}`, width: "100%" });
  svg.append(s("text", { x: L, y: 12 }, "latency (µs)"), s("text", { x: L + half + gap, y: 12 }, "energy (µJ)"));
  layers.forEach((l, i) => {
    const y = 20 + i * row, fill = UNIT_COLOURS[l.unit] || "#999";
    const tip = `${l.name}: ${l.op} on ${l.unit} (${l.mapping}), ${fmt(l.time_us)} µs, ${fmt(l.energy_uj)} µJ`;
    const g = s("g", { class: "layer", "data-unit": l.unit, onmousemove: e => showTip(e, tip), onmouseleave: hideTip });
    g.append(
      s("text", { x: L - 6, y: y + 10, "text-anchor": "end" }, l.name.length > 34 ? `…${l.name.slice(-33)}` : l.name),
      s("rect", { x: L, y, width: Math.max(0.5, l.time_us / tMax * half), height: row - 3, fill }),
      s("rect", { x: L + half + gap, y, width: Math.max(0.5, l.energy_uj / eMax * half), height: row - 3, fill }),
    );
    svg.append(g);
  });
  return svg;
}

// ---- router -----------------------------------------------------------------------------------

let generation = 0;  // each route() draws only while it is the latest: a slow poll must not draw over a new page

async function route() {
  const mine = ++generation, stale = () => mine !== generation;
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  try {
    if (parts[0] === "jobs" && parts[2] === "candidates" && parts[3]) await candidatePage(parts[1], parts[3], stale);
    else if (parts[0] === "jobs" && parts[2] === "compare") await comparePage(parts[1], stale);
    else if (parts[0] === "jobs" && parts[1]) await jobPage(parts[1], stale);
    else await jobList(stale);
    if (stale()) return;
    document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);  // tests wait on it
  } catch (err) {
    if (stale()) return;
    clearTimeout(timer);
    showError(err);
  }
}

window.addEventListener("hashchange", () => { clearTimeout(timer); shownList = null; route(); });
route();
