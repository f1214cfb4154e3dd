"""Every published measurement of the Metis chip we calibrate and judge the hardware model against,
with its source, and the networks measured, as layer IRs.

Sources (cited in docs/calibration.md):
- ISSCC24: Hager et al., "Metis AIPU: A 12nm 15TOPS/W 209.6TOPS SoC ...", ISSCC 2024, paper 11.3:
  ResNet-50 on the chip, 4 cores, 2502 FPS at 354 FPS/W (7.07 W). YOLOv5s (497 FPS, 10.9 mJ per
  frame) is not fitted: its resolution is not stated (benchmarks/dense_pricing.py shows it beside the
  dense points, assuming the zoo's 640x640).
- ZOO: Voyager SDK v1.2.5, docs/reference/model_zoo.md (github.com/axelera-ai-hub/voyager-sdk,
  commit 59c4894b), "Ref PCIe FPS": host-side frames per second of an i9-13900K with one Metis PCIe
  card, decoding a 720p video. They include the host pipeline, so they are used as relative speeds
  (one shared scale, fitted), never as absolute chip figures. Every image classifier of the table
  is here; ResNet-50 v1.0 (Keras) is left out as the same network as v1.5 spelled by another exporter.
  The M.2 column (a weaker host on PCIe Gen3 x2) is not used.
- DENSE_ZOO: the same table's "Object Detection", "Instance Segmentation" and "Keypoint Detection"
  rows (same commit, same column) for the networks a registry package builds offline without
  weights: ultralytics' YAMLs (YOLOv5 v7.0's backbone and neck, YOLOv8 and its -seg / -pose heads).
  They are never fitted: benchmarks/dense_pricing.py holds the chip model against them.
"""

from __future__ import annotations

from typing import NamedTuple

ISSCC_RESNET50_FPS, ISSCC_RESNET50_W = 2502.0, 7.07
ISSCC_YOLOV5S_FPS, ISSCC_YOLOV5S_MJ = 497.0, 10.9  # resolution not stated


class ZooPoint(NamedTuple):
    name: str  # as the model zoo names it
    model: str  # how we build it: "torchvision:NAME" or a timm name (the zoo's own source)
    resolution: int
    fps: float  # Ref PCIe FPS


ZOO = (
    ZooPoint("ResNet-10t", "resnet10t", 224, 5397),
    ZooPoint("ResNet-18", "torchvision:resnet18", 224, 3726),
    ZooPoint("ResNet-34", "torchvision:resnet34", 224, 2290),
    ZooPoint("ResNet-50 v1.5", "torchvision:resnet50", 224, 1877),
    ZooPoint("ResNet-101", "torchvision:resnet101", 224, 999),
    ZooPoint("ResNet-152", "torchvision:resnet152", 224, 425),
    ZooPoint("MobileNetV2", "torchvision:mobilenet_v2", 224, 3147),
    ZooPoint("MobileNetV4-small", "mobilenetv4_conv_small", 224, 4346),
    ZooPoint("MobileNetV4-medium", "mobilenetv4_conv_medium", 224, 2138),
    ZooPoint("MobileNetV4-large", "mobilenetv4_conv_large", 384, 624),
    ZooPoint("MobileNetV4-aa_large", "mobilenetv4_conv_aa_large", 384, 527),
    ZooPoint("EfficientNet-B0", "torchvision:efficientnet_b0", 224, 1307),
    ZooPoint("EfficientNet-B1", "torchvision:efficientnet_b1", 224, 885),
    ZooPoint("EfficientNet-B2", "torchvision:efficientnet_b2", 224, 818),
    ZooPoint("EfficientNet-B3", "torchvision:efficientnet_b3", 224, 679),
    ZooPoint("EfficientNet-B4", "torchvision:efficientnet_b4", 224, 493),
    ZooPoint("SqueezeNet 1.0", "torchvision:squeezenet1_0", 224, 1010),
    ZooPoint("SqueezeNet 1.1", "torchvision:squeezenet1_1", 224, 7124),
)
REFERENCE = "ResNet-50 v1.5"  # the network the ISSCC figures were measured on

