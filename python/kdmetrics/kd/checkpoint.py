"""Training checkpoints: what they hold, how they are written and read.

:func:`kdmetrics.kd.train` writes ``<out_dir>/checkpoints/latest.pt`` after
every evaluated epoch and ``best.pt`` when the selection metric improved. A
checkpoint is a dict of plain tensors and Python values (it loads with
``torch.load(weights_only=True)``: no pickled code) with the keys

``format``
    :data:`CHECKPOINT_FORMAT`;
``model``, ``optimizer``, ``scheduler``
    the state dicts (the model's without any DDP wrapper);
``step``, ``epoch``
    optimizer steps taken and epochs completed;
``rng``
    torch, CUDA, NumPy (legacy global) and Python RNG states (:func:`rng_state`);
``data_order``
    ``seed``, ``next_epoch`` and the loader generator's state;
``config``
    the resolved :class:`~kdmetrics.kd.config.TrainConfig` as plain values;
``teachers``
    per cached teacher file: ``path``, ``file_sha256``, ``ids_sha256``;
``init_sha256``
    SHA-256 of the initial weights (shared by the arms of one seed);
``best``
    ``epoch``, ``value`` and ``metrics`` of the best evaluated epoch so far;
``history``
    one record per epoch (training means, validation metrics).

Files are written to a temporary name and ``os.replace``-d, so an
interruption never leaves a half-written checkpoint.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

from kdmetrics.errors import InvalidArgumentError

CHECKPOINT_FORMAT = "kdmetrics.kd checkpoint 1"


def rng_state() -> dict[str, Any]:
    """Every RNG state a resumed run must continue (as tensors and plain values)."""
    # The legacy global NumPy RNG is what user code (augmentations) draws from:
    # checkpointed so a resumed run continues it.
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restores what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        {
            "bit_generator": "MT19937",
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file, then ``os.replace`` into place."""
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Reads a checkpoint written by :func:`kdmetrics.kd.train` (keys: module docstring)."""
    p = os.fspath(path)
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InvalidArgumentError(f"load_checkpoint: {p}: no such file") from None
    except (RuntimeError, OSError, EOFError) as e:
        raise InvalidArgumentError(
            f"load_checkpoint: {p}: not a readable checkpoint ({e})"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InvalidArgumentError(f"load_checkpoint: {p}: not a kdmetrics.kd checkpoint")
    return ckpt
