"""SkipGram: word2vec's skip-gram with negative sampling on two nn.Embedding tables.

Mikolov et al., "Distributed Representations of Words and Phrases and their
Compositionality" (2013). The step is written by hand rather than through
autograd: per chunk it gathers every row once, scores all window pairs with one
batched product over a sliding-window view, shares a block of noise words among
neighbouring centers (the HogBatch idea, Ji et al. 2016, arXiv 1604.04661) and
writes back with ``index_add_``. :meth:`SkipGram.chunk_loss` is the same
objective for autograd; a test checks that the two agree.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from .sampling import Chunk, Span, StagedSteps


class SkipGram(nn.Module):
    """Input (word) vectors and output (context) vectors, initialised as word2vec does."""

    def __init__(self, vocab_size: int, dim: int, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.input = nn.Embedding(vocab_size, dim)
        self.output = nn.Embedding(vocab_size, dim)
        with torch.no_grad():
            self.input.weight.uniform_(-0.5 / dim, 0.5 / dim, generator=generator)
            self.output.weight.zero_()

    def chunk_loss(self, chunk: Chunk) -> torch.Tensor:
        """Negative-sampling loss of a chunk, differentiable (the reference for :meth:`train_chunk`)."""
        window = chunk.window
        centers = self.input(chunk.centers)  # (C, d)
        contexts = self.output(chunk.rows).unfold(1, 2 * window + 1, 1)  # (L, C, d, 2W+1)
        contexts = contexts.reshape(len(centers), -1, 2 * window + 1)
        positive = torch.einsum("cd,cdk->ck", centers, contexts)
        blocks = len(chunk.noise)
        noise = self.output(chunk.noise)  # (blocks, K, d)
        negative = torch.bmm(centers.view(blocks, len(centers) // blocks, -1), noise.transpose(1, 2))
        negative = negative.view(len(centers), -1)
        return -(F.logsigmoid(positive) * chunk.valid).sum() - (
            F.logsigmoid(-negative).sum(1) * chunk.noise_weight
        ).sum()

    @torch.no_grad()
    def train_chunk(
        self, chunk: Chunk, lr: float, *, hot_rows: int = 0, max_step: float = float("inf"), with_loss: bool = False
    ) -> float | None:
        """One SGD step on a chunk, in place (lock-free, Hogwild style); the loss before it if asked."""
        loss = sgns_step(
            self.input.weight, self.output.weight, chunk, lr, hot_rows=hot_rows, max_step=max_step, with_loss=with_loss
        )
        return None if loss is None else float(loss)


class CapturedStep:
    """:func:`sgns_step` on CUDA, recorded once as CUDA graphs and replayed for every step of every span.

    A step is some 45 small kernels. Launched one by one, each with its chunk copied to the
    GPU first, they keep the CPU busier than the GPU. Here each span's steps are copied to
    the GPU's staging tensors at once (:meth:`take`), and a step is a replay of the recorded
    graph, which picks its chunk from them by a step number held on the GPU: the CPU makes
    three calls a step. Two graphs are recorded: the step, and the step that also computes
    its loss (a dozen more kernels), replayed only where the loss is read.
    """

    def __init__(
        self, model: SkipGram, span: Span, *, size: int, lanes: int, capacity: int, hot_rows: int, max_step: float
    ) -> None:
        device = span.rows.device
        self.staged = StagedSteps(span, size=size, lanes=lanes, capacity=capacity)
        self.number = torch.zeros(1, dtype=torch.int64, device=device)
        self.lr = torch.zeros((), device=device)  # 0 while warming up: those steps change nothing
        weights = model.input.weight.detach(), model.output.weight.detach()

        def step(with_loss: bool) -> torch.Tensor | None:
            chunk = self.staged.chunk(self.number)
            return sgns_step(*weights, chunk, self.lr, hot_rows=hot_rows, max_step=max_step, with_loss=with_loss)

        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.no_grad(), torch.cuda.stream(side):
            for with_loss in (False, True):
                step(with_loss)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph, self.graph_with_loss = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            step(False)
        with torch.no_grad(), torch.cuda.graph(self.graph_with_loss, capture_error_mode="thread_local"):
            self.loss = step(True)

    def take(self, span: Span) -> bool:
        """Stage ``span``'s steps for replay (see :meth:`StagedSteps.take`)."""
        return self.staged.take(span)

    def __call__(self, number: int, lr: float, *, with_loss: bool = False) -> torch.Tensor | None:
        """Train on step ``number`` of the span taken last, at ``lr``; with ``with_loss``, the loss before the step, on the GPU."""
        self.number.fill_(number)
        self.lr.fill_(lr)
        if not with_loss:
            self.graph.replay()
            return None
        self.graph_with_loss.replay()
        return self.loss


