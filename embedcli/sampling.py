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


def steps_of(span: Span, size: int, lanes: int = 1) -> dict[str, torch.Tensor]:
    """Every step of ``span`` at once: for each :class:`Chunk` field, a view of the span's tensor
    whose first two dimensions are (step, lane), as :func:`chunk_of` cuts it.

    ``span.centers`` must be a multiple of ``size * lanes`` (see :func:`make_span`). Lane ``l``
    of step ``n`` starts ``n * size`` centers into the ``l``-th of ``lanes`` equal stretches.
    """
    steps = span.centers // (size * lanes)
    stretch = span.centers // lanes
    block = span.centers // len(span.noise)
    halo = size + 2 * span.window

    def view(tensor: torch.Tensor, width: int, every: int, step: int) -> torch.Tensor:
        unit = tensor.stride(0)
        return tensor.as_strided(
            (steps, lanes, width, *tensor.shape[1:]),
            (step * unit, every * unit, unit, *tensor.stride()[1:]),
            tensor.storage_offset(),
        )

    return {
        "rows": view(span.rows, halo, stretch, size),
        "valid": view(span.valid, size, stretch, size),
        "pairs_per_center": view(span.pairs_per_center, size, stretch, size),
        "pairs_per_position": view(span.pairs_per_position, halo, stretch, size),
        "noise": view(span.noise, size // block, stretch // block, size // block),
        "noise_weight": view(span.noise_weight, size, stretch, size),
    }


def chunk_from(steps: dict[str, torch.Tensor], number: int | torch.Tensor) -> Chunk:
    """Step ``number`` of :func:`steps_of`'s fields as a Chunk.

    ``number`` may be a one-element tensor on the fields' device, so that the step can be
    recorded once and replayed for every number (see :class:`~embedcli.model.CapturedStep`).
    """

    def pick(name: str) -> torch.Tensor:
        tensor = steps[name]
        return tensor[number] if isinstance(number, int) else tensor.index_select(0, number).squeeze(0)

    def flat(name: str) -> torch.Tensor:  # (L, C, ...) -> (L * C, ...)
        tensor = pick(name)
        return tensor.reshape(-1, *tensor.shape[2:])

    return Chunk(
        rows=pick("rows"),
        valid=flat("valid"),
        pairs_per_center=flat("pairs_per_center"),
        pairs_per_position=pick("pairs_per_position"),
        noise=flat("noise"),
        noise_weight=flat("noise_weight"),
    )


def chunk_of(span: Span, number: int, size: int, lanes: int = 1) -> Chunk:
    """Step ``number`` of ``span``: ``size`` centers from each of ``lanes`` equal stretches of it.

    ``span.centers`` must be a multiple of ``size * lanes`` (see :func:`make_span`). With one
    lane every field is a view of the span's tensors; with several, a copy.
    """
    return chunk_from(steps_of(span, size, lanes), number)


class StagedSteps:
    """Every step of one span at a time, in tensors that stay put (a recorded CUDA graph reads them).

    :meth:`take` copies a span's steps in (a few copies per span, not per step) and
    :meth:`chunk` picks one by a step number that is itself a tensor on the device.
    """

    def __init__(self, span: Span, *, size: int, lanes: int, capacity: int) -> None:
        self.size, self.lanes, self.span = size, lanes, None
        fields = steps_of(span, size, lanes)
        capacity = max(capacity, len(fields["rows"]))
        self.fields = {name: tensor.new_zeros((capacity, *tensor.shape[1:])) for name, tensor in fields.items()}
        self.take(span)

    def take(self, span: Span) -> bool:
        """Hold ``span``'s steps (once per span); False if there are more than the tensors hold."""
        if span is not self.span:
            fields = steps_of(span, self.size, self.lanes)
            steps = len(fields["rows"])
            if steps > len(self.fields["rows"]):
                return False
            for name, tensor in fields.items():
                self.fields[name][:steps].copy_(tensor)
            self.span = span
        return True

    def chunk(self, number: torch.Tensor) -> Chunk:
        """Step ``number`` (a one-element int64 tensor) of the span taken last."""
        return chunk_from(self.fields, number)
