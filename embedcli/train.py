"""train(): corpus to model directory. The loop, the learning-rate schedule, progress, checkpoints.

On CPU, ``threads`` workers update the same two tables without locks (Hogwild,
as word2vec.c and gensim do); each takes its own stretch of the token stream
every epoch. Every PyTorch op runs single-threaded inside a worker, and the
ops release the GIL, so the workers run truly in parallel.

Workers meet (a barrier) at every epoch end and whenever a checkpoint is due:
the meeting writes the checkpoint, scores the vectors when asked, and, under
torchrun, merges the ranks' tables. Each span of 256k tokens draws its random
numbers from a generator seeded by (seed, epoch, worker, span), so a resumed
run needs only the positions, not generator states.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from tqdm import tqdm

from . import __version__, cuda_start
from .config import DEFAULTS, GPU_LANES, TrainConfig, as_config
from .corpus import Corpus
from .errors import ConfigError, EmbedcliError, ModelError, UsageError, signals_held
from .evaluate import evaluate_analogies, evaluate_pairs, read_analogies, read_pairs
from .model import CapturedStep, SkipGram, step_bytes
from .resources import check_disk, check_memory, return_large_buffers
from .sampling import Span, chunk_of, hot_rows, keep_probabilities, make_span, noise_table, sentence_ids
from .store import (
    CHECKPOINT,
    NO_SPACE,
    DiskFullError,
    check_output_dir,
    has_checkpoint,
    holds_model,
    load_checkpoint,
    locked,
    remove_checkpoint,
    save_checkpoint,
    save_model,
)
from .vectors import Vectors, word_normalizer
from .vocab import Encoded, cache_folder, cache_key, cached, prepare

log = logging.getLogger("embedcli")
# Most raw tokens a worker sub-samples at once; under torchrun, also the most it trains between
# two merges (on gcide.txt, merging every 1M tokens cost 0.03 of analogy accuracy). Small spans
# also keep the per-span buffers, and so peak memory, small.
SPAN_TOKENS = 1 << 18
# One GPU alone merges with no one: its spans are 8x longer, since preparing a span (some 60 small
# kernels and two waits for the GPU) costs about as much as training 100k of its tokens there.
GPU_SPAN_TOKENS = 1 << 21
SPAN_BYTES_PER_TOKEN = 4  # per token and window position: a span's masks and their temporaries (8 workers at --window 100: 1.1 GB)
# Workers by default, whatever the cores: on a 16-core machine 16 workers made 0.46M words/s (less
# than 2 on 2 cores) at WS353 0.30, contending for Python's lock between their small tensor
# operations and colliding in their lock-free adds; 4 (on 2 cores) score WS353 0.586 against 0.618
# for 2 (benchmarks/RESULTS.md, "Learning rate and cap").
MAX_DEFAULT_WORKERS = 4
LOSS_EVERY = 16  # chunks between two loss measurements


class Interrupted(EmbedcliError):
    """Training stopped on SIGINT or SIGTERM after writing a checkpoint."""

    def __init__(self, message: str, signum: int, *, shown: bool = True) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum
        self.shown = shown  # under torchrun, process 0 alone says it


class DivergedError(EmbedcliError):
    """The loss or the weights stopped being finite numbers."""


@dataclass(frozen=True)
class TrainResult:
    """What a finished training run reports."""

    model_dir: Path
    vocab_size: int
    tokens: int
    seconds: float
    words_per_second: float
    loss: float | None
    device: str
    cached: bool
    epochs: int
    process: int = 0  # the torchrun rank that reports; only rank 0 writes the model


@dataclass(frozen=True)
class Position:
    """Where a worker is: the next chunk it trains, of which stretch, of which epoch."""

    epoch: int
    span: int
    chunk: int


def resolve_device(name: str) -> torch.device:
    """'auto' means CUDA when present; asking for CUDA without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available here; use --device cpu or auto")
        if (device.index or 0) >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def learning_rate(cfg: TrainConfig, done: int, total: int) -> float:
    """word2vec's linear decay from ``lr`` to ``lr * min_lr`` over all epochs."""
    return cfg.lr * max(cfg.min_lr, 1.0 - done / (total + 1))


