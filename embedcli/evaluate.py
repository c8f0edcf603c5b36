"""Standard benchmarks: word analogies (word2vec's questions-words.txt format) and word-pair similarity.

The numbers follow gensim's ``evaluate_word_analogies`` and ``evaluate_word_pairs`` (case-insensitive,
the first ``restrict_vocab`` words only, 3CosAdd with the question words excluded, Spearman's rho),
so a score here equals gensim's on the same vectors. Lines that cannot be read are skipped, counted
and reported with their numbers, never a crash.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UsageError
from .vectors import Vectors

RESTRICT_VOCAB = 300_000  # gensim's default
QUESTIONS_PER_BATCH = 512


@dataclass
class Section:
    name: str
    correct: int = 0
    incorrect: int = 0

    @property
    def accuracy(self) -> float:
        answered = self.correct + self.incorrect
        return self.correct / answered if answered else 0.0


@dataclass
class AnalogyResult:
    file: str
    sections: list[Section]
    questions: int  # well-formed questions
    skipped_oov: int  # questions with a word outside the (restricted) vocabulary
    bad_lines: list[int] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        correct = sum(section.correct for section in self.sections)
        answered = correct + sum(section.incorrect for section in self.sections)
        return correct / answered if answered else 0.0

    def to_dict(self) -> dict:
        """The result as JSON-ready data (what `evaluate --json` prints and config.json keeps)."""
        return {
            "file": self.file,
            "accuracy": self.accuracy,
            "questions": self.questions,
            "skipped_oov": self.skipped_oov,
            "malformed_lines": self.bad_lines,
            "sections": [
                {"section": s.name, "accuracy": s.accuracy, "correct": s.correct, "incorrect": s.incorrect}
                for s in self.sections
            ],
        }


@dataclass
class PairsResult:
    file: str
    spearman: float
    pearson: float
    pairs: int  # pairs scored
    oov_ratio: float  # share of well-formed pairs with a word outside the vocabulary
    bad_lines: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The result as JSON-ready data (what `evaluate --json` prints and config.json keeps)."""
        return {
            "file": self.file,
            "spearman": None if math.isnan(self.spearman) else self.spearman,  # undefined: JSON has no NaN
            "pearson": None if math.isnan(self.pearson) else self.pearson,
            "pairs": self.pairs,
            "oov_ratio": self.oov_ratio,
            "malformed_lines": self.bad_lines,
        }


def _vocabulary(vectors: Vectors, restrict_vocab: int) -> dict[str, int]:
    """Upper-cased word -> row among the first ``restrict_vocab`` words; the most frequent spelling wins."""
    words = vectors.words[:restrict_vocab]
    return {word.upper(): row for row, word in reversed(list(enumerate(words)))}


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_bytes().decode("utf-8-sig", errors="replace").splitlines()  # a BOM is no word
    except FileNotFoundError:
        raise UsageError(f"evaluation file {path} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"evaluation file {path} is a folder") from None


def evaluate_analogies(vectors: Vectors, path: str | Path, *, restrict_vocab: int = RESTRICT_VOCAB) -> AnalogyResult:
    """Accuracy on an analogy file: ': section' lines, then 'a b c d' per line (a is to b as c is to d)."""
    path = Path(path)
    known = _vocabulary(vectors, restrict_vocab)
    sections: list[Section] = []
    questions: list[tuple[Section, int, int, int, str, str, str, str]] = []
    bad_lines: list[int] = []
    oov = well_formed = 0
    for number, line in enumerate(_read_lines(path), start=1):
        if line.startswith(":"):
            sections.append(Section(line.lstrip(": ").strip()))
            continue
        if not line.strip():
            continue
        words = [word.upper() for word in line.split()]
        if len(words) != 4:
            bad_lines.append(number)
            continue
        if not sections:
            sections.append(Section("questions"))
        well_formed += 1
        if any(word not in known for word in words):
            oov += 1
            continue
        a, b, c, expected = words
        questions.append((sections[-1], known[a], known[b], known[c], a, b, c, expected))
    limit = min(restrict_vocab, len(vectors))
    for start in range(0, len(questions), QUESTIONS_PER_BATCH):
        batch = questions[start : start + QUESTIONS_PER_BATCH]
        rows = np.array([question[1:4] for question in batch])
        query = vectors.unit_rows(rows[:, 1]) + vectors.unit_rows(rows[:, 2]) - vectors.unit_rows(rows[:, 0])
        query /= np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
        scores = vectors.cosines(query, limit=limit)  # (questions, limit)
        np.put_along_axis(scores, rows, -np.inf, axis=1)
        count = min(5, scores.shape[1])
        top = np.argpartition(-scores, count - 1, axis=1)[:, :count]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable"), axis=1)
        for (section, _, _, _, a, b, c, expected), candidates in zip(batch, top.tolist()):
            predicted = None
            for row in candidates:  # as gensim: the first of the top 5 that is not a question word
                predicted = vectors.words[row].upper()
                if predicted not in (a, b, c):
                    break
            if predicted == expected:
                section.correct += 1
            else:
                section.incorrect += 1
    return AnalogyResult(str(path), sections, well_formed, oov, bad_lines)


def evaluate_pairs(vectors: Vectors, path: str | Path, *, restrict_vocab: int = RESTRICT_VOCAB) -> PairsResult:
    """Spearman's rho (and Pearson's r) between human scores and cosine similarity of word pairs.

    Lines are 'word word score', tab-separated (or, without tabs, space-separated); '#' starts a comment.
    """
    path = Path(path)
    known = _vocabulary(vectors, restrict_vocab)
    gold: list[float] = []
    model: list[float] = []
    bad_lines: list[int] = []
    oov = 0
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        try:
            first, second, score = fields
            human = float(score)
        except ValueError:
            bad_lines.append(number)
            continue
        first, second = first.strip().upper(), second.strip().upper()
        if first not in known or second not in known:
            oov += 1
            continue
        gold.append(human)
        model.append(vectors.row_similarity(known[first], known[second]))
    if len(gold) < 2:
        raise UsageError(f"{path}: fewer than two pairs have both words in the vocabulary; nothing to correlate")
    gold_array, model_array = np.asarray(gold), np.asarray(model)
    return PairsResult(
        file=str(path),
        spearman=_pearson(_ranks(gold_array), _ranks(model_array)),
        pearson=_pearson(gold_array, model_array),
        pairs=len(gold),
        oov_ratio=oov / (len(gold) + oov),
        bad_lines=bad_lines,
    )


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank (as scipy.stats.rankdata)."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    unique, inverse = np.unique(values, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    counts = np.bincount(inverse)
    return (sums / counts)[inverse]


def _pearson(first: np.ndarray, second: np.ndarray) -> float:
    first, second = first - first.mean(), second - second.mean()
    denominator = np.sqrt((first**2).sum() * (second**2).sum())
    return float((first * second).sum() / denominator) if denominator else float("nan")  # as scipy: undefined
