"""Tokenizing + encoding speed (corpus to token-id file), cold and from the cache.

    python benchmarks/encode_speed.py ../shared/corpora/gcide.txt --tokenizer whitespace
    python benchmarks/encode_speed.py ../shared/corpora/gcide-raw.txt --tokenizer default
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from embedcli.config import DEFAULTS
from embedcli.corpus import Corpus
from embedcli.vocab import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="+")
    parser.add_argument("--tokenizer", default=DEFAULTS.tokenizer)
    args = parser.parse_args()
    cfg = DEFAULTS.with_overrides(tokenizer=args.tokenizer)
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        cold = prepare(Corpus(args.corpus), cfg, Path(cache))
        cold_seconds = time.perf_counter() - started
        started = time.perf_counter()
        warm = prepare(Corpus(args.corpus), cfg, Path(cache))
        warm_seconds = time.perf_counter() - started
    assert warm.cached and not cold.cached
    print(f"{' '.join(args.corpus)} with --tokenizer {args.tokenizer}: {cold.corpus_tokens:,} tokens, "
          f"{len(cold.vocabulary):,} words kept")
    print(f"cold: {cold_seconds:.2f}s ({cold.corpus_tokens / cold_seconds / 1e6:.2f}M tokens/s)  "
          f"cached: {warm_seconds:.3f}s")


if __name__ == "__main__":
    main()
