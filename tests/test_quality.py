"""Quality on the demo corpus, whose relations are planted: the trainer must learn them."""

from __future__ import annotations

import json

import numpy as np
import pytest

import embedcli

from .conftest import DEMO_ANALOGIES


def planted_questions() -> list[list[str]]:
    lines = DEMO_ANALOGIES.read_text(encoding="utf-8").splitlines()
    return [line.split() for line in lines if line and not line.startswith(":")]


def test_planted_analogies_are_answered_top1(demo_model):
    vectors = embedcli.load(demo_model)
    questions = planted_questions()
    correct = sum(vectors.analogy(a, b, c)[0][0] == d for a, b, c, d in questions)
    assert len(questions) == 840
    assert correct / len(questions) >= 0.9


def test_partners_are_nearest_neighbours(demo_model):
    vectors = embedcli.load(demo_model)
    for word, partner in [("king", "queen"), ("paris", "france"), ("cats", "cat"), ("walked", "walk")]:
        assert partner in [w for w, _ in vectors.most_similar(word, topn=5)], word


def test_no_collapse_vectors_are_spread(demo_model):
    """A collapsed model gives every pair of words about the same cosine."""
    vectors = embedcli.load(demo_model)
    assert vectors.similarity("king", "queen") - vectors.similarity("king", "paris") > 0.3


def test_the_gpu_steps_train_the_demo_on_cpu(tmp_path):
    """The GPU's default steps (GPU_LANES lanes, one worker), taken on CPU, learn the planted relations."""
    from embedcli.config import GPU_LANES, load_config
    from embedcli.train import train

    from .conftest import DEMO, DEMO_CONFIG

    cfg = load_config(DEMO_CONFIG).with_overrides(device="cpu", lanes=GPU_LANES, threads=1, epochs=3)
    result = train([DEMO], cfg, out_dir=tmp_path / "model", progress=False)
    assert json.loads((tmp_path / "model" / "config.json").read_text())["config"]["lanes"] == GPU_LANES
    vectors = embedcli.load(result.model_dir)
    questions = planted_questions()
    correct = sum(vectors.analogy(a, b, c)[0][0] == d for a, b, c, d in questions)
    assert correct / len(questions) >= 0.9
    assert vectors.similarity("king", "queen") - vectors.similarity("king", "paris") > 0.3


def test_default_workers_and_their_share_of_the_row_cap(monkeypatch):
    import os

    import torch

    from embedcli.config import DEFAULTS
    from embedcli.train import row_step_share, worker_count

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    assert worker_count(DEFAULTS, torch.device("cpu")) == 4  # 16 collided and lost quality (RESULTS.md)
    assert worker_count(DEFAULTS.with_overrides(threads=16), torch.device("cpu")) == 16
    assert worker_count(DEFAULTS, torch.device("cpu"), processes_here=8) == 2
    assert worker_count(DEFAULTS, torch.device("cuda")) == 1
    assert [row_step_share(1.6, workers) for workers in (1, 2, 4, 16)] == [1.6, 1.6, 0.8, 0.2]


@pytest.mark.parametrize("flags", [["--threads", "2"], ["--threads", "4"], ["--threads", "2", "--sample", "0"]])
def test_a_fifty_word_zipf_corpus_trains_at_the_defaults(tmp_path, flags):
    """Each row is met hundreds of times a step; the old cap (1.6) diverged here even at --lr 0.025."""
    from .conftest import run_cli

    generator = np.random.default_rng(0)
    weights = 1 / np.arange(1, 51)
    tokens = generator.choice(50, size=400_000, p=weights / weights.sum())
    corpus = tmp_path / "zipf.txt"
    corpus.write_text("\n".join(" ".join(f"w{t}" for t in line) for line in np.array_split(tokens, 400_000 // 15)) + "\n")
    result = run_cli("train", corpus, "--out", tmp_path / "model", "--quiet", *flags)
    assert result.code == 0, result.stderr
    assert np.isfinite(embedcli.load(tmp_path / "model").matrix.numpy()).all()
