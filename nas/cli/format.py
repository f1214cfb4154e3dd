"""Plain-text tables and the numbers in them, for every `nas` command: units in the headers,
plain thousands (``27,200``, never ``2.72e+04``), and the words that describe a job's accuracy,
hypervolume and counts the same way in `nas run`, `nas jobs`, `nas pareto` and `nas show`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from hwmodels import CostReport
from nas.objectives import accuracy_label


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        # numbers right-aligned, text left-aligned
        return "  ".join(c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *(line(r) for r in cells[1:])])


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "", 1).replace("%", "").lstrip("+-").isdigit()


def millions(n: int) -> str:
    return f"{n / 1e6:.2f}"


def giga(n: int) -> str:
    return f"{n / 1e9:.3f}"


def number(value: float | None, digits: int = 4) -> str:
    """``digits`` significant digits in plain notation, thousands separated: 27,214 / 3.142 / 0.01235."""
    if value is None:
        return "-"
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    return f"{value:,.{decimals}f}"


def duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


# ---- a job's accuracy, counts and hypervolume ---------------------------------------------------


def accuracy_word(kind: str, task: str = "classification") -> str:
    """What a job's `accuracy` objective is called where it is printed (``nas.objectives.accuracy_label``:
    a proxy's ranking is a score; else the task's metric)."""
    return accuracy_label(kind, task)


def accuracy_header(kind: str, task: str = "classification") -> str:
    """The accuracy column's header: a score has no units."""
    return f"{accuracy_word(kind)} (no units)" if kind == "score" else accuracy_word(kind, task)


def accuracy_cell(metrics: Mapping[str, Any], kind: str) -> str:
    """A candidate's accuracy as the job states it: measured, predicted with its spread, or a score."""
    value = metrics.get("accuracy")
    if value is None:
        return "-"
    if kind == "score":
        return f"{value:.4g}"
    if metrics.get("measured_accuracy") is not None:
        return f"{value:.4f} measured"
    std = metrics.get("accuracy_std")
    return f"{value:.4f} ±{std:.4f}" if std is not None else f"{value:.4f}"


def int8_cell(metrics: Mapping[str, Any]) -> str:
    """A candidate's INT8 accuracy: measured, or its FP32 accuracy less the predicted drop, with its spread."""
    value = metrics.get("accuracy_int8")
    if value is None:
        return "-"
    if metrics.get("measured_accuracy_int8") is not None:
        return f"{value:.4f} measured"
    std = metrics.get("accuracy_int8_std")
    return f"{value:.4f} ±{std:.4f}" if std is not None else f"{value:.4f}"


def accuracy_units(job) -> str:
    """What the job's accuracy means (a JobRecord)."""
    if job.accuracy_kind == "score":
        return "the proxy's ranking score, no units: the job trains nothing"
    if job.accuracy_kind == "evaluator":
        return "as the plug-in evaluator returns it"
    r = job.predictor.get("recipe") or {}
    if job.task != "classification":
        return (f"{job.accuracy_label} on {r.get('dataset', '?')}'s val split at {r.get('resolution', '?')}px after"
                f" {r.get('epochs', '?')} epochs over {r.get('images', '?')} images")  # fmt: skip
    return (f"top-1 on {r.get('dataset', '?')} at {r.get('resolution', '?')}px after {r.get('epochs', '?')} epochs"
            f" over {r.get('images', '?')} images")  # fmt: skip


def predictor_errors(job) -> str:
    """How the job's accuracy predictor did on candidates it had not seen measured."""
    c = job.predictor
    if job.accuracy_kind != "predicted" or not c.get("measured"):
        return ""
    text = f"; {c['measured']} candidates measured, the rest predicted"
    for label, key in (("predicted before training", "prospective_errors"), ("leave-one-out", "leave_one_out")):
        e = c.get(key)
        if e:
            tau = "n/a" if e["kendall_tau"] is None else f"{e['kendall_tau']:.2f}"
            text += (f"; {label}: MAE {e['mae']:.4f} over {e['n']}, Kendall tau {tau},"
                     f" {e['within_2sd']:.0%} within 2 std")  # fmt: skip
    return text


def counts(job) -> str:
    return (
        f"{job.n_complete} scored, {job.n_infeasible} infeasible, {job.n_failed} failed, "
        f"{job.n_duplicates} duplicates, {job.n_front} on the front"
    )


def reference_text(job) -> str:
    return ", ".join(
        f"{k} {v:.4g}" if v is not None else f"{k} (not yet fixed)" for k, v in job.reference_point.items()
    )


def hypervolume_text(job) -> str:
    """The job's hypervolume with its reference point, or when it will have one and why not yet."""
    if job.hypervolume is not None:
        return f"hypervolume {job.hypervolume:.6g} (reference {reference_text(job)})"
    return f"hypervolume: none yet; {hypervolume_pending(job)}"


