"""The hand-written training step against autograd, and the sampling formulas against word2vec's."""

from __future__ import annotations

import math

import numpy as np
import torch

from embedcli.config import DEFAULTS
from embedcli.model import SkipGram
from embedcli.sampling import chunk_of, keep_probabilities, make_span, noise_table, sentence_ids
from embedcli.train import learning_rate


def _chunk(generator, *, vocab=40, window=3, size=64, block=16, tokens=300):
    counts = torch.randint(1, 100, (vocab,), generator=generator)
    rows = torch.randint(0, vocab, (tokens,), generator=generator)
    sentences = torch.arange(tokens) // 37
    span = make_span(
        rows, sentences, torch.ones(vocab), window=window, chunk=size, negative=5, noise_block=block, noise_words=block // 2,
        cumulative=noise_table(counts), generator=generator,
    )
    return chunk_of(span, 0, size)


def _model(generator, vocab=40, dim=8):
    model = SkipGram(vocab, dim, generator=generator)
    with torch.no_grad():
        model.output.weight.normal_(0, 0.3, generator=generator)
    return model


def test_hand_written_step_equals_an_autograd_sgd_step():
    generator = torch.Generator().manual_seed(0)
    model = _model(generator)
    chunk = _chunk(generator)
    reference = _model(torch.Generator())
    reference.load_state_dict(model.state_dict())
    loss = reference.chunk_loss(chunk)
    loss.backward()
    lr = 0.05
    expected_input = reference.input.weight.detach() - lr * reference.input.weight.grad
    expected_output = reference.output.weight.detach() - lr * reference.output.weight.grad

    reported = model.train_chunk(chunk, lr, with_loss=True)

    assert math.isclose(reported, float(loss.detach()), rel_tol=1e-5)
    torch.testing.assert_close(model.input.weight.detach(), expected_input, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(model.output.weight.detach(), expected_output, atol=1e-6, rtol=1e-5)


def test_hot_row_cap_only_shrinks_the_steps_of_hot_rows():
    generator = torch.Generator().manual_seed(1)
    model = _model(generator)
    chunk = _chunk(generator, vocab=40)
    capped = _model(torch.Generator())
    capped.load_state_dict(model.state_dict())
    before = model.output.weight.detach().clone()
    model.train_chunk(chunk, 0.05)
    capped.train_chunk(chunk, 0.05, hot_rows=5, max_step=0.05)  # at most one pair's step per hot row
    full, limited = model.output.weight.detach() - before, capped.output.weight.detach() - before
    torch.testing.assert_close(limited[5:], full[5:])
    assert (limited[:5].norm(dim=1) <= full[:5].norm(dim=1) + 1e-7).all()
    assert limited[:5].norm() < full[:5].norm()


def test_pairs_stay_inside_sentences_and_the_drawn_window():
    generator = torch.Generator().manual_seed(2)
    rows = torch.arange(100)
    sentences = torch.arange(100) // 10
    span = make_span(
        rows, sentences, torch.ones(100), window=4, chunk=32, negative=5, noise_block=16, noise_words=8,
        cumulative=noise_table(torch.ones(100)), generator=generator,
    )
    assert span.kept == 100 and span.centers == 128  # padded to whole chunks
    chunk = chunk_of(span, 32, 32)
    centers, positions = torch.nonzero(chunk.valid, as_tuple=True)
    offsets = positions - 4
    assert (offsets != 0).all() and (offsets.abs() <= 4).all()
    assert (chunk.rows[centers + positions] // 10 == chunk.centers[centers] // 10).all()
    assert chunk.centers.tolist() == list(range(32, 64))
    farthest = (span.valid * (torch.arange(9) - 4).abs()).amax(1)  # each center's drawn window shows
    assert set(farthest[span.valid.any(1)].tolist()) == {1, 2, 3, 4}
    assert not span.valid[100:].any()


def test_initialisation_is_word2vecs():
    model = SkipGram(1000, 50, generator=torch.Generator().manual_seed(0))
    assert model.input.weight.abs().max() <= 0.5 / 50
    assert model.input.weight.std() > 0.5 / 50 / 3
    assert (model.output.weight == 0).all()


def test_keep_probability_is_word2vecs_formula():
    counts = torch.tensor([1_000_000, 1000, 10])
    keep = keep_probabilities(counts, 1e-3)
    threshold = 1e-3 * counts.sum().item()
    expected = (math.sqrt(1_000_000 / threshold) + 1) * threshold / 1_000_000
    assert math.isclose(float(keep[0]), expected, rel_tol=1e-6)
    assert keep[2] == 1.0
    assert (keep_probabilities(counts, 0) == 1).all()


def test_noise_follows_the_unigram_to_the_three_quarters():
    counts = torch.tensor([1000, 100, 10, 1])
    cumulative = noise_table(counts)
    drawn = torch.searchsorted(cumulative, torch.rand(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    frequencies = torch.bincount(drawn, minlength=4).double() / 200_000
    expected = counts.double() ** 0.75 / (counts.double() ** 0.75).sum()
    torch.testing.assert_close(frequencies, expected, atol=0.005, rtol=0)


def test_sentence_ids():
    offsets = np.array([0, 3, 3, 7, 10])
    assert sentence_ids(offsets, 0, 10).tolist() == [0, 0, 0, 2, 2, 2, 2, 3, 3, 3]
    assert sentence_ids(offsets, 2, 8).tolist() == [0, 2, 2, 2, 2, 3]


def test_learning_rate_decays_linearly_to_a_floor():
    assert learning_rate(DEFAULTS, 0, 1000) == DEFAULTS.lr
    assert math.isclose(learning_rate(DEFAULTS, 500, 1000), DEFAULTS.lr * (1 - 500 / 1001))
    assert learning_rate(DEFAULTS, 999_999, 1_000_000) == DEFAULTS.lr * DEFAULTS.min_lr
