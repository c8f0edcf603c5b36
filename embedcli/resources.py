"""What a training run needs from the machine: memory for the tables, disk for the token cache.

Checked before anything large is allocated or written, so that a run that cannot fit stops at
once with a line saying what to change, not after an hour with an out-of-memory kill.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from .corpus import Corpus
from .errors import ConfigError, EmbedcliError


def check_memory(vocab_size: int, dim: int, device: torch.device, *, copies: int, working: int = 0) -> None:
    """Refuse before allocating when ``copies`` vocab x dim float32 tables and ``working`` bytes of step scratch cannot fit."""
    tables = vocab_size * dim * 4 * copies
    needed = tables + working
    available = available_memory(device)
    if available is not None and needed > available:
        lower = "--dim, --chunk, --window or --threads" if working > tables else "--max-vocab (or raise --min-count) or --dim"
        raise ConfigError(
            f"training {vocab_size:,} words x --dim {dim} needs about {_size(needed)} of "
            f"{'GPU ' if device.type == 'cuda' else ''}memory ({_size(tables)} for the tables, "
            f"{_size(working)} for the training steps), but only {_size(available)} is free; lower {lower}"
        )


def available_memory(device: torch.device | None = None) -> int | None:
    """Bytes free for new tables: GPU memory, or (no device, or the CPU) MemAvailable within any cgroup limit."""
    if device is not None and device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    limits = []
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    for path, used_path in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(path).read_text().strip()
            if limit.isdigit() and int(limit) < 1 << 60:
                limits.append(int(limit) - int(Path(used_path).read_text().strip()))
                break
        except (OSError, ValueError):
            continue
    return min(limits) if limits else None


def check_disk(corpus: Corpus, cache_root: Path) -> None:
    """Refuse to start encoding when the token cache clearly cannot fit on the disk of ``cache_root`` (or its folder)."""
    size = 0
    for path in corpus.files:
        try:
            info = path.stat()
        except OSError:
            continue
        size += info.st_size * (4 if path.suffix in (".gz", ".bz2", ".xz") else 1)
    needed = size * 3 // 2  # raw ids, then rows: about 8 bytes per token of ~5 characters
    free = shutil.disk_usage(cache_root if cache_root.exists() else cache_root.parent).free
    if needed > free:
        raise EmbedcliError(
            f"the token cache needs about {_size(needed)} in {cache_root}, but the disk has "
            f"{_size(free)} free; free some space or choose another --out"
        )


def _size(count: int) -> str:
    if count >= 2**30:
        return f"{count / 2**30:.1f} GiB"
    return f"{count / 2**20:.0f} MiB" if count >= 2**20 else f"{count / 2**10:.0f} KiB"


def return_large_buffers() -> None:
    """Have glibc give buffers of 4 MiB and more straight back to the system when freed.

    Each span allocates and frees tens of MB of buffers. glibc's default threshold for
    serving an allocation by mmap rises as such buffers are freed, after which they come
    from per-thread heaps that fragment; peak memory then crept up with corpus size.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 4 << 20)  # M_MMAP_THRESHOLD; setting it also stops its adjustment
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass
