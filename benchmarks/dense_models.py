"""The model zoo's dense networks as torch modules, built offline from ultralytics' YAMLs (no weights),
cut where the deployed network ends: the heads' raw convolution outputs. Box decoding (YOLOv8's DFL,
anchors and grids), NMS and mask assembly run on the host and are not priced.

ultralytics is AGPL-3.0: it is the ``zoo`` extra, imported here (benchmarks) and in tests only.

- ``yolov5.yaml:n`` etc. are YOLOv5 v7.0's backbone and neck (ultralytics keeps them unchanged);
  head ``v5`` puts back v7.0's anchor-based head, one 1x1 conv per level to 3 anchors x (5 + 80)
  channels, in place of ultralytics' anchor-free one (what the zoo's ``yolov5*-v7-coco`` runs).
- A third field ``relu`` builds the network with ReLU in place of SiLU (the zoo's YOLOv5s-Relu).
"""

from __future__ import annotations

import os
import tempfile

from torch import nn

V5_ANCHORS, COCO_CLASSES = 3, 80


class DeployedYolo(nn.Module):
    """An ultralytics model run layer by layer as its ``from`` indices say, up to the head, whose
    branches' raw outputs (and mask prototypes) are returned as they leave the chip."""

    def __init__(self, model: nn.Module, head: str) -> None:
        super().__init__()
        self.layers = model.model[:-1]
        detect = model.model[-1]
        self.sources = detect.f
        if head == "v5":
            channels = [branch[0].conv.in_channels for branch in detect.cv2]
            self.branches = nn.ModuleList(
                [nn.ModuleList(nn.Conv2d(c, V5_ANCHORS * (5 + COCO_CLASSES), 1) for c in channels)]
            )
            self.proto = None
        elif head == "ultralytics":
            self.branches = nn.ModuleList(b for b in detect.one2many.values() if b is not None)
            self.proto = getattr(detect, "proto", None)
        else:
            raise ValueError(f"head: {head!r} is not one of 'v5', 'ultralytics'")

    def forward(self, x):
        saved = []
        for m in self.layers:
            if m.f != -1:
                x = saved[m.f] if isinstance(m.f, int) else [x if j == -1 else saved[j] for j in m.f]
            x = m(x)
            saved.append(x)
        feats = [saved[j] for j in self.sources]
        outs = [branch[i](f) for branch in self.branches for i, f in enumerate(feats)]
        if self.proto is not None:
            outs.append(self.proto(feats[0]))
        return outs


def build_dense(spec: str, head: str) -> nn.Module:
    """``spec``: "YAML:SCALE[:relu]" of ultralytics' model YAMLs, e.g. "yolov8-seg.yaml:s"."""
    os.environ.setdefault("YOLO_OFFLINE", "1")  # no update checks, no downloads
    os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(tempfile.gettempdir(), "nas-ultralytics"))
    from ultralytics.nn.tasks import DetectionModel, PoseModel, SegmentationModel, yaml_model_load

    yaml_name, scale, *variant = spec.split(":")
    config = yaml_model_load(yaml_name)
    config["scale"] = scale
    if variant == ["relu"]:
        config["activation"] = "nn.ReLU()"
    kind = SegmentationModel if "-seg" in yaml_name else PoseModel if "-pose" in yaml_name else DetectionModel
    return DeployedYolo(kind(config, verbose=False), head)
