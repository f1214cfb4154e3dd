"""The job's side of accuracy in units: which candidates to really train, the predictor fitted on
them (``nas.surrogate``), and the predicted accuracies it writes back to the store.

Training happens in three places, all on the job's workers:

1. an **initial design**: the first half of ``train.candidates`` are the first candidates scored
   (the samplers' random start-up trials), trained as soon as they are scored;
2. **the candidates whose prediction would move the front most**: the rest, spread over the
   search; each is the unmeasured candidate with the widest predictive spread among those that
   would join the front if they were two standard deviations better than predicted (else the
   front member with the widest spread);
3. **the front's best** at the end: the top ``train.final`` by accuracy (or as many as asked on
   demand with ``nas train``), whose weights are kept for export, and, where trainings are cheap
   (the runner decides), every other unmeasured member of the front.

Successive halving (``train.rungs``, docs/training_schedule.md): every training but the front's
best is scored at each rung and stops where even an optimistic extrapolation to the end (the
largest gain seen from that rung, plus a margin) cannot reach the accuracy that would put it on
the current front at its own latency, energy, ...: its ``bars``; only a candidate whose prediction
(two stds up) cannot reach it either gets bars. A stopped candidate stays
predicted, its prediction conditioned on its last rung (a noisy observation of its final accuracy:
the rung's accuracy plus the mean gain seen from there, with their spread as extra variance).

Each result is a held-out check of the predictor: the prediction made just before the candidate
was measured is stored beside the measurement (``JobRecord.predictor["prospective"]``), with the
predictor's leave-one-out errors over everything measured (``predictor["leave_one_out"]``).

A candidate's accuracy fields stay apart (``nas.objectives.accuracy_objective``): the proxy's score
is its evaluation's, the predictor writes ``predicted_accuracy`` (and ``predicted_std``) at each
refit, a training writes ``measured_accuracy``; none overwrites another.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
from scipy.stats import norm

from nas.int8_drop import Int8DropPredictor
from nas.objectives import loss_vector, with_accuracy
from nas.proxies._default import feature, load_default
from nas.spec import JobSpec, TrainingRecipe
from nas.status import CandidateStatus
from nas.store import CandidateRecord, JobRecord, Store
from nas.store._records import Measured
from nas.surrogate import AccuracySurrogate, Calibration, standardise
from nas.tasks import get_task
from nas.training import describe_recipe
from search_spaces import ArchConfig

MIXER_FAMILIES = {
    "conv": ("sepconv", "dwconv", "mbconv"),
    "attention": ("attention", "window_attention"),
    "mlp": ("spatial_mlp",),
    "pool": ("pooling", "identity"),
}
# the data, resolution, recipe and classes the default's map from score to accuracy was fitted on
PRIOR_SETUP = ("fashion-mnist", 32, TrainingRecipe(), 10)
UNKNOWN_OFFSET = 0.2  # prior spread of the accuracy level where no shipped map applies
PROSPECTIVE_KEPT = 200  # prospective (predicted, measured) pairs kept in the job's predictor record
# successive halving: the gain from a rung at share r of the steps to the end is bounded by
# PRIOR_GAIN * (1 - r) until LADDERS_TO_LEARN full trainings have shown it, then by the largest gain
# seen from that rung plus GAIN_MARGIN; a stopped candidate's final accuracy is its rung's plus the
# mean gain, with the gains' spread (at least GAIN_SD_FLOOR; PRIOR_GAIN * (1 - r) / 2 before any)
PRIOR_GAIN = 0.4
LADDERS_TO_LEARN = 3
GAIN_MARGIN = 0.02
GAIN_SD_FLOOR = 0.01
# ... and only where the prediction, OPTIMISM stds above its mean, cannot reach the front either: an
# early rung can sit near chance for a network that ends on the front (the README job: 0.21 at a
# quarter of its steps, 0.863 at the end; docs/training_schedule.md)
OPTIMISM = 2.0


def arch_encoding(arch_json: str) -> list[float]:
    """A MetaFormer's own encoding: total depth, stages, log mean width, mean MLP ratio and the
    share of blocks per mixer family. Other spaces' networks encode as nothing (sizes still count)."""
    try:
        arch = ArchConfig.from_json(arch_json)
    except Exception:  # a plug-in space's network
        return []
    depths = [s.depth for s in arch.stages]
    total = sum(depths) or 1
    share = [sum(s.depth for s in arch.stages if s.mixer in family) / total for family in MIXER_FAMILIES.values()]
    width = sum(s.dim * s.depth for s in arch.stages) / total
    ratio = sum(s.mlp_ratio * s.depth for s in arch.stages) / total
    return [float(total), float(len(depths)), math.log(width), float(ratio), *share, *dense_encoding(arch)]