def hypervolume_pending(job) -> str:
    """Why a job has no hypervolume yet, and when it will (``nas.reference``'s rules)."""
    from nas.reference import WARMUP  # light: the rule's constant, no models

    unfixed = [k for k, v in job.reference_point.items() if v is None]
    if unfixed:
        why = (f"{', '.join(unfixed)} has no natural floor"
               + (" (a proxy's score)" if "accuracy" in unfixed and job.accuracy_kind == "score" else ""))  # fmt: skip
        return (f"it appears after {WARMUP} scored candidates ({job.n_complete} so far): {why}, so its reference "
                f"is the worst of those")  # fmt: skip
    if not job.n_front:
        return "it appears with the first feasible candidate on the front"
    return "the front does not yet improve on the reference point anywhere"


def front_table(rows: Sequence[Mapping[str, Any]], kind: str, task: str = "classification") -> str:
    """Front rows (``CandidateRecord.row()`` or the API's Pareto items) as a table with units; a
    classification job that trains shows the INT8 accuracy (as the chip computes) beside the FP32 one;
    a dense job's column is its metric (mAP, mIoU)."""
    int8 = kind == "predicted" and task == "classification"
    header = accuracy_header(kind, task)
    headers = ["id", "name", f"FP32 {header}" if int8 else header]
    headers += ["INT8 accuracy"] if int8 else []
    return table(
        [*headers, "latency ms", "FPS", "energy mJ", "params M", "trial"],
        [
            (r["id"], r["name"], accuracy_cell(r, kind), *([int8_cell(r)] if int8 else []),
             number(r.get("latency_ms")), number(r.get("throughput_fps"), 3), number(r.get("energy_mj")),
             "-" if r.get("params") is None else f"{r['params'] / 1e6:.2f}", r.get("trial_number", "-"))
            for r in rows
        ],
    )  # fmt: skip


# ---- a network's per-layer costs ---------------------------------------------------------------

_LAYER_HEADERS = ["layer", "op", "unit", "mapping", "time us", "energy uJ", "compute uJ", "weights uJ",
                  "activ. uJ", "static uJ", "weights in", "IMC util"]  # fmt: skip


def check_top(top: int | None) -> None:
    """``--top`` of a per-layer table: a number of layers, 0 for none (checked before any pricing)."""
    if top is not None and top < 0:
        raise ValueError(f"--top {top}: give a number of layers >= 0 (0: no per-layer table)")


def layer_table(report: CostReport, top: int | None = None) -> str:
    """The per-layer table per frame, every column with its unit, the static energy its own column,
    and a total row equal to the report's totals; ``top``: only the N slowest layers (the rest
    summed in one row; 0: no table, ""), None: every layer."""
    check_top(top)
    if top == 0:
        return ""
    layers = list(report.layers)
    slowest = sorted(range(len(layers)), key=lambda i: -layers[i].time_us)[:top] if top is not None else None
    shown = layers if slowest is None else [layers[i] for i in slowest]
    rest = [] if slowest is None else [r for i, r in enumerate(layers) if i not in set(slowest)]

    def sums(rows) -> list[float]:
        return [sum(getattr(r, k) for r in rows) for k in ("time_us", "energy_uj", "compute_uj", "weights_uj",
                                                            "activations_uj", "static_uj")]  # fmt: skip

    def cells(values: Sequence[float]) -> list[str]:
        return [f"{values[0]:,.2f}", *(f"{v:,.3f}" for v in values[1:])]

    out = [(r.name, f"{r.op}/{r.fn}", r.unit, r.mapping, *cells(sums([r])), r.weights_in or "-",
            f"{r.utilisation:.0%}" if r.unit == "imc" else "-") for r in shown]  # fmt: skip
    if rest:
        out.append((f"({len(rest)} other layers)", "", "", "", *cells(sums(rest)), "", ""))
    # the report's totals; a frame stretched past its layers' time (a shared-memory bandwidth cap)
    # spends static energy outside any layer: shown as its own row so the rows add up
    split = report.energy_split_mj
    total = [report.latency_ms * 1e3, report.energy_mj * 1e3,
             *(split.get(k, 0.0) * 1e3 for k in ("compute", "weights", "activations", "static"))]  # fmt: skip
    gap = [t - s for t, s in zip(total, sums(layers), strict=True)]
    if any(abs(g) > 1e-6 * max(abs(t), 1.0) for g, t in zip(gap, total, strict=True)):
        out.append((f"(outside the layers: {report.bound})", "", "", "", *cells(gap), "", ""))
    out.append(("total per frame", "", "", "", *cells(total), "", f"{report.utilisation:.0%}"))
    return table(_LAYER_HEADERS, out)


def constraint_advice(job) -> list[str]:
    """Why a job has no feasible candidate: its record's constraint report, one line a constraint
    (which rejected how many, the best value, the bound that would admit one)."""
    report = job.constraint_report or {}
    if job.n_front or not report.get("advice"):
        return []
    return [f"no feasible candidate among {report['candidates']}:", *(f"  {line}" for line in report["advice"])]
