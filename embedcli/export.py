"""Vectors in other tools' formats: one small writer per format, and the readers for `import`.

Every writer streams the matrix in slices (a 1M x 300 model is never copied whole) into a
temporary file that is renamed into place. Words that a format cannot hold (empty, or holding
whitespace for the word2vec and GloVe formats; empty, or holding a tab or line break for npy's
vocab.txt) are left out and counted; TSV writes every word, escaped where the projector would
lose it, and safetensors every word as it is.
"""

from __future__ import annotations

import codecs
import gzip
import json
import lzma
import os
import re
import shutil
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .corpus import _COMPRESSED, decode
from .errors import UsageError
from .store import (
    CONFIG,
    MODEL_FILES,
    ROWS_PER_WRITE,
    atomic_write,
    check_output_dir,
    locked,
    remove_checkpoint,
    save_model,
    scratch_matrix,
    write_tensors,
)
from .vectors import Vectors
from .vocab import new_tokenizer

DTYPES = {"float32": np.float32, "float16": np.float16}
FLOAT16_LARGEST = float(np.finfo(np.float16).max)  # 65504: a larger value becomes inf


@dataclass(frozen=True)
class Exported:
    """What an export wrote, and which words the format could not hold."""

    paths: list[Path]
    rows: int
    left_out: int
    format: str
    empty_left_out: bool = False  # the empty word is one of those left out
    example: str | None = None  # a left-out word other than the empty one

    def warning(self) -> str | None:
        """One line naming the words left out, why, and the format that keeps them; None if none was."""
        if not self.left_out:
            return None
        others = self.left_out - self.empty_left_out
        named = ["the empty word"] if self.empty_left_out else []
        if others:
            named.append(f"{others:,} {'word' if others == 1 else 'words'} with {CANNOT_HOLD[self.format][0]} (such as {self.example!r})")
        return (
            f"left out {' and '.join(named)}: the {self.format} format cannot hold {'it' if self.left_out == 1 else 'them'} "
            f"({CANNOT_HOLD[self.format][1]}); safetensors keeps every word"
        )


@dataclass(frozen=True)
class _Rows:
    """The rows to write, as an array-like that is sliced, normalised and cast a slice at a time."""

    vectors: Vectors
    keep: np.ndarray  # row numbers, most frequent first
    normalize: bool
    dtype: np.dtype

    @property
    def words(self) -> list[str]:
        return [self.vectors.words[row] for row in self.keep]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.keep), self.vectors.dim

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, part: slice) -> np.ndarray:
        return self.float32(part).astype(self.dtype, copy=False)

    def float32(self, part: slice) -> np.ndarray:
        """The rows of ``part`` as written, before the cast to ``dtype``."""
        matrix = self.vectors.array[self.keep[part]].astype(np.float32, copy=False)
        if self.normalize:
            matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        return matrix

    def largest(self) -> tuple[float, str]:
        """The value of largest magnitude in the rows as written, and its word."""
        value, word = 0.0, ""
        for start in range(0, len(self.keep), ROWS_PER_WRITE):
            part = self.float32(slice(start, start + ROWS_PER_WRITE))
            if part.size:
                row, column = divmod(int(np.abs(part).argmax()), part.shape[1])
                if abs(part[row, column]) > abs(value):
                    value, word = float(part[row, column]), self.vectors.words[self.keep[start + row]]
        return value, word

    def slices(self) -> Iterator[tuple[list[str], np.ndarray]]:
        """(words, matrix) slices of at most ROWS_PER_WRITE rows."""
        words = self.vectors.words
        for start in range(0, len(self.keep), ROWS_PER_WRITE):
            part = slice(start, start + ROWS_PER_WRITE)
            yield [words[row] for row in self.keep[part]], self[part]


def _holds_no_space(word: str) -> bool:
    return bool(word) and len(word.split()) == 1 and word == word.strip()


def _fits_a_line(word: str) -> bool:
    """Reads back as one line of vocab.txt: not empty, no tab, no line break of ``str.splitlines``."""
    return bool(word) and "\t" not in word and word.splitlines() == [word]


def _any_word(word: str) -> bool:
    return True


def _escape(char: str) -> str:
    """One character as a visible Python-style escape: \\t, \\n, \\r, \\xHH or \\uHHHH."""
    short = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
    code = ord(char)
    return short.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


