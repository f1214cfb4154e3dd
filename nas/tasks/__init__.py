"""The vision tasks a job can search networks for, and the metric each one is judged by.

A job's quality metric is stored in the candidate's accuracy fields whatever the task (measured,
or predicted with its std, 0-1, under the job's dataset and recipe); the task says what that number
is and what it is called: top-1 accuracy, COCO mAP@[.5:.95] or mean IoU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Task:
    name: str
    metric: str  # the objective and constraint name users write for the task's quality metric
    label: str  # how the metric is shown, units included
    extra: tuple[str, ...]  # measured beside it on every trained candidate, also 0-1
    description: str

    def chance(self, num_classes: int) -> float:
        """The metric of a network that has learnt nothing: 1/K for top-1; 0 for mAP and mIoU."""
        return 1.0 / num_classes if self.name == "classification" else 0.0


TASKS: dict[str, Task] = {
    "classification": Task(
        "classification",
        "accuracy",
        "top-1 accuracy",
        (),
        "one label per image; top-1 accuracy on the test split",
    ),
    "detection": Task(
        "detection",
        "map",
        "mAP@[.5:.95]",
        ("map50",),
        "boxes and classes of the objects in an image; COCO mAP averaged over IoU 0.50:0.95 (map50 at 0.50)",
    ),
    "segmentation": Task(
        "segmentation",
        "miou",
        "mIoU",
        ("pixel_accuracy",),
        "a class for every pixel (semantic); mean IoU over the classes, background included",
    ),
}
TASK_NAMES = tuple(TASKS)
# a dense task's metric by its own name, where a query names a candidate's number: its accuracy fields
METRIC_ALIASES = {t.metric: "accuracy" for t in TASKS.values() if t.metric != "accuracy"}
DENSE_TASKS = ("detection", "segmentation")


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASK_NAMES)}") from None


def spec_name(name: str, task: str) -> str:
    """An objective or constraint as a ``task`` job's spec names it: ``accuracy`` -> ``map``,
    ``min_accuracy`` -> ``min_map`` in a detection job; anything else as it is."""
    metric = get_task(task).metric
    return {"accuracy": metric, "min_accuracy": f"min_{metric}"}.get(name, name)


def task_extras(rungs: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """What a fully trained candidate measured beside its metric (``Task.extra``: map50, pixel
    accuracy): the figures of its training's last rung, where that rung is the training's end."""
    last = rungs[-1] if rungs else {}
    if not last or last.get("steps") != last.get("of"):
        return {}
    return {name: last[name] for task in TASKS.values() for name in task.extra if last.get(name) is not None}
