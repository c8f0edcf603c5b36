"""One process against torchrun with N processes (gloo, CPU), same corpus, same total epochs.

    python benchmarks/distributed.py ../shared/corpora/gcide.txt [--processes 2]

Rows: one process with one worker per core (the default), and ``torchrun --nproc-per-node N``
(each process gets its share of the cores). Scores come from gensim's evaluation code on its
bundled files (as in compare.py). Communication: each merge all-reduces both tables; the table
gives the merges per epoch, the bytes each merge reduces, and what a ring all-reduce sends per
process per epoch (2 x (N - 1) / N of it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from compare import evaluate, load_embedcli, run_measured  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared/corpora/gcide.txt"))
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--embedcli-args", default="", help="extra flags for embedcli train")
    args = parser.parse_args()
    if not Path(args.corpus).is_file():
        print(f"skipped: {args.corpus} is not here (the shared corpora are absent)")
        return
    flags = ["--quiet", "--tokenizer", "whitespace", *args.embedcli_args.split()]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for processes in (1, args.processes):
            out = Path(scratch) / f"model-{processes}"
            launcher = [sys.executable, "-m", "embedcli"] if processes == 1 else [
                sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                "-m", "embedcli",
            ]
            _, rss = run_measured([*launcher, "train", args.corpus, "--out", str(out), *flags])
            config = json.loads((out / "config.json").read_text())
            rows.append((processes, config, rss, evaluate(load_embedcli(out))))
    print(f"corpus {args.corpus}; embedcli defaults (--tokenizer whitespace) {args.embedcli_args}")
    print(f"{'processes':>9} {'workers':>7} {'seconds':>8} {'words/s':>10} {'WS353':>6} {'SimLex':>6} {'analogy':>7} "
          f"{'merges/epoch':>12} {'MiB/merge':>9} {'MiB sent/proc/epoch':>19} {'peak RSS MiB':>12}")
    for processes, config, rss, scores in rows:
        training = config["training"]
        traffic = training.get("communication", {"merges": 0, "bytes_per_merge": 0})
        epochs = config["config"]["epochs"]
        per_merge = traffic["bytes_per_merge"] / 2**20
        merges = traffic["merges"] / epochs
        sent = merges * per_merge * 2 * (processes - 1) / processes
        print(f"{processes:>9} {training['workers']:>7} {training['seconds']:>8.1f} {training['words_per_second']:>10,} "
              f"{scores['ws353']:>6.3f} {scores['simlex']:>6.3f} {scores['analogy']:>7.3f} {merges:>12.1f} "
              f"{per_merge:>9.1f} {sent:>19.1f} {rss:>12,.0f}")


if __name__ == "__main__":
    main()
