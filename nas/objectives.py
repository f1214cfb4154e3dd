"""What a search can optimise and bound: the objectives with their directions, the metrics of a
candidate, and the conversion of metrics to the minimisation vectors that Pareto fronts and
hypervolumes work on."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from nas.tasks import get_task

# objective -> direction. "accuracy" is the value ``accuracy_objective`` defines from a candidate's
# three accuracy fields: the task's metric (nas.tasks: top-1 accuracy, mAP, mIoU; 0-1) under the
# job's training recipe, measured or else predicted; in a job that trains nothing, a proxy's ranking
# score (JobSpec.accuracy_kind says which). A dense job's spec may name it by its metric (map, miou).
OBJECTIVES: dict[str, str] = {
    "accuracy": "maximize",
    "accuracy_int8": "maximize",  # the same top-1 of the network quantized as the chip computes (INT8)
    "latency_ms": "minimize",
    "throughput_fps": "maximize",
    "energy_mj": "minimize",
    "params": "minimize",
    "area_mm2": "minimize",
}

# Every number a candidate carries, as the store's columns: what `--where` and `--sort` accept.
METRICS: dict[str, str] = {
    "accuracy": "the objective the front ranks by (accuracy_objective): measured_accuracy where trained,"
    " else predicted_accuracy, else (a job that trains nothing) proxy_score",
    "accuracy_std": "standard deviation of accuracy: predicted_std where accuracy is the prediction, else null",
    "proxy_score": "what the job's evaluator returned as accuracy: a proxy's ranking score (no units), or a"
    " plug-in evaluator's value",
    "predicted_accuracy": "top-1 accuracy (0-1) the job's predictor gives it under the job's recipe (null: the job"
    " trains nothing); rewritten at each refit, kept once measured",
    "predicted_std": "the predictor's standard deviation of predicted_accuracy",
    "measured_accuracy": "top-1 accuracy measured by training under the job's recipe (null: not trained)",
    "accuracy_int8": "top-1 accuracy (0-1) of the network quantized to INT8 as the chip computes it"
    " (int8_fields): measured_accuracy_int8 where measured, else accuracy minus predicted_int8_drop",
    "accuracy_int8_std": "standard deviation of accuracy_int8 where it is predicted, else null",
    "int8_drop": "accuracy lost to INT8 (FP32 minus INT8, 0-1): measured where both are, else predicted_int8_drop",
    "measured_accuracy_int8": "top-1 accuracy of the trained network after post-training INT8 quantization"
    " (the job's INT8 recipe: nas.int8), measured on the same images as measured_accuracy",
    "predicted_int8_drop": "the INT8 drop the job's predictor gives it from what the network contains",
    "predicted_int8_drop_std": "the predictor's standard deviation of predicted_int8_drop",
    "latency_ms": "one frame, start to end, on the accelerator",
    "throughput_fps": "frames per second of the whole chip",
    "energy_mj": "energy per frame, static included",
    "power_w": "average power at throughput_fps",
    "params": "trainable parameters",
    "weight_mib": "INT8 weights, MiB",
    "macs": "multiply-accumulates per frame",
    "utilisation": "MAC-weighted IMC array utilisation",
    "area_mm2": "silicon area of the chip it runs on (AI cores and L2; a co-design job searches the chip)",
    "trial_number": "the Optuna trial that first proposed the candidate",
    "eval_s": "seconds the evaluation took on its worker",
}


# What a job's `accuracy` is (JobSpec.accuracy_kind / JobRecord.accuracy_kind).
ACCURACY_KINDS: dict[str, str] = {
    "predicted": "top-1 accuracy (0-1) under the job's training recipe, measured where trained, else predicted",
    "score": "a proxy's ranking score, without units (the job trains nothing)",
    "evaluator": "what the job's plug-in evaluator returns",
}


# What a job's `accuracy` is called where it is shown, by its kind: a score is not an accuracy.
ACCURACY_LABELS: dict[str, str] = {"predicted": "accuracy", "score": "proxy score", "evaluator": "accuracy"}


def accuracy_label(kind: str, task: str = "classification") -> str:
    """What a job's ``accuracy`` is called where it is shown: a proxy's ranking is a score; a measured
    or predicted one is the task's metric (``nas.tasks``: accuracy, mAP@[.5:.95], mIoU)."""
    if kind == "score" or task == "classification":
        return ACCURACY_LABELS[kind]
    return get_task(task).label


