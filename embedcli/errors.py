"""Every failure a user can see: one exception family, each with an exit code.

The CLI prints ``str(error)`` as one line and exits with ``error.exit_code``;
library users catch :class:`EmbedcliError`. A Ctrl-C or SIGTERM before training wrote
anything is one line too (:func:`exit_stopped`).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import NoReturn

_terminated = [False]  # the stop was SIGTERM, not Ctrl-C


class EmbedcliError(Exception):
    """Base of every error embedcli reports to a user."""

    exit_code = 1


class UsageError(EmbedcliError):
    """A bad option, config value or input file: the user must change the command."""

    exit_code = 2


class CorpusError(UsageError):
    """The corpus cannot be read or holds nothing to train on."""


class ConfigError(UsageError):
    """A training setting or config file is invalid."""


class UnknownWordError(UsageError):
    """A query word is not in the vocabulary."""


class ModelError(EmbedcliError):
    """A model directory is missing, foreign, truncated or corrupted."""

    exit_code = 2


def raise_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C (a KeyboardInterrupt), so that temporary files are removed on the way out."""
    signal.signal(signal.SIGTERM, _terminate)


@contextlib.contextmanager
def signals_held(*, second_stops: str = "") -> Iterator[list[int]]:
    """Hold off SIGINT and SIGTERM while the block runs (on the main thread; elsewhere Python delivers none).

    For work that a stop must not cut in half, such as renaming a model's files into place: a
    signal that arrives meanwhile is recorded in the yielded list instead of raising, and the
    block completes. With ``second_stops``, the first signal prints that line and a second one
    stops the block as usual (a KeyboardInterrupt).
    """
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    received: list[int] = []

    def hold(signum: int, frame: object) -> None:
        received.append(signum)
        if second_stops and len(received) == 1:
            print(second_stops, file=sys.stderr, flush=True)
        elif second_stops:
            _terminated[0] = signum == signal.SIGTERM
            raise KeyboardInterrupt

    before = {number: signal.signal(number, hold) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def _terminate(signum: int, frame: object) -> None:
    _terminated[0] = True
    raise KeyboardInterrupt


def exit_stopped() -> NoReturn:
    """The one line, and exit code (130, or 143 for SIGTERM), of a stop before anything was written."""
    terminated = _terminated[0]
    print(f"embedcli: {'terminated' if terminated else 'interrupted'}; nothing was written", file=sys.stderr)
    sys.exit(143 if terminated else 130)
