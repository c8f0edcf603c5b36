"""Every export format through its real reader, back through `embedcli import`, and pretrained
vectors written by gensim and fastText into embedcli."""

from __future__ import annotations

import io
import json
import re
import warnings

import numpy as np
import pytest
import torch

import embedcli
from embedcli.errors import UsageError
from embedcli.export import export, import_vectors
from embedcli.vectors import Vectors

from .conftest import run_cli

gensim_models = pytest.importorskip("gensim.models", reason="gensim is in the test extra")
KeyedVectors = gensim_models.KeyedVectors

FILES = {"npy": "e.npy", "txt": "e.txt", "bin": "e.bin", "glove": "e.glove.txt", "tsv": "vectors.tsv", "safetensors": "e.safetensors"}


@pytest.fixture(scope="module")
def vectors(demo_model) -> Vectors:
    return embedcli.load(demo_model)


@pytest.mark.parametrize("fmt", list(FILES))
def test_every_format_reads_back_in_its_real_reader(vectors, demo_model, tmp_path, fmt):
    out = tmp_path / FILES[fmt]
    result = run_cli("export", "--format", fmt, "--model", demo_model, "--out", out)
    assert result.code == 0, result.stderr
    matrix, words = vectors.matrix.numpy(), vectors.words
    if fmt == "npy":
        read = np.load(out, allow_pickle=False)
        read_words = (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()
    elif fmt in ("txt", "bin", "glove"):
        keyed = KeyedVectors.load_word2vec_format(out, binary=fmt == "bin", no_header=fmt == "glove")
        read, read_words = keyed.vectors, keyed.index_to_key
    elif fmt == "tsv":  # TensorBoard: tab-separated floats, and a one-column metadata file without header
        lines = out.read_text().splitlines()
        read = np.array([[float(value) for value in line.split("\t")] for line in lines], dtype=np.float32)
        read_words = (tmp_path / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    else:
        from safetensors import safe_open
        from safetensors.torch import load_file

        read = load_file(out)["vectors"].numpy()
        with safe_open(out, "pt") as handle:
            read_words = json.loads(handle.metadata()["words"])
    assert list(read_words) == words
    assert read.dtype == np.float32 and np.array_equal(read, matrix)


@pytest.mark.parametrize("fmt", ["txt", "bin", "glove"])
def test_word2vec_formats_come_back_through_import_exactly(vectors, tmp_path, fmt):
    out = tmp_path / FILES[fmt]
    export(vectors, fmt, out)
    result = run_cli("import", out, "--out", tmp_path / "model")
    assert result.code == 0, result.stderr
    back = embedcli.load(tmp_path / "model")
    assert back.words == vectors.words and torch.equal(back.matrix, vectors.matrix)
    assert json.loads((tmp_path / "model" / "config.json").read_text())["source"]["format"] == fmt


def test_limit_normalize_and_float16(vectors, tmp_path):
    export(vectors, "npy", tmp_path / "e.npy", limit=10, normalize=True, dtype="float16")
    matrix = np.load(tmp_path / "e.npy")
    assert matrix.shape == (10, vectors.dim) and matrix.dtype == np.float16
    assert np.allclose(np.linalg.norm(matrix.astype(np.float32), axis=1), 1, atol=1e-3)
    assert (tmp_path / "vocab.txt").read_text().splitlines() == vectors.words[:10]
    with pytest.raises(UsageError, match="float32 only"):
        export(vectors, "bin", tmp_path / "e.bin", dtype="float16")


def test_words_a_format_cannot_hold_are_left_out_and_counted(tmp_path):
    odd = Vectors(["good", "two words", "tab\tword", ""], torch.eye(4))
    text = export(odd, "txt", tmp_path / "e.txt")
    assert text.rows == 1 and text.left_out == 3
    assert KeyedVectors.load_word2vec_format(tmp_path / "e.txt").index_to_key == ["good"]
    tsv = export(odd, "tsv", tmp_path / "vectors.tsv")  # every row, the labels escaped where needed
    assert tsv.rows == 4 and (tmp_path / "metadata.tsv").read_text().splitlines() == ["good", "two words", "tab\\tword", '""']
    assert export(odd, "safetensors", tmp_path / "e.safetensors").left_out == 0


def test_word_lists_stay_in_step_with_the_rows_whatever_the_words_hold(tmp_path):
    """A word holding any line break splitlines() knows would shift every later word by a row:
    npy's vocab.txt leaves it out (with its row), TSV's metadata.tsv writes it escaped."""
    words = ["a", "form\x0cfeed", "b", "line\u2028sep", "c", "mac\rend", "d", "next\x85line", "e"]
    exported = export(Vectors(words, torch.eye(len(words))), "npy", tmp_path / "e.npy")
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines() == ["a", "b", "c", "d", "e"] and exported.left_out == 4
    matrix = np.load(tmp_path / "e.npy", allow_pickle=False)
    assert [int(row.argmax()) for row in matrix] == [0, 2, 4, 6, 8]
    assert export(Vectors(words, torch.eye(len(words))), "tsv", tmp_path / "vectors.tsv").left_out == 0
    labels = (tmp_path / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    assert labels == ["a", "form\\x0cfeed", "b", "line\\u2028sep", "c", "mac\\rend", "d", "next\\x85line", "e"]


@pytest.mark.parametrize(("fmt", "side"), [("npy", "vocab.txt"), ("tsv", "metadata.tsv")])
def test_export_refuses_an_out_that_is_the_word_list_the_format_writes_beside_it(demo_model, tmp_path, fmt, side):
    (tmp_path / side).write_text("an earlier export's words\n")
    result = run_cli("export", "--format", fmt, "--model", demo_model, "--out", tmp_path / side)
    lines = result.stderr.strip().splitlines()
    assert result.code == 2 and len(lines) == 1, result.stderr
    assert f"is the {side} that the {fmt} format writes beside the vectors" in lines[0]
    assert [path.name for path in tmp_path.iterdir()] == [side]
    assert (tmp_path / side).read_text() == "an earlier export's words\n"


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_import_skips_a_byte_order_mark_and_reads_compressed_files(tmp_path, suffix):
    import gzip

    text = "\ufeff2 3\nking 1 2 3\nqueen 4 5 6\n".encode("utf-8")
    path = tmp_path / f"v.vec{suffix}"
    path.write_bytes(gzip.compress(text) if suffix else text)
    result = run_cli("import", path, "--out", tmp_path / "model")
    assert result.code == 0, result.stderr
    loaded = embedcli.load(tmp_path / "model")
    assert loaded.words == ["king", "queen"] and loaded.vector("queen").tolist() == [4, 5, 6]


@pytest.mark.parametrize("binary", [False, True])
def test_import_reads_gensim_files_and_gives_gensims_neighbours(tmp_path, binary):
    keyed = KeyedVectors(vector_size=20)
    generator = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)] + ["café", "naïve"]
    keyed.add_vectors(words, generator.standard_normal((len(words), 20)).astype(np.float32))
    path = tmp_path / ("g.bin" if binary else "g.txt")
    keyed.save_word2vec_format(path, binary=binary)
    assert run_cli("import", path, "--out", tmp_path / "model").code == 0
    ours = embedcli.load(tmp_path / "model")
    for word in ("w0", "café", "w77"):
        theirs = keyed.most_similar(word, topn=5)
        found = ours.most_similar(word, topn=5)
        assert [w for w, _ in found] == [w for w, _ in theirs]
        assert np.allclose([s for _, s in found], [s for _, s in theirs], atol=1e-5)


def test_import_reads_a_fasttext_vec_file(tmp_path):
    fasttext = pytest.importorskip("fasttext", reason="fastText is in the bench extra")
    generator = np.random.default_rng(0)  # fastText reports NaN on tiny vocabularies such as the demo's
    words = [f"w{i}" for i in range(3000)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join(generator.choice(words, 12)) for _ in range(20000)))
    for _ in range(10):  # fastText itself randomly stops with "Encountered NaN" on small corpora
        try:
            model = fasttext.train_unsupervised(
                str(corpus), model="skipgram", dim=20, minCount=5, epoch=1, minn=0, maxn=0, thread=2, verbose=0
            )
            break
        except RuntimeError:
            continue
    else:
        pytest.skip("fastText kept reporting NaN")
    vec = tmp_path / "ft.vec"
    with open(vec, "w", encoding="utf-8") as stream:  # the .vec layout fastText's own tool writes
        stream.write(f"{len(model.words)} {model.get_dimension()}\n")
        for word in model.words:
            stream.write(word + " " + " ".join(f"{x:.5f}" for x in model.get_word_vector(word)) + " \n")
    assert run_cli("import", vec, "--out", tmp_path / "model").code == 0
    assert embedcli.load(tmp_path / "model").words == model.words


