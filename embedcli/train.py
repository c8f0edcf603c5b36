"""train(): corpus to model directory. The loop, the learning-rate schedule, progress.

On CPU, ``threads`` workers update the same two tables without locks (Hogwild,
as word2vec.c and gensim do); each takes its own stretch of the token stream
every epoch. Every PyTorch op runs single-threaded inside a worker, and the
ops release the GIL, so the workers run truly in parallel.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from . import __version__
from .config import TrainConfig
from .corpus import Corpus
from .errors import ConfigError, EmbedcliError
from .model import SkipGram
from .sampling import chunk_of, hot_rows, keep_probabilities, make_span, noise_table, sentence_ids
from .evaluate import evaluate_analogies, evaluate_pairs
from .store import check_output_dir, save_model
from .vectors import Vectors
from .vocab import Encoded, cache_folder, prepare

log = logging.getLogger("embedcli")
SPAN_TOKENS = 1 << 20  # raw tokens sub-sampled at once by a worker
LOSS_EVERY = 16  # chunks between two loss measurements


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


def worker_count(cfg: TrainConfig, device: torch.device) -> int:
    if device.type != "cpu":
        return 1
    return cfg.threads or len(os.sched_getaffinity(0))


def train(
    corpus_paths: Sequence[str | os.PathLike],
    cfg: TrainConfig,
    *,
    out_dir: str | os.PathLike = "embeddings",
    force: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train word vectors on the corpus and write a model directory to ``out_dir``."""
    out_dir = Path(out_dir)
    device = resolve_device(cfg.device)
    for flag, path in (("--eval-analogies", cfg.eval_analogies), ("--eval-pairs", cfg.eval_pairs)):
        if path and not Path(path).is_file():
            raise ConfigError(f"{flag} {path}: no such file")
    check_output_dir(out_dir, force=force)
    corpus = Corpus(corpus_paths)
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".stdin-", dir=out_dir) as spool:
        encoded = prepare(corpus.spool_stdin(Path(spool)), cfg, cache_folder(out_dir))
    if encoded.invalid_bytes:
        log.warning("%d bytes of the corpus were not valid UTF-8 and were replaced", encoded.invalid_bytes)

    generator = torch.Generator().manual_seed(cfg.seed)
    model = SkipGram(len(encoded.vocabulary), cfg.dim, generator=generator).to(device)
    loss, evaluations, history = _run_epochs(model, encoded, cfg, device, progress=progress)
    seconds = time.perf_counter() - started
    tokens = encoded.corpus_tokens
    words_per_second = tokens * cfg.epochs / seconds if seconds > 0 else 0.0

    metadata = {
        "embedcli_version": __version__,
        "config": cfg.to_dict(),
        "corpus": {
            "files": [str(path) for path in corpus.files],
            "tokens": tokens,
            "tokens_in_vocabulary": len(encoded.stream),
            "sentences": len(encoded.stream.offsets) - 1,
            "vocab_size": len(encoded.vocabulary),
            "invalid_bytes": encoded.invalid_bytes,
        },
        "training": {
            "device": str(device),
            "workers": worker_count(cfg, device),
            "seconds": round(seconds, 3),
            "words_per_second": round(words_per_second),
            "final_loss": loss,
            "evaluation": evaluations,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    }
    save_model(
        out_dir,
        vectors=model.input.weight,
        words_counts=encoded.vocabulary.counts,
        token_ids=encoded.vocabulary.token_ids,
        tokenizer_json=encoded.tokenizer.to_str(),
        words=encoded.vocabulary.words,
        metadata=metadata,
    )
    if len(history) >= 2 and importlib.util.find_spec("matplotlib") is not None:
        from .plot import plot_loss  # only where matplotlib is installed

        plot_loss(history, out_dir / "loss.png")
    return TrainResult(
        model_dir=out_dir,
        vocab_size=len(encoded.vocabulary),
        tokens=tokens,
        seconds=seconds,
        words_per_second=words_per_second,
        loss=loss,
        device=str(device),
        cached=encoded.cached,
    )


class _Progress:
    """Counters shared by the workers: each writes only its own slot."""

    def __init__(self, workers: int, total: int) -> None:
        self.done = [0] * workers
        self.total = total
        self.loss: float | None = None
        self.stop = False
        self.error: BaseException | None = None
        self.epoch_end: threading.Barrier | None = None  # set when every epoch ends with an evaluation
        self.evaluations: list[dict] = []
        self.messages: list[str] = []  # lines for the progress output, written by the main thread
        self.history: list[tuple[int, float]] = []  # (words done, smoothed loss), for loss.png

    def words(self) -> int:
        return sum(self.done)

    def record_loss(self, value: float) -> None:
        self.loss = value if self.loss is None else 0.9 * self.loss + 0.1 * value


def _run_epochs(
    model: SkipGram, encoded: Encoded, cfg: TrainConfig, device: torch.device, *, progress: bool
) -> tuple[float | None, list[dict], list[tuple[int, float]]]:
    workers = worker_count(cfg, device)
    tokens = len(encoded.stream)
    state = _Progress(workers, tokens * cfg.epochs)
    counts = torch.from_numpy(encoded.vocabulary.counts)
    keep = keep_probabilities(counts, cfg.sample).to(device)
    cumulative = noise_table(counts).to(device)
    hot = hot_rows(
        keep.cpu(),
        counts,
        cumulative.cpu(),
        chunk=cfg.chunk,
        window=cfg.window,
        negative=cfg.negative,
        max_pairs=cfg.max_row_step / cfg.lr,
    )
    bounds = np.linspace(0, tokens, workers + 1).astype(np.int64)
    if device.type == "cpu":
        torch.set_num_threads(1)
    if cfg.eval_analogies or cfg.eval_pairs:
        state.epoch_end = threading.Barrier(workers, action=lambda: _evaluate_epoch(model, encoded, cfg, state))
    threads = [
        threading.Thread(
            target=_guarded,
            args=(model, encoded, cfg, device, keep, cumulative, hot, int(bounds[index]), int(bounds[index + 1]), index, state),
            daemon=True,
        )
        for index in range(workers)
    ]
    bar = tqdm(
        total=state.total,
        unit="word",
        unit_scale=True,
        dynamic_ncols=True,
        disable=not progress or not sys.stderr.isatty(),
        desc="training",
    )
    try:
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            for thread in threads:
                thread.join(timeout=0.25)
            while state.messages:
                message = state.messages.pop(0)
                if progress:
                    bar.write(message, file=sys.stderr)
            done = state.words()
            if state.loss is not None and (not state.history or done - state.history[-1][0] >= state.total / 500):
                state.history.append((done, state.loss))
            bar.update(done - bar.n)
            lr = learning_rate(cfg, done, state.total)
            bar.set_postfix(loss=f"{state.loss:.3f}" if state.loss is not None else "-", lr=f"{lr:.3g}", refresh=False)
    except BaseException:
        state.stop = True
        if state.epoch_end is not None:
            state.epoch_end.abort()
        for thread in threads:
            thread.join()
        raise
    finally:
        bar.close()
    if state.error is not None:
        raise state.error
    for message in state.messages if progress else []:
        print(message, file=sys.stderr)
    if state.loss is not None:
        state.history.append((state.words(), state.loss))
    return state.loss, state.evaluations, state.history


def _evaluate_epoch(model: SkipGram, encoded: Encoded, cfg: TrainConfig, state: _Progress) -> None:
    """Score the vectors as they are at the end of an epoch (all workers wait meanwhile)."""
    # The workers wait at the barrier meanwhile, so the table can be read in place, without a copy.
    vectors = Vectors(encoded.vocabulary.words, model.input.weight.detach().cpu())
    epoch = len(state.evaluations) + 1
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


def _guarded(*args) -> None:
    state: _Progress = args[-1]
    try:
        _work(*args)
    except threading.BrokenBarrierError:  # another worker failed or training was interrupted
        state.stop = True
    except BaseException as error:  # handed to the main thread, which re-raises it
        state.error = error
        state.stop = True
        if state.epoch_end is not None:
            state.epoch_end.abort()


def _work(
    model: SkipGram,
    encoded: Encoded,
    cfg: TrainConfig,
    device: torch.device,
    keep: torch.Tensor,
    cumulative: torch.Tensor,
    hot: int,
    start: int,
    stop: int,
    index: int,
    state: _Progress,
) -> None:
    stream = encoded.stream
    for epoch in range(cfg.epochs):
        generator = torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + epoch * 1009 + index)
        for span_start in range(start, stop, SPAN_TOKENS):
            span_stop = min(span_start + SPAN_TOKENS, stop)
            rows = torch.from_numpy(stream.tokens[span_start:span_stop].astype(np.int64)).to(device)
            sentences = torch.from_numpy(sentence_ids(stream.offsets, span_start, span_stop)).to(device)
            span = make_span(
                rows,
                sentences,
                keep,
                window=cfg.window,
                chunk=cfg.chunk,
                negative=cfg.negative,
                noise_block=cfg.noise_block,
                noise_words=cfg.noise_words,
                cumulative=cumulative,
                generator=generator,
            )
            raw = span_stop - span_start
            chunks = span.centers // cfg.chunk
            for number in range(chunks):
                if state.stop:
                    return
                lr = learning_rate(cfg, state.words(), state.total)
                chunk = chunk_of(span, number * cfg.chunk, cfg.chunk)
                loss = model.train_chunk(
                    chunk, lr, hot_rows=hot, max_step=cfg.max_row_step, with_loss=number % LOSS_EVERY == 0
                )
                if loss is not None:
                    if not math.isfinite(loss):
                        raise EmbedcliError(
                            f"training diverged (the loss became {loss}); lower --lr (now {cfg.lr})"
                        )
                    state.record_loss(loss / max(chunk.pairs, 1))
                state.done[index] += raw * (number + 1) // chunks - raw * number // chunks
            if not chunks:
                state.done[index] += raw
        if state.epoch_end is not None:
            state.epoch_end.wait()
