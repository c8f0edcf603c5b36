"""embedcli: train, query and export word embeddings (skip-gram with negative sampling)."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .vectors import Vectors


def load(model_dir: str = "embeddings") -> Vectors:
    """The vectors of a model directory, ready to query: ``embedcli.load("embeddings").most_similar("king")``."""
    from .vectors import Vectors

    return Vectors.load(model_dir)


def __getattr__(name: str):
    # numpy and tokenizers load on first use, so that the `embedcli` command starts light and a
    # Ctrl-C while they load ends quietly (see __main__.py)
    if name == "Vectors":
        from .vectors import Vectors

        return Vectors
    raise AttributeError(f"module 'embedcli' has no attribute {name!r}")


__all__ = ["Vectors", "load", "__version__"]
