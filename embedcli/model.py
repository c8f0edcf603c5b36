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

import torch
import torch.nn.functional as F
from torch import nn

from .sampling import Chunk


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
        contexts = self.output(chunk.rows).unfold(0, 2 * window + 1, 1)  # (C, d, 2W+1)
        positive = torch.einsum("cd,cdk->ck", centers, contexts)
        blocks, block = chunk.noise.shape
        noise = self.output(chunk.noise)  # (blocks, B, d)
        negative = torch.bmm(centers.view(blocks, block, -1), noise.transpose(1, 2)).view(len(centers), -1)
        return -(F.logsigmoid(positive) * chunk.valid).sum() - (
            F.logsigmoid(-negative).sum(1) * chunk.noise_weight
        ).sum()

    @torch.no_grad()
    def train_chunk(
        self, chunk: Chunk, lr: float, *, hot_rows: int = 0, max_step: float = float("inf"), with_loss: bool = False
    ) -> float | None:
        """One SGD step on a chunk, in place (lock-free, Hogwild style); the loss before it if asked."""
        return sgns_step(
            self.input.weight, self.output.weight, chunk, lr, hot_rows=hot_rows, max_step=max_step, with_loss=with_loss
        )


def sgns_step(
    input_weight: torch.Tensor,
    output_weight: torch.Tensor,
    chunk: Chunk,
    lr: float,
    *,
    hot_rows: int = 0,
    max_step: float = float("inf"),
    with_loss: bool = False,
) -> float | None:
    """Apply ``-lr * gradient of chunk_loss`` to both tables; return the loss before the step if asked.

    Rows below ``hot_rows`` (the most frequent words) may be met so often in one chunk
    that the sum of their gradients, all computed from the same stale value,
    overshoots where sequential SGD would have damped itself. Each such row's
    summed step is scaled down so that ``lr`` times its pair count stays within
    ``max_step``.
    """
    window = chunk.window
    span = 2 * window + 1
    center_rows = chunk.centers
    centers = input_weight.index_select(0, center_rows)  # (C, d)
    outputs = output_weight.index_select(0, chunk.rows)  # (C + 2W, d)
    contexts = outputs.unfold(0, span, 1)  # (C, d, 2W+1), a view
    positive = torch.bmm(centers.unsqueeze(1), contexts).squeeze(1)  # (C, 2W+1)
    positive_sigmoid = torch.sigmoid(positive)
    # d(-log sigmoid(s))/ds = sigmoid(s) - 1: step along lr * (1 - sigmoid(s)).
    positive_step = (1 - positive_sigmoid).mul_(chunk.valid).mul_(lr)

    blocks, block = chunk.noise.shape
    noise = output_weight.index_select(0, chunk.noise.view(-1)).view(blocks, block, -1)
    center_blocks = centers.view(blocks, block, -1)
    negative = torch.bmm(center_blocks, noise.transpose(1, 2))  # (blocks, B, K)
    negative_sigmoid = torch.sigmoid(negative)
    # d(-log sigmoid(-s))/ds = sigmoid(s): step along -lr * sigmoid(s), weighted per center.
    negative_step = negative_sigmoid * (chunk.noise_weight.view(blocks, block, 1) * -lr)

    center_grad = torch.bmm(contexts, positive_step.unsqueeze(2)).squeeze(2)
    center_grad += torch.bmm(negative_step, noise).view(len(center_rows), -1)
    output_grad = torch.zeros_like(outputs)
    for offset in range(span):
        if offset != window:
            output_grad[offset : offset + len(center_rows)].addcmul_(positive_step[:, offset : offset + 1], centers)
    noise_grad = torch.bmm(negative_step.transpose(1, 2), center_blocks).view(blocks * block, -1)

    max_pairs = max_step / lr
    _add_capped(input_weight, center_rows, center_grad, chunk.pairs_per_center, hot_rows, max_pairs)
    pairs_per_noise = chunk.noise_weight.view(blocks, block).sum(1).repeat_interleave(block)
    _add_capped(
        output_weight,
        torch.cat([chunk.rows, chunk.noise.view(-1)]),
        torch.cat([output_grad, noise_grad]),
        torch.cat([chunk.pairs_per_position, pairs_per_noise]),
        hot_rows,
        max_pairs,
    )

    if not with_loss:
        return None
    loss = -(torch.log(positive_sigmoid.clamp_(min=1e-7)) * chunk.valid).sum()
    loss -= (torch.log((1 - negative_sigmoid).clamp_(min=1e-7)).sum(2).view(-1) * chunk.noise_weight).sum()
    return float(loss)


def _add_capped(
    weight: torch.Tensor, rows: torch.Tensor, updates: torch.Tensor, pairs: torch.Tensor, hot_rows: int, max_pairs: float
) -> None:
    """``weight[rows] += updates``, each hot row's total scaled down where it sums over more than max_pairs pairs."""
    if hot_rows:
        bucket = rows.clamp(max=hot_rows)  # every cold row shares the last bucket, which is never scaled
        totals = torch.bincount(bucket, weights=pairs, minlength=hot_rows + 1)
        scale = (max_pairs / totals.clamp(min=1e-12)).clamp_(max=1.0)
        scale[hot_rows] = 1.0
        updates = updates * scale[bucket].to(updates.dtype).unsqueeze(1)
    weight.index_add_(0, rows, updates)
