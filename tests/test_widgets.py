"""paperlib.tools.widgets: the panel redraws on a change, and bad input becomes a message, not a traceback."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from paperlib.core.classes import imagenet_classes
from paperlib.core.errors import InputError
from paperlib.tools import widgets

W = pytest.importorskip("ipywidgets")


def _encode(mode, fmt="PNG", size=(40, 30)):
    arr = np.random.default_rng(0).integers(0, 255, (size[1], size[0], len(mode) if mode != "I;16" else 1), dtype=np.uint8)
    if mode == "I;16":
        im = Image.fromarray(arr[..., 0].astype(np.uint16) * 200)
    elif mode == "CMYK":
        im = Image.fromarray(arr, "CMYK")
    elif mode == "L":
        im = Image.fromarray(arr[..., 0], "L")
    else:
        im = Image.fromarray(arr, mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    "mode,fmt", [("RGB", "PNG"), ("L", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("RGB", "WEBP")]
)
def test_decode_image_any_mode(mode, fmt):
    x = widgets.decode_image(_encode(mode, fmt), f"x.{fmt.lower()}")
    assert x.shape == (3, 30, 40) and 0 <= float(x.min()) and float(x.max()) <= 1


def test_decode_rgba_transparent_is_white():
    im = Image.new("RGBA", (16, 16), (255, 0, 0, 0))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    assert float(widgets.decode_image(buf.getvalue()).min()) == 1.0


@pytest.mark.parametrize("data", [b"%PDF-1.4 not an image", b"", _encode("RGB")[:60]])
def test_decode_rejects_non_images_with_one_line(data):
    with pytest.raises(InputError) as e:
        widgets.decode_image(data, "notes.pdf")
    assert "notes.pdf" in str(e.value) and "\n" not in str(e.value)


def test_enabled_reads_headless_env(monkeypatch):
    monkeypatch.delenv(widgets.HEADLESS_ENV, raising=False)
    assert widgets.enabled(True) and not widgets.enabled(False)
    monkeypatch.setenv(widgets.HEADLESS_ENV, "1")
    assert not widgets.enabled(True)


def _panel():
    names = imagenet_classes()
    calls = []

    def draw(image, class_name, k):
        idx = names.index(class_name)  # unknown names raise UnknownClassError
        calls.append((image, idx, k))
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.imshow(np.asarray(picker.get(image))[0], vmin=0, vmax=1)
        return fig

    picker = widgets.ImagePicker({"a": np.zeros((3, 8, 8), np.float32), "b": lambda: np.ones((3, 8, 8), np.float32)})
    box = widgets.class_box(names, "tabby")
    top = widgets.topk_buttons(box)
    top.options = [("Egyptian cat 0.8", "Egyptian cat"), ("tabby 0.1", "tabby")]
    panel = widgets.Panel(draw, {"image": picker, "class_name": box, "k": widgets.choice(["x", "y"])}, extra=[top])
    return panel, picker, box, top, calls


def test_panel_redraws_on_each_change_and_shows_errors():
    panel, picker, box, top, calls = _panel()
    assert panel.redraw() and bytes(panel.image.value)[:4] == b"\x89PNG"
    first = bytes(panel.image.value)
    picker.dropdown.value = "b"
    assert calls[-1][0] == "b" and bytes(panel.image.value) != first
    top.value = "Egyptian cat"  # a top-5 click writes the class into the box, which redraws
    assert box.value == "Egyptian cat" and calls[-1][1] == imagenet_classes().index("Egyptian cat")
    n = len(calls)
    box.value = "tabbby cat"  # typo: a message with suggestions, no exception, no draw
    assert len(calls) == n and "Unknown" in panel.status.value and "tabby" in panel.status.value
    picker._on_upload({"new": ({"name": "notes.pdf", "content": memoryview(b"%PDF-1.4")},)})
    assert "notes.pdf" in panel.status.value and "not an image" in panel.status.value
    box.value = "tabby"
    picker._on_upload({"new": ({"name": "gray.png", "content": memoryview(_encode("L"))},)})
    assert picker.dropdown.value == "upload: gray.png" and calls[-1][0] == "upload: gray.png"
    assert "drawn in" in panel.status.value
