"""TrainConfig: the one place where every training default lives.

The CLI's options default to ``None`` and show these values in ``--help``; a
TOML file given with ``--config`` holds overrides only and is checked key by key.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib


# --lanes 0 on CUDA: 8 lanes of 1024 centers per step. On gcide.txt at the defaults, on one H100
# (benchmarks/RESULTS.md, "GPU"): 4 lanes 0.614 / 0.382 / 0.161 (WS353 / SimLex / analogy) at 12.8M
# words/s, 8 lanes 0.596 / 0.371 / 0.169 at 17.6M, 16 lanes 0.573 / 0.359 / 0.159 and no faster;
# gensim 0.543 / 0.327 / 0.157.
GPU_LANES = 8


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (skip-gram with negative sampling)."""

    tokenizer: str = _setting(
        "default",
        "'default': NFKC + lowercase; invisible format characters (soft hyphen, zero-width spaces and joiners, "
        "direction marks, BOM) removed; words split from punctuation (don't becomes don ' t, e-mail becomes "
        "e - mail, 3.14 becomes 3 . 14, and URLs break into pieces); scripts written without spaces (Chinese, "
        "Japanese, Thai) are not segmented, so a run of them between spaces or punctuation is one word: segment "
        "them first (jieba, MeCab) and use 'whitespace'; Greek capitals lowercase letter by letter, so an all-caps "
        "word ending in a capital sigma ends in the mid-word sigma, not the final one. "
        "'whitespace': split on whitespace only, nothing normalised. Or the path of a tokenizer.json",
    )
    min_count: int = _setting(5, "drop words seen fewer times than this (at least 1)")
    max_vocab: int = _setting(
        0,
        "keep at most this many most frequent words (0: no limit); counting holds at most 10x as many "
        "distinct words (2M to 10M; 10M with 0), forgetting the rarest",
    )
    dim: int = _setting(100, "size of each word vector (at least 1)")
    window: int = _setting(5, "largest distance between a word and its context (1 to 100)")
    negative: int = _setting(5, "negative samples per (word, context) pair (1 to 100)")
    sample: float = _setting(1e-3, "sub-sampling threshold for frequent words (0: off)")
    lr: float = _setting(0.05, "starting learning rate, above 0, decayed linearly (fastText's; gensim and word2vec use 0.025)")
    min_lr: float = _setting(0.0001, "floor of the decayed learning rate, as a fraction of --lr (0 to 1)")
    epochs: int = _setting(5, "passes over the corpus (at least 1)")
    seed: int = _setting(1, "random seed for initialisation and sampling (0 to 4294967295)")
    device: str = _setting("auto", "'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'")
    threads: int = _setting(0, "CPU worker threads (0: one per core, at most 4; up to 256)")
    chunk: int = _setting(1024, "consecutive center positions of one lane trained together in one step (16 to 1048576)")
    lanes: int = _setting(
        0, f"far-apart stretches of the stream trained side by side in one step (0: 1 on CPU, {GPU_LANES} on CUDA; up to 256)"
    )
    cuda_graphs: bool = _setting(
        True, "on CUDA, replay each training step as one recorded CUDA graph (off: launch its kernels one by one)"
    )
    noise_block: int = _setting(64, "neighbouring centers that share one draw of noise words (at least 1; must divide --chunk)")
    noise_words: int = _setting(64, "noise words drawn for each block of --noise-block centers (1 to 4096)")
    max_row_step: float = _setting(
        0.8, "most learning rate x pair updates one row takes in a step, above 0 (guards small vocabularies); "
        "more than 2 workers share twice this"
    )
    eval_analogies: str = _setting("", "analogy file to evaluate on after every epoch (questions-words.txt format)")
    eval_pairs: str = _setting("", "word-pair file to evaluate on after every epoch (word word score)")
    max_sentence: int = _setting(10000, "split longer sentences (lines) into pieces of this many words (at least 2)")
    max_tokens: int = _setting(0, "stop reading the corpus after this many tokens (0: read everything)")
    checkpoint_every: float = _setting(
        5.0, "minutes between two checkpoints (one is also written at every epoch end; 0: only there)"
    )
    timeout: float = _setting(300.0, "seconds (above 0) a torchrun process waits for the others at a meeting before it stops")
    deterministic: bool = _setting(
        False, "bit-identical results for one seed: one worker, no lock-free parallel updates (slower)"
    )

    def __post_init__(self) -> None:
        _check_types(self)
        _check_ranges(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_overrides(self, **overrides: Any) -> TrainConfig:
        """A copy with the given settings changed; ``None`` values are ignored."""
        values = {key: value for key, value in overrides.items() if value is not None}
        _check_keys_and_types(values, source="option")
        return dataclasses.replace(self, **values)




def help_for(name: str) -> str:
    """The help text of a setting with its default, as ``--help`` shows it."""
    default = getattr(DEFAULTS, name)
    return f"{FIELDS[name].metadata['help']} [default: {default if default != '' else 'none'}]"


def load_config(path: str | Path) -> TrainConfig:
    """Read a TOML file of overrides into a TrainConfig, refusing unknown keys and wrong types."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # TOML forbids a BOM; editors on Windows write one
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder; give a .toml file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    _check_keys_and_types(values, source=f"config file {path}:")
    return DEFAULTS.with_overrides(**values)


def _check_keys_and_types(values: dict[str, Any], *, source: str) -> None:
    for key, value in values.items():
        if key not in FIELDS:
            raise ConfigError(f"{source} {_unknown_setting(key)}")
        try:
            _conformed(key, value)
        except TypeError as error:
            raise ConfigError(f"{source} {error}") from None


def _unknown_setting(key: object) -> str:
    return f"unknown setting {key!r}; known settings: {', '.join(FIELDS)}"


def as_config(settings: TrainConfig | Mapping[str, Any] | None) -> TrainConfig:
    """A TrainConfig from one, from a dict of settings (checked like a config file's), or the defaults for None."""
    if settings is None:
        return DEFAULTS
    if isinstance(settings, TrainConfig):
        return settings
    if isinstance(settings, Mapping):
        values = dict(settings)
        _check_keys_and_types(values, source="settings:")
        return dataclasses.replace(DEFAULTS, **values)
    raise ConfigError(
        f"settings must be a TrainConfig or a dict of settings, got {type(settings).__name__}; "
        "read a config file with embedcli.config.load_config(PATH)"
    )


def _checked_init(generated: Callable[..., None]) -> Callable[..., None]:
    """The dataclass's __init__, refusing unknown or doubled settings with ConfigError, as a config file does."""

    @functools.wraps(generated)
    def __init__(self: TrainConfig, *args: Any, **kwargs: Any) -> None:
        for key in kwargs:
            if key not in FIELDS:
                raise ConfigError(_unknown_setting(key))
        if len(args) > len(FIELDS):
            raise ConfigError(f"TrainConfig takes at most {len(FIELDS)} settings, got {len(args)}; name them")
        for name in list(FIELDS)[: len(args)]:
            if name in kwargs:
                raise ConfigError(f"setting '{name}' is given twice, by position and by name")
        generated(self, *args, **kwargs)

    return __init__


def _check_types(cfg: TrainConfig) -> None:
    """Settings built in Python get the checks a config file gets."""
    for name in FIELDS:
        try:
            object.__setattr__(cfg, name, _conformed(name, getattr(cfg, name)))
        except TypeError as error:
            raise ConfigError(f"setting {error}") from None


_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _conformed(name: str, value: Any) -> Any:
    """``value`` as setting ``name`` holds it: a path stands for a string, any whole number (numpy's
    too) for an int, any real number for a float; TypeError for anything else."""
    expected = _TYPES[FIELDS[name].type]
    if isinstance(value, bool) == (expected is bool):
        if expected is str and isinstance(value, os.PathLike):
            return os.fspath(value)
        if expected in (int, float) and isinstance(value, numbers.Integral if expected is int else numbers.Real):
            return expected(value)
        if isinstance(value, expected):
            return value
    raise TypeError(f"'{name}' must be {expected.__name__}, got {type(value).__name__} {value!r}")


def _check_ranges(cfg: TrainConfig) -> None:
    def need(condition: bool, message: str) -> None:
        if not condition:
            raise ConfigError(message)

    for name, spec in FIELDS.items():  # beyond what any count here can be; int64 arithmetic would overflow
        value = getattr(cfg, name)
        if _TYPES[spec.type] is int and abs(value) >= 1 << 62:
            raise ConfigError(f"--{name.replace('_', '-')} is far too large: {value}")
    need(cfg.dim >= 1, f"--dim must be at least 1, got {cfg.dim}")
    need(1 <= cfg.window <= 100, f"--window must be between 1 and 100, got {cfg.window}")
    need(1 <= cfg.negative <= 100, f"--negative must be between 1 and 100, got {cfg.negative}")
    need(cfg.epochs >= 1, f"--epochs must be at least 1, got {cfg.epochs}")
    need(cfg.min_count >= 1, f"--min-count must be at least 1, got {cfg.min_count}")
    need(cfg.max_vocab >= 0, f"--max-vocab must be 0 (no limit) or more, got {cfg.max_vocab}")
    need(cfg.sample >= 0, f"--sample must be 0 (off) or more, got {cfg.sample}")
    need(cfg.lr > 0 and math.isfinite(cfg.lr), f"--lr must be a number above 0, got {cfg.lr}")
    need(0 <= cfg.min_lr <= 1, f"--min-lr must be between 0 and 1, got {cfg.min_lr}")
    need(0 <= cfg.threads <= 256, f"--threads must be 0 (one per core, at most 4) to 256, got {cfg.threads}")
    need(16 <= cfg.chunk <= 1 << 20, f"--chunk must be between 16 and 1048576, got {cfg.chunk}")
    need(0 <= cfg.lanes <= 256, f"--lanes must be 0 (1 on CPU, {GPU_LANES} on CUDA) to 256, got {cfg.lanes}")
    need(1 <= cfg.noise_words <= 4096, f"--noise-words must be between 1 and 4096, got {cfg.noise_words}")
    need(cfg.noise_block >= 1, f"--noise-block must be at least 1, got {cfg.noise_block}")
    need(
        cfg.chunk % cfg.noise_block == 0,
        f"--chunk ({cfg.chunk}) must be a multiple of --noise-block ({cfg.noise_block})",
    )
    need(cfg.max_row_step > 0, f"--max-row-step must be above 0, got {cfg.max_row_step}")
    need(cfg.checkpoint_every >= 0, f"--checkpoint-every must be 0 or more minutes, got {cfg.checkpoint_every}")
    need(cfg.max_tokens >= 0, f"--max-tokens must be 0 (read everything) or more, got {cfg.max_tokens}")
    need(cfg.timeout > 0, f"--timeout must be above 0 seconds, got {cfg.timeout}")
    need(cfg.max_sentence >= 2, f"--max-sentence must be at least 2, got {cfg.max_sentence}")
    # torch's CPU generator keeps 32 bits of a seed: seeds 2**32 apart would give the same run (numpy and gensim refuse them too)
    need(0 <= cfg.seed < 1 << 32, f"--seed must be between 0 and 4294967295, got {cfg.seed}")
    need(
        bool(_DEVICE.match(cfg.device)),
        f"unknown device '{cfg.device}'; use auto, cpu, cuda or cuda:N",
    )
    need(bool(cfg.tokenizer), "--tokenizer must be 'default', 'whitespace' or a tokenizer.json path")


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
TrainConfig.__init__ = _checked_init(TrainConfig.__init__)  # type: ignore[method-assign]
DEFAULTS = TrainConfig()
