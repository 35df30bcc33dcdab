"""Data sets and the seeded, world-size-independent batch order."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class FeatureDataset(Dataset):
    """Feature vectors with labels: yields ``(x float32, y int64, index int64)``.

    ``index`` is the example's position in this data set; the training loop
    fetches teacher rows by it (never by batch position). ``ids`` default to
    the positions.
    """

    def __init__(self, features: np.ndarray, labels: np.ndarray, ids: np.ndarray | None = None):
        x = np.asarray(features)
        y = np.asarray(labels)
        if x.ndim != 2:
            raise ValueError(f"FeatureDataset: features must be 2-D, got shape {x.shape}")
        if y.shape != (x.shape[0],) or y.dtype.kind not in "iu":
            raise ValueError(
                f"FeatureDataset: labels must be {x.shape[0]} integers, got {y.shape} {y.dtype}"
            )
        self.features = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
        self.labels = torch.as_tensor(y.astype(np.int64))
        self.ids = np.arange(x.shape[0]) if ids is None else np.asarray(ids)
        if self.ids.shape != (x.shape[0],):
            raise ValueError(
                f"FeatureDataset: ids must have shape ({x.shape[0]},), got {self.ids.shape}"
            )

    @classmethod
    def from_npz(cls, path: str | os.PathLike[str]) -> FeatureDataset:
        """Reads ``features``, ``labels`` and (optional) ``ids`` from an ``.npz``."""
        p = os.fspath(path)
        if not os.path.exists(p):
            raise ValueError(f"FeatureDataset.from_npz: {p}: no such file")
        with np.load(p, allow_pickle=False) as npz:
            missing = [k for k in ("features", "labels") if k not in npz.files]
            if missing:
                raise ValueError(
                    f"FeatureDataset.from_npz: {p}: missing key(s) {missing}; "
                    f"found {sorted(npz.files)}"
                )
            return cls(npz["features"], npz["labels"], npz["ids"] if "ids" in npz.files else None)

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.features[i], self.labels[i], torch.tensor(i, dtype=torch.int64)


def dataset_labels(dataset: Any) -> np.ndarray:
    """The labels of a data set: its ``labels`` attribute, else read item by item."""
    labels = getattr(dataset, "labels", None)
    if labels is not None:
        return np.asarray(
            labels.cpu() if isinstance(labels, torch.Tensor) else labels, dtype=np.int64
        )
    return np.asarray([int(dataset[i][1]) for i in range(len(dataset))], dtype=np.int64)


def dataset_ids(dataset: Any) -> np.ndarray:
    ids = getattr(dataset, "ids", None)
    return np.arange(len(dataset)) if ids is None else np.asarray(ids)


class EpochBatchSampler(Sampler[list[int]]):
    """Seeded global batches, sharded across data-parallel ranks.

    Epoch ``e``'s order is ``torch.randperm(N)`` from a generator seeded with
    ``seed + e`` (DistributedSampler's rule), cut into *global* batches of
    ``batch_size``; rank ``r`` of ``world`` takes its contiguous share of each
    global batch. So every optimizer step sees the same examples whatever the
    number of processes (DistributedSampler strides the permutation across
    ranks, so a 2-GPU run would see different batches from a 1-GPU run). The
    order depends only on ``(seed, epoch)``, never on the loss, so the vanilla
    and distilled arms see the same batches, and a resumed run continues with
    the same ones. A last global batch smaller than ``world`` is topped up from
    the start of the permutation so no rank gets an empty batch.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        seed: int,
        shuffle: bool = True,
        rank: int = 0,
        world: int = 1,
    ):
        if batch_size < world:
            raise ValueError(
                f"batch_size ({batch_size}) must be >= the number of processes ({world})"
            )
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.rank, self.world, self.epoch = rank, world, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(self.n, generator=g)

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        perm = self.order()
        for start in range(0, self.n, self.batch_size):
            batch = perm[start : start + self.batch_size]
            if batch.shape[0] < self.world:
                batch = torch.cat([batch, perm[: self.world - batch.shape[0]]])
            yield torch.tensor_split(batch, self.world)[self.rank].tolist()
