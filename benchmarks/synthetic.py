"""A large model for the benchmarks: a word2vec binary file of random vectors (words w0, w1, ...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_random_word2vec(path: Path, words: int, dim: int, *, seed: int = 0) -> None:
    """Write ``words`` random float32 vectors of ``dim`` in word2vec's binary format, 50,000 at a time."""
    generator = np.random.default_rng(seed)
    with open(path, "wb") as out:
        out.write(f"{words} {dim}\n".encode())
        for start in range(0, words, 50_000):
            block = generator.standard_normal((min(50_000, words - start), dim), dtype=np.float32)
            out.write(b"".join(f"w{start + i} ".encode() + row.tobytes() + b"\n" for i, row in enumerate(block)))
