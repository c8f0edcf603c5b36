"""The Python API given the wrong kind of thing: one EmbedcliError with a clear message, never a raw TypeError."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import embedcli
from embedcli.config import TrainConfig
from embedcli.errors import ConfigError, ModelError, UnknownWordError, UsageError

from .conftest import DEMO, run_cli


@pytest.fixture(scope="module")
def vectors(demo_model):
    return embedcli.load(demo_model)


@pytest.fixture(scope="module")
def keyed(demo_model, tmp_path_factory):
    """The demo model as gensim reads it from `embedcli export -f txt`."""
    keyed_vectors = pytest.importorskip("gensim.models").KeyedVectors
    path = tmp_path_factory.mktemp("export") / "vectors.txt"
    result = run_cli("export", "--model", demo_model, "--format", "txt", "--out", path)
    assert result.code == 0, result.stderr
    return keyed_vectors.load_word2vec_format(str(path))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda v: v.most_similar(5), "positive must be a word, a list of words or a vector of 50 numbers, got int 5"),
        (lambda v: v.most_similar(positive=5), "positive must be a word"),
        (lambda v: v.most_similar("king", negative=3.5), "negative must be a word"),
        (lambda v: v.most_similar(b"king"), "give words as str, not bytes: b'king'; decode it first"),
        (lambda v: v.most_similar([b"king"]), "not bytes"),
        (lambda v: v.most_similar(["king", 7]), "positive: give words (str) or vectors of 50 numbers, got int 7"),
        (lambda v: v.most_similar_cosmul(5), "positive must be a word"),
        (lambda v: v.analogy("man", "king", "woman", positive=5), "positive must be a word"),
        (lambda v: v.analogy(1, "king", "woman"), "negative: give words (str) or vectors"),
        (lambda v: v.most_similar(np.zeros(3)), "must hold 50 numbers (1-D), got an array of shape (3,)"),
        (lambda v: v.most_similar(np.zeros((2, 50))), "shape (2, 50)"),
        (lambda v: v.most_similar(np.array(["a"] * 50)), "dtype <U1"),
        (lambda v: v.most_similar(np.full(50, np.nan)), "NaN or infinite"),
        (lambda v: v.similarity("king", 3), "not a row number 3; vectors.words[3] is the word of that row"),
        (lambda v: v.similarity(None, "king"), "give a word (str), got NoneType None"),
        (lambda v: v[0], "not a row number 0"),
        (lambda v: v[b"king"], "not bytes"),
        (lambda v: v.index(2.5), "give a word (str), got float 2.5"),
    ],
)
def test_a_query_given_no_word_is_a_usage_error(vectors, call, message):
    with pytest.raises(UsageError) as caught:
        call(vectors)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_no_query_words_is_a_usage_error(vectors):
    for positive in (None, (), []):
        with pytest.raises(UsageError, match="give at least one word"):
            vectors.most_similar(positive)


def test_membership_and_iteration_work_as_for_a_dict_of_words(vectors):
    assert 5 not in vectors and None not in vectors and b"king" not in vectors and ("king",) not in vectors
    assert "king" in vectors
    assert list(vectors) == vectors.words and len(list(vectors)) == len(vectors)
    assert dict.fromkeys(vectors).keys() == dict.fromkeys(vectors.words).keys()


def test_a_list_of_words_gives_their_rows_stacked(vectors, keyed):
    rows = vectors[["king", "queen"]]
    assert rows.shape == (2, vectors.dim)
    assert np.array_equal(rows[0], vectors["king"]) and np.array_equal(rows[1], vectors["queen"])
    assert np.allclose(rows, keyed[["king", "queen"]], atol=1e-6)
    assert vectors[[]].shape == (0, vectors.dim)
    with pytest.raises(UsageError, match="not a row number 0"):
        vectors[[0, 1]]


def test_a_vector_as_a_query_term_equals_gensims(vectors, keyed):
    import torch

    king, woman, man = vectors["king"], vectors["woman"], vectors["man"]
    for positive, negative in [(king, []), ([king, "woman"], ["man"]), ([king * 3, woman], [man]), (["king"], [man])]:
        ours = vectors.most_similar(positive, negative, topn=5)
        theirs = keyed.most_similar(positive, negative, topn=5)
        assert [word for word, _ in ours] == [word for word, _ in theirs]
        assert np.allclose([score for _, score in ours], [score for _, score in theirs], atol=1e-5)
    assert vectors.most_similar(king, topn=1)[0][0] == "king"  # a vector excludes no word, as in gensim
    assert vectors.most_similar(torch.from_numpy(king), topn=5) == vectors.most_similar(king, topn=5)
    assert vectors.most_similar([king.astype(np.float64)], topn=5) == vectors.most_similar(king, topn=5)
    unit = king / np.linalg.norm(king)
    ours = vectors.most_similar_cosmul([unit, "woman"], ["man"], topn=5)
    theirs = keyed.most_similar_cosmul([unit, "woman"], ["man"], topn=5)
    assert [word for word, _ in ours] == [word for word, _ in theirs]
    assert np.allclose([score for _, score in ours], [score for _, score in theirs], atol=1e-5)
    # cosmul scales a vector to length 1, so its scores are the same at any length
    assert np.allclose(
        [s for _, s in vectors.most_similar_cosmul(king * 7, topn=3)], [s for _, s in vectors.most_similar_cosmul(unit, topn=3)]
    )
    found = vectors.analogy("man", "king", "woman", positive=[vectors["queen"]], topn=2)
    assert found == vectors.most_similar(["king", "woman", vectors["queen"]], ["man"], topn=2)


def test_an_unknown_setting_in_python_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^unknown setting 'dimm'; known settings: tokenizer, min_count"):
        TrainConfig(dimm=3)
    with pytest.raises(ConfigError, match="unknown setting 'dimm'"):
        dataclasses.replace(TrainConfig(), dimm=3)
    with pytest.raises(ConfigError, match="'tokenizer' is given twice"):
        TrainConfig("default", tokenizer="whitespace")
    with pytest.raises(ConfigError, match="at most 26 settings"):
        TrainConfig(*range(27))
    assert TrainConfig(dim=16).dim == 16 and TrainConfig("whitespace").tokenizer == "whitespace"


def test_train_takes_a_dict_of_settings(tmp_path, small_corpus):
    from embedcli.train import train

    result = train([small_corpus], {"dim": 8, "epochs": 1, "min_count": 2}, out_dir=tmp_path / "m", progress=False)
    assert embedcli.load(result.model_dir).dim == 8
    for settings, message in [
        ({"dimm": 8}, "settings: unknown setting 'dimm'"),
        ({"dim": None}, "settings: 'dim' must be int, got NoneType None"),
        ({"dim": 0}, "--dim must be at least 1"),
        ("configs/demo.toml", "settings must be a TrainConfig or a dict of settings, got str"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            train([small_corpus], settings, out_dir=tmp_path / "refused", progress=False)
        assert not (tmp_path / "refused").exists()


def test_load_given_no_folder_says_what_to_give(tmp_path, demo_model, keyed):
    with pytest.raises(UsageError, match="give the model's folder as a str or path, got NoneType None"):
        embedcli.load(None)
    with pytest.raises(ModelError, match="is a file, not a model: a model is a folder written by embedcli train") as caught:
        embedcli.load(DEMO)
    assert "--out" not in str(caught.value)
    vectors_file = tmp_path / "vectors.txt"
    keyed.save_word2vec_format(str(vectors_file))
    with pytest.raises(ModelError, match=f"embedcli import {vectors_file} --out DIR"):
        embedcli.load(vectors_file)
    glove = tmp_path / "glove.txt"
    glove.write_text("king 0.1 -0.2 3e-1\nqueen 0.2 0.1 0.0\n", encoding="utf-8")
    with pytest.raises(ModelError, match="is a file of word vectors, not a model folder"):
        embedcli.load(glove)
    with pytest.raises(ModelError, match=f"is a file of the model {demo_model}; give the folder"):
        embedcli.load(demo_model / "config.json")
    result = run_cli("lookup", "king", "--model", DEMO)
    assert result.code == 2 and "is a file, not a model" in result.stderr


def test_a_lone_surrogate_is_no_word(demo_model):
    """Python gives such strings for undecodable file names; the tokenizer's normaliser cannot encode them."""
    vectors = embedcli.load(demo_model)
    assert "\udc80" not in vectors
    with pytest.raises(UnknownWordError):
        vectors.index("\udc80")
