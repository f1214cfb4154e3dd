"""Zero-cost proxies: one score per initialised classifier from one batch (or from no data at all).

Each follows its paper and NASLib's reference implementation (automl/NASLib,
``naslib/predictors/utils/pruners/measures``), generalised to any ``nn.Module`` classifier that
maps (B, C, H, W) to (B, classes) logits. Every proxy runs on a deep copy, so the caller's model
and its weights are untouched. Weight-based proxies sum over the ``nn.Conv2d`` / ``nn.Linear``
weights, as the references do (attention projections in timm are ``nn.Linear``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Linear)
# NWOT's binary codes come from the units of these activations (timm's StarReLU is ReLU-based).
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.LeakyReLU, nn.ELU, nn.Mish)


class ProxyError(ValueError):
    """A proxy cannot score this model (or these inputs); the message says which and why."""


@dataclass(frozen=True)
class Proxy:
    name: str
    fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], float]
    needs_data: bool  # False: scores the model from its input shape alone (data-free)
    citation: str


def _weighted_layers(model: nn.Module, proxy: str) -> list[nn.Module]:
    layers = [m for m in model.modules() if isinstance(m, WEIGHTED)]
    if not layers:
        raise ProxyError(f"{proxy}: the model has no Conv/Linear layers to score")
    return layers


def _loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, proxy: str) -> torch.Tensor:
    logits = model(inputs)
    if logits.ndim != 2 or logits.shape[0] != len(inputs):
        raise ProxyError(f"{proxy}: expected (batch, classes) logits from the model, got shape {tuple(logits.shape)}")
    if int(targets.max()) >= logits.shape[1] or int(targets.min()) < 0:
        raise ProxyError(
            f"{proxy}: targets range over {int(targets.min())}..{int(targets.max())} but the model has "
            f"{logits.shape[1]} classes; build it with num_classes={int(targets.max()) + 1} or more"
        )
    return F.cross_entropy(logits, targets)


def grad_norm(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Sum over layers of the L2 norm of the loss gradient (Abdelfattah et al., ICLR 2021)."""
    layers = _weighted_layers(model, "grad_norm")
    _loss(model, inputs, targets, "grad_norm").backward()
    return sum(float(m.weight.grad.norm()) for m in layers if m.weight.grad is not None)