# A tab (the projector's column separator), every line break str.splitlines() knows (the projector
# splits at \n; Python readers at all of them) and U+FEFF (the projector's decoder drops it as a
# byte-order mark at the start of the file and of every 1 MB block it reads).
_LABEL_ESCAPED = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\ufeff"
_LABEL_ESCAPES = {ord(char): _escape(char) for char in _LABEL_ESCAPED}
_NEEDS_ESCAPE = re.compile(f"[{_LABEL_ESCAPED}]")


def _label(word: str) -> str:
    """A word as one line of metadata.tsv that the TensorBoard projector shows as a label of its own.

    The projector skips a line that JavaScript's trim() leaves empty, which would shift every later
    label by a row; such a word (empty, or whitespace only) is written wholly escaped, and the empty
    word as "". Elsewhere only the characters of _LABEL_ESCAPES are escaped.
    """
    if word.strip() and not _NEEDS_ESCAPE.search(word):  # nearly every word
        return word
    if not word:
        return '""'
    if not word.replace("\ufeff", "").strip():  # str.strip() removes what isspace() calls whitespace
        return "".join(map(_escape, word))
    return word.translate(_LABEL_ESCAPES)


def _word_list(words: list[str], fmt: str) -> bytes:
    """The word list the npy (vocab.txt) and tsv (metadata.tsv) formats write beside the vectors."""
    line = _label if fmt == "tsv" else str
    return "".join(line(word) + "\n" for word in words).encode("utf-8")


def _text_lines(words: list[str], matrix: np.ndarray, *, separator: str = " ", with_words: bool = True) -> bytes:
    """Rows as text, each value with 9 significant digits (enough to give the float32 back exactly)."""
    row = separator.join(["%.9g"] * matrix.shape[1])
    values = matrix.astype(np.float32).tolist()
    if with_words:
        return "".join(word + separator + row % tuple(vector) + "\n" for word, vector in zip(words, values)).encode()
    return "".join(row % tuple(vector) + "\n" for vector in values).encode()


def _write_word2vec_text(rows: _Rows, out: Path, *, header: bool = True) -> list[Path]:
    def write(stream: BinaryIO) -> None:
        if header:
            stream.write(f"{len(rows.keep)} {rows.vectors.dim}\n".encode())
        for words, matrix in rows.slices():
            stream.write(_text_lines(words, matrix))

    atomic_write(out, write)
    return [out]


def _write_glove(rows: _Rows, out: Path) -> list[Path]:
    return _write_word2vec_text(rows, out, header=False)


def _write_word2vec_binary(rows: _Rows, out: Path) -> list[Path]:
    def write(stream: BinaryIO) -> None:
        stream.write(f"{len(rows.keep)} {rows.vectors.dim}\n".encode())
        for words, matrix in rows.slices():
            little = matrix.astype("<f4", copy=False)
            stream.write(b"".join(word.encode("utf-8") + b" " + vector.tobytes() + b"\n" for word, vector in zip(words, little)))

    atomic_write(out, write)
    return [out]


def _write_npy(rows: _Rows, out: Path) -> list[Path]:
    """A ``.npy`` matrix (row i is word i) and ``vocab.txt`` beside it, one word per line."""
    vocab_path = out.parent / SIDE_FILES["npy"]

    def write(stream: BinaryIO) -> None:
        dtype = np.dtype(rows.dtype).newbyteorder("<")
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (len(rows.keep), rows.vectors.dim)}
        np.lib.format.write_array_header_1_0(stream, header)
        for _, matrix in rows.slices():
            stream.write(matrix.astype(dtype, copy=False).tobytes())

    atomic_write(out, write)
    atomic_write(vocab_path, lambda stream: stream.write(_word_list(rows.words, "npy")))
    return [out, vocab_path]


def _write_tsv(rows: _Rows, out: Path) -> list[Path]:
    """TensorBoard projector files: ``vectors.tsv`` (tab-separated values) and ``metadata.tsv`` (one label a line)."""
    metadata_path = out.parent / SIDE_FILES["tsv"]

    def write(stream: BinaryIO) -> None:
        for words, matrix in rows.slices():
            stream.write(_text_lines(words, matrix, separator="\t", with_words=False))

    atomic_write(out, write)
    atomic_write(metadata_path, lambda stream: stream.write(_word_list(rows.words, "tsv")))
    return [out, metadata_path]


