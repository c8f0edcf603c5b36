"""embedcli: train, query and export word embeddings (skip-gram with negative sampling)."""

__version__ = "0.1.0"

from .vectors import Vectors  # noqa: E402


def load(model_dir: str = "embeddings") -> Vectors:
    """The vectors of a model directory, ready to query: ``embedcli.load("embeddings").most_similar("king")``."""
    return Vectors.load(model_dir)


__all__ = ["Vectors", "load", "__version__"]
