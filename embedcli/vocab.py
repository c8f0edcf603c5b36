"""Tokenizer, vocabulary and the token-id file every epoch trains from.

The HuggingFace tokenizer splits text into tokens; we count them ourselves
(sub-sampling and the noise distribution need the counts), keep those reaching
``min_count``, and write the corpus once as int32 vocabulary rows with sentence
offsets, memory-mapped by training.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from .config import TrainConfig
from .corpus import Corpus
from .errors import ConfigError, CorpusError

UNKNOWN = "[UNK]"
CACHE_FORMAT = 2
REMAP_TOKENS = 1 << 22  # tokens turned into rows at a time, to bound memory


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
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
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
    """Tokenize, count and encode the corpus, or reuse the cached result of the same inputs."""
    key = _cache_key(corpus, cfg)
    folder = cache_root / key
    if (folder / "done").exists():
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        vocabulary, stats = _read_vocabulary(folder)
        return Encoded(tokenizer, vocabulary, _read_stream(folder), **stats, cached=True)
    if cache_root.exists():
        shutil.rmtree(cache_root)  # one cached corpus at a time keeps the disk bounded
    folder.mkdir(parents=True)

    raw_path = folder / "token-ids.tmp"
    if cfg.tokenizer == "whitespace":
        lengths, counts, words = _encode_whitespace(corpus, raw_path)
        kept = _kept(counts, cfg, special=[])
        tokenizer = new_tokenizer("whitespace", [words[raw_id] for raw_id in kept])
        token_ids = np.asarray([tokenizer.token_to_id(words[raw_id]) for raw_id in kept], dtype=np.int64)
    else:
        tokenizer = _trained_tokenizer(corpus, cfg)
        lengths, counts = _encode_raw(corpus, tokenizer, raw_path)
        special = [token_id for token_id, token in tokenizer.get_added_tokens_decoder().items() if token.special]
        kept = _kept(counts, cfg, special=special)
        token_ids = kept.astype(np.int64)
    vocabulary = Vocabulary(
        words=[tokenizer.id_to_token(int(token_id)) for token_id in token_ids],
        counts=counts[kept],
        token_ids=token_ids,
    )
    remap = np.full(len(counts), -1, dtype=np.int32)
    remap[kept] = np.arange(len(kept), dtype=np.int32)
    _remap(raw_path, lengths, remap, folder, cfg.max_sentence)
    raw_path.unlink()
    tokenizer.save(str(folder / "tokenizer.json"))
    stats = {"invalid_bytes": corpus.invalid_bytes, "corpus_tokens": int(lengths.sum())}
    _write_vocabulary(folder, vocabulary, stats)
    (folder / "done").write_text("ok\n")
    return Encoded(tokenizer, vocabulary, _read_stream(folder), **stats, cached=False)


def _trained_tokenizer(corpus: Corpus, cfg: TrainConfig) -> Tokenizer:
    if cfg.tokenizer == "default":
        tokenizer = new_tokenizer(cfg.tokenizer)
        trainer = trainers.WordLevelTrainer(
            vocab_size=cfg.max_vocab + 1 if cfg.max_vocab else 2**31 - 1,
            min_frequency=cfg.min_count,
            special_tokens=[UNKNOWN],
            show_progress=False,
        )
        tokenizer.train_from_iterator(corpus.batches(), trainer=trainer)
        return tokenizer
    if not Path(cfg.tokenizer).is_file():
        raise ConfigError(
            f"--tokenizer {cfg.tokenizer}: use 'default', 'whitespace' or the path of a tokenizer.json"
        )
    return load_tokenizer(cfg.tokenizer)


def _encode_raw(corpus: Corpus, tokenizer: Tokenizer, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Write every line's tokenizer ids to ``path``; return line lengths and id counts."""
    counts = np.zeros(tokenizer.get_vocab_size(with_added_tokens=True), dtype=np.int64)
    lengths: list[np.ndarray] = []
    with open(path, "wb") as out:
        for batch in corpus.batches():
            encodings = tokenizer.encode_batch_fast(batch, add_special_tokens=False)
            ids = np.fromiter(
                itertools.chain.from_iterable(encoding.ids for encoding in encodings), dtype=np.int32
            )
            lengths.append(np.fromiter((len(encoding.ids) for encoding in encodings), dtype=np.int64))
            if len(ids):
                counts += np.bincount(ids, minlength=len(counts))[: len(counts)]
            out.write(ids.tobytes())
    if not lengths or counts.sum() == 0:
        raise CorpusError("the corpus is empty: it holds no words")
    return np.concatenate(lengths), counts


