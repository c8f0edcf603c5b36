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


def test_default_toml_comments_are_the_help_texts():
    from embedcli.config import FIELDS

    lines = (ROOT / "configs" / "default.toml").read_text(encoding="utf-8").splitlines()
    comments = {line.split(" = ")[0]: above[2:] for above, line in zip(lines, lines[1:]) if " = " in line}
    assert comments == {name: field.metadata["help"] for name, field in FIELDS.items()}


# (setting, what its help and README row say of its range, a value just outside it)
BOUNDS = [("max_sentence", "at least 2", 1), ("min_lr", "0 to 1", 1.5), ("min_lr", "0 to 1", -0.1),
          ("dim", "at least 1", 0), ("epochs", "at least 1", 0), ("min_count", "at least 1", 0),
          ("lr", "above 0", 0.0), ("max_row_step", "above 0", 0.0), ("timeout", "above 0", 0.0),
          ("noise_block", "at least 1", 0), ("window", "1 to 100", 101), ("negative", "1 to 100", 0),
          ("noise_words", "1 to 4096", 4097), ("chunk", "16 to 1048576", 8), ("threads", "up to 256", 257),
          ("lanes", "up to 256", 257), ("seed", "0 to 4294967295", -1)]


@pytest.mark.parametrize("name, bound, outside", BOUNDS)
def test_help_and_readme_give_the_range_the_config_checks(name, bound, outside):
    from embedcli.config import FIELDS, TrainConfig

    option = "--" + name.replace("_", "-")
    row = next(line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines() if line.startswith(f"| `{option}`"))
    assert bound in FIELDS[name].metadata["help"] and bound in row
    overrides = {name: outside, **({"chunk": 1024} if name == "noise_block" else {})}
    with pytest.raises(ConfigError, match=option):
        TrainConfig(**overrides)


def test_help_and_readme_say_what_the_default_tokenizer_does_to_text():
    from embedcli.config import FIELDS

    row = next(line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines() if line.startswith("| `--tokenizer`"))
    for said in ("NFKC + lowercase", "invisible format characters", "soft hyphen", "don ' t", "e - mail", "3 . 14", "URLs",
                 "Chinese, Japanese, Thai", "jieba, MeCab", "Greek capitals lowercase letter by letter"):
        assert said in FIELDS["tokenizer"].metadata["help"] and said in row, said


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
