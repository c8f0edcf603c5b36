"""The command line: parse, call the library, print, map errors to exit codes."""

from __future__ import annotations

import json
import logging
import signal
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__
from .config import DEFAULTS, help_for, load_config
from .errors import EmbedcliError, UsageError, exit_stopped, raise_on_sigterm
from .evaluate import RESTRICT_VOCAB, evaluate_analogies, evaluate_pairs
from .export import FLOAT16_LARGEST, FORMATS, IMPORT_FORMATS, export as export_vectors, import_vectors
from .vectors import ANSWERS, NEIGHBORS, Vectors

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Train word embeddings (skip-gram with negative sampling), query them and export them.",
)
_debug = False


def _version(value: bool) -> None:
    if value:
        typer.echo(f"embedcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an error.")] = False,
) -> None:
    global _debug
    _debug = debug


def _setting(name: str, flag: str | None = None):
    return typer.Option(flag or f"--{name.replace('_', '-')}", help=help_for(name), show_default=False)


def _typed(words: list[str] | None) -> list[str]:
    """Words as typed, less surrounding spaces: under a non-UTF-8 locale (LC_ALL=C) Python keeps the
    UTF-8 bytes of ``café`` as surrogate escapes, which no vocabulary holds; decode them as UTF-8 again."""
    return [
        (os.fsencode(word).decode("utf-8", errors="replace") if any("\udc80" <= c <= "\udcff" for c in word) else word).strip()
        for word in words or []
    ]


ModelOption = Annotated[Path, typer.Option("--model", "-m", help="Model directory written by train.")]


@app.command()
def train(
    corpus: Annotated[
        Optional[list[str]], typer.Argument(help="Text files, folders of text files, or - for stdin.", show_default=False)
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Model directory to write [default: embeddings].", show_default=False)
    ] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML file of settings to override.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write into --out even if it holds other files, or an unfinished training (started over).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar (scores, warnings and the summary still print).")] = False,
    resume: Annotated[
        Optional[Path],
        typer.Option("--resume", help="Continue the interrupted training in this model directory, with its settings.", show_default=False),
    ] = None,
    tokenizer: Annotated[Optional[str], _setting("tokenizer")] = None,
    min_count: Annotated[Optional[int], _setting("min_count")] = None,
    max_vocab: Annotated[Optional[int], _setting("max_vocab")] = None,
    dim: Annotated[Optional[int], _setting("dim")] = None,
    window: Annotated[Optional[int], _setting("window")] = None,
    negative: Annotated[Optional[int], _setting("negative")] = None,
    sample: Annotated[Optional[float], _setting("sample")] = None,
    lr: Annotated[Optional[float], _setting("lr")] = None,
    min_lr: Annotated[Optional[float], _setting("min_lr")] = None,
    epochs: Annotated[Optional[int], _setting("epochs")] = None,
    seed: Annotated[Optional[int], _setting("seed")] = None,
    device: Annotated[Optional[str], _setting("device")] = None,
    threads: Annotated[Optional[int], _setting("threads")] = None,
    chunk: Annotated[Optional[int], _setting("chunk")] = None,
    lanes: Annotated[Optional[int], _setting("lanes")] = None,
    cuda_graphs: Annotated[Optional[bool], _setting("cuda_graphs", "--cuda-graphs/--no-cuda-graphs")] = None,
    noise_block: Annotated[Optional[int], _setting("noise_block")] = None,
    noise_words: Annotated[Optional[int], _setting("noise_words")] = None,
    max_row_step: Annotated[Optional[float], _setting("max_row_step")] = None,
    eval_analogies: Annotated[Optional[str], _setting("eval_analogies")] = None,
    eval_pairs: Annotated[Optional[str], _setting("eval_pairs")] = None,
    max_sentence: Annotated[Optional[int], _setting("max_sentence")] = None,
    checkpoint_every: Annotated[Optional[float], _setting("checkpoint_every")] = None,
    timeout: Annotated[Optional[float], _setting("timeout")] = None,
    deterministic: Annotated[Optional[bool], _setting("deterministic", "--deterministic/--no-deterministic")] = None,
    max_tokens: Annotated[Optional[int], _setting("max_tokens")] = None,
) -> None:
    """Train word vectors on a corpus and write a model directory.

    Example: embedcli train corpus.txt --out embeddings --epochs 5
    """
    from .train import resume as resume_training, train as run_training  # training code loads for this command only

    overrides = {name: value for name, value in locals().items() if name in DEFAULTS.to_dict()}
    if resume is not None:
        changed = [name for name, value in overrides.items() if value is not None] + (["config"] if config else [])
        if changed:
            flag = "--" + changed[0].replace("_", "-")
            raise UsageError(f"--resume continues with the checkpoint's settings; drop {flag}")
        if out is not None and out.resolve() != resume.resolve():
            raise UsageError(f"--resume writes the model into {resume} itself; drop --out")
        result = resume_training(resume, corpus_paths=corpus or None, progress=not quiet)
    else:
        if not corpus:
            raise UsageError("give a corpus to train on (a text file, a folder or -), or --resume DIR")
        settings = (load_config(config) if config is not None else DEFAULTS).with_overrides(**overrides)
        result = run_training(corpus, settings, out_dir=out or Path("embeddings"), force=force, progress=not quiet)
    if result.process == 0:
        typer.echo(
            f"trained {_count(result.vocab_size, 'word')} on {_count(result.tokens, 'token')} x {_count(result.epochs, 'epoch')} "
            f"in {result.seconds:.1f}s ({result.words_per_second:,.0f} words/s, {result.device}); "
            f"model in {result.model_dir}",
            err=True,
        )


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _scored(found: list[tuple[str, float]]) -> list[dict]:
    return [{"word": word, "score": score} for word, score in found]


