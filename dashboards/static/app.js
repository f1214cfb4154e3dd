// The dashboard: three views over the service's API, routed by the URL's hash.
//   #/                         jobs, live
//   #/jobs/ID                  one job: progress, Pareto scatter, hypervolume history
//   #/jobs/ID/candidates/CID   one candidate: architecture, per-layer latency and energy, export
//   #/jobs/ID/compare          the job's front re-priced on every shipped accelerator
// Plots are hand-drawn SVG: the page loads nothing from outside the service.
"use strict";

const API = "..";  // the dashboard sits at /ui/, the API at /
const POLL_MS = 2000;
// The candidate row keys the plot offers. Today's accuracy keys: accuracy (the job's value: measured where
// trained, else predicted; a proxy score in a job that trains nothing), accuracy_std, measured_accuracy.
// proxy_score, predicted_accuracy and predicted_std are read too where the API sends them.
// accuracy_int8 (measured, else accuracy less the predicted drop) and int8_drop: the network in INT8, as the chip computes.
const METRICS = ["accuracy", "measured_accuracy", "accuracy_std", "accuracy_int8", "int8_drop", "proxy_score", "latency_ms", "throughput_fps", "energy_mj", "power_w", "params", "weight_mib", "macs", "utilisation", "area_mm2"];
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

const known = v => v !== null && v !== undefined;

function isMeasured(c) { return known(metric(c, "measured_accuracy")); }

// The predictive standard deviation of a candidate's accuracy: null where it was measured or has none.
function accuracySd(c) {
  if (isMeasured(c)) return null;
  const sd = metric(c, "predicted_std") ?? metric(c, "accuracy_std");
  return known(sd) && isFinite(sd) ? sd : null;
}

// A job's accuracy as it is: measured, predicted with its spread, or a unitless proxy score.
function accuracyText(c, kind) {
  const v = metric(c, "accuracy");
  if (!known(v)) return "–";
  if (kind === "score") return `${fmt(v)} (score)`;
  if (isMeasured(c)) return `${v.toFixed(4)} measured`;
  const sd = accuracySd(c);
  return sd === null ? v.toFixed(4) : `${v.toFixed(4)} ± ${sd.toFixed(4)}`;
}

// A candidate's INT8 accuracy: measured on its quantized model, or its accuracy less the predicted drop, ± sd.
function int8Text(c) {
  const v = metric(c, "accuracy_int8");
  if (!known(v)) return "–";
  if (known(metric(c, "measured_accuracy_int8"))) return `${v.toFixed(4)} measured`;
  const sd = metric(c, "accuracy_int8_std");
  return known(sd) ? `${v.toFixed(4)} ± ${sd.toFixed(4)}` : v.toFixed(4);
}

// Where the hardware figures hold: the job's chip (or its co-design base) at its input shape.
function pricedAt(job) {
  const spec = job.spec || {}, a = spec.accelerator;
  const chip = typeof a === "string" ? a : a && a.base ? `chips from ${a.base}` : "the job's chip";
  const shape = Array.isArray(spec.input_shape) ? spec.input_shape.join("x") : "the job's input";
  return `${chip} at ${shape}`;
}

// What a trained dense candidate measured beside its metric (nas.tasks.task_extras): its training's
// last rung, where that rung is the training's end.
const EXTRAS = { map50: "mAP@.5 (0-1, measured)", pixel_accuracy: "pixel accuracy (0-1, measured)" };
function taskExtras(c) {
  const last = (c.rungs || [])[(c.rungs || []).length - 1];
  if (!last || last.steps !== last.of) return [];
  return Object.keys(EXTRAS).filter(k => known(last[k])).map(k => [k, last[k]]);
}

// INT8 accuracy is measured on classifiers (a dense job's INT8 metric is not yet)
function isClassification(job) { return !job.task || job.task === "classification"; }

