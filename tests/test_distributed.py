"""Training across processes with torchrun (gloo on CPU): same quality, one model directory, no hangs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import DEMO, DEMO_ANALOGIES, DEMO_CONFIG, run_cli

pytest.importorskip("torch.distributed")


def _accuracy(model: Path) -> float:
    result = run_cli("evaluate", "--model", model, "--analogies", DEMO_ANALOGIES, "--json")
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)["analogies"][0]["accuracy"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ranks(*args: str, world: int = 2, cwd: Path) -> list[subprocess.Popen]:
    """The processes torchrun would start, started by hand so a test can signal each one."""
    port = _free_port()
    processes = []
    for rank in range(world):
        env = {
            **os.environ,
            "PYTHONIOENCODING": "utf-8",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "embedcli", *map(str, args)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd,
            )
        )
    return processes


def _wait_for(path: Path, processes: list[subprocess.Popen], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        for process in processes:
            assert process.poll() is None, process.communicate()[1].decode()
        time.sleep(0.05)


def test_torchrun_with_two_processes_matches_one_and_writes_one_model(tmp_path, demo_model):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "embedcli", "train", str(DEMO), "--config", str(DEMO_CONFIG), "--out", "model", "--quiet",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode()
    assert [path.name for path in tmp_path.iterdir()] == ["model"]
    summaries = [line for line in result.stderr.decode().splitlines() if line.startswith("trained ")]
    assert len(summaries) == 1  # rank 0 reports; the other rank stays quiet

    training = json.loads((tmp_path / "model" / "config.json").read_text())["training"]
    assert training["processes"] == 2 and training["communication"]["merges"] >= 5
    assert abs(_accuracy(tmp_path / "model") - _accuracy(demo_model)) <= 0.05


def test_four_processes_at_the_defaults_keep_the_quality(tmp_path):
    """The README's torchrun command: more than two ranks' summed changes once overshot every frequent row."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "4",
        "-m", "embedcli", "train", str(DEMO), "--out", "model", "--quiet",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode()
    assert _accuracy(tmp_path / "model") >= 0.9  # it was 0.08


def test_a_rank_that_dies_stops_the_other_with_a_clear_line(tmp_path):
    ranks = _ranks("train", DEMO, "--config", DEMO_CONFIG, "--out", "model", "--quiet", "--timeout", "10",
                   "--checkpoint-every", "0.004", cwd=tmp_path)
    _wait_for(tmp_path / "model" / ".checkpoint" / "state.json", ranks)
    ranks[1].kill()
    _, stderr = ranks[0].communicate(timeout=120)
    lines = stderr.decode().strip().splitlines()
    assert ranks[0].returncode == 1, stderr.decode()
    assert len(lines) == 1 and "lost the others" in lines[0], lines


def test_signalled_ranks_checkpoint_and_resume_with_the_same_number(tmp_path, demo_model):
    args = ["train", DEMO, "--config", DEMO_CONFIG, "--out", "model", "--quiet", "--checkpoint-every", "0.004"]
    ranks = _ranks(*args, cwd=tmp_path)
    _wait_for(tmp_path / "model" / ".checkpoint" / "state.json", ranks)
    ranks[1].send_signal(signal.SIGTERM)  # one rank is told; the meeting tells the other
    codes = [rank.wait(timeout=120) for rank in ranks]
    errors = [rank.communicate()[1].decode() for rank in ranks]
    assert codes == [143, 143], errors
    assert not (tmp_path / "model" / "config.json").exists()
    # one line for the run, from process 0, naming the way to resume: torchrun, not plain embedcli
    assert "torchrun with the same 2 processes and -m embedcli train --resume model" in errors[0], errors
    assert "stopped by" not in errors[1], errors

    alone = run_cli("train", "--resume", tmp_path / "model")
    assert alone.code == 2 and "same number" in alone.stderr

    ranks = _ranks("train", "--resume", "model", "--quiet", cwd=tmp_path)
    assert [rank.wait(timeout=300) for rank in ranks] == [0, 0], [rank.communicate()[1].decode() for rank in ranks]
    assert abs(_accuracy(tmp_path / "model") - _accuracy(demo_model)) <= 0.05
