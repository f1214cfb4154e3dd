import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _two_threads():
    torch.set_num_threads(2)  # the CI machine's cores; more threads only contend


@pytest.fixture
def unfused_attention():
    """timm models built inside see plain matmuls (fvcore cannot count fused attention)."""
    import timm.layers

    timm.layers.set_fused_attn(False)
    yield
    timm.layers.set_fused_attn(True)
