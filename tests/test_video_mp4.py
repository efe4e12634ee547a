"""Video as users have it: an encoded MP4 of an odd frame size in, MP4 out, through the ONNX Runtime back end."""

import av
import numpy as np
import pytest
import torch
from PIL import Image

from paperlib.tools import video
from paperlib.tools.sample_images import sample_image

pytestmark = pytest.mark.slow


def _encode_clip(path, n=6, size=(400, 300)):
    """A real H.264 (or MPEG-4) clip: a 400x300 window panning across scikit-image's cat photograph."""
    cat = sample_image("chelsea")  # (3, 300, 451)
    frames = [
        Image.fromarray((cat[:, : size[1], x : x + size[0]].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
        for x in np.linspace(0, cat.shape[2] - size[0], n).astype(int)
    ]
    video.write_video(frames, path, fps=6)
    return path


def test_mp4_in_mp4_out_any_size_with_onnxruntime(tmp_path, capsys):
    clip = _encode_clip(tmp_path / "clip.mp4")
    with av.open(str(clip)) as c:
        assert c.streams.video[0].codec_context.name in ("h264", "mpeg4")
    frames = video.read_frames(clip)
    assert len(frames) == 6 and frames[0].shape == (3, 300, 400)
    torch.set_num_threads(2)
    res = video.main(
        [
            str(clip),
            str(tmp_path / "out.mp4"),
            "--backend",
            "onnxruntime",
            "--class",
            "Egyptian cat",
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    assert res["path"].endswith("out.mp4") and res["frames"] == 6
    assert "x288 (frames 400x300 resized for the back end; masks mapped back" in res["masker_input"], res["masker_input"]
    with av.open(res["path"]) as c:
        out = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(out) == 6 and out[0].shape == (300, 400, 3)
    assert "masker_input" in capsys.readouterr().out
