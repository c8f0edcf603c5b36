"""Vectors: querying trained word vectors. Knows nothing of training or corpora.

Queries run in numpy on the memory-mapped matrix and its stored row norms, so that loading a model
and asking it a question imports no PyTorch and copies no matrix; ``matrix``, ``to_embedding`` and
``to_embedding_bag`` bring PyTorch in when asked for.
"""

from __future__ import annotations

import difflib
import functools
import os
import reprlib
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tokenizers import Tokenizer

from .errors import ModelError, UnknownWordError, UsageError
from .store import open_model, read_whole, row_norms

if TYPE_CHECKING:
    import torch


Term = Any  # a query term: a word (str) or a vector (a 1-D numpy array or torch tensor)

NEIGHBORS = 10  # words a similarity query lists unless told (gensim's most_similar too)
ANSWERS = 5  # answers an analogy lists unless told
EMBEDDING_BAG_MODES = ("mean", "sum", "max")  # what nn.EmbeddingBag reduces a bag by


class Vectors:
    """Word vectors in vocabulary order (most frequent first), with cosine queries."""

    def __init__(
        self,
        words: Sequence[str],
        matrix: Any,
        *,
        counts: np.ndarray | None = None,
        norms: np.ndarray | None = None,
        normalize_word: Callable[[str], str] | None = None,
    ) -> None:
        """``matrix``: a (words x dim) float32 numpy array, memory map or torch tensor."""
        if hasattr(matrix, "detach"):  # a torch tensor
            matrix = matrix.detach().cpu().numpy()
        self.words = list(words)
        self.array = np.asarray(matrix, dtype=np.float32)
        self.counts = counts
        self._norms = None if norms is None else np.asarray(norms, dtype=np.float32)
        self._normalize_word = normalize_word
        self._index: dict[str, int] | None = None  # built on the third look-up: one-off queries scan
        self.source: Path | None = None  # the model directory it was loaded from, if any
        self._matrix: torch.Tensor | None = None
        self._scans = 0

    @classmethod
    def load(cls, model_dir: str | Path) -> Vectors:
        """The vectors of a model directory written by ``embedcli train`` or ``embedcli import``."""
        if not isinstance(model_dir, (str, os.PathLike)):
            raise UsageError(f"give the model's folder as a str or path, got {_shown(model_dir)}")
        return read_whole(Path(model_dir), lambda: cls._load(Path(model_dir)))

    @classmethod
    def _load(cls, model_dir: Path) -> Vectors:
        model = open_model(model_dir)  # checksums are computed meanwhile, in the background
        words = model.words
        if words is None:  # a directory without words.json: the tokenizer knows them
            try:
                vocabulary = {token_id: token for token, token_id in _tokenizer(model.tokenizer_json).get_vocab(True).items()}
                words = [vocabulary[token_id] for token_id in model.tensors["token_ids"].tolist()]
            except (ModelError, KeyError):
                model.verified()  # a checksum mismatch explains the damage better
                raise ModelError(f"{model_dir} is damaged: its tokenizer does not know every row's token id") from None
        vectors = cls(
            words,
            model.tensors["vectors"],
            counts=np.asarray(model.tensors["counts"]),
            norms=model.tensors.get("norms"),
            normalize_word=lambda word: _normalizer(model.tokenizer_json)(word),
        )
        model.verified()
        vectors.source = Path(model_dir)
        return vectors

    def __len__(self) -> int:
        return len(self.words)

    def __iter__(self) -> Iterator[str]:
        """The words in row order, as a dict of words iterates over its keys."""
        return iter(self.words)

    @property
    def dim(self) -> int:
        return self.array.shape[1]

    @property
    def matrix(self) -> torch.Tensor:
        """The vectors as a writable torch tensor, e.g. for ``nn.Embedding.from_pretrained(freeze=False)``.

        A model's weights file is mapped copy-on-write: pages are copied only where the tensor is
        written (fine-tuning), and the file never changes. The same tensor is returned each time.
        """
        import torch

        if self._matrix is None:
            array = self.array
            if not array.flags.writeable:  # a tensor over read-only memory would crash the process when written
                mapped = array.base if isinstance(array.base, np.memmap) else None
                if mapped is not None and mapped.filename and mapped.shape == array.shape:
                    array = np.memmap(mapped.filename, dtype=mapped.dtype, mode="c", offset=mapped.offset, shape=mapped.shape)
                else:
                    array = array.copy()
            self._matrix = torch.from_numpy(array)
        return self._matrix

    def to_embedding(self, freeze: bool = True) -> torch.nn.Embedding:
        """An ``nn.Embedding`` whose row ``index(word)`` is the word's vector (a copy of the matrix)."""
        import torch

        return torch.nn.Embedding.from_pretrained(self.matrix.clone(), freeze=freeze)

    def to_embedding_bag(self, mode: str = "mean", freeze: bool = True) -> torch.nn.EmbeddingBag:
        """An ``nn.EmbeddingBag`` over the vectors, e.g. a sentence as the mean of its word vectors."""
        import torch

        if mode not in EMBEDDING_BAG_MODES:  # torch takes any mode here and fails at the first call
            raise UsageError(f"mode must be one of {', '.join(EMBEDDING_BAG_MODES)}, got {mode!r}")
        return torch.nn.EmbeddingBag.from_pretrained(self.matrix.clone(), freeze=freeze, mode=mode)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self._find(word) is not None

    def index(self, word: str) -> int:
        """The row of ``word``; raises UnknownWordError with close matches if it is not known."""
        if not isinstance(word, str):
            raise UsageError(_not_a_word(word))
        row = self._find(word)
        if row is None:
            matches = self.close_matches(word)
            hint = f"; close matches: {', '.join(matches)}" if matches else ""
            raise UnknownWordError(f"'{word}' is not in the vocabulary{hint}")
        return row

    def vector(self, word: str) -> np.ndarray:
        """The vector of ``word`` (a numpy array)."""
        return np.array(self.array[self.index(word)])

    def __getitem__(self, words: str | Sequence[str]) -> np.ndarray:
        """The vector of a word, or the vectors of a list of words stacked as rows (as gensim's ``kv[[...]]``)."""
        if isinstance(words, (list, tuple)):
            return np.array(self.array[[self.index(word) for word in words]]).reshape(len(words), self.dim)
        return self.vector(words)

    def normalized(self, word: str) -> str:
        """``word`` as the model's tokenizer normalises text (NFKC and lowercase for the default, NFC for one
        without a normaliser); as it is for vectors made without a model, or a word the tokenizer cannot take."""
        if self._normalize_word is None:
            return word
        try:
            return self._normalize_word(word)
        except UnicodeEncodeError:  # a lone surrogate (an undecodable file name, say), which the tokenizer cannot take
            return word

    def close_matches(self, word: str, count: int = 5) -> list[str]:
        """Known words spelled like ``word`` (searched among the 100,000 most frequent)."""
        candidates = self.words[:100_000]
        return difflib.get_close_matches(self.normalized(word), candidates, n=count, cutoff=0.6)

    @property
    def norms(self) -> np.ndarray:
        """The length of every vector (stored in the model file, or computed once)."""
        if self._norms is None:
            self._norms = row_norms(self.array)
        return self._norms

    def unit_rows(self, rows: Any) -> np.ndarray:
        """The given rows scaled to length 1 (rows of length 0 stay 0)."""
        return self.array[rows] / _divisor(self.norms[rows])[..., None]

    def cosines(self, queries: np.ndarray, *, limit: int | None = None) -> np.ndarray:
        """Cosine of unit ``queries`` (k x dim, or dim) with each of the first ``limit`` vectors."""
        stop = len(self) if limit is None else min(limit, len(self))
        with np.errstate(over="ignore", invalid="ignore"):  # rows near float32's limit: no answer (see _nearest)
            return (self.array[:stop] @ queries.T).T / _divisor(self.norms[:stop])

    def similarity(self, first: str, second: str) -> float:
        """Cosine similarity of two words (a word with itself: exactly 1)."""
        return self.row_similarity(self.index(first), self.index(second))

    def row_similarity(self, first: int, second: int) -> float:
        """Cosine similarity of two rows, computed as gensim does (float32 unit vectors, then a dot).

        Float32 rounding puts a row with itself at 0.99999994 or 1.0000001 (in gensim too), which would
        break ties between same-word pairs at random and show a cosine above 1: clamp, and make it 1.
        """
        if first == second:
            return 1.0 if self.norms[first] > 0 else 0.0
        score = float(self.unit_rows(first).astype(np.float32) @ self.unit_rows(second).astype(np.float32))
        return min(1.0, max(-1.0, score))

    def most_similar(
        self,
        positive: Term | Sequence[Term] = (),
        negative: Term | Sequence[Term] = (),
        *,
        topn: int = NEIGHBORS,
    ) -> list[tuple[str, float]]:
        """Nearest words by cosine to the mean of ``positive`` minus ``negative`` (gensim's 3CosAdd).

        A term is a word or a vector (a 1-D numpy array or tensor of ``dim`` numbers). As in gensim,
        a word counts at length 1, a vector as given, and only words are left out of the answer.
        """
        positive, negative = self._terms(positive, "positive"), self._terms(negative, "negative")
        terms = positive + negative
        if not terms:
            raise UnknownWordError("give at least one word to compare with")
        rows = self._rows(terms)
        vectors = [term if row is None else self.unit_rows(row) for term, row in zip(terms, rows)]
        signs = np.array([1.0] * len(positive) + [-1.0] * len(negative), dtype=np.float32)
        query = (np.stack(vectors) * signs[:, None]).mean(0)
        query /= max(float(np.linalg.norm(query)), 1e-12)
        return self._nearest(self.cosines(query), exclude=rows, topn=topn)

    def most_similar_cosmul(
        self, positive: Term | Sequence[Term] = (), negative: Term | Sequence[Term] = (), *, topn: int = NEIGHBORS
    ) -> list[tuple[str, float]]:
        """Nearest words by 3CosMul (Levy and Goldberg 2014; gensim's most_similar_cosmul).

        Cosines are shifted to [0, 1]; a word scores the product over ``positive`` divided by the
        product over ``negative`` plus 1e-6 (gensim's epsilon). A term may be a vector, as in
        ``most_similar``; it is scaled to length 1, so that its cosines are cosines.
        """
        positive, negative = self._terms(positive, "positive"), self._terms(negative, "negative")
        if not positive:
            raise UnknownWordError("give at least one positive word")
        terms = positive + negative
        rows = self._rows(terms)
        units = [_unit(term) if row is None else self.unit_rows(row) for term, row in zip(terms, rows)]
        shifted = (self.cosines(np.stack(units)) + 1) / 2  # (terms given, vocabulary)
        scores = shifted[: len(positive)].prod(0) / (shifted[len(positive) :].prod(0) + 1e-6)
        return self._nearest(scores, exclude=rows, topn=topn)

    def analogy(
        self,
        first: str,
        second: str,
        third: str,
        *,
        topn: int = ANSWERS,
        method: str = "add",
        positive: Term | Sequence[Term] = (),
        negative: Term | Sequence[Term] = (),
    ) -> list[tuple[str, float]]:
        """'first is to second as third is to ?', the question words excluded.

        ``method`` "add" is 3CosAdd (gensim's most_similar), "mul" 3CosMul (most_similar_cosmul);
        ``positive`` and ``negative`` add words to either side of the query.
        """
        positive = [second, third, *self._terms(positive, "positive")]
        negative = [first, *self._terms(negative, "negative")]
        if method == "add":
            return self.most_similar(positive, negative, topn=topn)
        if method == "mul":
            return self.most_similar_cosmul(positive, negative, topn=topn)
        raise UsageError(f"unknown analogy method '{method}'; use add or mul")

    def _rows(self, terms: Sequence[str | np.ndarray]) -> list[int | None]:
        """The row of each word among ``terms``; None for a vector."""
        return [self.index(term) if isinstance(term, str) else None for term in terms]

    def _nearest(self, scores: np.ndarray, *, exclude: Sequence[int | None], topn: int) -> list[tuple[str, float]]:
        """The ``topn`` best rows by ``scores``, leaving out the rows in ``exclude`` (None: a vector, nothing to leave out)."""
        exclude = [row for row in exclude if row is not None]
        if not isinstance(topn, (int, np.integer)) or isinstance(topn, bool) or topn < 0:
            raise UsageError(f"topn must be a whole number, 0 or more, got {topn!r}")
        scores = np.array(scores, dtype=np.float64)
        answers = np.isfinite(scores)  # a row of NaN or infinite values (imported) has no cosine: no answer
        answers[list(exclude)] = False
        candidates = np.flatnonzero(answers)
        topn = min(topn, len(candidates))
        if topn == 0:
            return []
        best = candidates[np.argpartition(-scores[candidates], topn - 1)[:topn]]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self.words[row], float(scores[row])) for row in best]

    def _terms(self, given: Any, name: str) -> list[str | np.ndarray]:
        """The words and vectors of a query argument: one word (or vector) given alone is that one, not its parts."""
        if given is None:
            return []
        if isinstance(given, (str, bytes, bytearray, np.ndarray)) or hasattr(given, "detach"):
            given = [given]
        try:
            items = list(given)
        except TypeError:
            raise UsageError(
                f"{name} must be a word, a list of words or a vector of {self.dim} numbers, got {_shown(given)}"
            ) from None
        return [self._term(item, name) for item in items]

    def _term(self, item: Any, name: str) -> str | np.ndarray:
        if isinstance(item, str):
            return item
        if isinstance(item, np.ndarray) or hasattr(item, "detach"):  # a numpy array or a torch tensor
            vector = item.detach().cpu().numpy() if hasattr(item, "detach") else item
            if vector.shape != (self.dim,) or vector.dtype.kind not in "fiu":
                raise UsageError(
                    f"a vector in {name} must hold {self.dim} numbers (1-D), got an array of shape "
                    f"{tuple(vector.shape)} and dtype {vector.dtype}"
                )
            vector = vector.astype(np.float32)
            if not np.isfinite(vector).all():
                raise UsageError(f"a vector in {name} holds NaN or infinite numbers")
            return vector
        if isinstance(item, (bytes, bytearray)):
            raise UsageError(f"{name}: {_not_a_word(item)}")
        raise UsageError(f"{name}: give words (str) or vectors of {self.dim} numbers, got {_shown(item)}")

    def _find(self, word: str) -> int | None:
        row = self._row(word)
        if row is None and (normalized := self.normalized(word)) != word:
            row = self._row(normalized)
        if row is None and word != word.strip():  # " king " as typed; no tokenizer makes such a word
            row = self._find(word.strip())
        return row

    def _row(self, word: str) -> int | None:
        # A million-word dict takes ~0.3 s to build, a C-level scan of the list ~20 ms: a command that
        # looks up two or three words is faster without the dict, a session of queries is faster with it.
        if self._index is None and self._scans < 3:
            self._scans += 1
            try:
                return self.words.index(word)
            except ValueError:
                return None
        if self._index is None:
            self._index = dict(zip(self.words, range(len(self.words))))
        return self._index.get(word)


