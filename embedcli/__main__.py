"""The `embedcli` command and `python -m embedcli`: the CLI, loaded so that even a Ctrl-C or SIGTERM while its libraries load ends in one line."""

import signal
import sys

_terminated = [False]


def _terminate(signum: int, frame: object) -> None:
    _terminated[0] = True
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)  # until the CLI takes the signals over
    try:
        from .cli import main as run

        run()
    except KeyboardInterrupt:  # only before the CLI's own handling begins
        print(f"embedcli: {'terminated' if _terminated[0] else 'interrupted'}; nothing was written", file=sys.stderr)
        sys.exit(143 if _terminated[0] else 130)


if __name__ == "__main__":
    main()
