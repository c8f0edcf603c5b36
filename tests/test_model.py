"""The hand-written training step against autograd, and the sampling formulas against word2vec's."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from embedcli.config import DEFAULTS
from embedcli.model import SkipGram, sgns_step
from embedcli.sampling import StagedSteps, chunk_of, keep_probabilities, make_span, noise_table, sentence_ids
from embedcli.train import learning_rate


def _chunk(generator, *, vocab=40, window=3, size=64, block=16, tokens=300, lanes=1):
    counts = torch.randint(1, 100, (vocab,), generator=generator)
    rows = torch.randint(0, vocab, (tokens,), generator=generator)
    sentences = torch.arange(tokens) // 37
    span = make_span(
        rows, sentences, torch.ones(vocab), window=window, chunk=size * lanes, negative=5, noise_block=block,
        noise_words=block // 2, cumulative=noise_table(counts), generator=generator,
    )
    return chunk_of(span, 0, size, lanes)


def _model(generator, vocab=40, dim=8):
    model = SkipGram(vocab, dim, generator=generator)
    with torch.no_grad():
        model.output.weight.normal_(0, 0.3, generator=generator)
    return model


def _twins_and_a_chunk(seed, *, lanes=1):
    """A model, an identical copy of it, and a chunk to train each on."""
    generator = torch.Generator().manual_seed(seed)
    model = _model(generator)
    chunk = _chunk(generator, lanes=lanes)
    twin = _model(torch.Generator())
    twin.load_state_dict(model.state_dict())
    return model, twin, chunk


@pytest.mark.parametrize("lanes", [1, 3])
def test_hand_written_step_equals_an_autograd_sgd_step(lanes):
    model, reference, chunk = _twins_and_a_chunk(0, lanes=lanes)
    loss = reference.chunk_loss(chunk)
    loss.backward()
    lr = 0.05
    expected_input = reference.input.weight.detach() - lr * reference.input.weight.grad
    expected_output = reference.output.weight.detach() - lr * reference.output.weight.grad

    reported = model.train_chunk(chunk, lr, with_loss=True)

    assert math.isclose(reported, float(loss.detach()), rel_tol=1e-5)
    torch.testing.assert_close(model.input.weight.detach(), expected_input, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(model.output.weight.detach(), expected_output, atol=1e-6, rtol=1e-5)


def test_a_learning_rate_tensor_steps_as_the_float_does():
    """CapturedStep records the step with the learning rate as a tensor; on CPU the same step runs eagerly."""
    model, recorded, chunk = _twins_and_a_chunk(4, lanes=2)

    def step(trained, lr):
        return sgns_step(trained.input.weight.detach(), trained.output.weight.detach(), chunk, lr, hot_rows=5, max_step=0.1, with_loss=True)

    expected = step(model, 0.05)
    loss = step(recorded, torch.tensor(0.05))
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(recorded.input.weight, model.input.weight)
    torch.testing.assert_close(recorded.output.weight, model.output.weight)
    before = recorded.output.weight.detach().clone()
    step(recorded, torch.tensor(0.0))
    assert torch.equal(recorded.output.weight, before)  # the warm-up steps before recording change nothing


def test_hot_row_cap_only_shrinks_the_steps_of_hot_rows():
    model, capped, chunk = _twins_and_a_chunk(1)
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
    chunk = chunk_of(span, 1, 32)
    centers, positions = torch.nonzero(chunk.valid, as_tuple=True)
    offsets = positions - 4
    assert (offsets != 0).all() and (offsets.abs() <= 4).all()
    assert (chunk.rows[0, centers + positions] // 10 == chunk.centers[centers] // 10).all()
    assert chunk.centers.tolist() == list(range(32, 64))
    farthest = (span.valid * (torch.arange(9) - 4).abs()).amax(1)  # each center's drawn window shows
    assert set(farthest[span.valid.any(1)].tolist()) == {1, 2, 3, 4}
    assert not span.valid[100:].any()


def test_lanes_take_the_same_step_of_far_apart_stretches():
    generator = torch.Generator().manual_seed(3)
    rows = torch.arange(1000)
    span = make_span(
        rows, rows // 25, torch.ones(1000), window=2, chunk=4 * 32, negative=5, noise_block=16, noise_words=8,
        cumulative=noise_table(torch.ones(1000)), generator=generator,
    )
    assert span.centers == 1024  # 1000 padded to whole steps of 4 lanes x 32 centers
    whole = [chunk_of(span, number, 32) for number in range(32)]
    for number in range(8):
        step = chunk_of(span, number, 32, lanes=4)
        alone = [whole[lane * 8 + number] for lane in range(4)]  # a lane is a quarter of the span
        assert step.centers.tolist() == [row for chunk in alone for row in chunk.centers.tolist()]
        assert torch.equal(step.rows, torch.stack([chunk.rows for chunk in alone]).squeeze(1))
        for field in ("valid", "pairs_per_center", "noise", "noise_weight"):
            assert torch.equal(getattr(step, field), torch.cat([getattr(chunk, field) for chunk in alone]))
    assert step.centers[::32].tolist() == [lane * 256 + 7 * 32 for lane in range(4)]  # every position kept: row = position


def test_staged_steps_give_each_spans_chunks_by_a_step_number_tensor():
    """The CUDA-graph path picks its chunk from staged tensors by a number on the device; here on CPU."""
    generator = torch.Generator().manual_seed(4)
    spans = [
        make_span(
            torch.randint(0, 50, (tokens,), generator=generator), torch.arange(tokens) // 30, torch.full((50,), 0.9),
            window=2, chunk=3 * 32, negative=5, noise_block=16, noise_words=8, cumulative=noise_table(torch.ones(50)),
            generator=generator,
        )
        for tokens in (2000, 700, 3000)  # longer, shorter, then longer than the staging holds
    ]
    staged = StagedSteps(spans[0], size=32, lanes=3, capacity=0)
    for span in spans[:2]:
        assert staged.take(span)
        for number in range(span.centers // 96):
            picked, expected = staged.chunk(torch.tensor([number])), chunk_of(span, number, 32, lanes=3)
            for field in dataclasses.fields(expected):
                assert torch.equal(getattr(picked, field.name), getattr(expected, field.name)), field.name
    assert not staged.take(spans[2])  # the caller steps that span without the graph
    assert staged.span is spans[1]


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