@functools.lru_cache(maxsize=4)
def _tokenizer(tokenizer_json: str) -> Tokenizer:
    try:
        return Tokenizer.from_str(tokenizer_json)
    except Exception as error:  # noqa: BLE001 (the Rust side raises a bare Exception)
        raise ModelError(f"the model's tokenizer.json is damaged: {error}; train again") from None


def _normalizer(tokenizer_json: str) -> Callable[[str], str]:
    """How the model's tokenizer normalises text (NFKC and lowercase for the default); parsed on first use."""
    return word_normalizer(_tokenizer(tokenizer_json))


def word_normalizer(tokenizer: Tokenizer) -> Callable[[str], str]:
    """How ``tokenizer`` normalises text, as a function of a word; for a tokenizer without a normalizer
    (imported vectors, the whitespace tokenizer), Unicode's NFC, so that a word typed in another form
    (a decomposed 'café', as macOS may give it) finds the composed one most files hold."""
    normalizer = tokenizer.normalizer
    return normalizer.normalize_str if normalizer is not None else functools.partial(unicodedata.normalize, "NFC")


def _shown(value: Any) -> str:
    """A value's type and a short repr, for messages."""
    return f"{type(value).__name__} {reprlib.repr(value)}"


def _not_a_word(value: Any) -> str:
    """Why ``value`` is no word, and what to give instead."""
    if isinstance(value, (bytes, bytearray)):
        return f"give words as str, not bytes: {reprlib.repr(value)}; decode it first, e.g. .decode('utf-8')"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"give a word (str), not a row number {value}; vectors.words[{value}] is the word of that row"
    return f"give a word (str), got {_shown(value)}"


def _divisor(norms: np.ndarray) -> np.ndarray:
    """Norms to divide by: a row of length 0 stays 0 (no floor such as 1e-12, under which tiny rows would shrink)."""
    return np.where(norms > 0, norms, 1)


def _unit(vector: np.ndarray) -> np.ndarray:
    """A query vector scaled to length 1, its length summed in float64 (see store.row_norms)."""
    length = float(np.linalg.norm(np.asarray(vector, dtype=np.float64)))
    return vector / length if length > 0 else vector
