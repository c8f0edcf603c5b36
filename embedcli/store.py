"""The model directory: save and load, with a format version and a checksum per file.

A model directory holds ``embeddings.safetensors`` (the word vectors, counts and
tokenizer ids; no pickle, so loading never runs code), ``tokenizer.json`` and
``config.json`` (format, version, settings, corpus and training stats, sha256 of
each file). Every file is written to a temporary name in the same folder, synced,
then renamed into place; ``config.json`` goes last.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import mmap
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np

from .errors import EmbedcliError, ModelError, UsageError, signals_held

T = TypeVar("T")

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; msvcrt's byte-range lock instead
    fcntl = None  # type: ignore[assignment]

FORMAT = "embedcli-model"
VERSION = 1
WEIGHTS = "embeddings.safetensors"
TOKENIZER = "tokenizer.json"
WORDS = "words.json"
CONFIG = "config.json"
CHECKPOINT = ".checkpoint"
CHECKPOINT_FORMAT = "embedcli-checkpoint"
LOCK = ".lock"
MODEL_FILES = (WEIGHTS, TOKENIZER, WORDS, CONFIG)  # what lookup and export read
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # disk full, quota reached, file size limit
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class DiskFullError(EmbedcliError):
    """The disk filled (or a quota or file-size limit was hit) while writing."""


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` through a temporary file in the same folder, fsync it, then rename it into place."""
    path = Path(path)
    temporary = _written(path, write)
    try:
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, IsADirectoryError):  # name the file the user asked for, not the temporary one
            raise UsageError(f"{path} is a folder; give a file name") from None
        raise
    _sync_folder(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda stream: stream.write(data))


def _written(path: Path, write: Callable[[BinaryIO], None]) -> str:
    """A synced temporary file beside ``path`` holding what ``write`` wrote; removed if writing fails."""
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except PermissionError as error:  # name the file the user asked for, not the temporary one
        raise PermissionError(error.errno, f"permission denied (no new file may be made in {path.parent})", str(path)) from None
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600; files are shared like any other
            os.fchmod(handle, 0o666 & ~_UMASK)
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno in NO_SPACE:
            raise _disk_full(path) from None
        raise
    return temporary


def _write_bytes(stream: BinaryIO, *, data: bytes) -> None:
    stream.write(data)


def _disk_full(path: Path) -> DiskFullError:
    return DiskFullError(
        f"the disk is full (or a quota was reached) while writing {path}; "
        f"nothing in {path.parent} was changed: free some space and run again"
    )


def scratch_matrix(path: Path, shape: tuple[int, int]) -> np.memmap:
    """A new float32 file at ``path``, memory-mapped for writing, with its disk space reserved first.

    A sparse file takes its blocks only as pages are written, and a page that a full disk cannot
    hold kills the process with SIGBUS; reserving them makes a full disk a DiskFullError here.
    The caller removes ``path`` when done; it is removed here if this fails.
    """
    path = Path(path)
    try:
        with open(path, "wb") as stream:
            _reserve(stream.fileno(), int(np.prod(shape)) * 4)
        return np.memmap(path, dtype=np.float32, mode="r+", shape=shape)
    except BaseException as error:
        path.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno in NO_SPACE:
            raise _disk_full(path) from None
        raise


def _reserve(handle: int, size: int) -> None:
    """Give the file ``size`` bytes of zeros on disk, not a hole."""
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(handle, 0, size)
            return
        except OSError as error:
            if error.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):  # else: a file system without it
                raise
    zeros = memoryview(bytes(1 << 20))
    written = 0
    while written < size:
        written += os.write(handle, zeros[: min(len(zeros), size - written)])


def _write_all(files: list[tuple[Path, Callable[[BinaryIO], None]]]) -> None:
    """Write every file to a temporary name first, then rename them in order.

    A full disk stops the first phase, which leaves the old files untouched; the
    renames need no space. The last file (config.json, which names the others'
    checksums) lands last.
    """
    temporaries: list[tuple[str, Path]] = []
    try:
        for path, write in files:
            temporaries.append((_written(path, write), path))
    except BaseException:
        for temporary, _ in temporaries:
            Path(temporary).unlink(missing_ok=True)
        raise
    with signals_held():  # a stop now would leave some files new and some old
        for temporary, path in temporaries:
            os.replace(temporary, path)
        if files:
            _sync_folder(files[0][0].parent)


