"""Data sets, the batch protocol of the training loop, and the seeded batch order.

**The data-set protocol** (:func:`kdmetrics.kd.train`, :func:`predict_logits`).
A data set is anything with ``__len__`` and ``__getitem__(i)`` whose items are

- ``(x, y)``: model input and integer label (e.g. ``TensorDataset(x, y)``);
- ``(x, y, index)``: as above, where ``index`` must equal ``i`` (older
  kdmetrics data sets; the loop checks it and otherwise ignores it);
- a dict (Hugging Face style) holding the label under ``labels`` (or
  ``label``); every other entry is a model input, passed as keyword arguments
  (``model(**inputs)``).

The loop adds every example's position itself (:class:`IndexedDataset`), so a
data set need not know its indices: teacher rows are fetched by that position
(never by batch counter), which is right under any shuffling.

Optional attributes, read when present:

- ``ids`` (N): example identifiers. Cached teacher files are checked against
  them (same ids, same order) before training; without ``ids`` the positions
  ``0..N-1`` are the ids, and a teacher file must then carry those.
  Prediction files store them.
- ``labels`` (N): all labels at once; without it the loop reads them item by
  item once.

Items are batched by ``collate_fn`` (default: ``torch.utils.data.default_collate``;
pass e.g. ``transformers.DataCollatorWithPadding(tokenizer)`` for variable-length
text).

**The model** maps a batch's inputs to logits (B, K): it may return a
tensor, a dict with ``logits`` or a Hugging Face ``ModelOutput``
(:func:`output_logits`).
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, default_collate

from kdmetrics.errors import InvalidArgumentError, ShapeError

LABEL_KEYS = ("labels", "label")


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
            raise ShapeError(f"FeatureDataset: features must be 2-D, got shape {x.shape}")
        if y.shape != (x.shape[0],) or y.dtype.kind not in "iu":
            raise ShapeError(
                f"FeatureDataset: labels must be {x.shape[0]} integers, got {y.shape} {y.dtype}"
            )
        self.features = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
        self.labels = torch.as_tensor(y.astype(np.int64))
        self.ids = np.arange(x.shape[0]) if ids is None else np.asarray(ids)
        if self.ids.shape != (x.shape[0],):
            raise ShapeError(
                f"FeatureDataset: ids must have shape ({x.shape[0]},), got {self.ids.shape}"
            )

    @classmethod
    def from_npz(cls, path: str | os.PathLike[str]) -> FeatureDataset:
        """Reads ``features``, ``labels`` and (optional) ``ids`` from an ``.npz``."""
        func = "FeatureDataset.from_npz"
        p = os.fspath(path)
        if not os.path.exists(p):
            raise InvalidArgumentError(f"{func}: {p}: no such file")
        if os.path.isdir(p):
            raise InvalidArgumentError(f"{func}: {p}: is a directory, not an .npz file")
        try:
            # A damaged member fails its CRC check when read whole, here.
            with zipfile.ZipFile(p) as zf:
                names = {n[: -len(".npy")] for n in zf.namelist() if n.endswith(".npy")}
            missing = [k for k in ("features", "labels") if k not in names]
            if missing:
                raise InvalidArgumentError(
                    f"{func}: {p}: missing key(s) {missing}; found {sorted(names)}"
                )
            with np.load(p, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in ("features", "labels", "ids") if k in names}
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            if str(e).startswith(func):
                raise
            raise InvalidArgumentError(f"{func}: {p}: not a readable .npz file ({e})") from None
        return cls(arrays["features"], arrays["labels"], arrays.get("ids"))

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.features[i], self.labels[i], torch.tensor(i, dtype=torch.int64)


def _item_label(func: str, item: Any, i: int) -> Any:
    if isinstance(item, Mapping):
        for key in LABEL_KEYS:
            if key in item:
                return item[key]
        raise InvalidArgumentError(
            f"{func}: item {i} is a dict without a label; it needs one of {LABEL_KEYS}, "
            f"has {sorted(item)}"
        )
    if isinstance(item, (tuple, list)) and len(item) in (2, 3):
        return item[1]
    raise InvalidArgumentError(
        f"{func}: item {i} is a {type(item).__name__}; a data set must yield (x, y), "
        "(x, y, index) or a dict with 'labels'"
    )


def dataset_labels(dataset: Any, func: str = "dataset_labels") -> np.ndarray:
    """The labels of a data set (int64): its ``labels`` attribute, else read item by item."""
    labels = getattr(dataset, "labels", None)
    if labels is None:
        labels = [_item_label(func, dataset[i], i) for i in range(len(dataset))]
        labels = [v.item() if isinstance(v, torch.Tensor) else v for v in labels]
    elif isinstance(labels, torch.Tensor):
        labels = labels.cpu()
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != len(dataset) or arr.dtype.kind not in "iu":
        raise ShapeError(
            f"{func}: labels must be {len(dataset)} integers, got shape {arr.shape} "
            f"dtype {arr.dtype}"
        )
    return arr.astype(np.int64)


def dataset_ids(dataset: Any) -> np.ndarray:
    """A data set's ``ids`` attribute, else the positions ``0..N-1``."""
    ids = getattr(dataset, "ids", None)
    if ids is None:
        return np.arange(len(dataset))
    arr = np.asarray(ids.cpu() if isinstance(ids, torch.Tensor) else ids)
    if arr.shape != (len(dataset),):
        raise ShapeError(
            f"dataset_ids: the data set's ids must have shape ({len(dataset)},), got {arr.shape}"
        )
    return arr