def test_to_embedding_and_embedding_bag(vectors):
    ids = torch.tensor([0, 3, vectors.index("queen")])
    assert torch.equal(vectors.to_embedding()(ids), vectors.matrix[ids])
    bag = vectors.to_embedding_bag(mode="mean")
    assert torch.allclose(bag(ids.unsqueeze(0))[0], vectors.matrix[ids].mean(0))
    assert not vectors.to_embedding().weight.requires_grad and vectors.to_embedding(freeze=False).weight.requires_grad
    with pytest.raises(UsageError, match="mode must be one of mean, sum, max, got 'median'"):
        vectors.to_embedding_bag(mode="median")  # torch would take it, then fail at the first call


BAD_IMPORTS = {
    "truncated text": (b"3 2\na 1 2\nb 3 4\n", "truncated"),
    "header promises fewer": (b"1 2\na 1 2\nb 3 4\n", "holds more"),
    "duplicate word": (b"2 2\na 1 2\na 3 4\n", "duplicate word 'a'"),
    "too few values": (b"2 3\na 1 2 3\nb 3 4\n", "line 3: expected a word and 3 values"),
    "not a number": (b"1 2\na 1 x\n", "line 2: a value is not a number"),
    "truncated binary": (b"2 2\na " + np.ones(2, "<f4").tobytes() + b"\nb " + b"\0\0", "truncated"),
    "empty": (b"", "is empty"),
    "header of no vectors": (b"0 2\n", "line 1: the header '0 2' promises 0 vectors of 2 values"),
    "header of no values": (b"2 0\na\nb\n", "line 1: the header '2 0' promises 2 vectors of 0 values"),
    "header with a negative number": (b"2 -2\na 1\nb 2\n", "line 1: the header '2 -2' promises"),
    "a word without values": (b"hello\n", "line 1: expected a word and its values, found 'hello'"),
}


