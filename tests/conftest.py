"""Shared fixtures: the real CLI as a subprocess, and one demo model trained per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo.txt"
DEMO_ANALOGIES = ROOT / "data" / "demo-analogies.txt"
DEMO_CONFIG = ROOT / "configs" / "demo.toml"
SHARED_CORPORA = ROOT.parent / "shared" / "corpora"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(
    *args: str,
    input: bytes | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
    env: dict[str, str | None] | None = None,
    prefix: Sequence[str] = (),
) -> Result:
    """Run ``python -m embedcli ARGS`` and return its exit code and output.

    ``env`` changes the environment (a value of None removes the variable); ``prefix`` runs the
    command through another one, such as ``setpriv`` to run it as another user.
    """
    environment = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    process = subprocess.run(
        [*prefix, sys.executable, "-m", "embedcli", *map(str, args)],
        input=input if input is not None else b"",
        capture_output=True,
        cwd=cwd,
        env=environment,
        timeout=timeout,
        check=False,
    )
    return Result(
        process.returncode,
        process.stdout.decode("utf-8", errors="backslashreplace"),
        process.stderr.decode("utf-8", errors="backslashreplace"),
    )


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory) -> Path:
    """A model trained on the demo corpus with the demo config, through the CLI."""
    out = tmp_path_factory.mktemp("demo") / "embeddings"
    result = run_cli("train", DEMO, "--config", DEMO_CONFIG, "--out", out, "--quiet")
    assert result.code == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """A small corpus (the demo's first 20,000 lines) for tests that only need something trained."""
    path = tmp_path_factory.mktemp("small") / "small.txt"
    with open(DEMO, encoding="utf-8") as source:
        path.write_text("".join(line for _, line in zip(range(20000), source)), encoding="utf-8")
    return path
