"""Deployment costs of a PyTorch model: parameters, serialized size, latency,
throughput and peak memory, on CPU and on CUDA when present.

The numbers feed :func:`kdmetrics.compare` as a cost table
(:meth:`ModelProfile.costs`).
"""

from __future__ import annotations

import copy
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from kdmetrics.errors import InvalidArgumentError

MB = 1e6  # megabytes are 10**6 bytes


@dataclass
class ModelProfile:
    """What :func:`profile_model` measured.

    ``timings`` has one row per (device, batch size): ``batch_ms_median``,
    ``batch_ms_q25``, ``batch_ms_q75`` (one forward pass of the batch),
    ``latency_ms_median`` and ``latency_ms_iqr`` (per example: the batch time
    divided by the batch size), ``throughput_per_s`` (examples per second at
    the median). ``peak_mem_mb`` maps device to the peak memory of one forward
    pass at the largest batch size, measured as ``peak_mem_method`` says.
    """

    params: int
    nonzero_params: int
    size_mb: float
    timings: pd.DataFrame
    peak_mem_mb: dict[str, float]
    peak_mem_method: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def costs(self, device: str = "cpu", batch_size: int | None = None) -> dict[str, float]:
        """A cost-table row: ``latency_ms`` per example at ``batch_size`` (the
        smallest profiled by default), ``size_mb``, ``peak_mem_mb``, ``params``."""
        t = self.timings[self.timings["device"] == device]
        if not len(t):
            raise InvalidArgumentError(
                f"ModelProfile.costs: no timings on {device!r}; profiled: "
                f"{sorted(set(self.timings['device']))}"
            )
        b = int(t["batch_size"].min()) if batch_size is None else batch_size
        row = t[t["batch_size"] == b]
        if not len(row):
            raise InvalidArgumentError(
                f"ModelProfile.costs: batch size {b} was not profiled; profiled: "
                f"{sorted(t['batch_size'])}"
            )
        return {
            "latency_ms": float(row["latency_ms_median"].iloc[0]),
            "size_mb": self.size_mb,
            "peak_mem_mb": float(self.peak_mem_mb.get(device, np.nan)),
            "params": float(self.params),
        }


def _count(state: Any) -> tuple[int, int]:
    """(elements, nonzero elements) of the tensors in a state dict, packed
    quantized weights included (they are not ``parameters()``)."""
    total = nonzero = 0
    if isinstance(state, torch.Tensor):
        t = state.dequantize() if state.is_quantized else state
        # 0-d tensors are quantization scales and zero points, not weights.
        if t.dim() > 0 and (t.is_floating_point() or t.is_complex()):
            return t.numel(), int(torch.count_nonzero(t))
        return 0, 0  # integer buffers (counters), not weights
    if isinstance(state, (tuple, list)):
        for s in state:
            a, b = _count(s)
            total, nonzero = total + a, nonzero + b
    elif isinstance(state, dict):
        for s in state.values():
            a, b = _count(s)
            total, nonzero = total + a, nonzero + b
    elif hasattr(state, "__getstate__") and type(state).__module__.startswith("torch"):
        try:
            return _count(state.__getstate__())
        except (RuntimeError, TypeError):
            return 0, 0
    return total, nonzero


