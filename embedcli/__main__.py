"""The `embedcli` command and `python -m embedcli`: the CLI, loaded so that even a Ctrl-C or SIGTERM while its libraries load ends in one line."""

import sys

from .cuda_start import start_early
from .errors import exit_stopped, raise_on_sigterm


def main() -> None:
    raise_on_sigterm()  # the CLI takes it over once loaded
    start_early(sys.argv)  # a training's CUDA context, made while torch loads
    try:
        from .cli import main as run

        run()
    except KeyboardInterrupt:  # only before the CLI's own handling begins
        exit_stopped()


if __name__ == "__main__":
    main()