def sgns_step(
    input_weight: torch.Tensor,
    output_weight: torch.Tensor,
    chunk: Chunk,
    lr: float | torch.Tensor,
    *,
    hot_rows: int = 0,
    max_step: float = float("inf"),
    with_loss: bool = False,
) -> torch.Tensor | None:
    """Apply ``-lr * gradient of chunk_loss`` to both tables; return the loss before the step if asked.

    ``lr`` may be a 0-d tensor on the tables' device, so that the step can be recorded
    once (:class:`CapturedStep`) and replayed at every learning rate. Nothing here waits
    for the device.

    Rows below ``hot_rows`` (the most frequent words) may be met so often in one chunk
    that the sum of their gradients, all computed from the same stale value,
    overshoots where sequential SGD would have damped itself. Each such row's
    summed step is scaled down so that ``lr`` times its pair count stays within
    ``max_step``.
    """
    window = chunk.window
    blocks = len(chunk.noise)
    block = len(chunk.valid) // blocks
    reach = block + 2 * window  # window positions a block of B centers sees
    center_rows = chunk.centers
    centers = input_weight.index_select(0, center_rows).view(blocks, block, -1)
    # Each block of B centers scores one row per output it meets: its B + 2W window
    # positions, then its K noise words; one GEMM per block gives every score at once.
    lanes = chunk.rows.shape[0]
    positions = _block_positions(lanes, blocks // lanes, block, window, chunk.rows.device)
    output_rows = torch.cat([chunk.rows.reshape(-1).take(positions), chunk.noise], dim=1)  # (blocks, B + 2W + K)
    outputs = output_weight.index_select(0, output_rows.view(-1)).view(blocks, output_rows.shape[1], -1)
    scores = torch.bmm(centers, outputs.transpose(1, 2))  # (blocks, B, B + 2W + K)

    # Center i of a block meets its window at columns i .. i + 2W: a diagonal band.
    band = _band(scores, window)
    positive_sigmoid = torch.sigmoid(band.reshape(-1, 2 * window + 1))  # (C, 2W+1)
    negative_sigmoid = torch.sigmoid(scores[:, :, reach:])  # (blocks, B, K)
    # d(-log sigmoid(s))/ds = sigmoid(s) - 1 for a pair; sigmoid(s) for noise (weighted per center).
    steps = scores  # scores are read: their memory takes the steps
    steps[:, :, :reach].zero_()
    positive_step = (1 - positive_sigmoid).mul_(chunk.valid).mul_(lr)
    _band(steps, window).copy_(positive_step.view(blocks, block, -1))
    torch.mul(negative_sigmoid, chunk.noise_weight.view(blocks, block, 1) * -lr, out=steps[:, :, reach:])

    center_grad = torch.bmm(steps, outputs).view(len(center_rows), -1)
    output_grad = torch.bmm(steps.transpose(1, 2), centers).view(output_rows.numel(), -1)

    max_pairs = max_step / lr
    _add_capped(input_weight, center_rows, center_grad, chunk.pairs_per_center, hot_rows, max_pairs)
    noise_pairs = chunk.noise_weight.view(blocks, block).sum(1, keepdim=True).expand(chunk.noise.shape)
    output_pairs = torch.cat([chunk.pairs_per_position.reshape(-1).take(positions), noise_pairs], dim=1)
    _add_capped(output_weight, output_rows.view(-1), output_grad, output_pairs.view(-1), hot_rows, max_pairs)

    if not with_loss:
        return None
    loss = -(torch.log(positive_sigmoid.clamp_(min=1e-7)) * chunk.valid).sum()
    loss -= (torch.log((1 - negative_sigmoid).clamp_(min=1e-7)).sum(2).view(-1) * chunk.noise_weight).sum()
    return loss


def step_bytes(centers: int, dim: int, *, window: int, noise_block: int, noise_words: int) -> int:
    """Scratch memory of one :func:`sgns_step` over ``centers`` centers (all its lanes), in bytes.

    Per center: its input row and that row's gradient, plus its share of the block's B + 2W + K
    output rows and their gradients; then the block's scores and their sigmoids. At ``--dim``
    300,000 this is about 7.5 GB per worker for the default 1024 centers, whatever the vocabulary.
    """
    outputs_per_center = 1 + (2 * window + noise_words) / noise_block
    rows = centers * (2 + 2 * outputs_per_center)
    scores = 2 * centers * (noise_block + 2 * window + noise_words)
    return int(4 * (rows * dim + scores))


@functools.lru_cache(maxsize=16)
def _block_positions(lanes: int, blocks: int, block: int, window: int, device: torch.device) -> torch.Tensor:
    """(lanes x blocks, B + 2W): where each block of B centers finds its windows in the (L, C + 2W) rows, flattened."""
    halo = blocks * block + 2 * window
    starts = torch.arange(lanes, device=device)[:, None] * halo + torch.arange(blocks, device=device)[None, :] * block
    return starts.reshape(-1, 1) + torch.arange(block + 2 * window, device=device)[None, :]


def _band(matrix: torch.Tensor, window: int) -> torch.Tensor:
    """View of ``matrix[b, i, i + k]`` for k in 0..2W: each center's window columns."""
    blocks, block, width = matrix.shape
    return matrix.as_strided((blocks, block, 2 * window + 1), (block * width, width + 1, 1), matrix.storage_offset())


def _add_capped(
    weight: torch.Tensor, rows: torch.Tensor, updates: torch.Tensor, pairs: torch.Tensor, hot_rows: int,
    max_pairs: float | torch.Tensor,
) -> None:
    """``weight[rows] += updates``, each hot row's total scaled down where it sums over more than max_pairs pairs.

    ``updates`` is scaled in place: it is the step's own scratch, and a copy of it costs a tenth of a CPU step.
    """
    if hot_rows:
        bucket = rows.clamp(max=hot_rows)  # every cold row shares the last bucket, which is never scaled
        # index_add_ rather than bincount, which waits for the GPU to learn its output's size
        totals = pairs.new_zeros(hot_rows + 1).index_add_(0, bucket, pairs)
        scale = (max_pairs / totals.clamp(min=1e-12)).clamp_(max=1.0)
        scale[hot_rows:].fill_(1.0)  # not scale[hot_rows] = 1.0: that copies from the host, which waits for the GPU
        updates.mul_(scale.index_select(0, bucket).to(updates.dtype).unsqueeze(1))
    weight.index_add_(0, rows, updates)
