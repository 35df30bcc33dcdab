"""``kdmetrics demo``: the whole pipeline on a generated long-tail task.

Trains a teacher MLP, stores its logits on the training set, trains a vanilla
and a distilled student (same initial weights, data order and
hyperparameters; only the loss differs) with ``kdmetrics.kd.train`` on CPU and
runs the report on their validation prediction files. Every use of
``kdmetrics.kd`` is in this module.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DemoConfig:
    """Sizes chosen so the default run takes about 70 s on 2 idle CPU cores
    (the budget is 3 minutes), with the SPEC's 10,000 bootstrap resamples."""

    seed: int = 0
    n_train: int = 60_000
    n_val: int = 6_430
    n_features: int = 48
    teacher_hidden: tuple[int, ...] = (256, 256)
    student_hidden: tuple[int, ...] = (128,)
    teacher_epochs: int = 10
    epochs: int = 10
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    T: float = 2.0
    alpha: float = 0.5
    n_resamples: int = 10_000


def _default_out() -> str:
    return os.path.abspath(time.strftime("kdmetrics-demo-%Y%m%d-%H%M%S"))


def run_demo(config: DemoConfig, *, out: str | None = None, progress: bool = True) -> str:
    """Runs the demo; returns the output folder (``out`` or a fresh one), which
    holds ``training/`` (prediction files, teacher logits) and ``report/``."""
    import torch

    from kdmetrics import kd
    from kdmetrics.demo.synthetic import make_long_tail_task
    from kdmetrics.report.build import build_report, load_inputs
    from kdmetrics.report.render import terminal_summary, write_report

    out_dir = os.path.abspath(out) if out else _default_out()
    if os.path.exists(out_dir) and os.listdir(out_dir):
        raise ValueError(f"{out_dir}: exists and is not empty; choose another --out")
    start = time.perf_counter()

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f}s] {msg}", flush=True)

    c = config
    say(f"generating the task: {c.n_train} training / {c.n_val} validation examples, 113 classes")
    task = make_long_tail_task(
        n_train=c.n_train, n_val=c.n_val, n_features=c.n_features, seed=c.seed
    )
    tiers = task.tier_of_class[task.y_val]
    say(
        "validation per tier: "
        + ", ".join(f"{n} {int((tiers == i).sum())}" for i, n in enumerate(("head", "mid", "tail")))
    )
    train_ids = np.arange(task.y_train.size)
    val_ids = np.arange(task.y_val.size)
    train_set = kd.FeatureDataset(task.x_train, task.y_train, ids=train_ids)
    val_set = kd.FeatureDataset(task.x_val, task.y_val, ids=val_ids)
    work = os.path.join(out_dir, "training")  # checkpoints and prediction files
    report_dir = os.path.join(out_dir, "report")
    os.makedirs(work, exist_ok=True)

    def config_for(name: str, loss: str, epochs: int) -> kd.TrainConfig:
        return kd.TrainConfig(
            loss=loss,
            epochs=epochs,
            batch_size=c.batch_size,
            lr=c.lr,
            weight_decay=c.weight_decay,
            warmup_frac=0.05,
            T=c.T,
            alpha=c.alpha,
            seed=c.seed,
            eval_every=1,
            device="cpu",
            progress=progress,
            out_dir=os.path.join(work, name),
            model_name=name,
            train_counts=task.train_counts,
        )

    torch.manual_seed(c.seed)
    k = int(task.train_counts.size)
    teacher = kd.MLP(c.n_features, k, hidden=c.teacher_hidden)
    say(f"training the teacher MLP {c.teacher_hidden} for {c.teacher_epochs} epochs")
    t_res = kd.train(
        teacher, train_set, val_set, config_for("teacher", "vanilla", c.teacher_epochs)
    )
    say("storing the teacher's logits on the training set")
    teacher_path = os.path.join(work, "teacher_train_logits.npz")
    kd.save_teacher_logits(teacher_path, kd.predict_logits(t_res.model, train_set), train_ids)
    store = kd.TeacherLogits.open(teacher_path)

    # Same initial weights for both students: build once, copy.
    torch.manual_seed(c.seed + 1)
    init = kd.MLP(c.n_features, k, hidden=c.student_hidden).state_dict()
    paths = {}
    for name, loss in (("vanilla", "vanilla"), ("distilled", "kd")):
        student = kd.MLP(c.n_features, k, hidden=c.student_hidden)
        student.load_state_dict(init)
        detail = "" if loss == "vanilla" else f" (T={c.T}, alpha={c.alpha})"
        say(f"training the {name} student MLP {c.student_hidden}{detail} for {c.epochs} epochs")
        res = kd.train(
            student,
            train_set,
            val_set,
            config_for(name, loss, c.epochs),
            teachers=None if loss == "vanilla" else [store],
        )
        paths[name] = str(res.predictions_path)

    say(f"report ({c.n_resamples} paired bootstrap resamples)")
    # Tiers from the generator's training counts, whatever metadata train() stored.
    counts_path = os.path.join(work, "train_counts.npy")
    np.save(counts_path, task.train_counts)
    inputs = load_inputs(
        str(t_res.predictions_path),
        [paths["vanilla"]],
        [paths["distilled"]],
        train_counts=counts_path,
    )
    report = build_report(inputs, n_resamples=c.n_resamples, seed=c.seed)
    write_report(report, report_dir)
    print(terminal_summary(report))
    say(f"done; report in {report_dir}, prediction files in {work}")
    return out_dir
