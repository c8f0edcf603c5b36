"""Quality on the demo corpus, whose relations are planted: the trainer must learn them."""

from __future__ import annotations

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
