"""What a search can optimise and bound: the objectives with their directions, the metrics of a
candidate, and the conversion of metrics to the minimisation vectors that Pareto fronts and
hypervolumes work on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# objective -> direction. "accuracy" is top-1 accuracy (0-1) under the job's training recipe, as
# predicted by its calibrated predictor or measured; a job that trains nothing has a proxy's
# ranking score there instead (JobSpec.accuracy_kind says which).
OBJECTIVES: dict[str, str] = {
    "accuracy": "maximize",
    "latency_ms": "minimize",
    "throughput_fps": "maximize",
    "energy_mj": "minimize",
    "params": "minimize",
    "area_mm2": "minimize",
}

# Every number a candidate carries, as the store's columns: what `--where` and `--sort` accept.
METRICS: dict[str, str] = {
    "accuracy": "top-1 accuracy (0-1) under the job's recipe: measured where trained, else predicted"
    " (or, in a job that trains nothing, the proxy's score)",
    "accuracy_std": "predictive standard deviation of a predicted accuracy (null where measured)",
    "measured_accuracy": "top-1 accuracy measured by training under the job's recipe (null: not trained)",
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