NECKS = ("none", "fpn", "pan")


def dense_encoding(arch: ArchConfig) -> list[float]:
    """A dense network's neck and head: the neck's kind (one-hot), log width and depth, the head's
    log width, depth and kind (segmentation: fpn_fuse 0, mlp 1). Nothing for a classifier, so its
    encoding is as it was; within a job every network has the same task, so the same length."""
    if arch.task_head is None:
        return []
    neck, head = arch.neck, arch.task_head
    kind = [float(neck is not None and neck.kind == k) for k in NECKS]
    width = math.log(neck.width) if neck is not None and neck.width else 0.0
    depth = float(neck.depth or 0) if neck is not None else 0.0
    head_depth = float(getattr(head, "depth", 0) or 0)
    head_kind = float(getattr(head, "kind", "") == "mlp")
    return [*kind, width, depth, math.log(head.width), head_depth, head_kind]


def predictor_features(score: float, params: float | None, macs: float | None, arch_json: str) -> np.ndarray:
    """What the predictor sees of a candidate: the proxy's score first (its prior map and slope
    term read column 0), log parameters, log MACs, then the architecture's own encoding."""
    sizes = [math.log(max(v or 1.0, 1.0)) for v in (params, macs)]
    return np.array([score, *sizes, *arch_encoding(arch_json)], dtype=float)


