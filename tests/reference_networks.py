"""The networks of two public NAS benchmarks, built as their papers define them, so our proxies can
be checked against NASLib's scores and against the benchmarks' trained accuracies.

- NAS-Bench-201 (Dong & Yang, ICLR 2020): ``nb201_network("|nor_conv_3x3~0|+|...|")``.
- NAS-Bench-Macro (Su et al., CVPR 2021): ``macro_network("01201212")``.

``benchmarks/data/README.md`` describes both; built this way, parameter counts equal the
tables' ``params`` columns (tests/test_reference_networks.py checks it). Shared by the tests, the
NAS-Bench-Macro plug-in (tests/nasbench_macro.py) and benchmarks/proxy_ranking.py's reference stage.
"""

from __future__ import annotations

import torch
from torch import nn

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def _relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Module:
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    )


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _nb201_op(name: str, c: int) -> nn.Module:
    if name == "none":
        return _Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return _relu_conv_bn(c, c, 1, 1)
    if name == "nor_conv_3x3":
        return _relu_conv_bn(c, c, 3, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NAS-Bench-201 op {name!r}; known: {', '.join(NB201_OPS)}")


def parse_nb201(arch_str: str) -> list[list[tuple[str, int]]]:
    """'|op~0|+|op~0|op~1|+|...|' -> for nodes 1..3, their (op, input node) edges."""
    nodes = []
    for part in arch_str.strip().split("+"):
        edges = [e.split("~") for e in part.strip("|").split("|")]
        nodes.append([(op, int(src)) for op, src in edges])
    if len(nodes) != 3:
        raise ValueError(f"arch_str: expected 3 nodes, got {len(nodes)} in {arch_str!r}")
    return nodes


class NB201Cell(nn.Module):
    def __init__(self, nodes: list[list[tuple[str, int]]], c: int) -> None:
        super().__init__()
        self.sources = [[src for _, src in node] for node in nodes]
        self.edges = nn.ModuleList(nn.ModuleList(_nb201_op(op, c) for op, _ in node) for node in nodes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [x]
        for sources, ops in zip(self.sources, self.edges, strict=True):
            states.append(sum(op(states[src]) for op, src in zip(ops, sources, strict=True)))
        return states[-1]


class ResNetBasicBlock(nn.Module):
    """NAS-Bench-201's reduction block between stages."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = _relu_conv_bn(c_in, c_out, 3, 2)
        self.conv_b = _relu_conv_bn(c_out, c_out, 3, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class PooledClassifier(nn.Module):
    """``features`` -> global average pool -> ``classifier``, with timm's ``forward_features``."""

    features: nn.Module
    classifier: nn.Module

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean((2, 3)))


class NB201Network(PooledClassifier):
    def __init__(self, arch_str: str, num_classes: int = 10, c: int = 16, cells_per_stage: int = 5) -> None:
        super().__init__()
        nodes = parse_nb201(arch_str)
        layers: list[nn.Module] = [nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)]
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            if stage:
                layers.append(ResNetBasicBlock(width // 2, width))
            layers += [NB201Cell(nodes, width) for _ in range(cells_per_stage)]
        self.features = nn.Sequential(*layers, nn.BatchNorm2d(4 * c), nn.ReLU())
        self.classifier = nn.Linear(4 * c, num_classes)


def nb201_network(arch_str: str, num_classes: int = 10) -> NB201Network:
    return NB201Network(arch_str, num_classes)


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, expand: int, stride: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.block = nn.Sequential(
            nn.Conv2d(c_in, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, hidden, kernel, stride, padding=kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


MACRO_CHOICES = {"1": (3, 3), "2": (5, 6)}  # layer code -> (kernel, expansion); "0" is identity


class MacroNetwork(PooledClassifier):
    """NAS-Bench-Macro: 8 searchable layers in stages of [2, 3, 3] on a MobileNetV2-style body."""

    def __init__(self, code: str, num_classes: int = 10) -> None:
        super().__init__()
        if len(code) != 8 or set(code) - set("012"):
            raise ValueError(f"code: expected 8 digits of 0/1/2, got {code!r}")
        layers: list[nn.Module] = [nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU()]
        c, i = 32, 0
        for depth in (2, 3, 3):
            for j in range(depth):
                stride, c_out = (2, 2 * c) if j == 0 else (1, c)
                choice = code[i]
                if choice == "0":
                    if stride == 1:
                        layers.append(nn.Identity())
                    else:  # an identity whose shape changes
                        layers.append(nn.Sequential(nn.Conv2d(c, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)))
                else:
                    kernel, expand = MACRO_CHOICES[choice]
                    layers.append(InvertedResidual(c, c_out, kernel, expand, stride))
                c, i = c_out, i + 1
        layers += [nn.Conv2d(c, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(1280, num_classes)


def macro_network(code: str, num_classes: int = 10) -> MacroNetwork:
    return MacroNetwork(code, num_classes)
