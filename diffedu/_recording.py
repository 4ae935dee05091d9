"""Memory for recorded trajectories: one preallocated block per trajectory, huge pages where they pay.

Measured in benchmarks/sampler_overhead.py: writing every x_t of 64 images of 3x32x32 into fresh
memory costs about twice the sampler's arithmetic, most of it page faults; asking Linux for
transparent huge pages halves that.  `diffedu.trajectory` is the only caller.

Imports: numpy, torch.  Layer base.
"""
from __future__ import annotations

import numpy as np
import torch

_NUMPY_DTYPES = {torch.float64: np.float64, torch.float32: np.float32, torch.float16: np.float16}
_HUGE_PAGE = 2 << 20  # bytes in a transparent huge page on x86-64 Linux
_NUMPY_MADVISE = 4 << 20  # numpy asks for huge pages for arrays of at least this many bytes


def empty_steps(n: int, like: torch.Tensor) -> torch.Tensor:
    """Uninitialised room for n tensors shaped like `like`, as one tensor of shape (n, *like.shape).

    A recorded trajectory is written once into memory the process has not touched before, and
    the system hands that memory out page by page.  When it needs at least one huge page (2 MiB)
    on the CPU, the room is a numpy array of at least 4 MiB, for which numpy asks Linux for
    transparent huge pages (madvise): one page fault per 2 MiB instead of one per 4 KiB, which
    roughly halves the cost of recording 64 images of 3x32x32 (benchmarks/sampler_overhead.py).
    Otherwise, and for dtypes numpy lacks, it is torch.empty.
    """
    shape = (n, *like.shape)
    numel = n * like.numel()
    if like.device.type == "cpu" and like.dtype in _NUMPY_DTYPES and numel * like.element_size() >= _HUGE_PAGE:
        flat = np.empty(max(numel, -(-_NUMPY_MADVISE // like.element_size())), dtype=_NUMPY_DTYPES[like.dtype])
        return torch.from_numpy(flat)[:numel].view(shape)
    return torch.empty(shape, dtype=like.dtype, device=like.device)


class Recorder:
    """Tensors appended one at a time and read back stacked, without a final torch.stack.

    Room for all `capacity` of them is taken when the first arrives (`empty_steps`) and each is
    copied in, so a sampler's outputs go back to the allocator after every step.  Anything that
    does not fit (another shape, dtype or device, more than `capacity`, a tensor that requires
    grad) switches to keeping the tensors themselves, joined by torch.stack when read.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.n = 0
        self.buf: torch.Tensor | None = None
        self.items: list[torch.Tensor] | None = None

    def _fits(self, t: torch.Tensor) -> bool:
        if t.requires_grad or self.n >= self.capacity:
            return False
        if self.buf is None:
            self.buf = empty_steps(self.capacity, t)
        return t.shape == self.buf.shape[1:] and t.dtype == self.buf.dtype and t.device == self.buf.device

    def append(self, t: torch.Tensor) -> None:
        if self.items is None and self._fits(t):
            self.buf[self.n].copy_(t)
        else:
            if self.items is None:
                self.items = [] if self.buf is None else list(self.buf[: self.n])
                self.buf = None
            self.items.append(t)
        self.n += 1

    def stacked(self) -> torch.Tensor:
        return torch.stack(self.items) if self.items is not None or self.buf is None else self.buf[: self.n]
