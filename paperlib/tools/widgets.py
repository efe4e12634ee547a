"""One small widget helper for the notebooks: a figure that redraws when its controls change.

    from paperlib.tools import widgets
    interactive = widgets.enabled(interactive)          # False under papermill/nbval (PAPERLIB_HEADLESS=1)
    if interactive:
        cls = widgets.class_box(names, "Egyptian cat")  # type a class name (suggestions on a typo)
        panel = widgets.Panel(draw, {"class_name": cls, "mode": widgets.choice(["ssr", "sdr", "both"])})
        panel.show()                                    # draws once, then on every change

``draw(**values)`` returns a matplotlib figure; the panel shows it as a PNG in an image widget and
writes status lines (how long the draw took) and errors (an unknown class name, an upload that is
not an image) into the panel instead of raising a traceback. :class:`ImagePicker` is a drop-down of
named images plus an upload button (any PIL-readable file: grayscale, CMYK, RGBA, 16-bit work).

Headless runs set ``PAPERLIB_HEADLESS=1`` (``make reproduce`` / ``make test`` do, and papermill
passes ``-p interactive False``); :func:`enabled` then returns False and the notebooks draw their
static figures only.
"""

from __future__ import annotations

import html
import io
import os
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..core.errors import InputError, PaperlibError

__all__ = ["HEADLESS_ENV", "enabled", "decode_image", "class_box", "choice", "topk_buttons", "ImagePicker", "Panel"]

HEADLESS_ENV = "PAPERLIB_HEADLESS"
#: errors shown as a message in the panel rather than raised
SHOWN_ERRORS = (PaperlibError, ValueError, KeyError, OSError)


def enabled(interactive: bool = True) -> bool:
    """Whether to build widgets: ``interactive`` unless ``$PAPERLIB_HEADLESS`` is 1/true/yes."""
    return bool(interactive) and os.environ.get(HEADLESS_ENV, "").strip().lower() not in ("1", "true", "yes")


def decode_image(data: bytes, name: str = "upload") -> torch.Tensor:
    """Decode image bytes of any PIL mode into a float RGB tensor ``(3, H, W)`` in [0, 1].

    Transparent images are composited on white; CMYK, palette, grayscale and 16-bit images are
    converted. Raises :class:`paperlib.errors.InputError` (one line) for anything that is not an image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(bytes(data)))
        im.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(
            f"{name!s} is not an image that can be read ({type(exc).__name__}); upload a JPEG, PNG, WebP, TIFF, BMP or GIF."
        ) from None
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        a = (a - a.min()) / max(float(a.max() - a.min()), 1e-12)
        im = Image.fromarray((a * 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    im = im.convert("RGB")
    if min(im.size) < 8:
        raise InputError(f"{name!s} is too small ({im.size[0]} x {im.size[1]} pixels).")
    return torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)


def class_box(names, value: str = "", description: str = "class"):
    """A text box with completion over the class names (typing any name or synonym works)."""
    import ipywidgets as W

    return W.Combobox(
        value=value,
        options=list(names.names),
        placeholder="type a class name",
        ensure_option=False,
        description=description,
        continuous_update=False,
    )


def choice(options: Sequence[Any], value: Any = None, description: str = ""):
    """Toggle buttons for a few options (e.g. SSR / SDR / both, or the black box)."""
    import ipywidgets as W

    kw = {} if value is None else {"value": value}
    return W.ToggleButtons(options=list(options), description=description, style={"button_width": "auto"}, **kw)


def topk_buttons(box, description: str = "top-5"):
    """Buttons for the black box's top predictions; clicking one writes its class name into ``box``.

    Fill them with ``buttons.options = [(label, class_name), ...]``.
    """
    import ipywidgets as W

    buttons = W.ToggleButtons(options=[], value=None, description=description, style={"button_width": "auto"})

    def pick(change):
        if change["new"]:
            box.value = change["new"]

    buttons.observe(pick, "value")
    return buttons


class ImagePicker:
    """A drop-down of named images plus an upload button; ``.value`` is the selected image's name."""

    def __init__(
        self,
        images: Mapping[str, Callable[[], torch.Tensor] | torch.Tensor],
        value: str | None = None,
        upload: bool = True,
        description: str = "image",
    ):
        import ipywidgets as W

        self._images = dict(images)
        self.dropdown = W.Dropdown(options=list(self._images), value=value or next(iter(self._images)), description=description)
        self.upload = W.FileUpload(accept="", multiple=False, description="upload") if upload else None
        self.panel: Panel | None = None
        if self.upload is not None:
            self.upload.observe(self._on_upload, "value")

    def get(self, name: str) -> torch.Tensor:
        item = self._images[name]
        return item() if callable(item) else item

    def add(self, name: str, image: torch.Tensor) -> None:
        """Add an image (3, H, W) and select it."""
        self._images[name] = image
        self.dropdown.options = list(self._images)
        self.dropdown.value = name

    def _on_upload(self, change) -> None:
        files = change["new"]
        if not files:
            return
        f = files[0] if isinstance(files, (tuple, list)) else next(iter(files.values()))
        name = f.get("name", "upload")
        try:
            image = decode_image(f["content"], name)
        except InputError as exc:
            if self.panel is not None:
                self.panel.message(str(exc), error=True)
                return
            raise
        self.add(f"upload: {name}", image)

    @property
    def widgets(self) -> list:
        return [self.dropdown] + ([self.upload] if self.upload is not None else [])