# Measured, but no cost model of the chip can separate it from its sibling: SqueezeNet 1.0 runs at
# 1010 FPS, 7x slower than SqueezeNet 1.1 (7124) with 2.4x its MACs, the same operators and the
# same SDK (a later SDK release measures 953 vs 7298). Something in how that release compiles it,
# not the chip, sets its speed. It is priced and reported, but neither fitted nor counted in the bars.
UNEXPLAINED = {"SqueezeNet 1.0": "7x slower than SqueezeNet 1.1 with 2.4x its MACs and the same operators"}


class DensePoint(NamedTuple):
    name: str  # as the model zoo names it
    yaml: str  # the ultralytics model YAML and its scale, e.g. "yolov8.yaml:n"
    head: str  # "v5": YOLOv5 v7.0's anchor-based head (three 1x1 convs); "ultralytics": the YAML's own
    resolution: int
    fps: float  # Ref PCIe FPS


DENSE_ZOO = (
    DensePoint("YOLOv5n", "yolov5.yaml:n", "v5", 640, 915),
    DensePoint("YOLOv5s", "yolov5.yaml:s", "v5", 640, 789),
    DensePoint("YOLOv5s-Relu", "yolov5.yaml:s:relu", "v5", 640, 753),
    DensePoint("YOLOv5m", "yolov5.yaml:m", "v5", 640, 411),
    DensePoint("YOLOv5l", "yolov5.yaml:l", "v5", 640, 263),
    DensePoint("YOLOv8n", "yolov8.yaml:n", "ultralytics", 640, 714),
    DensePoint("YOLOv8s", "yolov8.yaml:s", "ultralytics", 640, 556),
    DensePoint("YOLOv8m", "yolov8.yaml:m", "ultralytics", 640, 220),
    DensePoint("YOLOv8l", "yolov8.yaml:l", "ultralytics", 640, 170),
    DensePoint("YOLOv8n-seg", "yolov8-seg.yaml:n", "ultralytics", 640, 521),
    DensePoint("YOLOv8s-seg", "yolov8-seg.yaml:s", "ultralytics", 640, 428),
    DensePoint("YOLOv8l-seg", "yolov8-seg.yaml:l", "ultralytics", 640, 145),
    DensePoint("YOLOv8n-pose", "yolov8-pose.yaml:n", "ultralytics", 640, 700),
    DensePoint("YOLOv8s-pose", "yolov8-pose.yaml:s", "ultralytics", 640, 533),
    DensePoint("YOLOv8l-pose", "yolov8-pose.yaml:l", "ultralytics", 640, 164),
)

# Same table, not buildable offline (its repository is no registry package): a MobileNet-0.25 face
# detector at 640x640 that runs as fast as YOLOv5n. dense_pricing.py cites it, never fits it.
RETINAFACE_MB025 = DensePoint("RetinaFace - mb0.25", "", "", 640, 914)


def zoo_networks(threads: int = 2) -> dict[str, list]:
    """Each zoo network's layer IR at its measured resolution (untrained weights: offline)."""
    import timm
    import torch
    import torchvision

    import search_spaces as ss

    torch.set_num_threads(threads)
    nets = {}
    for point in ZOO:
        if point.model.startswith("torchvision:"):
            model = torchvision.models.get_model(point.model.removeprefix("torchvision:"), weights=None)
        else:
            model = timm.create_model(point.model, pretrained=False)
        nets[point.name] = ss.trace(model, (3, point.resolution, point.resolution))
    return nets


def dense_networks(names=None, threads: int = 2) -> dict[str, list]:
    """Each dense zoo network's layer IR at its measured resolution, built by ultralytics (AGPL, the
    ``zoo`` extra; benchmarks and tests only) from its YAML with untrained weights: offline."""
    import torch
    from dense_models import build_dense

    import search_spaces as ss

    torch.set_num_threads(threads)
    points = [p for p in DENSE_ZOO if names is None or p.name in names]
    return {p.name: ss.trace(build_dense(p.yaml, p.head), (3, p.resolution, p.resolution)) for p in points}
