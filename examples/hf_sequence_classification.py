"""Distil into a Hugging Face sequence classifier with ``kdmetrics.kd.train``.

Everything is built on the spot, nothing is downloaded:

- a synthetic topic task: each class has its own keywords; a sentence mixes
  a few keywords of its class, one of another class, and filler words;
- a ``WordLevel`` tokenizer (the ``tokenizers`` package) over the generated
  vocabulary, wrapped as a ``transformers.PreTrainedTokenizerFast``;
- the student: ``BertForSequenceClassification`` from a tiny ``BertConfig``
  (random weights);
- the teacher: a keyword-counting model whose logits on the training set are
  cached with ``save_teacher_logits``, keyed by the examples' string ids.

It shows the data-set protocol for text: items are dicts of unpadded token
lists plus ``labels``, the data set carries ``ids`` (checked against the
teacher file) and ``labels``, and ``collate_fn=DataCollatorWithPadding``
pads each batch. The model's ``SequenceClassifierOutput`` is read through its
``logits``; the loop takes ``labels`` out of the inputs, so the model never
computes its own loss.

Both arms start from the *same* model instance: ``train`` deep-copies it,
so the distilled arm does not start from the vanilla arm's trained weights
(the two prediction files carry the same ``init_sha256``). The checkpoint is
chosen on validation; the test split is held out.

Run: ``python examples/hf_sequence_classification.py --out runs/hf``
(needs ``pip install transformers``; about two minutes of CPU time with the defaults).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DataCollatorWithPadding,
    PreTrainedTokenizerFast,
)

import kdmetrics
from kdmetrics.kd import TrainConfig, save_teacher_logits, train

RESERVED_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]


def make_vocabulary(
    n_classes: int, keywords: int, filler: int
) -> tuple[list[str], list[list[str]]]:
    """Special tokens, per-class keywords (``c{class}_{j}``) and filler words."""
    per_class = [[f"c{c}_{j}" for j in range(keywords)] for c in range(n_classes)]
    words = RESERVED_TOKENS + [w for ws in per_class for w in ws] + [f"w{j}" for j in range(filler)]
    return words, per_class


def build_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    """A whitespace WordLevel tokenizer adding ``[CLS] ... [SEP]``, built locally."""
    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )


def make_sentences(
    n: int, per_class: list[list[str]], filler: int, rng: np.random.Generator
) -> tuple[list[str], np.ndarray]:
    """Sentences of 8-15 words: 1-3 keywords of the label's class, one keyword of
    a random class (noise), the rest filler, shuffled."""
    k = len(per_class)
    labels = rng.integers(0, k, size=n)
    sentences = []
    for y in labels:
        length = int(rng.integers(8, 16))
        words = list(rng.choice(per_class[y], size=int(rng.integers(1, 4))))
        words.append(str(rng.choice(per_class[int(rng.integers(0, k))])))
        words += [f"w{j}" for j in rng.integers(0, filler, size=length - len(words))]
        rng.shuffle(words)
        sentences.append(" ".join(words))
    return sentences, labels


def keyword_teacher(sentences: list[str], n_classes: int) -> np.ndarray:
    """A teacher that counts each class's keywords: logits = 2 x counts."""
    logits = np.zeros((len(sentences), n_classes), dtype=np.float32)
    for i, s in enumerate(sentences):
        for w in s.split():
            if w.startswith("c"):
                logits[i, int(w[1 : w.index("_")])] += 2.0
    return logits


class TextDataset(torch.utils.data.Dataset):
    """Items ``{"input_ids": [...], "attention_mask": [...], "labels": y}`` (unpadded);
    ``ids`` and ``labels`` attributes for the training loop."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast, sentences, labels, ids):
        self.encodings = tokenizer(list(sentences), truncation=True, max_length=32)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.ids = np.asarray(ids)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = {key: values[i] for key, values in self.encodings.items()}
        item["labels"] = int(self.labels[i])
        return item


def tiny_bert(vocab_size: int, n_classes: int, hidden: int) -> BertForSequenceClassification:
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
        num_labels=n_classes,
        pad_token_id=0,
    )
    return BertForSequenceClassification(config)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output folder (one sub-folder per arm)")
    p.add_argument("--n-classes", type=int, default=6)
    p.add_argument("--n-train", type=int, default=1200)
    p.add_argument("--n-val", type=int, default=300)
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Trains the vanilla and the distilled student; returns both TrainResults."""
    a = parse_args(argv)
    rng = np.random.default_rng(a.seed)
    words, per_class = make_vocabulary(a.n_classes, keywords=5, filler=60)
    tokenizer = build_tokenizer(words)

    splits = {}
    for name, n in (("train", a.n_train), ("val", a.n_val), ("test", a.n_test)):
        sentences, labels = make_sentences(n, per_class, 60, rng)
        ids = [f"{name}-{i:05d}" for i in range(n)]
        splits[name] = (sentences, labels, ids, TextDataset(tokenizer, sentences, labels, ids))

    os.makedirs(a.out, exist_ok=True)
    teacher_files = {}
    for name in ("train", "val"):
        sentences, _, ids, _ = splits[name]
        path = os.path.join(a.out, f"teacher_{name}_logits.npz")
        save_teacher_logits(path, keyword_teacher(sentences, a.n_classes), ids)
        teacher_files[name] = path

    torch.manual_seed(a.seed)
    student = tiny_bert(len(words), a.n_classes, a.hidden)  # one instance for both arms
    collate = DataCollatorWithPadding(tokenizer, return_tensors="pt")
    results = {}
    for arm, loss in (("vanilla", "vanilla"), ("distilled", "kd")):
        config = TrainConfig(
            loss=loss,
            T=2.0,
            alpha=0.7,
            epochs=a.epochs,
            batch_size=a.batch_size,
            lr=a.lr,
            warmup_frac=0.1,
            seed=a.seed,
            device=a.device,
            progress=not a.no_progress,
            out_dir=os.path.join(a.out, arm),
            model_name=arm,
            tier_sizes=(2, 2),
        )
        results[arm] = train(
            student,
            splits["train"][3],
            splits["val"][3],
            config,
            teachers=None if loss == "vanilla" else [teacher_files["train"]],
            val_teachers=[teacher_files["val"]],
            test_set=splits["test"][3],
            collate_fn=collate,
        )

    for arm, res in results.items():
        test = kdmetrics.load_predictions(res.test_predictions_path)
        print(
            f"{arm:9s} best epoch {res.best_epoch} (chosen on val): "
            f"val macro-F1 {res.best_metrics['macro_f1']:.3f}, "
            f"agreement with the teacher {res.best_metrics['teacher_agreement']:.3f}; "
            f"test (held out) accuracy {kdmetrics.accuracy(test.labels, test.logits):.3f}, "
            f"ECE {kdmetrics.ece(test.labels, test.logits):.3f}"
        )
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
