"""Vectors: querying trained word vectors. Knows nothing of training or corpora."""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from .errors import UnknownWordError, UsageError
from .store import load_model


class Vectors:
    """Word vectors in vocabulary order (most frequent first), with cosine queries."""

    def __init__(
        self,
        words: Sequence[str],
        matrix: torch.Tensor,
        *,
        counts: np.ndarray | None = None,
        normalize_word: Callable[[str], str] | None = None,
    ) -> None:
        self.words = list(words)
        self.matrix = matrix
        self.counts = counts
        self._normalize_word = normalize_word
        self._index = {word: row for row, word in enumerate(self.words)}
        self._unit: torch.Tensor | None = None

    @classmethod
    def load(cls, model_dir: str | Path) -> Vectors:
        """The vectors of a model directory written by ``embedcli train``."""
        _, tensors, tokenizer_json = load_model(Path(model_dir))
        tokenizer = Tokenizer.from_str(tokenizer_json)
        words = [tokenizer.id_to_token(int(token_id)) for token_id in tensors["token_ids"]]
        normalizer = tokenizer.normalizer
        with warnings.catch_warnings():  # a read-only memory map: Vectors never writes to it
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            matrix = torch.from_numpy(np.asarray(tensors["vectors"], dtype=np.float32))
        return cls(
            words,
            matrix,
            counts=np.asarray(tensors["counts"]),
            normalize_word=normalizer.normalize_str if normalizer is not None else None,
        )

    def __len__(self) -> int:
        return len(self.words)

    def to_embedding(self, freeze: bool = True) -> torch.nn.Embedding:
        """An ``nn.Embedding`` whose row ``index(word)`` is the word's vector (a copy of the matrix)."""
        return torch.nn.Embedding.from_pretrained(self.matrix.clone(), freeze=freeze)

    def to_embedding_bag(self, mode: str = "mean", freeze: bool = True) -> torch.nn.EmbeddingBag:
        """An ``nn.EmbeddingBag`` over the vectors, e.g. a sentence as the mean of its word vectors."""
        return torch.nn.EmbeddingBag.from_pretrained(self.matrix.clone(), freeze=freeze, mode=mode)

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    def __contains__(self, word: str) -> bool:
        return self._find(word) is not None

    def index(self, word: str) -> int:
        """The row of ``word``; raises UnknownWordError with close matches if it is not known."""
        row = self._find(word)
        if row is None:
            matches = self.close_matches(word)
            hint = f"; close matches: {', '.join(matches)}" if matches else ""
            raise UnknownWordError(f"'{word}' is not in the vocabulary{hint}")
        return row

    def vector(self, word: str) -> torch.Tensor:
        return self.matrix[self.index(word)]

    __getitem__ = vector

    def close_matches(self, word: str, count: int = 5) -> list[str]:
        """Known words spelled like ``word`` (searched among the 100,000 most frequent)."""
        candidates = self.words[:100_000]
        key = self._normalize_word(word) if self._normalize_word else word
        return difflib.get_close_matches(key, candidates, n=count, cutoff=0.6)

    @property
    def unit(self) -> torch.Tensor:
        """The vectors scaled to length 1 (rows of length 0 stay 0)."""
        if self._unit is None:
            norms = self.matrix.norm(dim=1, keepdim=True).clamp_(min=1e-12)
            self._unit = self.matrix / norms
        return self._unit

    def similarity(self, first: str, second: str) -> float:
        """Cosine similarity of two words."""
        return float(self.unit[self.index(first)] @ self.unit[self.index(second)])

    def most_similar(
        self,
        positive: str | Sequence[str] = (),
        negative: Sequence[str] = (),
        *,
        topn: int = 10,
    ) -> list[tuple[str, float]]:
        """Nearest words by cosine to the mean of ``positive`` minus ``negative`` (gensim's 3CosAdd)."""
        positive = [positive] if isinstance(positive, str) else list(positive)
        rows = [self.index(word) for word in positive] + [self.index(word) for word in negative]
        signs = [1.0] * len(positive) + [-1.0] * len(negative)
        if not rows:
            raise UnknownWordError("give at least one word to compare with")
        weights = torch.tensor(signs, dtype=self.unit.dtype)
        query = (self.unit[rows] * weights[:, None]).mean(0)
        query = query / query.norm().clamp(min=1e-12)
        return self._nearest(self.unit @ query, exclude=rows, topn=topn)

    def most_similar_cosmul(
        self, positive: Sequence[str] = (), negative: Sequence[str] = (), *, topn: int = 10
    ) -> list[tuple[str, float]]:
        """Nearest words by 3CosMul (Levy and Goldberg 2014; gensim's most_similar_cosmul).

        Cosines are shifted to [0, 1]; a word scores the product over ``positive`` divided by the
        product over ``negative`` plus 1e-6 (gensim's epsilon).
        """
        positive_rows = [self.index(word) for word in positive]
        negative_rows = [self.index(word) for word in negative]
        if not positive_rows:
            raise UnknownWordError("give at least one positive word")
        shifted = (self.unit @ self.unit[positive_rows + negative_rows].T + 1) / 2
        scores = shifted[:, : len(positive_rows)].prod(1) / (shifted[:, len(positive_rows) :].prod(1) + 1e-6)
        return self._nearest(scores, exclude=positive_rows + negative_rows, topn=topn)

    def analogy(
        self,
        first: str,
        second: str,
        third: str,
        *,
        topn: int = 1,
        method: str = "add",
        positive: Sequence[str] = (),
        negative: Sequence[str] = (),
    ) -> list[tuple[str, float]]:
        """'first is to second as third is to ?', the question words excluded.

        ``method`` "add" is 3CosAdd (gensim's most_similar), "mul" 3CosMul (most_similar_cosmul);
        ``positive`` and ``negative`` add words to either side of the query.
        """
        positive = [second, third, *positive]
        negative = [first, *negative]
        if method == "add":
            return self.most_similar(positive, negative, topn=topn)
        if method == "mul":
            return self.most_similar_cosmul(positive, negative, topn=topn)
        raise UsageError(f"unknown analogy method '{method}'; use add or mul")

    def _nearest(self, scores: torch.Tensor, *, exclude: Sequence[int], topn: int) -> list[tuple[str, float]]:
        scores = scores.clone()
        scores[list(exclude)] = -float("inf")
        topn = max(0, min(topn, len(scores) - len(set(exclude))))
        values, rows = torch.topk(scores, topn)
        return [(self.words[row], float(value)) for row, value in zip(rows.tolist(), values.tolist())]

    def _find(self, word: str) -> int | None:
        row = self._index.get(word)
        if row is None and self._normalize_word is not None:
            row = self._index.get(self._normalize_word(word))
        return row
