"""Words found and numbered by whole-array operations equal Python's split and HuggingFace's pre-tokenizer."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedcli import vocab, wordids
from embedcli.wordids import WordIds, split_ascii_words, split_whitespace

# every kind of byte the splitters treat differently: str.split's ASCII and Unicode spaces (28-31
# included), HuggingFace's word and other characters, NUL, multi-byte letters, the replacement character,
# invisible format characters (the 'default' normalizer removes them) and format characters that show
PIECES = ["a", "Z", "_", "7", "'", ".", "--", " ", "\t", "\x0b", "\x0c", "\r", "\x1c", "\x1f", "\x00", "\x85", "\xa0",
          "\u2028", "\u3000", "é", "中", "\ufffd", "x" * 15, "y" * 16, "ab" * 20, "\U0001f600", "Σ", "ﬁ", "\u0301", "Ⅻ",
          "İ", "ẞ", "ǅ", "Ａ", "㎏", "\u1100", "\u1161", "\u0345", "\u00ad", "\u200b", "\u200d", "٣", "Ⓐ", "½",
          "\ufeff", "\u2060", "\u200e", "\u202e", "\u061c", "\U000e0001", "\U000e0067", "\u0600"]


def first_sight(words: list[str]) -> tuple[list[int], list[str]]:
    """The reference: each word's id, numbered in order of first sight, and the words by id."""
    ids: dict[str, int] = {}
    return [ids.setdefault(word, len(ids)) for word in words], list(ids)


def check(table: WordIds, found: np.ndarray, expected_words: list[str], known: dict[str, int]) -> None:
    expected = [known.setdefault(word, len(known)) for word in expected_words]
    assert found.tolist() == expected
    assert table.words == list(known)


lines_of = st.lists(st.lists(st.sampled_from(PIECES), max_size=12).map("".join), min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(st.lists(lines_of, min_size=1, max_size=4))
def test_whitespace_words_are_str_split_numbered_in_order_of_first_sight(batches):
    table, known = WordIds(), {}
    for lines in batches:
        buffer, starts, ends, lengths = split_whitespace(lines)
        check(table, table.ids(buffer, starts, ends), [word for line in lines for word in line.split()], known)
        assert lengths.tolist() == [len(line.split()) for line in lines]


ascii_lines = st.lists(st.lists(st.sampled_from([piece for piece in PIECES if piece.isascii()]), max_size=12).map("".join),
                       min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(ascii_lines)
def test_ascii_words_are_what_the_default_tokenizer_splits(lines):
    reference = vocab.new_tokenizer("default")
    expected = [
        [word for word, _ in reference.pre_tokenizer.pre_tokenize_str(reference.normalizer.normalize_str(line))]
        for line in lines
    ]
    table = WordIds()
    buffer, starts, ends, lengths = split_ascii_words(lines)
    check(table, table.ids(buffer, starts, ends), [word for words in expected for word in words], {})
    assert lengths.tolist() == [len(words) for words in expected]


@pytest.mark.parametrize("through", ["numpy", "huggingface"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # the same patch for every input
@given(lines=lines_of)
def test_default_words_of_any_script_are_what_huggingface_splits(monkeypatch, through, lines):
    """Python's NFKC with numpy's splitting, or HuggingFace's own calls where the two would differ."""
    if through == "huggingface":
        monkeypatch.setattr(vocab, "_normalizes_alike", lambda character: False)
    lines = [line.replace("\r", " ") for line in lines]
    reference = vocab.new_tokenizer("default")
    expected = [
        [word for word, _ in reference.pre_tokenizer.pre_tokenize_str(reference.normalizer.normalize_str(line))]
        for line in lines
    ]
    table = WordIds()
    ids, lengths = vocab._first_sight_ids(lines, table, "default")
    check(table, ids, [word for words in expected for word in words], {})
    assert lengths.tolist() == [len(words) for words in expected]


def test_a_hundred_thousand_words_grow_the_table_and_keep_their_ids():
    generator = random.Random(3)
    vocabulary = [f"{generator.choice('abc')}{index}" + "é" * generator.randrange(10) for index in range(100_000)]
    table, known = WordIds(), {}
    for _ in range(6):
        words = generator.choices(vocabulary[: generator.randrange(1, len(vocabulary))], k=50_000)
        buffer, starts, ends, _ = split_whitespace([" ".join(words[start : start + 30]) for start in range(0, len(words), 30)])
        check(table, table.ids(buffer, starts, ends), words, known)
    assert len(table._ids) > 2 * len(known) - len(table._long) > 100_000 / 2  # grew, and stays at most half full
    assert table.ids_of_lines("\n".join(vocabulary[:1000])).tolist() == [known[word] for word in vocabulary[:1000]]


def test_words_sharing_one_hash_are_still_told_apart(monkeypatch):
    """Every key hashed alike: one probe chain through the whole table, and sorting the keys themselves."""
    monkeypatch.setattr(wordids, "_mix", lambda keys: np.zeros(len(keys), dtype=np.uint64))
    words = [f"w{index % 300}" for index in range(2000)] + ["w1", "a" * 15, "a" * 14, "a" * 14 + "\x00"]
    table = WordIds()
    buffer, starts, ends, _ = split_whitespace([" ".join(words)])
    check(table, table.ids(buffer, starts, ends), words, {})


@pytest.mark.parametrize("text", ["", "\n\n", "one", "é\nè"])
def test_words_joined_by_newlines(text):
    table = WordIds()
    words = [word for word in text.split("\n") if word]
    assert table.ids_of_lines(text).tolist() == first_sight(words)[0]
    assert table.ids_of_lines("\n".join(words)).tolist() == first_sight(words)[0]  # known now, the same ids


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.booleans(), max_size=6), max_size=12))
def test_kept_tokens_are_counted_per_line_with_empty_lines_anywhere(lines):
    flags = np.array([flag for line in lines for flag in line], dtype=bool)
    lengths = np.array([len(line) for line in lines], dtype=np.int64)
    assert vocab._true_per_line(flags, lengths).tolist() == [sum(line) for line in lines]
