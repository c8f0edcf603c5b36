"""embedcli on one GPU against gensim (and embedcli) on the same machine's CPU cores, back to back.

    python benchmarks/gpu.py ../shared/corpora/gcide.txt [--variants "--lanes 1" " --no-cuda-graphs"] [--scale 8] [--repeat 5]

(A variant that is a single flag needs a leading space, as above, or argparse takes it for an
option of this script.)

First a check that the CUDA-graph step (CapturedStep) trains as the eager step does. Then, in one run:
embedcli with its defaults on CUDA from a cold token cache and again from the warm one; each
``--variants`` entry (flags added to the defaults, warm cache); embedcli on the CPU with one worker
per core; gensim with one worker per core; and, with ``--scale N``, embedcli's defaults on the corpus
repeated N times (cold and warm), where fixed costs (CUDA start-up, tokenizing) weigh less.

words/s = corpus tokens x epochs / seconds of vocabulary scan + training, as in compare.py; the
``steps words/s`` column leaves out tokenizing and start-up (the training loop alone). Scores come
from gensim's evaluation code on its bundled WordSim-353, SimLex-999 and Google analogy files.
Each row is also appended to ``--json`` as it finishes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from compare import GENSIM, evaluate, load_embedcli, run_measured  # noqa: E402


def check_captured_step() -> str:
    """Train two spans eagerly and by graph replay from the same start; the largest difference."""
    import torch

    from embedcli.model import CapturedStep, SkipGram
    from embedcli.sampling import chunk_of, make_span, noise_table

    device = torch.device("cuda")
    generator = torch.Generator(device=device).manual_seed(0)
    vocab, tokens = 5000, 200_000
    counts = torch.randint(1, 1000, (vocab,), generator=torch.Generator().manual_seed(0)).sort(descending=True).values
    spans = []
    for length in (tokens, tokens // 2):  # the second span is shorter: its steps reuse part of the staging
        rows = torch.randint(0, vocab, (length,), generator=generator, device=device)
        spans.append(make_span(
            rows, torch.arange(length, device=device) // 20, torch.ones(vocab, device=device), window=5, chunk=4 * 1024,
            negative=5, noise_block=64, noise_words=64, cumulative=noise_table(counts).to(device), generator=generator,
        ))
    eager = SkipGram(vocab, 100, generator=torch.Generator().manual_seed(1)).to(device)
    with torch.no_grad():
        eager.output.weight.normal_(0, 0.1, generator=generator)
    graphed = SkipGram(vocab, 100).to(device)
    graphed.load_state_dict(eager.state_dict())
    captured, steps = None, 0
    for span in spans:
        for number in range(span.centers // 4096):
            with_loss = number % 3 == 0  # both recorded graphs: the step, and the step with its loss
            eager_loss = eager.train_chunk(chunk_of(span, number, 1024, 4), 0.025, hot_rows=50, max_step=1.6, with_loss=with_loss)
            captured = captured or CapturedStep(graphed, span, size=1024, lanes=4, capacity=0, hot_rows=50, max_step=1.6)
            assert captured.take(span)
            graphed_loss = captured(number, 0.025, with_loss=with_loss)
            if with_loss:
                loss, expected = float(graphed_loss), eager_loss
            steps += 1
    difference = max(
        float((eager.input.weight - graphed.input.weight).abs().max()),
        float((eager.output.weight - graphed.output.weight).abs().max()),
    )
    return f"CUDA-graph step vs eager step after {steps} steps in 2 spans: largest weight difference {difference:.2e}, last loss {loss:.4f} vs {expected:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--variants", nargs="*", default=["--lanes 1", "--lanes 2", "--lanes 4", "--lanes 8", "--lanes 4 --no-cuda-graphs"])
    parser.add_argument("--scale", type=int, default=0, help="also train on the corpus repeated this many times")
    parser.add_argument("--repeat", type=int, default=1, help="fresh processes of the defaults from the warm cache; their median is printed")
    parser.add_argument("--skip", nargs="*", default=[], help="rows to leave out: gensim, cpu")
    parser.add_argument("--json", default="", help="append each row to this file as JSON lines")
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of this script where there is no GPU")
    args = parser.parse_args()
    import torch

    cores = len(os.sched_getaffinity(0))
    if args.device == "cuda":
        if not torch.cuda.is_available():
            print("skipped: CUDA is not available here")
            return
        print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {cores} CPU cores", flush=True)
        try:
            print(check_captured_step(), flush=True)
        except Exception as error:  # report it, and measure the rest all the same
            print(f"CUDA-graph check failed: {type(error).__name__}: {error}", flush=True)
    total_tokens = sum(len(line.split()) for line in open(args.corpus, encoding="utf-8", errors="replace"))
    print(f"corpus {args.corpus}: {total_tokens:,} tokens, {args.epochs} epochs, dim 100 window 5 negative 5 sample 1e-3 min-count 5")
    header = f"{'trainer':<44} {'seconds':>7} {'words/s':>11} {'x gensim':>8} {'steps words/s':>13} {'WS353':>6} {'SimLex':>6} {'analogy':>7} {'RSS MiB':>7} {'GPU MiB':>7}"
    rows: list[dict] = []
    gensim_speed = None

    def report(row: dict) -> None:
        rows.append(row)
        if args.json:
            with open(args.json, "a", encoding="utf-8") as stream:
                stream.write(json.dumps(row) + "\n")
        ratio = f"{row['words_per_second'] / gensim_speed:.2f}" if gensim_speed and not row["name"].startswith("gensim") else "-"
        steps = f"{row['steps_words_per_second']:,.0f}" if row.get("steps_words_per_second") else "-"
        scores = row["scores"]
        if len(rows) == 1:
            print(header)
        print(f"{row['name']:<44} {row['seconds']:>7.2f} {row['words_per_second']:>11,.0f} {ratio:>8} {steps:>13} "
              f"{scores['ws353']:>6.3f} {scores['simlex']:>6.3f} {scores['analogy']:>7.3f} {row['rss']:>7,.0f} "
              f"{row.get('gpu_mib') or '-':>7}", flush=True)

    def embedcli(name: str, corpus: str, out: Path, flags: list[str], tokens: int) -> dict | None:
        command = [sys.executable, "-m", "embedcli", "train", corpus, "--out", str(out), "--quiet", "--force",
                   "--tokenizer", "whitespace", "--epochs", str(args.epochs), *flags]
        try:
            _, rss = run_measured(command)
        except SystemExit as error:  # one failed row leaves the others
            print(f"{name}: {error}", flush=True)
            return None
        training = json.loads((out / "config.json").read_text())["training"]
        steps = training["seconds_by_phase"]["training_steps"]
        row = {
            "name": name, "seconds": training["seconds"], "words_per_second": tokens * args.epochs / training["seconds"],
            "steps_words_per_second": tokens * args.epochs / steps, "phases": training["seconds_by_phase"],
            "scores": evaluate(load_embedcli(out)), "rss": rss, "gpu_mib": training.get("gpu_peak_mib"),
            "flags": flags, "device": training["device"],
        }
        report(row)
        return row

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if "gensim" not in args.skip:
            from gensim.models import KeyedVectors

            out_file = scratch / "gensim.bin"
            settings = ["100", "5", "5", "1e-3", "5", str(args.epochs), str(cores)]
            stdout, rss = run_measured([sys.executable, "-c", GENSIM, args.corpus, str(out_file), *settings])
            seconds = json.loads(stdout.strip().splitlines()[-1])["seconds"]
            gensim_speed = total_tokens * args.epochs / seconds
            report({"name": f"gensim, {cores} workers", "seconds": seconds, "words_per_second": gensim_speed,
                    "scores": evaluate(KeyedVectors.load_word2vec_format(out_file, binary=True)), "rss": rss})
        out = scratch / "gpu"
        embedcli(f"embedcli {args.device}, defaults, cold cache", args.corpus, out, ["--device", args.device], total_tokens)
        warm = [
            embedcli(f"embedcli {args.device}, defaults, warm cache{f' #{run + 1}' if args.repeat > 1 else ''}",
                     args.corpus, out, ["--device", args.device], total_tokens)
            for run in range(max(args.repeat, 1))
        ]
        speeds = sorted(row["words_per_second"] for row in warm if row)
        if len(speeds) > 1:
            print(f"defaults, warm cache, {len(speeds)} fresh processes: median {speeds[len(speeds) // 2]:,.0f} words/s "
                  f"({speeds[0]:,.0f} to {speeds[-1]:,.0f})", flush=True)
        for variant in args.variants:
            embedcli(f"embedcli {args.device} {variant}", args.corpus, out, ["--device", args.device, *variant.split()], total_tokens)
        if "cpu" not in args.skip:
            embedcli(f"embedcli cpu, {cores} threads, warm cache", args.corpus, out, ["--device", "cpu"], total_tokens)
        if args.scale > 1:
            big = scratch / f"corpus-x{args.scale}.txt"
            with open(big, "wb") as target:
                for _ in range(args.scale):
                    with open(args.corpus, "rb") as source:
                        shutil.copyfileobj(source, target)
            out = scratch / "gpu-big"
            tokens = total_tokens * args.scale
            embedcli(f"embedcli {args.device}, corpus x{args.scale}, cold cache", str(big), out, ["--device", args.device], tokens)
            embedcli(f"embedcli {args.device}, corpus x{args.scale}, warm cache", str(big), out, ["--device", args.device], tokens)
    for row in rows:
        if "phases" in row:
            phases = ", ".join(f"{phase} {value:.2f} s" for phase, value in row["phases"].items())
            print(f"{row['name']}: {phases}")


if __name__ == "__main__":
    main()
