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
import mmap
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import threading
from dataclasses import dataclass, field

import numpy as np

from .errors import ModelError, UsageError

FORMAT = "embedcli-model"
VERSION = 1
WEIGHTS = "embeddings.safetensors"
TOKENIZER = "tokenizer.json"
WORDS = "words.json"
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
    vectors: Any,
    words_counts: np.ndarray,
    token_ids: np.ndarray,
    tokenizer_json: str,
    words: list[str],
    metadata: dict[str, Any],
) -> Path:
    """Write a model directory; ``metadata`` is stored in config.json beside format and checksums.

    ``vectors`` (numpy array, memory map or torch tensor) is streamed to disk in slices, never
    copied whole. The row norms are stored beside it, so that queries need no normalised copy.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if hasattr(vectors, "detach"):  # a torch tensor
        vectors = vectors.detach().cpu().numpy()
    norms = np.concatenate(
        [np.linalg.norm(vectors[start : start + ROWS_PER_WRITE], axis=1) for start in range(0, len(vectors), ROWS_PER_WRITE)]
        or [np.zeros(0)]
    ).astype(np.float32)
    tensors = {
        "vectors": vectors,
        "norms": norms,
        "counts": np.ascontiguousarray(words_counts, dtype=np.int64),
        "token_ids": np.ascontiguousarray(token_ids, dtype=np.int64),
    }
    weights_hash = hashlib.sha256()
    atomic_write(out_dir / WEIGHTS, lambda stream: write_tensors(_Hashing(stream, weights_hash), tensors, {"format": FORMAT}))
    tokenizer_bytes = tokenizer_json.encode("utf-8")
    atomic_write_bytes(out_dir / TOKENIZER, tokenizer_bytes)
    words_bytes = json.dumps(words, ensure_ascii=False).encode("utf-8")  # row order, for fast loading
    atomic_write_bytes(out_dir / WORDS, words_bytes)
    config = {
        "format": FORMAT,
        "version": VERSION,
        **metadata,
        "files": {
            WEIGHTS: weights_hash.hexdigest(),
            TOKENIZER: hashlib.sha256(tokenizer_bytes).hexdigest(),
            WORDS: hashlib.sha256(words_bytes).hexdigest(),
        },
    }
    atomic_write_bytes(out_dir / CONFIG, (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode())
    return out_dir


class _Hashing:
    """A binary stream that also feeds what is written to a hash."""

    def __init__(self, stream: BinaryIO, digest: Any) -> None:
        self.stream, self.digest = stream, digest

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.stream.write(data)


_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int64): "I64"}
_NUMPY = {name: dtype for dtype, name in _DTYPES.items()}
ROWS_PER_WRITE = 1 << 14


def write_tensors(stream: BinaryIO, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Write the safetensors format (8-byte header size, JSON header, raw little-endian data), streaming.

    Arrays are written ROWS_PER_WRITE rows at a time, and cast to their dtype slice by slice,
    so a memory-mapped matrix is never held in memory whole.
    """
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for name, array in tensors.items():
        size = int(np.prod(array.shape)) * array.dtype.itemsize
        header[name] = {"dtype": _DTYPES[array.dtype], "shape": list(array.shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, ensure_ascii=False).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned
    stream.write(len(encoded).to_bytes(8, "little"))
    stream.write(encoded)
    for array in tensors.values():
        for start in range(0, max(len(array), 1), ROWS_PER_WRITE):
            part = np.ascontiguousarray(array[start : start + ROWS_PER_WRITE], dtype=array.dtype)
            stream.write(part.astype(part.dtype.newbyteorder("<"), copy=False).tobytes())


def map_tensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors of a safetensors file as read-only memory maps (no copy), and its metadata."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as stream:
            length = int.from_bytes(stream.read(8), "little")
            if length <= 0 or 8 + length > size:
                raise ValueError("bad header size")
            header = json.loads(stream.read(length).decode("utf-8"))
        metadata = header.pop("__metadata__", {}) or {}
        tensors = {}
        for name, info in header.items():
            dtype = _NUMPY[info["dtype"]]
            start, stop = info["data_offsets"]
            shape = tuple(int(n) for n in info["shape"])
            if stop - start != int(np.prod(shape)) * dtype.itemsize or 8 + length + stop > size:
                raise ValueError(f"tensor {name} does not fit the file")
            if stop == start:
                tensors[name] = np.zeros(shape, dtype=dtype)
            else:
                tensors[name] = np.memmap(path, dtype=dtype.newbyteorder("<"), mode="r", offset=8 + length + start, shape=shape)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{path} is damaged: {error}") from None
    return tensors, metadata


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


@dataclass
class OpenModel:
    """A model directory being loaded: tensors mapped, files still being checked in the background."""

    config: dict[str, Any]
    tensors: dict[str, np.ndarray]
    tokenizer_json: str
    words: list[str] | None
    _checks: list[threading.Thread] = field(default_factory=list)
    _failures: list[ModelError] = field(default_factory=list)

    def verified(self) -> OpenModel:
        """Wait for the checksums; raise the first mismatch."""
        for check in self._checks:
            check.join()
        if self._failures:
            raise self._failures[0]
        return self


def open_model(model_dir: Path) -> OpenModel:
    """Start checking every file's sha256 in background threads, and map the tensors meanwhile.

    Call ``verified()`` before trusting the result: hashing a large weights file takes about as
    long as everything else a query does, so the two overlap.
    """
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    names = [WEIGHTS, TOKENIZER] + ([WORDS] if WORDS in config["files"] else [])
    for name in names:
        if not (model_dir / name).is_file():
            raise ModelError(f"{model_dir} is incomplete: {name} is missing")
    failures: list[ModelError] = []
    checks = [
        threading.Thread(target=_verify, args=(model_dir, name, config["files"].get(name), failures), daemon=True)
        for name in names
    ]
    for check in checks:
        check.start()
    model = OpenModel(config, {}, "", None, checks, failures)
    try:
        tensors, _ = map_tensors(model_dir / WEIGHTS)
        vectors, counts, token_ids = (tensors.get(key) for key in ("vectors", "counts", "token_ids"))
        if vectors is None or counts is None or token_ids is None or vectors.ndim != 2:
            raise ModelError(f"{model_dir / WEIGHTS} is damaged: it lacks the vectors, counts or token ids")
        if not len(vectors) == len(counts) == len(token_ids):
            raise ModelError(f"{model_dir / WEIGHTS} is damaged: its tensors disagree in length")
        model.tensors = tensors
        model.tokenizer_json = (model_dir / TOKENIZER).read_bytes().decode("utf-8", errors="replace")
        if WORDS in names:
            try:
                model.words = json.loads((model_dir / WORDS).read_bytes().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise ModelError(f"{model_dir / WORDS} is damaged: it is not a JSON list of words") from None
            if not isinstance(model.words, list) or len(model.words) != len(vectors):
                raise ModelError(f"{model_dir / WORDS} is damaged: it does not list one word per vector")
    except ModelError:
        model.verified()  # a checksum mismatch explains the damage better
        raise
    return model


def load_model(model_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray], str]:
    """Config, tensors (memory-mapped) and tokenizer JSON of a model directory, each file checked by sha256."""
    model = open_model(model_dir).verified()
    return model.config, model.tensors, model.tokenizer_json


def _verify(model_dir: Path, name: str, expected: str | None, failures: list[ModelError]) -> None:
    path = model_dir / name
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        if os.fstat(stream.fileno()).st_size:  # hash straight from the page cache, no copies
            with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as mapped, memoryview(mapped) as view:
                for start in range(0, len(view), 1 << 24):
                    digest.update(view[start : start + (1 << 24)])
    if digest.hexdigest() != expected:
        failures.append(
            ModelError(f"{path} is truncated or corrupted (its sha256 does not match {CONFIG}); train again")
        )
