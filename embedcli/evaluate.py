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

from .corpus import HEAD_BYTES, text_kind
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
    oov_percent: float  # percentage of well-formed pairs with a word outside the vocabulary (gensim's oov_ratio)
    bad_lines: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The result as JSON-ready data (what `evaluate --json` prints and config.json keeps)."""
        return {
            "file": self.file,
            "spearman": None if math.isnan(self.spearman) else self.spearman,  # undefined: JSON has no NaN
            "pearson": None if math.isnan(self.pearson) else self.pearson,
            "pairs": self.pairs,
            "oov_percent": self.oov_percent,
            "malformed_lines": self.bad_lines,
        }


def _vocabulary(vectors: Vectors, restrict_vocab: int) -> dict[str, int]:
    """Upper-cased word -> row among the first ``restrict_vocab`` words; the most frequent spelling wins."""
    words = vectors.words[:restrict_vocab]
    return {word.upper(): row for row, word in reversed(list(enumerate(words)))}


def _known_as(word: str, known: dict[str, int], vectors: Vectors) -> str:
    """The key an upper-cased question word has in ``known``: itself, as gensim matches, or else the word
    normalised as the corpus was (an NFD 'café' is the corpus's NFC one, as lookup finds it)."""
    if word in known:
        return word
    normalized = vectors.normalized(word).upper()
    return normalized if normalized in known else word


def _read_lines(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"evaluation file {path} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"evaluation file {path} is a folder") from None
    except PermissionError:
        raise UsageError(f"cannot read evaluation file {path}: permission denied") from None
    kind = text_kind(data[:HEAD_BYTES], whole=len(data) <= HEAD_BYTES)
    if kind.startswith("UTF-16"):  # decoded as UTF-8 it would be words with a NUL between letters: all OOV
        raise UsageError(
            f"evaluation file {path} is UTF-16 text; embedcli reads UTF-8: convert it first, "
            f"e.g. iconv -f {kind} -t UTF-8 {path} > {path.stem}-utf8{path.suffix}"
        )
    return data.decode("utf-8-sig", errors="replace").splitlines()  # a BOM is no word


def _no_usable_line(path: Path, lines: int, *, expected: str, other: str) -> UsageError:
    """The error for a file none of whose lines can be used: empty, or all malformed (the other kind of file?)."""
    if not lines:
        return UsageError(f"{path}: no line is {expected}; nothing to evaluate on")
    return UsageError(f"{path}: no line is {expected}; is it {other}")


def read_analogies(path: str | Path) -> tuple[list[str], list[tuple[int, list[str]]], list[int]]:
    """Section names; (section index, four upper-cased words) per question; the malformed lines' numbers.

    A file without a single question is refused with one line (an empty file, or another kind of file).
    """
    path = Path(path)
    sections: list[str] = []
    questions: list[tuple[int, list[str]]] = []
    bad_lines: list[int] = []
    for number, line in enumerate(_read_lines(path), start=1):
        if line.startswith(":"):
            sections.append(line.lstrip(": ").strip())
            continue
        if not line.strip() or line.startswith("#"):  # a comment, as in pair files
            continue
        words = [word.upper() for word in line.split()]
        if len(words) != 4:
            bad_lines.append(number)
            continue
        if not sections:
            sections.append("questions")
        questions.append((len(sections) - 1, words))
    if not questions:
        raise _no_usable_line(
            path, len(bad_lines), expected="an analogy question (four words: a b c d)",
            other="a word-pair file? use --pairs",
        )
    return sections, questions, bad_lines


def read_pairs(path: str | Path) -> tuple[list[tuple[str, str, float]], list[int]]:
    """(upper-cased word, word, gold score) per pair, and the numbers of malformed lines.

    Lines are 'word word score', tab-separated (or, without tabs, space-separated); '#' starts a
    comment. A score that is not a finite number makes a line malformed (a NaN would make Pearson NaN).
    A file without a single pair is refused with one line (an empty file, or another kind of file).
    """
    path = Path(path)
    pairs: list[tuple[str, str, float]] = []
    bad_lines: list[int] = []
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        line = line.rstrip()  # a trailing tab (a spreadsheet's export) makes no empty fourth field
        fields = line.split("\t") if "\t" in line else line.split()
        try:
            first, second, score = fields
            human = float(score)
        except ValueError:
            bad_lines.append(number)
            continue
        if not math.isfinite(human):
            bad_lines.append(number)
            continue
        pairs.append((first.strip().upper(), second.strip().upper(), human))
    if not pairs:
        raise _no_usable_line(
            path, len(bad_lines), expected="a word pair with a score (word word score)",
            other="an analogy file? use --analogies",
        )
    return pairs, bad_lines


def evaluate_analogies(vectors: Vectors, path: str | Path, *, restrict_vocab: int = RESTRICT_VOCAB) -> AnalogyResult:
    """Accuracy on an analogy file: ': section' lines, then 'a b c d' per line (a is to b as c is to d)."""
    path = Path(path)
    names, read, bad_lines = read_analogies(path)
    known = _vocabulary(vectors, restrict_vocab)
    sections = [Section(name) for name in names]
    questions: list[tuple[Section, int, int, int, str, str, str, str]] = []
    oov = 0
    for index, words in read:
        section = sections[index]
        words = [_known_as(word, known, vectors) for word in words]
        if any(word not in known for word in words):
            oov += 1
            continue
        a, b, c, expected = words
        questions.append((section, known[a], known[b], known[c], a, b, c, expected))
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
    return AnalogyResult(str(path), sections, len(read), oov, bad_lines)


def evaluate_pairs(vectors: Vectors, path: str | Path, *, restrict_vocab: int = RESTRICT_VOCAB) -> PairsResult:
    """Spearman's rho (and Pearson's r) between human scores and cosine similarity of word pairs.

    With fewer than two pairs in the vocabulary both are undefined: NaN, as scipy gives.
    """
    path = Path(path)
    read, bad_lines = read_pairs(path)
    known = _vocabulary(vectors, restrict_vocab)
    gold: list[float] = []
    model: list[float] = []
    for first, second, human in read:
        first, second = _known_as(first, known, vectors), _known_as(second, known, vectors)
        if first in known and second in known:
            gold.append(human)
            model.append(vectors.row_similarity(known[first], known[second]))
    gold_array, model_array = np.asarray(gold), np.asarray(model)
    return PairsResult(
        file=str(path),
        spearman=_pearson(_ranks(gold_array), _ranks(model_array)),
        pearson=_pearson(gold_array, model_array),
        pairs=len(gold),
        oov_percent=(len(read) - len(gold)) / len(read) * 100,
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
    if len(first) < 2:
        return float("nan")
    first, second = first - first.mean(), second - second.mean()
    denominator = np.sqrt((first**2).sum() * (second**2).sum())
    return float((first * second).sum() / denominator) if denominator else float("nan")  # as scipy: undefined
