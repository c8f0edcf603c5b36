"""Create the CUDA context of a training's GPU while Python is still loading PyTorch.

A process's first CUDA call creates the device's context: 0.12 s on the H100s measured, which
a fresh ``embedcli train`` otherwise spends after reading its corpus, before its first step
(benchmarks/RESULTS.md, "GPU, 2026-11-27, three leases"). The driver does it without Python's
lock (ctypes releases it), so begun in a thread as the command starts, it overlaps the seconds
of importing torch. PyTorch then finds the context made: a device's primary context is one per
process, and the driver counts who holds it.

Only the driver library (libcuda) is touched here, never torch; on a machine without it,
or for a command that does not train on CUDA, nothing happens.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import threading

_held: tuple[ctypes.CDLL, int] | None = None  # the driver and the device whose context this module holds
_thread: threading.Thread | None = None


def start_early(argv: list[str]) -> None:
    """Begin creating the context for ``argv`` (the command line) when it trains on CUDA."""
    global _thread
    index = _cuda_index(argv)
    if index is None or _thread is not None:
        return
    _thread = threading.Thread(target=_retain, args=(index,), daemon=True, name="embedcli-cuda-start")
    _thread.start()
    atexit.register(_thread.join, 10)  # not exiting while the driver is inside the call


def release() -> None:
    """Give back this module's hold on the context, once made: by now torch holds its own on the
    device it trains on, and a run on the CPU (or another device) needs none."""
    global _held
    if _thread is not None:
        _thread.join()
    if _held is not None:
        driver, device = _held
        _held = None
        getattr(driver, "cuDevicePrimaryCtxRelease_v2", driver.cuDevicePrimaryCtxRelease)(device)


def _cuda_index(argv: list[str]) -> int | None:
    """The CUDA device ``embedcli train ...`` would use; None for another command or device.

    ``--device`` on the command line decides; without it (auto, or set in a config file or a
    resumed run's settings) device 0 is the likely one, and :func:`release` gives it back if not.
    torchrun's processes pick their devices otherwise and are left alone.
    """
    if "LOCAL_RANK" in os.environ:
        return None
    words = argv[1:]
    command = next((word for word in words if not word.startswith("-")), None)
    if command != "train" or "--help" in words or "-h" in words:
        return None
    device = "auto"
    for position, word in enumerate(words):
        if word == "--device" and position + 1 < len(words):
            device = words[position + 1]
        elif word.startswith("--device="):
            device = word.split("=", 1)[1]
    if device in ("auto", "cuda"):
        return 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    return None


def _retain(index: int) -> None:
    global _held
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:  # no NVIDIA driver here
        return
    device, context, count = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_int()
    if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0 or index >= count.value:
        return
    if driver.cuDeviceGet(ctypes.byref(device), index) != 0:
        return
    if driver.cuDevicePrimaryCtxRetain(ctypes.byref(context), device) == 0:
        _held = (driver, device.value)
