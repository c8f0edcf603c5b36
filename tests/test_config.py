"""The config dataclass is the one source of defaults; TOML files only override it."""

from __future__ import annotations

import json
import tomllib

import pytest

from embedcli.config import DEFAULTS, load_config
from embedcli.errors import ConfigError

from .conftest import ROOT, run_cli


def test_default_toml_lists_every_setting_with_its_default():
    values = tomllib.loads((ROOT / "configs" / "default.toml").read_text())
    assert values == DEFAULTS.to_dict()


def test_config_file_overrides_and_flags_override_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("dim = 32\nsample = 0\n")
    cfg = load_config(path)
    assert cfg.dim == 32 and cfg.sample == 0.0 and cfg.window == DEFAULTS.window
    assert cfg.with_overrides(dim=64, window=None).dim == 64


def test_every_switch_of_a_config_file_can_be_turned_off_by_a_flag(tmp_path, small_corpus):
    path = tmp_path / "c.toml"
    path.write_text("deterministic = true\nepochs = 1\ndim = 8\n")
    result = run_cli("train", small_corpus, "--config", path, "--no-deterministic", "--out", tmp_path / "m", "-q")
    assert result.code == 0, result.stderr
    assert json.loads((tmp_path / "m" / "config.json").read_text())["config"]["deterministic"] is False


@pytest.mark.parametrize("settings", [{"dim": 16.0}, {"dim": "16"}, {"lr": "0.1"}, {"cuda_graphs": 1}, {"epochs": True}])
def test_settings_built_in_python_are_checked_like_a_config_file(settings):
    from embedcli.config import TrainConfig
    from embedcli.errors import ConfigError

    with pytest.raises(ConfigError, match=f"setting '{next(iter(settings))}' must be"):
        TrainConfig(**settings)


def test_settings_built_in_python_take_paths_and_numpy_numbers(tmp_path):
    import numpy as np

    from embedcli.config import TrainConfig

    cfg = TrainConfig(tokenizer=tmp_path / "t.json", dim=np.int64(8), lr=1)
    assert cfg.tokenizer == str(tmp_path / "t.json") and type(cfg.dim) is int and cfg.lr == 1.0


def test_a_config_file_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes("\ufeffdim = 32\n".encode("utf-8"))
    assert load_config(path).dim == 32


@pytest.mark.parametrize(
    "text, message",
    [("dim = [", "not valid TOML"), ("size = 3", "unknown setting 'size'"), ("dim = 1.5", "must be int"),
     ("dim = true", "must be int"), ("dim = 0", "--dim must be at least 1"), ("device = 'gpu'", "unknown device"),
     # torch keeps 32 bits of a seed: 1 and 2**32 + 1 gave the same vectors
     ("seed = 4294967297", "--seed must be between 0 and 4294967295"), ("seed = -1", "--seed must be between 0")],
)
def test_bad_config_files_are_refused(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)