def _write_safetensors(rows: _Rows, out: Path) -> list[Path]:
    """One tensor ``vectors``; the words, in row order, as a JSON list in the metadata key ``words``."""
    metadata = {"format": "embedcli-vectors", "words": json.dumps(rows.words, ensure_ascii=False)}
    atomic_write(out, lambda stream: write_tensors(stream, {"vectors": rows}, metadata))
    return [out]


Writer = Callable[[_Rows, Path], list[Path]]
SIDE_FILES = {"npy": "vocab.txt", "tsv": "metadata.tsv"}  # the word list some formats write beside the vectors
FORMATS: dict[str, tuple[str, Writer, Callable[[str], bool]]] = {
    "npy": ("embeddings.npy", _write_npy, _fits_a_line),
    "txt": ("embeddings.txt", _write_word2vec_text, _holds_no_space),
    "bin": ("embeddings.bin", _write_word2vec_binary, _holds_no_space),
    "glove": ("embeddings.glove.txt", _write_glove, _holds_no_space),
    "tsv": ("vectors.tsv", _write_tsv, _any_word),
    "safetensors": ("embeddings.safetensors", _write_safetensors, _any_word),
}
# The words each format leaves out besides the empty word, and why, for the warning that names them.
_SPLIT_AT_WHITESPACE = "readers split its rows at whitespace, and each row must start with its word"
CANNOT_HOLD = {
    "npy": ("a tab or line break", "its vocab.txt holds one word a line: a line break would shift the words against the rows, and readers skip empty lines"),
    "txt": ("whitespace", _SPLIT_AT_WHITESPACE),
    "bin": ("whitespace", _SPLIT_AT_WHITESPACE),
    "glove": ("whitespace", _SPLIT_AT_WHITESPACE),
}


