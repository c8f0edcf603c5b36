"""Nothing is lost: checkpoints and resume, signals, determinism, locks, full disks, divergence."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import embedcli.store
from embedcli.config import DEFAULTS
from embedcli.errors import EmbedcliError
from embedcli.store import load_model, locked

from .conftest import DEMO, DEMO_ANALOGIES, DEMO_CONFIG, run_cli

DETERMINISTIC = ["--config", str(DEMO_CONFIG), "--deterministic", "--epochs", "3", "--quiet"]


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "embedcli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )


def _wait_for_checkpoint(out: Path, generation: int, process: subprocess.Popen, timeout: float = 120) -> None:
    state = out / ".checkpoint" / "state.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1].decode()
        try:
            if json.loads(state.read_text())["generation"] >= generation:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def _vectors(model: Path) -> np.ndarray:
    return np.array(load_model(model)[1]["vectors"])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "model"
    result = run_cli("train", DEMO, *DETERMINISTIC, "--out", out)
    assert result.code == 0, result.stderr
    return out


def test_deterministic_runs_are_bit_identical(uninterrupted, tmp_path):
    result = run_cli("train", DEMO, *DETERMINISTIC, "--out", tmp_path / "again")
    assert result.code == 0, result.stderr
    assert np.array_equal(_vectors(uninterrupted), _vectors(tmp_path / "again"))


@pytest.mark.parametrize(("how", "generation"), [("SIGINT", 2), ("SIGTERM", 5), ("SIGKILL", 3)])
def test_an_interrupted_run_resumes_to_the_same_vectors(uninterrupted, tmp_path, how, generation):
    out = tmp_path / "model"
    process = _start("train", DEMO, *DETERMINISTIC, "--out", out, "--checkpoint-every", "0.004")
    _wait_for_checkpoint(out, generation, process)
    process.send_signal(getattr(signal, how))
    _, stderr = process.communicate(timeout=120)
    if how == "SIGKILL":
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 128 + getattr(signal, how), stderr.decode()
        lines = stderr.decode().strip().splitlines()
        assert len(lines) == 1 and f"embedcli train --resume {out}" in lines[0], lines
    assert not (out / "config.json").exists()

    refused = run_cli("train", DEMO, *DETERMINISTIC, "--out", out)
    assert refused.code == 2 and "--resume" in refused.stderr

    resumed = run_cli("train", "--resume", out, "--quiet")
    assert resumed.code == 0, resumed.stderr
    assert np.array_equal(_vectors(uninterrupted), _vectors(out))
    training = json.loads((out / "config.json").read_text())["training"]
    assert training["resumed"] and training["checkpoints"]["written"] >= generation  # the first run's count too
    assert not (out / ".checkpoint").exists()


@pytest.mark.parametrize("gap", [0.001, 0.05])
def test_a_second_ctrl_c_stops_at_once_in_one_line_and_keeps_the_checkpoint(tmp_path, gap):
    out = tmp_path / "model"
    process = _start("train", DEMO, *DETERMINISTIC, "--out", out, "--checkpoint-every", "0.004")
    _wait_for_checkpoint(out, 2, process)
    process.send_signal(signal.SIGINT)
    time.sleep(gap)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    lines = stderr.decode().strip().splitlines()
    assert process.returncode == 130 and len(lines) == 1, stderr.decode()
    assert f"embedcli train --resume {out}" in lines[0]  # the first stop's line, or the second's
    assert run_cli("train", "--resume", out, "--quiet").code == 0


def test_the_fast_path_resumes_with_its_quality(tmp_path):
    out = tmp_path / "model"
    process = _start("train", DEMO, "--config", DEMO_CONFIG, "--quiet", "--out", out, "--checkpoint-every", "0.004")
    _wait_for_checkpoint(out, 4, process)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 130
    assert run_cli("train", "--resume", out, "--quiet").code == 0
    result = run_cli("evaluate", "--model", out, "--analogies", DEMO_ANALOGIES, "--json")
    assert json.loads(result.stdout)["analogies"][0]["accuracy"] >= 0.9


def test_a_stdin_training_whose_cache_is_gone_resumes_from_stdin_again(tmp_path):
    out = tmp_path / "model"
    process = subprocess.Popen(
        [sys.executable, "-m", "embedcli", "train", "-", "--config", str(DEMO_CONFIG), "--quiet", "--out", str(out),
         "--checkpoint-every", "0.004"],
        stdin=open(DEMO, "rb"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    _wait_for_checkpoint(out, 2, process)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 130
    shutil.rmtree(out / ".cache")
    refused = run_cli("train", "--resume", out)
    assert refused.code == 2 and f"embedcli train - --resume {out} < CORPUS" in refused.stderr, refused.stderr
    resumed = run_cli("train", "-", "--resume", out, "--quiet", input=DEMO.read_bytes())
    assert resumed.code == 0, resumed.stderr


def test_a_worker_that_waited_at_an_epoch_end_waits_there_again_after_resume(tmp_path, monkeypatch):
    """A checkpoint written while one worker waited at the end of epoch 1 for the other, still in it:
    resumed, the first must meet the second there, not start epoch 2 alone (then the two met once
    too few times and the second waited at the last epoch's end forever)."""
    import embedcli.train

    out = tmp_path / "model"
    monkeypatch.setattr(embedcli.train, "remove_checkpoint", lambda out_dir: None)  # keep the epoch-1 checkpoint
    embedcli.train.train([DEMO], DEFAULTS.with_overrides(dim=16, epochs=2, threads=2), out_dir=out, progress=False)
    for name in (embedcli.store.CONFIG, embedcli.store.WEIGHTS, embedcli.store.TOKENIZER, embedcli.store.WORDS):
        (out / name).unlink()
    path = out / embedcli.store.CHECKPOINT / "state.json"
    state = json.loads(path.read_text(encoding="utf-8"))
    assert state["positions"] == [[1, 0, 0], [1, 0, 0]]
    state["positions"][1] = [0, 0, 1]  # the second worker back in its first span of epoch 1
    path.write_text(json.dumps(state), encoding="utf-8")
    resumed = run_cli("train", "--resume", out, "--quiet", timeout=120)
    assert resumed.code == 0, resumed.stderr
    assert (out / embedcli.store.CONFIG).is_file() and not (out / embedcli.store.CHECKPOINT).exists()


def test_resume_refuses_changed_settings_and_finished_models(tmp_path, demo_model):
    refused = run_cli("train", "--resume", demo_model, "--dim", "20")
    assert refused.code == 2 and "drop --dim" in refused.stderr
    finished = run_cli("train", "--resume", demo_model)
    assert finished.code == 2 and "nothing to resume" in finished.stderr
    empty = run_cli("train", "--resume", tmp_path)
    assert empty.code == 2 and "no checkpoint" in empty.stderr
    elsewhere = run_cli("train", "--resume", demo_model, "--out", tmp_path / "other")
    assert elsewhere.code == 2 and "drop --out" in elsewhere.stderr
    afile = run_cli("train", "--resume", demo_model / "config.json")
    assert afile.code == 2 and "config.json is a file; give the model folder" in afile.stderr


def test_a_corrupted_checkpoint_is_refused(tmp_path):
    out = tmp_path / "model"
    process = _start("train", DEMO, *DETERMINISTIC, "--out", out, "--checkpoint-every", "0.004")
    _wait_for_checkpoint(out, 2, process)
    process.kill()
    process.wait()
    weights = next((out / ".checkpoint").glob("weights-*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    result = run_cli("train", "--resume", out)
    assert result.code == 2 and "truncated or corrupted" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("signals", [1, 2])
def test_a_ctrl_c_while_the_trained_model_is_saved_takes_a_second_one_to_stop_it(tmp_path, small_corpus, monkeypatch, capsys, signals):
    """Training is over when saving starts: one Ctrl-C lets the model land whole; a second stops without it."""
    import embedcli.train

    out = tmp_path / "model"
    cfg = DEFAULTS.with_overrides(dim=8, epochs=1, seed=1)
    embedcli.train.train([small_corpus], cfg, out_dir=out, progress=False)
    before = (out / "config.json").read_bytes()
    real_save = embedcli.train.save_model

    def save_while_interrupted(*args, **kwargs):
        for _ in range(signals):
            os.kill(os.getpid(), signal.SIGINT)
        return real_save(*args, **kwargs)

    monkeypatch.setattr(embedcli.train, "save_model", save_while_interrupted)
    if signals == 1:
        embedcli.train.train([small_corpus], cfg.with_overrides(seed=2), out_dir=out, progress=False)
        assert json.loads((out / "config.json").read_text())["config"]["seed"] == 2
        load_model(out)  # whole: every checksum holds
    else:
        with pytest.raises(KeyboardInterrupt):
            embedcli.train.train([small_corpus], cfg.with_overrides(seed=2), out_dir=out, progress=False)
        assert (out / "config.json").read_bytes() == before  # the previous model, untouched
        assert not list(out.glob(".*.tmp"))
    assert "press Ctrl-C again to stop without it" in capsys.readouterr().err


def test_a_second_training_into_the_same_folder_is_refused(tmp_path, small_corpus):
    out = tmp_path / "model"
    out.mkdir()
    with locked(out):
        result = run_cli("train", small_corpus, "--out", out, "--quiet")
        assert result.code == 1 and "another embedcli training" in result.stderr
        (out / ".checkpoint").mkdir()  # the running training has written a checkpoint by now
        (out / ".checkpoint" / "state.json").write_text("{}")
        result = run_cli("train", small_corpus, "--out", out, "--quiet")  # not "continue it with --resume"
        assert result.code == 1 and "another embedcli training" in result.stderr


def _vectors_file(path: Path, rows: int, dim: int) -> Path:
    matrix = np.random.default_rng(0).standard_normal((rows, dim))
    path.write_text(f"{rows} {dim}\n" + "".join(f"w{i} " + " ".join(f"{x:.4f}" for x in row) + "\n" for i, row in enumerate(matrix)))
    return path


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file() and path.name != ".lock"}


def test_an_import_into_a_folder_being_written_is_refused_and_refuses_a_training(tmp_path, small_corpus):
    model = tmp_path / "model"
    assert run_cli("import", _vectors_file(tmp_path / "a.txt", 3, 4), "--out", model).code == 0
    before = _files(model)
    with locked(model):  # a training is writing there
        result = run_cli("import", _vectors_file(tmp_path / "b.txt", 5, 4), "--out", model)
        assert result.code == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "another embedcli training (pid" in result.stderr and "choose another --out" in result.stderr
    assert _files(model) == before
    with locked(model, "import"):  # what an import holds while it writes
        result = run_cli("train", small_corpus, "--out", model, "--quiet")
        assert result.code == 1 and "another embedcli import (pid" in result.stderr, result.stderr
    assert _files(model) == before


# A file-size limit fails every write past it, as a full disk does (and preallocating past it too).
_FILE_SIZE_LIMIT = [
    sys.executable, "-c",
    "import os, resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000)); os.execv(sys.argv[1], sys.argv[1:])",
]


@pytest.mark.parametrize("into", ["a model", "a new folder"])
def test_an_import_that_fills_the_disk_gets_one_line_and_leaves_nothing(tmp_path, into):
    model = tmp_path / "model"
    if into == "a model":
        assert run_cli("import", _vectors_file(tmp_path / "a.txt", 3, 4), "--out", model).code == 0
    before = _files(model) if model.exists() else None
    result = run_cli("import", _vectors_file(tmp_path / "big.txt", 5000, 50), "--out", model, prefix=_FILE_SIZE_LIMIT)
    lines = result.stderr.strip().splitlines()
    assert result.code == 1 and len(lines) == 1, result.stderr
    assert "the disk is full" in lines[0] and f"nothing in {model} was changed" in lines[0]
    if before is None:
        assert not model.exists()
    else:
        assert _files(model) == before and not [path for path in model.iterdir() if path.name.endswith(".tmp")]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounts a small tmpfs: needs root")
def test_an_import_onto_a_full_tmpfs_gets_one_line_not_a_bus_error(tmp_path):
    """The matrix an import fills was a sparse memory-mapped file: a page a full tmpfs could not hold killed it with SIGBUS."""
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        result = run_cli("import", _vectors_file(tmp_path / "big.txt", 10_000, 50), "--out", small / "model")  # 2 MB of float32
        assert result.code == 1 and "the disk is full" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not list(small.iterdir())
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_a_full_disk_while_saving_keeps_the_previous_model(tmp_path, demo_model, monkeypatch):
    model = tmp_path / "model"
    shutil.copytree(demo_model, model)
    before = {path.name: path.read_bytes() for path in model.iterdir() if path.is_file() and path.name != ".lock"}
    real = embedcli.store.write_tensors

    def fills_the_disk(stream, tensors, metadata):
        real(stream, {"vectors": tensors["vectors"][:10]}, metadata)  # some bytes land, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(embedcli.store, "write_tensors", fills_the_disk)
    vectors = np.ones((5, 4), dtype=np.float32)
    with pytest.raises(EmbedcliError, match="disk is full"):
        embedcli.store.save_model(
            model, vectors=vectors, words_counts=np.ones(5), token_ids=np.arange(5),
            tokenizer_json="{}", words=list("abcde"), metadata={},
        )
    assert {path.name: path.read_bytes() for path in model.iterdir() if path.is_file() and path.name != ".lock"} == before
    assert not [path for path in model.iterdir() if path.name.endswith(".tmp")]


@pytest.mark.parametrize("tiny", [False, True])  # on 8 words the weights grew to 1e11 and stayed finite
def test_divergence_stops_with_one_line_and_writes_no_model(tmp_path, small_corpus, tiny):
    out = tmp_path / "model"
    if tiny:
        small_corpus = tmp_path / "nine.txt"
        small_corpus.write_text("the cat sat on the mat with a dog\n" * 50)
    result = run_cli(
        "train", small_corpus, "--out", out, "--lr", "50000", "--max-row-step", "1e12", "--min-count", "1", "--quiet"
    )
    assert result.code == 1, result.stderr
    assert "diverged" in result.stderr and "--lr" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (out / "config.json").exists()
    if tiny:  # its first epoch may end before the weights blow up: that checkpoint is kept
        assert ("nothing was written" in result.stderr) != (out / ".checkpoint").exists(), result.stderr
    else:
        assert "nothing was written" in result.stderr and not (out / ".checkpoint").exists()  # no checkpoint to point to


def test_a_failed_run_leaves_no_folder_of_its_own_and_keeps_the_cache_there_was(tmp_path, small_corpus):
    (tmp_path / "empty.txt").write_text("\n \n")
    assert run_cli("train", tmp_path / "empty.txt", "--out", tmp_path / "new", "--quiet").code == 2
    assert not (tmp_path / "new").exists()
    model = tmp_path / "model"
    assert run_cli("train", small_corpus, "--out", model, "--epochs", "1", "--dim", "8", "--min-count", "1", "--quiet").code == 0
    cache = sorted(path.name for path in (model / ".cache").rglob("*"))
    before = {path.name: path.read_bytes() for path in model.iterdir() if path.is_file() and path.name != ".lock"}
    assert run_cli("train", small_corpus, "--out", model, "--force", "--min-count", "1000000", "--quiet").code == 2
    assert sorted(path.name for path in (model / ".cache").rglob("*")) == cache  # no .tmp left, nothing lost
    assert {path.name: path.read_bytes() for path in model.iterdir() if path.is_file() and path.name != ".lock"} == before


def test_tables_too_large_for_memory_are_refused_before_allocating(tmp_path, small_corpus):
    result = run_cli("train", small_corpus, "--out", tmp_path / "model", "--dim", "200000000", "--quiet")
    assert result.code == 2 and "--dim" in result.stderr and "memory" in result.stderr


def test_step_scratch_too_large_for_memory_is_refused_though_the_tables_fit(tmp_path):
    """50 words x --dim 3,000,000: tables of 2.2 GiB, but each worker's step gathers some 6,500 rows of that width."""
    corpus = tmp_path / "fifty.txt"
    corpus.write_text("".join(" ".join(f"w{(7 * line + i) % 50}" for i in range(20)) + "\n" for line in range(100)))
    result = run_cli("train", corpus, "--out", tmp_path / "model", "--dim", "3000000", "--quiet")
    assert result.code == 2 and "for the training steps" in result.stderr and "--chunk, --window or --threads" in result.stderr, result.stderr
    assert not (tmp_path / "model" / "config.json").exists()


def test_the_step_scratch_estimate_matches_the_step(tmp_path):
    """step_bytes counts the tensors sgns_step gathers and makes: within 5% of what one step allocates."""
    import torch

    from embedcli.model import step_bytes
    from embedcli.sampling import chunk_of, make_span, noise_table

    dim, window = 4096, 5
    generator = torch.Generator().manual_seed(0)
    rows = torch.randint(0, 50, (4096,), generator=generator)
    span = make_span(
        rows, torch.zeros(4096, dtype=torch.int64), torch.ones(50), window=window, chunk=1024, negative=5,
        noise_block=64, noise_words=64, cumulative=noise_table(torch.ones(50)), generator=generator,
    )
    weights = torch.zeros(50, dim), torch.zeros(50, dim)
    from embedcli.model import sgns_step

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as profile:
        sgns_step(*weights, chunk_of(span, 0, 1024), 0.025)
    allocated = sum(event.cpu_memory_usage for event in profile.events() if event.cpu_memory_usage > 0)
    assert abs(allocated - step_bytes(1024, dim, window=window, noise_block=64, noise_words=64)) < 0.05 * allocated


def test_deterministic_is_a_setting_with_a_default():
    assert DEFAULTS.deterministic is False and DEFAULTS.checkpoint_every > 0


def test_a_disk_that_fills_while_encoding_gets_one_line(tmp_path, small_corpus):
    """A file-size limit (RLIMIT_FSIZE) makes every write past it fail, as a full disk does."""
    import resource

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    process = subprocess.run(
        [sys.executable, "-m", "embedcli", "train", str(small_corpus), "--out", str(tmp_path / "model"), "--quiet"],
        capture_output=True, preexec_fn=limited, env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    lines = process.stderr.decode().strip().splitlines()
    assert process.returncode == 1 and len(lines) == 1, lines
    assert "disk" in lines[0] and "free some space" in lines[0]
    assert not (tmp_path / "model" / "config.json").exists()


def test_a_token_cache_larger_than_the_free_disk_is_refused(tmp_path, small_corpus, monkeypatch):
    import embedcli.resources
    import embedcli.train

    monkeypatch.setattr(embedcli.resources.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**12, 10**12 - 1000, 1000))
    with pytest.raises(EmbedcliError, match="the token cache needs about .* free some space"):
        embedcli.train.train([small_corpus], DEFAULTS, out_dir=tmp_path / "model", progress=False)
    assert not (tmp_path / "model" / ".cache").exists() or not any((tmp_path / "model" / ".cache").iterdir())


def test_stdin_is_refused_under_torchrun(tmp_path):
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}
    result = run_cli("train", "-", "--out", tmp_path / "model", input=b"a b c\n", env=env)
    assert result.code == 2 and "under torchrun" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("how", "code", "word"), [("SIGTERM", 143, "terminated"), ("SIGINT", 130, "interrupted")])