// A metric's name for people: what it is, its units, and where it was measured or predicted.
function axisLabel(job, key) {
  const at = pricedAt(job);
  const dataset = ((job.predictor || {}).recipe || {}).dataset;
  // a detection or segmentation job's accuracy fields hold its task's metric (mAP, mIoU), 0-1
  const dense = !isClassification(job);
  const metric = job.accuracy_label;
  if (dense && ["accuracy", "measured_accuracy", "predicted_accuracy", "accuracy_std", "predicted_std"].includes(key)) {
    if (job.accuracy_kind === "score") return "proxy score (no units, higher ranks better)";
    const on = dataset ? ` on ${dataset}` : "";
    if (key === "measured_accuracy") return `${metric} (${job.task}${on}, 0-1, measured)`;
    if (key === "accuracy_std" || key === "predicted_std") return `${metric} std (0-1, the predictor's spread)`;
    return `${metric} (${job.task}${on}, 0-1, ${key === "accuracy" ? "measured or predicted" : "predicted"})`;
  }
  switch (key) {
    case "accuracy": {
      if (job.accuracy_kind === "score") return "proxy score (no units, higher ranks better)";
      if (job.accuracy_kind === "evaluator") return "accuracy (the plug-in evaluator's value)";
      const r = (job.predictor || {}).recipe;
      // short enough for the plot's height; the legend above the plot says what bars and rings are
      return r ? `accuracy (top-1 on ${r.dataset}, ${r.epochs} ep.; 0-1, predicted)` : "accuracy (top-1, 0-1, predicted)";
    }
    case "measured_accuracy": return `accuracy (top-1${dataset ? ` on ${dataset}` : ""}, 0-1, measured)`;
    case "accuracy_std": case "predicted_std": return "accuracy std (0-1, the predictor's spread)";
    case "predicted_accuracy": return `accuracy (top-1${dataset ? ` on ${dataset}` : ""}, 0-1, predicted)`;
    case "proxy_score": return "proxy score (no units, higher ranks better)";
    case "accuracy_int8": return `INT8 accuracy (top-1${dataset ? ` on ${dataset}` : ""}, 0-1, quantized as the chip computes)`;
    case "int8_drop": return "INT8 drop (FP32 − INT8 accuracy, 0-1)";
    case "latency_ms": return `latency (ms, ${at})`;
    case "throughput_fps": return `throughput (frames/s, ${at})`;
    case "energy_mj": return `energy per frame (mJ, ${at})`;
    case "power_w": return `power (W, ${at})`;
    case "params": return "parameters (count)";
    case "weight_mib": return "INT8 weights (MiB)";
    case "macs": return `MACs per frame (at ${at.split(" at ").pop()})`;
    case "utilisation": return `IMC array utilisation (0-1, ${at})`;
    case "area_mm2": return "chip area (mm²)";
    default: return key;
  }
}

// Short labels for stats and table headers: the name and its unit.
const SHORT = { latency_ms: "latency (ms)", throughput_fps: "throughput (frames/s)", energy_mj: "energy (mJ)",
  power_w: "power (W)", params: "parameters", utilisation: "utilisation (0-1)", area_mm2: "area (mm²)",
  accuracy_int8: "INT8 accuracy (0-1)", int8_drop: "INT8 drop (0-1)" };
function shortLabel(job, key) {
  if (key === "accuracy") return job.accuracy_kind === "score" ? "proxy score" : `${job.accuracy_label || "accuracy"} (0-1)`;
  return SHORT[key] || key;
}

