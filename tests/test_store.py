"""The model directory: what train writes loads back, and damage is always detected."""

from __future__ import annotations

import ast
import json
import shutil

import numpy as np
import pytest

import embedcli
from embedcli.errors import ModelError
from embedcli.store import load_model

from .conftest import ROOT


def test_a_model_loads_back_with_words_in_frequency_order(demo_model):
    vectors = embedcli.load(demo_model)
    config = json.loads((demo_model / "config.json").read_text())
    assert len(vectors) == config["corpus"]["vocab_size"] and vectors.dim == 50
    assert list(vectors.counts) == sorted(vectors.counts, reverse=True)
    assert vectors.index(vectors.words[7]) == 7 and "queen" in vectors and "zzz" not in vectors
    assert np.array_equal(vectors["queen"], vectors.matrix[vectors.index("queen")].numpy())


@pytest.mark.parametrize("name", ["embeddings.safetensors", "tokenizer.json", "words.json"])
def test_every_damaged_file_is_refused(demo_model, tmp_path, name):
    copy = tmp_path / "model"
    shutil.copytree(demo_model, copy)
    data = bytearray((copy / name).read_bytes())
    data[-10] ^= 0x01
    (copy / name).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="truncated or corrupted"):
        load_model(copy)


def test_a_missing_file_is_refused(demo_model, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(demo_model, copy)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(ModelError, match="tokenizer.json is missing"):
        load_model(copy)


def test_no_code_path_unpickles():
    """Loading a file must never run code: no pickle, no torch.load, no allow_pickle=True."""
    for path in (ROOT / "embedcli").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("load", "loads") and isinstance(node.value, ast.Name):
                assert node.value.id not in ("pickle", "torch"), f"{path.name}: {node.value.id}.{node.attr}"
            if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
                assert isinstance(node.value, ast.Constant) and node.value.value is False, path.name
        assert "import pickle" not in path.read_text(), path.name
