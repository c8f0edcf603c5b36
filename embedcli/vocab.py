"""Tokenizer, vocabulary and the token-id file every epoch trains from.

Two passes over the corpus, each in memory that does not grow with its size.
The first counts the words ourselves (sub-sampling and the noise distribution
need the counts) in a table of bounded size that forgets the rarest words when
it fills, as word2vec.c does; the words reaching ``min_count`` (the
``max_vocab`` most frequent) make a WordLevel tokenizer. The second writes the
corpus batch by batch as int32 vocabulary rows with sentence offsets,
memory-mapped by training. A tokenizer.json given by the user is used as it is.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import re
import shutil
import signal
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

from .config import TrainConfig
from .corpus import FORMAT, FORMAT_CHARACTERS, Corpus
from .errors import ConfigError, CorpusError
from .resources import available_memory
from .store import new_folder, replace_folder
from .wordids import (
    OTHER,
    SPACE,
    WORD,
    WordIds,
    distinct_characters,
    line_lengths,
    padded,
    split_ascii_words,
    split_runs,
    split_whitespace,
    utf8_offsets,
)

log = logging.getLogger(__name__)

UNKNOWN = "[UNK]"
CACHE_FORMAT = 7  # 4: a lone \r ends a line; 5: a line of megabytes is cut into pieces of at most BLOCK_BYTES; 6: a NUL is a space, and a reused tokenizer's unknown token is no word; 7: 'default' removes invisible format characters
CACHE_FILES = ("tokens.i32", "offsets.i64", "tokenizer.json", "vocab.json")  # a token cache's folder, whole
BUILDING_PREFIX = ".building-"  # a cache folder being written, renamed to its key when whole
BATCH_CHARS = 1 << 20  # characters of text tokenized at a time
REMAP_TOKENS = 1 << 22  # tokens turned into rows at a time, to bound memory
REMAP_LINES = 1 << 16
# Distinct words held while counting (about 100 bytes each in Python): see count_limit.
COUNT_FLOOR = 2_000_000
COUNT_CEILING = 10_000_000
COUNT_PER_KEPT = 10
# The 'default' pre-tokenizer's regex \w+|[^\w\s]+ on ASCII text.
_ASCII_TOKEN = re.compile(r"[A-Za-z0-9_]+|[^A-Za-z0-9_\s]+", re.ASCII)
# The invisible format characters the 'default' normalizer removes before NFKC (see corpus.FORMAT_CHARACTERS).
_FORMAT_CODES = np.array(
    [code for first, last in FORMAT_CHARACTERS for code in range(first, last + 1)], dtype=np.int64
)


@dataclass(frozen=True)
class Vocabulary:
    """The kept words, most frequent first: row ``i`` of every weight matrix is ``words[i]``."""

    words: list[str]
    counts: np.ndarray  # int64, occurrences in the corpus
    token_ids: np.ndarray  # int64, the tokenizer's id of each row

    def __len__(self) -> int:
        return len(self.words)


@dataclass(frozen=True)
class TokenStream:
    """The encoded corpus: vocabulary rows in corpus order, split into sentences."""

    tokens: np.ndarray  # int32 rows, memory-mapped
    offsets: np.ndarray  # int64 sentence starts, with len(tokens) last

    def __len__(self) -> int:
        return len(self.tokens)


def new_tokenizer(kind: str, words: list[str] | None = None) -> Tokenizer:
    """A word-level tokenizer, 'default' or 'whitespace': untrained, or knowing ``words``."""
    vocab = {UNKNOWN: 0, **{word: row + 1 for row, word in enumerate(words)}} if words is not None else None
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNKNOWN))
    if kind == "default":
        # Invisible format characters go before NFKC, so that one between a letter and its accent no
        # longer keeps them apart; Oniguruma's \x{...} escapes keep them readable in tokenizer.json.
        invisible = "".join(
            f"\\x{{{first:04X}}}" if first == last else f"\\x{{{first:04X}}}-\\x{{{last:04X}}}" for first, last in FORMAT_CHARACTERS
        )
        tokenizer.normalizer = normalizers.Sequence(
            [normalizers.Replace(Regex(f"[{invisible}]"), ""), normalizers.NFKC(), normalizers.Lowercase()]
        )
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tokenizer


def load_tokenizer(path: str | Path) -> Tokenizer:
    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # the Rust side raises a bare Exception
        raise ConfigError(f"{path} is not a tokenizer.json the tokenizers library can read ({error})") from None


@dataclass(frozen=True)
class Encoded:
    """What training needs from a corpus, and how it was obtained."""

    tokenizer: Tokenizer
    vocabulary: Vocabulary
    stream: TokenStream
    invalid_bytes: int  # bytes that were not UTF-8, replaced by U+FFFD
    corpus_tokens: int  # every token of the corpus, kept in the vocabulary or not
    cached: bool  # reused from an earlier run on the same corpus and settings


def prepare(corpus: Corpus, cfg: TrainConfig, cache_root: Path) -> Encoded:
    """Tokenize, count and encode the corpus, or reuse the cached result of the same inputs.

    The cache is built in a hidden folder beside its final one (BUILDING_PREFIX), synced, and
    renamed into place in one step: a folder named by a cache key is always whole.
    """
    key = cache_key(corpus, cfg)
    folder = cache_root / key
    for stale in cache_root.glob(f"{BUILDING_PREFIX}*"):  # left by a run that was killed; one training writes here at a time
        shutil.rmtree(stale, ignore_errors=True)
    found = cached(cache_root, key)
    if found is not None:
        return found
    cache_root.mkdir(parents=True, exist_ok=True)
    building = new_folder(cache_root, f"{BUILDING_PREFIX}{key}-")
    try:
        encoded = _encode_one_pass(corpus, cfg, building) if cfg.tokenizer in ("default", "whitespace") else None
        if encoded is not None:
            tokenizer, vocabulary, corpus_tokens = encoded
        elif cfg.tokenizer in ("default", "whitespace"):
            tokenizer, vocabulary, corpus_tokens = _encode_counted(corpus, cfg, building)
        else:
            tokenizer, vocabulary, corpus_tokens = _encode_with_tokenizer(corpus, cfg, building)
        tokenizer.save(str(building / "tokenizer.json"))
        stats = {"invalid_bytes": corpus.invalid_bytes, "corpus_tokens": corpus_tokens}
        _write_vocabulary(building, vocabulary, stats)
        for name in CACHE_FILES:
            _sync(building / name)  # everything is on disk before the rename that makes the cache whole
        if folder.exists():
            shutil.rmtree(folder)  # one that is not whole (see cached)
        replace_folder(building, folder)
    except BaseException:  # a bad corpus, Ctrl-C, a full disk: an unfinished cache is no use
        shutil.rmtree(building, ignore_errors=True)
        raise
    for other in cache_root.iterdir():  # one cached corpus at a time keeps the disk bounded
        if other.is_dir() and other != folder:
            shutil.rmtree(other, ignore_errors=True)
    return Encoded(tokenizer, vocabulary, _read_stream(folder), **stats, cached=False)


def _sync(path: Path) -> None:
    with open(path, "rb") as stream:
        os.fsync(stream.fileno())


def count_limit(max_vocab: int) -> int:
    """How many distinct words counting holds before it forgets the rarest (see :class:`WordCounts`).

    Ten per word ``max_vocab`` keeps, from COUNT_FLOOR up to COUNT_CEILING (never fewer than
    twice ``max_vocab``); COUNT_CEILING without ``max_vocab``.
    """
    if not max_vocab:
        return COUNT_CEILING
    return max(COUNT_FLOOR, min(COUNT_PER_KEPT * max_vocab, COUNT_CEILING), 2 * max_vocab)


class WordCounts:
    """Occurrences of words, holding at most ``limit`` distinct words at any time.

    word2vec.c's ReduceVocab: when new words would overflow the table, the rarest
    are forgotten, here every word counted at most as often as the ``limit // 2``-th
    most frequent one (word2vec.c raises a fixed threshold by one each time; taking
    it from the counts halves the table every time, so a stream of new words costs
    one reduction per ``limit // 2`` of them). A forgotten word that comes back
    counts from zero, so a kept word's count may be short by what it had when it
    was forgotten: at most ``largest_forgotten`` each time.
    """

    def __init__(self, limit: int) -> None:
        if limit < 2:
            raise ValueError(f"a word table needs room for 2 words at least, got {limit}")
        self.limit = limit
        self.counts: Counter[str] = Counter()
        self.tokens = 0  # every word added, forgotten or not
        self.reductions = 0
        self.largest_forgotten = 0

    def add(self, words: list[str]) -> None:
        """Count ``words`` (a list, so that Counter counts it in C)."""
        room = self.limit // 2  # what a reduction frees at least, so a piece always fits after one
        for start in range(0, len(words), room):
            piece = words[start : start + room] if len(words) > room else words
            if len(self.counts) + len(piece) > self.limit:
                self._reduce()
            self.counts.update(piece)
        self.tokens += len(words)

    def _reduce(self) -> None:
        values = np.fromiter(self.counts.values(), dtype=np.int64, count=len(self.counts))
        keep = self.limit // 2
        threshold = int(np.partition(values, len(values) - keep)[len(values) - keep])
        forgotten = [word for word, count in self.counts.items() if count <= threshold]
        for word in forgotten:  # in place: a second table would double the peak
            del self.counts[word]
        self.reductions += 1
        self.largest_forgotten = max(self.largest_forgotten, threshold)


def count_words(corpus: Corpus, kind: str, *, limit: int, max_tokens: int = 0) -> WordCounts:
    """First pass of 'default' and 'whitespace': count the words in at most ``limit`` table entries."""
    counted = WordCounts(limit)
    splitter = new_tokenizer(kind)
    for batch in corpus.batches(chars_per_batch=BATCH_CHARS):
        words = _words(batch, kind, splitter)
        if max_tokens:
            words = words[: max_tokens - counted.tokens]
        counted.add(words)
        if max_tokens and counted.tokens >= max_tokens:
            break
    return counted


def _encode_one_pass(corpus: Corpus, cfg: TrainConfig, folder: Path) -> tuple[Tokenizer, Vocabulary, int] | None:
    """'default' and 'whitespace' in one pass: ids in order of first sight go to a file while counting, then become rows.

    About twice as fast as counting and encoding in two passes; on Linux a large corpus is cut
    into parts read in one process per core, whose ids are merged as if one had read it all. Returns None
    when the distinct words outgrow the counting table (see :func:`count_limit`); the two passes
    of :func:`_encode_counted`, which prune while counting, take over then.
    """
    limit = count_limit(cfg.max_vocab)
    processes = _scan_processes(limit)
    parts = corpus.parts(processes) if processes > 1 and not cfg.max_tokens else None
    first, table = _Scan(folder, "0", limit, cfg.tokenizer), WordIds()
    scans: list[tuple[_Scan, np.ndarray | None]] = [(first, None)]
    if parts is None:
        first.read(corpus, table, cfg.max_tokens)
    else:
        with multiprocessing.get_context("fork").Pool(len(parts) - 1, initializer=_leave_signals_to_parent, initargs=(os.getpid(),)) as pool:
            pending = [
                pool.apply_async(_scan_elsewhere, (part, folder, str(number), limit, cfg.tokenizer))
                for number, part in enumerate(parts[1:], start=1)
            ]
            first.read(parts[0], table, 0)
            others = [result.get() for result in pending]
        corpus.invalid_bytes = parts[0].invalid_bytes + sum(scan.invalid_bytes for scan in others)
        # Each later part's words take the ids they would have had in one pass: new ones after all before them.
        for scan in others:
            mapping = table.ids_of_lines(scan.words)
            scans.append((scan, mapping))
            first.overflow |= scan.overflow or len(table) > limit
            if not first.overflow:
                first.grow(len(table))
                first.counts[mapping] += scan.counts[: len(mapping)]
                first.written += scan.written
    if first.overflow:
        for scan, _ in scans:
            scan.remove()
        return None
    if first.written == 0:
        raise CorpusError("the corpus is empty: it holds no words")
    words = table.words
    special = [words.index(UNKNOWN)] if UNKNOWN in words else []  # the tokenizer's own unknown token is never a word
    counts = first.counts[: len(words)]
    kept = _kept(counts, cfg, special=special)
    remap = np.full(len(counts), -1, dtype=np.int32)
    remap[kept] = np.arange(len(kept), dtype=np.int32)
    with _writing(folder, len(kept), cfg.max_sentence) as writer:
        for scan, mapping in scans:
            _remap(scan.raw_path, scan.lengths_path, remap if mapping is None else remap[mapping], writer)
            scan.remove()
    kept_words = [words[index] for index in kept.tolist()]
    vocabulary = Vocabulary(
        words=kept_words, counts=counts[kept], token_ids=np.arange(1, len(kept) + 1, dtype=np.int64)
    )
    return new_tokenizer(cfg.tokenizer, kept_words), vocabulary, first.written


class _Scan:
    """One pass of :func:`_encode_one_pass` over a corpus (or half of one): ids, line lengths, counts."""

    def __init__(self, folder: Path, name: str, limit: int, kind: str) -> None:
        self.kind = kind
        self.raw_path, self.lengths_path = folder / f"token-ids-{name}.tmp", folder / f"lengths-{name}.tmp"
        self.limit = limit
        self.counts = np.zeros(1 << 16, dtype=np.int64)
        self.written = 0
        self.overflow = False
        self.words = ""  # where the scan ran in another process: its words in order, one per line
        self.invalid_bytes = 0

    def read(self, source, table: WordIds, max_tokens: int) -> None:
        """Scan ``source`` (a Corpus or a Part) numbering words in ``table``; stop early, with ``overflow``, if they outgrow ``limit``."""
        with open(self.raw_path, "wb") as raw, open(self.lengths_path, "wb") as lengths_out:
            for batch in source.batches(chars_per_batch=BATCH_CHARS):
                ids, lengths = _first_sight_ids(batch, table, self.kind)
                if max_tokens:
                    ids, lengths = ids[: max_tokens - self.written], _cut_lengths(lengths, max_tokens - self.written)
                if len(table) > self.limit:
                    self.overflow = True
                    return
                self.grow(len(table))
                self.counts += np.bincount(ids, minlength=len(self.counts))
                self.written += len(ids)
                raw.write(ids.tobytes())
                lengths_out.write(lengths.tobytes())
                if max_tokens and self.written >= max_tokens:
                    return

    def grow(self, words: int) -> None:
        """Make room in the counts for ``words`` words."""
        if words > len(self.counts):
            extra = max(words, 2 * len(self.counts)) - len(self.counts)
            self.counts = np.concatenate([self.counts, np.zeros(extra, dtype=np.int64)])

    def remove(self) -> None:
        self.raw_path.unlink(missing_ok=True)
        self.lengths_path.unlink(missing_ok=True)


def _scan_elsewhere(part, folder: Path, name: str, limit: int, kind: str) -> _Scan:
    """:meth:`_Scan.read` in a worker process; what comes back holds the words as text instead of the table."""
    scan, table = _Scan(folder, name, limit, kind), WordIds()
    scan.read(part, table, 0)
    scan.words = "\n".join(table.words)  # a string pickles many times faster than a list of them
    scan.invalid_bytes = part.invalid_bytes
    return scan


PR_SET_PDEATHSIG = 1  # Linux prctl: the signal a process gets when its parent dies


def _leave_signals_to_parent(parent: int) -> None:
    """In a scanning process: Ctrl-C is the parent's to handle, and the SIGTERM that ends the pool
    ends the process quietly (the parent's handler, inherited by fork, would print a traceback).

    A parent killed outright (``kill -9``) takes the process with it (Linux's parent-death signal),
    instead of leaving it to scan on and print BrokenPipeError tracebacks when it reports.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not glibc: the process ends when it next reports
        pass
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)


MAX_SCAN_PROCESSES = 8
_BYTES_PER_WORD = 160  # a word of the counting dict, with its string, in a scanning process


def _scan_processes(limit: int) -> int:
    """Processes that read parts of a corpus at once: Linux (fork), one per core, at most 8.

    Each may hold up to ``limit`` distinct words before the two-pass encoder takes over, so
    no more start than half the available memory holds.
    """
    if sys.platform != "linux":
        return 1
    cores = len(os.sched_getaffinity(0))
    free = available_memory()
    memory_allows = MAX_SCAN_PROCESSES if free is None else free // 2 // (limit * _BYTES_PER_WORD)
    return max(1, min(cores, MAX_SCAN_PROCESSES, memory_allows))


def _first_sight_ids(batch: list[str], table: WordIds, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The id of every token of ``batch``, as the ``kind`` tokenizer splits it (see :func:`_words`), and the tokens of each line."""
    if kind == "whitespace":
        buffer, starts, ends, lengths = split_whitespace(batch)
    elif all(map(str.isascii, batch)):
        buffer, starts, ends, lengths = split_ascii_words(batch)
    else:
        buffer, starts, ends, lengths = _split_default(batch)
    return table.ids(buffer, starts, ends), lengths


def _split_default(lines: list[str]) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """The 'default' tokenizer's words of ``lines`` in any script, as the splitters of :mod:`.wordids` return them.

    Python's removal of FORMAT_CHARACTERS, NFKC and lowercasing stand in for HuggingFace's
    normalizer where they give what it gives for every character of the lines (checked once per
    character; they differ where the two know different Unicode versions), and each character's
    class is asked of HuggingFace's pre-tokenizer once. Otherwise the lines go through HuggingFace's normalizer and pre-tokenizer,
    one call each for all lines: normalizing and splitting lines joined by newlines gives the words
    of each line alone, since a newline composes with nothing and ends every word.
    """
    text = "\n".join(lines)
    characters = distinct_characters(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32))
    if all(map(_normalizes_alike, characters.tolist())):
        invisible = [chr(code) for code in characters[np.isin(characters, _FORMAT_CODES)].tolist()]
        try:
            return split_runs(_normalize(text, invisible=invisible), _pre_tokenizer_classes)
        except _UnknownClass:
            pass
    splitter = _default_splitter()
    text = splitter.normalizer.normalize_str(text)
    pieces = splitter.pre_tokenizer.pre_tokenize_str(text)
    spans = np.fromiter(itertools.chain.from_iterable(span for _, span in pieces), dtype=np.int64, count=2 * len(pieces))
    byte_at = 1 + utf8_offsets(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32))  # after padded()'s newline
    buffer = padded(text)
    starts, ends = byte_at[spans[0::2]], byte_at[spans[1::2]]
    return buffer, starts, ends, line_lengths(buffer, starts)


def _normalize(text: str, *, invisible: list[str] | None = None) -> str:
    """The 'default' normalizer (FORMAT_CHARACTERS removed, NFKC, then lowercase) in Python.

    ``invisible``: the format characters ``text`` holds, where the caller knows them; removing
    them one by one with ``str.replace`` is far faster than a regular expression's search.
    HuggingFace lowercases character by character, so a capital sigma is always 'σ', never the
    final 'ς' that ``str.lower`` makes of one at a word's end.
    """
    if invisible is None:
        text = FORMAT.sub("", text)
    else:
        for character in invisible:
            text = text.replace(character, "")
    return unicodedata.normalize("NFKC", text).replace("\u03a3", "\u03c3").lower()


@functools.lru_cache(maxsize=None)
def _normalizes_alike(code: int) -> bool:
    """Whether :func:`_normalize` gives what the 'default' normalizer gives for the character alone."""
    return _normalize(chr(code)) == _default_splitter().normalizer.normalize_str(chr(code))


class _UnknownClass(Exception):
    """A character the 'default' pre-tokenizer treats other than as a word, space or other character."""


def _pre_tokenizer_classes(code_points: np.ndarray) -> list[int]:
    return [_pre_tokenizer_class(code) for code in code_points.tolist()]


@functools.lru_cache(maxsize=None)
def _pre_tokenizer_class(code: int) -> int:
    """WORD, SPACE or OTHER: how the 'default' pre-tokenizer treats the character, asked of it between two letters."""
    character = chr(code)
    pieces = [word for word, _ in _default_splitter().pre_tokenizer.pre_tokenize_str(f"a{character}a")]
    for kind, expected in ((WORD, [f"a{character}a"]), (SPACE, ["a", "a"]), (OTHER, ["a", character, "a"])):
        if pieces == expected:
            return kind
    raise _UnknownClass(character)


@functools.lru_cache(maxsize=1)
def _default_splitter() -> Tokenizer:
    return new_tokenizer("default")


def _encode_counted(corpus: Corpus, cfg: TrainConfig, folder: Path) -> tuple[Tokenizer, Vocabulary, int]:
    """'default' and 'whitespace': count, keep the most frequent words, encode straight into rows.

    The second pass counts the kept words again, exactly; a word forgotten while
    counting (see :class:`WordCounts`) may then move up, and the rows are renumbered.
    """
    kind = cfg.tokenizer
    counted = count_words(corpus, kind, limit=count_limit(cfg.max_vocab), max_tokens=cfg.max_tokens)
    if counted.reductions:
        log.info(
            "counted the corpus in %d reductions of its word table (%d words); words seen at most %d times "
            "at a reduction were forgotten",
            counted.reductions, counted.limit, counted.largest_forgotten,
        )
    words = _select(counted, cfg)
    del counted
    tokenizer = new_tokenizer(kind, words)
    rows = {word: row for row, word in enumerate(words)}
    with _writing(folder, len(words), cfg.max_sentence, count_rows=True) as writer:
        for batch in corpus.batches(chars_per_batch=BATCH_CHARS):
            ids, lengths = _encode_batch(batch, kind, rows, tokenizer)
            if cfg.max_tokens:
                room = cfg.max_tokens - writer.corpus_tokens
                ids, lengths = ids[:room], _cut_lengths(lengths, room)
            writer.add(ids, lengths)
            if cfg.max_tokens and writer.corpus_tokens >= cfg.max_tokens:
                break
    del rows
    counts = writer.counts
    order = np.argsort(-counts, kind="stable")
    if (order != np.arange(len(order))).any():
        _renumber(folder / "tokens.i32", order)
        words = [words[row] for row in order.tolist()]
        counts = counts[order]
        tokenizer = new_tokenizer(kind, words)
    token_ids = np.arange(1, len(words) + 1, dtype=np.int64)  # new_tokenizer's ids: 0 is UNKNOWN
    return tokenizer, Vocabulary(words=words, counts=counts, token_ids=token_ids), writer.corpus_tokens


def _select(counted: WordCounts, cfg: TrainConfig) -> list[str]:
    """The words reaching min_count, most frequent first (ties: first seen), at most max_vocab."""
    if not counted.tokens:
        raise CorpusError("the corpus is empty: it holds no words")
    counted.counts.pop(UNKNOWN, None)  # the tokenizer's own unknown token is never a word
    words = list(counted.counts)
    values = np.fromiter(counted.counts.values(), dtype=np.int64, count=len(words))
    return [words[index] for index in _kept(values, cfg, special=[]).tolist()]


def _words(batch: list[str], kind: str, splitter: Tokenizer) -> list[str]:
    """Every token of the lines of ``batch``, in order, exactly as the ``kind`` tokenizer splits them.

    'whitespace' is Python's split (see :func:`_encode_batch`). 'default' splits
    runs of ASCII lines with a regular expression, several times faster than
    HuggingFace's normalize + pre-tokenize calls and the same on ASCII text (NFKC
    leaves it alone; ``\\w`` and ``\\s`` are the ASCII classes of the Rust regex
    ``\\w+|[^\\w\\s]+``, whose ``\\s`` leaves out 0x1C-0x1F, as Python's re.ASCII does);
    other lines go through the tokenizer's own normalizer and pre-tokenizer.
    """
    if kind == "whitespace":
        return list(itertools.chain.from_iterable(map(str.split, batch)))
    words: list[str] = []
    for is_ascii, run in itertools.groupby(batch, key=str.isascii):
        text = "\n".join(run)
        if is_ascii:
            words += _ASCII_TOKEN.findall(text.lower())
        else:
            pieces = splitter.pre_tokenizer.pre_tokenize_str(splitter.normalizer.normalize_str(text))
            words += [word for word, _ in pieces]
    return words


def _encode_batch(batch: list[str], kind: str, rows: dict[str, int], tokenizer: Tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """The row of every token of ``batch`` (-1: not kept) and the tokens of each line.

    A dictionary lookup in Python is several times faster than a WordLevel
    encode; ``tokenizer`` (knowing the kept words) encodes only 'default' lines
    that are not ASCII. The 'whitespace' tokenizer.json splits like Python's
    str.split, except at the ASCII separators 0x1C-0x1F, which only Python splits at.
    """
    if kind == "whitespace":
        return _lookup([line.split() for line in batch], rows)
    parts = []
    for is_ascii, run in itertools.groupby(batch, key=str.isascii):
        if is_ascii:
            parts.append(_lookup([_ASCII_TOKEN.findall(line.lower()) for line in run], rows))
            continue
        encodings = tokenizer.encode_batch_fast(list(run), add_special_tokens=False)
        ids = np.fromiter(itertools.chain.from_iterable(encoding.ids for encoding in encodings), dtype=np.int32)
        lengths = np.fromiter((len(encoding.ids) for encoding in encodings), dtype=np.int64, count=len(encodings))
        parts.append((ids - 1, lengths))  # token id i is row i - 1; UNKNOWN (0) becomes -1
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([ids for ids, _ in parts]), np.concatenate([lengths for _, lengths in parts])


def _lookup(split: list[list[str]], rows: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter(map(len, split), dtype=np.int64, count=len(split))
    words = itertools.chain.from_iterable(split)
    ids = np.fromiter(map(rows.get, words, itertools.repeat(-1)), dtype=np.int32, count=int(lengths.sum()))
    return ids, lengths


def _cut_lengths(lengths: np.ndarray, room: int) -> np.ndarray:
    """Line lengths of the first ``room`` tokens: the line that crosses it is cut, later ones become empty."""
    starts = np.cumsum(lengths) - lengths
    return np.clip(room - starts, 0, lengths)


class _RowWriter:
    """Appends vocabulary rows and sentence offsets to the token files, one batch at a time.

    Tokens whose row is -1 are left out, sentences left empty vanish and longer
    ones than ``max_sentence`` are split; nothing is held per token or per sentence.
    With ``count_rows``, ``counts`` counts each row written.
    """

    def __init__(self, tokens: BinaryIO, offsets: BinaryIO, rows: int, max_sentence: int, *, count_rows: bool) -> None:
        self.counts = np.zeros(rows if count_rows else 0, dtype=np.int64)
        self.corpus_tokens = 0  # every token given, written or not
        self.written = 0
        self.max_sentence = max_sentence
        self._count_rows = count_rows
        self._tokens = tokens
        self._offsets = offsets
        offsets.write(np.zeros(1, dtype=np.int64).tobytes())

    def add(self, rows: np.ndarray, line_lengths: np.ndarray) -> None:
        """Write ``rows`` (int32), the tokens of lines ``line_lengths`` long."""
        keep = rows >= 0
        if np.count_nonzero(keep) == len(rows):
            kept, lengths = rows, line_lengths
        else:
            kept, lengths = rows[keep], _true_per_line(keep, line_lengths)
        lengths = _split_long(lengths[lengths > 0], self.max_sentence)
        self._tokens.write(kept.tobytes())
        self._offsets.write((self.written + np.cumsum(lengths, dtype=np.int64)).tobytes())
        if self._count_rows:
            self.counts += np.bincount(kept, minlength=len(self.counts))
        self.written += len(kept)
        self.corpus_tokens += len(rows)


def _true_per_line(flags: np.ndarray, line_lengths: np.ndarray) -> np.ndarray:
    """How many of ``flags`` (bool, the tokens of lines ``line_lengths`` long) are True in each line."""
    sums = np.zeros(len(line_lengths), dtype=np.int64)
    filled = line_lengths > 0  # reduceat would give an empty line the flag at its start, and cut the line before it
    if filled.any():
        starts = np.cumsum(line_lengths) - line_lengths
        sums[filled] = np.add.reduceat(flags.view(np.uint8), starts[filled], dtype=np.int64)
    return sums


@contextmanager
def _writing(folder: Path, rows: int, max_sentence: int, *, count_rows: bool = False) -> Iterator[_RowWriter]:
    """A :class:`_RowWriter` into ``folder``'s tokens.i32 and offsets.i64."""
    with open(folder / "tokens.i32", "wb") as tokens, open(folder / "offsets.i64", "wb") as offsets:
        yield _RowWriter(tokens, offsets, rows, max_sentence, count_rows=count_rows)


def _renumber(path: Path, order: np.ndarray) -> None:
    """Rewrite the token file in place so that row ``order[i]`` becomes row ``i``."""
    if not path.stat().st_size:
        return
    new_row = np.empty(len(order), dtype=np.int32)
    new_row[order] = np.arange(len(order), dtype=np.int32)
    tokens = np.memmap(path, dtype=np.int32, mode="r+")
    for start in range(0, len(tokens), REMAP_TOKENS):
        tokens[start : start + REMAP_TOKENS] = new_row[tokens[start : start + REMAP_TOKENS]]
    tokens.flush()
    del tokens


def _encode_with_tokenizer(corpus: Corpus, cfg: TrainConfig, folder: Path) -> tuple[Tokenizer, Vocabulary, int]:
    """A tokenizer.json given by the user: write its ids in one pass, then turn the kept ones into rows.

    Its vocabulary bounds the counts; the ids and line lengths wait in files, not in memory.
    """
    if not Path(cfg.tokenizer).is_file():
        raise ConfigError(
            f"--tokenizer {cfg.tokenizer}: use 'default', 'whitespace' or the path of a tokenizer.json"
        )
    tokenizer = load_tokenizer(cfg.tokenizer)
    raw_path, lengths_path = folder / "token-ids.tmp", folder / "lengths.tmp"
    counts = np.zeros(tokenizer.get_vocab_size(with_added_tokens=True), dtype=np.int64)
    written = 0
    with open(raw_path, "wb") as raw, open(lengths_path, "wb") as lengths_out:
        for batch in corpus.batches(chars_per_batch=BATCH_CHARS):
            encodings = tokenizer.encode_batch_fast(batch, add_special_tokens=False)
            ids = np.fromiter(itertools.chain.from_iterable(encoding.ids for encoding in encodings), dtype=np.int32)
            lengths = np.fromiter((len(encoding.ids) for encoding in encodings), dtype=np.int64, count=len(encodings))
            if cfg.max_tokens:
                ids, lengths = ids[: cfg.max_tokens - written], _cut_lengths(lengths, cfg.max_tokens - written)
            written += len(ids)
            counts += np.bincount(ids, minlength=len(counts))[: len(counts)]
            raw.write(ids.tobytes())
            lengths_out.write(lengths.tobytes())
            if cfg.max_tokens and written >= cfg.max_tokens:
                break
    if written == 0:
        raise CorpusError("the corpus is empty: it holds no words")
    special = _special_ids(tokenizer)
    if counts.sum() == counts[special].sum():
        raise CorpusError(
            f"every token of the corpus is a special token of {cfg.tokenizer} (such as its unknown token): "
            "it does not know the corpus's words; use --tokenizer default or whitespace"
        )
    kept = _kept(counts, cfg, special=special)
    remap = np.full(len(counts), -1, dtype=np.int32)
    remap[kept] = np.arange(len(kept), dtype=np.int32)
    with _writing(folder, len(kept), cfg.max_sentence) as writer:
        _remap(raw_path, lengths_path, remap, writer)
    raw_path.unlink()
    lengths_path.unlink()
    vocabulary = Vocabulary(
        words=[tokenizer.id_to_token(int(token_id)) for token_id in kept],
        counts=counts[kept],
        token_ids=kept.astype(np.int64),
    )
    return tokenizer, vocabulary, written


def _special_ids(tokenizer: Tokenizer) -> list[int]:
    """Ids that are never words: the tokenizer's special added tokens and its model's unknown token."""
    special = {token_id for token_id, token in tokenizer.get_added_tokens_decoder().items() if token.special}
    model = json.loads(tokenizer.to_str()).get("model", {})
    unknown = tokenizer.token_to_id(model["unk_token"]) if isinstance(model.get("unk_token"), str) else model.get("unk_id")
    if isinstance(unknown, int) and 0 <= unknown < tokenizer.get_vocab_size(with_added_tokens=True):
        special.add(unknown)
    return sorted(special)


def _kept(counts: np.ndarray, cfg: TrainConfig, *, special: list[int]) -> np.ndarray:
    """Ids reaching min_count (special tokens never), most frequent first, at most max_vocab."""
    eligible = counts.copy()
    eligible[special] = 0
    kept = np.flatnonzero(eligible >= cfg.min_count)
    if len(kept) == 0:
        most = int(eligible.max()) if len(eligible) else 0
        raise CorpusError(
            f"no word occurs --min-count {cfg.min_count} times (the most frequent occurs {most} times); "
            f"lower --min-count"
        )
    kept = kept[np.argsort(-eligible[kept], kind="stable")]
    return kept[: cfg.max_vocab] if cfg.max_vocab else kept


def _remap(raw_path: Path, lengths_path: Path, remap: np.ndarray, writer: _RowWriter) -> None:
    """Turn tokenizer ids into rows through ``writer``, whole lines about REMAP_TOKENS tokens at a time."""
    raw = _mapped(raw_path, np.int32)
    line_lengths = _mapped(lengths_path, np.int64)
    first = start = 0
    while first < len(line_lengths):
        block = np.asarray(line_lengths[first : first + REMAP_LINES])
        ends = np.cumsum(block)
        count = max(1, int(np.searchsorted(ends, REMAP_TOKENS, side="right")))  # at least one line
        stop = start + int(ends[count - 1])
        writer.add(remap[raw[start:stop]], block[:count])
        first, start = first + count, stop
    del raw, line_lengths


def _split_long(lengths: np.ndarray, max_sentence: int) -> np.ndarray:
    """Sentence lengths with each longer than ``max_sentence`` cut into pieces of that many (the last shorter)."""
    if not len(lengths) or lengths.max() <= max_sentence:
        return lengths
    pieces = -(-lengths // max_sentence)
    result = np.full(int(pieces.sum()), max_sentence, dtype=np.int64)
    result[np.cumsum(pieces) - 1] = lengths - (pieces - 1) * max_sentence
    return result


def _mapped(path: Path, dtype: type) -> np.ndarray:
    return np.memmap(path, dtype=dtype, mode="r") if path.stat().st_size else np.zeros(0, dtype)


def _read_stream(folder: Path) -> TokenStream:
    return TokenStream(tokens=_mapped(folder / "tokens.i32", np.int32), offsets=_mapped(folder / "offsets.i64", np.int64))


def _write_vocabulary(folder: Path, vocabulary: Vocabulary, stats: dict[str, int]) -> None:
    payload = {
        "stats": stats,
        "words": vocabulary.words,
        "counts": vocabulary.counts.tolist(),
        "token_ids": vocabulary.token_ids.tolist(),
    }
    (folder / "vocab.json").write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")


def _read_vocabulary(folder: Path) -> tuple[Vocabulary, dict[str, int]]:
    payload = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    vocabulary = Vocabulary(
        words=payload["words"],
        counts=np.asarray(payload["counts"], dtype=np.int64),
        token_ids=np.asarray(payload["token_ids"], dtype=np.int64),
    )
    return vocabulary, payload["stats"]


def cache_key(corpus: Corpus, cfg: TrainConfig) -> str:
    """What a token cache is keyed by: the corpus files as they are now and the settings that shape it."""
    tokenizer = cfg.tokenizer
    if tokenizer not in ("default", "whitespace") and Path(tokenizer).is_file():
        tokenizer = hashlib.sha256(Path(tokenizer).read_bytes()).hexdigest()
    identity = {
        "format": CACHE_FORMAT,
        "files": corpus.fingerprint(),
        "tokenizer": tokenizer,
        "min_count": cfg.min_count,
        "max_vocab": cfg.max_vocab,
        "max_sentence": cfg.max_sentence,
        "max_tokens": cfg.max_tokens,
    }
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def cached(cache_root: Path, key: str) -> Encoded | None:
    """The corpus encoded under ``key`` (see :func:`cache_key`), if that cache is still there.

    :func:`prepare` renames a whole cache into place; a folder missing a file (a partial copy
    of a model directory, say) is no cache.
    """
    folder = cache_root / key
    if not all((folder / name).is_file() for name in CACHE_FILES):
        return None
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    vocabulary, stats = _read_vocabulary(folder)
    return Encoded(tokenizer, vocabulary, _read_stream(folder), **stats, cached=True)


def cache_folder(out_dir: Path) -> Path:
    """Where the token-id cache of a model directory lives."""
    return Path(out_dir) / ".cache"


