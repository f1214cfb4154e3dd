"""`nas run`'s progress: one tqdm bar for the trials and, in a job that trains, one for the
trainings (the predictor's and the front's best at the end: the minutes after the last trial),
each with its own count and ETA. On a terminal the bars redraw in place; elsewhere (a log, a pipe)
they print a line every few seconds."""

from __future__ import annotations

import re
import sys
import time
from typing import Any

from tqdm import tqdm

from nas.cli.format import accuracy_word, duration, hypervolume_pending

_CONTROL = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\r")


class _Lines:
    """A file for tqdm off a terminal: each redraw becomes one plain line on stderr."""

    def write(self, text: str) -> None:
        line = _CONTROL.sub("", text).strip()
        if line:
            print(line, file=sys.stderr, flush=True)

    def flush(self) -> None:
        sys.stderr.flush()


class ProgressBar:
    """The progress of ``nas.search.run``: call it with each new JobRecord."""

    def __init__(self, store, job, *, trainings: int | None = None) -> None:
        """``trainings``: how many this run trains (default: what the job has left of its
        predictor's budget and its final ``train_final``)."""
        self.store = store
        self.kind, self.task = job.accuracy_kind, job.task
        self.objective = job.spec["objectives"][0]
        self.wall = job.spec["budget"]["wall_time_s"]
        self.best = ""
        self.hypervolume: float | None = None
        tty = sys.stderr.isatty()
        options: dict[str, Any] = dict(
            file=sys.stderr if tty else _Lines(), mininterval=0.5 if tty else 5.0, dynamic_ncols=tty, leave=True
        )  # fmt: skip
        self.trials = tqdm(total=job.budget_trials, initial=job.n_trials, desc="trials", unit="trial",
                           position=0 if tty else None, **options)  # fmt: skip
        self.trainings = None
        if self.kind == "predicted":
            done = self._measured(job)
            if trainings is None:
                trainings = max(job.trainings_planned - done, 0)
            self.trainings = tqdm(total=done + trainings, initial=done, desc="trainings", unit="net",
                                  position=1 if tty else None, **options)  # fmt: skip
        self.started = time.monotonic()

    @staticmethod
    def _measured(job) -> int:
        """Trainings done so far (the job record counts them)."""
        return job.n_trained

    def __call__(self, job) -> None:
        if job.hypervolume != self.hypervolume or (job.n_front and not self.best):  # the front moved
            self.hypervolume = job.hypervolume
            top = self.store.pareto(job.id, limit=1)  # best first objective, from the maintained front
            word = accuracy_word(self.kind, self.task) if self.objective == "accuracy" else self.objective
            self.best = f"best {word} {top[0].metrics[self.objective]:.4g}" if top else ""
        self.trials.set_postfix_str(self._postfix(job), refresh=False)
        self.trials.update(job.n_trials - self.trials.n)
        if self.trainings is not None:
            done = self._measured(job)
            # more than planned: a measurement reordered the front, another round; fewer at the end: the
            # front's best had been measured already
            if done > self.trainings.total or job.status == "completed":
                self.trainings.total = done
            self.trainings.update(done - self.trainings.n)

    def _postfix(self, job) -> str:
        trained = f", {self._measured(job)} trained" if self._measured(job) else ""
        parts = [f"{job.n_complete} scored{trained}, {job.n_infeasible} infeasible, {job.n_failed} failed, "
                 f"{job.n_duplicates} dup"]  # fmt: skip
        if self.best:
            parts.append(self.best)
        parts.append(f"front {job.n_front}")
        if job.hypervolume is not None:
            parts.append(f"HV {job.hypervolume:.4g}")
        elif any(v is None for v in job.reference_point.values()):
            parts.append("HV " + hypervolume_pending(job).split(":")[0].removeprefix("it "))
        if self.wall and not job.budget_trials:
            parts.append(f"wall {duration(max(self.wall - job.run_seconds, 0))} left")
        return " | ".join(parts)

    @property
    def line(self) -> str:
        """What the bars show now, one line each."""
        bars = [self.trials] if self.trainings is None else [self.trials, self.trainings]
        return "\n".join(str(b) for b in bars)

    def close(self) -> None:
        if self.trainings is not None:
            self.trainings.close()
        self.trials.close()
