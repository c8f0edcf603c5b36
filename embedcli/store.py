"""The model directory: save and load, with a format version and a checksum per file.

A model directory holds ``embeddings.safetensors`` (the word vectors, counts and
tokenizer ids; no pickle, so loading never runs code), ``tokenizer.json`` and
``config.json`` (format, version, settings, corpus and training stats, sha256 of
each file). Every file is written to a temporary name in the same folder, synced,
then renamed into place; ``config.json`` goes last.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from .errors import ModelError, UsageError

FORMAT = "embedcli-model"
VERSION = 1
WEIGHTS = "embeddings.safetensors"
TOKENIZER = "tokenizer.json"
CONFIG = "config.json"


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` through a temporary file in the same folder, fsync it, then rename it into place."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda stream: stream.write(data))


def check_output_dir(out_dir: Path, *, force: bool = False) -> None:
    """Refuse an output path that is a file, or a folder of other things, unless ``force``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file; give a folder for the model")
    if out_dir.is_dir() and not force:
        entries = [entry.name for entry in out_dir.iterdir() if not entry.name.startswith(".")]
        if entries and CONFIG not in entries:
            raise UsageError(
                f"--out {out_dir} already holds files that are not an embedcli model; "
                f"choose another folder or add --force"
            )


def save_model(
    out_dir: Path,
    *,
    vectors: torch.Tensor,
    words_counts: np.ndarray,
    token_ids: np.ndarray,
    tokenizer_json: str,
    metadata: dict[str, Any],
) -> Path:
    """Write a model directory; ``metadata`` is stored in config.json beside format and checksums."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {
        "vectors": vectors.detach().to("cpu", torch.float32).contiguous(),
        "counts": torch.from_numpy(np.ascontiguousarray(words_counts, dtype=np.int64)),
        "token_ids": torch.from_numpy(np.ascontiguousarray(token_ids, dtype=np.int64)),
    }
    weights = save(tensors, metadata={"format": FORMAT})
    tokenizer_bytes = tokenizer_json.encode("utf-8")
    atomic_write_bytes(out_dir / WEIGHTS, weights)
    atomic_write_bytes(out_dir / TOKENIZER, tokenizer_bytes)
    config = {
        "format": FORMAT,
        "version": VERSION,
        **metadata,
        "files": {
            WEIGHTS: hashlib.sha256(weights).hexdigest(),
            TOKENIZER: hashlib.sha256(tokenizer_bytes).hexdigest(),
        },
    }
    atomic_write_bytes(out_dir / CONFIG, (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode())
    return out_dir


def read_config(model_dir: Path) -> dict[str, Any]:
    """config.json of a model directory, after checking that it is one embedcli can read."""
    model_dir = Path(model_dir)
    path = model_dir / CONFIG
    if not model_dir.is_dir():
        raise ModelError(f"no model at {model_dir}; train one with: embedcli train CORPUS --out {model_dir}")
    if not path.is_file():
        raise ModelError(f"{model_dir} is not an embedcli model: it has no {CONFIG}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelError(f"{path} is damaged: it is not valid JSON") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelError(f"{model_dir} is not an embedcli model ({CONFIG} names another format)")
    version = config.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ModelError(
            f"{model_dir} was written by a newer embedcli (format version {version}); upgrade embedcli"
        )
    if not isinstance(config.get("files"), dict):
        raise ModelError(f"{path} is damaged: it lists no file checksums")
    return config


def load_model(model_dir: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], str]:
    """Config, tensors and tokenizer JSON of a model directory, each checked against its sha256."""
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    contents = {name: _verified(model_dir, name, config["files"].get(name)) for name in (WEIGHTS, TOKENIZER)}
    try:
        tensors = load(contents[WEIGHTS])
    except (SafetensorError, ValueError) as error:
        raise ModelError(f"{model_dir / WEIGHTS} is damaged: {error}") from None
    vectors, counts, token_ids = (tensors.get(key) for key in ("vectors", "counts", "token_ids"))
    if vectors is None or counts is None or token_ids is None or vectors.ndim != 2:
        raise ModelError(f"{model_dir / WEIGHTS} is damaged: it lacks the vectors, counts or token ids")
    if not len(vectors) == len(counts) == len(token_ids):
        raise ModelError(f"{model_dir / WEIGHTS} is damaged: its tensors disagree in length")
    return config, tensors, contents[TOKENIZER].decode("utf-8")


def _verified(model_dir: Path, name: str, expected: str | None) -> bytes:
    path = model_dir / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{model_dir} is incomplete: {name} is missing") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise ModelError(f"{path} is truncated or corrupted (its sha256 does not match {CONFIG}); train again")
    return data