class IndexedDataset(Dataset):
    """Yields ``(i, dataset[i])``: the loop's own example positions."""

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[int, Any]:
        return int(i), self.dataset[i]


class IndexedCollate:
    """Collates ``(i, item)`` pairs into ``(positions, collate_fn(items))``.

    A class rather than a closure so data-loader workers can pickle it.
    """

    def __init__(self, collate_fn: Callable[[list[Any]], Any] | None = None):
        self.collate_fn = collate_fn or default_collate

    def __call__(self, pairs: list[tuple[int, Any]]) -> tuple[torch.Tensor, Any]:
        positions = torch.tensor([i for i, _ in pairs], dtype=torch.int64)
        return positions, self.collate_fn([item for _, item in pairs])


def split_batch(func: str, batch: Any, positions: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """``(model inputs, labels)`` of a collated batch in any of the protocol's forms."""
    if isinstance(batch, Mapping):
        key = next((k for k in LABEL_KEYS if k in batch), None)
        if key is None:
            raise InvalidArgumentError(
                f"{func}: a dict batch needs the labels under one of {LABEL_KEYS}; "
                f"got keys {sorted(batch)}"
            )
        x: Any = {k: v for k, v in batch.items() if k != key}
        y = batch[key]
    elif isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        x, y = batch[0], batch[1]
        if len(batch) == 3:
            index = torch.as_tensor(batch[2]).reshape(-1).to(torch.int64).cpu()
            if not torch.equal(index, positions):
                bad = (
                    int((index != positions).nonzero()[0, 0])
                    if index.shape == positions.shape
                    else 0
                )
                raise InvalidArgumentError(
                    f"{func}: the data set's third item (index) {int(index[bad])} differs from "
                    f"the example's position {int(positions[bad])}; yield (x, y) and let the "
                    "loop add positions, and put identifiers in the data set's ids"
                )
    else:
        raise InvalidArgumentError(
            f"{func}: a batch must be (x, y), (x, y, index) or a dict with 'labels', "
            f"got {type(batch).__name__}"
            + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        )
    y = torch.as_tensor(y)
    if y.ndim != 1 or y.shape[0] != positions.shape[0]:
        raise ShapeError(
            f"{func}: labels must be one integer per example ({positions.shape[0]}), "
            f"got shape {tuple(y.shape)}"
        )
    return x, y


def call_model(model: Callable[..., Any], x: Any) -> Any:
    """``model(**x)`` for dict inputs (tokenizer output), else ``model(x)``."""
    return model(**x) if isinstance(x, Mapping) else model(x)


def output_logits(func: str, out: Any) -> torch.Tensor:
    """Logits from a model output: a tensor, a dict with ``logits`` or a ModelOutput."""
    z = out
    if isinstance(out, Mapping):
        z = out.get("logits")
    elif not isinstance(out, torch.Tensor):
        z = getattr(out, "logits", None)
    if not isinstance(z, torch.Tensor) or z.ndim != 2 or not z.is_floating_point():
        what = type(out).__name__
        if isinstance(z, torch.Tensor):
            what += f" with logits of shape {tuple(z.shape)} dtype {z.dtype}"
        raise InvalidArgumentError(
            f"{func}: the model returned {what}; it must return floating logits "
            "(batch, classes) as a tensor, a dict with 'logits' or a ModelOutput"
        )
    return z


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
            raise InvalidArgumentError(
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
