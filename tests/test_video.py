"""Tests of paperlib.video on tiny synthetic clips (no camera, no video codec needed)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from paperlib.core.errors import DataNotFoundError, InputError
from paperlib.tools import video

pytestmark = pytest.mark.usefixtures("one_thread")


def _image(h: int = 48, w: int = 80) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, h, w, generator=g)


def test_pan_zoom_frames_shape_range_and_motion():
    clip = video.pan_zoom_frames(_image(), n_frames=6, out_size=32, zoom=(1.0, 1.5))
    assert clip.shape == (6, 3, 32, 32)
    assert float(clip.min()) >= 0.0 and float(clip.max()) <= 1.0
    assert not torch.allclose(clip[0], clip[-1])  # it moves
    assert video.pan_zoom_frames(_image(), n_frames=1, out_size=16).shape == (1, 3, 16, 16)
    with pytest.raises(InputError):
        video.pan_zoom_frames(_image(), zoom=(0.5, 1.0))


def test_annotate_returns_frame_sized_image():
    frame = _image(40, 60)
    mask = torch.zeros(1, 10, 15)
    mask[:, 3:7, 5:10] = 1.0
    im = video.annotate(frame, mask, "tabby cat", 123.4)
    assert isinstance(im, Image.Image) and im.size == (60, 40) and im.mode == "RGB"
    plain = video.annotate(frame, torch.zeros(40, 60), "", None)  # empty mask, no text: the frame itself
    expected = np.round(frame.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    assert np.abs(np.asarray(plain).astype(int) - expected.astype(int)).max() <= 1


def test_explain_frames_batches_and_keeps_order(tiny_masker):
    frames = [torch.full((3, 32, 32), i / 10) for i in range(5)] + [torch.rand(3, 40, 48)]
    stats: dict = {}
    out = list(video.explain_frames(tiny_masker, frames, 3, batch_size=2, progress=False, stats=stats))
    assert len(out) == 6 and stats["frames"] == 6 and stats["seconds"] > 0
    for (f, m), orig in zip(out, frames):
        assert f is orig and m.shape == (1, *orig.shape[-2:])
        assert float(m.min()) >= 0 and float(m.max()) <= 1
    resized = list(video.explain_frames(tiny_masker, frames[:2], [1, 2], size=64, progress=False))
    assert resized[0][1].shape == (1, 32, 32)


def test_run_video_writes_gif(tmp_path, tiny_masker):
    clip = video.pan_zoom_frames(_image(), n_frames=5, out_size=64)
    res = video.run_video(tiny_masker, clip, tmp_path / "clip.gif", fps=10, batch_size=4, progress=False)
    assert res["frames"] == 5 and res["masks_per_s"] > 0 and res["class"]
    assert 0 <= res["class_index"] < 1000 and res["top1_probability"] is not None
    with Image.open(res["path"]) as im:
        assert im.n_frames == 5 and im.size == (64, 64)
        assert im.info["duration"] == 100


def test_run_video_with_an_optimised_backend(tmp_path, tiny_masker):
    from paperlib.tools.realtime import fast_masker

    clip = video.pan_zoom_frames(_image(), n_frames=3, out_size=64)
    fast = fast_masker(tiny_masker, "fused_bn+channels_last")
    res = video.run_video(fast, clip, tmp_path / "fast.gif", "tabby cat", fps=10, batch_size=2, progress=False)
    assert res["frames"] == 3 and res["class_index"] == 281 and res["masks_per_s"] > 0
    got = [m for _, m in video.explain_frames(fast, clip, 281, batch_size=2, progress=False)]
    ref = [m for _, m in video.explain_frames(tiny_masker, clip, 281, batch_size=2, progress=False)]
    assert all(torch.allclose(a, b, atol=1e-3) for a, b in zip(got, ref))


def test_write_video_writes_an_mp4_with_pyav(tmp_path):
    """PyAV is installed here: the MP4 is written where asked (no GIF, no warning) and reads back frame by frame."""
    import warnings

    av = pytest.importorskip("av")
    images = [Image.new("RGB", (16, 16), (i * 40, 0, 0)) for i in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to GIF would warn
        path = video.write_video(images, tmp_path / "clip.mp4", fps=5)
    assert path == tmp_path / "clip.mp4" and path.is_file()
    assert not (tmp_path / "clip.gif").exists() and not list(tmp_path.glob(".*tmp*"))
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.name in ("h264", "mpeg4")
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == 3 and decoded[0].shape == (16, 16, 3)
    frames = video.read_frames(path)
    assert len(frames) == 3 and frames[0].shape == (3, 16, 16)
    # lossy, but the red ramp 0, 40, 80 survives the codec to within a few levels
    assert [round(float(f[0].mean()) * 255 / 40) for f in frames] == [0, 1, 2]


def test_write_video_without_pyav_falls_back_to_gif(tmp_path, monkeypatch):
    """With PyAV missing (import av fails), a GIF is written beside the path, with a warning that says why."""
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    with pytest.raises(ImportError):
        import av  # noqa: F401
    images = [Image.new("RGB", (16, 16), (i * 40, 0, 0)) for i in range(3)]
    with pytest.warns(
        UserWarning, match=r"Cannot write clip\.mp4: .*PyAV is not installed \(pip install av\)\. Writing a GIF instead"
    ):
        path = video.write_video(images, tmp_path / "clip.mp4", fps=5)
    assert path == tmp_path / "clip.gif" and not (tmp_path / "clip.mp4").exists()
    with Image.open(path) as im:
        assert im.n_frames == 3 and im.size == (16, 16)
        assert im.info["duration"] == 200  # 5 fps
    # reading a video file without PyAV is a clear error that says what to install
    (tmp_path / "other.mp4").write_bytes(b"not a video")
    with pytest.raises(InputError, match=r"PyAV is not installed.*Install PyAV \(pip install av\)"):
        video.read_frames(tmp_path / "other.mp4")


def test_read_frames_folder_and_gif(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (2, 0, 1):  # written out of order: read back in name order
        Image.new("RGB", (20, 12), (i * 100, 0, 0)).save(folder / f"f{i:03d}.png")
    (folder / "notes.txt").write_text("not a frame")
    frames = video.read_frames(folder)
    assert len(frames) == 3 and frames[0].shape == (3, 12, 20)
    assert [round(float(f[0, 0, 0]) * 255) for f in frames] == [0, 100, 200]
    gif = video.write_gif([Image.new("RGB", (8, 8), (0, i * 80, 0)) for i in range(4)], tmp_path / "a.gif", fps=12)
    assert len(video.read_frames(gif)) == 4
    with pytest.raises(DataNotFoundError):
        video.read_frames(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError):
        video.read_frames(tmp_path / "empty")


def test_per_frame_top1_from_one_pass(tmp_path, tiny_masker):
    from paperlib.core.classifiers import load_classifier
    from paperlib.core.errors import InputError
    from paperlib.core.explainer import Explainer

    bb = load_classifier("efficientnet_lite0")
    frames = [torch.rand(3, 48, 64, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    ex = Explainer(tiny_masker, bb)
    out = list(video.explain_frames_top1(ex, frames, batch_size=2, progress=False))
    for (frame, mask, c, p), f in zip(out, frames):
        x = torch.nn.functional.interpolate(f[None], size=(224, 224), mode="bilinear", align_corners=False)
        probs = bb(f[None]).softmax(-1)[0]
        assert frame is f and mask.shape == (1, 48, 64) and c == int(probs.argmax()) and abs(p - float(probs[c])) < 1e-4
        want = torch.nn.functional.interpolate(tiny_masker(x, [c]), size=(48, 64), mode="bilinear", align_corners=False)
        assert torch.allclose(mask, want[0], atol=1e-5)
    res = video.run_video(tiny_masker, frames, tmp_path / "clip.gif", per_frame=True, progress=False)
    assert res["one_pass"] and len(res["classes_per_frame"]) == 3 and res["frames"] == 3
    with pytest.raises(InputError, match="no class_name"):
        video.run_video(tiny_masker, frames, tmp_path / "c.gif", "tabby cat", per_frame=True, progress=False)