def snip(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Connection sensitivity sum |w * dL/dw| (Lee et al., "SNIP", ICLR 2019)."""
    layers = _weighted_layers(model, "snip")
    _loss(model, inputs, targets, "snip").backward()
    with torch.no_grad():
        return sum(float((m.weight * m.weight.grad).abs().sum()) for m in layers if m.weight.grad is not None)


def fisher(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Fisher information of each layer's output channels, summed (Turner et al., "BlockSwap", ICLR 2020;
    Theis et al. 2018): per channel 0.5 * mean over the batch of (sum over positions of act * grad)^2.
    """
    layers = _weighted_layers(model, "fisher")
    total = []

    def hook(module: nn.Module, _inp, out: torch.Tensor) -> None:
        if not out.requires_grad:
            return
        channel_dim = 1 if isinstance(module, (nn.Conv1d, nn.Conv2d)) else out.ndim - 1
        act = out.detach()  # the hook must not hold `out` itself: out -> hook -> out is a cycle that keeps activations

        def on_grad(grad: torch.Tensor) -> None:
            g = (act * grad).movedim(channel_dim, 1)
            g = g.sum(tuple(range(2, g.ndim))) if g.ndim > 2 else g
            total.append(float(g.pow(2).mean(0).mul(0.5).sum()))

        out.register_hook(on_grad)

    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        _loss(model, inputs, targets, "fisher").backward()
    finally:
        for h in handles:
            h.remove()
    return sum(total)


def synflow(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """log of the synaptic flow sum |w * dR/dw| with R the sum of the outputs of the network with
    |weights| on an all-ones input, in float64 (Tanaka et al., "SynFlow", NeurIPS 2020). Data-free:
    only the input shape is used. Norm layers run in eval mode, so freshly initialised BatchNorms
    are the identity, as in NASLib's BN-free copy.
    """
    layers = _weighted_layers(model, "synflow")
    _linearized_backward(model, inputs)
    with torch.no_grad():
        score = sum(float((m.weight * m.weight.grad).abs().sum()) for m in layers if m.weight.grad is not None)
    if not math.isfinite(score):
        raise ProxyError(
            "synflow: the score overflows float64 on this model (too deep for synflow's product of |weights|)"
        )
    if score <= 0:
        raise ProxyError("synflow: no signal reaches the output from an all-ones input (a norm layer zeroes it)")
    return math.log(score)


def _linearized_backward(model: nn.Module, inputs: torch.Tensor) -> None:
    """Synflow's set-up: |weights| in float64, eval-mode norms, backward of the output sum on all ones."""
    model.double().eval()
    with torch.no_grad():
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.abs_()
    model(torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=inputs.device)).sum().backward()


def dss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """log of the DSS-indicator (Zhou et al., "Training-free Transformer Architecture Search", CVPR
    2022): synaptic diversity ||W||_nuc * ||dR/dW||_nuc of every Linear inside an attention module,
    plus synaptic saliency sum |w * dR/dw| of the other Linear and 1x1-conv (MLP) weights, with
    synflow's data-free linearised network. Data-free.
    """
    in_attention = {id(m) for owner in model.modules() if "Attention" in type(owner).__name__ for m in owner.modules()}
    layers = [
        m for m in model.modules()
        if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1)
    ]  # fmt: skip
    if not layers:
        raise ProxyError("dss: the model has no Linear or 1x1-conv (attention / MLP) layers to score")
    _linearized_backward(model, inputs)
    score = 0.0
    with torch.no_grad():
        for m in layers:
            if m.weight.grad is None:
                continue
            if id(m) in in_attention:
                score += float(
                    torch.linalg.matrix_norm(m.weight, "nuc") * torch.linalg.matrix_norm(m.weight.grad, "nuc")
                )
            else:
                score += float((m.weight * m.weight.grad).abs().sum())
    if not math.isfinite(score) or score <= 0:
        raise ProxyError(f"dss: the score is {score} on this model (overflow, or no signal reaches the output)")
    return math.log(score)


def jacob_cov(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Correlation of the input Jacobians across a batch: -sum(log(l + k) + 1/(l + k)) over the
    eigenvalues l of their correlation matrix, k = 1e-5 (Mellor et al., NASWOT arXiv v1, 2020).
    """
    if len(inputs) < 2:
        raise ProxyError("jacob_cov: needs a batch of at least 2 inputs")
    x = inputs.clone().requires_grad_(True)
    y = model(x)
    y.backward(torch.ones_like(y))
    jac = x.grad.reshape(len(x), -1).double()
    jac = jac - jac.mean(1, keepdim=True)
    norms = jac.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise ProxyError("jacob_cov: an input's Jacobian is constant (the output ignores that input)")
    corr = (jac / norms) @ (jac / norms).T
    eig = torch.linalg.eigvalsh(corr).clamp_min(0.0)
    k = 1e-5
    return float(-(torch.log(eig + k) + 1.0 / (eig + k)).sum())


def nwot(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """log|K_H| of the Hamming-similarity kernel of the binary activation codes across the batch
    (Mellor et al., "Neural Architecture Search without Training", ICML 2021). A unit's code is
    whether its activation input is positive, over every ReLU-family activation module.
    """
    acts = [m for m in model.modules() if isinstance(m, ACTIVATIONS) or type(m).__name__ == "StarReLU"]
    if not acts:
        raise ProxyError("nwot: the model has no activation modules (ReLU, GELU, ...) to read binary codes from")
    if len(inputs) < 2:
        raise ProxyError("nwot: needs a batch of at least 2 inputs")
    kernel = torch.zeros(len(inputs), len(inputs), dtype=torch.float64, device=inputs.device)

    def hook(_m, inp, _out) -> None:
        codes = (inp[0].detach().reshape(len(inputs), -1) > 0).double()
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    handles = [m.register_forward_hook(hook) for m in acts]
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    if sign <= 0:
        raise ProxyError(
            "nwot: the activation codes of two inputs are identical (a singular kernel); use distinct inputs"
        )
    return float(logdet)


def zen(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Zen-score (Lin et al., "Zen-NAS", ICCV 2021): with Gaussian weights and Gaussian inputs, the log
    of the expected change of the pre-pooling features under a small input perturbation, plus the
    log BatchNorm scaling. Data-free: only the input shape is used. Features are ``forward_features``
    where the model has it (timm's convention), else the input of the last Linear layer.
    """
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, WEIGHTED):
                m.weight.normal_()
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)) and m.weight is not None:
                m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()
    model.train()
    features = _features_fn(model)
    x = torch.randn(inputs.shape, device=inputs.device)
    mixed = x + 1e-2 * torch.randn(inputs.shape, device=inputs.device)
    with torch.no_grad():
        delta = (features(x) - features(mixed)).abs()
        score = delta.reshape(len(x), -1).sum(1).mean()
    bn_log_scale = sum(
        0.5 * math.log(float(m.running_var.mean())) for m in model.modules() if isinstance(m, nn.BatchNorm2d)
    )
    if not (score > 0 and math.isfinite(float(score))):
        raise ProxyError("zen: the features do not respond to the input (or overflow) on this model")
    return math.log(float(score)) + bn_log_scale


