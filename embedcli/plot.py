"""Pictures: a 2-D PCA map of chosen words, and the training loss curve. Needs matplotlib (the `plot` extra)."""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import UsageError
from .store import atomic_write_bytes
from .vectors import Vectors

log = logging.getLogger(__name__)
_IMAGE_KINDS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".jpg": "jpg", ".jpeg": "jpg"}

INSTALL_HINT = "plotting needs matplotlib: pip install matplotlib (or, in an embedcli checkout, pip install -e '.[plot]')"


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no window
        import matplotlib.pyplot as pyplot
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return pyplot


def plot_words(vectors: Vectors, words: Sequence[str], out: str | Path, *, neighbors: int = 0) -> list[str]:
    """A PCA scatter of ``words`` (and each one's ``neighbors`` nearest words) with labels; returns the words drawn."""
    chosen = list(dict.fromkeys(words))
    rows = [vectors.index(word) for word in chosen]
    for word in list(chosen):
        for neighbor, _ in vectors.most_similar(word, topn=neighbors) if neighbors else []:
            if neighbor not in chosen:
                chosen.append(neighbor)
                rows.append(vectors.index(neighbor))
    if len(rows) < 2:
        if neighbors:
            raise UsageError("the model holds no other word to place beside these; give at least two words it knows")
        raise UsageError("give at least two words to plot (or --neighbors)")
    matrix = vectors.unit_rows(rows)
    centered = matrix - matrix.mean(0)
    _, _, basis = np.linalg.svd(centered, full_matrices=False)
    basis = basis[:2]  # fewer than 2 where the vectors have 1 dimension: the map is then a line
    points = np.zeros((len(rows), 2))
    points[:, : len(basis)] = centered @ basis.T
    explained = _explained(centered, basis)

    with warnings.catch_warnings(record=True) as caught:  # matplotlib warns once per glyph its font lacks
        warnings.simplefilter("always")
        _draw(chosen, points, explained, set(words), out)
    missing = {str(warning.message) for warning in caught if "missing from font" in str(warning.message)}
    if missing:
        log.warning("the plot's font lacks %d of the labels' characters (CJK, emoji, ...); they show as boxes", len(missing))
    for warning in caught:
        if str(warning.message) not in missing:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return chosen


def _draw(chosen: list[str], points: np.ndarray, explained: np.ndarray, asked: set[str], out: str | Path) -> None:
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(figsize=(9, 7), dpi=110)
    colors = ["tab:blue" if word in asked else "tab:gray" for word in chosen]
    axes.scatter(points[:, 0], points[:, 1], c=colors, s=28, zorder=2)
    labels = [
        axes.annotate(word, (x, y), xytext=(5, 4), textcoords="offset points", fontsize=10,  # a word, not $math$
                      fontweight="bold" if word in asked else "normal", zorder=3, parse_math=False)
        for word, (x, y) in zip(chosen, points)
    ]
    axes.margins(0.15)
    _spread_labels(figure, labels)
    axes.set_xlabel(f"first principal component ({explained[0]:.0%} of variance)")
    axes.set_ylabel(f"second principal component ({explained[1]:.0%} of variance)")
    axes.set_title(f"{len(chosen)} words, PCA of unit vectors")
    axes.grid(alpha=0.3)
    _save(figure, out)


def loss_png(history: Sequence[tuple[int, float]]) -> bytes:
    """The smoothed training loss against words processed, as a PNG image's bytes."""
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(figsize=(8, 4.5), dpi=110)
    axes.plot([words for words, _ in history], [loss for _, loss in history], color="tab:blue")
    axes.set_xlabel("words processed")
    axes.set_ylabel("loss per (word, context) pair, smoothed")
    axes.set_title("training loss")
    axes.grid(alpha=0.3)
    return _image(figure, "png")


def _explained(centered: np.ndarray, basis: np.ndarray) -> list[float]:
    """Each of the first two components' share of the variance (0 for a component the vectors lack)."""
    total = float((centered**2).sum()) or 1.0
    shares = [float(((centered @ component) ** 2).sum()) / total for component in basis[:2]]
    return shares + [0.0] * (2 - len(shares))


_OFFSETS = [(5, 4, "left"), (5, -12, "left"), (-5, 4, "right"), (-5, -12, "right"), (0, 10, "center"), (0, -18, "center")]


def _spread_labels(figure, labels) -> None:
    """Place each label at the first spot around its point that overlaps no placed label, nearest first.

    Rings of candidate offsets grow outwards; a label moved off its first ring gets a thin leader line.
    """
    figure.canvas.draw()  # settles the axis limits, so that label boxes are measured where they end up
    for axes in figure.axes:
        axes.set_xlim(axes.get_xlim())
        axes.set_ylim(axes.get_ylim())
    renderer = figure.canvas.get_renderer()
    placed = []
    for label in labels:
        for ring in range(1, 8):
            for dx, dy, align in _OFFSETS:
                label.set_position((dx * ring, dy * ring if ring == 1 else dy + 9 * (ring - 1) * (1 if dy > 0 else -1)))
                label.set_horizontalalignment(align)
                box = label.get_window_extent(renderer)
                if not any(box.overlaps(other) for other in placed):
                    break
            else:
                continue
            break
        if ring > 1:
            label.arrow_patch = None
            label.axes.annotate("", label.xy, xytext=label.get_position(), textcoords="offset points",
                                arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6})
        placed.append(label.get_window_extent(renderer))


def _save(figure, out: str | Path) -> None:
    path = Path(out)
    if not path.parent.is_dir():
        raise UsageError(f"--out {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise UsageError(f"--out {path} is a folder; give an image file, e.g. {path / 'plot.png'}")
    kind = _IMAGE_KINDS.get(path.suffix.lower())
    if kind is None:
        raise UsageError(f"--out {path}: write a .png, .svg, .pdf or .jpg file")
    atomic_write_bytes(path, _image(figure, kind))


def _image(figure, kind: str) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format=kind, bbox_inches="tight")
    _pyplot().close(figure)  # pyplot keeps every figure until closed: a leak for long-lived callers
    return buffer.getvalue()