def export(
    vectors: Vectors,
    fmt: str,
    out: str | os.PathLike | None = None,
    *,
    limit: int = 0,
    normalize: bool = False,
    dtype: str = "float32",
) -> Exported:
    """Write ``vectors`` in format ``fmt`` to ``out`` (or the format's default name).

    ``limit`` keeps the most frequent words only; ``normalize`` writes unit vectors.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    if dtype not in DTYPES:
        raise UsageError(f"unknown --dtype '{dtype}'; choose float32 or float16")
    if limit < 0:
        raise UsageError(f"--limit must be 0 (all words) or more, got {limit}")
    if dtype != "float32" and fmt in ("txt", "glove", "tsv"):
        raise UsageError(f"--dtype applies to the npy and safetensors formats; the {fmt} format writes decimal text")
    if dtype != "float32" and fmt == "bin":
        raise UsageError("the word2vec binary format holds float32 only; drop --dtype or use --format npy")
    default_name, writer, fits = FORMATS[fmt]
    path = Path(out) if out is not None else Path(default_name)
    if out is not None and os.fspath(out).endswith(("/", os.sep)) and not path.is_dir():  # Path drops the slash
        raise UsageError(f"--out {os.fspath(out)}: folder {path} does not exist")
    if path.is_dir():
        path = path / default_name
    if not path.parent.is_dir():
        raise UsageError(f"--out {path}: folder {path.parent} does not exist")
    if vectors.source is not None and path.exists():
        for name in MODEL_FILES:
            if (vectors.source / name).exists() and os.path.samefile(path, vectors.source / name):
                raise UsageError(f"--out {path} is the model's own {name}; write the export to another file or folder")
    if path.name in MODEL_FILES and (path.parent / CONFIG).is_file():
        raise UsageError(
            f"--out {path} is the {path.name} of the embedcli model in {path.parent}; write the export to another file or folder"
        )
    side = path.parent / SIDE_FILES.get(fmt, "")
    if fmt in SIDE_FILES and (path.name == side.name or (path.exists() and side.exists() and os.path.samefile(path, side))):
        raise UsageError(
            f"--out {path} is the {side.name} that the {fmt} format writes beside the vectors; "
            f"name the vectors file otherwise, e.g. --out {path.parent / default_name}"
        )
    candidates = range(min(limit, len(vectors)) if limit else len(vectors))
    keep = np.fromiter((row for row in candidates if fits(vectors.words[row])), dtype=np.int64)
    rows = _Rows(vectors, keep, normalize, np.dtype(DTYPES[dtype]))
    if dtype == "float16":
        value, word = rows.largest()
        if abs(value) > FLOAT16_LARGEST:
            raise UsageError(
                f"--dtype float16 cannot hold the value {value:g} (of the word {word!r}): float16 holds at most "
                f"{FLOAT16_LARGEST:g}, and larger values would become inf; use --dtype float32, or --normalize"
            )
    if fmt in SIDE_FILES:
        _keep_pairings(path, fmt, rows.words)
    paths = writer(rows, path)
    left_out = [vectors.words[row] for row in candidates if not fits(vectors.words[row])] if len(keep) < len(candidates) else []
    return Exported(
        paths=paths,
        rows=len(keep),
        left_out=len(left_out),
        format=fmt,
        empty_left_out="" in left_out,
        example=next((word for word in left_out if word), None),
    )


def _keep_pairings(path: Path, fmt: str, words: list[str]) -> None:
    """Refuse to replace a word list that another export in the folder is paired with.

    npy and tsv always name their word list vocab.txt and metadata.tsv; a second export into the
    folder under another name would leave the first one's rows beside the second one's words. A
    re-export of the same file (after training again) replaces its own pairing, and is allowed.
    """
    side = path.parent / SIDE_FILES[fmt]
    if not side.is_file():
        return
    try:
        listed = side.read_bytes()
    except OSError:  # the write itself will say why
        return
    lines = len(listed.decode("utf-8", errors="replace").splitlines())
    paired = next(
        (
            other
            for other in sorted(path.parent.glob(f"*{Path(FORMATS[fmt][0]).suffix}"))
            if other.name not in (path.name, side.name) and other.is_file() and _rows_in(other, fmt) == lines
        ),
        None,
    )
    if paired is not None and listed != _word_list(words, fmt):
        raise UsageError(
            f"--out {path}: {side} lists the {lines:,} words of {paired}, and this export would replace them with "
            f"others (the {fmt} format always names its word list {side.name}); export into another folder"
        )


def _rows_in(path: Path, fmt: str) -> int | None:
    """The number of vector rows in a file an npy or tsv export may have written; None if it is no such file."""
    try:
        if fmt == "tsv":
            return _count_lines(path)
        with open(path, "rb") as stream:
            version = np.lib.format.read_magic(stream)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape = read_header(stream)[0]
    except (OSError, ValueError, SyntaxError, TypeError):
        return None
    return shape[0] if len(shape) == 2 else None


IMPORT_FORMATS = ("auto", "txt", "vec", "bin", "glove")
_BROKEN_STREAM = (gzip.BadGzipFile, EOFError, lzma.LZMAError, zlib.error)  # a damaged .gz, .xz or cut-off file


@dataclass(frozen=True)
class Imported:
    """What an import read and wrote."""

    model_dir: Path
    format: str
    rows: int
    dim: int
    invalid_bytes: int


_WORD_END = re.compile(rb"[ \n]")
_ROW_LOOKAHEAD = 64  # bytes per value to look at past a row's word: a decimal value takes far fewer


class _Reader:
    """Buffered reading of a vectors file: lines, words up to a space, and raw byte runs."""

    def __init__(self, stream: BinaryIO, path: Path) -> None:
        self.stream, self.path = stream, path
        self.buffer, self.position, self.line = b"", 0, 1

    def _fill(self, needed: int) -> bool:
        while len(self.buffer) - self.position < needed:
            block = self.stream.read(1 << 22)
            if not block:
                return False
            self.buffer = self.buffer[self.position :] + block
            self.position = 0
        return True

    def readline(self) -> bytes | None:
        while (end := self.buffer.find(b"\n", self.position)) < 0:
            if not self._fill(len(self.buffer) - self.position + 1):
                rest = self.buffer[self.position :]
                self.position = len(self.buffer)
                return rest or None
        line = self.buffer[self.position : end]
        self.position = end + 1
        self.line += 1
        return line

    def read_word(self) -> bytes | None:
        """The bytes before the next space, after any newlines (word2vec binary puts one after each vector)."""
        while True:
            if not self._fill(1):
                return None
            while self.position < len(self.buffer) and self.buffer[self.position : self.position + 1] in (b"\n", b"\r"):
                self.position += 1
            if self.position < len(self.buffer):
                break
        while (end := self.buffer.find(b" ", self.position)) < 0:
            if not self._fill(len(self.buffer) - self.position + 1):
                raise UsageError(f"{self.path} is truncated: its last word has no vector")
        word = self.buffer[self.position : end]
        self.position = end + 1
        return word

    def peek_row(self, after: int) -> tuple[bytes, bytes | None]:
        """The word ahead (up to the first space or line break, however long it is) and up to ``after``
        bytes past its space, without consuming them; ``None`` for those where a line break or the
        end of the file ends the word."""
        start = self.position
        while (end := _WORD_END.search(self.buffer, start)) is None:
            scanned = len(self.buffer) - self.position
            if not self._fill(scanned + 1):
                return self.buffer[self.position :], None
            start = self.position + scanned
        length = end.start() - self.position
        if end.group() != b" ":
            return self.buffer[self.position : end.start()], None
        self._fill(length + 1 + after)  # may move the buffer: offsets from the position stay valid
        word_start = self.position
        return self.buffer[word_start : word_start + length], self.buffer[word_start + length + 1 : word_start + length + 1 + after]

    def peek(self, size: int) -> bytes:
        """Up to ``size`` bytes ahead, without consuming them."""
        self._fill(size)
        return self.buffer[self.position : self.position + size]

    def read_exactly(self, size: int) -> bytes | None:
        if not self._fill(size):
            return None
        data = self.buffer[self.position : self.position + size]
        self.position += size
        return data


_INTEGER = re.compile(rb"[+-]?[0-9]+")


def _header(line: bytes) -> tuple[int, int] | None:
    """``(count, dim)`` of a word2vec header line: two integers (a negative one is a broken header,
    refused by the caller, not a GloVe row of one value)."""
    fields = line.split()
    if len(fields) == 2 and all(_INTEGER.fullmatch(field) for field in fields):
        return int(fields[0]), int(fields[1])
    return None


def _shown(line: bytes) -> str:
    """The start of a line of the file, as text for a message."""
    return line[:60].decode("utf-8", errors="replace").strip()


def _holds_values(after_word: bytes | None, dim: int) -> bool:
    """The rest of a row's line (after the word and its space) ends in ``dim`` decimal values."""
    if after_word is None:
        return False
    fields = after_word.split(b"\n", 1)[0].decode("utf-8", errors="replace").split()
    if len(fields) < dim:
        return False
    try:
        with np.errstate(over="ignore"):  # only whether they parse matters here
            np.array(fields[-dim:], dtype=np.float32)
    except ValueError:
        return False
    return True


