"""embedcli against gensim (and fastText when installed) on one corpus, back to back.

Each trainer runs in its own child process (so peak RSS is its own), with the same
settings; all vectors are scored by gensim's own evaluation code on its bundled
WordSim-353, SimLex-999 and Google analogy files.

    python benchmarks/compare.py ../shared/corpora/gcide.txt --epochs 5

words/s = corpus tokens x epochs / seconds of vocabulary scan + training (imports
and saving excluded for every trainer alike).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

GENSIM = """
import json, sys, time
from gensim.models import Word2Vec
from gensim.models.word2vec import LineSentence
corpus, out, dim, window, negative, sample, min_count, epochs, workers = sys.argv[1:]
start = time.perf_counter()
model = Word2Vec(LineSentence(corpus), sg=1, vector_size=int(dim), window=int(window), negative=int(negative),
                 sample=float(sample), min_count=int(min_count), epochs=int(epochs), workers=int(workers), seed=1)
seconds = time.perf_counter() - start
model.wv.save_word2vec_format(out, binary=True)
print(json.dumps({"seconds": seconds, "tokens": model.corpus_total_words}))
"""

FASTTEXT = """
import json, sys, time
import fasttext
corpus, out, dim, window, negative, sample, min_count, epochs, workers = sys.argv[1:]
start = time.perf_counter()
model = fasttext.train_unsupervised(corpus, model="skipgram", dim=int(dim), ws=int(window), neg=int(negative),
                                    t=float(sample), minCount=int(min_count), epoch=int(epochs), thread=int(workers),
                                    minn=0, maxn=0, lr=0.05, verbose=0)
seconds = time.perf_counter() - start
with open(out, "w", encoding="utf-8") as stream:
    words = model.get_words()
    stream.write(f"{len(words)} {model.get_dimension()}\\n")
    for word in words:
        stream.write(word + " " + " ".join(f"{x:.6f}" for x in model.get_word_vector(word)) + "\\n")
print(json.dumps({"seconds": seconds}))
"""


def run_measured(command: list[str]) -> tuple[str, float]:
    """stdout and peak RSS (MiB) of a child, measured with wait4."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    stdout = process.stdout.read().decode()
    stderr = process.stderr.read().decode()
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(command[:4])} failed:\n{stderr[-3000:]}")
    return stdout, usage.ru_maxrss / 1024


def evaluate(keyed_vectors) -> dict[str, float]:
    from gensim.test.utils import datapath

    ws353 = keyed_vectors.evaluate_word_pairs(datapath("wordsim353.tsv"))[1][0]
    simlex = keyed_vectors.evaluate_word_pairs(datapath("simlex999.txt"))[1][0]
    analogy = keyed_vectors.evaluate_word_analogies(datapath("questions-words.txt"))[0]
    return {"ws353": ws353, "simlex": simlex, "analogy": analogy}


def load_embedcli(model_dir: Path):
    from gensim.models import KeyedVectors

    import embedcli

    vectors = embedcli.load(str(model_dir))
    keyed = KeyedVectors(vectors.dim)
    keyed.add_vectors(vectors.words, vectors.matrix.numpy())
    return keyed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negative", type=int, default=5)
    parser.add_argument("--sample", type=float, default=1e-3)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip", nargs="*", default=[], help="trainers to leave out: gensim, fasttext")
    parser.add_argument("--embedcli-args", default="", help="extra flags for embedcli train")
    args = parser.parse_args()
    from gensim.models import KeyedVectors

    settings = [str(v) for v in (args.dim, args.window, args.negative, args.sample, args.min_count, args.epochs, args.workers)]
    total_tokens = sum(len(line.split()) for line in open(args.corpus, encoding="utf-8", errors="replace"))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        out = scratch / "embedcli"
        command = [
            sys.executable, "-m", "embedcli", "train", args.corpus, "--out", str(out), "--quiet",
            "--tokenizer", "whitespace", "--dim", str(args.dim), "--window", str(args.window),
            "--negative", str(args.negative), "--sample", str(args.sample), "--min-count", str(args.min_count),
            "--epochs", str(args.epochs), "--threads", str(args.workers), *args.embedcli_args.split(),
        ]
        _, rss = run_measured(command)
        seconds = json.loads((out / "config.json").read_text())["training"]["seconds"]
        rows.append(("embedcli", seconds, rss, evaluate(load_embedcli(out))))

        if "gensim" not in args.skip:
            out_file = scratch / "gensim.bin"
            stdout, rss = run_measured([sys.executable, "-c", GENSIM, args.corpus, str(out_file), *settings])
            seconds = json.loads(stdout.strip().splitlines()[-1])["seconds"]
            rows.append(("gensim", seconds, rss, evaluate(KeyedVectors.load_word2vec_format(out_file, binary=True))))

        if "fasttext" not in args.skip:
            try:
                import fasttext  # noqa: F401
            except ImportError:
                print("fastText is not installed (pip install fasttext-numpy2): left out", file=sys.stderr)
            else:
                out_file = scratch / "fasttext.vec"
                stdout, rss = run_measured([sys.executable, "-c", FASTTEXT, args.corpus, str(out_file), *settings])
                seconds = json.loads(stdout.strip().splitlines()[-1])["seconds"]
                rows.append(("fasttext", seconds, rss, evaluate(KeyedVectors.load_word2vec_format(out_file))))

    gensim_speed = next((total_tokens * args.epochs / s for name, s, _, _ in rows if name == "gensim"), None)
    print(f"corpus {args.corpus}: {total_tokens:,} tokens; dim {args.dim} window {args.window} negative "
          f"{args.negative} sample {args.sample} min-count {args.min_count} epochs {args.epochs} workers {args.workers}")
    print(f"{'trainer':<10} {'seconds':>8} {'words/s':>10} {'x gensim':>8} {'WS353':>6} {'SimLex':>6} {'analogy':>7} {'peak RSS MiB':>12}")
    for name, seconds, rss, scores in rows:
        speed = total_tokens * args.epochs / seconds
        ratio = f"{speed / gensim_speed:.2f}" if gensim_speed else "-"
        print(f"{name:<10} {seconds:>8.1f} {speed:>10,.0f} {ratio:>8} {scores['ws353']:>6.3f} {scores['simlex']:>6.3f} "
              f"{scores['analogy']:>7.3f} {rss:>12,.0f}")


if __name__ == "__main__":
    main()