def accuracy_objective(
    proxy_score: float | None,
    predicted: float | None,
    predicted_std: float | None,
    measured: float | None,
) -> tuple[float | None, float | None]:
    """The one definition of a candidate's ``accuracy`` (the objective the front ranks by) and its
    standard deviation, from its three distinct accuracy fields: the measured accuracy if it was
    trained, else the predicted accuracy (with its std) if the job predicts, else the proxy score
    (a job that trains nothing: a score, not an accuracy). No field is ever overwritten by another."""
    if measured is not None:
        return measured, None
    if predicted is not None:
        return predicted, predicted_std
    return proxy_score, None


def int8_fields(
    accuracy: float | None,
    accuracy_std: float | None,
    measured: float | None,
    measured_int8: float | None,
    predicted_drop: float | None,
    predicted_drop_std: float | None,
) -> tuple[float | None, float | None, float | None]:
    """The one definition of a candidate's INT8 accuracy, its std and its INT8 drop (FP32 minus
    INT8), from its ``accuracy`` (``accuracy_objective``) and its INT8 fields: measured where the
    trained network was quantized and scored, else the FP32 accuracy less the predicted drop (their
    spreads added), else unknown (a job that trains nothing has no accuracy to lose)."""
    if measured_int8 is not None:
        return measured_int8, None, (measured - measured_int8 if measured is not None else None)
    if predicted_drop is None or accuracy is None:
        return None, None, None
    spread = math.hypot(accuracy_std or 0.0, predicted_drop_std or 0.0)
    return accuracy - predicted_drop, spread, predicted_drop


# the objectives that are accuracies (FP32 and INT8): unknown on an infeasible candidate, which is
# told the worst seen; chance is their reference in a job that predicts them
ACCURACY_OBJECTIVES = ("accuracy", "accuracy_int8")
# what a job's predictor writes: FP32 accuracy, the INT8 drop, and their stds
PREDICTED_FIELDS = ("predicted_accuracy", "predicted_std", "predicted_int8_drop", "predicted_int8_drop_std")
# the fields a candidate's accuracy is stated in; the ones ``with_accuracy`` derives from them
ACCURACY_FIELDS = ("proxy_score", "predicted_accuracy", "predicted_std", "measured_accuracy")
INT8_FIELDS = ("measured_accuracy_int8", "predicted_int8_drop", "predicted_int8_drop_std")
DERIVED_FIELDS = ("accuracy", "accuracy_std", "accuracy_int8", "accuracy_int8_std", "int8_drop")


def with_accuracy(metrics: Mapping[str, float | None]) -> dict[str, float | None]:
    """``metrics`` with its derived fields (``DERIVED_FIELDS``) set from the fields they derive from:
    ``accuracy`` and its std by ``accuracy_objective``, the INT8 ones by ``int8_fields``."""
    out = dict(metrics)
    out["accuracy"], out["accuracy_std"] = accuracy_objective(*(metrics.get(f) for f in ACCURACY_FIELDS))
    out["accuracy_int8"], out["accuracy_int8_std"], out["int8_drop"] = int8_fields(
        out["accuracy"], out["accuracy_std"], metrics.get("measured_accuracy"), *(metrics.get(f) for f in INT8_FIELDS)
    )
    return out


def check_objectives(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown objective {', '.join(map(repr, unknown))}; known: {', '.join(OBJECTIVES)}")
    return list(names)


def directions(objectives: Sequence[str]) -> list[str]:
    return [OBJECTIVES[name] for name in objectives]


def sign(objective: str) -> float:
    """+1 for a minimised objective, -1 for a maximised one: ``sign * value`` is a loss."""
    return 1.0 if OBJECTIVES[objective] == "minimize" else -1.0


def loss_vector(metrics: Mapping[str, float], objectives: Sequence[str]) -> tuple[float, ...]:
    return tuple(sign(name) * float(metrics[name]) for name in objectives)


def values(metrics: Mapping[str, float], objectives: Sequence[str]) -> list[float]:
    """The values told to Optuna, in the objectives' order and their own directions."""
    return [float(metrics[name]) for name in objectives]
