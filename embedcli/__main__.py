"""The `embedcli` command and `python -m embedcli`: the CLI, loaded so that even a Ctrl-C while its libraries load ends in one line."""

import sys


def main() -> None:
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        print("embedcli: interrupted; nothing was written", file=sys.stderr)
        sys.exit(130)
    run()


if __name__ == "__main__":
    main()