def _is_binary_row(after_word: bytes, dim: int) -> bool:
    """Whether a row whose word is followed by ``after_word`` reads as word2vec binary: 4 * dim bytes,
    a line break or not, then the next word up to its space (or the end of what was looked at)."""
    if len(after_word) < 4 * dim:
        return False
    next_word = after_word[4 * dim :].lstrip(b"\r\n").split(b" ", 1)[0]
    return b"\n" not in next_word


def _is_text(after_word: bytes | None, dim: int, *, whole: bool) -> bool:
    """Whether a first row whose word is followed by ``after_word`` is text rather than word2vec binary.

    The row is read both ways; a single byte decides nothing (0.01 as float32 starts with 0x0A, a
    line break). Text: the rest of its line is printable and ends in ``dim`` decimal values, and
    the line ends within ``after_word`` (a text value takes far fewer than _ROW_LOOKAHEAD bytes)
    or at the end of the file (``whole``). Binary: see _is_binary_row. When both fit (a text line
    longer than 4 * dim bytes; a binary row of one value whose bytes spell "7\\n"), the next line
    decides: a line of text (printable, a number among its fields after the first), or none to
    look at, is text; float bytes are rarely printable UTF-8. A row that fits neither (a damaged
    one) is text if the rest of its line is printable and not empty, so that the text reader names
    the line. ``None``: the word ended the line, which a binary word never does.
    """
    if after_word is None:
        return True
    binary = _is_binary_row(after_word, dim)
    line, *following = after_word.split(b"\n")
    if (whole or following) and _printable(line) and _holds_values(after_word, dim):
        if not binary:
            return True
        cut = b"" if whole or not following else following.pop()  # the look-ahead may end within it
        complete = next((line for line in following if line.strip()), None)
        if complete is not None:  # a text row, or a damaged one: a word, then something of a number
            return _printable(complete) and any(map(_is_number, complete.decode("utf-8").split()[1:]))
        return not cut.strip() or _printable(cut, cut=True)
    if binary:
        return False
    return bool(line.strip()) and _printable(line)


# Control characters other than the whitespace ones: float bytes hold them (1.0 is 00 00 80 3F), words
# hardly ever. Not str.isprintable(), which also refuses the format characters and spaces words hold
# (the zero-width non-joiner of Persian and Indic words, a soft hyphen, a no-break space, a BOM).
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def _printable(chunk: bytes, *, cut: bool = False) -> bool:
    """``chunk`` is UTF-8 text without control characters (whitespace aside); ``cut``: its last character may be cut short."""
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError as error:
        if not (cut and error.reason == "unexpected end of data"):
            return False
        text = chunk[: error.start].decode("utf-8")
    return not _CONTROL.search(text)


def import_vectors(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    fmt: str = "auto",
    limit: int = 0,
    force: bool = False,
) -> Imported:
    """Turn pretrained vectors (word2vec text or binary, GloVe, fastText .vec) into a model directory."""
    path, out_dir = Path(path), Path(out_dir)
    if fmt not in IMPORT_FORMATS:
        raise UsageError(f"unknown import format '{fmt}'; choose one of: {', '.join(IMPORT_FORMATS)}")
    if limit < 0:
        raise UsageError(f"--limit must be 0 (all vectors) or more, got {limit}")
    if str(path) == "-":
        raise UsageError("import reads a file, not stdin ('-'): save the vectors to a file first")
    if not path.is_file():
        raise UsageError(f"vectors file {path} does not exist" if not path.exists() else f"{path} is not a file")
    check_output_dir(out_dir, force=force)
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with locked(out_dir, "import"):  # a training writing there refuses it, and is refused while it runs
            return _import(path, out_dir, fmt, limit)
    except BaseException:
        if created:  # a failed import leaves no folder of its own behind
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _import(path: Path, out_dir: Path, fmt: str, limit: int) -> Imported:
    opener = _COMPRESSED.get(path.suffix.lower(), open)  # .vec.gz and the like are read as they are
    try:
        with opener(path, "rb") as stream:
            start = len(codecs.BOM_UTF8) if stream.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8 else 0
            stream.seek(start)
            reader = _Reader(stream, path)
            refusal = _foreign_file(reader.peek(_HEAD), path)
            if refusal:
                raise UsageError(refusal)
            first = _next_line(reader)
            if first is None:
                raise UsageError(f"{path} is empty")
            number = reader.line - 1
            header = _header(first)
            if header is not None and min(header) < 1:
                raise UsageError(
                    f"{path} line {number}: the header '{_shown(first)}' promises {header[0]} vectors of {header[1]} values; "
                    f"a word2vec header is 'count dim', both 1 or more"
                )
            if header is None and len(first.split()) < 2:
                raise UsageError(f"{path} line {number}: expected a word and its values, found '{_shown(first)}'")
            fmt = _resolve_format(fmt, header, first, reader, path)
            size = path.stat().st_size
            if header is None:  # GloVe: as many rows as the file holds; its line count bounds them
                dim = len(first.split()) - 1
                rows = _count_lines(path, opener)
                if opener is open:
                    rows = min(rows, size // (2 * dim))  # a row takes 2 bytes a value at least
                rows = min(rows, limit) if limit else rows
                reader = _Reader(stream, path)
                stream.seek(start)
            else:
                count, dim = header
                rows = min(count, limit) if limit else count
                if rows * (4 * dim if fmt == "bin" else 2 * dim) > size and opener is open:  # the fewest bytes a row can take
                    raise UsageError(f"{path} is truncated: expected {rows} vectors of {dim} values, but it holds only {size} bytes")
            scratch = out_dir / ".import-vectors.tmp"
            matrix = scratch_matrix(scratch, (max(rows, 1), dim))  # removes the file itself if it fails
            try:
                if fmt == "bin":
                    words, invalid = _read_binary(reader, matrix, rows, dim, path)
                else:
                    words, invalid = _read_text(reader, matrix, rows, dim, path, until_end=header is None)
                rows = len(words)
                if not limit and header is not None and (reader.read_word() if fmt == "bin" else _next_line(reader)):
                    raise UsageError(f"{path}: the header promises {count} vectors but the file holds more")
                tokenizer = new_tokenizer("whitespace", words)
                save_model(
                    out_dir,
                    vectors=matrix[:rows],
                    words_counts=np.zeros(rows, dtype=np.int64),
                    token_ids=np.arange(1, rows + 1, dtype=np.int64),
                    tokenizer_json=tokenizer.to_str(),
                    words=words,
                    metadata={"source": {"file": str(path), "format": fmt, "vectors": rows, "dim": dim, "invalid_bytes": invalid}},
                )
                remove_checkpoint(out_dir)  # an unfinished training there (--force) must not resume over the import
            finally:
                del matrix
                scratch.unlink(missing_ok=True)
    except PermissionError:
        raise UsageError(f"cannot read {path}: permission denied") from None
    except _BROKEN_STREAM as error:
        raise UsageError(f"{path} is damaged: {error}") from None
    return Imported(model_dir=out_dir, format=fmt, rows=rows, dim=dim, invalid_bytes=invalid)


def _next_line(reader: _Reader) -> bytes | None:
    """The next line that is not blank (whitespace only): text formats skip blank lines wherever they are."""
    while (line := reader.readline()) is not None and not line.strip():
        pass
    return line


_HEAD = 64  # bytes looked at to recognise a file of another kind
_FASTTEXT_MAGIC = (793712314).to_bytes(4, "little")  # the int32 a fastText model (.bin) starts with
_NOT_VECTORS = "not word2vec or GloVe vectors"


def _foreign_file(head: bytes, path: Path) -> str | None:
    """Why a file that starts with ``head`` is not one to import, and what to do instead; None if it may be."""
    if head.startswith(b"\x93NUMPY") or (len(head) >= 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < 1 << 32):
        kind = "NumPy .npy" if head.startswith(b"\x93NUMPY") else "safetensors"  # as embedcli's own exports
        return f"{path} is a {kind} file, {_NOT_VECTORS}; import reads text (txt, vec, glove) or word2vec binary vectors"
    if head.startswith(_FASTTEXT_MAGIC):
        return (
            f"{path} is a fastText model (.bin), {_NOT_VECTORS}; import its .vec file instead (fastText writes one beside "
            f"the .bin, and its downloads offer one), or write one with gensim: "
            f"gensim.models.fasttext.load_facebook_vectors('{path}').save_word2vec_format('vectors.vec')"
        )
    # pickle protocols 2 to 5 start with PROTO; torch.save writes a zip around its data.pkl
    zipped_name = head[30 : 30 + int.from_bytes(head[26:28], "little")] if head.startswith(b"PK\x03\x04") else b""
    if (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")) or zipped_name.endswith(b"data.pkl"):
        if zipped_name:
            kind, how = "a PyTorch file (torch.save)", "a 'count dim' line, then one 'word v1 ... vd' line per word"
        else:
            kind = "a Python pickle (such as a gensim .model or .kv file)"
            how = "in gensim: KeyedVectors.save_word2vec_format('vectors.txt'), or model.wv.save_word2vec_format for a Word2Vec model"
        return (
            f"{path} is {kind}, {_NOT_VECTORS}; embedcli never loads pickles (loading one can run code): "
            f"save the vectors as word2vec text ({how}) and import that"
        )
    if head.startswith(b"PK\x03\x04"):
        return f"{path} is a zip archive; unzip it and import the vectors file inside"
    return None


def _resolve_format(fmt: str, header: tuple[int, int] | None, first: bytes, reader: _Reader, path: Path) -> str:
    if fmt == "vec":
        return "txt"
    if fmt != "auto":
        if fmt in ("txt", "bin") and header is None:
            advice = "; for vectors without one use --format glove" if _holds_values(first.split(None, 1)[1], len(first.split()) - 1) else ""
            raise UsageError(f"{path} has no 'count dim' header line, so it is not word2vec {'text' if fmt == 'txt' else 'binary'}{advice}")
        if fmt == "bin" and _first_row_is_text(reader, header[1]):
            raise UsageError(
                f"{path} does not look like word2vec binary: its first row is text; "
                f"use --format txt, or leave --format out to detect it"
            )
        return fmt
    if header is None:
        return "glove"
    lookahead = _ROW_LOOKAHEAD * header[1]
    after_word = reader.peek_row(lookahead)[1]
    return "txt" if _is_text(after_word, header[1], whole=after_word is not None and len(after_word) < lookahead) else "bin"


def _first_row_is_text(reader: _Reader, dim: int) -> bool:
    """The row ahead, past any blank lines (which text may hold and a binary row never starts with),
    is a word and ``dim`` decimal values."""
    word, after_word = reader.peek_row(_ROW_LOOKAHEAD * dim)
    if after_word is None and not word.strip(b"\r"):  # a blank line: look past the blank lines
        word, _, after_word = reader.peek(_ROW_LOOKAHEAD * dim).lstrip(b"\r\n").partition(b" ")
        if b"\n" in word:
            return False
    return _holds_values(after_word, dim)


def _count_lines(path: Path, opener: Callable = open) -> int:
    count, last = 0, b"\n"
    with opener(path, "rb") as stream:
        while block := stream.read(1 << 22):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _read_text(
    reader: _Reader, matrix: np.ndarray, rows: int, dim: int, path: Path, *, until_end: bool = False
) -> tuple[list[str], int]:
    """Up to ``rows`` rows of word2vec text or GloVe; fewer only if ``until_end`` (GloVe: ``rows`` bounds them)."""
    words: list[str] = []
    seen: dict[str, int] = {}
    invalid = 0
    while len(words) < rows:
        number = reader.line
        line = reader.readline()
        if line is None:
            if until_end:
                break
            raise UsageError(f"{path} is truncated: expected {rows} vectors, found {len(words)}")
        if not line.strip():  # a blank line, wherever it is
            continue
        text, bad = decode(line.rstrip(b"\r\n "))
        invalid += bad
        fields = text.split(" ")
        if len(fields) < dim + 1:
            raise UsageError(f"{path} line {number}: expected a word and {dim} values, found {len(fields) - 1} values")
        # A few GloVe files hold words with spaces ("new york"); a "word" ending in a number is a row
        # with more values than the others instead, as gensim reads it.
        if len(fields) > dim + 1 and _is_number(fields[-dim - 1]):
            found = next(count for count in range(dim + 1, len(fields)) if count == len(fields) - 1 or not _is_number(fields[-count - 1]))
            raise UsageError(f"{path} line {number}: expected a word and {dim} values, found {found} values")
        word = " ".join(fields[:-dim])
        try:
            with np.errstate(over="ignore"):  # too large for float32: refused below with the line number
                values = np.array(fields[-dim:], dtype=np.float32)
        except ValueError:
            raise UsageError(f"{path} line {number}: a value is not a number") from None
        _check_finite(values, path, number)
        matrix[len(words)] = values
        _add_word(word, words, seen, path, number)
    return words, invalid


def _is_number(field: str) -> bool:
    """``field`` reads as a value of a row (the values' own parser decides)."""
    try:
        with np.errstate(over="ignore"):
            np.array([field], dtype=np.float32)
    except ValueError:
        return False
    return True


def _read_binary(reader: _Reader, matrix: np.ndarray, rows: int, dim: int, path: Path) -> tuple[list[str], int]:
    words: list[str] = []
    seen: dict[str, int] = {}
    invalid = 0
    size = 4 * dim
    while len(words) < rows:
        raw = reader.read_word()
        data = reader.read_exactly(size) if raw is not None else None
        if data is None:
            raise UsageError(f"{path} is truncated: expected {rows} vectors, found {len(words)}")
        word, bad = decode(raw)
        invalid += bad
        values = np.frombuffer(data, dtype="<f4")
        _check_finite(values, path, len(words) + 2)
        matrix[len(words)] = values
        _add_word(word, words, seen, path, len(words) + 2)
    return words, invalid


def _check_finite(values: np.ndarray, path: Path, number: int) -> None:
    """Infinite and NaN values would turn every cosine with the row into NaN: refuse them."""
    if not np.isfinite(values).all():
        raise UsageError(f"{path} line {number}: a value is infinite, NaN or too large for float32")


def _add_word(word: str, words: list[str], seen: dict[str, int], path: Path, number: int) -> None:
    if word in seen:
        raise UsageError(f"{path} line {number}: duplicate word '{word}' (first at line {seen[word]})")
    seen[word] = number
    words.append(word)