class AccuracyPredictor:
    """Built by the search loop of a job whose evaluator trains (``spec.accuracy_kind() == 'predicted'``)."""

    def __init__(self, store: Store, job: JobRecord, spec: JobSpec, known: dict[str, CandidateRecord]) -> None:
        self.store, self.job_id, self.spec = store, job.id, spec
        self.training = spec.evaluator.train
        self.proxy = spec.evaluator.proxy
        # the shipped map from the default's score to accuracy holds for the data and recipe it was
        # fitted on (the ranking benchmark's); elsewhere the prior is the mean of what was measured
        e = spec.evaluator
        benchmark = (e.data, e.resolution, e.train.recipe, spec.num_classes) == PRIOR_SETUP
        default = load_default() if self.proxy == "default" and benchmark else None
        self.prior = default if default is not None and default.accuracy_prior else None
        self.recipe = describe_recipe(spec)
        # before anything is measured: a top-1 of one half; a dense metric (mAP, mIoU) its floor, 0,
        # where a network that has learnt nothing sits (a half would be an absurd mAP)
        self.unmeasured_prior = 0.5 if spec.task == "classification" else get_task(spec.task).chance(spec.num_classes)
        self.raw: dict[int, np.ndarray] = {}  # candidate id -> features (score first)
        self.records: dict[int, CandidateRecord] = {}
        self.measured: dict[int, float] = {}
        self.in_flight: dict[int, tuple[float, float]] = {}  # candidate -> prediction when it was sent
        self.gave_up: set[int] = set()  # trainings that failed: not tried again in this run
        self.ladders: dict[int, list[dict]] = {}  # candidate -> its training's rungs
        self.drops: dict[int, float] = {}  # candidate -> its measured INT8 drop (FP32 - INT8)
        self.int8 = Int8DropPredictor()  # the INT8 drop from what the network contains (nas.int8_drop)
        self.prospective: list[dict] = list(job.predictor.get("prospective", []))
        for record in known.values():
            if record.status == CandidateStatus.COMPLETE:
                self.remember(record)
                if record.metrics.get("measured_accuracy") is not None:
                    self.measured[record.id] = float(record.metrics["measured_accuracy"])
                if record.metrics.get("measured_accuracy_int8") is not None and record.id in self.measured:
                    self.drops[record.id] = self.measured[record.id] - float(record.metrics["measured_accuracy_int8"])
                if record.rungs:
                    self.ladders[record.id] = [dict(r) for r in record.rungs]
        self._fit()

    # ---- predictions ------------------------------------------------------------------------

    def predict(self, scores: dict[str, float], metrics: dict[str, float], arch_json: str) -> tuple[float, float]:
        """A newly scored candidate's accuracy (mean, std) under the current fit."""
        raw = self._features(scores, metrics, arch_json)
        mean, std = self.model.predict((raw[None, :] - self.centre) / self.scale, self._prior_from([raw[0]]))
        return float(mean[0]), float(std[0])

    def predict_drops(self, arch_jsons: list[str], params: list[float | None]) -> list[dict[str, float]]:
        """The INT8 drop (``predicted_int8_drop`` and its std) of each network, from what it contains
        and the job's measured drops; {} for a network the drop model cannot read (a plug-in space's),
        and in a dense job, whose INT8 metric is not measured (the drop model knows classifiers)."""
        if self.spec.task != "classification":
            return [{} for _ in arch_jsons]
        try:
            mean, std = self.int8.predict(arch_jsons, params)
        except Exception:
            return [{} for _ in arch_jsons]
        return [
            {"predicted_int8_drop": float(m), "predicted_int8_drop_std": float(s)}
            for m, s in zip(mean, std, strict=True)
        ]

    def remember(self, record: CandidateRecord) -> None:
        """A recorded complete candidate: a candidate to train, and one the next refit predicts."""
        self.raw[record.id] = self._features(record.scores, record.metrics, record.arch)
        self.records[record.id] = record

    def _features(self, scores: dict[str, float], metrics: dict[str, float], arch_json: str) -> np.ndarray:
        return predictor_features(
            feature(self.proxy, float(scores[self.proxy])), metrics.get("params"), metrics.get("macs"), arch_json
        )

    def _prior_mean(self, ids: list[int]) -> np.ndarray:
        return self._prior_from([self.raw[i][0] for i in ids])

    def _prior_from(self, scores: list[float]) -> np.ndarray:
        if self.prior is not None:
            return np.array([self.prior.prior_accuracy(s) for s in scores])
        fallback = np.mean(list(self.measured.values())) if self.measured else self.unmeasured_prior
        return np.full(len(scores), fallback)

    def _standardised(self, ids: list[int]) -> np.ndarray:
        if not ids:
            return np.zeros((0, np.size(self.centre)))
        return (np.array([self.raw[i] for i in ids], dtype=float) - self.centre) / self.scale

    def _fit(self) -> None:
        ids = list(self.raw)
        self.centre, self.scale = standardise(np.array([self.raw[i] for i in ids])) if ids else (0.0, 1.0)
        trained = list(self.measured)
        extrapolated = {i: self.extrapolated(i) for i in self.stopped}
        fitted = trained + list(extrapolated)
        self.model = AccuracySurrogate.fit(
            self._standardised(fitted),
            [self.measured[i] for i in trained] + [m for m, _ in extrapolated.values()],
            self._prior_mean(fitted),
            offset=None if self.prior is not None else UNKNOWN_OFFSET,
            extra_var=[0.0] * len(trained) + [sd**2 for _, sd in extrapolated.values()],
        )
        quantized = [i for i in self.drops if i in self.records]
        if quantized:  # the job's own drops move the drop model's prior (nas.int8_drop)
            self.int8.fit([self.records[i].arch for i in quantized],
                          [self.records[i].metrics.get("params") for i in quantized],
                          [self.drops[i] for i in quantized])  # fmt: skip

    # ---- successive halving -----------------------------------------------------------------

    @property
    def stopped(self) -> list[int]:
        """Candidates whose training stopped at an early rung (and were not measured since)."""
        return [i for i, ladder in self.ladders.items() if i not in self.measured and i in self.raw and ladder
                and ladder[-1]["steps"] < ladder[-1]["of"]]  # fmt: skip

    def _gains(self, steps: int) -> list[float]:
        """Final minus rung accuracy, at ``steps``, over the full trainings' ladders."""
        gains = []
        for ladder in self.ladders.values():
            if ladder and ladder[-1]["steps"] == ladder[-1]["of"]:
                gains += [ladder[-1]["accuracy"] - r["accuracy"] for r in ladder[:-1] if r["steps"] == steps]
        return gains

    def gain_bound(self, steps: int, of: int) -> float:
        """The most a training scored at ``steps`` of ``of`` can still gain by its end (optimistic)."""
        gains = self._gains(steps)
        if len(gains) < LADDERS_TO_LEARN:
            return PRIOR_GAIN * (1 - steps / of)
        return max(gains) + GAIN_MARGIN

    def extrapolated(self, candidate_id: int) -> tuple[float, float]:
        """A stopped candidate's final accuracy from its last rung: (mean, std)."""
        last = self.ladders[candidate_id][-1]
        gains = self._gains(last["steps"])
        prior = PRIOR_GAIN * (1 - last["steps"] / last["of"])
        if not gains:
            return min(1.0, last["accuracy"] + prior / 2), prior / 2
        sd = float(np.std(gains, ddof=1)) if len(gains) > 1 else prior / 2
        return min(1.0, last["accuracy"] + float(np.mean(gains))), max(sd, GAIN_SD_FLOOR)

    def required_accuracy(self, record: CandidateRecord, front: list[CandidateRecord] | None = None) -> float | None:
        """The accuracy ``record`` must beat to be on the current front at its other objectives (its
        latency, energy, ...): the best of the front members at least as good on all of them
        (measured, else predicted mean); None where none is, or accuracy is not an objective.
        ``front``: the job's front, where the caller read it already."""
        objectives = self.spec.objectives
        if "accuracy" not in objectives:
            return None
        k = objectives.index("accuracy")
        own = loss_vector(record.metrics, objectives)
        bar = None
        for member in self.store.pareto(self.job_id) if front is None else front:
            if member.id == record.id or member.metrics.get("accuracy") is None:
                continue
            loss = loss_vector(member.metrics, objectives)
            if all(loss[j] <= own[j] for j in range(len(objectives)) if j != k):
                bar = max(bar or 0.0, float(member.metrics["accuracy"]))
        return bar

    def bars_for(self, record: CandidateRecord, steps: list[int]) -> list[float | None] | None:
        """A training's bar at each rung before the last (``steps``, the recipe's rungs): the
        accuracy needed there for an optimistic extrapolation to reach the front; None: no bars."""
        if len(steps) < 2:
            return None
        need = self.required_accuracy(record)
        if need is None:
            return None
        m = self.records[record.id].metrics if record.id in self.records else record.metrics
        if (m.get("accuracy") or 0.0) + OPTIMISM * (m.get("accuracy_std") or 0.0) >= need:
            return None  # the prediction says it may reach the front: an early rung alone cannot overrule it
        return [need - self.gain_bound(s, steps[-1]) for s in steps[:-1]]

    def _summary(self) -> dict[str, Any]:
        """The predictor as the job's record keeps it: what it is, its prior, its held-out errors."""
        trained = list(self.measured)
        loo_mean, loo_std = self.model.loo(self._prior_mean(trained + self.stopped))
        n = len(trained)
        loo = Calibration.of(loo_mean[:n], loo_std[:n], [self.measured[i] for i in trained])
        pairs = [
            (p["predicted"], p["std"], p["measured"]) for p in self.prospective if "measured" in p and "predicted" in p
        ]
        pro = Calibration.of(*zip(*pairs, strict=True)) if len(pairs) >= 2 else None
        drop_pairs = [
            (p["predicted_drop"], p["drop_std"], p["measured_drop"]) for p in self.prospective if "measured_drop" in p
        ]
        drop_errors = Calibration.of(*zip(*drop_pairs, strict=True)) if len(drop_pairs) >= 2 else None
        return {
            "kind": "gaussian process over the proxy score, log params, log MACs and the architecture's encoding",
            "prior": self.prior.accuracy_prior["fitted_on"] if self.prior else "none: the mean of measured accuracies",
            "recipe": self.recipe,
            "measured": len(self.measured),
            "stopped_early": len(self.stopped),
            **self.model.summary(),
            "leave_one_out": loo.to_dict() if loo else None,
            "prospective": self.prospective[-PROSPECTIVE_KEPT:],
            "prospective_errors": pro.to_dict() if pro else None,
            "int8": {**self.int8.summary(), "prospective_errors": drop_errors.to_dict() if drop_errors else None},
        }

    def publish(self, measured: Measured | None = None, rungs: dict[int, list[dict]] | None = None) -> None:
        """Refit on everything measured (and stopped early) and write every unmeasured candidate's
        new prediction, with a training's ``rungs``."""
        self._fit()
        ids = [i for i in self.raw if i not in self.measured]
        predictions: dict[int, dict[str, float]] = {}
        if ids:
            mean, std = self.model.predict(self._standardised(ids), self._prior_mean(ids))
            predictions = {
                i: {"predicted_accuracy": float(m), "predicted_std": float(s)}
                for i, m, s in zip(ids, mean, std, strict=True)
            }
        unquantized = [i for i in self.raw if i not in self.drops]  # its INT8 accuracy not measured
        drops = self.predict_drops([self.records[i].arch for i in unquantized],
                                   [self.records[i].metrics.get("params") for i in unquantized])  # fmt: skip
        for i, fields in zip(unquantized, drops, strict=True):
            if fields:
                predictions[i] = {**predictions.get(i, {}), **fields}
        self.store.update_accuracy(self.job_id, predictions, self._summary(), measured, rungs=rungs)
        for i, fields in predictions.items():
            self.records[i] = _with_fields(self.records[i], **fields)

    # ---- what to train ----------------------------------------------------------------------

    @property
    def trained_for_fit(self) -> int:
        return len(self.measured) + len(self.in_flight) + len(self.gave_up) + len(self.stopped)

    def next_for_search(self, progress: float) -> CandidateRecord | None:
        """The candidate to train now during the search (None: none is due). ``progress``: the
        share of the search's budget spent (trials or wall time, whichever is further)."""
        budget = self.training.candidates
        spent = self.trained_for_fit
        if spent >= budget:
            return None
        initial = max(1, math.ceil(budget / 2))
        done = set(self.measured) | set(self.in_flight) | self.gave_up | set(self.stopped)
        open_ids = [i for i in self.raw if i not in done]
        if not open_ids:
            return None
        if spent < initial:
            return self.records[min(open_ids, key=lambda i: self.records[i].trial_number)]
        active = budget - initial
        if progress < (spent - initial + 1) / (active + 1):
            return None
        return self.records[self._most_informative(open_ids)]

    def _most_informative(self, open_ids: list[int]) -> int:
        """The candidate whose measurement is likeliest to change the front or its best: the chance
        it beats the best measured accuracy on the front, plus how undecided its own membership is
        (min(p, 1 - p), p the chance it beats ``required_accuracy``), from its predicted mean and std."""
        front = self.store.pareto(self.job_id)
        measured_best = max((self.measured[r.id] for r in front if r.id in self.measured), default=None)

        def chance(i: int, bar: float | None) -> float:
            m = self.records[i].metrics
            if bar is None:
                return 1.0
            mean, std = m.get("accuracy") or 0.0, max(m.get("accuracy_std") or 0.0, 1e-6)
            return float(norm.sf((bar - mean) / std))

        def value(i: int) -> float:
            p = chance(i, self.required_accuracy(self.records[i], front))
            best = chance(i, measured_best) if measured_best is not None else p
            return best + min(p, 1 - p)

        return max(open_ids, key=value)

    def final_choice(self, top: int, whole_front: bool = False) -> list[tuple[CandidateRecord, bool]]:
        """What the end measures, each with whether it must train to the end: the front's ``top``
        best by accuracy that are not measured yet (nor given up on), fully (their weights are
        kept); with ``whole_front``, every other unmeasured member too, through the rungs (one
        stopped early already is not tried again)."""
        busy = set(self.measured) | set(self.in_flight) | self.gave_up
        front = self.store.pareto(self.job_id, sort="accuracy", descending=True)
        best = [(r, True) for r in front[:top] if r.id not in busy]
        if not whole_front:
            return best
        stopped = set(self.stopped)
        return best + [(r, False) for r in front[top:] if r.id not in busy and r.id not in stopped]

    def unmeasured_front(self) -> int:
        """Members of the front neither measured nor being measured."""
        return sum(r.id not in self.measured and r.id not in self.in_flight for r in self.store.pareto(self.job_id))

    # ---- results ----------------------------------------------------------------------------

    def sent(self, record: CandidateRecord) -> None:
        self.in_flight[record.id] = (record.metrics.get("predicted_accuracy"), record.metrics.get("predicted_std"))

    def result(
        self,
        candidate_id: int,
        accuracy: float | None,
        weights: bytes | None,
        failure: str | None,
        rungs: tuple[dict, ...] | list[dict] = (),
        int8: tuple[float | None, bytes | None, dict | None] = (None, None, None),
        precision: str | None = None,
    ) -> None:
        """A training's end: measured (``accuracy``), stopped at an early rung (``rungs`` only), or
        failed (``failure``). ``int8``: a measured training's INT8 accuracy, INT8 model and how it was
        quantized; ``precision``: what it trained in."""
        predicted, std = self.in_flight.pop(candidate_id, (None, None))
        if rungs:
            self.ladders[candidate_id] = [dict(r) for r in rungs]
        ladder = {candidate_id: self.ladders[candidate_id]} if rungs else None
        if accuracy is None and failure is None and rungs:  # stopped early: stays predicted
            if predicted is not None:  # the prediction before its rungs, to check what they taught
                self.prospective.append(
                    {"candidate": candidate_id, "predicted": round(predicted, 5), "std": round(std or 0.0, 5),
                     "stopped_at": rungs[-1]["steps"], "rung_accuracy": round(rungs[-1]["accuracy"], 5)}
                )  # fmt: skip
            self.publish(rungs=ladder)
            return
        if accuracy is None:
            self.gave_up.add(candidate_id)
            self.prospective.append({"candidate": candidate_id, "failed": failure})
            return
        self.measured[candidate_id] = accuracy
        accuracy_int8, onnx, quantized = int8
        before = self.records[candidate_id].metrics
        entry = {"candidate": candidate_id, "measured": round(accuracy, 5)}
        if predicted is not None:
            entry |= {"predicted": round(predicted, 5), "std": round(std or 0.0, 5)}
        if accuracy_int8 is not None:
            self.drops[candidate_id] = accuracy - accuracy_int8
            if before.get("predicted_int8_drop") is not None:  # the INT8 drop model's held-out check
                entry |= {"predicted_drop": round(before["predicted_int8_drop"], 5),
                          "drop_std": round(before.get("predicted_int8_drop_std") or 0.0, 5),
                          "measured_drop": round(accuracy - accuracy_int8, 5)}  # fmt: skip
        if len(entry) > 2:
            self.prospective.append(entry)
        self.records[candidate_id] = _with_fields(
            self.records[candidate_id], measured_accuracy=accuracy, measured_accuracy_int8=accuracy_int8
        )
        recipe = {**self.recipe, "precision": precision or "float32"}
        measured = Measured(candidate_id, accuracy, weights, recipe, predicted, std, accuracy_int8, onnx, quantized)
        self.publish(measured, rungs=ladder)


def _with_fields(record: CandidateRecord, **fields: float | None) -> CandidateRecord:
    """``record`` with new accuracy fields and the ``accuracy`` they define, as the store writes them."""
    return replace(record, metrics=with_accuracy({**record.metrics, **fields}))
