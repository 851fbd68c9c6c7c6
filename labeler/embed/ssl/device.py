"""Where and how SimCLR runs: the device, the autocast precision, and how many CPU threads.

Measured on this project's 2-core Xeon (AMX, AVX-512 bf16) at 32 px: bf16 autocast + channels_last is about 3x
float32. When other processes keep the cores busy, fewer torch threads can be several times faster (see
:class:`ThreadChooser`).
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch


def select_device(preference: str = "auto") -> torch.device:
    """``cuda`` when a GPU is available and ``preference`` is "auto" or "cuda", else ``cpu``."""
    if preference not in {"auto", "cpu", "cuda"}:
        raise ValueError(f"device must be auto, cpu or cuda, got {preference!r}")
    if preference != "cpu" and torch.cuda.is_available():
        return torch.device("cuda")
    if preference == "cuda":
        warnings.warn("device='cuda' asked for but no GPU is available; using the CPU", RuntimeWarning, stacklevel=2)
    return torch.device("cpu")


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where the hardware runs it natively (CUDA with bf16, CPUs with AVX-512 bf16/AMX), else fp16 on older
    GPUs, else None (float32)."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return None


# torch 2.14.1 on an AVX2 CPU (AMD EPYC, no AVX-512): the backward pass of a channels_last 1x1 stride-2 convolution
# with 2 to 7 input channels corrupts the heap (glibc aborts the process, or it hangs). Measured there: 1 and 8 to 64
# channels are fine, and channels_last trains a width-32 encoder about 1.3x faster than contiguous float32.
MIN_CPU_CHANNELS_LAST = 8


def training_memory_format(device: torch.device, narrowest_channels: int) -> torch.memory_format:
    """channels_last (faster with oneDNN and on tensor cores) unless training on the CPU a network whose narrowest
    strided convolution has fewer than ``MIN_CPU_CHANNELS_LAST`` input channels, where contiguous is what is safe."""
    if device.type == "cpu" and narrowest_channels < MIN_CPU_CHANNELS_LAST:
        return torch.contiguous_format
    return torch.channels_last


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def cpu_threads(device: torch.device) -> Iterator[None]:
    """Use every core this process may run on (torch's default can be fewer under cgroups); restore afterwards."""
    before = torch.get_num_threads()
    if device.type == "cpu" and hasattr(os, "sched_getaffinity"):
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ThreadChooser:
    """Keeps the fastest CPU thread count, re-measured now and then.

    When other processes keep the cores busy (the app's own UI, tests, a browser), fewer torch threads can be
    several times faster: measured here on 2 busy cores, 1 thread ran 331 views/s and 2 threads 94, because OpenMP
    workers wait at every barrier for a sibling the OS has descheduled. So each candidate count is timed for a few
    steps (after one warm-up step) every ``every_s`` seconds and the fastest is kept.
    """

    def __init__(self, candidates: Sequence[int], probe_steps: int = 3, every_s: float = 60.0) -> None:
        self.candidates = list(dict.fromkeys(candidates))
        self.probe_steps = probe_steps
        self.every_s = every_s
        self.best = self.candidates[0]
        self.queue = list(self.candidates) if len(self.candidates) > 1 else []
        self.samples: list[float] = []
        self.seconds: dict[int, float] = {}
        self.next_probe = math.inf

    def threads(self) -> int:
        return self.queue[0] if self.queue else self.best

    def record(self, step_seconds: float, now: float) -> None:
        if not self.queue:
            if now >= self.next_probe:
                self.queue, self.samples = list(self.candidates), []
            return
        self.samples.append(step_seconds)
        if len(self.samples) > self.probe_steps:
            self.seconds[self.queue.pop(0)] = float(np.median(self.samples[1:]))
            self.samples = []
            if not self.queue:
                self.best = min(self.seconds, key=lambda n: self.seconds[n])
                self.next_probe = now + self.every_s


def thread_candidates(device: torch.device) -> list[int]:
    """Thread counts worth trying: all cores, half, one (just the current count off the CPU)."""
    if device.type != "cpu":
        return [torch.get_num_threads()]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return sorted({cores, max(1, cores // 2), 1}, reverse=True)
