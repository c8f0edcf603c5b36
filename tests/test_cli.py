"""The real CLI end to end on the demo corpus: train, lookup, export, help and version."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import torch

from embedcli import __version__

from .conftest import DEMO, DEMO_CONFIG, run_cli


def test_train_writes_a_model_directory_and_a_summary(tmp_path, small_corpus):
    out = tmp_path / "model"
    result = run_cli("train", small_corpus, "--out", out, "--epochs", "1", "--dim", "20")
    assert result.code == 0, result.stderr
    assert {"embeddings.safetensors", "tokenizer.json", "config.json"} <= {p.name for p in out.iterdir()}
    summary = result.stderr.strip().splitlines()[-1]
    assert re.match(r"trained [\d,]+ words on [\d,]+ tokens x 1 epoch in .*words/s.*model in ", summary)
    config = json.loads((out / "config.json").read_text())
    assert config["format"] == "embedcli-model" and config["version"] == 1
    assert config["config"]["dim"] == 20 and config["config"]["epochs"] == 1
    assert config["corpus"]["vocab_size"] > 100


def test_default_out_is_embeddings_so_lookup_works_as_written(tmp_path, small_corpus):
    assert run_cli("train", small_corpus, "--epochs", "1", cwd=tmp_path).code == 0
    assert (tmp_path / "embeddings" / "config.json").is_file()
    result = run_cli("lookup", "king", cwd=tmp_path)
    assert result.code == 0, result.stderr
    word, *values = result.stdout.split()
    assert word == "king" and len(values) == 100


def test_lookup_neighbors_shows_the_planted_partner(demo_model):
    result = run_cli("lookup", "king", "--model", demo_model, "--neighbors", "5")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "king" and len(lines) == 6
    assert "queen" in [line.split()[0] for line in lines[1:]]


def test_lookup_json_parses(demo_model):
    result = run_cli("lookup", "king", "paris", "--model", demo_model, "--neighbors", "3", "--json")
    payload = json.loads(result.stdout)
    assert set(payload) == {"king", "paris"}
    assert len(payload["king"]) == 3 and {"word", "score"} <= set(payload["king"][0])
    vectors = json.loads(run_cli("lookup", "king", "--model", demo_model, "--json").stdout)
    assert len(vectors["king"]) == 50


def test_lookup_normalises_the_query_like_the_corpus(demo_model):
    result = run_cli("lookup", "KING", "--model", demo_model, "--neighbors", "1")
    assert result.code == 0 and result.stdout.startswith("KING")


def test_export_npy_loads_into_numpy_and_nn_embedding(demo_model, tmp_path):
    out = tmp_path / "vectors.npy"
    result = run_cli("export", "--format", "npy", "--model", demo_model, "--out", out)
    assert result.code == 0, result.stderr
    matrix = np.load(out, allow_pickle=False)
    words = (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert matrix.dtype == np.float32 and matrix.shape == (len(words), 50)
    king = json.loads(run_cli("lookup", "king", "--model", demo_model, "--json").stdout)["king"]
    assert np.allclose(matrix[words.index("king")], king, atol=1e-6)
    embedding = torch.nn.Embedding.from_pretrained(torch.from_numpy(np.load(out)))
    ids = torch.tensor([0, 5, words.index("queen")])
    assert torch.equal(embedding(ids), torch.from_numpy(matrix)[ids])


def test_export_default_path(demo_model, tmp_path):
    assert run_cli("export", "--format", "npy", "--model", demo_model, cwd=tmp_path).code == 0
    assert (tmp_path / "embeddings.npy").is_file() and (tmp_path / "vocab.txt").is_file()


def test_stdin_corpus(tmp_path, small_corpus):
    out = tmp_path / "model"
    result = run_cli("train", "-", "--out", out, "--epochs", "1", input=small_corpus.read_bytes())
    assert result.code == 0, result.stderr
    assert run_cli("lookup", "queen", "--model", out).code == 0


def test_version_and_python_m():
    result = run_cli("--version")
    assert result.code == 0 and result.stdout.strip() == f"embedcli {__version__}"


def test_every_command_has_help_with_an_example():
    """In-process (eight interpreters starting torch cost CI 20 s); the real CLI's --help is run below."""
    from typer.testing import CliRunner

    from embedcli.cli import app

    for command in ("train", "lookup", "similarity", "analogy", "evaluate", "plot", "export", "import"):
        result = CliRunner().invoke(app, [command, "--help"], terminal_width=100)
        assert result.exit_code == 0 and "Example: embedcli " + command in result.output


def test_train_help_shows_the_config_defaults():
    from embedcli.config import DEFAULTS

    text = " ".join(run_cli("train", "--help").stdout.split())
    assert f"[default: {DEFAULTS.dim}]" in text and f"[default: {DEFAULTS.lr}]" in text


def test_demo_config_is_only_overrides():
    from embedcli.config import DEFAULTS, load_config

    demo = load_config(DEMO_CONFIG)
    assert demo != DEFAULTS and DEMO.is_file()


def test_readme_documents_every_command_and_setting():
    from embedcli.config import FIELDS

    from .conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in ("train", "lookup", "similarity", "analogy", "evaluate", "plot", "export", "import"):
        assert f"### `embedcli {command}" in readme
    from embedcli.export import FORMATS

    for fmt in FORMATS:
        assert f"| `{fmt}` |" in readme, fmt
    for name in FIELDS:
        assert f"`--{name.replace('_', '-')}`" in readme, name
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = next(line for line in readme.splitlines() if "pytest" in line and line.startswith("python3 -m venv"))
    assert test_command in ci


def test_the_command_loads_its_libraries_where_ctrl_c_is_caught():
    """`embedcli` imports embedcli.__main__ first; numpy, torch and typer load later, inside its Ctrl-C handler."""
    code = "import sys, embedcli.__main__; print([name for name in ('numpy', 'torch', 'typer') if name in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