def _encode_whitespace(corpus: Corpus, path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The 'whitespace' tokenizer in one pass: ids in order of first appearance, written to ``path``.

    Splitting on whitespace needs no tokenizer model, and a dictionary lookup in
    Python is several times faster than a WordLevel encode; the tokenizer.json
    written for the kept words splits the same way (Python's str.split also
    splits at the ASCII separators 0x1C-0x1F, which HuggingFace's does not).
    Returns line lengths, counts per id and the word of each id.
    """
    index: dict[str, int] = {}
    lengths: list[np.ndarray] = []
    chunks: list[np.ndarray] = []
    with open(path, "wb") as out:
        for batch in corpus.batches():
            split = [line.split() for line in batch]
            lengths.append(np.fromiter(map(len, split), dtype=np.int64, count=len(split)))
            words = list(itertools.chain.from_iterable(split))
            for word in sorted(set(words).difference(index)):  # new words get the next ids
                index[word] = len(index)
            ids = np.fromiter(map(index.__getitem__, words), dtype=np.int32, count=len(words))
            out.write(ids.tobytes())
            chunks.append(np.bincount(ids))
    counts = np.zeros(len(index), dtype=np.int64)
    for part in chunks:
        counts[: len(part)] += part
    if not len(counts) or counts.sum() == 0:
        raise CorpusError("the corpus is empty: it holds no words")
    return np.concatenate(lengths), counts, list(index)


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


def _remap(raw_path: Path, lengths: np.ndarray, remap: np.ndarray, folder: Path, max_sentence: int) -> None:
    """Turn tokenizer ids into rows, dropping unkept tokens; write rows and sentence offsets."""
    raw = np.memmap(raw_path, dtype=np.int32, mode="r") if raw_path.stat().st_size else np.zeros(0, np.int32)
    sentence_lengths: list[np.ndarray] = []
    ends = np.cumsum(lengths)
    with open(folder / "tokens.i32", "wb") as out:
        first = start = 0
        while first < len(lengths):
            # whole sentences, about REMAP_TOKENS tokens at a time (at least one sentence)
            last = max(first + 1, int(np.searchsorted(ends, start + REMAP_TOKENS, side="right")))
            part = lengths[first:last]
            stop = int(ends[last - 1])
            rows = remap[raw[start:stop]]
            keep = rows >= 0
            sentence = np.repeat(np.arange(len(part), dtype=np.int32), part)
            kept_lengths = np.bincount(sentence[keep], minlength=len(part))
            sentence_lengths.append(_split_long(kept_lengths[kept_lengths > 0], max_sentence))
            out.write(rows[keep].tobytes())
            first, start = last, stop
    all_lengths = np.concatenate(sentence_lengths)
    offsets = np.zeros(len(all_lengths) + 1, dtype=np.int64)
    np.cumsum(all_lengths, out=offsets[1:])
    offsets.tofile(folder / "offsets.i64")
    del raw


def _split_long(lengths: np.ndarray, max_sentence: int) -> np.ndarray:
    if not len(lengths) or lengths.max() <= max_sentence:
        return lengths
    pieces = []
    for length in lengths.tolist():
        while length > max_sentence:
            pieces.append(max_sentence)
            length -= max_sentence
        pieces.append(length)
    return np.asarray(pieces, dtype=np.int64)


def _read_stream(folder: Path) -> TokenStream:
    path = folder / "tokens.i32"
    tokens = np.memmap(path, dtype=np.int32, mode="r") if path.stat().st_size else np.zeros(0, np.int32)
    return TokenStream(tokens=tokens, offsets=np.fromfile(folder / "offsets.i64", dtype=np.int64))


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


def _cache_key(corpus: Corpus, cfg: TrainConfig) -> str:
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
    }
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def cache_folder(out_dir: Path) -> Path:
    """Where the token-id cache of a model directory lives."""
    return Path(out_dir) / ".cache"