def _echo_scored(found: list[tuple[str, float]], *, indent: str = "") -> None:
    """Words and scores as an aligned table."""
    width = max((len(word) for word, _ in found), default=0)
    for word, score in found:
        typer.echo(f"{indent}{word:<{width}}  {score:.4f}")


PositiveOption = Annotated[Optional[list[str]], typer.Option("--positive", help="Add this word to the query (repeatable).")]
NegativeOption = Annotated[Optional[list[str]], typer.Option("--negative", help="Subtract this word from the query (repeatable).")]


@app.command()
def lookup(
    words: Annotated[Optional[list[str]], typer.Argument(help="Words to look up.", show_default=False)] = None,
    model: ModelOption = Path("embeddings"),
    neighbors: Annotated[Optional[int], typer.Option("--neighbors", "-k", min=0, help="Show the K nearest words instead of the vector (a --positive/--negative query shows 10 unless K is given).", show_default=False)] = None,
    positive: PositiveOption = None,
    negative: NegativeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the vector of each word, or with --neighbors K its K nearest words by cosine.

    With --positive/--negative, print the nearest words to one combined query, as gensim's
    most_similar(positive=..., negative=...).

    Example: embedcli lookup king --neighbors 5
    """
    vectors = Vectors.load(model)
    words, positive, negative = _typed(words), _typed(positive), _typed(negative)
    if positive or negative:
        if neighbors == 0:
            raise UsageError("a --positive/--negative query lists its nearest words: give --neighbors 1 or more (or leave it out for 10)")
        neighbors = NEIGHBORS if neighbors is None else neighbors
        query = " ".join([*words, *(positive or [])]) + "".join(f" -{word}" for word in negative or [])
        results = {query: vectors.most_similar([*words, *(positive or [])], negative or [], topn=neighbors)}
    elif not words:
        raise UsageError("give one or more words to look up (or --positive/--negative)")
    else:
        neighbors = neighbors or 0
        results = {
            word: vectors.most_similar(word, topn=neighbors) if neighbors > 0 else vectors.vector(word).tolist()
            for word in words
        }
    if as_json:
        payload = {word: _scored(found) for word, found in results.items()} if neighbors > 0 else results
        typer.echo(_json(payload))
        return
    for word, found in results.items():
        if neighbors > 0:
            typer.echo(word)
            _echo_scored(found, indent="  ")
        else:
            typer.echo(f"{word} " + " ".join(f"{value:.6f}" for value in found))


@app.command()
def similarity(
    first: Annotated[str, typer.Argument(help="A word.", show_default=False)],
    second: Annotated[str, typer.Argument(help="Another word.", show_default=False)],
    model: ModelOption = Path("embeddings"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the cosine similarity of two words.

    Example: embedcli similarity king queen
    """
    first, second = _typed([first, second])
    score = Vectors.load(model).similarity(first, second)
    typer.echo(_json({"first": first, "second": second, "similarity": score}) if as_json else f"{score:.4f}")


@app.command()
def analogy(
    first: Annotated[str, typer.Argument(help="A: A is to B ...", show_default=False)],
    second: Annotated[str, typer.Argument(help="B", show_default=False)],
    third: Annotated[str, typer.Argument(help="C: ... as C is to ?", show_default=False)],
    model: ModelOption = Path("embeddings"),
    topn: Annotated[int, typer.Option("--topn", "-k", min=1, help="How many answers.")] = ANSWERS,
    method: Annotated[str, typer.Option("--method", help="add (3CosAdd) or mul (3CosMul).")] = "add",
    positive: PositiveOption = None,
    negative: NegativeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Answer "A is to B as C is to ?" with the nearest words, the question words excluded.

    --positive/--negative add more words to either side of the query.

    Example: embedcli analogy man king woman
    """
    first, second, third = _typed([first, second, third])
    found = Vectors.load(model).analogy(
        first, second, third, topn=topn, method=method, positive=_typed(positive), negative=_typed(negative)
    )
    if as_json:
        typer.echo(_json(_scored(found)))
        return
    _echo_scored(found)


@app.command()
def evaluate(
    model: ModelOption = Path("embeddings"),
    analogies: Annotated[Optional[list[Path]], typer.Option("--analogies", help="Analogy file(s) in word2vec's questions-words.txt format.")] = None,
    pairs: Annotated[Optional[list[Path]], typer.Option("--pairs", help="Word-pair file(s): word, word, human score.")] = None,
    restrict_vocab: Annotated[int, typer.Option("--restrict-vocab", help="Use only the N most frequent words, as gensim does.")] = RESTRICT_VOCAB,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Score the vectors on analogy and word-similarity benchmarks (the numbers gensim gives).

    Example: embedcli evaluate --analogies questions-words.txt --pairs wordsim353.tsv
    """
    if not analogies and not pairs:
        raise UsageError("give --analogies FILE and/or --pairs FILE to evaluate on")
    if restrict_vocab < 1:
        raise UsageError(f"--restrict-vocab must be at least 1, got {restrict_vocab}")
    vectors = Vectors.load(model)
    analogy_results = [evaluate_analogies(vectors, path, restrict_vocab=restrict_vocab) for path in analogies or []]
    pair_results = [evaluate_pairs(vectors, path, restrict_vocab=restrict_vocab) for path in pairs or []]
    for result in [*analogy_results, *pair_results]:
        if result.bad_lines:
            shown = ", ".join(map(str, result.bad_lines[:10])) + (" ..." if len(result.bad_lines) > 10 else "")
            typer.echo(f"embedcli: warning: {result.file}: skipped {len(result.bad_lines)} malformed lines: {shown}", err=True)
    for result in pair_results:
        if result.pairs < 2:
            typer.echo(f"embedcli: warning: {result.file}: fewer than two pairs have both words in the vocabulary; the correlations are undefined (NaN)", err=True)
    if as_json:
        payload = {"analogies": [r.to_dict() for r in analogy_results], "pairs": [r.to_dict() for r in pair_results]}
        typer.echo(_json(payload))
        return
    for r in analogy_results:
        typer.echo(f"{r.file}: analogy accuracy {r.accuracy:.4f} ({r.questions - r.skipped_oov} of {r.questions} questions answered, {r.skipped_oov} out of vocabulary)")
        width = max((len(s.name) for s in r.sections), default=0)
        for s in r.sections:
            typer.echo(f"  {s.name:<{width}}  {s.accuracy:.4f}  ({s.correct}/{s.correct + s.incorrect})")
    for r in pair_results:
        typer.echo(f"{r.file}: Spearman {r.spearman:.4f}  Pearson {r.pearson:.4f}  ({_count(r.pairs, 'pair')}, {r.oov_percent:.1f}% out of vocabulary)")


@app.command()
def plot(
    words: Annotated[list[str], typer.Argument(help="Words to place on the map.", show_default=False)],
    model: ModelOption = Path("embeddings"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Image to write: .png, .svg, .pdf or .jpg.")] = Path("plot.png"),
    neighbors: Annotated[int, typer.Option("--neighbors", "-k", min=0, help="Also place each word's K nearest words.")] = 0,
) -> None:
    """Draw a 2-D PCA map of words with their labels into an image (needs matplotlib: the plot extra).

    Example: embedcli plot king queen man woman paris france --out plot.png
    """
    from .plot import plot_words  # matplotlib loads for this command only

    drawn = plot_words(Vectors.load(model), _typed(words), out, neighbors=neighbors)
    typer.echo(f"wrote {out} ({len(drawn)} words)", err=True)


@app.command()
def export(
    format: Annotated[str, typer.Option("--format", "-f", help=f"Output format: {', '.join(FORMATS)}.")] = "npy",
    model: ModelOption = Path("embeddings"),
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="File or folder to write (default: per format, in the current folder).", show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", help="Keep only the N most frequent words (0: all).")] = 0,
    normalize: Annotated[bool, typer.Option("--normalize", help="Write unit-length vectors.")] = False,
    dtype: Annotated[
        str, typer.Option("--dtype", help=f"float32 or float16 (npy, safetensors; float16 holds values up to {FLOAT16_LARGEST:g}).")
    ] = "float32",
) -> None:
    """Write the vectors in another tool's format: npy, txt, bin, glove, tsv or safetensors.

    npy and tsv write their word list beside the vectors (vocab.txt, metadata.tsv), so a folder
    holds one such export: a second one under another name, with other words, is refused.

    Example: embedcli export --format txt --out vectors.txt --limit 100000
    """
    result = export_vectors(Vectors.load(model), format, out, limit=limit, normalize=normalize, dtype=dtype)
    if warning := result.warning():
        typer.echo(f"embedcli: warning: {warning}", err=True)
    typer.echo(f"wrote {result.rows:,} vectors to " + ", ".join(str(path) for path in result.paths), err=True)


@app.command("import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(help="Vectors file: word2vec text or binary, GloVe, fastText .vec (not a fastText .bin model or a pickle).", show_default=False),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.")] = Path("embeddings"),
    format: Annotated[str, typer.Option("--format", "-f", help=f"One of {', '.join(IMPORT_FORMATS)}.")] = "auto",
    limit: Annotated[int, typer.Option("--limit", help="Read only the first N vectors (0: all).")] = 0,
    force: Annotated[
        bool, typer.Option("--force", help="Write into --out even if it holds other files, or an unfinished training (removed).")
    ] = False,
) -> None:
    """Turn pretrained vectors into a model directory that lookup and export use like a trained one.

    Example: embedcli import wiki.en.vec --out wiki --limit 200000
    """
    result = import_vectors(file, out, fmt=format, limit=limit, force=force)
    if result.invalid_bytes:
        typer.echo(f"embedcli: warning: {result.invalid_bytes} bytes of words were not valid UTF-8 and were replaced", err=True)
    typer.echo(f"imported {result.rows:,} vectors of {result.dim} ({result.format}) into {result.model_dir}", err=True)


def _json(payload: object) -> str:
    """``payload`` as JSON: words as they are on a UTF-8 stdout, else as \\u escapes (a stream that
    cannot encode a character would write Python's escape for it, which JSON does not know)."""
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    return json.dumps(payload, ensure_ascii=encoding != "utf8")


def main() -> None:
    """Run the CLI: every error becomes one line on stderr and an exit code (2: usage, 1: runtime)."""
    logging.basicConfig(format="embedcli: warning: %(message)s", level=logging.WARNING)
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")  # a word the locale cannot show must not crash
    command = typer.main.get_command(app)
    raise_on_sigterm()  # (training writes a checkpoint first: see train.py)
    try:
        code = command.main(standalone_mode=False)
        if isinstance(code, int) and code == 130:  # click turns Ctrl-C (and our SIGTERM) into a return code
            raise KeyboardInterrupt
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _ignore_signals()
        exit_stopped()
    except EmbedcliError as error:
        if _debug:
            traceback.print_exc()
        kind = "" if type(error).__name__ == "Interrupted" else "error: "  # a stop the user asked for
        if not kind:
            _ignore_signals()
        if getattr(error, "shown", True):
            print(f"embedcli: {kind}{error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except OSError as error:  # the system refused (disk full, permission, ...): a run-time failure, one line
        if _debug:
            traceback.print_exc()
        where = f"{error.filename}: " if error.filename else ""
        print(f"embedcli: error: {where}{error.strerror or error}", file=sys.stderr)
        sys.exit(1)
    except Exception as error:
        if _is_out_of_memory(error):
            if _debug:
                traceback.print_exc()
            print(
                "embedcli: error: not enough memory for this run; lower --dim, --window, --chunk or --lanes, "
                "or free some memory",
                file=sys.stderr,
            )
            sys.exit(1)
        if not _is_usage_error(error):
            raise
        if type(error).__name__ == "NoArgsIsHelpError":  # bare `embedcli`: its help, nothing else
            print(error.format_message(), file=sys.stderr)
            sys.exit(2)
        print(f"embedcli: error: {_usage_message(error)}", file=sys.stderr)
        sys.exit(getattr(error, "exit_code", 2))


def _ignore_signals() -> None:
    """On the way out after a stop: one more Ctrl-C must not print a traceback from Python's exit handlers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _is_out_of_memory(error: Exception) -> bool:
    """MemoryError, or PyTorch's refusal to allocate (a RuntimeError on CPU, OutOfMemoryError on CUDA)."""
    if isinstance(error, MemoryError):
        return True
    message = str(error)
    return isinstance(error, RuntimeError) and ("can't allocate memory" in message or "out of memory" in message.lower())


def _is_usage_error(error: Exception) -> bool:
    """Click's (or typer's vendored click's) parse errors, whichever click typer ships."""
    return hasattr(error, "format_message") and hasattr(error, "exit_code")


def _usage_message(error: Exception) -> str:
    message = error.format_message()
    context = getattr(error, "ctx", None)
    path = context.command_path if context is not None else "embedcli"
    return f"{message} (see '{path} --help')"