def worker_count(cfg: TrainConfig, device: torch.device, *, processes_here: int = 1) -> int:
    """CPU workers of this process: --threads, or the cores shared among the processes on this machine, at most 4."""
    if device.type != "cpu" or cfg.deterministic:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cfg.threads or max(1, min(MAX_DEFAULT_WORKERS, cores // processes_here))


def row_step_share(max_row_step: float, workers: int) -> float:
    """The hot-row cap of one worker's step: the whole cap for one or two workers; more share twice it."""
    return max_row_step * min(1.0, 2 / workers)


def train(
    corpus_paths: str | os.PathLike | Sequence[str | os.PathLike],
    cfg: TrainConfig | Mapping[str, Any] | None = None,
    *,
    out_dir: str | os.PathLike = "embeddings",
    force: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train word vectors on the corpus (one path, or a list of them) and write a model directory to ``out_dir``.

    ``cfg``: a TrainConfig, a dict of settings (``{"dim": 50}``, checked like a config file's) or None for the defaults.
    """
    cfg = as_config(cfg)
    if isinstance(corpus_paths, (str, os.PathLike)):  # one path, not a list of its characters
        corpus_paths = [corpus_paths]
    out_dir = Path(out_dir)
    for flag, path, read in (("--eval-analogies", cfg.eval_analogies, read_analogies), ("--eval-pairs", cfg.eval_pairs, read_pairs)):
        if not path:
            continue
        if Path(path).is_dir():
            raise ConfigError(f"{flag} {path}: is a folder; give an evaluation file")
        if not Path(path).is_file():
            raise ConfigError(f"{flag} {path}: no such file")
        read(path)  # an empty, UTF-16 or wrong kind of file is refused now, not after the first epoch
    from .distributed import join_group, launched_by_torchrun  # a no-op outside torchrun

    if launched_by_torchrun() and any(str(path) == "-" for path in corpus_paths):
        raise UsageError("under torchrun every process reads the corpus itself: give files, not - (stdin)")
    group = join_group(cfg)
    if group.rank == 0:
        check_output_dir(out_dir, force=force)
    created = group.rank == 0 and not out_dir.exists()
    # an endless stdin stops at max_words; a corpus folder holding out_dir must not read the model being written
    corpus = Corpus(corpus_paths, max_words=cfg.max_tokens, leave_out=[out_dir], leave_folder=holds_model)
    try:
        return _train(corpus, cfg, out_dir, group, progress=progress, checkpoint=None)
    except BaseException:
        if created and not (out_dir / CHECKPOINT).exists():  # a failed run leaves no folder of its own behind
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def resume(
    out_dir: str | os.PathLike,
    *,
    corpus_paths: Sequence[str | os.PathLike] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Continue the training whose checkpoint is in ``out_dir``, with its settings, where it stopped.

    ``corpus_paths`` replaces the corpus the checkpoint names (if the files moved); it must
    give the same vocabulary.
    """
    out_dir = Path(out_dir)
    tensors, state = load_checkpoint(out_dir)
    _check_checkpoint(state, tensors, out_dir)
    try:
        cfg = DEFAULTS.with_overrides(**state["config"])
    except (EmbedcliError, TypeError, KeyError) as error:
        raise UsageError(
            f"{out_dir}/.checkpoint holds settings this embedcli cannot use ({error}); start over with --force, without --resume"
        ) from None
    from .distributed import join_group

    group = join_group(cfg)
    if group.world != state.get("world_size", 1):
        raise UsageError(
            f"the checkpoint in {out_dir} was written by {state.get('world_size', 1)} processes; "
            f"resume it with the same number (now {group.world})"
        )
    corpus = None
    encoded = cached(cache_folder(out_dir), state["corpus"]["cache_key"]) if corpus_paths is None else None
    if encoded is None:
        paths = corpus_paths or state["corpus"]["files"]
        if corpus_paths is None and "-" in paths:
            raise UsageError(
                f"cannot resume: the corpus was read from stdin and its token cache is gone; "
                f"give it again: embedcli train - --resume {out_dir} < CORPUS"
            )
        missing = [path for path in paths if path != "-" and not Path(path).exists()]
        if missing:
            raise UsageError(
                f"cannot resume: the corpus file {missing[0]} is gone and so is the token cache; "
                f"name the corpus again: embedcli train CORPUS --resume {out_dir}"
            )
        corpus = Corpus(paths, leave_out=[out_dir], leave_folder=holds_model)
    return _train(corpus, cfg, out_dir, group, progress=progress, checkpoint=(tensors, state), encoded=encoded)


def _train(corpus: Corpus | None, cfg: TrainConfig, out_dir: Path, group: Any, **options: Any) -> TrainResult:
    """:func:`_train_in_group`, then the group closed however it ended: a process that exits
    with its torch.distributed group open can abort ("terminate called without an active exception")."""
    try:
        return _train_in_group(corpus, cfg, out_dir, group, **options)
    finally:
        group.close()


def _train_in_group(
    corpus: Corpus | None,
    cfg: TrainConfig,
    out_dir: Path,
    group: Any,
    *,
    progress: bool,
    checkpoint: tuple[dict[str, np.ndarray], dict[str, Any]] | None,
    encoded: Encoded | None = None,
) -> TrainResult:
    device = resolve_device(cfg.device) if group.device is None else group.device
    if not cfg.lanes:  # recorded as used, so that a resumed run steps alike wherever it runs
        cfg = dataclasses.replace(cfg, lanes=GPU_LANES if device.type == "cuda" else 1)
    if cfg.deterministic and device.type == "cuda":
        torch.use_deterministic_algorithms(True, warn_only=True)
    started = time.perf_counter()
    if group.rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    with locked(out_dir) if group.rank == 0 else contextlib.nullcontext():
        if encoded is None:
            if corpus.skipped and group.rank == 0:
                log.warning("%s", corpus.skipped_note())
            files = [str(path) for path in corpus.files]  # before stdin is spooled: '-' stays '-'
            encoded, key = group.encode(lambda: _encode(corpus, cfg, out_dir))
        else:
            files, key = checkpoint[1]["corpus"]["files"], checkpoint[1]["corpus"]["cache_key"]
        encoding_seconds = time.perf_counter() - started
        if encoded.invalid_bytes and group.rank == 0:
            log.warning("%d bytes of the corpus were not valid UTF-8 and were replaced", encoded.invalid_bytes)
        vocabulary_hash = hashlib.sha256("\n".join(encoded.vocabulary.words).encode("utf-8", "replace")).hexdigest()
        group.check_same(vocabulary_hash, "vocabulary")
        workers = worker_count(cfg, device, processes_here=group.local_world)
        span_tokens = GPU_SPAN_TOKENS if device.type == "cuda" and group.world == 1 else SPAN_TOKENS
        if checkpoint is not None:
            _check_resumable(checkpoint[1], encoded, vocabulary_hash, out_dir)
            if checkpoint[0]["input"].shape != (len(encoded.vocabulary), cfg.dim):
                raise ModelError(f"the checkpoint in {out_dir} does not fit its corpus and settings; start over with --force, without --resume")
            workers = int(checkpoint[1]["workers"])
            span_tokens = int(checkpoint[1].get("span_tokens", SPAN_TOKENS))  # positions count spans
        # Both tables, a checkpoint's snapshot of them (in host memory), and under torchrun the last merged copy.
        copies = (4 if device.type == "cpu" else 2) + 2 * (group.world > 1)
        # Each worker's step scratch (which grows with --chunk and --dim, not the vocabulary) and its span.
        step = step_bytes(
            cfg.lanes * cfg.chunk, cfg.dim, window=cfg.window, noise_block=cfg.noise_block, noise_words=cfg.noise_words
        )
        working = workers * (step + span_tokens * SPAN_BYTES_PER_TOKEN * (2 * cfg.window + 1))
        check_memory(len(encoded.vocabulary), cfg.dim, device, copies=copies, working=working)

        generator = torch.Generator().manual_seed(cfg.seed)
        model = SkipGram(len(encoded.vocabulary), cfg.dim, generator=generator)
        if checkpoint is not None:
            with torch.no_grad():
                model.input.weight.copy_(torch.from_numpy(checkpoint[0]["input"]))
                model.output.weight.copy_(torch.from_numpy(checkpoint[0]["output"]))
        model = model.to(device)
        cuda_start.release()  # torch holds the context it uses by now; a CPU run needs none
        group.begin(model)
        run = _Run(model, encoded, cfg, device, out_dir, group, workers=workers, span_tokens=span_tokens, progress=progress)
        run.identity = {
            "config": cfg.to_dict(),
            "corpus": {"files": files, "cache_key": key, "vocabulary_sha256": vocabulary_hash},
            "workers": workers,
            "span_tokens": span_tokens,
            "world_size": group.world,
        }
        previous_seconds = 0.0
        if checkpoint is not None:
            previous_seconds = run.restore(checkpoint[1])
        run.previous_seconds += encoding_seconds  # a checkpoint's seconds count each run's tokenizing too
        training_started = time.perf_counter()
        run.go()
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # the steps queued last are part of the training's time
        phases = {"encoding": encoding_seconds, "training_steps": time.perf_counter() - training_started}
        seconds = previous_seconds + time.perf_counter() - started
        tokens = encoded.corpus_tokens
        words_per_second = tokens * cfg.epochs / seconds if seconds > 0 else 0.0
        if group.rank == 0:
            # Training is over: a Ctrl-C now would throw it away, so it takes a second one to stop the saving
            with signals_held(second_stops="embedcli: saving the trained model; press Ctrl-C again to stop without it"):
                _save(run, encoded, checkpoint, seconds, words_per_second, phases)
                remove_checkpoint(out_dir)
    return TrainResult(
        model_dir=out_dir,
        vocab_size=len(encoded.vocabulary),
        tokens=encoded.corpus_tokens,
        seconds=seconds,
        words_per_second=words_per_second,
        loss=run.state.loss,
        device=str(device),
        cached=encoded.cached,
        epochs=cfg.epochs,
        process=group.rank,
    )


def _encode(corpus: Corpus, cfg: TrainConfig, out_dir: Path) -> tuple[Encoded, str]:
    """Tokenize and encode the corpus into the token cache of ``out_dir`` (or reuse it); its cache key."""
    cache_root = cache_folder(out_dir)
    reads_stdin = corpus.needs_spooling()  # stdin, named pipes and devices are read once, into a spool
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".stdin-", dir=out_dir) if reads_stdin else contextlib.nullcontext() as spool:
            if spool is not None:
                corpus.spool_stdin(Path(spool))
            key = cache_key(corpus, cfg)
            encoded = cached(cache_root, key)  # a hit is loaded once, here
            if encoded is None:
                check_disk(corpus, cache_root)
                encoded = prepare(corpus, cfg, cache_root)
            return encoded, key
    except OSError as error:
        if error.errno in NO_SPACE:
            shutil.rmtree(cache_root, ignore_errors=True)
            raise DiskFullError(
                f"the disk filled while writing the token cache in {cache_root}; "
                f"free some space (the cache takes about 1.5x the corpus) or choose another --out"
            ) from None
        raise


def _check_checkpoint(state: dict[str, Any], tensors: dict[str, np.ndarray], out_dir: Path) -> None:
    """Refuse a state.json whose fields are not what a checkpoint holds (its weights are checked by sha256)."""

    def need(condition: bool, what: str) -> None:
        if not condition:
            raise ModelError(f"{out_dir}/.checkpoint/state.json is damaged ({what}); start over with --force, without --resume")

    def integers(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(item, int) and not isinstance(item, bool) for item in value)

    need(isinstance(state.get("config"), dict), "no settings")
    corpus = state.get("corpus")
    need(isinstance(corpus, dict) and isinstance(corpus.get("cache_key"), str)
         and isinstance(corpus.get("vocabulary_sha256"), str) and isinstance(corpus.get("files"), list)
         and all(isinstance(path, str) for path in corpus["files"]), "no corpus")
    workers = state.get("workers")
    need(isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1, "no worker count")
    need(isinstance(state.get("world_size", 1), int), "no process count")
    span_tokens = state.get("span_tokens", 1)
    need(isinstance(span_tokens, int) and not isinstance(span_tokens, bool) and span_tokens >= 1, "no span length")
    positions = state.get("positions")
    need(isinstance(positions, list) and len(positions) == workers
         and all(integers(position) and len(position) == 3 and min(position) >= 0 for position in positions), "no positions")
    need(integers(state.get("done")) and len(state["done"]) == workers, "no progress")
    need(state.get("loss") is None or isinstance(state.get("loss"), (int, float)), "no loss")
    need(isinstance(state.get("history"), list) and all(
        isinstance(entry, list) and len(entry) == 2 and all(isinstance(value, (int, float)) for value in entry)
        for entry in state["history"]), "no loss history")
    need(isinstance(state.get("evaluations"), list), "no evaluations")
    need(isinstance(state.get("seconds"), (int, float)), "no time")
    shapes = [tensors[name].shape if name in tensors else None for name in ("input", "output")]
    need(shapes[0] is not None and len(shapes[0]) == 2 and shapes[0] == shapes[1], "weights of the wrong shape")


def _check_resumable(state: dict[str, Any], encoded: Encoded, vocabulary_hash: str, out_dir: Path) -> None:
    if state["corpus"]["vocabulary_sha256"] != vocabulary_hash:
        raise UsageError(
            f"the corpus is not the one the checkpoint in {out_dir} was trained on (its vocabulary differs; or an "
            f"older embedcli, which tokenized it otherwise, wrote the checkpoint); name the same corpus, or start over with --force"
        )


def _save(
    run: _Run, encoded: Encoded, checkpoint: Any, seconds: float, words_per_second: float, phases: dict[str, float]
) -> None:
    model, cfg, out_dir, device = run.model, run.cfg, run.out_dir, run.device
    if not _sane(model):
        raise run._diverged(_INSANE)  # an earlier epoch's checkpoint may be there: say so
    files = run.identity["corpus"]["files"]
    metadata = {
        "embedcli_version": __version__,
        "config": cfg.to_dict(),
        "corpus": {
            "files": files,
            "tokens": encoded.corpus_tokens,
            "tokens_in_vocabulary": len(encoded.stream),
            "sentences": len(encoded.stream.offsets) - 1,
            "vocab_size": len(encoded.vocabulary),
            "invalid_bytes": encoded.invalid_bytes,
        },
        "training": {
            "device": str(device),
            "workers": run.workers,
            "processes": run.group.world,
            "seconds": round(seconds, 3),
            "words_per_second": round(words_per_second),
            # of this run (not counting a resumed run's earlier part): tokenizing or loading the cache; the workers' time
            "seconds_by_phase": {phase: round(value, 3) for phase, value in phases.items()},
            **({"gpu_peak_mib": round(torch.cuda.max_memory_allocated(device) / 2**20)} if device.type == "cuda" else {}),
            "final_loss": run.state.loss,
            "evaluation": run.state.evaluations,
            "resumed": checkpoint is not None,
            "checkpoints": {key: round(value, 3) for key, value in run.checkpoints.items()},
            **({"communication": run.group.traffic()} if run.group.world > 1 else {}),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    }
    extra = {}
    if len(run.state.history) >= 2 and importlib.util.find_spec("matplotlib") is not None:
        from .plot import loss_png  # only where matplotlib is installed

        extra["loss.png"] = loss_png(run.state.history)  # renamed into place with the model, not after it
    save_model(
        out_dir,
        vectors=model.input.weight,
        words_counts=encoded.vocabulary.counts,
        token_ids=encoded.vocabulary.token_ids,
        tokenizer_json=encoded.tokenizer.to_str(),
        words=encoded.vocabulary.words,
        metadata=metadata,
        extra=extra,
    )


# Trained word2vec weights stay within a few units (initial ones within 0.5 / dim); a weight past this
# came from a learning rate so high that the vectors all grew along one direction, still finite.
MAX_WEIGHT = 1e6
_INSANE = f"the weights hold NaN or Inf, or grew past {MAX_WEIGHT:g}"


def _sane(model: SkipGram) -> bool:
    """No weight is NaN, infinite or larger than MAX_WEIGHT (aminmax: no copy of the table, NaN fails)."""
    for table in (model.input.weight, model.output.weight):
        if table.numel():
            low, high = torch.aminmax(table.detach())
            if not (-MAX_WEIGHT <= float(low) and float(high) <= MAX_WEIGHT):
                return False
    return True


class _Progress:
    """Counters shared by the workers: each writes only its own slot."""

    def __init__(self, workers: int, total: int) -> None:
        self.done = [0] * workers
        self.total = total
        self.loss: float | None = None
        self.stop = False
        self.error: BaseException | None = None
        self.evaluations: list[dict] = []
        self.messages: list[str] = []  # lines for the progress output, written by the main thread
        self.history: list[tuple[int, float]] = []  # (words done, smoothed loss), for loss.png

    def words(self) -> int:
        return sum(self.done)

    def record_loss(self, value: float) -> None:
        self.loss = value if self.loss is None else 0.9 * self.loss + 0.1 * value


class _Run:
    """One training run: the workers, their meetings, checkpoints and signals."""

    def __init__(
        self,
        model: SkipGram,
        encoded: Encoded,
        cfg: TrainConfig,
        device: torch.device,
        out_dir: Path,
        group: Any,
        *,
        workers: int,
        span_tokens: int,
        progress: bool,
    ) -> None:
        self.model, self.encoded, self.cfg, self.device = model, encoded, cfg, device
        self.out_dir, self.group, self.workers, self.progress = out_dir, group, workers, progress
        self.step_centers = cfg.chunk * cfg.lanes  # centers of one training step: --chunk in each lane
        tokens = len(encoded.stream)
        # Every worker of every process gets one stretch of the stream; each stretch is cut
        # into the same number of spans, so that processes meet after every span together.
        shards = np.linspace(0, tokens, group.world * workers + 1).astype(np.int64)
        self.bounds = shards[group.rank * workers : (group.rank + 1) * workers + 1]
        self.spans = max(1, -(-int(np.max(np.diff(shards), initial=0)) // span_tokens))
        # The most steps a span can hold: one per step_centers of its tokens (see make_span).
        longest_span = -(-int(np.max(np.diff(shards), initial=0)) // self.spans) + 1
        self.span_steps = -(-longest_span // self.step_centers)
        # The learning rate decays over this process's share, which it walks at the others' pace.
        self.state = _Progress(workers, int(self.bounds[-1] - self.bounds[0]) * cfg.epochs)
        self.positions = [Position(0, 0, 0)] * workers
        self.at_epoch_end = [False] * workers
        self.resumed_at_epoch_end = [False] * workers  # see restore
        self.everyone_at_epoch_end = False
        self.pause = False  # a meeting is wanted: a checkpoint is due or a signal came
        self.checkpoint_due = False
        self.signal: int | None = None
        self.last_checkpoint = time.monotonic()
        self.writer: threading.Thread | None = None
        self.previous_seconds = 0.0
        self.started = time.perf_counter()
        self.identity: dict[str, Any] = {}
        # What checkpoints cost: written, seconds the workers waited for a snapshot, seconds of writing meanwhile.
        self.checkpoints = {"written": 0, "pause_seconds": 0.0, "write_seconds": 0.0}
        self.meeting = threading.Barrier(workers, action=self._meet)
        self.captured: CapturedStep | bool | None = None  # the recorded step, on CUDA; False where recording failed

    def restore(self, state: dict[str, Any]) -> float:
        """Take up the positions, counters and records of a checkpoint; return its training seconds."""
        self.positions = [Position(*position) for position in state["positions"]]
        # A worker an epoch ahead of another was waiting at the end of that one's epoch for it (its
        # position names the next epoch); it must wait there again, not start the next epoch alone.
        behind = min(position.epoch for position in self.positions)
        self.resumed_at_epoch_end = [position.epoch > behind for position in self.positions]
        self.state.done = [int(count) for count in state["done"]]
        self.state.loss = state["loss"]
        self.state.history = [(int(words), float(loss)) for words, loss in state["history"]]
        self.state.evaluations = list(state["evaluations"])
        self.previous_seconds = float(state["seconds"])
        generation = state.get("generation")  # checkpoints the runs before this one wrote
        if isinstance(generation, int) and not isinstance(generation, bool) and generation > 0:
            self.checkpoints["written"] = generation
        return self.previous_seconds

    # The main thread: start the workers, show progress, ask for checkpoints, take signals.
    def go(self) -> None:
        cfg, state = self.cfg, self.state
        counts = torch.from_numpy(self.encoded.vocabulary.counts)
        self.keep = keep_probabilities(counts, cfg.sample)
        self.cumulative = noise_table(counts)
        # The workers' steps run at once, each from the tables as they were before any of them. Two
        # workers with the whole cap each train well; more share twice the cap among them (16
        # with the whole cap each diverged on a 16-core machine; 4 with half each lost quality).
        self.max_step = row_step_share(cfg.max_row_step, self.workers)
        self.hot = hot_rows(
            self.keep, counts, self.cumulative, chunk=self.step_centers, window=cfg.window, negative=cfg.negative,
            max_pairs=self.max_step / cfg.lr,
        )
        self.keep, self.cumulative = self.keep.to(self.device), self.cumulative.to(self.device)
        if self.device.type == "cpu":
            torch.set_num_threads(1)
        return_large_buffers()
        # Each worker says when it is done: a Thread.join that a signal breaks off can mark a thread
        # stopped that still runs (CPython 3.11), and exiting under a worker inside PyTorch aborts.
        done = [threading.Event() for _ in range(self.workers)]
        threads = [threading.Thread(target=self._guarded, args=(index, done[index]), daemon=True) for index in range(self.workers)]
        bar = tqdm(
            total=state.total, initial=state.words(), unit="word", unit_scale=True, dynamic_ncols=True,
            disable=not self.progress or not sys.stderr.isatty() or self.group.rank != 0, desc="training",
        )
        handlers = self._take_signals()
        try:
            for thread in threads:
                thread.start()
            while not all(event.is_set() for event in done):
                next(event for event in done if not event.is_set()).wait(timeout=0.25)
                self._show(bar)
                every = cfg.checkpoint_every * 60
                if every and time.monotonic() - self.last_checkpoint >= every and not self.pause:
                    self.checkpoint_due = self.pause = True
        except BaseException as error:  # a second Ctrl-C: stop at once, keeping the last checkpoint
            for signum in handlers:  # a third one must not break off the stop
                signal.signal(signum, signal.SIG_IGN)
            state.stop = True
            self.meeting.abort()
            for thread, finished in zip(threads, done):
                if thread.ident is not None:  # started
                    finished.wait()
            if self.writer is not None:
                self.writer.join()  # a checkpoint being written is finished, not left half-written
            if not isinstance(error, KeyboardInterrupt):
                raise
            raise self._stopped_at_once() from None
        finally:
            self._give_back_signals(handlers)
            bar.close()
        self._show(None)
        if self.writer is not None:
            self.writer.join()
        if state.error is not None:
            raise state.error
        if self.signal is not None:
            name = signal.Signals(self.signal).name
            percent = 100 * state.words() / max(state.total, 1)
            raise Interrupted(
                f"stopped by {name} at {percent:.0f}%; checkpoint written; continue with: {self._resume_command()}",
                self.signal,
                shown=self.group.rank == 0,
            )
        if state.loss is not None:
            state.history.append((state.words(), state.loss))

    def _stopped_at_once(self) -> Interrupted:
        signum = self.signal if self.signal is not None else signal.SIGINT
        if not has_checkpoint(self.out_dir):
            return Interrupted(f"stopped at once by a second {signal.Signals(signum).name}; nothing was written", signum, shown=self.group.rank == 0)
        return Interrupted(
            f"stopped at once by a second {signal.Signals(signum).name}; the last checkpoint is kept; "
            f"continue with: {self._resume_command()}",
            signum,
            shown=self.group.rank == 0,
        )

    def _resume_command(self) -> str:
        if self.group.world == 1:
            return f"embedcli train --resume {self.out_dir}"
        return f"torchrun with the same {self.group.world} processes and -m embedcli train --resume {self.out_dir}"

    def _show(self, bar: tqdm | None) -> None:
        state = self.state
        while state.messages:
            message = state.messages.pop(0)  # evaluations and warnings: shown with or without the bar
            if self.group.rank == 0:
                (bar.write(message, file=sys.stderr) if bar is not None else print(message, file=sys.stderr))
        if bar is None:
            return
        done = state.words()
        if state.loss is not None and (not state.history or done - state.history[-1][0] >= state.total / 500):
            state.history.append((done, state.loss))
        bar.update(done - bar.n)
        lr = learning_rate(self.cfg, done, state.total)
        bar.set_postfix(loss=f"{state.loss:.3f}" if state.loss is not None else "-", lr=f"{lr:.3g}", refresh=False)

    def _take_signals(self) -> dict[int, Any]:
        """SIGINT and SIGTERM ask for a checkpoint and a clean stop; a second one stops at once."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def ask_to_stop(signum: int, frame: Any) -> None:
            if self.signal is not None:
                raise KeyboardInterrupt
            self.signal = signum
            self.pause = True

        return {signum: signal.signal(signum, ask_to_stop) for signum in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _give_back_signals(handlers: dict[int, Any]) -> None:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)

    # The meeting: runs in one worker while every other worker waits at the barrier.
    def _meet(self) -> None:
        try:
            if self.group.world > 1:
                flags = self.group.agree([self.checkpoint_due, self.signal is not None])
                self.group.merge(self.model)
                self.checkpoint_due, interrupted = flags[0], flags[1]
                if interrupted and self.signal is None:
                    self.signal = signal.SIGTERM
            self.everyone_at_epoch_end = all(self.at_epoch_end)
            finished = self.everyone_at_epoch_end and self.positions[0].epoch == self.cfg.epochs
            if self.everyone_at_epoch_end and (self.cfg.eval_analogies or self.cfg.eval_pairs):
                self._evaluate_epoch()
            # The last epoch's end needs no checkpoint: the model directory is written next.
            if (self.everyone_at_epoch_end and not finished) or self.checkpoint_due or self.signal is not None:
                self._checkpoint(wait=self.signal is not None)
            if self.signal is not None:
                self.state.stop = True
            self.pause = False
            self.checkpoint_due = False
        except BaseException as error:
            self.state.error = error
            self.state.stop = True

    def _checkpoint(self, *, wait: bool) -> None:
        """Snapshot the tables and positions; write them in the background (or now, when stopping)."""
        if not _sane(self.model):
            raise self._diverged(_INSANE)
        self.last_checkpoint = time.monotonic()
        if self.group.rank != 0:
            return
        paused = time.perf_counter()
        if self.writer is not None:
            self.writer.join()
        tensors = {
            "input": self.model.input.weight.detach().to("cpu", copy=True).numpy(),
            "output": self.model.output.weight.detach().to("cpu", copy=True).numpy(),
        }
        state = self.state
        record = {
            **self.identity,
            "positions": [[p.epoch, p.span, p.chunk] for p in self.positions],
            "done": list(state.done),
            "loss": state.loss,
            "history": state.history,
            "evaluations": state.evaluations,
            "seconds": self.previous_seconds + time.perf_counter() - self.started,
            "progress": state.words() / max(state.total, 1),
        }
        self.writer = threading.Thread(target=self._write_checkpoint, args=(tensors, record), daemon=True)
        self.writer.start()
        if wait:
            self.writer.join()
        self.checkpoints["pause_seconds"] += time.perf_counter() - paused

    def _write_checkpoint(self, tensors: dict[str, np.ndarray], record: dict[str, Any]) -> None:
        try:
            started = time.perf_counter()
            save_checkpoint(self.out_dir, tensors, record)
            self.checkpoints["written"] += 1
            self.checkpoints["write_seconds"] += time.perf_counter() - started
        except (OSError, EmbedcliError) as error:  # training goes on; the previous checkpoint stays
            self.state.messages.append(f"embedcli: warning: could not write a checkpoint ({error}); the previous one is kept")

    def _evaluate_epoch(self) -> None:
        """Score the vectors as they are at the end of an epoch (all workers wait meanwhile)."""
        cfg, state = self.cfg, self.state
        vectors = Vectors(  # normalising question words as `embedcli evaluate` does on the saved model
            self.encoded.vocabulary.words, self.model.input.weight.detach().cpu(),
            normalize_word=word_normalizer(self.encoded.tokenizer),
        )
        epoch = self.positions[0].epoch
        entry: dict = {"epoch": epoch}
        parts = [f"epoch {epoch}/{cfg.epochs}"]
        if cfg.eval_analogies:
            result = evaluate_analogies(vectors, cfg.eval_analogies)
            entry["analogies"] = result.to_dict()
            parts.append(f"analogy accuracy {result.accuracy:.4f}")
        if cfg.eval_pairs:
            pairs = evaluate_pairs(vectors, cfg.eval_pairs)
            entry["pairs"] = pairs.to_dict()
            parts.append(f"pairs Spearman {pairs.spearman:.4f}")
        state.evaluations.append(entry)
        state.messages.append(", ".join(parts))

    # The workers.
    def _guarded(self, index: int, done: threading.Event) -> None:
        state = self.state
        try:
            self._work(index)
        except threading.BrokenBarrierError:  # another worker failed or training was interrupted
            state.stop = True
        except BaseException as error:  # handed to the main thread, which re-raises it
            state.error = error
            state.stop = True
            self.meeting.abort()
        finally:
            done.set()

    def _wait(self, index: int, position: Position) -> bool:
        """Meet the other workers at ``position``; False when training must stop."""
        self.positions[index] = position
        self.meeting.wait()
        return not self.state.stop

    def _work(self, index: int) -> None:
        cfg = self.cfg
        start, stop = int(self.bounds[index]), int(self.bounds[index + 1])
        edges = np.linspace(start, stop, self.spans + 1).astype(np.int64)
        together = self.group.world > 1  # processes meet after every span; no meetings mid-span
        resume_from = self.positions[index]
        if self.resumed_at_epoch_end[index]:  # past the last span of the epoch before: straight to its end
            resume_from = Position(resume_from.epoch - 1, self.spans, 0)
        for epoch in range(resume_from.epoch, cfg.epochs):
            for number in range(self.spans):
                here = Position(epoch, number, 0)
                if (here.epoch, here.span) < (resume_from.epoch, resume_from.span):
                    continue
                first = resume_from.chunk if (here.epoch, here.span) == (resume_from.epoch, resume_from.span) else 0
                if not self._train_span(index, here, int(edges[number]), int(edges[number + 1]), first, together):
                    return
                if together and number + 1 < self.spans and not self._wait(index, Position(epoch, number + 1, 0)):
                    return
            self.at_epoch_end[index] = True
            while True:  # others may still be mid-epoch, meeting for a checkpoint
                if not self._wait(index, Position(epoch + 1, 0, 0)):
                    return
                if self.everyone_at_epoch_end:
                    break
            self.at_epoch_end[index] = False

    def _train_span(self, index: int, here: Position, span_start: int, span_stop: int, first: int, together: bool) -> bool:
        cfg, state, device = self.cfg, self.state, self.device
        stream = self.encoded.stream
        seed = ((cfg.seed * 1_000_003 + here.epoch) * 1009 + self.group.rank * self.workers + index) * 100_003 + here.span
        generator = torch.Generator(device=device).manual_seed(seed % (1 << 63))
        # Both arrays are made before either is copied: on CUDA a copy waits for the steps queued
        # before it, and the host's work here overlaps them only while none has been copied.
        rows = torch.from_numpy(stream.tokens[span_start:span_stop].astype(np.int64))
        sentences = torch.from_numpy(sentence_ids(stream.offsets, span_start, span_stop))
        span = make_span(
            rows.to(device), sentences.to(device), self.keep, window=cfg.window, chunk=self.step_centers,
            negative=cfg.negative, noise_block=cfg.noise_block, noise_words=cfg.noise_words, cumulative=self.cumulative,
            generator=generator,
        )
        raw = span_stop - span_start
        chunks = span.centers // self.step_centers
        for number in range(first, chunks):
            if state.stop:
                return False
            if self.pause and not together and not self._wait(index, Position(here.epoch, here.span, number)):
                return False
            lr = learning_rate(cfg, state.words(), state.total)
            loss = self._step(span, number, lr, with_loss=number % LOSS_EVERY == 0)
            if loss is not None:
                if not math.isfinite(loss):
                    raise self._diverged(f"the loss became {loss}")
                state.record_loss(loss / max(chunk_of(span, number, cfg.chunk, cfg.lanes).pairs, 1))
            state.done[index] += raw * (number + 1) // chunks - raw * number // chunks
        if not chunks:
            state.done[index] += raw
        return True

    def _diverged(self, what: str) -> DivergedError:
        writer = self.writer
        if writer is not None and writer is not threading.current_thread():
            writer.join()  # a checkpoint being written is there once it ends: the message must know
        if not has_checkpoint(self.out_dir):  # none written yet
            return DivergedError(f"training diverged ({what}); nothing was written; lower --lr (now {self.cfg.lr})")
        return DivergedError(
            f"training diverged ({what}); the last good checkpoint is kept in "
            f"{self.out_dir}/{CHECKPOINT}; lower --lr (now {self.cfg.lr}) and start over with --force"
        )

    def _step(self, span: Span, number: int, lr: float, *, with_loss: bool) -> float | None:
        """Step ``number`` of ``span``: on CUDA a replay of the step recorded at the first one, elsewhere the step itself."""
        cfg = self.cfg
        if self.device.type == "cuda" and cfg.cuda_graphs and self.captured is not False:
            if self.captured is None:
                try:
                    self.captured = CapturedStep(
                        self.model, span, size=cfg.chunk, lanes=cfg.lanes, capacity=self.span_steps,
                        hot_rows=self.hot, max_step=self.max_step,
                    )
                except RuntimeError as error:  # an old driver or torch: launch the kernels one by one
                    log.warning("could not record the training step as a CUDA graph (%s); going on without", error)
                    self.captured = False
            if self.captured and self.captured.take(span):
                loss = self.captured(number, lr, with_loss=with_loss)
                return None if loss is None else float(loss)
        chunk = chunk_of(span, number, cfg.chunk, cfg.lanes)
        return self.model.train_chunk(chunk, lr, hot_rows=self.hot, max_step=self.max_step, with_loss=with_loss)