class Panel:
    """Controls, a status line and a figure that ``draw(**values)`` redraws on every change.

    Args:
        draw: ``draw(**{name: control.value})`` -> matplotlib figure (closed after rendering).
        controls: name -> widget (anything with a ``value`` trait), or an :class:`ImagePicker`.
        rows: Layout: lists of widgets, one list per row; default: one row per two controls.
        on_change: ``on_change(name, panel)`` runs before the redraw (e.g. refresh the top-5 buttons);
            changes it makes to other controls do not trigger extra redraws.
        extra: Widgets shown below the controls (e.g. top-5 buttons).
    """

    def __init__(
        self,
        draw: Callable[..., Any],
        controls: Mapping[str, Any],
        rows: Sequence[Sequence[Any]] | None = None,
        on_change: Callable[[str, "Panel"], None] | None = None,
        extra: Sequence[Any] = (),
    ):
        import ipywidgets as W

        self.draw_fn, self.controls, self.on_change = draw, dict(controls), on_change
        self.status = W.HTML(value="")
        self.image = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.seconds: list[float] = []
        self._hold = 0
        flat = []
        for name, c in self.controls.items():
            if isinstance(c, ImagePicker):
                c.panel = self
                c.dropdown.observe(lambda ch, n=name: self._changed(n), "value")
                flat.extend(c.widgets)
            else:
                c.observe(lambda ch, n=name: self._changed(n), "value")
                flat.append(c)
        if rows is None:
            rows = [flat[i : i + 2] for i in range(0, len(flat), 2)]
        self.widget = W.VBox([W.HBox(list(r)) for r in rows] + list(extra) + [self.status, self.image])
        self.widget.add_class("paperlib-panel")

    def values(self) -> dict[str, Any]:
        return {n: (c.dropdown.value if isinstance(c, ImagePicker) else c.value) for n, c in self.controls.items()}

    def message(self, text: str, error: bool = False) -> None:
        color = "#b00020" if error else "#555"
        self.status.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    def _changed(self, name: str) -> None:
        if self._hold:
            return
        if self.on_change is not None:
            self._hold += 1
            try:
                self.on_change(name, self)
            except SHOWN_ERRORS as exc:
                self.message(f"{type(exc).__name__}: {exc}", error=True)
                return
            finally:
                self._hold -= 1
        self.redraw()

    def redraw(self) -> bool:
        """Draw with the current values; returns False (and shows the error) when ``draw`` raised."""
        import matplotlib.pyplot as plt

        self.message("drawing ...")
        t0 = time.perf_counter()
        try:
            fig = self.draw_fn(**self.values())
        except SHOWN_ERRORS as exc:
            self.message(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", error=True)
            return False
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
        plt.close(fig)
        self.image.value = buf.getvalue()
        dt = time.perf_counter() - t0
        self.seconds.append(dt)
        self.message(f"drawn in {dt:.2f} s")
        return True

    def show(self) -> "Panel":
        """Display the panel in the notebook and draw once."""
        from IPython.display import display

        display(self.widget)
        self.redraw()
        return self
