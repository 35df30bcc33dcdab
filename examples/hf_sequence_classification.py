"""Distil into a local Hugging Face sequence-classification checkpoint with kdmetrics.kd.

Not run by the tests (needs ``transformers``). Usage::

    python examples/hf_sequence_classification.py \
        --model ./checkpoints/distilbert-base-uncased \
        --train train.jsonl --val val.jsonl --teacher teacher_train.npz \
        --out runs/distilbert-kd --loss kd --T 4 --alpha 0.9

``train.jsonl``/``val.jsonl`` hold one ``{"id": ..., "text": ..., "label": ...}``
per line; ``teacher_train.npz`` holds the teacher's ``logits`` and ``ids`` in
the training file's order (``kdmetrics.kd.save_teacher_logits``). Multi-GPU:
``torchrun --nproc_per_node 4 examples/hf_sequence_classification.py ...``.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch
from kdmetrics.kd import TrainConfig, train
from torch import nn
from torch.utils.data import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer


class TextDataset(Dataset):
    """Yields ``(encoding dict, label, index)``: the loop fetches teacher rows by index."""

    def __init__(self, path: str, tokenizer, max_length: int = 128):
        with open(path, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f]
        self.ids = np.array([str(r["id"]) for r in rows])
        self.labels = torch.tensor([int(r["label"]) for r in rows])
        enc = tokenizer(
            [r["text"] for r in rows],
            truncation=True,
            max_length=max_length,
            padding="max_length",
            return_tensors="pt",
        )
        self.encoding = dict(enc)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int):
        x = {k: v[i] for k, v in self.encoding.items()}
        return x, self.labels[i], torch.tensor(i, dtype=torch.int64)


class Logits(nn.Module):
    """Adapts a HF model to the loop's contract: a batch of inputs -> logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**batch).logits


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="local checkpoint directory")
    p.add_argument("--train", required=True)
    p.add_argument("--val", required=True)
    p.add_argument("--teacher", action="append", default=[])
    p.add_argument("--out", required=True)
    p.add_argument("--loss", default="kd")
    p.add_argument("--T", type=float, default=4.0)
    p.add_argument("--alpha", type=float, default=0.9)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    args = p.parse_args()

    if "RANK" in os.environ:  # launched by torchrun
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    tokenizer = AutoTokenizer.from_pretrained(args.model, local_files_only=True)
    train_set = TextDataset(args.train, tokenizer)
    val_set = TextDataset(args.val, tokenizer)
    n_classes = int(train_set.labels.max()) + 1
    # A factory: kdmetrics calls it under the run's seed, so the classifier head
    # (the only freshly initialised part) is the same in the vanilla and KD arms.
    model = lambda: Logits(  # noqa: E731
        AutoModelForSequenceClassification.from_pretrained(
            args.model, num_labels=n_classes, local_files_only=True
        )
    )
    config = TrainConfig(
        loss=args.loss,
        T=args.T,
        alpha=args.alpha,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=0.01,
        warmup_frac=0.06,
        clip_norm=1.0,
        out_dir=args.out,
        model_name=os.path.basename(args.model.rstrip("/")),
    )
    result = train(model, train_set, val_set, config, teachers=args.teacher or None)
    if result.predictions_path:
        print(result.best_metrics)
        print("predictions:", result.predictions_path)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
