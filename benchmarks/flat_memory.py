"""Peak memory of `embedcli train` as the corpus grows: flat apart from the vocabulary (issue 6).

    python benchmarks/flat_memory.py [--distinct 20000000] [--only x1 x10 line distinct]
                                     [--source-tree DIR]

Trains one epoch (`--tokenizer whitespace`) on ../shared/corpora/gcide.txt as it is (x1), on it
repeated 10 times with `--min-count 50` (x10: 10x the tokens, the vocabulary of x1), on 100 MB of it with no newline at all,
and on a synthetic corpus of ``--distinct`` words seen once each among 10M tokens of a 200k-word
Zipf vocabulary, with `--max-vocab 100000`. Each `embedcli train` runs as a child process; its
/proc/PID/status is read every 20 ms for RssAnon (the process's own memory: the memory-mapped
token file and the page cache are not in it) and RssFile, and wait4 gives ru_maxrss (all of RSS).
`--source-tree DIR` runs the embedcli of another checkout (e.g. the last commit, for "before").
Skips, with one line, when ../shared/corpora is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GCIDE = ROOT.parent / "shared" / "corpora" / "gcide.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--distinct", type=int, default=20_000_000, help="words seen once in the synthetic corpus")
    parser.add_argument("--only", nargs="+", default=["x1", "x10", "line", "distinct"])
    parser.add_argument("--source-tree", type=Path, help="run the embedcli package of this checkout instead")
    args = parser.parse_args()
    if not GCIDE.exists():
        print(f"skipped: {GCIDE} is not there")
        return
    rows = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        for name in args.only:
            corpus, extra = build(name, scratch, distinct=args.distinct)
            rows.append((name, corpus, extra, train(corpus, extra, scratch / "model", args.source_tree)))
            if corpus != GCIDE:
                corpus.unlink()
    print("| corpus | MiB | tokens | vocabulary | seconds | peak RssAnon MiB | peak RssFile MiB | ru_maxrss MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, corpus, extra, result in rows:
        label = f"{name} {' '.join(extra)}".strip()
        print(f"| {label} | {result['mib']:,.0f} | {result['tokens']:,} | {result['vocab']:,} | {result['seconds']:.1f} | "
              f"{result['anon']:,.0f} | {result['file']:,.0f} | {result['maxrss']:,.0f} |")


def build(name: str, scratch: Path, *, distinct: int) -> tuple[Path, list[str]]:
    """The corpus file of one row and the extra train options it runs with."""
    if name == "x1":
        return GCIDE, []
    if name == "x10":
        path = scratch / "gcide-x10.txt"
        with open(path, "wb") as out:
            for _ in range(10):
                with open(GCIDE, "rb") as source:
                    shutil.copyfileobj(source, out, 1 << 20)
        return path, ["--min-count", "50"]  # 10 x 5: the vocabulary of x1 exactly
    if name == "line":
        path = scratch / "one-line.txt"
        text = GCIDE.read_bytes().replace(b"\n", b" ")
        with open(path, "wb") as out:
            written = 0
            while written < 100 << 20:
                out.write(text)
                written += len(text)
        return path, []
    if name == "distinct":
        path = scratch / "distinct.txt"
        write_distinct(path, distinct)
        return path, ["--max-vocab", "100000"]
    raise SystemExit(f"unknown corpus {name!r}; choose from x1, x10, line, distinct")


def write_distinct(path: Path, distinct: int, *, zipf_tokens: int = 10_000_000, zipf_words: int = 200_000) -> None:
    """``distinct`` words seen once (r0, r1, ... in random order) mixed with Zipf(1.1) words w1..w200000, 20 a line."""
    generator = np.random.default_rng(6)
    total = distinct + zipf_tokens
    is_rare = np.zeros(total, dtype=bool)
    is_rare[generator.choice(total, size=distinct, replace=False)] = True
    rare = generator.permutation(distinct)
    block = 1_000_000
    done_rare = 0
    with open(path, "w") as out:
        for start in range(0, total, block):
            flags = is_rare[start : start + block]
            rare_here = int(flags.sum())
            ranks = np.minimum(generator.zipf(1.1, size=len(flags) - rare_here), zipf_words)
            words = np.empty(len(flags), dtype=object)
            words[flags] = [f"r{index}" for index in rare[done_rare : done_rare + rare_here].tolist()]
            words[~flags] = [f"w{rank}" for rank in ranks.tolist()]
            done_rare += rare_here
            out.write("\n".join(" ".join(words[line : line + 20]) for line in range(0, len(words), 20)) + "\n")


def train(corpus: Path, extra: list[str], model: Path, source_tree: Path | None) -> dict:
    """Run `embedcli train` on ``corpus`` and watch its memory."""
    shutil.rmtree(model, ignore_errors=True)
    env = dict(os.environ)
    if source_tree is not None:
        env["PYTHONPATH"] = str(source_tree.resolve())
    command = [sys.executable, "-m", "embedcli", "train", str(corpus), "--tokenizer", "whitespace",
               "--epochs", "1", "--out", str(model), "--quiet", *extra]
    started = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, env=env)
    peaks = {"RssAnon": 0, "RssFile": 0}
    watcher = threading.Thread(target=watch, args=(process.pid, peaks), daemon=True)
    watcher.start()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    watcher.join()
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(process.stderr.read().decode())
    stats = json.loads((model / "config.json").read_text())
    corpus_stats = stats.get("corpus") or stats.get("metadata", {}).get("corpus", {})
    return {
        "mib": corpus.stat().st_size / 2**20,
        "tokens": corpus_stats.get("tokens", 0),
        "vocab": corpus_stats.get("vocab_size", 0),
        "seconds": seconds,
        "anon": peaks["RssAnon"] / 1024,
        "file": peaks["RssFile"] / 1024,
        "maxrss": usage.ru_maxrss / 1024,
    }


def watch(pid: int, peaks: dict[str, int]) -> None:
    """Keep the largest RssAnon and RssFile (kB) of process ``pid`` until it ends."""
    status = Path(f"/proc/{pid}/status")
    while True:
        try:
            text = status.read_text()
        except OSError:
            return
        values = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if "RssAnon" not in values:  # a zombie: it has ended
            return
        for key, peak in peaks.items():
            peaks[key] = max(peak, int(values[key].split()[0]))
        time.sleep(0.02)


if __name__ == "__main__":
    main()
