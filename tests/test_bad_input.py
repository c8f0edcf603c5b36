"""Every bad input in the README's table: one clear line on stderr, the right exit code, no traceback."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

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
    if case == "damaged gzip":
        (tmp / "bad.gz").write_bytes(gzip.compress(b"hello world\n" * 1000)[:-20] + b"garbage!")
        return ["train", str(tmp / "bad.gz"), *out]
    if case in ("dim 0", "window 0", "negative -1", "epochs 0", "min-count 0", "lr 0"):
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
    if case == "unknown export format":
        return ["export", "--format", "xls", "--model", str(model), "--out", str(tmp / "x")]
    if case == "export into a missing folder":
        return ["export", "--format", "npy", "--model", str(model), "--out", str(tmp / "no" / "x.npy")]
    raise AssertionError(case)


CASES = {
    # case: (exit code, words the one line must contain)
    "missing corpus": (2, "does not exist"),
    "folder without text": (2, "no text files"),
    "empty corpus": (2, "empty"),
    "nothing reaches min-count": (2, "lower --min-count"),
    "binary file": (2, "binary"),
    "damaged gzip": (2, "damaged"),
    "dim 0": (2, "--dim must be at least 1"),
    "window 0": (2, "--window must be at least 1"),
    "negative -1": (2, "--negative must be at least 1"),
    "epochs 0": (2, "--epochs must be at least 1"),
    "min-count 0": (2, "--min-count must be at least 1"),
    "lr 0": (2, "--lr must be above 0"),
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
    "no corpus": (2, "Missing argument"),
    "unknown word": (2, "close matches: king"),
    "missing model": (2, "no model at"),
    "folder that is not a model": (2, "not an embedcli model"),
    "truncated weights": (2, "truncated or corrupted"),
    "corrupted weights": (2, "truncated or corrupted"),
    "damaged config": (2, "not valid JSON"),
    "newer format": (2, "newer embedcli"),
    "foreign format": (2, "not an embedcli model"),
    "unknown export format": (2, "unknown export format 'xls'"),
    "export into a missing folder": (2, "does not exist"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_one_clear_line(case, tmp_path, small_corpus, demo_model):
    if case == "cuda without CUDA":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    code, words = CASES[case]
    result = run_cli(*_setup(case, tmp_path, small_corpus, demo_model))
    lines = result.stderr.strip().splitlines()
    assert result.code == code, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("embedcli: error: ") and words in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_out_holding_other_files_is_left_untouched(tmp_path, small_corpus):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "thesis.tex").write_text("keep me")
    run_cli("train", small_corpus, "--out", tmp_path / "other")
    assert [p.name for p in (tmp_path / "other").iterdir()] == ["thesis.tex"]


def test_a_failed_training_keeps_the_previous_model(tmp_path, small_corpus, demo_model):
    model = tmp_path / "model"
    shutil.copytree(demo_model, model)
    before = {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()}
    (tmp_path / "empty.txt").write_text("")
    assert run_cli("train", tmp_path / "empty.txt", "--out", model).code == 2
    assert {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()} == before


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
