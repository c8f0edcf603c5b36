"""Every bad input in the README's table: one clear line on stderr, the right exit code, no traceback."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

from .conftest import run_cli


def _setup(case: str, tmp: Path, corpus: Path, model: Path) -> list[str]:
    """Build what the case needs in ``tmp``; return the CLI arguments."""
    out = ["--out", str(tmp / "out"), "--quiet"]
    if case == "missing corpus":
        return ["train", str(tmp / "nope.txt"), *out]
    if case == "folder without text":
        (tmp / "folder").mkdir()
        (tmp / "folder" / "image.bin").write_bytes(b"\x89PNG\0\0\0")
        return ["train", str(tmp / "folder"), *out]
    if case == "empty corpus":
        (tmp / "empty.txt").write_text("\n  \n")
        return ["train", str(tmp / "empty.txt"), *out]
    if case == "nothing reaches min-count":
        (tmp / "few.txt").write_text("one two three four\n")
        return ["train", str(tmp / "few.txt"), *out]
    if case == "binary file":
        (tmp / "blob.txt").write_bytes(bytes(range(256)) * 10)
        return ["train", str(tmp / "blob.txt"), *out]
    if case == "UTF-16 corpus":
        (tmp / "notepad.txt").write_bytes("hello world\n".encode("utf-16") * 50)
        return ["train", str(tmp / "notepad.txt"), *out]
    if case == "compressed UTF-16 corpus":
        (tmp / "notepad.txt.gz").write_bytes(gzip.compress("hello world\n".encode("utf-16") * 50))
        return ["train", str(tmp / "notepad.txt.gz"), *out]
    if case == "UTF-16 on stdin":
        return ["train", "-", *out]
    if case == "folder of UTF-16 files":
        (tmp / "folder").mkdir()
        (tmp / "folder" / "notepad.txt").write_bytes("hello world\n".encode("utf-16") * 50)
        return ["train", str(tmp / "folder"), *out]
    if case == "stdin named twice":
        return ["train", "-", "-", *out]
    if case == "corpus folder inside --out":
        (tmp / "out" / "texts").mkdir(parents=True)
        shutil.copy(corpus, tmp / "out" / "texts" / "a.txt")
        return ["train", str(tmp / "out" / "texts"), *out, "--force"]
    if case == "damaged gzip":
        (tmp / "bad.gz").write_bytes(gzip.compress(b"hello world\n" * 1000)[:-20] + b"garbage!")
        return ["train", str(tmp / "bad.gz"), *out]
    if case == "gzip cut short at its start":
        text = "".join(random.Random(0).choices("abcdefghij \n", k=50_000)).encode()  # compresses little
        (tmp / "short.txt.gz").write_bytes(gzip.compress(text)[:3000])  # ends within the first 8 KiB of text
        return ["train", str(tmp / "short.txt.gz"), *out]
    if case in ("dim 0", "window 0", "window 1000", "negative -1", "epochs 0", "min-count 0", "lr 0", "lr inf",
                "seed 99999999999999999999", "lanes 100000000", "checkpoint-every -1"):
        flag, value = case.split()
        return ["train", str(corpus), f"--{flag}", value, *out]
    if case == "not a number":
        return ["train", str(corpus), "--dim", "many", *out]
    if case == "unknown device":
        return ["train", str(corpus), "--device", "tpu", *out]
    if case == "cuda without CUDA":
        return ["train", str(corpus), "--device", "cuda", *out]
    if case == "missing evaluation file":
        return ["train", str(corpus), "--eval-pairs", str(tmp / "nope.txt"), *out]
    if case == "missing tokenizer file":
        return ["train", str(corpus), "--tokenizer", str(tmp / "nope.json"), *out]
    if case == "malformed config":
        (tmp / "bad.toml").write_text("dim = = 3\n")
        return ["train", str(corpus), "--config", str(tmp / "bad.toml"), *out]
    if case == "unknown config key":
        (tmp / "bad.toml").write_text("dimensions = 3\n")
        return ["train", str(corpus), "--config", str(tmp / "bad.toml"), *out]
    if case == "wrong config type":
        (tmp / "bad.toml").write_text('dim = "large"\n')
        return ["train", str(corpus), "--config", str(tmp / "bad.toml"), *out]
    if case == "missing config":
        return ["train", str(corpus), "--config", str(tmp / "nope.toml"), *out]
    if case == "out is a file":
        (tmp / "file").write_text("x")
        return ["train", str(corpus), "--out", str(tmp / "file")]
    if case == "out holds other files":
        (tmp / "other").mkdir()
        (tmp / "other" / "thesis.tex").write_text("keep me")
        return ["train", str(corpus), "--out", str(tmp / "other")]
    if case == "no corpus":
        return ["train"]
    if case == "unknown word":
        return ["lookup", "kingg", "--model", str(model)]
    if case == "missing model":
        return ["lookup", "king", "--model", str(tmp / "nowhere")]
    if case == "folder that is not a model":
        (tmp / "folder").mkdir()
        return ["lookup", "king", "--model", str(tmp / "folder")]
    if case in ("truncated weights", "corrupted weights", "damaged config", "newer format", "foreign format"):
        copy = tmp / "model"
        shutil.copytree(model, copy)
        weights, config = copy / "embeddings.safetensors", copy / "config.json"
        if case == "truncated weights":
            weights.write_bytes(weights.read_bytes()[:1000])
        elif case == "corrupted weights":
            data = bytearray(weights.read_bytes())
            data[len(data) // 2] ^= 0xFF
            weights.write_bytes(bytes(data))
        elif case == "damaged config":
            config.write_text(config.read_text()[:50])
        elif case == "newer format":
            config.write_text(config.read_text().replace('"version": 1', '"version": 99'))
        else:
            config.write_text(config.read_text().replace('"embedcli-model"', '"other-tool"'))
        return ["lookup", "king", "--model", str(copy)]
    if case == "endless device":
        return ["train", "/dev/zero", *out]
    if case == "max-tokens -1":
        return ["train", str(corpus), "--max-tokens", "-1", *out]
    if case == "lookup without a word":
        return ["lookup", "--model", str(model)]
    if case == "a combined query with --neighbors 0":
        return ["lookup", "--positive", "king", "--neighbors", "0", "--model", str(model)]
    if case == "unknown analogy method":
        return ["analogy", "man", "king", "woman", "--method", "div", "--model", str(model)]
    if case == "evaluate without a file":
        return ["evaluate", "--model", str(model)]
    if case == "missing file to evaluate":
        return ["evaluate", "--pairs", str(tmp / "nope.txt"), "--model", str(model)]
    if case == "empty evaluation file":
        (tmp / "empty.txt").write_text("")
        return ["evaluate", "--analogies", str(tmp / "empty.txt"), "--model", str(model)]
    if case == "pairs file given as analogies":
        (tmp / "pairs.tsv").write_text("king\tqueen\t9\nman\twoman\t8\n")
        return ["evaluate", "--analogies", str(tmp / "pairs.tsv"), "--model", str(model)]
    if case == "analogy file given as pairs":
        (tmp / "questions.txt").write_text(": gender\nman king woman queen\n")
        return ["evaluate", "--pairs", str(tmp / "questions.txt"), "--model", str(model)]
    if case == "UTF-16 evaluation file":
        (tmp / "pairs16.txt").write_bytes("king queen 9\nman woman 8\n".encode("utf-16"))
        return ["evaluate", "--pairs", str(tmp / "pairs16.txt"), "--model", str(model)]
    if case == "evaluation file is a folder":
        return ["train", str(corpus), "--eval-pairs", str(tmp), *out]
    if case == "float16 word2vec binary":
        return ["export", "--format", "bin", "--dtype", "float16", "--model", str(model), "--out", str(tmp / "x.bin")]
    if case == "import an infinite value":
        (tmp / "vectors.txt").write_text("2 2\na 1 2\nb inf 3\n")
        return ["import", str(tmp / "vectors.txt"), "--out", str(tmp / "imported")]
    if case == "import a header larger than the file":
        (tmp / "vectors.txt").write_text("99999999999 99999999\na 1 2\n")
        return ["import", str(tmp / "vectors.txt"), "--out", str(tmp / "imported")]
    if case == "unknown export format":
        return ["export", "--format", "xls", "--model", str(model), "--out", str(tmp / "x")]
    if case == "export into a missing folder":
        return ["export", "--format", "npy", "--model", str(model), "--out", str(tmp / "no" / "x.npy")]
    if case == "export into a missing folder named with a slash":
        return ["export", "--format", "npy", "--model", str(model), "--out", f"{tmp / 'sub'}/"]
    if case == "export over the model's own file":
        return ["export", "--format", "safetensors", "--model", str(model), "--out", str(model)]
    if case == "export over another model's file":
        shutil.copytree(model, tmp / "other")
        return ["export", "--format", "safetensors", "--model", str(model), "--out", str(tmp / "other")]
    if case == "export over its own word list":
        return ["export", "--format", "npy", "--model", str(model), "--out", str(tmp / "vocab.txt")]
    if case == "float16 text export":
        return ["export", "--format", "txt", "--dtype", "float16", "--model", str(model), "--out", str(tmp / "e.txt")]
    if case == "import an npy export":
        np.save(tmp / "e.npy", np.eye(3, dtype=np.float32))
        return ["import", str(tmp / "e.npy"), "--out", str(tmp / "imported")]
    if case == "import from stdin":
        return ["import", "-", "--out", str(tmp / "imported")]
    if case == "neighbors -1":
        return ["lookup", "king", "--model", str(model), "--neighbors", "-1"]
    raise AssertionError(case)


STDIN = {"UTF-16 on stdin": "hello world\n".encode("utf-16") * 50, "stdin named twice": b"hello world\n" * 50}
CASES = {
    # case: (exit code, words the one line must contain)
    "missing corpus": (2, "does not exist"),
    "folder without text": (2, "no text files"),
    "empty corpus": (2, "empty"),
    "nothing reaches min-count": (2, "lower --min-count"),
    "binary file": (2, "binary"),
    "UTF-16 corpus": (2, "notepad.txt is UTF-16 text; embedcli reads UTF-8: convert it first, e.g. iconv -f UTF-16 -t UTF-8"),
    "compressed UTF-16 corpus": (2, "is UTF-16 text; embedcli reads UTF-8: convert it first, e.g. zcat "),
    "UTF-16 on stdin": (2, "corpus - (stdin) is UTF-16 text; embedcli reads UTF-8: convert it on the way in, e.g. ... | iconv"),
    "folder of UTF-16 files": (2, "holds no text files; "),
    "stdin named twice": (2, "- (stdin) is named 2 times, but stdin can be read only once"),
    "corpus folder inside --out": (2, "is, or is inside, the model folder being written"),
    "damaged gzip": (2, "damaged"),
    "gzip cut short at its start": (2, "short.txt.gz is damaged"),
    "dim 0": (2, "--dim must be at least 1"),
    "window 0": (2, "--window must be between 1 and 100"),
    "window 1000": (2, "--window must be between 1 and 100"),
    "negative -1": (2, "--negative must be between 1 and 100"),
    "epochs 0": (2, "--epochs must be at least 1"),
    "min-count 0": (2, "--min-count must be at least 1"),
    "lr 0": (2, "--lr must be a number above 0"),
    "lr inf": (2, "--lr must be a number above 0, got inf"),
    "seed 99999999999999999999": (2, "--seed is far too large"),
    "lanes 100000000": (2, "--lanes must be 0"),
    "checkpoint-every -1": (2, "--checkpoint-every must be 0 or more minutes"),
    "not a number": (2, "Invalid value for '--dim'"),
    "unknown device": (2, "unknown device 'tpu'"),
    "cuda without CUDA": (2, "CUDA is not available"),
    "missing evaluation file": (2, "--eval-pairs"),
    "missing tokenizer file": (2, "--tokenizer"),
    "malformed config": (2, "not valid TOML"),
    "unknown config key": (2, "unknown setting 'dimensions'"),
    "wrong config type": (2, "'dim' must be int"),
    "missing config": (2, "does not exist"),
    "out is a file": (2, "is a file"),
    "out holds other files": (2, "--force"),
    "no corpus": (2, "give a corpus to train on"),
    "unknown word": (2, "close matches: king"),
    "missing model": (2, "no model at"),
    "folder that is not a model": (2, "not an embedcli model"),
    "truncated weights": (2, "truncated or corrupted"),
    "corrupted weights": (2, "truncated or corrupted"),
    "damaged config": (2, "not valid JSON"),
    "newer format": (2, "newer embedcli"),
    "foreign format": (2, "not an embedcli model"),
    "endless device": (2, "looks like a binary file"),
    "max-tokens -1": (2, "--max-tokens must be 0 (read everything) or more"),
    "lookup without a word": (2, "give one or more words to look up"),
    "a combined query with --neighbors 0": (2, "give --neighbors 1 or more (or leave it out for 10)"),
    "unknown analogy method": (2, "unknown analogy method 'div'; use add or mul"),
    "evaluate without a file": (2, "give --analogies FILE and/or --pairs FILE"),
    "missing file to evaluate": (2, "evaluation file"),
    "empty evaluation file": (2, "no line is an analogy question (four words: a b c d); nothing to evaluate on"),
    "pairs file given as analogies": (2, "is it a word-pair file? use --pairs"),
    "analogy file given as pairs": (2, "no line is a word pair with a score (word word score); is it an analogy file? use --analogies"),
    "UTF-16 evaluation file": (2, "is UTF-16 text; embedcli reads UTF-8: convert it first, e.g. iconv -f UTF-16 -t UTF-8"),
    "evaluation file is a folder": (2, "is a folder; give an evaluation file"),
    "float16 word2vec binary": (2, "holds float32 only"),
    "import an infinite value": (2, "line 3: a value is infinite, NaN or too large"),
    "import a header larger than the file": (2, "is truncated: expected 99999999999 vectors"),
    "unknown export format": (2, "unknown export format 'xls'"),
    "export into a missing folder": (2, "does not exist"),
    "export into a missing folder named with a slash": (2, "sub/: folder"),
    "export over the model's own file": (2, "is the model's own embeddings.safetensors"),
    "export over another model's file": (2, "is the embeddings.safetensors of the embedcli model in"),
    "export over its own word list": (2, "vocab.txt is the vocab.txt that the npy format writes beside the vectors"),
    "neighbors -1": (2, "--neighbors"),
    "float16 text export": (2, "--dtype applies to the npy and safetensors formats"),
    "import from stdin": (2, "import reads a file, not stdin"),
    "import an npy export": (2, "is a NumPy .npy file, not word2vec or GloVe vectors"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_one_clear_line(case, tmp_path, small_corpus, demo_model):
    if case == "cuda without CUDA":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    code, words = CASES[case]
    result = run_cli(*_setup(case, tmp_path, small_corpus, demo_model), input=STDIN.get(case))
    lines = result.stderr.strip().splitlines()
    assert result.code == code, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("embedcli: error: ") and words in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "imported").exists()  # a failed import leaves no folder of its own


def test_out_holding_other_files_is_left_untouched(tmp_path, small_corpus):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "thesis.tex").write_text("keep me")
    run_cli("train", small_corpus, "--out", tmp_path / "other")
    assert [p.name for p in (tmp_path / "other").iterdir()] == ["thesis.tex"]


def test_a_failed_training_keeps_the_previous_model(tmp_path, small_corpus, demo_model):
    model = tmp_path / "model"
    shutil.copytree(demo_model, model)
    def model_files() -> dict[str, bytes]:  # not the lock file, which holds the last writer's process id
        return {p.name: p.read_bytes() for p in model.iterdir() if p.is_file() and not p.name.startswith(".")}

    before = model_files()
    (tmp_path / "empty.txt").write_text("")
    assert run_cli("train", tmp_path / "empty.txt", "--out", model).code == 2
    assert model_files() == before


def test_invalid_utf8_trains_and_warns_with_the_count(tmp_path, small_corpus):
    corpus = tmp_path / "latin1.txt"
    corpus.write_bytes(small_corpus.read_bytes() + "café crème\n".encode("latin-1") * 3)
    result = run_cli("train", corpus, "--out", tmp_path / "out", "--epochs", "1")
    assert result.code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == ["embedcli: warning: 6 bytes of the corpus were not valid UTF-8 and were replaced"]


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "train", tmp_path / "nope.txt", "--out", tmp_path / "out")
    assert result.code == 2 and "Traceback" in result.stderr


# --- inputs that need more than one command line: users, pipes, streams, locales ----------------

# Running as root, permissions stop nothing; the CLI runs as 'nobody' to meet a real refusal.
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if shutil.which("setpriv") else None


def _tiny_corpus(path: Path, *, lines: int = 400, extra: str = "") -> Path:
    """Sentences of a few planted words: enough to train a small model in a second."""
    words = ["king", "queen", "man", "woman", "paris", "france", "café", "crème", "walk", "walked"]
    text = "".join(" ".join(words[(line * 7 + position * 3) % len(words)] for position in range(12)) + "\n" for line in range(lines))
    path.write_text(text + extra, encoding="utf-8")
    return path


@pytest.fixture
def shared_folder():
    """A folder that another user can enter (pytest's tmp_path is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="embedcli-bad-input-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _one_clear_line(result, code: int, words: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.code == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("embedcli: error: ") and words in lines[0], result.stderr


def test_a_folder_one_may_not_write_names_the_file_asked_for(shared_folder, demo_model):
    if AS_NOBODY is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to run the CLI as another user")
    model = shared_folder / "model"
    shutil.copytree(demo_model, model, ignore=shutil.ignore_patterns(".cache"))
    for path in [model, *model.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (shared_folder / "ro").mkdir(mode=0o755)  # root's: others may not write in it
    out = shared_folder / "ro" / "vectors.txt"
    result = run_cli("export", "--format", "txt", "--model", model, "--out", out, prefix=AS_NOBODY)
    if "cannot" in result.stderr and "import" in result.stderr:
        pytest.skip(f"user nobody cannot run embedcli here: {result.stderr[-200:]}")
    _one_clear_line(result, 1, f"{out}: permission denied (no new file may be made in {out.parent})")
    assert list((shared_folder / "ro").iterdir()) == []


@pytest.mark.parametrize("what", ["corpus", "corpus folder", "config", "model", "model folder"])
def test_unreadable_files_give_one_clear_line(what, shared_folder, demo_model):
    if AS_NOBODY is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to run the CLI as another user")
    probe = subprocess.run([*AS_NOBODY, sys.executable, "-c", "import embedcli"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"user nobody cannot run embedcli here: {probe.stderr.decode()[-200:]}")
    corpus = _tiny_corpus(shared_folder / "corpus.txt")
    corpus.chmod(0o644)
    out = ["--out", str(shared_folder / "out"), "--quiet"]
    if what == "corpus":
        corpus.chmod(0o000)
        args, words = ["train", str(corpus), *out], f"cannot read corpus {corpus}: permission denied"
    elif what == "corpus folder":
        (shared_folder / "texts").mkdir(mode=0o700)
        shutil.copy(corpus, shared_folder / "texts" / "a.txt")
        args, words = ["train", str(shared_folder / "texts"), *out], "permission denied"
    elif what == "config":
        (shared_folder / "settings.toml").write_text("dim = 8\n")
        (shared_folder / "settings.toml").chmod(0o000)
        args, words = ["train", str(corpus), "--config", str(shared_folder / "settings.toml"), *out], "is not readable"
    else:
        model = shared_folder / "model"
        shutil.copytree(demo_model, model, ignore=shutil.ignore_patterns(".cache"))
        for path in [model, *model.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        (model if what == "model folder" else model / "embeddings.safetensors").chmod(0o000 if what == "model" else 0o700)
        args, words = ["lookup", "king", "--model", str(model)], "not readable" if what == "model folder" else "permission denied"
    _one_clear_line(run_cli(*args, prefix=AS_NOBODY), 2, words)


# Root without the capabilities that override file permissions meets them as any user does, where
# 'nobody' may not be able to reach the Python that runs the tests.
AS_ROOT_WITHOUT_OVERRIDE = (
    ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--inh-caps=-dac_override,-dac_read_search,-fowner"]
    if shutil.which("setpriv") else None
)


@pytest.mark.parametrize("mode", [0o700, 0o711, 0o744], ids=["no access", "enter only", "list only"])
def test_an_unreadable_sub_folder_of_a_corpus_folder_gives_one_clear_line(tmp_path, mode):
    """Not skipped in silence: its files would be missing from the training without a word."""
    if AS_ROOT_WITHOUT_OVERRIDE is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to drop the permission-overriding capabilities")
    sub = tmp_path / "texts" / "sub"
    sub.mkdir(parents=True)
    _tiny_corpus(tmp_path / "texts" / "a.txt")
    _tiny_corpus(sub / "b.txt")
    os.chown(sub, 65534, 65534)  # another user's folder: its owner's permission bits do not apply to root
    sub.chmod(mode)
    result = run_cli("train", tmp_path / "texts", "--out", tmp_path / "out", "--quiet", prefix=AS_ROOT_WITHOUT_OVERRIDE)
    _one_clear_line(result, 2, f"cannot read corpus folder {sub}: permission denied")
    assert not (tmp_path / "out").exists()


def test_a_folder_trained_twice_does_not_read_the_model_written_inside_it(tmp_path, small_corpus):
    """The second run must not train on the first one's config.json, tokenizer.json and words.json."""
    for folder in ("cwd", "texts"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.txt").write_bytes(small_corpus.read_bytes())
    for cwd, args in [(tmp_path / "cwd", [".", "--out", "embeddings"]), (tmp_path, ["texts", "--out", "texts/model"])]:
        for _ in range(2):
            result = run_cli("train", *args, "--epochs", "1", "--quiet", cwd=cwd)
            assert result.code == 0, result.stderr
        config = json.loads((cwd / args[-1] / "config.json").read_text())
        assert config["corpus"]["files"] == [str(Path(args[0]) / "a.txt")]
        words = json.loads((cwd / args[-1] / "words.json").read_text())
        assert not {'":', '",', "{", "}"} & set(words)


def test_a_folder_skips_files_that_are_not_text_with_one_warning(tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    _tiny_corpus(folder / "a.txt")
    (folder / "b.txt").write_bytes(bytes(range(256)) * 10)
    (folder / "notepad.txt").write_bytes("hello world\n".encode("utf-16") * 50)
    result = run_cli("train", folder, "--out", tmp_path / "out", "--min-count", "1", "--dim", "8", "--epochs", "1", "--quiet")
    assert result.code == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "warning" in line] == [
        f"embedcli: warning: 2 files in the corpus folders are not UTF-8 text and were skipped, e.g. {folder / 'notepad.txt'} (UTF-16)"
    ]
    assert json.loads((tmp_path / "out" / "config.json").read_text())["corpus"]["files"] == [str(folder / "a.txt")]


def test_text_with_a_few_nul_bytes_trains(tmp_path):
    data = bytearray(_tiny_corpus(tmp_path / "corpus.txt", lines=4000).read_bytes())
    for position in random.Random(0).sample(range(len(data)), 50):
        data[position] = 0
    (tmp_path / "corpus.txt").write_bytes(bytes(data))
    result = run_cli("train", tmp_path / "corpus.txt", "--out", tmp_path / "out", "--min-count", "1", "--dim", "8",
                     "--epochs", "1", "--quiet")
    assert result.code == 0, result.stderr
    assert not any("\0" in word for word in json.loads((tmp_path / "out" / "words.json").read_text()))


def test_a_corpus_file_that_cannot_be_opened_gives_one_clear_line(tmp_path, monkeypatch):
    """In process, as root too: the permission check passes (as it does for root) but opening fails."""
    import builtins

    from embedcli.corpus import Corpus
    from embedcli.errors import CorpusError

    corpus = _tiny_corpus(tmp_path / "corpus.txt")
    if os.geteuid() != 0:
        corpus.chmod(0o000)
    else:
        real_open = builtins.open

        def refusing_open(file, *args, **kwargs):
            if str(file) == str(corpus):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", refusing_open)
        monkeypatch.setattr(os, "access", lambda *args, **kwargs: True)
    with pytest.raises(CorpusError, match="permission denied"):
        list(Corpus([corpus]))


def test_a_named_pipe_is_read_once_and_trains(tmp_path):
    corpus = _tiny_corpus(tmp_path / "corpus.txt")
    pipe = tmp_path / "corpus.fifo"
    os.mkfifo(pipe)

    def feed() -> None:
        with open(pipe, "wb") as writer:  # blocks until embedcli opens the pipe
            writer.write(corpus.read_bytes())

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    result = run_cli("train", pipe, "--out", tmp_path / "out", "--min-count", "1", "--dim", "8", "--epochs", "1", "--quiet", timeout=120)
    writer.join(timeout=10)
    assert result.code == 0, result.stderr
    assert json.loads((tmp_path / "out" / "config.json").read_text())["corpus"]["tokens"] == 400 * 12


def test_endless_stdin_stops_at_max_tokens(tmp_path):
    endless = subprocess.Popen(["yes", "hello"], stdout=subprocess.PIPE)
    try:
        process = subprocess.run(
            [sys.executable, "-m", "embedcli", "train", "-", "--max-tokens", "100000", "--min-count", "1",
             "--dim", "8", "--epochs", "1", "--out", str(tmp_path / "out"), "--quiet"],
            stdin=endless.stdout, capture_output=True, timeout=120, check=False,
        )
    finally:
        endless.kill()
        endless.wait()
    assert process.returncode == 0, process.stderr.decode()
    corpus = json.loads((tmp_path / "out" / "config.json").read_text())["corpus"]
    assert corpus["tokens"] == 100000 and corpus["vocab_size"] == 1


@pytest.mark.parametrize("tokenizer", ["default", "whitespace"])
def test_max_tokens_reads_exactly_that_many_tokens(tmp_path, tokenizer):
    corpus = _tiny_corpus(tmp_path / "corpus.txt")
    result = run_cli("train", corpus, "--max-tokens", "1000", "--min-count", "1", "--tokenizer", tokenizer,
                     "--dim", "8", "--epochs", "1", "--out", tmp_path / "out", "--quiet")
    assert result.code == 0, result.stderr
    stats = json.loads((tmp_path / "out" / "config.json").read_text())["corpus"]
    assert stats["tokens"] == stats["tokens_in_vocabulary"] == 1000


@pytest.mark.parametrize("only_long", [False, True])
def test_extremely_long_words_train(tmp_path, only_long):
    """A 5 MB word without spaces is cut into pieces of about a million characters, each a word."""
    corpus = tmp_path / "long.txt"
    if only_long:
        corpus.write_text(("y" * 5_000_000 + "\n") * 2)
    else:
        _tiny_corpus(corpus, extra="x" * 5_000_000 + " king queen\n")
    result = run_cli("train", corpus, "--min-count", "1", "--dim", "8", "--epochs", "1", "--out", tmp_path / "out", "--quiet")
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    if not only_long:
        assert run_cli("lookup", "king", "--neighbors", "2", "--model", tmp_path / "out").code == 0


def test_a_one_word_vocabulary_trains_and_answers(tmp_path):
    """As gensim does: one word trains; it has a vector, and no neighbours to list."""
    (tmp_path / "one.txt").write_text("a " * 1000 + "\n")
    out = tmp_path / "out"
    result = run_cli("train", tmp_path / "one.txt", "--min-count", "1", "--dim", "8", "--epochs", "1", "--out", out, "--quiet")
    assert result.code == 0, result.stderr
    assert run_cli("lookup", "a", "--model", out).stdout.startswith("a ")
    neighbours = run_cli("lookup", "a", "--neighbors", "3", "--model", out)
    assert neighbours.code == 0 and neighbours.stdout.split() == ["a"]
    assert run_cli("similarity", "a", "a", "--model", out).stdout.strip() == "1.0000"


@pytest.mark.parametrize("utf8_mode", [None, "0"])
def test_a_non_utf8_locale_reads_and_prints_non_ascii_words(tmp_path, utf8_mode):
    """LC_ALL=C: Python's UTF-8 mode, or (PYTHONUTF8=0) ASCII streams and argv bytes as surrogates."""
    locale = {"LC_ALL": "C", "LANG": "C", "PYTHONIOENCODING": None, "PYTHONUTF8": utf8_mode}
    corpus = _tiny_corpus(tmp_path / "corpus.txt")
    out = tmp_path / "out"
    trained = run_cli("train", corpus, "--min-count", "1", "--dim", "8", "--epochs", "1", "--out", out, "--quiet", env=locale)
    assert trained.code == 0, trained.stderr
    found = run_cli("lookup", "café", "--neighbors", "2", "--model", out, env=locale)
    assert found.code == 0, found.stderr
    assert found.stdout.splitlines()[0] in ("café", "caf\\xe9")
    unknown = run_cli("lookup", "crèmes", "--model", out, env=locale)
    _one_clear_line(unknown, 2, "is not in the vocabulary; close matches: cr")
    assert "Traceback" not in found.stderr + unknown.stderr


def test_a_system_error_is_one_line_with_exit_code_1(monkeypatch, capsys):
    from embedcli import cli

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", "embeddings/embeddings.safetensors")

    monkeypatch.setattr(cli.Vectors, "load", full_disk)
    monkeypatch.setattr(sys, "argv", ["embedcli", "lookup", "king"])
    with pytest.raises(SystemExit) as exit:
        cli.main()
    assert exit.value.code == 1
    assert capsys.readouterr().err == "embedcli: error: embeddings/embeddings.safetensors: No space left on device\n"
