"""TEST-ONLY minimal stand-in for ``kdmetrics.kd`` (written on another branch),
implementing just the contract the demo uses. ``install()`` registers it only
when ``kdmetrics.kd`` cannot be imported. Delete this file after the merge.
"""

from __future__ import annotations

import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from kdmetrics.predictions import save_predictions


class FeatureDataset(torch.utils.data.Dataset):
    def __init__(self, features, labels, ids=None):
        self.x = torch.as_tensor(np.asarray(features, np.float32))
        self.y = torch.as_tensor(np.asarray(labels, np.int64))
        self.ids = np.arange(len(self.y)) if ids is None else np.asarray(ids)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i], i


class MLP(torch.nn.Sequential):
    def __init__(self, in_features, n_classes, hidden=(256,), dropout=0.0):
        layers, d = [], in_features
        for h in hidden:
            layers += [torch.nn.Linear(d, h), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
            d = h
        super().__init__(*layers, torch.nn.Linear(d, n_classes))


def save_teacher_logits(path, logits, ids):
    np.savez(path, logits=np.asarray(logits, np.float16), ids=np.asarray(ids))


class TeacherLogits:
    def __init__(self, logits, ids):
        self.logits, self.ids = logits, ids

    @classmethod
    def open(cls, path):
        z = np.load(path)
        return cls(z["logits"], z["ids"])


@dataclass
class TrainConfig:
    loss: str = "vanilla"
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_frac: float = 0.0
    T: float = 4.0
    alpha: float = 0.9
    seed: int = 0
    eval_every: int = 1
    device: str = "auto"
    progress: bool = True
    out_dir: str = "."
    model_name: str = "model"
    train_counts: Any = None
    extra: dict = field(default_factory=dict)


@dataclass
class TrainResult:
    model: Any
    predictions_path: str
    history: list
    best_metrics: dict


def predict_logits(model, dataset, batch_size=1024, device="cpu"):
    model.eval()
    with torch.no_grad():
        return np.concatenate(
            [
                model(dataset.x[i : i + batch_size]).numpy()
                for i in range(0, len(dataset), batch_size)
            ]
        ).astype(np.float32)


def train(model, train_set, val_set, config, teachers=None):
    torch.manual_seed(config.seed)
    g = torch.Generator().manual_seed(config.seed)
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=config.batch_size, shuffle=True, generator=g
    )
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    teacher = None if not teachers else torch.as_tensor(teachers[0].logits.astype(np.float32))
    for _ in range(config.epochs):
        model.train()
        for x, y, idx in loader:
            s = model(x)
            loss = F.cross_entropy(s, y)
            if config.loss == "kd":
                t = teacher[idx]
                kl = F.kl_div(
                    F.log_softmax(s / config.T, 1),
                    F.log_softmax(t / config.T, 1),
                    reduction="batchmean",
                    log_target=True,
                )
                loss = config.alpha * config.T**2 * kl + (1 - config.alpha) * loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    os.makedirs(config.out_dir, exist_ok=True)
    path = os.path.join(config.out_dir, f"{config.model_name}_val.npz")
    save_predictions(
        path,
        predict_logits(model, val_set),
        val_set.y.numpy(),
        ids=val_set.ids,
        train_counts=config.train_counts,
        model=config.model_name,
        seed=config.seed,
    )
    return TrainResult(model, path, [], {})


def install() -> None:
    try:
        import kdmetrics.kd  # noqa: F401
    except ImportError:
        mod = types.ModuleType("kdmetrics.kd")
        for name in (
            "FeatureDataset",
            "MLP",
            "save_teacher_logits",
            "TeacherLogits",
            "TrainConfig",
            "TrainResult",
            "train",
            "predict_logits",
        ):
            setattr(mod, name, globals()[name])
        sys.modules["kdmetrics.kd"] = mod
        import kdmetrics

        kdmetrics.kd = mod
