"""Words of text and their ids, found with whole-array numpy operations instead of a Python step per word.

A batch of lines becomes one UTF-8 buffer. Its words are the runs between separator
bytes (or, in any script, the runs of characters of one class: :func:`split_runs`), found
in a few passes over the buffer; :class:`WordIds` then numbers every
distinct word in order of first sight. A word of at most KEY_BYTES bytes is keyed by
its bytes themselves, packed with its length into two 64-bit integers, and looked up
in an open-addressing table held in numpy arrays: exact, with no hash to collide
(the hash only picks where to start probing). Longer words go to a dict of strings.
On gcide.txt (4.9M words) in one process: 0.43 s, against 1.08 s for ``str.split`` and a
dict lookup per word (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import re

import numpy as np

KEY_BYTES = 15  # longest word keyed by its bytes: 8 + 7 bytes, the 16th byte holding the length
_LOAD = 0.5  # largest share of table slots in use before the table doubles
_FIRST_BITS = 16

# per key length: which bits of the word's 16 bytes are its own, and the length in the top byte
_MASKS = np.array(
    [[(1 << 8 * min(size, 8)) - 1, (1 << 8 * max(size - 8, 0)) - 1] for size in range(KEY_BYTES + 1)], dtype=np.uint64
).view(np.dtype((np.void, 16))).ravel()
_LENGTHS = np.arange(KEY_BYTES + 1, dtype=np.uint64) << np.uint64(56)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_MIX_HIGH = np.uint64(0xC2B2AE3D27D4EB4F)
_NOWHERE = np.array([1, 0], dtype=np.uint64)  # the key of no word (length 0) and of no empty slot (all 0)
_PAIR = np.dtype((np.void, 16))
# What str.split() splits at besides ASCII whitespace (every code point above 127 with isspace()).
_UNICODE_SPACE = re.compile("[\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")


class WordIds:
    """Word -> id, new words numbered in order of first sight; ``words[i]`` is the word of id ``i``."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self._long: dict[str, int] = {}
        self._new_table(_FIRST_BITS)

    def __len__(self) -> int:
        return len(self.words)

    def _new_table(self, bits: int) -> None:
        self._bits = bits
        # per slot: a key (first 8 bytes; next 7 and the length in the top byte, 0 in an empty slot) and its id
        self._keys = np.zeros((1 << bits, 2), dtype=np.uint64)
        self._ids = np.zeros(1 << bits, dtype=np.int32)

    def ids_of_lines(self, text: str) -> np.ndarray:
        """The id of the word on each line of ``text`` (words joined by newlines), numbering the new ones."""
        buffer, starts, ends = split_at_newlines(text)
        return self.ids(buffer, starts, ends)

    def ids(self, buffer: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """The id (int32) of each word ``buffer[starts[i]:ends[i]]``, numbering the new ones in order.

        ``buffer`` holds UTF-8 text followed by at least 16 bytes more (see :func:`padded`).
        """
        sizes = ends - starts
        long = np.flatnonzero(sizes > KEY_BYTES)
        sizes[long] = 0
        keys = _keys(buffer, starts, sizes)
        keys[long] = _NOWHERE  # found nowhere in the table: long words are looked up in a dict below
        mixed = _mix(keys)
        found = self._find(keys, mixed)
        long_words = [buffer[start:end].decode() for start, end in zip(starts[long].tolist(), ends[long].tolist())]
        found[long] = np.fromiter((self._long.get(word, -1) for word in long_words), dtype=np.int32, count=len(long))
        missing = np.flatnonzero(found < 0)
        if len(missing):
            missing = missing[sizes[missing] > 0]
            self._add_new(buffer, starts[missing], found, missing, _unpaired(_paired(keys)[missing]), mixed[missing], long, long_words)
        return found

    def _add_new(self, buffer: bytes, starts, found, missing, keys, mixed, long, long_words) -> None:
        """Number the new words in order of first sight, add them, and fill in their ids in ``found``.

        ``missing``: where the new short words are, with their ``starts``, ``keys`` and hashes;
        ``long``: where the long words are.
        """
        first, inverse = _distinct(keys, mixed)
        new_long: dict[str, int] = {}  # each new long word and its first position
        for word, position in zip(long_words, long.tolist()):
            if word not in self._long:
                new_long.setdefault(word, position)
        new_words = _words_at(buffer, starts[first], keys[first, 1] >> np.uint64(56))
        short_count = len(first)
        if new_long:  # interleave the long words by position
            positions = np.concatenate([missing[first], np.fromiter(new_long.values(), dtype=np.int64, count=len(new_long))])
            order = np.argsort(positions, kind="stable")
            new_words += list(new_long)
            new_words = [new_words[index] for index in order.tolist()]
        else:
            order = np.arange(short_count)
        new_id = np.empty(len(order), dtype=np.int32)
        new_id[order] = np.arange(len(self.words), len(self.words) + len(order), dtype=np.int32)
        self.words.extend(new_words)
        self._long.update(zip(new_long, new_id[short_count:].tolist()))
        self._place(_unpaired(_paired(keys)[first]), mixed[first], new_id[:short_count])
        found[missing] = new_id[:short_count][inverse]
        if new_long:
            found[long] = [self._long[word] for word in long_words]

    def _slots(self, mixed: np.ndarray) -> np.ndarray:
        return (mixed >> np.uint64(64 - self._bits)).view(np.int64)

    def _find(self, keys: np.ndarray, mixed: np.ndarray) -> np.ndarray:
        """The id of each key, -1 where it is not in the table: linear probing, all keys a step at a time."""
        slots = self._slots(mixed)
        held = _unpaired(_paired(self._keys)[slots])
        same = held[:, 0] == keys[:, 0]
        same &= held[:, 1] == keys[:, 1]
        found = self._ids[slots]
        found[~same] = -1
        pending = np.flatnonzero(~same & (held[:, 1] != 0))  # a slot taken by another key: probe on
        slots = slots[pending]
        mask = (1 << self._bits) - 1
        while len(pending):
            slots = (slots + 1) & mask
            held = _unpaired(_paired(self._keys)[slots])
            same = (held == _unpaired(_paired(keys)[pending])).all(axis=1)
            found[pending[same]] = self._ids[slots[same]]
            going_on = ~same & (held[:, 1] != 0)
            pending, slots = pending[going_on], slots[going_on]
        return found

    def _place(self, keys: np.ndarray, mixed: np.ndarray, ids: np.ndarray) -> None:
        """Put keys that are not in the table yet (each once) into it, doubling it to keep its load at most _LOAD."""
        used = len(self.words) - len(self._long)
        if used > _LOAD * len(self._ids):
            held = np.flatnonzero(self._keys[:, 1])
            old_keys, old_ids = _unpaired(_paired(self._keys)[held]), self._ids[held]
            bits = self._bits
            while used > _LOAD * (1 << bits):
                bits += 1
            self._new_table(bits)
            self._place(old_keys, _mix(old_keys), old_ids)
        slots = self._slots(mixed)
        pending = np.arange(len(keys))
        mask = (1 << self._bits) - 1
        while len(pending):
            free = self._keys[:, 1][slots] == 0
            # of the keys meeting at a free slot, the first takes it; the rest probe on
            taken, first = np.unique(slots[free], return_index=True)
            winners = pending[free][first]
            _paired(self._keys)[taken], self._ids[taken] = _paired(keys)[winners], ids[winners]
            placed = np.zeros(len(pending), dtype=bool)
            placed[np.flatnonzero(free)[first]] = True
            pending, slots = pending[~placed], slots[~placed]
            slots = np.where(self._keys[:, 1][slots] != 0, (slots + 1) & mask, slots)


def _mix(keys: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each key, whose top bits pick its slot."""
    mixed = keys[:, 1] * _MIX_HIGH
    mixed ^= keys[:, 0]
    mixed *= _MIX
    return mixed


def _distinct(keys: np.ndarray, mixed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For keys with repeats: the first position of each distinct key, in order, and which distinct key each one is.

    Grouped by their hash, then checked against the keys themselves: two keys sharing a hash
    (as good as never) are told apart by sorting the keys.
    """
    if not len(keys):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.argsort(mixed)
    ordered = mixed[order]
    starts_group = np.empty(len(order), dtype=bool)
    starts_group[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts_group[1:])
    first = np.minimum.reduceat(order, np.flatnonzero(starts_group))
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.cumsum(starts_group) - 1
    if not (_unpaired(_paired(keys)[first[inverse]]) == keys).all():
        _, first, inverse = np.unique(_paired(keys), return_index=True, return_inverse=True)
    by_position = np.argsort(first)
    rank = np.empty(len(first), dtype=np.int64)
    rank[by_position] = np.arange(len(first))
    return first[by_position], rank[inverse.ravel()]


def _words_at(buffer: bytes, starts: np.ndarray, sizes: np.ndarray) -> list[str]:
    """The words ``buffer[start:start + size]`` (none holding a newline), decoded in one call."""
    if not len(starts):
        return []
    sizes = sizes.astype(np.int64)
    spans = sizes + 1  # each word and a newline after it
    offsets = np.cumsum(spans) - spans
    source = np.repeat(starts - offsets, spans) + np.arange(int(spans.sum()))
    joined = np.frombuffer(buffer, dtype=np.uint8)[source]
    joined[offsets + sizes] = 10
    return joined.tobytes().decode().split("\n")[:-1]


def _keys(buffer: bytes, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The key of each word of at most KEY_BYTES bytes at ``starts``: its bytes and its length, in two uint64."""
    # every byte offset of the buffer seen as the start of 16 bytes (unaligned loads)
    sixteens = np.ndarray((len(buffer) - 15,), dtype=_PAIR, buffer=buffer, strides=(1,))
    keys = _unpaired(sixteens[starts])
    keys &= _unpaired(_MASKS[sizes])
    keys[:, 1] |= _LENGTHS[sizes]
    return keys


def _paired(keys: np.ndarray) -> np.ndarray:
    """(n, 2) uint64 keys seen as n 16-byte items: numpy gathers and scatters these many times faster than rows."""
    return keys.view(_PAIR).ravel()


def _unpaired(items: np.ndarray) -> np.ndarray:
    return items.view(np.uint64).reshape(-1, 2)


def padded(text: str) -> bytes:
    """``text`` as UTF-8 between a leading and a trailing newline, and 16 zero bytes after (for :func:`_keys`)."""
    return b"\n" + text.encode() + b"\n" + bytes(16)


def _runs(kind: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends of the runs of one class in ``kind`` (bool, or classes with 0 for SPACE), which starts and ends 0."""
    changes = np.flatnonzero(kind[1:] != kind[:-1]) + 1
    if kind.dtype == bool:  # two classes: the changes alternate between starts and ends
        return changes[0::2], changes[1::2]
    at_start = np.flatnonzero(kind[changes] != 0)  # a change to a class other than 0 starts a word; the next change ends it
    return changes[at_start], changes[at_start + 1]


def _bytes_of(buffer: bytes) -> np.ndarray:
    return np.frombuffer(buffer, dtype=np.uint8)[: len(buffer) - 16]


def line_lengths(buffer: bytes, starts: np.ndarray) -> np.ndarray:
    """Words in each line of a :func:`padded` buffer, whose words start at ``starts``."""
    words_before = np.searchsorted(starts, np.flatnonzero(_bytes_of(buffer) == 10))  # at each newline
    return np.diff(words_before).astype(np.int64)


def split_whitespace(lines: list[str]) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """The words of ``lines`` (none holding a newline) as ``str.split`` finds them: buffer, starts, ends, words per line."""
    text = "\n".join(lines)
    if not text.isascii():
        text = _UNICODE_SPACE.sub(" ", text)  # splits the same; only ASCII spaces are looked for below
    buffer = padded(text)
    data = _bytes_of(buffer)
    # str.split's ASCII whitespace: 9-13, 28-31 and the space (uint8 arithmetic wraps below 9 and 28)
    space = (data == 32) | ((data - np.uint8(9)) <= 4) | ((data - np.uint8(28)) <= 3)
    starts, ends = _runs(~space)
    return buffer, starts, ends, line_lengths(buffer, starts)


def split_ascii_words(lines: list[str]) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """The 'default' tokenizer on ASCII ``lines``: lowercased, then runs of ``[A-Za-z0-9_]`` and of other non-space bytes.

    This is HuggingFace's NFKC + lowercase + ``\\w+|[^\\w\\s]+`` on ASCII text, whose ``\\s``
    there is the space and bytes 9-13 only: bytes 28-31, which ``str.split`` splits at, are 'other'.
    """
    buffer = padded("\n".join(lines).lower())
    data = _bytes_of(buffer)
    word = ((data - np.uint8(97)) <= 25) | ((data - np.uint8(48)) <= 9) | (data == 95)
    space = (data == 32) | ((data - np.uint8(9)) <= 4)
    kind = word.view(np.int8) + 2 * (~word & ~space).view(np.int8)  # 0 space, 1 word, 2 other
    starts, ends = _runs(kind)
    return buffer, starts, ends, line_lengths(buffer, starts)


SPACE, WORD, OTHER = 0, 1, 2  # classes of characters for split_runs
_ASCII_CLASSES = np.full(128, OTHER, dtype=np.int8)
_ASCII_CLASSES[[ord(character) for character in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"]] = WORD
_ASCII_CLASSES[[9, 10, 11, 12, 13, 32]] = SPACE


def utf8_offsets(characters: np.ndarray) -> np.ndarray:
    """Where each character offset of ``characters`` (uint32 code points), and their end, fall in their UTF-8 encoding."""
    utf8_sizes = 1 + (characters >= 0x80).view(np.uint8) + (characters >= 0x800) + (characters >= 0x10000)
    return np.concatenate([[0], np.cumsum(utf8_sizes, dtype=np.int64)])


def distinct_characters(characters: np.ndarray) -> np.ndarray:
    """The distinct code points above 127 among ``characters`` (uint32 code points), in order."""
    if not len(characters) or characters.max() < 128:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.bincount(characters)[128:]) + 128


def split_runs(text: str, classes_of) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """The words of the lines of ``text`` as the runs of WORD characters and the runs of OTHER ones, as
    the pre-tokenizer ``\\w+|[^\\w\\s]+`` splits them in any script: buffer, starts, ends, words per line.

    ASCII characters take the classes of :func:`split_ascii_words` (the newline: SPACE);
    ``classes_of(code_points)`` gives those of the others, called once with the distinct ones.
    """
    characters = np.frombuffer(f"\n{text}\n".encode("utf-32-le"), dtype=np.uint32)
    classes = np.zeros(int(characters.max()) + 1, dtype=np.int8)  # of every code point up to the text's largest
    classes[:128] = _ASCII_CLASSES[: len(classes)]
    others = distinct_characters(characters)
    classes[others] = classes_of(others)
    first, after = _runs(classes[characters])
    byte_at = utf8_offsets(characters)  # the buffer starts with the same newline
    buffer = padded(text)
    starts, ends = byte_at[first], byte_at[after]
    return buffer, starts, ends, line_lengths(buffer, starts)


def split_at_newlines(text: str) -> tuple[bytes, np.ndarray, np.ndarray]:
    """The lines of ``text`` (words joined by newlines) in one buffer, each a word of its own; empty lines are none."""
    buffer = padded(text)
    starts, ends = _runs(_bytes_of(buffer) != 10)
    return buffer, starts, ends
