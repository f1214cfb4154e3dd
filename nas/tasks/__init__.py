"""The vision tasks a job can search networks for, and the metric each one is judged by.

A job's quality metric is stored in the candidate's accuracy fields whatever the task (measured,
or predicted with its std, 0-1, under the job's dataset and recipe); the task says what that number
is and what it is called: top-1 accuracy, COCO mAP@[.5:.95] or mean IoU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from search_spaces import DENSE_TASKS as _ARCH_DENSE_TASKS
from search_spaces import TASKS as _ARCH_TASKS

# the generated scenes (nas.tasks.scenes): a dataset name a spec may give, and the classes of their
# objects (Fashion-MNIST's); a segmentation of them adds the background as class 0
SCENES_DATASET = "fashion-mnist-scenes"
SCENES_CLASSES = 10
SCENES_TRAIN, SCENES_VAL, SCENES_SIZE = 2000, 500, 128  # the default scenes: images per split, canvas px
IGNORE_INDEX = 255  # a mask pixel that counts for no class


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
assert TASK_NAMES == _ARCH_TASKS, "nas.tasks and search_spaces name the same tasks"
DENSE_TASKS = _ARCH_DENSE_TASKS  # the tasks whose networks have a dense head (search_spaces defines them)
# a dense task's metric by its own name, where a query names a candidate's number: its accuracy fields
METRIC_ALIASES = {t.metric: "accuracy" for t in TASKS.values() if t.metric != "accuracy"}
METRIC_TASKS = {t.metric: t.name for t in TASKS.values()}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASK_NAMES)}") from None


def own_metric(name: str, task: str, field: str) -> str:
    """A query's metric name for a ``task`` job's column: its task's metric by its own name (``map``)
    is its ``accuracy``; another task's metric name is an error naming ``field`` (where, sort)."""
    if name not in METRIC_ALIASES:
        return name
    metric = get_task(task).metric
    if name != metric:
        raise ValueError(
            f"{field}: {name} is the metric of {METRIC_TASKS[name]} jobs; this {task} job's is {metric}"
            f"{' (or accuracy)' if metric != 'accuracy' else ''}"
        )
    return METRIC_ALIASES[name]


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