def new_folder(parent: Path, prefix: str) -> Path:
    """A new empty folder in ``parent`` whose name starts with ``prefix``, to be filled and then
    renamed into place with :func:`replace_folder`."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(folder, 0o777 & ~_UMASK)  # mkdtemp makes 0700; folders are shared like any other
    return folder


def replace_folder(filled: Path, folder: Path) -> None:
    """Rename ``filled`` (its files synced) to ``folder``, which must not exist, in one step; sync their parent."""
    os.replace(filled, folder)
    _sync_folder(folder.parent)


def _sync_folder(folder: Path) -> None:
    """fsync a folder so that renames in it survive a power cut (where the platform allows it)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


@contextlib.contextmanager
def locked(out_dir: Path, what: str = "training") -> Iterator[None]:
    """Hold ``out_dir/.lock`` while a training (or an ``import``: ``what``) writes there; a second writer is refused.

    An advisory ``flock``: the kernel drops it when the process dies, even by ``kill -9``,
    so a stale lock never blocks a resume. The lock file names the holder's pid and ``what``,
    for the refusal's message.
    """
    path = Path(out_dir) / LOCK
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            _lock(handle)
        except OSError:  # BlockingIOError (flock) or PermissionError (msvcrt): someone holds it
            raise _busy(out_dir, _holder(handle)) from None
        os.ftruncate(handle, 0)
        os.lseek(handle, 0, os.SEEK_SET)
        os.write(handle, f"{os.getpid()} {what}\n".encode())
        yield
    finally:
        os.close(handle)  # releases the lock


def _busy(out_dir: Path, writer: str) -> EmbedcliError:
    return EmbedcliError(f"another {writer} is writing {out_dir}; wait for it to finish or choose another --out")


def _holder(handle: int) -> str:
    """'embedcli training (pid N)', or import: who holds a lock file, as it says."""
    os.lseek(handle, 0, os.SEEK_SET)
    owner, _, what = os.read(handle, 64).decode("ascii", "replace").strip().partition(" ")
    return f"embedcli {what or 'training'} (pid {owner or '?'})"


def writer_of(out_dir: Path) -> str | None:
    """Who writes ``out_dir`` now ('embedcli training (pid N)'), or None when no training or import holds it."""
    try:
        handle = os.open(Path(out_dir) / LOCK, os.O_RDWR)
    except OSError:  # no lock file (or not ours to open): no training there
        return None
    try:
        try:
            _lock(handle)
        except OSError:
            return _holder(handle)
        return None
    finally:
        os.close(handle)  # releases it if we took it


def _refuse_if_locked(out_dir: Path) -> None:
    """The error of :func:`locked` if a training or import holds ``out_dir`` now; nothing otherwise."""
    writer = writer_of(out_dir)
    if writer is not None:
        raise _busy(out_dir, writer)


def _lock(handle: int) -> None:
    if fcntl is not None:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:
        import msvcrt

        msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)


def holds_model(folder: Path) -> bool:
    """``folder`` is an embedcli model directory (its config.json says so): a corpus folder's
    sub-folder that is one holds another training's files, not text to train on."""
    try:
        with open(Path(folder) / CONFIG, "rb") as stream:
            head = stream.read(256)
    except OSError:
        return False
    return f'"format": "{FORMAT}"'.encode() in head


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
        if has_checkpoint(out_dir):
            _refuse_if_locked(out_dir)  # an unfinished training may still be running there
            raise UsageError(
                f"--out {out_dir} holds an unfinished training; continue it with "
                f"'embedcli train --resume {out_dir}', or add --force to start over"
            )