def test_a_signal_while_the_libraries_load_stops_with_one_line(tmp_path, how, code, word):
    process = subprocess.Popen(
        [sys.executable, "-m", "embedcli", "--version"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    status = Path(f"/proc/{process.pid}/status")
    if not status.exists():
        pytest.skip("needs Linux's /proc to see when the entry point has taken SIGTERM")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the entry point takes SIGTERM before numpy, torch and typer load
        caught = next((line for line in status.read_text().splitlines() if line.startswith("SigCgt:")), "SigCgt: 0")
        if int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
            break
        time.sleep(0.005)
    process.send_signal(getattr(signal, how))
    stdout, stderr = process.communicate(timeout=60)
    lines = stderr.decode().strip().splitlines()
    assert process.returncode == code and lines == [f"embedcli: {word}; nothing was written"], (lines, stdout)


@pytest.mark.parametrize(("how", "code", "word"), [("SIGTERM", 143, "terminated"), ("SIGINT", 130, "interrupted")])
def test_a_signal_before_training_stops_with_one_line(tmp_path, how, code, word):
    """While stdin is still being read (no training yet), a signal stops the run cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "embedcli", "train", "-", "--out", str(tmp_path / "model"), "--quiet"],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    process.stdin.write(b"the king and the queen\n" * 1000)
    process.stdin.flush()
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("model/.stdin-*")) and time.monotonic() < deadline:
        time.sleep(0.05)  # the spool folder appears once the CLI is reading
    process.send_signal(getattr(signal, how))
    _, stderr = process.communicate(timeout=60)
    lines = stderr.decode().strip().splitlines()
    assert process.returncode == code and lines == [f"embedcli: {word}; nothing was written"], lines
    assert not (tmp_path / "model" / "config.json").exists()
    assert not list(tmp_path.glob("model/.stdin-*"))