def _batch(example: Any, size: int) -> Any:
    """``size`` rows of ``example`` (a tensor, or a tuple/list of tensors),
    repeating rows when the example holds fewer."""
    if isinstance(example, (tuple, list)):
        return type(example)(_batch(e, size) for e in example)
    n = example.shape[0]
    if n >= size:
        return example[:size]
    reps = -(-size // n)
    return example.repeat(reps, *([1] * (example.dim() - 1)))[:size]


def _to(x: Any, device: torch.device) -> Any:
    if isinstance(x, (tuple, list)):
        return type(x)(_to(e, device) for e in x)
    return x.to(device)


def _call(model: torch.nn.Module, x: Any) -> Any:
    return model(*x) if isinstance(x, (tuple, list)) else model(x)


def _cpu_peak(model: torch.nn.Module, x: Any) -> tuple[float, str]:
    """Peak bytes of tensor storages alive at once during one forward pass
    (:mod:`kdmetrics.kd.tensor_memory`): the CPU counterpart of CUDA's
    allocated-memory peak, exact and repeatable."""
    from kdmetrics.kd.tensor_memory import peak_tensor_bytes

    with torch.inference_mode():
        peak = peak_tensor_bytes(lambda: _call(model, x))
    return peak / MB, (
        "tensor storages alive at once during the pass (counted per operator; "
        "not memory an operator frees before returning, nor allocator overhead)"
    )


def _cuda_peak(model: torch.nn.Module, x: Any, device: torch.device) -> tuple[float, str]:
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode():
        _call(model, x)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    return (peak - base) / MB, "torch.cuda.max_memory_allocated minus memory allocated before"


def _time(model, x, device: torch.device, warmup: int, repeats: int) -> np.ndarray:
    cuda = device.type == "cuda"
    out = np.empty(repeats)
    with torch.inference_mode():
        for _ in range(warmup):
            _call(model, x)
        if cuda:
            torch.cuda.synchronize(device)
        for r in range(repeats):
            t0 = time.perf_counter()
            _call(model, x)
            if cuda:
                torch.cuda.synchronize(device)
            out[r] = time.perf_counter() - t0
    return out * 1e3


def profile_model(
    model: torch.nn.Module,
    example_batch: Any,
    *,
    batch_sizes: Sequence[int] = (1, 32),
    warmup: int = 5,
    repeats: int = 30,
    device: str | Sequence[str] | None = None,
    num_threads: int | None = None,
) -> ModelProfile:
    """Measures a model's deployment costs.

    Parameters
    ----------
    model : the module (left unchanged: CUDA runs use a deep copy; the
        train/eval flag is restored).
    example_batch : a tensor (or tuple of tensors) of inputs, first dimension
        the batch; rows are repeated when a batch size needs more.
    batch_sizes : batch sizes to time.
    warmup, repeats : untimed then timed forward passes per batch size; the
        median and the quartiles of the timed ones are reported.
    device : ``"cpu"``, ``"cuda"`` or a list; by default CPU, and CUDA too when
        available and the model can run there (dynamically quantized models
        are CPU-only: skipped with a note).
    num_threads : CPU threads of PyTorch while profiling (restored after);
        ``1`` gives steadier single-stream latencies on a busy machine.

    Returns
    -------
    ModelProfile: ``params`` (elements of every floating-point tensor of the
    state dict with at least one dimension, packed quantized weights included;
    pruning masks are not weights: make pruning permanent first),
    ``nonzero_params``,
    ``size_mb`` (``torch.save`` of the state dict to memory, 10**6 bytes),
    ``timings`` (latency per example and throughput per batch size: median and
    interquartile range), ``peak_mem_mb`` per device (CUDA:
    ``torch.cuda.max_memory_allocated`` above what was allocated before the
    pass; CPU: the bytes of tensor storages alive at once during one pass,
    counted operator by operator, the same quantity without an allocator's
    count). Run on an idle machine: timings on a shared one are noisy.
    """
    func = "profile_model"
    if not isinstance(model, torch.nn.Module):
        raise InvalidArgumentError(
            f"{func}: model must be a torch.nn.Module, got {type(model).__name__}"
        )
    sizes = [int(b) for b in batch_sizes]
    if not sizes or any(b < 1 for b in sizes):
        raise InvalidArgumentError(
            f"{func}: batch_sizes must be positive integers, got {batch_sizes!r}"
        )
    if int(warmup) < 0 or int(repeats) < 1:
        raise InvalidArgumentError(
            f"{func}: need warmup >= 0 and repeats >= 1, got {warmup}, {repeats}"
        )
    first = example_batch[0] if isinstance(example_batch, (tuple, list)) else example_batch
    if not isinstance(first, torch.Tensor) or first.dim() < 1 or first.shape[0] < 1:
        raise InvalidArgumentError(
            f"{func}: example_batch must be a tensor (or tuple) with >= 1 row"
        )
    quantized = any("quantized" in type(m).__module__ for m in model.modules())
    notes: list[str] = []
    if device is None:
        devices = ["cpu"]
        if torch.cuda.is_available():
            if quantized:
                notes.append("dynamically quantized modules run on CPU only: CUDA not profiled")
            else:
                devices.append("cuda")
    else:
        devices = [device] if isinstance(device, str) else list(device)
    for d in devices:
        if torch.device(d).type == "cuda" and not torch.cuda.is_available():
            raise InvalidArgumentError(f"{func}: device {d!r} requested but CUDA is not available")
        if torch.device(d).type not in ("cpu", "cuda"):
            raise InvalidArgumentError(f"{func}: device must be 'cpu' or 'cuda', got {d!r}")

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    params, nonzero = _count(model.state_dict())
    was_training = model.training
    threads = torch.get_num_threads()
    if num_threads is not None:
        if int(num_threads) < 1:
            raise InvalidArgumentError(f"{func}: num_threads must be >= 1, got {num_threads}")
        torch.set_num_threads(int(num_threads))
    rows, peak, method = [], {}, {}
    try:
        for d in devices:
            dev = torch.device(d)
            m = model if dev.type == "cpu" else copy.deepcopy(model).to(dev)
            m.eval()
            for b in sizes:
                x = _to(_batch(example_batch, b), dev)
                ms = _time(m, x, dev, int(warmup), int(repeats))
                q25, med, q75 = np.quantile(ms, [0.25, 0.5, 0.75])
                rows.append(
                    {
                        "device": dev.type if dev.index is None else str(dev),
                        "batch_size": b,
                        "batch_ms_median": med,
                        "batch_ms_q25": q25,
                        "batch_ms_q75": q75,
                        "latency_ms_median": med / b,
                        "latency_ms_iqr": (q75 - q25) / b,
                        "throughput_per_s": b / (med / 1e3),
                        "repeats": int(repeats),
                    }
                )
            x = _to(_batch(example_batch, max(sizes)), dev)
            key = rows[-1]["device"]
            if dev.type == "cuda":
                peak[key], method[key] = _cuda_peak(m, x, dev)
            else:
                peak[key], method[key] = _cpu_peak(m, x)
    finally:
        model.train(was_training)
        torch.set_num_threads(threads)
    return ModelProfile(
        params=params,
        nonzero_params=nonzero,
        size_mb=buf.getbuffer().nbytes / MB,
        timings=pd.DataFrame(rows),
        peak_mem_mb=peak,
        peak_mem_method=method,
        notes=notes,
    )
