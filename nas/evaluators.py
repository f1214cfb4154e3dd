"""The shipped evaluator: an accuracy proxy on one fixed batch of real images (a dense task's
images, for a detection or segmentation job).

Built once per worker (the data loads in the constructor); each call builds the candidate at the
proxy resolution and scores it. Plug-in evaluators follow the same protocol (``nas.plugins``).
"""

from __future__ import annotations

import torch

from nas.data import load_once
from nas.proxies import DEFAULT_NAME, needs_data, proxy_names, score
from nas.proxies._default import load_default
from nas.tasks import DENSE_TASKS
from search_spaces import ArchConfig, build_model


class ProxyEvaluator:
    """``evaluator(arch) -> {"accuracy": <proxy score>, <component scores>...}``."""

    accuracy_floor = None  # proxy scores have no natural floor: the job fixes one from its first results

    def __init__(
        self,
        *,
        proxy: str = DEFAULT_NAME,
        data: str = "fashion-mnist",
        data_dir: str | None = None,
        resolution: int = 32,
        batch: int = 64,
        seed: int = 0,
        task: str = "classification",
        dense_data: str | None = None,
    ) -> None:
        """``task``: a dense one scores its networks through ``nas.tasks.training.as_classifier`` on
        ``batch`` images of the folder ``dense_data`` (its ``train`` split), each labelled with its
        dominant class (``proxy_batch``)."""
        if proxy not in proxy_names():
            raise ValueError(f"evaluator.proxy: unknown proxy {proxy!r}; known: {', '.join(proxy_names())}")
        self.proxy, self.resolution, self.seed = proxy, resolution, seed
        # the default's components are scored anyway: keep them, they explain the combined score
        self.names = [proxy, *load_default().components] if proxy == DEFAULT_NAME else [proxy]
        self.task = task
        if task in DENSE_TASKS:
            from nas.tasks.datasets import load_detection, load_segmentation
            from nas.tasks.training import proxy_batch

            load = load_detection if task == "detection" else load_segmentation
            images = load(dense_data, "train", resolution=resolution)
            self.inputs, self.targets = proxy_batch(images, batch=batch, seed=seed)
            self.num_classes = images.num_classes
        elif needs_data(self.names):
            images = load_once(data, split="train", data_dir=data_dir)
            idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:batch]
            self.inputs, self.targets = images.batch(idx, resolution=resolution)
            self.num_classes = images.num_classes
        else:
            self.inputs, self.targets, self.num_classes = (batch, 3, resolution, resolution), None, 10

    def __call__(self, arch: ArchConfig) -> dict[str, float]:
        torch.manual_seed(self.seed)
        model = build_model(arch, num_classes=self.num_classes, img_size=self.resolution)
        if self.task in DENSE_TASKS:
            from nas.tasks.training import as_classifier

            model = as_classifier(model)
        scores = score(model, self.inputs, self.targets, names=self.names, seed=self.seed)
        return {"accuracy": scores[self.proxy], **scores}