function calibrationCard(job) {
  const c = job.predictor || {};
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
        p.trainings_planned ? stat("trained", `${p.trainings}/${p.trainings_planned}`, "trainings") : null,
        stat("hypervolume", fmt(job.hypervolume), "hypervolume"),
        stat(job.status === "running" ? "ETA" : "ran", job.status === "running" ? duration(job.eta_s) : duration(job.run_seconds), "time"),
        job.best ? stat(`best ${shortLabel(job, job.best.objective)}`, fmt(job.best.value), "best") : null,
      )),
    h("div", { class: "card" }, h("h3", {}, "Pareto front"), scatter(job, front.items, others)),
    calibrationCard(job),
    h("div", { class: "card" }, h("h3", {}, "Hypervolume"), hvChart(job, history)),
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
  const offered = METRICS.filter(k => k === plotState.x || k === plotState.y || points.some(c => known(metric(c, k))));
  const options = m => offered.map(k => h("option", { value: k, selected: k === m }, shortLabel(job, k) === k ? k : `${shortLabel(job, k)} [${k}]`));
  const xSel = h("select", { id: "x-axis", onchange: e => { plotState.x = e.target.value; route(); } }, options(plotState.x));
  const ySel = h("select", { id: "y-axis", onchange: e => { plotState.y = e.target.value; route(); } }, options(plotState.y));
  const all = h("input", { type: "checkbox", id: "show-all", checked: plotState.all, onchange: e => { plotState.all = e.target.checked; route(); } });
  const controls = h("div", { class: "controls" },
    h("label", {}, "x ", xSel), h("label", {}, "y ", ySel), h("label", {}, all, " all feasible candidates"),
    h("span", { class: "muted" }, "colour: energy per frame (mJ), low = blue; ",
      job.accuracy_kind === "predicted" ? "bars: predicted accuracy ± 1 sd; ringed: accuracy measured; " : "", "click a point to open it"));
  if (!points.length) return h("div", {}, controls, h("p", { class: "muted", id: "pareto-empty" }, "No feasible candidate yet."));

  const W = 760, H = 380, L = 60, R = 20, T = 15, B = 45;
  const all_ = [...points, ...others];
  // a predicted accuracy's axis spans its error bars too
  const spread = key => all_.flatMap(c => {
    const v = metric(c, key), sd = isAccuracy(key) ? accuracySd(c) : null;
    return sd === null ? [v] : [v - sd, v + sd];
  });
  const xs = spread(plotState.x), ys = spread(plotState.y);
  const es = points.map(c => metric(c, "energy_mj"));
  const sx = scale(xs, L, W - R), sy = scale(ys, H - B, T), se = scale(es, 0, 1);
  const svg = s("svg", { id: "pareto-plot", viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img" });
  svg.append(...axes(sx, sy, W, H, L, R, T, B, axisLabel(job, plotState.x), axisLabel(job, plotState.y)));
  for (const c of others) {
    if (c.on_front) continue;
    svg.append(s("circle", { class: "other-point", cx: sx(metric(c, plotState.x)), cy: sy(metric(c, plotState.y)), r: 3 }));
  }
  for (const c of points) {
    const measured = isMeasured(c), sd = accuracySd(c);
    if (sd !== null && (isAccuracy(plotState.x) || isAccuracy(plotState.y))) svg.append(errorBar(c, sd, sx, sy));
    const dot = s("circle", {
      class: measured ? "front-point measured" : "front-point", "data-id": c.id, r: 6,
      cx: sx(metric(c, plotState.x)), cy: sy(metric(c, plotState.y)), fill: colour(se(metric(c, "energy_mj"))),
      onmousemove: e => showTip(e, `${c.name}\n${shortLabel(job, "accuracy")} ${accuracyText(c, job.accuracy_kind)}\n${shortLabel(job, plotState.x)} ${fmt(metric(c, plotState.x))}, ${shortLabel(job, plotState.y)} ${fmt(metric(c, plotState.y))}, ${fmt(metric(c, "energy_mj"))} mJ`),
      onmouseleave: hideTip,
      onclick: () => { location.hash = `#/jobs/${job.id}/candidates/${c.id}`; },
    });
    dot.append(s("title", {}, c.name));
    svg.append(dot);
  }
  return h("div", {}, controls, svg);
}

function metric(c, key) {
  const row = c.metrics || c;
  // a row that splits the job's accuracy into its kinds: the measured one, else the predicted one, else the score
  if (key === "accuracy" && !known(row.accuracy)) return row.measured_accuracy ?? row.predicted_accuracy ?? row.proxy_score;
  return row[key];
}

// The axes on which a candidate's accuracy sits (its bars are drawn there), whichever key names it.
function isAccuracy(key) { return key === "accuracy" || key === "predicted_accuracy"; }

// A vertical (accuracy on y) or horizontal (accuracy on x) bar of ± 1 sd with caps, around the point.
function errorBar(c, sd, sx, sy) {
  const x = metric(c, plotState.x), y = metric(c, plotState.y), cap = 4;
  const g = s("g", { class: "error-bar", "data-id": c.id, "data-sd": sd });
  if (isAccuracy(plotState.y)) {
    const [top, bottom, px] = [sy(y + sd), sy(y - sd), sx(x)];
    g.append(s("line", { x1: px, x2: px, y1: top, y2: bottom }),
      s("line", { x1: px - cap, x2: px + cap, y1: top, y2: top }), s("line", { x1: px - cap, x2: px + cap, y1: bottom, y2: bottom }));
  } else {
    const [left, right, py] = [sx(x - sd), sx(x + sd), sy(y)];
    g.append(s("line", { x1: left, x2: right, y1: py, y2: py }),
      s("line", { x1: left, x2: left, y1: py - cap, y2: py + cap }), s("line", { x1: right, x2: right, y1: py - cap, y2: py + cap }));
  }
  g.append(s("title", {}, `${c.name}: predicted ${fmt(metric(c, "accuracy"))} ± ${fmt(sd)} (1 sd)`));
  return g;
}

// A linear map from the values' range (padded 5 %, or exactly `domain` when given) onto [a, b].
function scale(values, a, b, domain = null) {
  const v = values.filter(x => known(x) && isFinite(x));
  let lo = Math.min(...v), hi = Math.max(...v);
  if (!v.length) { lo = 0; hi = 1; }
  if (domain) [lo, hi] = domain;
  else {
    if (lo === hi) { lo -= Math.abs(lo) * 0.05 || 1; hi += Math.abs(hi) * 0.05 || 1; }
    const pad = (hi - lo) * 0.05;
    lo -= pad; hi += pad;
  }
  const f = x => a + (x - lo) / (hi - lo) * (b - a);
  f.domain = [lo, hi];
  return f;
}

// "Nice" ticks inside [lo, hi]: steps of 1, 2 or 5 times a power of ten (whole steps where `integer`),
// about `count` of them, each printed with the digits its step needs.
function niceTicks(lo, hi, count = 5, integer = false) {
  const raw = (hi - lo) / count;
  if (!(raw > 0) || !isFinite(raw)) return [{ value: lo, text: fmt(lo, 3) }];
  const power = 10 ** Math.floor(Math.log10(raw)), n = raw / power;
  let step = (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * power;
  if (integer) step = Math.max(1, Math.round(step));
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const ticks = [];
  for (let i = Math.ceil(lo / step - 1e-9); i * step <= hi + step * 1e-9; i++) {
    const value = i * step;
    const text = Math.abs(value) >= 1e4 ? Math.round(value).toLocaleString("en") : value.toFixed(digits);
    ticks.push({ value, text: text === "-0" ? "0" : text });
  }
  return ticks;
}

function axes(sx, sy, W, H, L, R, T, B, xLabel, yLabel, integerX = false) {
  const out = [
    s("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }),
    s("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }),
    s("text", { class: "axis-label x-label", x: (L + W - R) / 2, y: H - 8, "text-anchor": "middle" }, xLabel),
    s("text", { class: "axis-label y-label", x: 12, y: (T + H - B) / 2, transform: `rotate(-90 12 ${(T + H - B) / 2})`, "text-anchor": "middle" }, yLabel),
  ];
  for (const t of niceTicks(...sx.domain, 5, integerX)) out.push(s("text", { class: "tick x-tick", "data-value": t.value, x: sx(t.value), y: H - B + 15, "text-anchor": "middle" }, t.text));
  for (const t of niceTicks(...sy.domain, 4)) out.push(s("text", { class: "tick y-tick", "data-value": t.value, x: L - 5, y: sy(t.value) + 4, "text-anchor": "end" }, t.text));
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

const HV_FALLS = "The hypervolume moves only when the front does. It can fall: when the accuracy predictor is refit "
  + "on newly measured candidates, every predicted accuracy moves, and the front with them.";

function hvChart(job, history) {
  if (!history.length) {
    const open = Object.entries(job.reference_point || {}).filter(([, v]) => !known(v)).map(([o]) => shortLabel(job, o));
    const why = open.length
      ? `the reference point of ${open.join(", ")} (no natural floor) is set from the first scored candidates (10); the hypervolume appears then`
      : "it appears with the first feasible candidate on the front";
    return h("p", { class: "muted", id: "hv-empty" }, `No hypervolume yet: ${why}.`);
  }
  const W = 760, H = 220, L = 60, R = 20, T = 10, B = 40;
  const budget = (job.progress || {}).budget_trials, last = history[history.length - 1].n_trials;
  const end = Math.max(last, budget || 0, job.progress ? job.progress.trials : 0, 1);
  const sx = scale([], L, W - R, [0, end]), sy = scale(history.map(p => p.hypervolume), H - B, T);
  // a step function: flat until the trial that moved the front, then a jump; flat on to the trials run
  const steps = [`M${sx(history[0].n_trials).toFixed(1)},${sy(history[0].hypervolume).toFixed(1)}`];
  for (const p of history.slice(1)) steps.push(`H${sx(p.n_trials).toFixed(1)}`, `V${sy(p.hypervolume).toFixed(1)}`);
  steps.push(`H${sx(Math.max(last, job.progress ? job.progress.trials : last)).toFixed(1)}`);
  const falls = history.some((p, i) => i && p.hypervolume < history[i - 1].hypervolume);
  const svg = s("svg", { id: "hv-plot", viewBox: `0 0 ${W} ${H}`, width: "100%" });
  svg.append(...axes(sx, sy, W, H, L, R, T, B, budget ? `trials (budget ${budget})` : "trials",
    `hypervolume (${job.objectives.length} objectives)`, true));
  svg.append(s("path", { d: steps.join(" "), fill: "none", stroke: "#2f6fde", "stroke-width": 2 }, s("title", {}, HV_FALLS)));
  return h("div", {}, svg, h("p", { class: "muted", id: "hv-caption" },
    "The volume of objective space the front dominates, up to the job's reference point (a step each time the front moves). ",
    falls || job.accuracy_kind === "predicted" ? HV_FALLS.slice(HV_FALLS.indexOf("It can fall")) : ""));
}

function frontTable(job, points) {
  const objectives = job.objectives.filter(o => o !== "params");
  // a classification job that trains shows the INT8 accuracy beside the FP32 one, objective or not
  if (job.accuracy_kind === "predicted" && isClassification(job)) {
    for (const k of ["accuracy", "accuracy_int8"]) if (!objectives.includes(k)) objectives.splice(k === "accuracy" ? 0 : objectives.indexOf("accuracy") + 1, 0, k);
  }
  const cols = ["id", "name", ...objectives, "params"];
  return h("table", { id: "front" },
    h("thead", {}, h("tr", {}, cols.map(c => h("th", { class: c === "name" ? "" : "num", title: axisLabel(job, c) }, c === "accuracy" ? axisLabel(job, c) : shortLabel(job, c))))),
    h("tbody", {}, points.slice(0, 50).map(c => h("tr", {}, cols.map(k => h("td", { class: k === "name" ? "" : "num" },
      k === "name" ? h("a", { href: `#/jobs/${job.id}/candidates/${c.id}` }, c.name)
        : k === "accuracy" ? accuracyText(c, job.accuracy_kind) : k === "accuracy_int8" ? int8Text(c) : fmt(c[k])))))));
}

// ---- candidate page ---------------------------------------------------------------------------

async function candidatePage(jobId, ref, stale) {
  clearTimeout(timer);
  const [c, job] = await Promise.all([api(`/jobs/${jobId}/candidates/${ref}`), api(`/jobs/${jobId}`)]);
  if (stale()) return;
  crumbs(h("a", { href: "#/" }, "jobs"), h("a", { href: `#/jobs/${jobId}` }, `job ${jobId}`), `candidate ${c.id}`);
  const m = c.metrics;
  const exportOut = h("span", { id: "export-result", class: "muted" });
  // a candidate the job never trained exports initialised weights: the button says so, and asks for it
  const untrained = m.measured_accuracy == null;
  const button = h("button", { id: "export", disabled: c.status !== "complete", onclick: async () => {
    button.disabled = true;
    try {
      // the service queues the export and runs it apart: poll its card until it is complete or failed
      let e = await api(`/jobs/${jobId}/export`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ candidate: c.id, allow_untrained: untrained }) });
      while (e.status === "queued" || e.status === "running") {
        exportOut.textContent = `export ${e.id} ${e.status} (state_dict, ExportedProgram, ONNX)…`;
        await new Promise(resolve => setTimeout(resolve, 1000));
        e = await api(e.card_url);
      }
      if (e.status === "complete") exportOut.replaceChildren("ready: ", h("a", { href: API + e.url, id: "export-link", download: "" }, `export ${e.id} (zip)`));
      else exportOut.replaceChildren(h("span", { class: "error", id: "export-error" }, `export ${e.id} failed: ${e.error}`));
    } catch (err) { exportOut.replaceChildren(h("span", { class: "error" }, err.message)); }
    button.disabled = false;
  } }, untrained ? "Export (zip, untrained: initialised weights)" : "Export (zip, trained weights)");
  render(
    h("h2", {}, c.name, " ", h("span", { class: `status ${c.status}` }, c.on_front ? "on the front" : c.status)),
    c.failure ? h("p", { class: "error" }, c.failure) : null,
    h("div", { class: "card" }, h("div", { class: "grid" },
      h("div", { class: "stat", id: "candidate-accuracy" }, h("b", {}, accuracyText(c, job.accuracy_kind)), h("span", {}, axisLabel(job, "accuracy"))),
      ...taskExtras(c).map(([k, v]) => h("div", { class: "stat" }, h("b", {}, `${v.toFixed(4)} measured`), h("span", {}, EXTRAS[k]))),
      job.accuracy_kind === "predicted" && isClassification(job) ? h("div", { class: "stat", id: "candidate-int8" }, h("b", {}, int8Text(c)), h("span", {}, axisLabel(job, "accuracy_int8"))) : null,
      ...["latency_ms", "throughput_fps", "energy_mj", "power_w", "params", "utilisation"].map(k =>
        h("div", { class: "stat" }, h("b", {}, fmt(m[k])), h("span", { title: axisLabel(job, k) }, shortLabel(job, k))))),
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
