"""The CUDA context made early for `embedcli train`: which command lines start it, and that it is let go."""

import pytest

from embedcli import cuda_start


@pytest.mark.parametrize(
    ("argv", "index"),
    [
        (["embedcli", "train", "corpus.txt"], 0),  # auto: device 0 where CUDA is present
        (["embedcli", "--debug", "train", "corpus.txt", "--device", "cuda"], 0),
        (["embedcli", "train", "corpus.txt", "--device", "cuda:2"], 2),
        (["embedcli", "train", "corpus.txt", "--device=cuda:1"], 1),
        (["embedcli", "train", "--resume", "model"], 0),
        (["embedcli", "train", "corpus.txt", "--device", "cpu"], None),
        (["embedcli", "train", "--help"], None),
        (["embedcli", "lookup", "train"], None),  # "train" as a word to look up, not the command
        (["embedcli", "export", "--format", "npy"], None),
        (["embedcli"], None),
    ],
)
def test_only_a_training_on_cuda_starts_the_context(argv, index):
    assert cuda_start._cuda_index(argv) == index


def test_torchrun_processes_are_left_alone(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert cuda_start._cuda_index(["embedcli", "train", "corpus.txt"]) is None


def test_the_context_is_let_go_where_it_was_made_or_not(monkeypatch):
    monkeypatch.setattr(cuda_start, "_thread", None)
    monkeypatch.setattr(cuda_start, "_held", None)
    cuda_start.start_early(["embedcli", "train", "corpus.txt"])
    assert cuda_start._thread is not None  # started: on a machine without the NVIDIA driver it holds nothing
    cuda_start.release()
    assert cuda_start._held is None and not cuda_start._thread.is_alive()
    cuda_start.release()  # a second release is harmless
