"""Reading corpora: compression, folders, stdin, huge lines, invalid bytes; and the token cache."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import sys

import numpy as np
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


def test_a_folder_leaves_out_hidden_files_and_the_model_folder_being_written(tmp_path):
    (tmp_path / "a.txt").write_text("first\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "COMMIT_EDITMSG").write_text("a commit message\n")
    model = tmp_path / "model"
    (model / ".cache").mkdir(parents=True)
    (model / "config.json").write_text('{"format": "embedcli-model"}\n')
    (model / ".cache" / "vocab.json").write_text('{"words": ["a"]}\n')
    corpus = Corpus([tmp_path], leave_out=[model])
    assert corpus.files == [tmp_path / "a.txt"] and list(corpus) == ["first"]
    assert len(Corpus([tmp_path / "model" / "config.json"], leave_out=[model]).files) == 1  # named: read
    with pytest.raises(CorpusError, match="is, or is inside, the model folder being written"):
        Corpus([model / ".cache"], leave_out=[model])


def test_a_folder_leaves_out_other_model_folders_in_it(tmp_path):
    """`train texts --out texts/model`, then `train texts --out elsewhere`: the first model is no text."""
    import embedcli
    from embedcli.train import train

    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("the cat sat on the mat\n" * 20)
    notes = texts / "notes"  # a config.json of something else is text like any other
    notes.mkdir()
    (notes / "config.json").write_text('{"format": "mine", "colour": "blue"}\n')
    settings = {"min_count": 1, "epochs": 1, "dim": 8}
    train([texts], settings, out_dir=texts / "model", progress=False)
    train([texts], settings, out_dir=tmp_path / "elsewhere", progress=False)
    words = set(embedcli.load(tmp_path / "elsewhere").words)
    assert {"cat", "blue"} <= words and not words & {"embedcli", "safetensors", "tokenizer"}, sorted(words)


def test_stdin_can_be_named_once_only():
    with pytest.raises(CorpusError, match="stdin can be read only once: name it once"):
        Corpus(["-", "-"])


def test_utf16_without_a_byte_order_mark_is_named_with_its_byte_order(tmp_path):
    for encoding in ("UTF-16LE", "UTF-16BE"):
        path = tmp_path / f"{encoding}.txt"
        path.write_bytes("hello world\n".encode(encoding) * 50)
        with pytest.raises(CorpusError, match=f"UTF-16 text; .* iconv -f {encoding} -t UTF-8 {path} > corpus-utf8.txt"):
            Corpus([path])


def test_a_compressed_utf16_file_is_told_how_to_convert_from_the_compressed_file(tmp_path):
    path = tmp_path / "c.txt.gz"
    path.write_bytes(gzip.compress("hello world\n".encode("utf-16") * 50))
    with pytest.raises(CorpusError, match=f"e.g. zcat {path} \\| iconv -f UTF-16 -t UTF-8 > corpus-utf8.txt"):
        Corpus([path])


def test_a_folder_skips_and_lists_files_that_are_not_text(tmp_path):
    (tmp_path / "a.txt").write_text("first\n")
    (tmp_path / "b.txt").write_bytes(bytes(range(256)) * 10)
    (tmp_path / "c.txt").write_bytes("second\n".encode("utf-16") * 20)
    corpus = Corpus([tmp_path])
    assert list(corpus) == ["first"]
    assert corpus.skipped == [(tmp_path / "b.txt", "binary"), (tmp_path / "c.txt", "UTF-16")]
    assert corpus.skipped_note() == f"2 files in the corpus folders are not UTF-8 text and were skipped, e.g. {tmp_path / 'c.txt'} (UTF-16)"
    assert Corpus([tmp_path / "a.txt"]).skipped_note() is None
    (tmp_path / "a.txt").unlink()
    with pytest.raises(CorpusError, match="holds no text files; skipped 2 that are not UTF-8 text, e.g. .*c.txt \\(UTF-16\\)"):
        Corpus([tmp_path])


def test_rare_nul_bytes_in_utf8_text_are_read_as_spaces(tmp_path):
    """A few NULs in text (damage, padding) do not make it binary; they separate words rather than join them."""
    lines = [" ".join(random.Random(line).choices(["the", "cat", "café", "sat", "naïve"], k=12)) for line in range(3000)]
    data = bytearray("\n".join(lines).encode())
    rng = random.Random(0)
    for position in rng.sample(range(len(data)), 50):
        data[position] = 0
    path = tmp_path / "c.txt"
    path.write_bytes(bytes(data))
    read = list(Corpus([path]))
    assert read == [line for line in data.replace(b"\0", b" ").decode(errors="replace").split("\n") if line.strip()]
    assert not any("\0" in line for line in read)


def _i32_cache_file(path):
    np.arange(5000, dtype=np.int32).tofile(path)  # what tokens.i32 of a token cache holds


def _executable(path):
    path.write_bytes(open(sys.executable, "rb").read(200_000))


@pytest.mark.parametrize("write", [
    lambda path: path.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + random.Random(1).randbytes(20_000)),
    lambda path: path.write_bytes(random.Random(2).randbytes(20_000)),  # compressed data: NULs are rare, as in text
    lambda path: path.write_bytes("the cat sat\n".encode("utf-16-le") * 500),
    _i32_cache_file,
    _executable,
], ids=["png", "random bytes", "utf-16", "int32 cache", "executable"])
def test_binary_files_are_still_refused(tmp_path, write):
    path = tmp_path / "c.txt"
    write(path)
    with pytest.raises(CorpusError, match="looks like a binary file|is UTF-16 text"):
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


@pytest.mark.parametrize("tokenizer", ["default", "whitespace"])
@pytest.mark.parametrize("source", ["file", "stdin"])
def test_words_of_invisible_characters_alone_do_not_end_reading_before_max_tokens(tmp_path, monkeypatch, source, tokenizer):
    """'default' removes a lone zero-width space or soft hyphen: reading must go on until max_tokens real tokens.

    From stdin the first block holds nothing but such words, and the spool must not stop there.
    """
    text = "\u200b \u00ad\ufeff " * (BLOCK_BYTES // 8) + "\n" + "a a a a \u00ad\nb b\nc c c\n"
    if source == "file":
        path = tmp_path / "c.txt"
        path.write_text(text, encoding="utf-8")
        corpus = Corpus([path], max_words=7)
    else:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
        corpus = Corpus(["-"], max_words=7).spool_stdin(tmp_path / "spool")
    cfg = DEFAULTS.with_overrides(tokenizer=tokenizer, min_count=1, max_tokens=7)
    encoded = prepare(corpus, cfg, tmp_path / "cache")
    assert encoded.corpus_tokens == 7
    if tokenizer == "default":
        words = encoded.vocabulary.words
        assert [words[row] for row in encoded.stream.tokens] == ["a"] * 4 + ["b"] * 2 + ["c"]
