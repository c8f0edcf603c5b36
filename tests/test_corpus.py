"""Reading corpora: compression, folders, stdin, huge lines, invalid bytes; and the token cache."""

from __future__ import annotations

import bz2
import gzip
import lzma

import pytest

from embedcli.config import DEFAULTS
from embedcli.corpus import BLOCK_BYTES, Corpus
from embedcli.errors import CorpusError
from embedcli.vocab import prepare

TEXT = "the cat sat on the mat\nthe dog sat on the log\n"


@pytest.mark.parametrize("suffix, compress", [(".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress)])
def test_compressed_files_read_like_plain_text(tmp_path, suffix, compress):
    path = tmp_path / f"corpus.txt{suffix}"
    path.write_bytes(compress(TEXT.encode()))
    assert list(Corpus([path])) == TEXT.splitlines()


def test_a_folder_means_its_text_files_in_order(tmp_path):
    (tmp_path / "b.txt").write_text("second\n")
    (tmp_path / "a.txt").write_text("first\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt.gz").write_bytes(gzip.compress(b"third\n"))
    (tmp_path / "picture.png").write_bytes(b"\x89PNG\0\0")
    (tmp_path / ".hidden").write_text("secret\n")
    assert list(Corpus([tmp_path])) == ["first", "second", "third"]


def test_corpus_can_be_read_twice(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(TEXT)
    corpus = Corpus([path, path])
    assert list(corpus) == list(corpus) == TEXT.splitlines() * 2


def test_a_line_without_newline_streams_in_bounded_pieces(tmp_path):
    words = [f"w{i % 1000}" for i in range(600_000)]  # about 3 MB, no newline at all
    path = tmp_path / "one-line.txt"
    path.write_text(" ".join(words))
    pieces = list(Corpus([path]))
    assert len(pieces) > 1
    assert all(len(piece) <= BLOCK_BYTES for piece in pieces)
    assert " ".join(pieces).split() == words  # no word is cut in two


def test_a_word_megabytes_long_is_cut_into_pieces_of_at_most_a_block(tmp_path):
    path = tmp_path / "one-word.txt"
    path.write_text("x" * (3 * BLOCK_BYTES + 12345) + "\nshort line\n")
    pieces = list(Corpus([path]))
    assert [len(piece) for piece in pieces] == [BLOCK_BYTES] * 3 + [12345, len("short line")]


def test_invalid_bytes_are_replaced_and_counted(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(b"caf\xe9 ok\n\xff\xfe fine\n")
    corpus = Corpus([path])
    assert list(corpus) == ["caf\ufffd ok", "\ufffd\ufffd fine"]
    assert corpus.invalid_bytes == 3


def test_a_byte_order_mark_and_windows_line_ends_are_not_text(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes("\ufeffthe cat\r\nthe dog\r\n".encode("utf-8"))
    assert [line.split() for line in Corpus([path])] == [["the", "cat"], ["the", "dog"]]


def test_a_lone_carriage_return_ends_a_line_as_in_old_mac_files(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(b"the cat\rthe dog\r\rmixed\r\nends\n")
    assert [line.split() for line in Corpus([path])] == [["the", "cat"], ["the", "dog"], ["mixed"], ["ends"]]


def test_a_utf16_corpus_is_named_as_such(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes("hello world\n".encode("utf-16") * 50)
    with pytest.raises(CorpusError, match="UTF-16 text; embedcli reads UTF-8: convert it first, e.g. iconv"):
        Corpus([path])


def test_missing_file_is_a_corpus_error(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        Corpus([tmp_path / "nope"])


def test_the_token_cache_is_reused_for_the_same_corpus_and_settings(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(TEXT * 10)
    cfg = DEFAULTS.with_overrides(min_count=1)
    first = prepare(Corpus([path]), cfg, tmp_path / "cache")
    again = prepare(Corpus([path]), cfg, tmp_path / "cache")
    other = prepare(Corpus([path]), cfg.with_overrides(min_count=21), tmp_path / "cache")
    assert not first.cached and again.cached and not other.cached
    assert first.vocabulary.words == again.vocabulary.words
    assert (first.stream.tokens == again.stream.tokens).all()
    assert first.vocabulary.words[0] == "the" and first.vocabulary.counts[0] == 40
    assert other.vocabulary.words == ["the"]


def test_encoding_keeps_sentences_and_drops_rare_words(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("a a b\nc\na b b b\n")
    encoded = prepare(Corpus([path]), DEFAULTS.with_overrides(min_count=2), tmp_path / "cache")
    words = encoded.vocabulary.words
    assert words == ["b", "a"]  # most frequent first; 'c' is below min-count
    assert [words[row] for row in encoded.stream.tokens] == ["a", "a", "b", "a", "b", "b", "b"]
    assert encoded.stream.offsets.tolist() == [0, 3, 7]


def test_default_tokenizer_lowercases_and_splits_punctuation(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("The Cat, the cat. THE CAT!\n" * 5)
    encoded = prepare(Corpus([path]), DEFAULTS, tmp_path / "cache")
    assert set(encoded.vocabulary.words) == {"the", "cat", ",", ".", "!"}
    whitespace = prepare(Corpus([path]), DEFAULTS.with_overrides(tokenizer="whitespace"), tmp_path / "cache2")
    assert "Cat," in whitespace.vocabulary.words


def test_a_saved_tokenizer_can_be_reused(tmp_path, demo_model):
    path = tmp_path / "c.txt"
    path.write_text("the king and the queen\n" * 10)
    cfg = DEFAULTS.with_overrides(tokenizer=str(demo_model / "tokenizer.json"), min_count=1)
    encoded = prepare(Corpus([path]), cfg, tmp_path / "cache")
    assert set(encoded.vocabulary.words) == {"the", "king", "and", "queen"}
