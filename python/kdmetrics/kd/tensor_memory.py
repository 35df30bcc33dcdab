"""Peak tensor memory of a piece of PyTorch work on the CPU.

CUDA has ``torch.cuda.max_memory_allocated``; the CPU allocator keeps no such
count, and the process's resident-set high-water mark does not move when the
allocator reuses memory it already holds (so small models read as 0). This
counts instead every tensor storage an operator creates while the work runs,
from creation until it is freed (a weak reference tells), and keeps the
maximum of the bytes alive at once: activations, temporaries that pass
between operators, and the output. Memory an operator uses internally and
frees before returning is not seen, nor the allocator's own overhead; views
and in-place results share a storage that already exists and add nothing.
Exact and repeatable: the same model and input give the same number.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode


class _LiveStorageBytes(TorchDispatchMode):
    """Counts the bytes of the storages created under the mode while they live."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        # id(storage) -> finalizer, for storages created under the mode.
        self._tracked: dict[int, weakref.finalize] = {}

    def _freed(self, key: int, nbytes: int) -> None:
        self._tracked.pop(key, None)
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        existing = {
            id(_storage(t))
            for t in pytree.tree_leaves((args, kwargs))
            if isinstance(t, torch.Tensor) and _storage(t) is not None
        }
        for t in pytree.tree_leaves(out):
            if not isinstance(t, torch.Tensor) or t.device.type != "cpu":
                continue
            st = _storage(t)
            if st is None or id(st) in existing or id(st) in self._tracked:
                continue  # a view or in-place result, or already counted
            nbytes = st.nbytes()
            key = id(st)
            self._tracked[key] = weakref.finalize(st, self._freed, key, nbytes)
            self.live += nbytes
            self.peak = max(self.peak, self.live)
        return out


def _storage(t: torch.Tensor) -> Any:
    """The tensor's storage object, or None for layouts without one (sparse
    and opaque tensors such as MKL-DNN's raise NotImplementedError: their
    bytes are not counted)."""
    try:
        return t.untyped_storage()
    except NotImplementedError:
        return None


def peak_tensor_bytes(work: Callable[[], Any]) -> int:
    """Runs ``work()`` and returns the peak number of bytes held at once by
    tensor storages created during it (see the module note). The result of
    ``work`` is dropped after the count."""
    mode = _LiveStorageBytes()
    with mode:
        out = work()
    peak = mode.peak
    del out
    return peak
