"""How many CPU threads fhsdk's compute uses: one knob for every pool in the process.

A pipeline runs PyTorch (intra-op and inter-op pools), ONNX Runtime sessions (one pool each), OpenCV's
pool, NumPy's BLAS (OpenBLAS; the tracker's and alignment's matrix products) and fhsdk's own C++ kernels. Left at their defaults each sizes itself to every core and spins
while it waits, so on a host that also runs decoders, a database or other pipelines they fight each
other and the other work: on a busy 2-core host one frame took 25-35x longer with PyTorch's default
threads than with one (issue 15; `benchmarks/busy_host.py` measures it, docs/RESULTS.md has the table).

DEFAULT_THREADS is what that benchmark chose: the setting whose fps holds up when other processes
keep the cores busy. Override it per process with `Pipeline(threads=N)`, `fhsdk run --threads N`, a
benchmark's `--threads N` or the FHSDK_NUM_THREADS environment variable. For N cameras in one process
on C cores, give each camera's pipeline about C / N threads (at least 1): the torch, OpenCV and kernel
pools are per process, so the last pipeline built sets them for all; ONNX Runtime sessions take the
value current when they are built.
"""

from __future__ import annotations

import numbers
import os

import cv2
import threadpoolctl
import torch

from fhsdk.errors import ConfigError

DEFAULT_THREADS = 1  # benchmarks/busy_host.py: 1 thread keeps its idle fps under load, more collapse
ENV = "FHSDK_NUM_THREADS"  # also read by fhsdk's C++ kernels (csrc/ops/cpu/parallel.h)
MAX_THREADS = 1024

_current: int | None = None


def default_threads() -> int:
    """FHSDK_NUM_THREADS if it is set to a positive integer, else DEFAULT_THREADS."""
    text = os.environ.get(ENV, "").strip()
    if text:
        return check(int(text) if text.isdigit() else text, f"{ENV}")
    return DEFAULT_THREADS


def check(threads, what: str = "threads") -> int:
    """`threads` as an int in [1, MAX_THREADS], or a ConfigError saying what to use."""
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or not 1 <= threads <= MAX_THREADS:
        raise ConfigError(
            f"{what}={threads!r} is invalid: use an integer from 1 to {MAX_THREADS} "
            f"(1 holds up best on a busy host; about cores / cameras on a dedicated one)"
        )
    return int(threads)


def current() -> int:
    """The thread count last applied in this process (the default if none was)."""
    return _current if _current is not None else default_threads()


def apply(threads: int | None = None) -> int:
    """Size every CPU pool of this process to `threads` (None: default_threads()); returns the count."""
    global _current
    threads = default_threads() if threads is None else check(threads)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # settable once, before any inter-op work; the intra-op pool is the one that matters
        pass
    cv2.setNumThreads(threads)
    threadpoolctl.threadpool_limits(threads, user_api="blas")  # NumPy's BLAS: stays set until changed again
    os.environ[ENV] = str(threads)  # fhsdk's kernels read it at each call
    _current = threads
    return threads
