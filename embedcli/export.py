"""Writing vectors in other tools' formats. Each format is one small writer function."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import UsageError
from .store import atomic_write
from .vectors import Vectors


def _write_npy(vectors: Vectors, out: Path) -> list[Path]:
    """A float32 ``.npy`` matrix (row i is word i) and ``vocab.txt`` beside it, one word per line."""
    matrix = vectors.matrix.detach().cpu().numpy().astype(np.float32, copy=False)
    vocab_path = out.parent / "vocab.txt"
    atomic_write(out, lambda stream: np.save(stream, matrix, allow_pickle=False))
    atomic_write(vocab_path, lambda stream: _write_lines(stream, vectors.words))
    return [out, vocab_path]


def _write_lines(stream: BinaryIO, words: list[str]) -> None:
    for word in words:
        stream.write(word.encode("utf-8") + b"\n")


FORMATS: dict[str, tuple[str, Callable[[Vectors, Path], list[Path]]]] = {
    "npy": ("embeddings.npy", _write_npy),
}


def export(vectors: Vectors, fmt: str, out: str | Path | None = None) -> list[Path]:
    """Write ``vectors`` in format ``fmt`` to ``out`` (or the format's default name); return the files."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    default_name, writer = FORMATS[fmt]
    path = Path(out) if out is not None else Path(default_name)
    if path.is_dir():
        path = path / default_name
    if not path.parent.is_dir():
        raise UsageError(f"--out {path}: folder {path.parent} does not exist")
    return writer(vectors, path)
