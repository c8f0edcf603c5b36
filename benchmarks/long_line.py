"""Peak memory of `embedcli train` on a file with no newline at all (like text8).

    python benchmarks/long_line.py [--megabytes 100]

Builds the file from ../shared/corpora/gcide.txt (repeated, newlines turned into spaces) when it is
there, else from the demo corpus, trains one epoch on it, and prints the file size and the child's
peak RSS: streaming means the RSS stays far below what the whole line as Python strings would take.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT.parent / "shared" / "corpora" / "gcide.txt", ROOT / "data" / "demo.txt"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=100)
    args = parser.parse_args()
    source = next(path for path in SOURCES if path.exists())
    text = source.read_bytes().replace(b"\n", b" ")
    with tempfile.TemporaryDirectory() as scratch:
        corpus = Path(scratch) / "one-line.txt"
        with open(corpus, "wb") as out:
            written = 0
            while written < args.megabytes << 20:
                out.write(text)
                written += len(text)
        size = corpus.stat().st_size
        assert b"\n" not in corpus.read_bytes()[-1000:]
        command = [sys.executable, "-m", "embedcli", "train", str(corpus), "--tokenizer", "whitespace",
                   "--epochs", "1", "--out", str(Path(scratch) / "model"), "--quiet"]
        started = time.perf_counter()
        process = subprocess.Popen(command, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(process.stderr.read().decode())
        print(f"file: {size / 2**20:,.0f} MiB on one line (from {source.name}); "
              f"embedcli train --epochs 1: {seconds:.1f}s, peak RSS {usage.ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
