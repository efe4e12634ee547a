"""Training: a few steps on real images lower the objective, fake labels shrink masks, kill + resume."""

import json

import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from conftest import require_shared
from paperlib.core.classifiers import load_classifier
from paperlib.core.masker import build_masker
from paperlib.core.objective import ObjectiveConfig, alternative_images, saliency_objective
from paperlib.experiments.train import ResumableSampler, TrainConfig, draw_fake_labels, train

SIZE = 64


@pytest.fixture(scope="module")
def real_batch():
    """Eight real ImageNet training images at 64 px with their labels (skips without data)."""
    from torchvision import transforms as T

    from paperlib.core.data import imagenet_folder

    require_shared("imagenet/train-sample")  # skips with the reason every real-data test gives
    ds = imagenet_folder(transform=T.Compose([T.Resize(SIZE), T.CenterCrop(SIZE), T.ToTensor()]))
    idx = torch.linspace(0, len(ds) - 1, 8).long().tolist()
    images, labels = zip(*(ds[i] for i in idx))
    return torch.stack(images), torch.tensor(labels)


def _cfg(tmp_path, **kw):
    base = dict(
        black_box="efficientnet_lite0",
        out=str(tmp_path / "run"),
        steps=6,
        batch_size=4,
        lr=3e-3,
        image_size=SIZE,
        widths=[16, 8, 8],
        blocks=1,
        checkpoint_every=2,
        workers=0,
        seed=0,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_sampler_resumes_mid_epoch():
    full = iter(ResumableSampler(10, seed=3))
    seq = [next(full) for _ in range(25)]
    resumed = iter(ResumableSampler(10, seed=3, start=13))
    assert [next(resumed) for _ in range(12)] == seq[13:]


def test_fake_labels_differ_from_true_ones():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (1000,))
    classes, real = draw_fake_labels(labels, 10, 0.3, g)
    assert torch.equal(classes[real], labels[real])
    assert (classes[~real] != labels[~real]).all()
    assert 0.25 < (~real).float().mean() < 0.35


def _objective(masker, bb, images, labels, alt):
    masker.eval()
    with torch.no_grad():
        out = masker(images, labels, return_aux=True)
        t = saliency_objective(bb, images, out.mask, labels, masks_low=out.mask_low, alternative=alt, config=ObjectiveConfig())
    return float(t["total"].mean()), float(out.mask_low.mean())


def test_training_steps_on_real_images_lower_the_objective(tmp_path, real_batch):
    images, labels = real_batch
    bb = load_classifier("efficientnet_lite0")
    alt = alternative_images(images, generator=torch.Generator().manual_seed(0))
    cfg = _cfg(tmp_path, steps=8, fake_prob=0.0, batch_size=8)
    torch.manual_seed(0)
    before_masker = build_masker("efficientnet_lite0", widths=[16, 8, 8], blocks=1)
    before_masker.init_embedding(bb.classifier_layer)
    before, _ = _objective(before_masker, bb, images, labels, alt)
    trained = train(cfg, dataset=TensorDataset(images, labels), progress=False)
    after, _ = _objective(trained, bb, images, labels, alt)
    assert after < before, (before, after)
    log = [json.loads(l) for l in open(tmp_path / "run" / "log.jsonl")]
    assert [r["step"] for r in log] == list(range(1, 9))
    assert {"tv", "preserve", "destroy", "area_real", "area_fake", "loss"} <= set(log[0])


def test_fake_label_steps_shrink_the_mask(tmp_path, real_batch):
    images, labels = real_batch
    cfg = _cfg(tmp_path, steps=8, fake_prob=1.0, batch_size=8, lr=1e-2)
    torch.manual_seed(0)
    start = build_masker("efficientnet_lite0", widths=[16, 8, 8], blocks=1).eval()
    with torch.no_grad():
        area_before = float(start(images, labels).mean())
    trained = train(cfg, dataset=TensorDataset(images, labels), progress=False)
    with torch.no_grad():
        area_after = float(trained(images, labels).mean())
    assert area_after < area_before - 0.02, (area_before, area_after)


class _Interrupting(Dataset):
    """Wraps a data set and raises ``exc`` (default KeyboardInterrupt, as Ctrl-C would) at the k-th item."""

    def __init__(self, base, k, exc=KeyboardInterrupt):
        self.base, self.k, self.n, self.exc = base, k, 0, exc

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        self.n += 1
        if self.n == self.k:
            raise self.exc
        return self.base[i]


class _Killed(Exception):
    """Stands for SIGKILL: not KeyboardInterrupt, so the run dies without writing a checkpoint."""


def _records(path):
    """The log's records without their wall-clock ``time``, NaN (a term of a batch without fake labels) as None."""
    return [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in json.loads(line).items() if k != "time"}
        for line in open(path)
    ]