def row_norms(matrix: Any) -> np.ndarray:
    """The length of every row, as float32, a slice at a time. Float32 squares overflow past 1.8e19
    and vanish below 1e-19, values imported vectors may hold: such rows are summed again in float64
    (all rows in float64 would take 5x as long)."""
    parts = []
    for start in range(0, len(matrix), ROWS_PER_WRITE):
        rows = np.asarray(matrix[start : start + ROWS_PER_WRITE])
        with np.errstate(over="ignore", under="ignore"):  # the rows that overflow are summed again
            norms = np.linalg.norm(rows, axis=1).astype(np.float64)
        again = ~np.isfinite(norms) | (norms < 1e-18) | (norms > 1e18)
        if again.any():
            norms[again] = np.linalg.norm(rows[again].astype(np.float64), axis=1)
        parts.append(norms)
    return np.minimum(np.concatenate(parts or [np.zeros(0)]), np.finfo(np.float32).max).astype(np.float32)


def save_model(
    out_dir: Path,
    *,
    vectors: Any,
    words_counts: np.ndarray,
    token_ids: np.ndarray,
    tokenizer_json: str,
    words: list[str],
    metadata: dict[str, Any],
    extra: dict[str, bytes] | None = None,
) -> Path:
    """Write a model directory; ``metadata`` is stored in config.json beside format and checksums.

    ``extra`` names more files (such as loss.png) renamed into place with the others, before config.json.

    ``vectors`` (numpy array, memory map or torch tensor) is streamed to disk in slices, never
    copied whole. The row norms are stored beside it, so that queries need no normalised copy.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if hasattr(vectors, "detach"):  # a torch tensor
        vectors = vectors.detach().cpu().numpy()
    norms = row_norms(vectors)
    tensors = {
        "vectors": vectors,
        "norms": norms,
        "counts": np.ascontiguousarray(words_counts, dtype=np.int64),
        "token_ids": np.ascontiguousarray(token_ids, dtype=np.int64),
    }
    weights_hash = hashlib.sha256()
    tokenizer_bytes = tokenizer_json.encode("utf-8")
    words_bytes = json.dumps(words, ensure_ascii=False).encode("utf-8")  # row order, for fast loading
    checksums = {
        TOKENIZER: hashlib.sha256(tokenizer_bytes).hexdigest(),
        WORDS: hashlib.sha256(words_bytes).hexdigest(),
    }

    def write_config(stream: BinaryIO) -> None:  # runs after the weights are written and hashed
        files = {WEIGHTS: weights_hash.hexdigest(), **checksums}
        config = {"format": FORMAT, "version": VERSION, **metadata, "files": files}
        stream.write((json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode())

    _write_all(
        [
            (out_dir / WEIGHTS, lambda stream: write_tensors(_Hashing(stream, weights_hash), tensors, {"format": FORMAT})),
            (out_dir / TOKENIZER, lambda stream: stream.write(tokenizer_bytes)),
            (out_dir / WORDS, lambda stream: stream.write(words_bytes)),
            *((out_dir / name, functools.partial(_write_bytes, data=data)) for name, data in (extra or {}).items()),
            (out_dir / CONFIG, write_config),
        ]
    )
    return out_dir


def save_checkpoint(out_dir: Path, tensors: dict[str, np.ndarray], state: dict[str, Any]) -> None:
    """Write a training checkpoint into ``out_dir/.checkpoint``: the tables, then state.json naming them.

    Each checkpoint's weights get a new file name, and state.json (renamed into place last)
    names it with its sha256; the previous weights are removed only after that, so a crash
    at any moment leaves one complete checkpoint.
    """
    folder = Path(out_dir) / CHECKPOINT
    folder.mkdir(parents=True, exist_ok=True)
    previous = _read_checkpoint_state(folder)
    generation = int(previous.get("generation", 0)) + 1 if previous else 1
    name = f"weights-{generation:06d}.safetensors"
    digest = hashlib.sha256()
    atomic_write(folder / name, lambda stream: write_tensors(_Hashing(stream, digest), tensors, {"format": CHECKPOINT_FORMAT}))
    record = {"format": CHECKPOINT_FORMAT, "version": VERSION, "generation": generation, "weights": name,
              "sha256": digest.hexdigest(), **state}
    try:
        atomic_write_bytes(folder / "state.json", json.dumps(record, ensure_ascii=False).encode("utf-8"))
    except BaseException:
        (folder / name).unlink(missing_ok=True)
        raise
    for old in folder.glob("weights-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)


def has_checkpoint(out_dir: Path) -> bool:
    """``out_dir`` holds a complete checkpoint of an unfinished training (its state.json is written last)."""
    return (Path(out_dir) / CHECKPOINT / "state.json").is_file()


def load_checkpoint(out_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The tables and state of the checkpoint in ``out_dir``, checked by sha256."""
    folder = Path(out_dir) / CHECKPOINT
    if Path(out_dir).is_file():
        raise UsageError(f"--resume {out_dir} is a file; give the model folder of the training to continue")
    if not Path(out_dir).is_dir():
        raise UsageError(f"--resume {out_dir}: no such folder")
    if not has_checkpoint(out_dir):
        if (Path(out_dir) / CONFIG).is_file():
            raise UsageError(f"--resume {out_dir}: that training finished; there is nothing to resume")
        raise UsageError(f"--resume {out_dir}: it holds no checkpoint of an embedcli training")
    state = _read_checkpoint_state(folder)
    if not state or state.get("format") != CHECKPOINT_FORMAT or not isinstance(state.get("weights"), str):
        raise ModelError(f"{folder / 'state.json'} is damaged; start over with --force, without --resume")
    if not isinstance(state.get("version"), int) or state["version"] > VERSION:
        raise ModelError(f"{folder} was written by a newer embedcli; upgrade embedcli")
    weights = folder / Path(state["weights"]).name
    failures: list[ModelError] = []
    if not weights.is_file():
        raise ModelError(f"{weights} is missing; start over with --force, without --resume")
    _verify(folder, weights.name, state.get("sha256"), failures)
    if failures:
        raise ModelError(f"{weights} is truncated or corrupted (its sha256 does not match); start over with --force, without --resume")
    tensors, _ = map_tensors(weights)
    return {name: np.array(array) for name, array in tensors.items()}, state


