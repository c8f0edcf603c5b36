"""evaluate: the numbers gensim gives on the same vectors, and malformed lines skipped with their numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from embedcli.evaluate import evaluate_analogies, evaluate_pairs, read_pairs
from embedcli.vectors import Vectors

from .conftest import DEMO_ANALOGIES, run_cli


def test_evaluate_command_on_the_demo(demo_model, tmp_path):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("# word word score\nking\tqueen\t9\nking paris 1\ncat\tcats\t8\nbroken\nwalk\twalked\tx\nfrance\tparis\t7\n")
    result = run_cli("evaluate", "--model", demo_model, "--analogies", DEMO_ANALOGIES, "--pairs", pairs, "--json")
    assert result.code == 0, result.stderr
    payload = json.loads(result.stdout)
    analogies = payload["analogies"][0]
    assert analogies["accuracy"] >= 0.9 and analogies["questions"] == 840 and analogies["skipped_oov"] == 0
    assert [section["section"] for section in analogies["sections"]] == ["gender", "capital", "plural", "tense"]
    scored = payload["pairs"][0]
    assert scored["pairs"] == 4 and scored["malformed_lines"] == [5, 6]
    assert "skipped 2 malformed lines: 5, 6" in result.stderr
    table = run_cli("evaluate", "--model", demo_model, "--analogies", DEMO_ANALOGIES)
    assert table.code == 0 and "analogy accuracy" in table.stdout and "gender" in table.stdout


def test_evaluation_files_with_a_byte_order_mark_and_windows_line_ends(demo_model, tmp_path):
    analogies, pairs = tmp_path / "a.txt", tmp_path / "p.txt"
    analogies.write_bytes("\ufeff: gender\r\nman king woman queen\r\n".encode("utf-8"))
    pairs.write_bytes("\ufeffking queen 9\r\nman woman 8\r\nking man 3\r\n".encode("utf-8"))
    result = run_cli("evaluate", "--model", demo_model, "--analogies", analogies, "--pairs", pairs, "--json")
    assert result.code == 0 and not result.stderr, result.stderr
    payload = json.loads(result.stdout)
    assert [section["section"] for section in payload["analogies"][0]["sections"]] == ["gender"]
    assert payload["pairs"][0]["pairs"] == 3


def test_an_undefined_correlation_is_nan_and_null_in_json(demo_model, tmp_path):
    pairs = tmp_path / "p.txt"
    pairs.write_text("king queen 1\nman woman 1\nparis france 1\n")  # all gold scores equal
    result = run_cli("evaluate", "--model", demo_model, "--pairs", pairs, "--json")
    assert result.code == 0, result.stderr
    scored = json.loads(result.stdout)["pairs"][0]
    assert scored["spearman"] is None and scored["pearson"] is None


def test_evaluate_needs_a_file(demo_model, tmp_path):
    result = run_cli("evaluate", "--model", demo_model)
    assert result.code == 2 and "give --analogies FILE and/or --pairs FILE" in result.stderr
    result = run_cli("evaluate", "--model", demo_model, "--pairs", tmp_path / "nope.txt")
    assert result.code == 2 and "does not exist" in result.stderr


@pytest.fixture(scope="module")
def benchmark_vectors():
    """Random vectors for every word of gensim's evaluation files, some in two spellings."""
    datapath = pytest.importorskip("gensim.test.utils").datapath
    words: list[str] = []
    for name in ("questions-words.txt", "wordsim353.tsv", "simlex999.txt"):
        for line in open(datapath(name), encoding="utf-8"):
            if not line.startswith((":", "#")):
                words += line.replace("\t", " ").split()[:4 if name.startswith("questions") else 2]
    unique = list(dict.fromkeys(word.lower() for word in words))
    rng = np.random.default_rng(0)
    unique = unique[: int(len(unique) * 0.9)] + [word.capitalize() for word in unique[:50]]  # OOV and case
    base = rng.standard_normal((len(unique), 16)).astype(np.float32)
    return Vectors(unique, torch.from_numpy(base)), datapath


