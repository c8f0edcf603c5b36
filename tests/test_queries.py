"""similarity and analogy: the CLI and the numbers gensim gives on the same vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import embedcli
from embedcli.vectors import Vectors

from .conftest import run_cli


def test_similarity_command(demo_model):
    result = run_cli("similarity", "king", "queen", "--model", demo_model)
    assert result.code == 0, result.stderr
    assert abs(float(result.stdout) - embedcli.load(demo_model).similarity("king", "queen")) < 1e-4
    payload = json.loads(run_cli("similarity", "king", "queen", "--model", demo_model, "--json").stdout)
    assert payload["first"] == "king" and -1 <= payload["similarity"] <= 1


@pytest.mark.parametrize("method", ["add", "mul"])
def test_analogy_command_finds_the_planted_answer(demo_model, method):
    result = run_cli("analogy", "man", "king", "woman", "--model", demo_model, "--method", method, "--json")
    assert result.code == 0, result.stderr
    answers = json.loads(result.stdout)
    assert answers[0]["word"] == "queen" and len(answers) == 5
    table = run_cli("analogy", "france", "paris", "spain", "--model", demo_model, "--topn", "1").stdout.split()
    assert table[0] == "madrid"


def test_analogy_bad_method_and_unknown_word(demo_model):
    result = run_cli("analogy", "man", "king", "woman", "--model", demo_model, "--method", "div")
    assert result.code == 2 and "unknown analogy method 'div'" in result.stderr
    result = run_cli("similarity", "king", "qeen", "--model", demo_model)
    assert result.code == 2 and "close matches: queen" in result.stderr


def test_scores_equal_gensims(demo_model):
    keyed_vectors = pytest.importorskip("gensim.models").KeyedVectors
    vectors = embedcli.load(demo_model)
    keyed = keyed_vectors(vectors.dim)
    keyed.add_vectors(vectors.words, vectors.matrix.numpy())
    assert abs(keyed.similarity("king", "queen") - vectors.similarity("king", "queen")) < 1e-5
    for ours, theirs in [
        (vectors.analogy("man", "king", "woman", topn=5), keyed.most_similar(["king", "woman"], ["man"], topn=5)),
        (
            vectors.analogy("man", "king", "woman", topn=5, method="mul"),
            keyed.most_similar_cosmul(["king", "woman"], ["man"], topn=5),
        ),
    ]:
        assert [word for word, _ in ours] == [word for word, _ in theirs]
        assert np.allclose([score for _, score in ours], [score for _, score in theirs], atol=1e-5)


def test_positive_and_negative_lists_equal_gensims(demo_model):
    keyed_vectors = pytest.importorskip("gensim.models").KeyedVectors
    vectors = embedcli.load(demo_model)
    keyed = keyed_vectors(vectors.dim)
    keyed.add_vectors(vectors.words, vectors.matrix.numpy())
    result = run_cli("lookup", "--model", demo_model, "--positive", "king", "--positive", "woman", "--negative", "man",
                     "--neighbors", "4", "--json")
    assert result.code == 0, result.stderr
    (found,) = json.loads(result.stdout).values()
    theirs = keyed.most_similar(["king", "woman"], ["man"], topn=4)
    assert [entry["word"] for entry in found] == [word for word, _ in theirs]
    ours = vectors.analogy("man", "king", "woman", topn=4, method="mul", positive=["prince"], negative=["boy"])
    theirs = keyed.most_similar_cosmul(["king", "woman", "prince"], ["man", "boy"], topn=4)
    assert [word for word, _ in ours] == [word for word, _ in theirs]
    assert np.allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)


def test_lookup_needs_a_word(demo_model):
    result = run_cli("lookup", "--model", demo_model)
    assert result.code == 2 and "give one or more words" in result.stderr


def test_one_word_given_as_a_string_is_that_word_everywhere(demo_model):
    vectors = embedcli.load(demo_model)
    assert vectors.most_similar("king", negative="man", topn=3) == vectors.most_similar(["king"], ["man"], topn=3)
    assert vectors.most_similar_cosmul("king", "man", topn=3) == vectors.most_similar_cosmul(["king"], ["man"], topn=3)
    found = vectors.analogy("man", "king", "woman", positive="queen", topn=2)
    assert found == vectors.analogy("man", "king", "woman", positive=["queen"], topn=2)


@pytest.mark.parametrize("topn", [-1, 2.5, "3", None])
def test_a_topn_that_is_no_count_is_refused(demo_model, topn):
    from embedcli.errors import UsageError

    with pytest.raises(UsageError, match="topn must be a whole number"):
        embedcli.load(demo_model).most_similar("king", topn=topn)


def test_the_matrix_can_be_fine_tuned_without_touching_the_model(demo_model):
    import torch

    vectors = embedcli.load(demo_model)
    embedding = torch.nn.Embedding.from_pretrained(vectors.matrix, freeze=False)
    optimizer = torch.optim.SGD(embedding.parameters(), lr=1.0)
    embedding(torch.tensor([0, 1])).sum().backward()
    optimizer.step()  # writes into the memory-mapped weights: a copy-on-write page, never the file
    assert not torch.equal(vectors.matrix[0], torch.from_numpy(np.array(vectors.array[0])))
    assert np.array_equal(embedcli.load(demo_model).array[0], vectors.array[0])


def test_a_word_with_surrounding_spaces_is_the_word(demo_model):
    vectors = embedcli.load(demo_model)
    assert " king " in vectors and vectors.index(" king ") == vectors.index("king")


def test_a_query_word_loses_the_invisible_characters_the_corpus_lost(demo_model):
    """A soft hyphen or zero-width space pasted from a web page: the default tokenizer removes them from queries too."""
    vectors = embedcli.load(demo_model)
    assert vectors.index("ki\u00adng") == vectors.index("\u200bKing\u200e") == vectors.index("king")
    result = run_cli("lookup", "ki\u00adng", "--model", demo_model, "-k", "1", "--json")
    assert result.code == 0, result.stderr  # before: "'ki\u00adng' is not in the vocabulary"
    assert json.loads(result.stdout)["ki\u00adng"][0]["word"] != "king"  # its neighbours, itself left out


def test_vectors_near_float32s_limits_still_have_cosines():
    """Imported vectors may hold values whose float32 squares overflow (1e20) or vanish (1e-40):
    their lengths are summed in float64; a row whose cosine still overflows is no answer, and a
    query word is never its own neighbour."""
    matrix = np.array([[1e20] * 3, [1e-40, 1e-40, 0], [1, 2, 3], [-1, 0.5, 2], [3e38] * 3], dtype=np.float32)
    vectors = Vectors(["big", "small", "normal", "other", "huge"], torch.from_numpy(matrix))
    assert vectors.similarity("big", "normal") == pytest.approx(6 / (3**0.5 * 14**0.5), abs=1e-6)  # gensim: 0.0 then
    assert vectors.similarity("small", "small") == 1.0 and vectors.similarity("small", "normal") == pytest.approx(3 / (2**0.5 * 14**0.5), abs=1e-6)
    neighbours = vectors.most_similar("normal", topn=10)
    assert [word for word, _ in neighbours] == ["big", "other", "small"]  # "huge" overflows; "normal" is the query
    assert all(np.isfinite(score) for _, score in neighbours)


def test_json_stays_json_where_stdout_cannot_encode_a_word(tmp_path):
    """Under a Latin-1 stdout a word outside it came out as Python's \\U0001f468 escape, which JSON does not know."""
    emoji = "\U0001F468\u200d\U0001F469"
    (tmp_path / "e.vec").write_text(f"3 2\n{emoji} 1 0\nx 0 1\ny 1 1\n", encoding="utf-8")
    assert run_cli("import", tmp_path / "e.vec", "--out", tmp_path / "m").code == 0
    result = run_cli("lookup", "x", "--model", tmp_path / "m", "-k", "2", "--json", env={"PYTHONIOENCODING": "latin-1"})
    assert result.code == 0, result.stderr
    assert {entry["word"] for entry in json.loads(result.stdout)["x"]} == {emoji, "y"}


def test_imported_vectors_find_a_word_typed_in_another_unicode_form(tmp_path):
    """Imported vectors have no tokenizer normaliser: a decomposed 'café' (macOS input) now finds the composed one."""
    (tmp_path / "v.vec").write_text("2 2\ncaf\u00e9 1 0\nx 0 1\n", encoding="utf-8")
    assert run_cli("import", tmp_path / "v.vec", "--out", tmp_path / "m").code == 0
    vectors = embedcli.load(tmp_path / "m")
    assert vectors.index("cafe\u0301") == 0 and "cafe\u0301" in vectors
    (tmp_path / "pairs.tsv").write_text("cafe\u0301\tx\t1\nx\tx\t2\ncaf\u00e9\tx\t3\n", encoding="utf-8")
    from embedcli.evaluate import evaluate_pairs

    assert evaluate_pairs(vectors, tmp_path / "pairs.tsv").to_dict()["oov_percent"] == 0.0
