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
    """A stretch of the sub-sampled stream, prepared for training in chunks of ``chunk`` centers.

    Everything random and every mask is computed here, once per span, so that a
    training step only slices: ``centers`` is a multiple of ``chunk`` (the tail is
    padding that trains nothing) and ``window`` empty positions pad each side.
    """

    rows: torch.Tensor  # (centers + 2W,) int64 vocabulary rows; padding rows are 0
    valid: torch.Tensor  # (centers, 2W + 1) bool: pair (center i, position i + k) is trained
    pairs_per_center: torch.Tensor  # (centers,) float32
    pairs_per_position: torch.Tensor  # (centers + 2W,) float32: pairs each position is the context of
    noise: torch.Tensor  # (centers // B, K) int64: K noise rows shared by each block of B centers
    noise_weight: torch.Tensor  # (centers,) float32: scales each center's noise term to word2vec's
    kept: int  # real (not padding) centers

    @property
    def window(self) -> int:
        return (self.valid.shape[1] - 1) // 2

    @property
    def centers(self) -> int:
        return len(self.valid)


def make_span(
    rows: torch.Tensor,
    sentences: torch.Tensor,
    keep: torch.Tensor,
    *,
    window: int,
    chunk: int,
    negative: int,
    noise_block: int,
    noise_words: int,
    cumulative: torch.Tensor,
    generator: torch.Generator,
) -> Span:
    """Sub-sample a stretch of tokens, draw every center's shrunk window and the noise words."""
    device = rows.device
    mask = torch.rand(len(rows), generator=generator, device=device) < keep[rows]
    kept_rows, kept_sentences = rows[mask], sentences[mask]
    kept = len(kept_rows)
    centers = -(-kept // chunk) * chunk
    tail = centers - kept + window
    all_rows = torch.cat([rows.new_zeros(window), kept_rows, rows.new_zeros(tail)])
    all_sentences = torch.cat([sentences.new_full((window,), -1), kept_sentences, sentences.new_full((tail,), -1)])
    reach = torch.randint(1, window + 1, (centers,), generator=generator, device=device)
    offsets = torch.arange(-window, window + 1, device=device)
    center_sentences = all_sentences[window : window + centers]
    # A span whose every token was sub-sampled away has no centers (and is shorter than one window)
    windows = (
        all_sentences.unfold(0, 2 * window + 1, 1) if centers else all_sentences.new_zeros((0, 2 * window + 1))
    )
    valid = (
        (windows == center_sentences[:, None])
        & (offsets.abs()[None, :] <= reach[:, None])
        & (offsets != 0)[None, :]
        & (center_sentences >= 0)[:, None]
    )
    pairs_per_center = valid.sum(1, dtype=torch.float32)
    pairs_per_position = torch.zeros(centers + 2 * window, device=device)
    for offset in range(2 * window + 1):
        pairs_per_position[offset : offset + centers] += valid[:, offset]
    noise = draw(cumulative, (centers // noise_block, noise_words), generator)
    # word2vec gives each pair `negative` noise words; a center shares its block's
    # noise_words draws, so they are weighted to keep the expected gradient the same.
    noise_weight = pairs_per_center * (negative / noise_words)
    return Span(all_rows, valid, pairs_per_center, pairs_per_position, noise, noise_weight, kept)


@dataclass(frozen=True)
class Chunk:
    """One training step's input: ``C`` consecutive centers with their context halo, in each of ``L`` lanes.

    A lane is a stretch of the span; on a GPU several lanes side by side make a large step
    whose centers come from far-apart places, so that they rarely update the same rows.
    """

    rows: torch.Tensor  # (L, C + 2W) int64: rows of the centers and their context positions
    valid: torch.Tensor  # (L * C, 2W + 1) bool
    pairs_per_center: torch.Tensor  # (L * C,) float32
    pairs_per_position: torch.Tensor  # (L, C + 2W) float32, as counted over the whole span
    noise: torch.Tensor  # (L * C // B, K) int64
    noise_weight: torch.Tensor  # (L * C,) float32

    @property
    def window(self) -> int:
        return (self.valid.shape[1] - 1) // 2

    @property
    def centers(self) -> torch.Tensor:
        return self.rows[:, self.window : self.rows.shape[1] - self.window].reshape(-1)

    @property
    def pairs(self) -> int:
        return int(self.pairs_per_center.sum())


def chunk_of(span: Span, number: int, size: int, lanes: int = 1) -> Chunk:
    """Step ``number`` of ``span``: ``size`` centers from each of ``lanes`` equal stretches of it.

    ``span.centers`` must be a multiple of ``size * lanes`` (see :func:`make_span`). With one
    lane every field is a view of the span's tensors; with several, a copy.
    """
    stretch = span.centers // lanes
    block = span.centers // len(span.noise)
    start, halo = number * size, size + 2 * span.window

    def side_by_side(tensor: torch.Tensor, first: int, width: int, every: int) -> torch.Tensor:
        step = tensor.stride(0)
        return tensor.as_strided(
            (lanes, width, *tensor.shape[1:]), (every * step, step, *tensor.stride()[1:]), tensor.storage_offset() + first * step
        )

    def flat(tensor: torch.Tensor, first: int, width: int, every: int) -> torch.Tensor:
        return side_by_side(tensor, first, width, every).reshape(lanes * width, *tensor.shape[1:])

    return Chunk(
        rows=side_by_side(span.rows, start, halo, stretch),
        valid=flat(span.valid, start, size, stretch),
        pairs_per_center=flat(span.pairs_per_center, start, size, stretch),
        pairs_per_position=side_by_side(span.pairs_per_position, start, halo, stretch),
        noise=flat(span.noise, start // block, size // block, stretch // block),
        noise_weight=flat(span.noise_weight, start, size, stretch),
    )
