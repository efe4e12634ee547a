"""The masking model: shapes, ranges, class handling, frozen encoder, checkpoints."""

import pytest
import torch

from paperlib import CheckpointMismatchError, InputError, UnknownClassError, build_masker, load_masker, save_masker
from paperlib.core.classifiers import load_classifier


@pytest.fixture(scope="module")
def masker():
    torch.manual_seed(0)
    return build_masker("efficientnet_lite0", widths=[32, 16, 8], blocks=1).eval()


def test_shapes_ranges_any_size(masker):
    for h, w in ((64, 64), (70, 95)):
        with torch.no_grad():
            out = masker(torch.rand(2, 3, h, w), torch.tensor([1, 2]), return_aux=True)
        assert out.mask.shape == (2, 1, h, w)
        assert all(abs(s - t / 4) <= 1 for s, t in zip(out.mask_low.shape[-2:], (h, w)))  # stride 4
        assert 0.0 <= float(out.mask.min()) and float(out.mask.max()) <= 1.0
        assert out.gate.ndim == 3


def test_classes_by_name_scalar_and_tensor(masker):
    x = torch.rand(2, 3, 64, 64)
    by_name = masker(x, ["Egyptian cat", "beagle"])
    by_index = masker(x, torch.tensor([285, 162]))
    assert torch.allclose(by_name, by_index)
    assert masker(x, 285).shape == (2, 1, 64, 64)


def test_bad_classes_and_images(masker):
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(UnknownClassError, match="Egyptian cat"):
        masker(x, "egyptain cat")
    with pytest.raises(InputError):
        masker(x, torch.tensor([1000]))
    with pytest.raises(InputError):
        masker(x, torch.tensor([1, 2]))
    with pytest.raises(InputError, match="batch dimension"):
        masker(torch.rand(3, 64, 64), 1)
    with pytest.raises(InputError):
        masker(x * 255, 1)


def test_gradients_reach_only_trainable_parameters():
    m = build_masker("efficientnet_lite0", widths=[32, 16, 8], blocks=1).train()
    out = m(torch.rand(2, 3, 64, 64), torch.tensor([3, 4]))
    out.mean().backward()
    enc = [p for n, p in m.named_parameters() if n.startswith("encoder.")]
    dec = [p for n, p in m.named_parameters() if not n.startswith("encoder.")]
    assert all(p.grad is None and not p.requires_grad for p in enc)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in dec)
    assert not m.encoder.training  # frozen batch-norm statistics


def test_embedding_init_from_classifier_gives_cam_gate():
    m = build_masker("efficientnet_lite0", widths=[32, 16, 8], blocks=1).eval()
    bb = load_classifier("efficientnet_lite0")
    m.init_embedding(bb.classifier_layer)
    assert torch.equal(m.filter.embedding.weight, bb.classifier_layer.weight)


def test_cifar_masker_trains_its_encoder():
    m = build_masker("cifar10").train()
    out = m(torch.rand(2, 3, 32, 32), torch.tensor([0, 9]), return_aux=True)
    assert out.mask.shape == (2, 1, 32, 32) and out.mask_low.shape == (2, 1, 16, 16)
    out.mask.mean().backward()
    assert any(p.grad is not None for p in m.encoder.parameters())


def test_checkpoint_round_trip_and_black_box_mismatch(tmp_path, masker):
    path = save_masker(masker, tmp_path / "m.pt", half=True)
    loaded = load_masker(path)
    x = torch.rand(1, 3, 64, 64)
    assert torch.allclose(loaded(x, 7), masker(x, 7), atol=2e-2)
    assert loaded.config == masker.config
    with pytest.raises(CheckpointMismatchError, match="efficientnet_lite1"):
        load_masker(path, black_box="efficientnet_lite1")
    torch.save({"something": "else"}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointMismatchError):
        load_masker(tmp_path / "bad.pt")


def test_unknown_shipped_masker_lists_what_exists():
    from paperlib import UnknownModelError

    with pytest.raises(UnknownModelError, match="Shipped"):
        load_masker("no_such_black_box")


def test_paper_exact_feature_filter_saves_and_loads(tmp_path):
    """filter_affine=False is the paper's filter sigmoid(X . C_s): no bias, scale or offset, recorded in the config."""
    torch.manual_seed(0)
    m = build_masker("efficientnet_lite0", widths=[16, 8, 8], blocks=1, filter_affine=False).eval()
    names = {n for n, _ in m.filter.named_parameters()}
    assert names == {"embedding.weight"} and m.config["filter_affine"] is False
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        out = m(x, 3, return_aux=True)
        emb = m.filter.embedding.weight[3]
        feats = m.encoder(x)[-1]
        expected = torch.sigmoid(torch.einsum("nchw,c->nhw", feats, emb))
    assert torch.allclose(out.gate, expected, atol=1e-6)
    loaded = load_masker(save_masker(m, tmp_path / "paper.pt"))
    with torch.no_grad():
        assert torch.equal(loaded(x, 3), m(x, 3))
    # the default keeps the shipped maskers' parameters (and their configs carry no new key)
    assert "filter.bias" in build_masker("efficientnet_lite0", widths=[16, 8, 8], blocks=1).state_dict()
    assert "filter_affine" not in build_masker("efficientnet_lite0", widths=[16, 8, 8], blocks=1).config


def test_close_mask_fills_one_pixel_holes_and_keeps_large_shapes():
    from paperlib.core.masker import close_mask

    m = torch.zeros(1, 1, 12, 12)
    m[..., 2:10, 2:10] = 0.9
    m[..., 5, 5] = 0.0  # a one-pixel hole
    closed = close_mask(m)
    assert closed[0, 0, 5, 5] == pytest.approx(0.9)  # filled
    assert torch.equal(closed[..., 2:10, 2:10], torch.full((1, 1, 8, 8), 0.9))  # the square stays
    assert closed[0, 0, 0, 0] == 0 and closed[0, 0, 11, 11] == 0  # the background stays
    assert torch.equal(close_mask(closed), closed)  # idempotent
    assert (closed >= m).all()  # closing never lowers a value


def test_close_holes_is_recorded_and_survives_save_and_load(tmp_path):
    torch.manual_seed(0)
    m = build_masker("efficientnet_lite0", widths=[16, 8, 8], blocks=1, output_gate=True).eval()
    assert "close_holes" not in m.config
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        plain = m(x, 5, return_aux=True).mask_low
        m.close_holes = True
        closed = m(x, 5, return_aux=True).mask_low
    assert m.config["close_holes"] is True and (closed >= plain - 1e-6).all()
    loaded = load_masker(save_masker(m, tmp_path / "closed.pt"))
    assert loaded.close_holes
    with torch.no_grad():
        assert torch.equal(loaded(x, 5), m(x, 5))
    m.close_holes = False
    assert "close_holes" not in m.config
