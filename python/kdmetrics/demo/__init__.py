"""``kdmetrics demo``: the whole pipeline on a generated long-tail task.

Trains a teacher MLP on the teacher's view of a generated task (see
:mod:`kdmetrics.demo.synthetic`), stores its logits on the training set,
trains a vanilla and a distilled student on the students' view (same initial
weights, data order and hyperparameters; only the loss differs) with
``kdmetrics.kd.train`` on CPU, and runs the report on their validation
prediction files, ending with the findings in words. Every use of
``kdmetrics.kd`` is in this module.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np

from kdmetrics.errors import InvalidArgumentError
from kdmetrics.io.output import mark_output_folder

# The generated task has this many classes; the validation set must hold
# every one of them at least once.
N_CLASSES = 113


@dataclass(frozen=True)
class DemoConfig:
    """Sizes chosen so the default run takes about a minute of CPU on one
    core of a 2-core machine, with the 10,000 bootstrap resamples the report
    uses by default.

    ``threads``: PyTorch intra-op threads while training. One by default: the
    networks are small, and on a shared 2-core machine two threads were
    measured up to 10 times slower than one (they spin while waiting for a
    core)."""

    seed: int = 0
    n_train: int = 16_000
    n_val: int = 6_430
    n_features: int = 32
    teacher_hidden: tuple[int, ...] = (256, 256)
    student_hidden: tuple[int, ...] = (256,)
    teacher_epochs: int = 8
    epochs: int = 12
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4
    T: float = 2.0
    alpha: float = 0.7
    n_resamples: int = 10_000
    threads: int = 1
    compress: bool = True  # int8 / int4 / pruned variants of both students, then compare

    def validate(self) -> None:
        """Every argument checked at once, before anything is created; a
        ValueError naming the argument (as its command-line option)."""

        def bad(name: str, want: str) -> InvalidArgumentError:
            opt = "--" + name.replace("_", "-")
            return InvalidArgumentError(f"{opt} must be {want}, got {getattr(self, name)!r}")

        def is_int(v: object) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        minimum = {
            "seed": 0,
            "n_train": N_CLASSES,
            "n_val": 2 * N_CLASSES,
            "n_features": 1,
            "teacher_epochs": 1,
            "epochs": 1,
            "batch_size": 1,
            "n_resamples": 1,
            "threads": 1,
        }
        for name, low in minimum.items():
            v = getattr(self, name)
            if not is_int(v) or v < low:
                raise bad(name, f"an integer >= {low}")
        for name in ("teacher_hidden", "student_hidden"):
            v = getattr(self, name)
            if not isinstance(v, tuple) or not v or not all(is_int(h) and h >= 1 for h in v):
                raise bad(name, "one or more integer widths >= 1")

        def real(name: str) -> float:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise bad(name, "a finite number")
            return float(v)

        if real("T") <= 0:
            raise bad("T", "a finite number > 0")
        if not 0 <= real("alpha") <= 1:
            raise bad("alpha", "in [0, 1]")
        if real("lr") <= 0:
            raise bad("lr", "a finite number > 0")
        if real("weight_decay") < 0:
            raise bad("weight_decay", "a finite number >= 0")


def _default_out() -> str:
    return os.path.abspath(time.strftime("kdmetrics-demo-%Y%m%d-%H%M%S"))


def check_out(out: str | None) -> str:
    """The absolute output folder, checked by the output-folder rules
    (``kdmetrics.io.output``): a new or empty folder, never the current
    directory or one of its ancestors."""
    from kdmetrics.io.output import OutputFolderError, check_output_folder

    out_dir = check_output_folder("demo", out) if out else _default_out()
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise OutputFolderError(f"demo: {out_dir}: exists and is not empty; choose another --out")
    return out_dir


def run_demo(config: DemoConfig, *, out: str | None = None, progress: bool = True) -> str:
    """Runs the demo; returns the output folder (``out`` or a fresh one), which
    holds ``training/`` (prediction files, teacher logits) and ``report/``.

    ``progress``: the training loop's progress (a bar on a terminal, plain
    periodic lines on stderr otherwise); ``False`` silences it. The stage
    lines (with elapsed time) are always printed, plain. Every argument is
    validated before any folder is created.
    """
    config.validate()
    out_dir = check_out(out)

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run(config, out_dir, progress)
    finally:
        torch.set_num_threads(threads)


def _run(c: DemoConfig, out_dir: str, progress: bool) -> str:
    import torch

    from kdmetrics import kd
    from kdmetrics.demo.synthetic import make_long_tail_task
    from kdmetrics.report.build import build_report, load_inputs
    from kdmetrics.report.render import findings_text, write_report

    start = time.perf_counter()

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f}s] {msg}", flush=True)

    say(
        f"generating the task: {c.n_train} training / {c.n_val} validation examples, "
        f"{N_CLASSES} classes"
    )
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
    teacher_train = kd.FeatureDataset(task.x_train_teacher, task.y_train, ids=train_ids)
    teacher_val = kd.FeatureDataset(task.x_val_teacher, task.y_val, ids=val_ids)
    train_set = kd.FeatureDataset(task.x_train, task.y_train, ids=train_ids)
    val_set = kd.FeatureDataset(task.x_val, task.y_val, ids=val_ids)
    work = os.path.join(out_dir, "training")  # checkpoints and prediction files
    report_dir = os.path.join(out_dir, "report")
    os.makedirs(work, exist_ok=True)
    mark_output_folder(out_dir, "demo")

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
    teacher = kd.MLP(task.x_train_teacher.shape[1], k, hidden=c.teacher_hidden)
    say(f"training the teacher MLP {c.teacher_hidden} for {c.teacher_epochs} epochs")
    t_res = kd.train(
        teacher, teacher_train, teacher_val, config_for("teacher", "vanilla", c.teacher_epochs)
    )
    say("storing the teacher's logits on the training set")
    teacher_path = os.path.join(work, "teacher_train_logits.npz")
    kd.save_teacher_logits(teacher_path, kd.predict_logits(t_res.model, teacher_train), train_ids)
    store = kd.TeacherLogits.open(teacher_path)

    # Same initial weights for both students: build once, copy.
    n_in = task.x_train.shape[1]
    torch.manual_seed(c.seed + 1)
    init = kd.MLP(n_in, k, hidden=c.student_hidden).state_dict()
    paths = {}
    students = {}
    for name, loss in (("vanilla", "vanilla"), ("distilled", "kd")):
        student = kd.MLP(n_in, k, hidden=c.student_hidden)
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
        students[name] = res.model

    say(f"report ({c.n_resamples} paired bootstrap resamples)")
    # Tiers from the generator's training counts, whatever metadata train() stored.
    counts_path = os.path.join(work, "train_counts.npy")
    np.save(counts_path, task.train_counts)
    inputs = load_inputs(
        str(t_res.predictions_path),
        [paths["vanilla"]],
        [paths["distilled"]],
        train_counts=counts_path,
        teacher_logits=teacher_path,
        distill_T=c.T,
    )
    report = build_report(inputs, n_resamples=c.n_resamples, seed=c.seed)
    if report.findings is not None and not any(
        "Checkpoint chosen" in x for x in report.findings.caveats
    ):
        report.findings.caveats.insert(
            0,
            "Checkpoint chosen on the analysed split: the demo keeps each model's best "
            "epoch by validation macro F1, on the very examples reported here, so the scores "
            "are optimistic; a real study reports a held-out test split.",
        )
    write_report(report, report_dir)
    compression = None
    if c.compress:
        from kdmetrics.demo.compress import compress_and_compare

        say("compressing both students (int8 dynamic, int4 weight-only, 50 % pruned)")
        compression = compress_and_compare(
            students,
            task.x_val,
            task.y_val,
            task.tier_of_class,
            os.path.join(out_dir, "compress"),
            n_resamples=c.n_resamples,
            seed=c.seed,
            say=say,
        )
    say(f"done; report in {report_dir}, prediction files in {work}")
    print()
    print(findings_text(report), flush=True)
    if compression is not None:
        print()
        print("== Compression (compare: every variant against vanilla_fp32) ==")
        for line in compression.extra_findings:
            print(f"- {line}")
        where = os.path.join(out_dir, "compress", "compare")
        print(f"Full comparison, Pareto plots and constraint tables: {where}")
    return out_dir


__all__ = ["DemoConfig", "check_out", "run_demo"]
