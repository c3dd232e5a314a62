"""Images without torchvision: numpy mosaics (what the trackers' snapshots and the figures both
tile), figures saved with matplotlib and GIFs with Pillow. matplotlib and Pillow load when a figure or
GIF is made, so training, which tiles its snapshots here, never imports them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from disentangle.base.files import atomic_path


def mosaic(images: np.ndarray, rows: int, cols: int, pad: int = 2, fill: float = 1.0) -> np.ndarray:
    """[rows * cols, C, H, W] in [0, 1] -> one [H', W'] (grey) or [H', W', 3] image."""
    n, c, h, w = images.shape
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), fill, dtype=np.float32)
    for i in range(min(n, rows * cols)):
        r, k = divmod(i, cols)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + k * (w + pad): pad + k * (w + pad) + w] = images[i].transpose(1, 2, 0)
    return canvas[..., 0] if c == 1 else canvas


def new_figure(*grid, figsize, **options):
    """(figure, axes) drawn off-screen: a :class:`matplotlib.figure.Figure` of its own, never pyplot's,
    so importing or drawing here neither picks nor changes the caller's backend (a notebook's stays)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **options)


def _literal_texts(fig) -> None:
    """Titles, axis labels, legends and annotations drawn as the text they hold, never as mathtext: they
    show names read from shared runs (a model called ``$\\undefined{$`` must not stop the figure). Tick
    labels keep their mathtext (a log axis's powers of ten)."""
    texts = [*fig.texts, *(legend for legend in fig.legends)]
    if getattr(fig, "_suptitle", None) is not None:
        texts.append(fig._suptitle)
    for ax in fig.axes:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        if ax.get_legend() is not None:
            texts += [*ax.get_legend().get_texts(), ax.get_legend().get_title()]
    for legend in fig.legends:
        texts += [*legend.get_texts(), legend.get_title()]
    for text in texts:
        if hasattr(text, "set_parse_math"):
            text.set_parse_math(False)


def lay_out(fig) -> None:
    """``fig.tight_layout()`` once its names are literal text (:func:`_literal_texts`): laying out measures
    every text, so a name that is broken mathtext must be literal before it."""
    _literal_texts(fig)
    fig.tight_layout()


def save_figure(fig, path: str | Path, dpi: int = 150) -> Path:
    """Save a matplotlib figure to ``path`` (folders made, written atomically)."""
    path = Path(path)
    _literal_texts(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    return path


def save_gif(frames: list[np.ndarray], path: str | Path, duration_ms: int = 80, scale: int = 2,
             column_labels: list[str] | None = None, caption: str | None = None) -> Path:
    """Frames of [H, W] (grey) or [H, W, 3] in [0, 1] to an animated, looping GIF; ``column_labels``
    (one per equal-width column) and a ``caption`` are drawn on a white strip above every frame."""
    from PIL import Image, ImageDraw

    path = Path(path)
    pictures = []
    for f in frames:
        levels = (np.round(np.clip(f, 0, 1) * 31) * (255 / 31)).astype(np.uint8)  # 32 levels per channel: GIFs a third the size
        picture = Image.fromarray(levels)  # "L" for grey frames: a third of RGB's size
        picture = picture.resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST)
        if column_labels or caption:
            strip = 12 * (bool(column_labels) + bool(caption))
            framed = Image.new(picture.mode, (picture.width, picture.height + strip), "white")
            framed.paste(picture, (0, strip))
            draw = ImageDraw.Draw(framed)
            if caption:
                draw.text((2, 0), caption, fill="black")
            for i, label in enumerate(column_labels or []):
                draw.text((2 + i * picture.width // len(column_labels), strip - 12), label, fill="black")
            picture = framed
        pictures.append(picture)
    with atomic_path(path) as tmp:
        pictures[0].save(tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=duration_ms, loop=0, optimize=True)
    return path


def show_mosaic(image: np.ndarray, title: str, figsize, row_labels=None, col_labels=None, cell: int | None = None, pad: int = 2):
    """A figure holding one mosaic, with optional row and column labels."""
    fig, ax = new_figure(figsize=figsize)
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=11)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xticks([] if not col_labels else [pad + cell / 2 + i * (cell + pad) for i in range(len(col_labels))])
    ax.set_yticks([] if not row_labels else [pad + cell / 2 + i * (cell + pad) for i in range(len(row_labels))])
    if col_labels:
        ax.set_xticklabels(col_labels, fontsize=8)
    if row_labels:
        ax.set_yticklabels(row_labels, fontsize=8)
    ax.tick_params(length=0)
    return fig