def test_analogy_and_pair_scores_equal_gensims(benchmark_vectors):
    keyed_vectors = pytest.importorskip("gensim.models").KeyedVectors
    vectors, datapath = benchmark_vectors
    keyed = keyed_vectors(vectors.dim)
    keyed.add_vectors(vectors.words, vectors.matrix.numpy())
    for restrict in (300_000, 2000):
        ours = evaluate_analogies(vectors, datapath("questions-words.txt"), restrict_vocab=restrict)
        score, sections = keyed.evaluate_word_analogies(datapath("questions-words.txt"), restrict_vocab=restrict)
        assert abs(ours.accuracy - score) < 0.002
        for mine, theirs in zip(ours.sections, sections):
            assert (mine.name, mine.correct, mine.incorrect) == (theirs["section"], len(theirs["correct"]), len(theirs["incorrect"]))
        for name in ("wordsim353.tsv", "simlex999.txt"):
            mine = evaluate_pairs(vectors, datapath(name), restrict_vocab=restrict)
            pearson, spearman, oov = keyed.evaluate_word_pairs(datapath(name), restrict_vocab=restrict)
            assert abs(mine.spearman - spearman[0]) < 0.002 and abs(mine.pearson - pearson[0]) < 0.002
            assert abs(mine.oov_percent - oov) < 1e-9


@pytest.mark.parametrize("quiet", [[], ["--quiet"]])  # --quiet hides the progress bar, not the scores
def test_train_evaluates_after_every_epoch(tmp_path, small_corpus, quiet):
    result = run_cli("train", small_corpus, "--out", tmp_path / "model", "--epochs", "2", "--eval-analogies", DEMO_ANALOGIES, *quiet)
    assert result.code == 0, result.stderr
    assert [line.split(",")[0] for line in result.stderr.splitlines() if line.startswith("epoch ")] == ["epoch 1/2", "epoch 2/2"]
    evaluation = json.loads((tmp_path / "model" / "config.json").read_text())["training"]["evaluation"]
    assert [entry["epoch"] for entry in evaluation] == [1, 2]
    assert 0 <= evaluation[-1]["analogies"]["accuracy"] <= 1


def test_a_word_with_itself_is_exactly_one_and_ties_rank_as_gensims(benchmark_vectors, tmp_path):
    keyed_vectors = pytest.importorskip("gensim.models").KeyedVectors
    vectors, _ = benchmark_vectors
    keyed = keyed_vectors(vectors.dim)
    keyed.add_vectors(vectors.words, vectors.matrix.numpy())
    words = vectors.words[:400]
    assert all(vectors.similarity(word, word) == 1.0 for word in words)
    assert all(-1.0 <= vectors.similarity(words[0], word) <= 1.0 for word in words)
    # Same-word pairs tie at 1 (float32 rounding used to put them at 0.99999994 or 1.0000001 and
    # break the tie at random). gensim rounds the same way, so compare on words it scores exactly 1.
    same = [word for word in words if keyed.similarity(word, word) == 1.0][:30]
    rng = np.random.default_rng(1)
    lines = [f"{word}\t{word}\t10" for word in same]
    lines += [f"{words[a]}\t{words[b]}\t{rng.uniform(0, 10):.2f}" for a, b in rng.integers(0, len(words), (70, 2)) if a != b]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("\n".join(lines) + "\n")
    mine = evaluate_pairs(vectors, pairs)
    pearson, spearman, _ = keyed.evaluate_word_pairs(str(pairs))
    assert abs(mine.spearman - spearman[0]) < 1e-9 and abs(mine.pearson - pearson[0]) < 1e-6


def test_too_few_pairs_is_nan_and_the_analogies_still_print(demo_model, tmp_path):
    pairs = tmp_path / "few.txt"
    pairs.write_text("king queen 9\nzzzz yyyy 3\n")  # one pair in the vocabulary
    result = run_cli("evaluate", "--model", demo_model, "--analogies", DEMO_ANALOGIES, "--pairs", pairs, "--json")
    assert result.code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["analogies"][0]["accuracy"] >= 0.9
    assert payload["pairs"][0]["spearman"] is None and payload["pairs"][0]["oov_percent"] == 50.0
    assert "fewer than two pairs have both words in the vocabulary; the correlations are undefined (NaN)" in result.stderr
    table = run_cli("evaluate", "--model", demo_model, "--pairs", pairs)
    assert table.code == 0 and "Spearman nan" in table.stdout and "50.0% out of vocabulary" in table.stdout


@pytest.mark.parametrize("option", ["--analogies", "--pairs"])
def test_a_file_without_a_usable_line_is_refused_for_both_kinds(demo_model, tmp_path, option):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n" if option == "--pairs" else "# nothing\n: section\n\n")  # '#' comments both
    result = run_cli("evaluate", "--model", demo_model, option, empty)
    assert result.code == 2 and "nothing to evaluate on" in result.stderr and len(result.stderr.splitlines()) == 1


