"""plot and loss.png: PNG files a person can read (size, ink), and a clear line without matplotlib."""

from __future__ import annotations

import sys

import pytest

import embedcli
from embedcli.errors import UsageError

from .conftest import run_cli

image = pytest.importorskip("matplotlib.image", reason="matplotlib is in the test and plot extras")

TWENTY = ["king", "queen", "man", "woman", "prince", "princess", "boy", "girl", "france", "paris",
          "spain", "madrid", "italy", "rome", "cat", "cats", "dog", "dogs", "walk", "walked"]


def _ink(path) -> tuple[tuple[int, int], float]:
    pixels = image.imread(path)
    dark = (pixels[:, :, :3].mean(axis=2) < 0.9).mean()
    return pixels.shape[:2], float(dark)


def test_plot_writes_a_labelled_png(demo_model, tmp_path):
    out = tmp_path / "map.png"
    result = run_cli("plot", *TWENTY, "--model", demo_model, "--out", out)
    assert result.code == 0, result.stderr
    (height, width), dark = _ink(out)
    assert height >= 500 and width >= 700
    assert 0.01 < dark < 0.5  # points, labels and axes, on a mostly white page


def test_plot_with_neighbours_and_bad_words(demo_model, tmp_path):
    assert run_cli("plot", "king", "--neighbors", "4", "--model", demo_model, "--out", tmp_path / "k.png").code == 0
    result = run_cli("plot", "king", "kingg", "--model", demo_model, "--out", tmp_path / "x.png")
    assert result.code == 2 and "close matches" in result.stderr and not (tmp_path / "x.png").exists()
    result = run_cli("plot", "king", "--model", demo_model, "--out", tmp_path / "x.png")
    assert result.code == 2 and "at least two words" in result.stderr


def test_train_writes_loss_png(demo_model):
    (height, width), dark = _ink(demo_model / "loss.png")
    assert height >= 300 and width >= 500 and dark > 0.005


def test_without_matplotlib_a_clear_line_says_how_to_install_it(demo_model, tmp_path, monkeypatch):
    from embedcli.plot import plot_words

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UsageError, match="plotting needs matplotlib: pip install matplotlib"):
        plot_words(embedcli.load(demo_model), ["king", "queen"], tmp_path / "p.png")


@pytest.mark.parametrize("suffix, start", [(".svg", b"<?xml"), (".pdf", b"%PDF"), (".jpg", b"\xff\xd8")])
def test_plot_writes_the_kind_of_image_its_name_says(demo_model, tmp_path, suffix, start):
    out = tmp_path / f"map{suffix}"
    assert run_cli("plot", "king", "queen", "man", "--model", demo_model, "--out", out).code == 0
    assert out.read_bytes().startswith(start)
    refused = run_cli("plot", "king", "queen", "--model", demo_model, "--out", tmp_path / "map.txt")
    assert refused.code == 2 and "write a .png, .svg, .pdf or .jpg file" in refused.stderr


def test_labels_the_font_cannot_draw_give_one_warning_line(tmp_path):
    (tmp_path / "c.txt").write_text("猫 犬 鳥 魚\n" * 200, encoding="utf-8")
    assert run_cli("train", tmp_path / "c.txt", "--out", tmp_path / "m", "--epochs", "1", "--dim", "8", "--min-count", "1", "--quiet").code == 0
    result = run_cli("plot", "猫", "犬", "鳥", "--model", tmp_path / "m", "--out", tmp_path / "p.png")
    assert result.code == 0, result.stderr
    assert "UserWarning" not in result.stderr and len(result.stderr.strip().splitlines()) <= 2, result.stderr


def test_vectors_of_one_dimension_plot_on_a_line(tmp_path):
    (tmp_path / "one.vec").write_text("3 1\ncat 0.5\ndog -0.25\nbird 1.0\n", encoding="utf-8")
    assert run_cli("import", tmp_path / "one.vec", "--out", tmp_path / "m").code == 0
    result = run_cli("plot", "cat", "dog", "bird", "--model", tmp_path / "m", "--out", tmp_path / "p.png")
    assert result.code == 0, result.stderr
    assert _ink(tmp_path / "p.png")[1] > 0.01


def test_words_with_dollar_signs_are_labels_not_math_and_a_folder_is_no_image(tmp_path):
    """matplotlib read `$\\frac$` as math and failed with a traceback; a folder named as --out left a .tmp file."""
    import torch

    from embedcli.plot import plot_words
    from embedcli.vectors import Vectors

    vectors = Vectors(["$\\frac$", "$x$", "US$", "foo"], torch.eye(4)[:, :3] + 0.1)
    assert plot_words(vectors, ["$\\frac$", "$x$", "US$", "foo"], tmp_path / "p.png") == ["$\\frac$", "$x$", "US$", "foo"]
    assert _ink(tmp_path / "p.png")[1] > 0.01
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(UsageError, match="is a folder; give an image file"):
        plot_words(vectors, ["foo", "US$"], tmp_path / "dir.png")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["dir.png", "p.png"]
