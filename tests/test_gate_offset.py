"""The inference-time gate offset (the authors' model_confidence) and the stored box threshold."""

import pytest
import torch

from paperlib.core.errors import InputError
from paperlib.core.masker import build_masker
from paperlib.core.storage import load_masker, save_masker


@pytest.fixture
def gated():
    torch.manual_seed(0)
    return build_masker("efficientnet_lite0", widths=[16, 8, 8], blocks=1, output_gate=True).eval()


def test_offset_moves_the_gate_by_exactly_k(gated):
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    base = gated(x, [1, 2], return_aux=True)
    gated.gate_offset = 3.0
    shifted = gated(x, [1, 2], return_aux=True)
    logit = lambda g: torch.log(g) - torch.log1p(-g)  # noqa: E731
    assert torch.allclose(logit(shifted.gate), logit(base.gate) - 3.0, atol=1e-3)
    assert shifted.mask.mean() < base.mask.mean()  # a surer gate keeps less
    gated.gate_offset = 0.0
    assert torch.equal(gated(x, [1, 2]), base.mask) and "gate_offset" not in gated.config


def test_offset_and_threshold_travel_with_the_file(gated, tmp_path):
    gated.gate_offset, gated.threshold = 2.5, 0.4
    back = load_masker(save_masker(gated, tmp_path / "m.pt"))
    assert (back.gate_offset, back.threshold) == (2.5, 0.4)
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(back(x, [7]), gated(x, [7]))
    with pytest.raises(InputError, match="threshold"):
        gated.threshold = 1.5