def test_interrupt_and_resume_continue_the_same_run(tmp_path):
    torch.manual_seed(0)
    data = TensorDataset(torch.rand(12, 3, SIZE, SIZE), torch.randint(0, 1000, (12,)))
    ref = train(_cfg(tmp_path / "a"), dataset=data, progress=False)

    cfg = _cfg(tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, dataset=_Interrupting(data, k=4 * 3 + 1), progress=False)  # dies while loading step 4
    state = torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=False)
    assert state["step"] == 3
    resumed = train(cfg, dataset=data, progress=False)
    for (k, a), b in zip(ref.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), k
    log = [json.loads(l)["step"] for l in open(tmp_path / "b" / "run" / "log.jsonl")]
    assert log == list(range(1, 7))


def test_kill_between_checkpoints_loses_only_those_steps(tmp_path):
    """A run killed after step 3 (checkpoint at step 2) resumes at 2, re-runs step 3, and ends exactly as the
    uninterrupted run: the same weights, bit for bit, and the same log, step by step, with no duplicate step."""
    from paperlib.experiments.train import truncate_log

    torch.manual_seed(0)
    data = TensorDataset(torch.rand(12, 3, SIZE, SIZE), torch.randint(0, 1000, (12,)))
    ref = train(_cfg(tmp_path / "a"), dataset=data, progress=False)
    cfg = _cfg(tmp_path / "b")
    with pytest.raises(_Killed):  # dies while loading step 4, after step 3 was logged
        train(cfg, dataset=_Interrupting(data, k=4 * 3 + 1, exc=_Killed), progress=False)
    log = tmp_path / "b" / "run" / "log.jsonl"
    assert [r["step"] for r in _records(log)] == [1, 2, 3]
    assert torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=False)["step"] == 2  # step 3 is lost
    resumed = train(cfg, dataset=data, progress=False)
    assert ref.state_dict().keys() == resumed.state_dict().keys()
    for (k, a), b in zip(ref.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k  # exact resume
    ref_log = _records(tmp_path / "a" / "run" / "log.jsonl")
    assert [r["step"] for r in ref_log] == list(range(1, 7))
    assert _records(log) == ref_log  # every logged loss and term, step by step
    truncate_log(log, 4)
    assert [json.loads(l)["step"] for l in open(log)] == [1, 2, 3, 4]


def test_resume_refuses_another_configuration(tmp_path):
    data = TensorDataset(torch.rand(4, 3, SIZE, SIZE), torch.randint(0, 1000, (4,)))
    train(_cfg(tmp_path, steps=2), dataset=data, progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        train(_cfg(tmp_path, steps=4, lr=0.5), dataset=data, progress=False)


def test_export_ships_a_loadable_fp16_masker_with_its_command_and_log(tmp_path):
    from paperlib.core.storage import load_masker
    from paperlib.tools.retrain import export_run

    data = TensorDataset(torch.rand(4, 3, SIZE, SIZE), torch.randint(0, 1000, (4,)))
    cfg = _cfg(tmp_path, steps=2)
    trained = train(cfg, dataset=data, progress=False)
    args = ["--black-box", "efficientnet_lite0", "--out", cfg.out, "--steps", "2"]
    pt = export_run(tmp_path / "run", "efficientnet_lite0", args, dest=tmp_path / "ship", notes="test")
    info = json.loads((tmp_path / "ship" / "efficientnet_lite0.json").read_text())
    assert info["command"].startswith("python -m paperlib.train --black-box efficientnet_lite0")
    assert info["steps"] == 2 and info["weights"] == "fp16" and info["notes"] == "test"
    assert len((tmp_path / "ship" / "efficientnet_lite0.log.jsonl").read_text().splitlines()) == 2
    shipped = load_masker(pt, black_box="efficientnet_lite0")
    x = torch.rand(1, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.allclose(shipped(x, 5), trained(x, 5), atol=2e-2)


def test_retrain_runs_classifiers_first_with_their_recorded_commands(tmp_path, monkeypatch):
    """`make train` order and arguments, with the training functions replaced by recorders."""
    from paperlib.experiments import cifar
    from paperlib.tools import retrain

    ship = tmp_path / "ckpt"
    ship.mkdir()
    (ship / "efficientnet_lite0.json").write_text(
        json.dumps({"train_args": ["--black-box", "efficientnet_lite0", "--out", "runs/x", "--steps", "3"]})
    )
    (ship / "cifar10.json").write_text(json.dumps({"train_args": ["--black-box", "cifar10", "--steps", "2"]}))
    (ship / "cifar10_classifier.json").write_text(json.dumps({"command": "python -m paperlib.cifar train --epochs 2 --width 8"}))
    calls = []
    monkeypatch.setattr(retrain, "CHECKPOINT_DIR", ship)
    monkeypatch.setattr(cifar, "main", lambda argv: calls.append(("cifar", list(argv))))
    monkeypatch.setattr(
        "paperlib.experiments.train.train", lambda cfg: calls.append(("masker", cfg.black_box, cfg.out, cfg.steps))
    )
    times = retrain.retrain(out=tmp_path / "re")
    assert list(times) == ["cifar10_classifier", "cifar10", "efficientnet_lite0"]
    assert calls[0] == ("cifar", ["train", "--epochs", "2", "--width", "8", "--out", str(tmp_path / "re" / "cifar10_classifier")])
    assert calls[1] == ("masker", "cifar10", str(tmp_path / "re" / "cifar10"), 2)
    assert calls[2] == ("masker", "efficientnet_lite0", str(tmp_path / "re" / "efficientnet_lite0"), 3)
    with pytest.raises(SystemExit, match="No shipped model"):
        retrain.retrain(["nope"], out=tmp_path / "re")


def test_warm_start_from_a_shipped_masker_with_hole_closing():
    """--init-from a shipped masker works although it closes holes at inference (not an architecture option)."""
    from paperlib.core.storage import load_masker
    from paperlib.experiments.train import build_for_training

    shipped = load_masker("efficientnet_lite0")
    assert shipped.close_holes
    cfg = TrainConfig(init_from="efficientnet_lite0", widths=[256, 128, 64], blocks=1, output_gate=True, class_embedding="frozen")
    masker, _ = build_for_training(cfg)
    assert not masker.close_holes
    for k, v in shipped.state_dict().items():
        torch.testing.assert_close(masker.state_dict()[k], v, rtol=0, atol=0)


def test_a_run_written_before_per_sample_draws_resumes_only_with_per_batch_draws(tmp_path):
    """A last.pt without the ``draws`` field drew batch by batch: resuming asks for ``--draws per-batch``."""
    data = TensorDataset(torch.rand(4, 3, SIZE, SIZE), torch.randint(0, 1000, (4,)))
    train(_cfg(tmp_path, steps=2, draws="per-batch"), dataset=data, progress=False)
    last = tmp_path / "run" / "last.pt"
    state = torch.load(last, weights_only=False)
    del state["train_config"]["draws"]  # as written by version 0.2
    torch.save(state, last)
    with pytest.raises(ValueError, match="draws"):
        train(_cfg(tmp_path, steps=4), dataset=data, progress=False)
    train(_cfg(tmp_path, steps=4, draws="per-batch"), dataset=data, progress=False)
    assert torch.load(last, weights_only=False)["step"] == 4


def test_per_sample_draws_do_not_depend_on_the_batch():
    """A sample's fake label and alternative image come from its position alone (what makes N processes exact)."""
    from paperlib.core.objective import alternative_images
    from paperlib.experiments.train import sample_generators

    labels, pos = torch.arange(6), torch.arange(10, 16)
    whole = draw_fake_labels(labels, 1000, 0.5, sample_generators(3, pos))
    halves = [draw_fake_labels(labels[s], 1000, 0.5, sample_generators(3, pos[s])) for s in (slice(0, 2), slice(2, 6))]
    assert torch.equal(whole[0], torch.cat([h[0] for h in halves]))
    x = torch.rand(6, 3, 16, 16)
    a = alternative_images(x, generator=sample_generators(3, pos))
    b = torch.cat([alternative_images(x[s], generator=sample_generators(3, pos[s])) for s in (slice(0, 3), slice(3, 6))])
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_projected_class_embedding_starts_as_the_learned_one_and_trains_only_the_projection(tmp_path):
    """class_embedding="projected": frozen rows, a shared projection started at zero; saved and loaded."""
    from paperlib.core.errors import InputError
    from paperlib.core.storage import load_masker, save_masker
    from paperlib.experiments.train import build_for_training

    learned, black_box = build_for_training(TrainConfig(widths=[16, 8, 8], blocks=1, output_gate=True))
    projected, _ = build_for_training(TrainConfig(widths=[16, 8, 8], blocks=1, output_gate=True, class_embedding="projected"))
    assert projected.config["class_embedding"] == "projected" and "class_embedding" not in learned.config
    torch.testing.assert_close(projected.filter.embedding.weight, black_box.classifier_layer.weight)
    trained = {n for n, p in projected.named_parameters() if p.requires_grad}
    assert "filter.projection.weight" in trained and "filter.embedding.weight" not in trained
    images, classes = torch.rand(2, 3, SIZE, SIZE), torch.tensor([1, 2])
    projected.load_state_dict({**learned.state_dict(), "filter.projection.weight": projected.filter.projection.weight})
    torch.testing.assert_close(projected.eval()(images, classes), learned.eval()(images, classes))
    with torch.no_grad():
        projected.filter.projection.weight.normal_(std=0.01)
    save_masker(projected, tmp_path / "p.pt")
    back = load_masker(tmp_path / "p.pt")
    assert back.config["class_embedding"] == "projected"
    torch.testing.assert_close(back.eval()(images, classes), projected(images, classes))
    with pytest.raises(InputError, match="class_embedding"):
        build_masker("efficientnet_lite0", class_embedding="shared")


def test_max_images_trains_on_a_fixed_subset_and_refuses_more_than_there_are(tmp_path):
    """--max-images: the same seeded subset of distinct images; more than the data set holds is an InputError."""
    from paperlib.core.errors import InputError
    from paperlib.experiments.train import image_subset

    ds = list(range(50))
    a, b = image_subset(ds, 10, seed=3), image_subset(ds, 10, seed=3)
    assert [a[i] for i in range(10)] == [b[i] for i in range(10)]
    assert [a[i] for i in range(10)] != [image_subset(ds, 10, seed=4)[i] for i in range(10)]
    with pytest.raises(InputError, match="more than the 50"):
        image_subset(ds, 51, seed=0)
