"""What checkpoints and --deterministic cost, on one corpus, back to back.

    python benchmarks/reliability.py ../shared/corpora/gcide.txt [--repeats 2]

Runs ``embedcli train`` (defaults, ``--tokenizer whitespace``) in child processes, alternating:
- ``no checkpoints``: the same code with checkpointing switched off (the baseline),
- ``default``: a checkpoint at every epoch end and every 5 minutes (the default interval),
- ``every 1.2 s``: ``--checkpoint-every 0.02``, to show what each checkpoint costs,
then one ``--deterministic`` run. Prints training seconds, the overhead against the baseline
measured in the same run, and the checkpoint costs each run records in config.json
(seconds the workers waited for a snapshot; seconds of background writing).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# The baseline: the same training with the checkpoint step replaced by nothing.
NO_CHECKPOINTS = """
import sys
import embedcli.train
embedcli.train._Run._checkpoint = lambda self, wait: None
from embedcli.cli import main
sys.argv = ["embedcli", *sys.argv[1:]]
main()
"""


def train(corpus: str, out: Path, extra: list[str], *, baseline: bool = False) -> dict:
    command = [sys.executable, "-c", NO_CHECKPOINTS] if baseline else [sys.executable, "-m", "embedcli"]
    command += ["train", corpus, "--out", str(out), "--quiet", "--force", "--tokenizer", "whitespace", *extra]
    subprocess.run(command, check=True, capture_output=True)
    training = json.loads((out / "config.json").read_text())["training"]
    return {"seconds": training["seconds"], **training["checkpoints"], "words_per_second": training["words_per_second"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared/corpora/gcide.txt"))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if not Path(args.corpus).is_file():
        print(f"skipped: {args.corpus} is not here (the shared corpora are absent)")
        return
    runs: dict[str, list[dict]] = {"no checkpoints": [], "default": [], "every 1.2 s": [], "--deterministic": []}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "model"
        train(args.corpus, out, [])  # fills the token cache, so every measured run starts equal
        for _ in range(args.repeats):
            runs["no checkpoints"].append(train(args.corpus, out, [], baseline=True))
            runs["default"].append(train(args.corpus, out, []))
            runs["every 1.2 s"].append(train(args.corpus, out, ["--checkpoint-every", "0.02"]))
        runs["--deterministic"].append(train(args.corpus, out, ["--deterministic"]))
    base = statistics.median(run["seconds"] for run in runs["no checkpoints"])
    print(f"corpus {args.corpus}; embedcli defaults (--tokenizer whitespace); median of {args.repeats} runs")
    print(f"{'run':<16} {'seconds':>8} {'vs baseline':>11} {'words/s':>10} {'checkpoints':>11} {'paused s':>9} {'writing s':>9}")
    for name, measured in runs.items():
        if not measured:
            continue
        seconds = statistics.median(run["seconds"] for run in measured)
        middle = sorted(measured, key=lambda run: run["seconds"])[len(measured) // 2]
        print(f"{name:<16} {seconds:>8.1f} {100 * (seconds / base - 1):>+10.1f}% {middle['words_per_second']:>10,} "
              f"{middle['written']:>11} {middle['pause_seconds']:>9.3f} {middle['write_seconds']:>9.3f}")


if __name__ == "__main__":
    main()
