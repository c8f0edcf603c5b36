"""Peak memory of `embedcli import` and `embedcli export` on a large model (default 1M x 300).

    python benchmarks/interop_memory.py [--words 1000000] [--dim 300] [--formats bin npy safetensors txt]

Writes a word2vec binary file of random vectors, imports it, exports it in each format, and prints
each command's wall time and peak RSS (wait4) next to the matrix size. The goal: every command
stays under twice the matrix size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synthetic import write_random_word2vec  # benchmarks/synthetic.py, beside this script


def run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of a child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(process.stderr.read().decode())
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--words", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--formats", nargs="+", default=["bin", "npy", "safetensors"])
    parser.add_argument("--import-back", action="store_true", help="also import each txt/bin/glove export again")
    args = parser.parse_args()
    matrix_mib = args.words * args.dim * 4 / 2**20
    embedcli = [sys.executable, "-m", "embedcli"]
    with tempfile.TemporaryDirectory(dir=".") as scratch:
        scratch = Path(scratch)
        source = scratch / "source.bin"
        write_random_word2vec(source, args.words, args.dim)
        print(f"model: {args.words:,} x {args.dim} float32 = {matrix_mib:,.0f} MiB; limit (2x) {2 * matrix_mib:,.0f} MiB")
        seconds, rss = run([*embedcli, "import", str(source), "--out", str(scratch / "model")])
        print(f"{'import bin':<18} {seconds:7.1f}s  peak RSS {rss:7,.0f} MiB  ({rss / matrix_mib:.2f}x matrix)")
        source.unlink()
        for fmt in args.formats:
            out = scratch / f"export.{fmt}"
            seconds, rss = run([*embedcli, "export", "--format", fmt, "--model", str(scratch / "model"), "--out", str(out)])
            print(f"{'export ' + fmt:<18} {seconds:7.1f}s  peak RSS {rss:7,.0f} MiB  ({rss / matrix_mib:.2f}x matrix)")
            if args.import_back and fmt in ("txt", "bin", "glove"):
                seconds, rss = run([*embedcli, "import", str(out), "--out", str(scratch / f"back-{fmt}")])
                print(f"{'import ' + fmt:<18} {seconds:7.1f}s  peak RSS {rss:7,.0f} MiB  ({rss / matrix_mib:.2f}x matrix)")
            out.unlink()


if __name__ == "__main__":
    main()
