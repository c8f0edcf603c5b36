"""The model directory: what train writes loads back, and damage is always detected."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import embedcli
from embedcli.errors import ModelError, UsageError
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


def _imported(folder: Path, rows: dict[str, list[float]]) -> Path:
    from embedcli.export import import_vectors

    text = folder.parent / f"{folder.name}.txt"
    text.write_text(f"{len(rows)} 2\n" + "".join(f"{word} {a} {b}\n" for word, (a, b) in rows.items()))
    import_vectors(text, folder)
    return folder


def test_a_model_replaced_while_it_is_read_is_read_again_whole(tmp_path, monkeypatch):
    """A training saving into the folder renames its files in one by one: a reader in between met
    the new weights with the old config.json and called the model corrupted; it reads again."""
    import embedcli.store as store

    old = _imported(tmp_path / "old", {"a": [1, 0], "b": [0, 1]})
    new = _imported(tmp_path / "new", {"c": [1, 1], "d": [1, -1], "e": [2, 0]})
    shutil.copytree(old, tmp_path / "m")
    real_open_model, calls = store.open_model, []

    def interrupted_by_a_save(model_dir):
        calls.append(model_dir)
        if len(calls) > 1:
            return real_open_model(model_dir)
        for name in ("embeddings.safetensors", "words.json", "tokenizer.json"):
            shutil.copy(new / name, tmp_path / "m" / name)
        try:
            return real_open_model(model_dir).verified()  # new files, old config.json: their checksums differ
        finally:
            shutil.copy(new / "config.json", tmp_path / "m" / "config.json")

    monkeypatch.setattr(store, "open_model", interrupted_by_a_save)
    monkeypatch.setattr(embedcli.vectors, "open_model", interrupted_by_a_save)
    vectors = embedcli.load(tmp_path / "m")
    assert vectors.words == ["c", "d", "e"] and len(calls) == 2


def test_a_folder_a_training_is_writing_says_so_not_to_resume(tmp_path):
    from embedcli.store import CHECKPOINT, locked

    (tmp_path / "m" / CHECKPOINT).mkdir(parents=True)
    with locked(tmp_path / "m"):
        with pytest.raises(ModelError, match=r"holds no model yet: an embedcli training \(pid \d+\) is writing it; wait"):
            embedcli.load(tmp_path / "m")
    with pytest.raises(ModelError, match="has not finished; continue it with 'embedcli train --resume"):
        embedcli.load(tmp_path / "m")  # the training has stopped: now it may be resumed


def test_a_folder_where_a_file_goes_is_named_and_leaves_no_temporary_file(tmp_path):
    from embedcli.store import atomic_write_bytes

    (tmp_path / "out.bin").mkdir()
    with pytest.raises(UsageError, match="out.bin is a folder; give a file name"):
        atomic_write_bytes(tmp_path / "out.bin", b"data")
    assert [path.name for path in tmp_path.iterdir()] == ["out.bin"]