def _features_fn(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    if callable(getattr(model, "forward_features", None)):
        return model.forward_features
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        return model
    captured: list[torch.Tensor] = []
    linears[-1].register_forward_hook(lambda _m, inp, _out: captured.append(inp[0]))

    def features(x: torch.Tensor) -> torch.Tensor:
        captured.clear()
        model(x)
        return captured[-1]

    return features


def zico(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Sum over layers of log(sum over weights of mean|g| / std(g)), the gradients' inverse coefficient
    of variation across two halves of the batch (Li et al., "ZiCo", ICLR 2023).
    """
    layers = _weighted_layers(model, "zico")
    if len(inputs) < 4:
        raise ProxyError("zico: needs a batch of at least 4 inputs (two halves)")
    half = len(inputs) // 2
    grads: list[list[torch.Tensor]] = [[] for _ in layers]
    for part in (slice(0, half), slice(half, 2 * half)):
        model.zero_grad()
        _loss(model, inputs[part], targets[part], "zico").backward()
        for store, m in zip(grads, layers, strict=True):
            if m.weight.grad is not None:
                store.append(m.weight.grad.detach().reshape(-1).clone())
    score = 0.0
    for store in grads:
        if len(store) < 2:
            continue
        g = torch.stack(store).double()
        std, mean_abs = g.std(0, unbiased=False), g.abs().mean(0)
        nonzero = std > 0
        total = float((mean_abs[nonzero] / std[nonzero]).sum())
        if total > 0:
            score += math.log(total)
    return score


def params(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Trainable parameters: the baseline every proxy must beat (White et al., 2022)."""
    return float(sum(p.numel() for p in model.parameters() if p.requires_grad))


def flops(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Multiply-accumulates of one image at the input's resolution, from the layer IR of ``trace``."""
    from search_spaces import trace

    return float(sum(layer.macs for layer in trace(model, tuple(inputs.shape[1:]))))


PROXIES: dict[str, Proxy] = {
    p.name: p
    for p in (
        Proxy("synflow", synflow, False, "Tanaka et al., Pruning neural networks without any data, NeurIPS 2020"),
        Proxy("snip", snip, True, "Lee et al., SNIP: single-shot network pruning, ICLR 2019"),
        Proxy("grad_norm", grad_norm, True, "Abdelfattah et al., Zero-cost proxies for lightweight NAS, ICLR 2021"),
        Proxy("fisher", fisher, True, "Turner et al., BlockSwap, ICLR 2020"),
        Proxy("jacob_cov", jacob_cov, True, "Mellor et al., Neural architecture search without training, arXiv v1"),
        Proxy("nwot", nwot, True, "Mellor et al., Neural architecture search without training, ICML 2021"),
        Proxy("zen", zen, False, "Lin et al., Zen-NAS, ICCV 2021"),
        Proxy("dss", dss, False, "Zhou et al., Training-free transformer architecture search (TF-TAS), CVPR 2022"),
        Proxy("zico", zico, True, "Li et al., ZiCo: zero-shot NAS via inverse coefficient of variation, ICLR 2023"),
        Proxy("params", params, False, "parameter count (baseline)"),
        Proxy("flops", flops, False, "multiply-accumulates (baseline)"),
    )
}