def test_the_wrong_kind_of_file_names_the_right_option(demo_model, tmp_path):
    pairs, questions = tmp_path / "pairs.tsv", tmp_path / "questions.txt"
    pairs.write_text("king\tqueen\t9\nman\twoman\t8\n")
    questions.write_text(": gender\nman king woman queen\nboy girl man woman\n")
    result = run_cli("evaluate", "--model", demo_model, "--analogies", pairs)
    assert result.code == 2 and "no line is an analogy question" in result.stderr and "use --pairs" in result.stderr
    result = run_cli("evaluate", "--model", demo_model, "--pairs", questions)
    assert result.code == 2 and "no line is a word pair with a score" in result.stderr and "use --analogies" in result.stderr


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_pairs_file_is_named_with_how_to_convert(demo_model, tmp_path, encoding):
    pairs = tmp_path / "pairs.txt"
    pairs.write_bytes("king queen 9\nman woman 8\nparis france 3\n".encode(encoding))
    result = run_cli("evaluate", "--model", demo_model, "--pairs", pairs)
    assert result.code == 2 and "is UTF-16 text" in result.stderr and "iconv -f UTF-16" in result.stderr


def test_gold_scores_that_are_not_finite_are_malformed_lines(demo_model, tmp_path):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("king queen 9\nman woman nan\nking man inf\nparis france 7\ncat cats 8\n")
    result = run_cli("evaluate", "--model", demo_model, "--pairs", pairs, "--json")
    assert result.code == 0, result.stderr
    scored = json.loads(result.stdout)["pairs"][0]
    assert scored["malformed_lines"] == [2, 3] and scored["pairs"] == 3 and scored["pearson"] is not None


def test_train_refuses_a_folder_or_the_wrong_kind_of_evaluation_file_before_training(tmp_path, small_corpus):
    result = run_cli("train", small_corpus, "--out", tmp_path / "model", "--eval-pairs", tmp_path)
    assert result.code == 2 and "--eval-pairs" in result.stderr and "is a folder" in result.stderr
    questions = tmp_path / "questions.txt"
    questions.write_text(": gender\nman king woman queen\n")
    result = run_cli("train", small_corpus, "--out", tmp_path / "model", "--eval-pairs", questions)
    assert result.code == 2 and "use --analogies" in result.stderr and not (tmp_path / "model").exists()


def test_evaluation_words_are_normalised_as_the_corpus_was(tmp_path):
    """An evaluation file saved on macOS spells 'café' in NFD: lookup finds the corpus's NFC word, and so must evaluate."""
    import unicodedata

    nfd = lambda text: unicodedata.normalize("NFD", text)  # noqa: E731
    words = ["café", "crème", "thé", "eau", "rhône", "x"]
    vectors = Vectors(
        words, torch.eye(6) + 0.1, normalize_word=lambda word: unicodedata.normalize("NFKC", word).lower()
    )
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(f"{nfd('café')}\tx\t5\n{nfd('Crème')}\tx\t3\n{nfd('THÉ')}\teau\t1\n")
    assert evaluate_pairs(vectors, pairs).pairs == 3
    analogies = tmp_path / "analogies.txt"
    analogies.write_text(f": drinks\n{nfd('café')} {nfd('crème')} {nfd('thé')} eau\n")
    result = evaluate_analogies(vectors, analogies)
    assert result.skipped_oov == 0 and result.sections[0].correct + result.sections[0].incorrect == 1


def test_training_scores_each_epoch_as_evaluate_does_with_unnormalised_words(tmp_path):
    """train --eval-pairs built its vectors without the tokenizer's normalizer: an NFD file scored 0 pairs."""
    import unicodedata

    from embedcli.train import train

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("café crème thé eau x y\n" * 200)
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("".join(f"{unicodedata.normalize('NFD', a)}\t{b}\t{score}\n" for a, b, score in
                             [("café", "crème", 5), ("Thé", "eau", 3), ("CAFÉ", "x", 1)]))
    train([corpus], {"eval_pairs": str(pairs), "epochs": 1, "min_count": 1, "dim": 8}, out_dir=tmp_path / "m", progress=False)
    evaluation = json.loads((tmp_path / "m" / "config.json").read_text())["training"]["evaluation"]
    assert evaluation[-1]["pairs"]["pairs"] == 3


def test_pair_lines_may_end_in_a_tab_or_spaces(tmp_path):
    """A trailing tab made every space-separated line tab-split, and the whole file was refused."""
    path = tmp_path / "pairs.txt"
    path.write_text("king queen 5\t\nman\twoman\t3\t\nking man 2  \r\n", encoding="utf-8")
    pairs, bad = read_pairs(path)
    assert pairs == [("KING", "QUEEN", 5.0), ("MAN", "WOMAN", 3.0), ("KING", "MAN", 2.0)] and bad == []
