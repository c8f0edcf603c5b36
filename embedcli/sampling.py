"""Pure tensor functions: which tokens to keep, which noise words to draw, which pairs to train.

Training walks the sub-sampled token stream in chunks of consecutive positions.
A :class:`Chunk` holds, for ``C`` center positions, the vocabulary rows of those
positions plus ``window`` positions of context on each side, and a mask of the
(center, context) pairs word2vec would train: same sentence, within the
center's randomly shrunk window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def keep_probabilities(counts: torch.Tensor, sample: float) -> torch.Tensor:
    """word2vec's sub-sampling: keep a word with probability (sqrt(f/t) + 1) * t/f, t = sample * total."""
    counts = counts.to(torch.float64)
    if sample <= 0:
        return torch.ones_like(counts, dtype=torch.float32)
    threshold = sample * counts.sum()
    keep = (torch.sqrt(counts / threshold) + 1) * threshold / counts
    return keep.clamp(max=1.0).to(torch.float32)


def noise_table(counts: torch.Tensor, power: float = 0.75) -> torch.Tensor:
    """Cumulative unigram^power distribution, for drawing noise words with :func:`draw`."""
    weights = counts.to(torch.float64) ** power
    return torch.cumsum(weights / weights.sum(), dim=0)


def hot_rows(keep: torch.Tensor, counts: torch.Tensor, cumulative: torch.Tensor, *, chunk: int, window: int, negative: int, max_pairs: float) -> int:
    """How many of the most frequent rows may meet ``max_pairs`` pair updates in one chunk.

    Expected pairs of row r per chunk: chunk x (window + 1) pairs per center x
    (its share of the sub-sampled stream + negative x its noise probability); a
    row expected at an eighth of the limit is watched, as chance may push it over.
    """
    kept = counts.to(torch.float64) * keep.to(torch.float64)
    share = kept / kept.sum()
    noise = torch.diff(cumulative, prepend=cumulative.new_zeros(1))
    expected = chunk * (window + 1) * (share + negative * noise)
    hot = torch.nonzero(expected >= max_pairs / 8)
    return int(hot.max()) + 1 if len(hot) else 0


def draw(cumulative: torch.Tensor, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Rows drawn from the distribution whose cumulative sum is ``cumulative``."""
    uniform = torch.rand(shape, generator=generator, dtype=torch.float64, device=cumulative.device)
    rows = torch.searchsorted(cumulative, uniform)
    return rows.clamp_(max=len(cumulative) - 1)


def sentence_ids(offsets: np.ndarray, start: int, stop: int) -> np.ndarray:
    """The sentence number of every token position in [start, stop)."""
    first = int(np.searchsorted(offsets, start, side="right")) - 1
    last = int(np.searchsorted(offsets, stop, side="left"))
    bounds = np.clip(offsets[first : last + 1], start, stop) - start
    lengths = np.diff(bounds)
    return np.repeat(np.arange(first, first + len(lengths), dtype=np.int64), lengths)


@dataclass(frozen=True)
class Span:
    """A stretch of the sub-sampled stream, padded with ``window`` empty positions on each side."""

    rows: torch.Tensor  # int64 vocabulary rows; padding rows are 0
    sentences: torch.Tensor  # int64 sentence number; padding is -1
    reach: torch.Tensor  # int64 effective window of each position, 1..window
    window: int

    @property
    def centers(self) -> int:
        return len(self.rows) - 2 * self.window


def make_span(
    rows: torch.Tensor,
    sentences: torch.Tensor,
    keep: torch.Tensor,
    *,
    window: int,
    generator: torch.Generator,
) -> Span:
    """Sub-sample a stretch of tokens and draw each kept position's shrunk window."""
    device = rows.device
    mask = torch.rand(len(rows), generator=generator, device=device) < keep[rows]
    kept_rows, kept_sentences = rows[mask], sentences[mask]
    pad_rows = rows.new_zeros(window)
    pad_sentences = sentences.new_full((window,), -1)
    reach = torch.randint(1, window + 1, (len(kept_rows) + 2 * window,), generator=generator, device=device)
    return Span(
        rows=torch.cat([pad_rows, kept_rows, pad_rows]),
        sentences=torch.cat([pad_sentences, kept_sentences, pad_sentences]),
        reach=reach,
        window=window,
    )


@dataclass(frozen=True)
class Chunk:
    """Up to C centers with their context halo: everything one training step needs."""

    rows: torch.Tensor  # (C + 2W,) int64: rows of the centers and their context positions
    valid: torch.Tensor  # (C, 2W + 1) bool: pair (center i, position i + k) is trained
    noise: torch.Tensor  # (C // B, K) int64: noise rows shared by each block of B centers
    noise_weight: torch.Tensor  # (C,) float32: scales each center's noise term to word2vec's

    @property
    def window(self) -> int:
        return (self.valid.shape[1] - 1) // 2

    @property
    def centers(self) -> torch.Tensor:
        return self.rows[self.window : len(self.rows) - self.window]

    @property
    def pairs(self) -> int:
        return int(self.valid.sum())


def make_chunk(
    span: Span,
    start: int,
    size: int,
    *,
    negative: int,
    noise_block: int,
    cumulative: torch.Tensor,
    generator: torch.Generator,
) -> Chunk:
    """The chunk of ``size`` centers starting at center ``start`` of ``span`` (padded to ``size``)."""
    window = span.window
    stop = min(start + size, span.centers)
    rows = span.rows[start : stop + 2 * window]
    sentences = span.sentences[start : stop + 2 * window]
    reach = span.reach[start + window : stop + window]
    missing = size - (stop - start)
    if missing:
        rows = torch.cat([rows, rows.new_zeros(missing)])
        sentences = torch.cat([sentences, sentences.new_full((missing,), -1)])
        reach = torch.cat([reach, reach.new_zeros(missing)])
    offsets = torch.arange(-window, window + 1, device=rows.device)
    center_sentence = sentences[window : window + size]
    valid = (
        (sentences.unfold(0, 2 * window + 1, 1) == center_sentence[:, None])
        & (offsets.abs()[None, :] <= reach[:, None])
        & (offsets != 0)[None, :]
        & (center_sentence >= 0)[:, None]
    )
    blocks = -(-size // noise_block)
    noise = draw(cumulative, (blocks, noise_block), generator)
    # word2vec gives each pair `negative` noise words; a center shares the block's
    # noise_block draws, so weight them to keep the expected gradient the same.
    noise_weight = valid.sum(1).to(torch.float32) * (negative / noise_block)
    return Chunk(rows=rows, valid=valid, noise=noise, noise_weight=noise_weight)
