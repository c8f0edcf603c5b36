"""Query speed on a large model (default 1M x 300): load, one neighbours query, and a whole `embedcli lookup`.

    python benchmarks/query_speed.py [--words 1000000] [--dim 300]

Builds the model by importing a word2vec binary file of random vectors (as interop_memory.py does),
then measures in one process the load time and the neighbours-query time (five queries, after the
first), and the wall time of complete `embedcli lookup WORD --neighbors 10` processes (best and
median of five; the files are in the page cache, as on any second look-up).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synthetic import write_random_word2vec  # benchmarks/synthetic.py, beside this script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--words", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=300)
    args = parser.parse_args()
    embedcli = [sys.executable, "-m", "embedcli"]
    with tempfile.TemporaryDirectory(dir=".") as scratch:
        scratch = Path(scratch)
        source = scratch / "source.bin"
        write_random_word2vec(source, args.words, args.dim)
        model = scratch / "model"
        subprocess.run([*embedcli, "import", str(source), "--out", str(model)], check=True, capture_output=True)
        source.unlink()

        import embedcli as library

        started = time.perf_counter()
        vectors = library.load(str(model))
        load_seconds = time.perf_counter() - started
        timings = []
        for word in (f"w{number % args.words}" for number in (1, 999, 12345, 500000, 77)):
            started = time.perf_counter()
            vectors.most_similar(word, topn=10)
            timings.append(time.perf_counter() - started)
        walls = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run([*embedcli, "lookup", "w42", "--model", str(model), "--neighbors", "10"], check=True, capture_output=True)
            walls.append(time.perf_counter() - started)
    print(f"model: {args.words:,} x {args.dim}")
    print(f"load (embedcli.load, checksums included): {load_seconds:.2f}s")
    print(f"neighbours query: first {timings[0] * 1000:.0f} ms, then median {statistics.median(timings[1:]) * 1000:.0f} ms")
    print(f"`embedcli lookup w42 --neighbors 10` process: best {min(walls):.2f}s, median {statistics.median(walls):.2f}s")


if __name__ == "__main__":
    main()