def remove_checkpoint(out_dir: Path) -> None:
    shutil.rmtree(Path(out_dir) / CHECKPOINT, ignore_errors=True)


def _read_checkpoint_state(folder: Path) -> dict[str, Any]:
    try:
        state = json.loads((folder / "state.json").read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ModelError(f"{folder / 'state.json'} is damaged; start over with --force, without --resume") from None
    return state if isinstance(state, dict) else {"format": None}


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
            # a view, not tobytes(): copying holds Python's lock, which the training loop needs meanwhile
            stream.write(memoryview(part.astype(part.dtype.newbyteorder("<"), copy=False)).cast("B"))


def map_tensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors of a safetensors file as read-only memory maps (no copy), and its metadata."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as stream:
            length = int.from_bytes(stream.read(8), "little")
            if length <= 0 or 8 + length > size:
                raise ValueError("bad header size")
            header = json.loads(stream.read(length).decode("utf-8"))
        if not isinstance(header, dict) or not all(isinstance(info, dict) for info in header.values()):
            raise ValueError("its header is not a JSON object of tensors")
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
    except (ValueError, KeyError, TypeError, OverflowError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{path} is damaged: {error}") from None
    except PermissionError:
        raise ModelError(f"cannot read {path}: permission denied") from None
    return tensors, metadata


def _file_not_model(path: Path) -> str:
    """Why a file given as a model is none, and what to give instead."""
    message = f"{path} is a file, not a model: a model is a folder written by embedcli train or embedcli import"
    if (path.parent / CONFIG).is_file():
        return f"{path} is a file of the model {path.parent}; give the folder: {path.parent}"
    try:
        with open(path, "rb") as stream:
            first_line = stream.read(4096).split(b"\n", 1)[0].split()
    except OSError:
        return message
    try:  # word2vec's "COUNT DIM" header, or GloVe's "word 0.1 -0.2 ...": vectors to import
        looks_like_vectors = len(first_line) == 2 and all(part.isdigit() for part in first_line)
        looks_like_vectors |= len(first_line) >= 3 and bool([float(part) for part in first_line[1:]])
    except ValueError:
        looks_like_vectors = False
    if looks_like_vectors:
        return f"{path} is a file of word vectors, not a model folder; turn it into one with: embedcli import {path} --out DIR"
    return message


def read_config(model_dir: Path) -> dict[str, Any]:
    """config.json of a model directory, after checking that it is one embedcli can read."""
    model_dir = Path(model_dir)
    path = model_dir / CONFIG
    if model_dir.is_file():
        raise ModelError(_file_not_model(model_dir))
    if not model_dir.is_dir():
        raise ModelError(f"no model at {model_dir}; train one with: embedcli train CORPUS --out {model_dir}")
    if not path.is_file():
        writer = writer_of(model_dir)
        if writer is not None:
            raise ModelError(f"{model_dir} holds no model yet: an {writer} is writing it; wait for it to finish")
        if (model_dir / CHECKPOINT).is_dir():
            raise ModelError(
                f"{model_dir} holds a training that has not finished; continue it with "
                f"'embedcli train --resume {model_dir}'"
            )
        raise ModelError(f"{model_dir} is not an embedcli model: it has no {CONFIG}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelError(f"{path} is damaged: it is not valid JSON") from None
    except PermissionError:
        raise ModelError(f"cannot read {path}: permission denied") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelError(f"{model_dir} is not an embedcli model ({CONFIG} names another format)")
    version = config.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelError(f"{path} is damaged: its version is not a number")
    if version > VERSION:
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
            if (
                not isinstance(model.words, list)
                or len(model.words) != len(vectors)
                or not all(isinstance(word, str) for word in model.words)
            ):
                raise ModelError(f"{model_dir / WORDS} is damaged: it does not list one word per vector")
    except PermissionError as error:
        model.verified()
        raise ModelError(f"cannot read {error.filename}: permission denied") from None
    except ModelError:
        model.verified()  # a checksum mismatch explains the damage better
        raise
    return model


def load_model(model_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray], str]:
    """Config, tensors (memory-mapped) and tokenizer JSON of a model directory, each file checked by sha256."""
    model = read_whole(model_dir, lambda: open_model(model_dir).verified())
    return model.config, model.tensors, model.tokenizer_json


REREADS = 5


def read_whole(model_dir: Path, read: Callable[[], T]) -> T:
    """``read()`` the model in ``model_dir``, again while a training or import replaced its files meanwhile.

    A new model's files are renamed in one by one (config.json last): a reader in between may meet
    some of each model, which it would call corrupted (or, read in a lucky order, mix silently).
    Whatever ``read`` returns or raises counts only if no file changed while it ran.
    """
    model_dir = Path(model_dir)
    for attempt in range(1, REREADS + 1):
        before = _generation(model_dir)
        try:
            result = read()
        except ModelError:
            if attempt == REREADS or _generation(model_dir) == before:
                raise
        else:
            if attempt == REREADS or _generation(model_dir) == before:
                return result
        time.sleep(0.01 * attempt)
    raise AssertionError("the last attempt returns or raises")


def _generation(model_dir: Path) -> list[tuple[int, int, int] | None]:
    """Which version of each model file is there: a rename gives it a new inode (and mtime)."""
    stamps = []
    for name in (CONFIG, WEIGHTS, TOKENIZER, WORDS):
        try:
            info = os.stat(model_dir / name)
        except OSError:
            stamps.append(None)
            continue
        stamps.append((info.st_ino, info.st_mtime_ns, info.st_size))
    return stamps


def _verify(model_dir: Path, name: str, expected: str | None, failures: list[ModelError]) -> None:
    path = model_dir / name
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            if os.fstat(stream.fileno()).st_size:  # hash straight from the page cache, no copies
                with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as mapped, memoryview(mapped) as view:
                    for start in range(0, len(view), 1 << 24):
                        digest.update(view[start : start + (1 << 24)])
    except OSError as error:  # in a thread: reported by verified(), never as a stray traceback
        reason = "permission denied" if isinstance(error, PermissionError) else error.strerror or error
        failures.append(ModelError(f"cannot read {path}: {reason}"))
        return
    if digest.hexdigest() != expected:
        failures.append(
            ModelError(f"{path} is truncated or corrupted (its sha256 does not match {CONFIG}); train again")
        )