@pytest.mark.parametrize("case", list(BAD_IMPORTS))
def test_bad_vectors_files_get_one_clear_line(tmp_path, case):
    data, words = BAD_IMPORTS[case]
    path = tmp_path / "v.txt"
    path.write_bytes(data)
    result = run_cli("import", path, "--out", tmp_path / "model")
    lines = result.stderr.strip().splitlines()
    assert result.code == 2 and len(lines) == 1 and words in lines[0], result.stderr
    assert not (tmp_path / "model" / "config.json").exists()


@pytest.mark.parametrize("rows", [b"7 1 2\n8 3 4\n", b"\n\r\n7 1 2\n8 3 4\n"])  # blank lines first, as text may have
def test_format_bin_on_a_text_file_says_so(tmp_path, rows):
    path = tmp_path / "v.txt"
    path.write_bytes(b"2 2\n" + rows)
    result = run_cli("import", path, "--format", "bin", "--out", tmp_path / "model")
    lines = result.stderr.strip().splitlines()
    assert result.code == 2 and len(lines) == 1, result.stderr
    assert "does not look like word2vec binary" in lines[0] and "--format txt" in lines[0]
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("fmt", ["txt", "bin"])
@pytest.mark.parametrize("length", [70_000, 1_200_000])
def test_auto_tells_text_from_binary_whatever_the_length_of_the_first_word(tmp_path, fmt, length):
    """A word longer than any look-ahead (training cuts words at about a million characters) must not turn text into binary."""
    words = ["a" * length, "b", "c" * (length // 2)]
    exported = Vectors(words, torch.randn(3, 5))
    export(exported, fmt, tmp_path / f"e.{fmt}")
    result = run_cli("import", tmp_path / f"e.{fmt}", "--out", tmp_path / "model")
    assert result.code == 0 and f"({fmt})" in result.stderr, result.stderr
    back = embedcli.load(tmp_path / "model")
    assert back.words == words and torch.equal(back.matrix, exported.matrix)


@pytest.mark.parametrize("values", [[[1.0], [0.0]], [[0.5], [-2.0]], [[1.0, 2.0], [3.0, 4.0]]])
def test_auto_reads_binary_vectors_of_few_values_as_binary(tmp_path, values):
    """The bytes of one or two float32 values hold no space, so they once split like a text row."""
    exported = Vectors(["a", "b"], torch.tensor(values))
    export(exported, "bin", tmp_path / "e.bin")
    result = run_cli("import", tmp_path / "e.bin", "--out", tmp_path / "model")
    assert result.code == 0 and "(bin)" in result.stderr, result.stderr
    assert torch.equal(embedcli.load(tmp_path / "model").matrix, exported.matrix)


def test_invalid_utf8_words_are_replaced_and_counted(tmp_path):
    path = tmp_path / "v.txt"
    path.write_bytes(b"2 2\ncaf\xe9 1 2\nok 3 4\n")
    result = run_cli("import", path, "--out", tmp_path / "model")
    assert result.code == 0 and "1 bytes of words were not valid UTF-8" in result.stderr
    assert embedcli.load(tmp_path / "model").words == ["caf\ufffd", "ok"]


def test_an_import_with_force_ends_an_unfinished_training_there(tmp_path):
    out = tmp_path / "model"
    (out / ".checkpoint").mkdir(parents=True)
    (out / ".checkpoint" / "state.json").write_text("{}")
    (tmp_path / "v.txt").write_text("2 2\na 1 2\nb 3 4\n")
    assert run_cli("import", tmp_path / "v.txt", "--out", out).code == 2  # refused without --force
    assert run_cli("import", tmp_path / "v.txt", "--out", out, "--force").code == 0
    assert not (out / ".checkpoint").exists()
    assert "nothing to resume" in run_cli("train", "--resume", out).stderr  # nothing can resume over the import


def _cli(monkeypatch, capsys, *args) -> tuple[int, list[str]]:
    """The CLI run in this process (no interpreter to start): its exit code and its stderr lines."""
    import sys

    from embedcli import cli

    monkeypatch.setattr(sys, "argv", ["embedcli", *map(str, args)])
    try:
        cli.main()
        code = 0
    except SystemExit as done:
        code = done.code
    return code, capsys.readouterr().err.strip().splitlines()


def _imported(tmp_path, text: bytes, name: str = "v.txt", **options) -> Vectors:
    (tmp_path / name).write_bytes(text)
    import_vectors(tmp_path / name, tmp_path / "model", **options)
    return embedcli.load(tmp_path / "model")


# --- import: binary or text --------------------------------------------------------------------


def test_auto_reads_binary_whose_first_value_starts_with_a_line_feed(tmp_path):
    """0.01 as float32 is 0A D7 23 3C: its first byte was taken for the end of a text line."""
    matrix = np.array([[0.01, 0.5, 0.25], [1, 2, 3]], dtype=np.float32)
    keyed = KeyedVectors(3)
    keyed.add_vectors(["hello", "world"], matrix)
    keyed.save_word2vec_format(tmp_path / "v.bin", binary=True)
    assert import_vectors(tmp_path / "v.bin", tmp_path / "model").format == "bin"
    assert np.array_equal(embedcli.load(tmp_path / "model").matrix.numpy(), matrix)
    export(embedcli.load(tmp_path / "model"), "bin", tmp_path / "own.bin")  # the README's round trip
    assert import_vectors(tmp_path / "own.bin", tmp_path / "copy").format == "bin"
    assert np.array_equal(embedcli.load(tmp_path / "copy").matrix.numpy(), matrix)


def test_auto_tells_binary_from_text_for_any_first_row(tmp_path):
    """Random first rows (and planted ones starting with a line feed, printable bytes then one, or
    a digit then one: "7\\n" reads as a text row of one value), written as word2vec binary with and
    without word2vec.c's newline, and as text: each is detected as what it is."""
    from embedcli.export import _header, _Reader, _resolve_format, _text_lines

    generator = np.random.default_rng(7)
    planted = [np.array([0.01], np.float32), np.frombuffer(b"ab\n\x3c", "<f4"), np.frombuffer(b"\n\n\n\x3f", "<f4"), np.frombuffer(b"7\n\xa8<", "<f4")]
    for trial in range(3000):
        dim = int(generator.integers(1, 9))
        matrix = (generator.standard_normal((2, dim)) * 0.3).astype(np.float32)
        if trial < 4 * len(planted):
            matrix[0, :1] = planted[trial % 4][:1]
        binary = b"".join(word + b" " + row.astype("<f4").tobytes() + (b"\n" if trial % 2 else b"") for word, row in zip([b"first", b"second"], matrix))
        text = _text_lines(["first", "second"], matrix)
        for data, kind in ((binary, "bin"), (text, "txt")):
            reader = _Reader(io.BytesIO(f"2 {dim}\n".encode() + data), tmp_path / "v")
            first = reader.readline()
            assert _resolve_format("auto", _header(first), first, reader, tmp_path / "v") == kind, (trial, matrix[0].tobytes())
    for trial in range(4):  # and end to end, through the reader
        matrix = torch.from_numpy((generator.standard_normal((50, 4)) * 0.3).astype(np.float32))
        matrix[0, 0] = 0.01
        export(Vectors([f"w{i}" for i in range(50)], matrix), "bin", tmp_path / f"{trial}.bin")
        assert import_vectors(tmp_path / f"{trial}.bin", tmp_path / f"m{trial}").format == "bin"
        assert torch.equal(embedcli.load(tmp_path / f"m{trial}").matrix, matrix)


# Words whose characters str.isprintable() refuses: Persian's zero-width non-joiner, an emoji
# sequence's joiner, a soft hyphen, no-break and ideographic spaces, a BOM, a form feed.
UNPRINTABLE_WORDS = ["می\u200cشود", "\U0001F468\u200d\U0001F469", "co\u00adop", "ab\u00a0c", "ab\u3000c", "\ufeffx", "x\x0cy"]


@pytest.mark.parametrize("dim", [50, 300])
def test_auto_reads_rows_of_any_word_as_what_they_are(tmp_path, dim):
    """A long text row also reads as binary; then the next row decides, whatever characters its word
    holds (str.isprintable() made these text files binary: a wrong word list, or garbage with --limit).
    gensim reads such text files as they are."""
    generator = np.random.default_rng(dim)
    for second in UNPRINTABLE_WORDS:
        words = ["first", second, "third"]
        matrix = np.round(generator.standard_normal((3, dim)), 4).astype(np.float32)
        text = "".join(f"{word} {' '.join(f'{value:.4f}' for value in row)}\n" for word, row in zip(words, matrix))
        binary = b"".join(word.encode() + b" " + row.astype("<f4").tobytes() + b"\n" for word, row in zip(words, matrix))
        for fmt, data in (("txt", f"3 {dim}\n{text}".encode()), ("bin", f"3 {dim}\n".encode() + binary)):
            path = tmp_path / f"{dim}-{UNPRINTABLE_WORDS.index(second)}.{fmt}"
            path.write_bytes(data)
            for limit in (0, 2):
                model = tmp_path / f"model-{limit}-{path.name}"
                assert import_vectors(path, model, limit=limit).format == fmt, (second, fmt)
                loaded = embedcli.load(model)
                assert loaded.words == words[: limit or 3], (second, fmt)
                assert np.array_equal(loaded.matrix.numpy(), matrix[: limit or 3])


# --- import: rows, values and blank lines ------------------------------------------------------

MORE_VALUES = {
    "a word2vec row": (b"2 3\nhello 0.1 0.2 0.3 0.4\nworld 0.5 0.6 0.7 0.8\n", "line 2: expected a word and 3 values, found 4 values"),
    "a later row": (b"2 3\nhello 0.1 0.2 0.3\nworld 0.5 0.6 0.7 0.8 0.9\n", "line 3: expected a word and 3 values, found 5 values"),
    "a GloVe row": (b"hello 0.1 0.2 0.3\nworld 0.5 0.6 0.7 0.8\n", "line 2: expected a word and 3 values, found 4 values"),
    "a GloVe row after blank lines": (b"\n\nhello 1 2\n\nworld 1 2 3\n", "line 5: expected a word and 2 values, found 3 values"),
    "a row of numbers": (b"1 2\n1 2 3 4\n", "line 2: expected a word and 2 values, found 3 values"),
}


@pytest.mark.parametrize("case", list(MORE_VALUES))
def test_a_row_with_more_values_than_the_others_is_refused(tmp_path, case):
    """Not read as a word with a space ('hello 0.1') and the values after it: that drops a value silently."""
    data, message = MORE_VALUES[case]
    with pytest.raises(UsageError, match=re.escape(message)):
        _imported(tmp_path, data)
    assert not (tmp_path / "model").exists()


def test_words_with_spaces_and_number_like_words_still_import(tmp_path):
    """GloVe 840B holds words with spaces ('. . .'); a first token that is a number is a word."""
    vectors = _imported(tmp_path, b"2017 1 2\n. . . 3 4\nnew york 5 6\n2 7 8\n")
    assert vectors.words == ["2017", ". . .", "new york", "2"] and vectors.vector("new york").tolist() == [5, 6]


BLANK_LINES = {
    "GloVe, a blank line at the end": b"a 1 0\nb 0 1\n\n",
    "GloVe, two at the end": b"a 1 0\nb 0 1\n\n\n",
    "GloVe, spaces and CRLF at the end": b"a 1 0\r\nb 0 1\r\n  \r\n\t\r\n",
    "GloVe, blank lines first and between": b"\n \na 1 0\n\n\nb 0 1",
    "word2vec, blank lines at the end": b"2 2\na 1 0\nb 0 1\n\n \n\n",
    "word2vec, blank lines first and between": b"\n2 2\n\na 1 0\n  \nb 0 1\n",
}


@pytest.mark.parametrize("case", list(BLANK_LINES))
def test_blank_lines_are_skipped_in_every_text_format(tmp_path, case):
    vectors = _imported(tmp_path, BLANK_LINES[case])
    assert vectors.words == ["a", "b"] and vectors.matrix.tolist() == [[1, 0], [0, 1]]


# --- import: files of other kinds --------------------------------------------------------------


def _fasttext_model(path):
    path.write_bytes((793712314).to_bytes(4, "little") + (12).to_bytes(4, "little") + bytes(200))


def _gensim_pickle(path):
    keyed = KeyedVectors(3)
    keyed.add_vectors(["a", "b"], np.eye(2, 3, dtype=np.float32))
    keyed.save(str(path))


def _torch_file(path):
    torch.save({"weight": torch.zeros(2, 3)}, path)


def _zip(path):
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("glove.6B.50d.txt", "a 1 2\n")


FOREIGN = {
    "cc.en.bin": (_fasttext_model, "is a fastText model (.bin), not word2vec or GloVe vectors; import its .vec file instead"),
    "w2v.kv": (_gensim_pickle, "is a Python pickle (such as a gensim .model or .kv file), not word2vec or GloVe vectors; embedcli never loads pickles"),
    "weights.pt": (_torch_file, "is a PyTorch file (torch.save), not word2vec or GloVe vectors; embedcli never loads pickles"),
    "glove.6B.zip": (_zip, "is a zip archive; unzip it and import the vectors file inside"),
}


@pytest.mark.parametrize("fmt", ["auto", "bin"])
@pytest.mark.parametrize("name", list(FOREIGN))
def test_import_names_fasttext_models_pickles_and_zips(tmp_path, name, fmt):
    write, message = FOREIGN[name]
    write(tmp_path / name)
    with pytest.raises(UsageError, match=re.escape(message)) as refused:
        import_vectors(tmp_path / name, tmp_path / "model", fmt=fmt)
    assert "glove" not in str(refused.value).split(";")[-1]  # never the advice for headerless text
    assert not (tmp_path / "model").exists()


def test_format_bin_of_a_file_without_a_header_suggests_glove_only_for_text(tmp_path):
    (tmp_path / "g.txt").write_bytes(b"a 1 2\nb 3 4\n")
    with pytest.raises(UsageError, match="no 'count dim' header line, so it is not word2vec binary; for vectors without one use --format glove"):
        import_vectors(tmp_path / "g.txt", tmp_path / "model", fmt="bin")
    (tmp_path / "blob").write_bytes(b"\x01\x02 \xff\xfe\x00\n")
    with pytest.raises(UsageError, match=r"no 'count dim' header line, so it is not word2vec binary$"):
        import_vectors(tmp_path / "blob", tmp_path / "model", fmt="bin")


# --- export ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["npy", "safetensors"])
def test_float16_export_refuses_values_it_cannot_hold(tmp_path, fmt):
    big = Vectors(["small", "big"], torch.tensor([[0.5, 0.25, 1.0], [1.0, -70000.0, 2.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning either
        with pytest.raises(UsageError, match=re.escape("--dtype float16 cannot hold the value -70000 (of the word 'big'): float16 holds at most 65504")) as refused:
            export(big, fmt, tmp_path / f"e.{fmt}", dtype="float16")
        assert "use --dtype float32, or --normalize" in str(refused.value)
        assert list(tmp_path.iterdir()) == []
        export(big, fmt, tmp_path / f"e.{fmt}", dtype="float16", normalize=True)
        (tmp_path / "edge").mkdir()
        export(Vectors(["edge"], torch.tensor([[65504.0, -65504.0]])), fmt, tmp_path / "edge" / f"e.{fmt}", dtype="float16")


def test_float16_refusal_is_one_line_from_the_cli(tmp_path, monkeypatch, capsys):
    _imported(tmp_path, b"2 3\nbig 70000 1 2\nsmall 0.5 0.25 1\n")
    code, lines = _cli(monkeypatch, capsys, "export", "-m", tmp_path / "model", "-f", "npy", "--dtype", "float16", "--out", tmp_path / "v16.npy")
    assert code == 2 and len(lines) == 1 and lines[0].startswith("embedcli: error: --dtype float16 cannot hold the value 70000"), lines
    assert not (tmp_path / "v16.npy").exists() and not (tmp_path / "vocab.txt").exists()


def _projector(folder) -> tuple[int, list[str]]:
    """What TensorBoard's projector (vz_projector's data provider) reads from vectors.tsv and metadata.tsv:
    lines split at \\n after a UTF-8 decode that drops a leading byte-order mark, those that JavaScript's
    trim() leaves empty skipped; a first metadata line holding a tab is a header."""
    javascript_space = "\t\n\x0b\x0c\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"

    def lines(name: str) -> list[str]:
        text = (folder / name).read_bytes().decode("utf-8").removeprefix("\ufeff")
        return [line for line in text.split("\n") if line.strip(javascript_space)]

    labels = lines("metadata.tsv")
    assert "\t" not in labels[0]
    return len(lines("vectors.tsv")), labels


def test_tsv_metadata_keeps_one_visible_label_per_row_for_the_projector(tmp_path):
    words = ["\ufeff", "alpha", " ", "\u3000\xa0", "", "tab\tword", "line\nbreak", "\ufeffstart", "mac\rend", "beta"]
    exported = export(Vectors(words, torch.randn(len(words), 3)), "tsv", tmp_path / "vectors.tsv")
    assert exported.rows == len(words) and exported.left_out == 0
    rows, labels = _projector(tmp_path)
    assert rows == len(words) and labels == [
        "\\ufeff", "alpha", "\\x20", "\\u3000\\xa0", '""', "tab\\tword", "line\\nbreak", "\\ufeffstart", "mac\\rend", "beta"
    ]
    assert (tmp_path / "metadata.tsv").read_text(encoding="utf-8").splitlines() == labels  # and for Python readers


def test_the_left_out_warning_names_the_words_and_a_format_that_keeps_them(tmp_path, monkeypatch, capsys):
    empty_only = Vectors(["a", "", "b"], torch.eye(3))
    assert export(empty_only, "txt", tmp_path / "e.txt").warning() == (
        "left out the empty word: the txt format cannot hold it (readers split its rows at whitespace, "
        "and each row must start with its word); safetensors keeps every word"
    )
    kept = export(empty_only, "safetensors", tmp_path / "e.safetensors")  # the words are a JSON list: "" is one
    assert kept.rows == 3 and kept.warning() is None
    from safetensors import safe_open

    with safe_open(tmp_path / "e.safetensors", "np") as handle:
        assert json.loads(handle.metadata()["words"]) == ["a", "", "b"]
    odd = Vectors(["a", "", "tab\tword", "new\nline"], torch.eye(4))
    assert export(odd, "npy", tmp_path / "odd.npy").warning().startswith(
        "left out the empty word and 2 words with a tab or line break (such as 'tab\\tword'): the npy format cannot hold them ("
    )
    _imported(tmp_path, b"3 2\na 1 0\n 0 1\nb 1 1\n")
    code, lines = _cli(monkeypatch, capsys, "export", "-m", tmp_path / "model", "-f", "txt", "--out", tmp_path / "v.txt")
    assert code == 0 and lines[0] == "embedcli: warning: " + export(empty_only, "txt", tmp_path / "again.txt").warning()


@pytest.mark.parametrize(("fmt", "name", "side"), [("npy", "{}.npy", "vocab.txt"), ("tsv", "{}.tsv", "metadata.tsv")])
def test_a_second_export_into_a_folder_keeps_the_first_ones_word_list(tmp_path, fmt, name, side):
    first, second = Vectors(["a", "b", "c"], torch.eye(3)), Vectors(["p", "q"], torch.eye(2))
    export(first, fmt, tmp_path / name.format("x"))
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    with pytest.raises(UsageError, match=re.escape(f"{tmp_path / side} lists the 3 words of {tmp_path / name.format('x')}")) as refused:
        export(second, fmt, tmp_path / name.format("y"))
    assert str(refused.value).endswith("export into another folder")
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before  # nothing written
    retrained = Vectors(["d", "e", "f", "g"], torch.eye(4))
    export(retrained, fmt, tmp_path / name.format("x"))  # x again, after training again: its own pairing
    export(retrained, fmt, tmp_path / name.format("normalized"), normalize=True)  # the same words: the pairing holds
    assert (tmp_path / side).read_text().splitlines() == ["d", "e", "f", "g"]
