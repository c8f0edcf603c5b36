"""Training across processes with torch.distributed, as started by torchrun (gloo on CPU, NCCL on GPU).

Every process (rank) trains its own shards of the token stream on its own copy
of the two tables. The ranks meet after every span (at most 256k tokens per
worker; on gcide.txt, merging every 1M tokens cost 0.03 of analogy accuracy)
and merge: each rank's change since the last meeting is summed over the ranks
with one dense all-reduce per table, and added to the tables as they were
then. Summing changes, not averaging tables, keeps each rank's steps at
full size, as lock-free threads in one process do (averaging, as Spark MLlib
does, divides every rare word's step by the number of ranks). But a row that
more than two ranks changed gets two ranks' worth of their sum (twice their
average), never more: a frequent row moves the same way in every rank, and the
whole sum of three or four such moves overshot until the model collapsed.
A rare word's vector, changed where it occurs, keeps its whole step. NCCL has no
sparse all-reduce, so the whole tables travel: ``2 x vocab x dim x 4`` bytes per
meeting (and a count per row).

Outside torchrun, :func:`join_group` returns :class:`Alone`, whose methods do nothing.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any, Callable

import torch

from .config import TrainConfig
from .errors import ConfigError, EmbedcliError

# A row changed by more ranks than this between two meetings gets the sum of their changes scaled
# to this many ranks' worth: each rank moved a frequent row from the same start toward the same
# place, and 4 such moves added up overshot (the demo corpus fell to 8% of its analogies with 4
# processes, and diverged when they met more often); 2 is what 2 processes, which train well, add.
MERGED_RANKS = 2
# How long a rank waits for the others: while rank 0 tokenizes a large corpus, and at a meeting.
ENCODE_TIMEOUT = timedelta(hours=6)


class GroupError(EmbedcliError):
    """Another training process stopped or cannot be reached."""


class Alone:
    """One process: nothing to merge, agree on or wait for."""

    rank = 0
    world = 1
    local_rank = 0
    local_world = 1
    device: torch.device | None = None

    def encode(self, encode: Callable[[], Any]) -> Any:
        return encode()

    def check_same(self, value: str, what: str) -> None:
        pass

    def agree(self, flags: list[bool]) -> list[bool]:
        return flags

    def begin(self, model: torch.nn.Module) -> None:
        pass

    def merge(self, model: torch.nn.Module) -> None:
        pass

    def close(self) -> None:
        pass


class Group(Alone):
    """This process's place among the ranks torchrun started."""

    def __init__(self, cfg: TrainConfig) -> None:
        import torch.distributed as dist

        self.dist = dist
        self.rank = int(os.environ["RANK"])
        self.world = int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        self.local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        cuda = cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())
        if cuda:
            if not torch.cuda.is_available():
                raise ConfigError(f"--device {cfg.device}: CUDA is not available here; use --device cpu or auto")
            self.device = torch.device("cuda", self.local_rank % torch.cuda.device_count())
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")
        self.timeout = timedelta(seconds=cfg.timeout)
        try:
            dist.init_process_group("nccl" if cuda else "gloo", timeout=ENCODE_TIMEOUT)
            # Meetings time out sooner than the wait for tokenizing: a dead rank stops the others.
            self.meetings = dist.new_group(timeout=self.timeout)
        except Exception as error:  # the rendezvous failed: wrong address, or a rank never came
            raise GroupError(f"could not join the other training processes: {_first_line(error)}") from None
        self.merged: list[torch.Tensor] | None = None
        self.merges = 0

    def encode(self, encode: Callable[[], Any]) -> Any:
        """Rank 0 tokenizes first; then the first rank of each machine (a cache hit where the
        folder is shared); then everyone else, from that machine's cache."""
        result = None
        for turn in (self.rank == 0, self.local_rank == 0 and self.rank != 0, self.local_rank != 0):
            if turn:
                result = encode()
            self._barrier(None, "while the corpus was being tokenized")
        return result

    def check_same(self, value: str, what: str) -> None:
        number = torch.tensor([int(value[:15], 16), -int(value[:15], 16)], dtype=torch.int64, device=self._host())
        self._call(lambda: self.dist.all_reduce(number, op=self.dist.ReduceOp.MAX, group=self.meetings), "at the start")
        if number[0] != -number[1]:
            raise GroupError(f"the training processes see different corpora (their {what} differs); give every process the same corpus files")

    def agree(self, flags: list[bool]) -> list[bool]:
        """Any rank's flag raises it on every rank."""
        values = torch.tensor([int(flag) for flag in flags], dtype=torch.int64, device=self._host())
        self._call(lambda: self.dist.all_reduce(values, op=self.dist.ReduceOp.MAX, group=self.meetings), "at a meeting")
        return [bool(value) for value in values.tolist()]

    def begin(self, model: torch.nn.Module) -> None:
        """Start every rank from rank 0's tables (the same seed gives the same ones; this makes sure)."""
        tables = [model.input.weight.data, model.output.weight.data]
        for table in tables:
            self._call(lambda table=table: self.dist.broadcast(table, 0, group=self.meetings), "at the start")
        self.merged = [table.clone() for table in tables]

    def merge(self, model: torch.nn.Module) -> None:
        """Tables = tables at the last meeting + the sum over ranks of each rank's change since,
        each row's sum scaled to at most MERGED_RANKS ranks' worth (see the module's text)."""
        tables = [model.input.weight.data, model.output.weight.data]
        assert self.merged is not None, "begin() comes first"
        for table, merged in zip(tables, self.merged):
            table.sub_(merged)
            changed = (table != 0).any(1).to(table.dtype)  # this rank's rows
            for summed in (table, changed):
                self._call(lambda summed=summed: self.dist.all_reduce(summed, group=self.meetings), "while merging the tables")
            table.mul_((MERGED_RANKS / changed).clamp_(max=1.0).unsqueeze(1)).add_(merged)
            merged.copy_(table)
        self.merges += 1

    def traffic(self) -> dict[str, int]:
        """Merges so far and the bytes each all-reduces (both tables; a ring all-reduce sends
        about twice that per rank)."""
        size = 0 if self.merged is None else sum(table.numel() * table.element_size() for table in self.merged)
        return {"merges": self.merges, "bytes_per_merge": size, "processes": self.world}

    def close(self) -> None:
        try:
            self.dist.destroy_process_group()
        except Exception:
            pass

    def _host(self) -> torch.device:
        return self.device if self.device is not None and self.device.type == "cuda" else torch.device("cpu")

    def _barrier(self, group: Any, when: str) -> None:
        self._call(lambda: self.dist.barrier(group=group), when)

    def _call(self, collective: Callable[[], Any], when: str) -> None:
        try:
            collective()
        except Exception as error:
            raise GroupError(
                f"process {self.rank} of {self.world} lost the others {when} (one stopped, or the "
                f"network failed; --timeout is {self.timeout.total_seconds():.0f}s): {_first_line(error)}"
            ) from None


def launched_by_torchrun() -> bool:
    """Whether torchrun (or a launcher like it) started this process as one of several."""
    return "RANK" in os.environ and os.environ.get("WORLD_SIZE", "1").strip() not in ("", "0", "1")


def join_group(cfg: TrainConfig) -> Alone:
    """The process group torchrun set up (from its environment variables), or :class:`Alone`."""
    return Group(cfg) if launched_by_torchrun() else Alone()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
