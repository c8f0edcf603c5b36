"""Reading a corpus: files, folders, .gz/.bz2/.xz and stdin, as a restartable stream of lines.

A line is a sentence: context windows never cross it. Lines of any length stream
in bounded pieces, so a 100 MB file without a newline never becomes one string.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import itertools
import lzma
import os
import re
import stat
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from .errors import CorpusError

# what a damaged .gz/.bz2/.xz raises while it is read (zlib.error is not an OSError)
_DAMAGED = (OSError, EOFError, lzma.LZMAError, zlib.error)
BLOCK_BYTES = 1 << 20  # read size, and the longest piece a single line is cut into
HEAD_BYTES = 8192  # what is read of a file to tell text from binary
# At most this share of a text file's first bytes may be NULs, or bytes that are not UTF-8 besides
# them: a NUL here and there in text is damage, where images, executables, UTF-16 text and
# int32 arrays hold far more (and compressed data is almost never valid UTF-8).
MOST_NOT_TEXT = 0.01
_COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_ERROR_HANDLER = "embedcli.count-invalid"
_invalid_bytes = [0]


def _count_invalid(error: UnicodeDecodeError) -> tuple[str, int]:
    _invalid_bytes[0] += error.end - error.start
    return "\ufffd", error.end


codecs.register_error(_ERROR_HANDLER, _count_invalid)

# The invisible format characters: general category Cf and Default_Ignorable_Code_Point in Unicode
# (with U+2065, unassigned in its range, which Unicode reserves as one of them). A browser shows none
# of them; the 'default' tokenizer removes them, so 'hy\u00adphen' is 'hyphen' and 'hello\u200bworld'
# 'helloworld'. Not among them: Cf characters that show (Arabic number signs U+0600-U+0605, ...) and
# the tag characters U+E0020-U+E007F, which spell the flags of England, Scotland and Wales after
# U+1F3F4. Inclusive ranges.
FORMAT_CHARACTERS = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x061C, 0x061C),  # Arabic letter mark
    (0x180E, 0x180E),  # Mongolian vowel separator
    (0x200B, 0x200F),  # zero-width space, non-joiner and joiner; left-to-right and right-to-left marks
    (0x202A, 0x202E),  # bidirectional embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidirectional isolates, deprecated format controls
    (0xFEFF, 0xFEFF),  # byte order mark (zero-width no-break space)
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol format controls
    (0xE0001, 0xE0001),  # language tag
)
FORMAT = re.compile("[" + "".join(chr(first) + (f"-{chr(last)}" if last > first else "") for first, last in FORMAT_CHARACTERS) + "]")


def visible_words(text: str) -> int:
    """Whitespace-separated words of ``text`` that hold a character other than FORMAT_CHARACTERS.

    Each becomes at least one token of every tokenizer embedcli makes ('default' removes those
    characters, so a word of them alone is no token), so counting these never overshoots a --max-tokens.
    """
    return len(_visible(text).split())


def _visible(text: str) -> str:
    """``text`` without FORMAT_CHARACTERS (ASCII text holds none)."""
    return text if text.isascii() else FORMAT.sub("", text)


class Corpus:
    """One or more text sources read as lines; iterate it as often as needed.

    ``paths`` may name files, folders (their text files, recursively, in sorted
    order, but not hidden ones, nor the folders of ``leave_out`` (the model folder
    being written), nor sub-folders for which ``leave_folder`` is true (other model
    folders)) and ``-`` for stdin, once. A folder's files that are not text
    (binary, UTF-16) are left out and listed in ``skipped``; a named one is an
    error. Stdin, named pipes and devices can be read once only: call
    :meth:`spool_stdin` before iterating twice.

    ``max_words`` (0: no limit) stops reading after the line that brings the
    whitespace-separated words to that many (see :func:`visible_words`), so that an
    endless stream ends; a tokenizer makes at least one token of every such word,
    so the tokens it yields reach a ``--max-tokens`` of the same number.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        *,
        max_words: int = 0,
        leave_out: Sequence[str | os.PathLike] = (),
        leave_folder: Callable[[Path], bool] | None = None,
    ) -> None:
        if not paths:
            raise CorpusError("no corpus given; name one or more text files, folders or '-'")
        stdin_count = sum(str(path) == "-" for path in paths)
        if stdin_count > 1:  # the first would read it all and leave the others nothing
            raise CorpusError(f"- (stdin) is named {stdin_count} times, but stdin can be read only once: name it once")
        left_out = {Path(folder).resolve() for folder in leave_out}
        self.files: list[Path] = []
        self.skipped: list[tuple[Path, str]] = []  # a folder's files that are not text, with their kind (see text_kind)
        for path in paths:
            files, skipped = _expand(str(path), left_out, leave_folder)
            self.files.extend(files)
            self.skipped.extend(skipped)
        self.max_words = max_words
        self.invalid_bytes = 0

    def skipped_note(self) -> str | None:
        """One line on the files of folders left out as not text, or None when there were none."""
        if not self.skipped:
            return None
        if len(self.skipped) == 1:
            return f"1 file in the corpus folders is not UTF-8 text and was skipped: {_example(self.skipped)}"
        return f"{len(self.skipped)} files in the corpus folders are not UTF-8 text and were skipped, e.g. {_example(self.skipped)}"

    def needs_spooling(self) -> bool:
        """Whether a source can be read once only (stdin, a named pipe, a device): see :meth:`spool_stdin`."""
        return any(path == Path("-") or not _is_regular(path) for path in self.files)

    def spool_stdin(self, folder: Path) -> Corpus:
        """Copy stdin, named pipes and devices to files in ``folder`` so the corpus can be read more than once.

        Reading stops at ``max_words`` words (what iterating would read anyway), and a stream whose
        first block holds NUL bytes is refused as binary before it is copied further (``/dev/zero``).
        """
        spooled_files = []
        for number, path in enumerate(self.files):
            if path != Path("-") and _is_regular(path):
                spooled_files.append(path)
                continue
            folder.mkdir(parents=True, exist_ok=True)
            spooled = folder / ("stdin.txt" if path == Path("-") else f"{number}-{path.name}")
            self._spool(path, spooled)
            spooled_files.append(spooled)
        self.files = spooled_files
        return self

    def _spool(self, path: Path, spooled: Path) -> None:
        compressed = path.suffix.lower() in _COMPRESSED
        words = 0
        in_word = False  # whether the last visible character copied was part of a word
        first = True
        decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character cut between blocks waits for the next
        with open(spooled, "wb") as out:
            source = sys.stdin.buffer if path == Path("-") else _open_raw(path)
            try:
                while block := source.read(BLOCK_BYTES):
                    if first and not compressed:
                        _refuse_unless_text(path, text_kind(block[:HEAD_BYTES], whole=len(block) < HEAD_BYTES))
                    first = False
                    out.write(block)
                    if self.max_words and not compressed:
                        # words started in this block (as visible_words counts them), less one continuing
                        # from the last block; one word past the limit proves the last word needed is complete
                        text = _visible(decoder.decode(block))
                        if text:
                            words += len(text.split()) - (in_word and not text[:1].isspace())
                            in_word = not text[-1:].isspace()
                        if words > self.max_words:
                            break
            finally:
                if source is not sys.stdin.buffer:
                    source.close()
        if compressed:
            _refuse_unless_text(path, _kind_of(spooled))

    def fingerprint(self) -> list[list]:
        """Path, size, modification and change time of each file: what a token cache is keyed by.

        The change time (ctime) moves with every write and cannot be set back, so a file
        rewritten to the same size with its old modification time restored is not taken for the old one.
        """
        result = []
        for path in self.files:
            info = path.stat()
            result.append([str(path.resolve()), info.st_size, info.st_mtime_ns, info.st_ctime_ns])
        return result

    def __iter__(self) -> Iterator[str]:
        _invalid_bytes[0] = 0
        words = 0
        try:
            for path in self.files:
                with _open_binary(path) as stream:
                    for line in _lines(stream, path):
                        yield line
                        if self.max_words:
                            words += visible_words(line)
                            if words >= self.max_words:
                                return
        finally:  # also when the reader stops early
            self.invalid_bytes = _invalid_bytes[0]

    def parts(self, count: int, *, smallest: int = 4 * BLOCK_BYTES) -> list[Part] | None:
        """The corpus cut into up to ``count`` parts at line starts, to be read in as many processes.

        Reading the parts in order gives exactly the lines of reading the whole. Each part is at
        least ``smallest`` bytes; a cut that would fall in a compressed file or find no newline
        near it is left out. None when fewer than two parts remain, or when the corpus cannot
        be cut at all (a word limit, stdin).
        """
        if self.max_words or self.needs_spooling():
            return None
        sizes = [path.stat().st_size for path in self.files]
        ends = list(itertools.accumulate(sizes))
        total = ends[-1] if ends else 0
        count = min(count, total // smallest) if smallest else count
        cuts: list[tuple[int, int]] = []  # (file index, offset of a line start in it), in corpus order
        for number in range(1, count):
            target = total * number // count
            index = next(index for index, end in enumerate(ends) if end > target)
            path = self.files[index]
            if path.suffix.lower() in _COMPRESSED:
                continue
            cut = _line_start_after(path, target - (ends[index] - sizes[index]))
            if cut is not None and (not cuts or (index, cut) > cuts[-1]):
                cuts.append((index, cut))
        if not cuts:
            return None
        parts, here = [], (0, 0)
        for there in [*cuts, (len(self.files), 0)]:
            pieces = [(self.files[here[0]], here[1], there[1] if there[0] == here[0] else None)]
            pieces += [(path, 0, None) for path in self.files[here[0] + 1 : there[0]]]
            if there[0] > here[0] and there[0] < len(self.files) and there[1]:
                pieces.append((self.files[there[0]], 0, there[1]))
            parts.append(Part(pieces))
            here = there
        return parts

    def batches(self, lines_per_batch: int = 8192, chars_per_batch: int = 4 * BLOCK_BYTES) -> Iterator[list[str]]:
        """Lists of lines, for the tokenizer's batch calls; bounded in lines and in characters."""
        batch: list[str] = []
        chars = 0
        for line in self:
            batch.append(line)
            chars += len(line)
            if len(batch) >= lines_per_batch or chars >= chars_per_batch:
                yield batch
                batch = []
                chars = 0
        if batch:
            yield batch


class Part:
    """Part of a corpus (see :meth:`Corpus.parts`): whole files, or a file from or up to a byte offset."""

    def __init__(self, pieces: list[tuple[Path, int, int | None]]) -> None:
        self.pieces = pieces
        self.invalid_bytes = 0

    def __iter__(self) -> Iterator[str]:
        _invalid_bytes[0] = 0
        try:
            for path, start, stop in self.pieces:
                with _open_binary(path) as stream:
                    yield from _lines(_Stretch(stream, start, stop) if start or stop is not None else stream, path)
        finally:
            self.invalid_bytes = _invalid_bytes[0]

    batches = Corpus.batches


class _Stretch:
    """Bytes [start, stop) of a file, in the blocks a read from the file's start would give.

    Reading in the same blocks makes :func:`_lines` cut an over-long line where it would
    in a whole read, so the parts of a corpus give exactly its lines.
    """

    def __init__(self, stream: BinaryIO, start: int, stop: int | None) -> None:
        stream.seek(start)
        self.stream, self.position, self.stop = stream, start, stop

    def read(self, size: int) -> bytes:
        end = (self.position // size + 1) * size
        if self.stop is not None:
            end = min(end, self.stop)
        data = self.stream.read(max(0, end - self.position))
        self.position += len(data)
        return data


def _line_start_after(path: Path, offset: int, *, search: int = 4 * BLOCK_BYTES) -> int | None:
    """The offset just after the first newline at or after ``offset``, unless a BOM starts there."""
    with _open_raw(path) as stream:
        stream.seek(offset)
        data = stream.read(search)
        newline = data.find(b"\n")
        if newline < 0 or offset + newline + 1 >= path.stat().st_size:
            return None
        if data[newline + 1 : newline + 4] == codecs.BOM_UTF8:  # a whole read would keep it; a fresh decoder would not
            return None
        return offset + newline + 1


def _expand(
    path: str, left_out: set[Path], leave_folder: Callable[[Path], bool] | None = None
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The files ``path`` names, and the files of a folder left out as not text (with their kind)."""
    if path == "-":
        return [Path("-")], []
    target = Path(path)
    try:
        info = target.stat()
    except FileNotFoundError:
        raise CorpusError(f"corpus {path} does not exist") from None
    except OSError as error:
        raise CorpusError(f"cannot read corpus {path}: {error.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        found, skipped = [], []
        for child in _walk(target, left_out, leave_folder):
            kind = _kind_of(child)
            if kind == "text":
                found.append(child)
            else:
                skipped.append((child, kind))
        if not found:
            if not os.access(target, os.R_OK | os.X_OK):
                raise CorpusError(f"cannot read corpus folder {path}: permission denied")
            more = ""
            if skipped:
                more = f"; {_example(skipped)} is not UTF-8 text" if len(skipped) == 1 else (
                    f"; skipped {len(skipped)} that are not UTF-8 text, e.g. {_example(skipped)}"
                )
            raise CorpusError(f"folder {path} holds no text files{more}")
        return found, skipped
    if not os.access(target, os.R_OK):
        raise CorpusError(f"cannot read corpus {path}: permission denied")
    if stat.S_ISREG(info.st_mode):  # a pipe or a device is told from its first block, when it is spooled
        _refuse_unless_text(target, _kind_of(target))
    return [target], []


def _walk(folder: Path, left_out: set[Path], leave_folder: Callable[[Path], bool] | None = None) -> list[Path]:
    """The files in ``folder`` and its sub-folders, in name order, but for hidden ones (named .*), the
    folders of ``left_out`` (the model folder being written) and the sub-folders ``leave_folder``
    picks (other model folders); an unreadable sub-folder is an error."""
    for out in left_out:
        if folder.resolve().is_relative_to(out):
            raise CorpusError(f"corpus folder {folder} is, or is inside, the model folder being written ({out}); choose another --out")

    def refuse(error: OSError) -> None:
        reason = "permission denied" if isinstance(error, PermissionError) else error.strerror or str(error)
        raise CorpusError(f"cannot read corpus folder {error.filename}: {reason}")

    found = []
    for parent, folders, names in os.walk(folder, onerror=refuse):
        # pruned in place, so os.walk does not go in
        folders[:] = [
            name for name in folders
            if not name.startswith(".") and Path(parent, name).resolve() not in left_out
            and not (leave_folder and leave_folder(Path(parent, name)))
        ]
        for name in names:
            child = Path(parent, name)
            if name.startswith("."):
                continue
            try:
                if stat.S_ISREG(child.stat().st_mode):  # follows a link, as reading it would
                    found.append(child)
            except PermissionError as error:  # a folder that may be listed but not entered
                refuse(PermissionError(error.errno, error.strerror, parent))
            except OSError:
                continue  # a dangling link or a loop of links, as Path.is_file has it
    return sorted(found)


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return True  # opening it will tell what is wrong


def _open_binary(path: Path) -> BinaryIO:
    if path == Path("-"):
        return open(sys.stdin.fileno(), "rb", closefd=False)
    return _open_raw(path, _COMPRESSED.get(path.suffix.lower()))


def _open_raw(path: Path, opener=None) -> BinaryIO:
    try:
        return (opener or open)(path, "rb")
    except PermissionError:
        raise CorpusError(f"cannot read corpus {path}: permission denied") from None
    except OSError as error:
        raise CorpusError(f"cannot read corpus {path}: {error.strerror or error}") from None


def _kind_of(path: Path) -> str:
    """'text', 'binary' or a UTF-16 encoding (see :func:`text_kind`), from the start of the (decompressed) file;
    a compressed file that cannot be decompressed is an error."""
    try:
        with _open_binary(path) as stream:
            head = stream.read(HEAD_BYTES)
    except _DAMAGED as error:
        if path.suffix.lower() in _COMPRESSED:
            raise CorpusError(f"corpus {_name(path)} is damaged: {error}") from None
        return "binary"
    return text_kind(head, whole=len(head) < HEAD_BYTES)


def text_kind(head: bytes, *, whole: bool) -> str:
    """What the first bytes of a file are: 'text' (UTF-8, or nearly), 'UTF-16' (with a byte-order
    mark, as Windows' Notepad and PowerShell write 'Unicode' text), 'UTF-16LE' or 'UTF-16BE' (without
    one), or 'binary'. ``whole``: ``head`` is the whole file, so no character is cut at its end."""
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "UTF-16"
    nuls = head.count(0)
    if not nuls:
        return "text"  # invalid bytes are replaced and counted while reading
    for encoding, zeros in (("UTF-16LE", head[1::2]), ("UTF-16BE", head[0::2])):
        # ASCII in UTF-16 puts a NUL in every other byte
        if zeros.count(0) > 0.3 * len(zeros) and nuls - zeros.count(0) < 0.1 * zeros.count(0):
            text = head[: len(head) // 2 * 2].decode(encoding.lower(), errors="replace")
            if sum(character.isprintable() or character.isspace() for character in text) >= 0.9 * len(text):
                return encoding
    if nuls > MOST_NOT_TEXT * len(head):
        return "binary"
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = decoder.decode(head.replace(b"\0", b""), final=whole)
    invalid = text.count("\ufffd") - head.count("\ufffd".encode())
    return "text" if invalid <= MOST_NOT_TEXT * len(head) else "binary"


def _example(skipped: list[tuple[Path, str]]) -> str:
    """One of the files left out as not text, and what it is: a UTF-16 one if any, as it can be converted."""
    path, kind = next((item for item in skipped if item[1] != "binary"), skipped[0])
    return f"{path} ({'binary' if kind == 'binary' else 'UTF-16'})"


def _refuse_unless_text(path: Path, kind: str) -> None:
    """A clear error for a named file, stdin or pipe that is not text; for UTF-16, how to convert it."""
    name = _name(path)
    if kind == "binary":
        raise CorpusError(f"corpus {name} looks like a binary file, not text")
    if kind == "text":
        return
    convert = f"iconv -f {kind} -t UTF-8"
    suffix = path.suffix.lower()
    if path == Path("-") or not _is_regular(path):
        advice = f"convert it on the way in, e.g. ... | {convert} | embedcli train -"
    elif suffix in _COMPRESSED:
        unpack = {".gz": "zcat", ".bz2": "bzcat", ".xz": "xzcat"}[suffix]
        advice = f"convert it first, e.g. {unpack} {path} | {convert} > corpus-utf8.txt"
    else:
        advice = f"convert it first, e.g. {convert} {path} > corpus-utf8.txt"
    raise CorpusError(f"corpus {name} is UTF-16 text; embedcli reads UTF-8: {advice}")


def _name(path: Path) -> str:
    return "- (stdin)" if path == Path("-") else str(path)


def _lines(stream: BinaryIO, path: Path) -> Iterator[str]:
    """Non-empty lines, each at most about BLOCK_BYTES long (longer ones cut at whitespace)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors=_ERROR_HANDLER)  # drops a leading BOM
    pending = ""
    while True:
        try:
            block = stream.read(BLOCK_BYTES)
        except _DAMAGED as error:
            raise CorpusError(f"corpus {_name(path)} is damaged: {error}") from None
        text = pending + decoder.decode(block, final=not block)
        if "\r" in text:  # Windows' \r\n, and the lone \r of old Mac files, end lines too
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\0" in text:  # a stray NUL in text (see text_kind) separates words rather than joining them
            text = text.replace("\0", " ")
        lines = text.split("\n")
        pending = lines.pop()
        if lines and len(lines[0]) > BLOCK_BYTES:  # what the last block left pending, ended in this one
            lines[:1] = _cut(lines[0])
        if len(pending) > BLOCK_BYTES:
            *whole, pending = _cut(pending)
            lines.extend(whole)
        for line in lines:
            if line and not line.isspace():
                yield line
        if not block:
            if pending and not pending.isspace():
                yield pending
            return


def _cut(line: str) -> list[str]:
    """``line`` in pieces of at most BLOCK_BYTES characters, each cut at its last space or tab where it has one."""
    pieces = []
    while len(line) > BLOCK_BYTES:
        cut = max(line.rfind(" ", 0, BLOCK_BYTES), line.rfind("\t", 0, BLOCK_BYTES))
        cut = cut if cut > 0 else BLOCK_BYTES
        pieces.append(line[:cut])
        line = line[cut:]
    return [*pieces, line]


def decode(data: bytes) -> tuple[str, int]:
    """UTF-8 text of ``data`` with invalid bytes replaced by U+FFFD, and how many bytes were invalid."""
    before = _invalid_bytes[0]
    text = data.decode("utf-8", errors=_ERROR_HANDLER)
    return text, _invalid_bytes[0] - before
