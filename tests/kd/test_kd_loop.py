"""The training loop on tiny CPU data: shared order and init, resume, prediction
files, DDP (gloo) and the ``kdmetrics train`` command."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import kdmetrics
from kdmetrics.cli import main
from kdmetrics.kd import (
    MLP,
    FeatureDataset,
    TeacherLogits,
    TrainConfig,
    load_checkpoint,
    predict_logits,
    save_teacher_logits,
    train,
)

from _kd_torch import torch

torch.set_num_threads(1)
N, D, K = 200, 8, 5
PYTHON_DIR = os.path.dirname(os.path.dirname(kdmetrics.__file__))


def make_split(rng, n, w, noise):
    x = rng.normal(size=(n, D)).astype(np.float32)
    y = (x @ w + noise * rng.normal(size=(n, K))).argmax(axis=1)
    return x, y


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(D, K))
    x, y = make_split(rng, N, w, 1.0)
    xv, yv = make_split(rng, 100, w, 1.0)
    ids = np.array([f"tr{i}" for i in range(N)])
    vids = np.array([f"va{i}" for i in range(100)])
    d = tmp_path_factory.mktemp("kd")
    teacher = (x @ w).astype(np.float16)  # noiseless: a good but imperfect teacher
    save_teacher_logits(d / "teacher.npz", teacher, ids)
    save_teacher_logits(d / "teacher_val.npz", (xv @ w).astype(np.float16), vids)
    for name, (a, b, i) in {"train": (x, y, ids), "val": (xv, yv, vids)}.items():
        np.savez(d / f"{name}.npz", features=a, labels=b, ids=i)
    return {
        "train": FeatureDataset(x, y, ids),
        "val": FeatureDataset(xv, yv, vids),
        "dir": d,
        "teacher": str(d / "teacher.npz"),
        "teacher_val": str(d / "teacher_val.npz"),
    }


def cfg(**kw):
    base = dict(epochs=2, batch_size=32, lr=3e-3, progress=False, warmup_frac=0.1)
    base.update(kw)
    return TrainConfig(**base)


class Recording(FeatureDataset):
    """Records every index the training loader asks for."""

    def __init__(self, ds):
        super().__init__(ds.features.numpy(), ds.labels.numpy(), ds.ids)
        self.seen = []

    def __getitem__(self, i):
        self.seen.append(int(i))
        return super().__getitem__(i)


def test_arms_share_batch_order_and_initial_weights(problem):
    runs = {}
    for loss in ("vanilla", "kd", "dkd"):
        ds, inits = Recording(problem["train"]), []

        def factory(inits=inits):
            m = MLP(D, K, (16,), dropout=0.1)
            inits.append({k: v.clone() for k, v in m.state_dict().items()})
            return m

        teachers = None if loss == "vanilla" else [problem["teacher"]]
        res = train(factory, ds, problem["val"], cfg(loss=loss), teachers=teachers)
        runs[loss] = (ds.seen[1:], inits[0], res)  # seen[0]: the class-count probe
    order, init, res = runs["vanilla"]
    assert order != sorted(order)  # shuffled
    for loss in ("kd", "dkd"):
        o, i, r = runs[loss]
        assert o == order
        assert all(torch.equal(init[k], i[k]) for k in init)
        assert [h["order_sha256"] for h in r.history] == [h["order_sha256"] for h in res.history]
        assert r.init_sha256 == res.init_sha256
        # ...and the loss did change the outcome.
        assert r.history[-1]["val_nll"] != res.history[-1]["val_nll"]


def test_teacher_rows_fetched_by_example_index(problem, monkeypatch):
    calls = []
    orig = TeacherLogits.fetch

    def spy(self, indices):
        rows = orig(self, indices)
        calls.append((np.asarray(indices).copy(), rows.clone()))
        return rows

    monkeypatch.setattr(TeacherLogits, "fetch", spy)
    teacher = TeacherLogits.open(problem["teacher"])
    ds = Recording(problem["train"])
    train(lambda: MLP(D, K, (8,)), ds, problem["val"], cfg(loss="kd", epochs=1), teachers=[teacher])
    seen = ds.seen[1:]
    assert [i for idx, _ in calls for i in idx.tolist()] == seen
    for idx, rows in calls:
        np.testing.assert_array_equal(rows.numpy(), teacher.logits[idx].astype(np.float32))
    assert calls[0][0].tolist() != list(range(len(calls[0][0])))  # not batch positions


def read_log(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def final_weights(out_dir):
    return load_checkpoint(os.path.join(out_dir, "checkpoints", "latest.pt"))["model"]


def test_resume_reproduces_uninterrupted_run(problem, tmp_path):
    def run(out, **kw):
        c = cfg(loss="kd", epochs=3, out_dir=str(out), clip_norm=1.0, grad_accum=2, **kw)
        return train(
            lambda: MLP(D, K, (16,), dropout=0.2),
            problem["train"],
            problem["val"],
            c,
            teachers=[problem["teacher"]],
        )

    full = run(tmp_path / "full")
    part = run(tmp_path / "part", stop_after_epoch=1)
    assert part.predictions_path is None and len(part.history) == 1
    resumed = run(tmp_path / "part", resume=True)
    a, b = final_weights(tmp_path / "full"), final_weights(tmp_path / "part")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    drop = ("samples_per_s",)
    strip = [{k: v for k, v in h.items() if k not in drop} for h in full.history]
    assert strip == [{k: v for k, v in h.items() if k not in drop} for h in resumed.history]
    assert resumed.best_metrics == full.best_metrics
    log = read_log(tmp_path / "part" / "log.jsonl")
    assert [r["event"] for r in log if r["event"] in ("start", "resume")] == ["start", "resume"]


def test_resume_refuses_changed_config(problem, tmp_path):
    c = cfg(loss="vanilla", epochs=2, out_dir=str(tmp_path), stop_after_epoch=1)
    train(lambda: MLP(D, K, (8,)), problem["train"], problem["val"], c)
    fresh = cfg(loss="vanilla", epochs=2, out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="already holds a run"):
        train(lambda: MLP(D, K, (8,)), problem["train"], problem["val"], fresh)
    c2 = cfg(loss="vanilla", epochs=2, out_dir=str(tmp_path), resume=True, lr=1e-2)
    with pytest.raises(ValueError, match=r"config differs in \['lr'\]"):
        train(lambda: MLP(D, K, (8,)), problem["train"], problem["val"], c2)


def test_prediction_file_matches_logged_metrics(problem, tmp_path):
    c = cfg(loss="kd", epochs=3, out_dir=str(tmp_path), model_name="kd-s0", tier_sizes=(1, 2))
    res = train(
        lambda: MLP(D, K, (16,)),
        problem["train"],
        problem["val"],
        c,
        teachers=[problem["teacher"]],
        val_teachers=[problem["teacher_val"]],
    )
    pred = kdmetrics.load_predictions(res.predictions_path)
    m = res.best_metrics
    assert kdmetrics.macro_f1(pred.labels, pred.logits) == m["macro_f1"]
    assert kdmetrics.ece(pred.labels, pred.logits) == m["ece"]
    assert kdmetrics.nll(pred.labels, pred.logits) == m["nll"]
    tiers = kdmetrics.tiers_from_counts(pred.train_counts, sizes=(1, 2))
    np.testing.assert_array_equal(pred.tier_of_class, tiers)
    assert kdmetrics.macro_f1(pred.labels, pred.logits, classes=tiers == 2) == m["macro_f1_tail"]
    teacher = TeacherLogits.open(problem["teacher_val"]).logits
    assert m["teacher_agreement"] == float((pred.logits.argmax(1) == teacher.argmax(1)).mean())
    assert m["top_k_accuracy"] == kdmetrics.top_k_accuracy(pred.labels, pred.logits, k=5)
    assert pred.metadata["model"] == "kd-s0" and pred.metadata["loss"] == "kd"
    assert pred.metadata["split"] == "val" and pred.metadata["selected_on"] == "val"
    assert (
        pred.metadata["T"] == 4.0 and pred.metadata["alpha"] == 0.9 and pred.metadata["seed"] == 0
    )
    np.testing.assert_array_equal(pred.ids, problem["val"].ids)
    np.testing.assert_array_equal(
        pred.train_counts, np.bincount(problem["train"].labels, minlength=K)
    )
    # best.pt holds the weights that produced the file.
    np.testing.assert_array_equal(predict_logits(res.model, problem["val"]), pred.logits)
    best = [h for h in res.history if h["epoch"] == res.best_epoch][0]
    assert best["val_macro_f1"] == max(h["val_macro_f1"] for h in res.history)
    steps = read_log(res.log_path)
    step = next(r for r in steps if r["event"] == "step")
    assert {"ce", "kl", "lr", "grad_norm", "samples_per_s"} <= set(step)


def test_multi_teacher_logs_each_teacher(problem, tmp_path):
    t = problem["teacher"]
    c = cfg(loss="multi", epochs=1, out_dir=str(tmp_path), teacher_weights=[0.7, 0.3])
    res = train(lambda: MLP(D, K, (8,)), problem["train"], problem["val"], c, teachers=[t, t])
    assert {"train_kl_t0", "train_kl_t1", "train_ce"} <= set(res.history[0])


@pytest.mark.parametrize(
    "kw",
    [
        {"loss": "hard", "alpha": 0.5},
        {"loss": "dkd", "dkd_warmup_epochs": 2},
        {"loss": "multi", "multi_strategy": "fused", "multi_base": "dkd"},
        {"loss": "multi", "multi_strategy": "logit-average"},
    ],
)
def test_other_losses_train_with_progress_bar(problem, kw, capsys):
    # progress=True is the default path: it must raise no warnings (filterwarnings=error).
    t = problem["teacher"]
    teachers = [t, t] if kw["loss"] == "multi" else [t]
    res = train(
        lambda: MLP(D, K, (8,)),
        problem["train"],
        problem["val"],
        cfg(epochs=2, progress=True, **kw),
        teachers=teachers,
    )
    h = res.history[-1]
    assert np.isfinite(h["train_loss"]) and np.isfinite(h["val_nll"])
    assert "epoch 2/2" in capsys.readouterr().err


def test_misaligned_teacher_refused_by_train(problem, tmp_path):
    ids = problem["train"].ids
    path = tmp_path / "bad.npz"
    save_teacher_logits(path, np.zeros((N - 1, K), np.float32), ids[:-1])
    with pytest.raises(ValueError, match="first unmatched position 199"):
        train(lambda: MLP(D, K), problem["train"], problem["val"], cfg(loss="kd"), teachers=[path])


def test_nan_loss_stops_with_clear_error(problem):
    def broken():
        m = MLP(D, K, (8,))
        with torch.no_grad():
            m[0].weight[0, 0] = float("nan")
        return m

    with pytest.raises(FloatingPointError, match="non-finite loss .* epoch 1, batch 1"):
        train(broken, problem["train"], problem["val"], cfg())


def cli_args(problem, out, *extra):
    d = problem["dir"]
    return [
        "train",
        "--train",
        str(d / "train.npz"),
        "--val",
        str(d / "val.npz"),
        "--teacher",
        problem["teacher"],
        "--loss",
        "kd",
        "--T",
        "4",
        "--alpha",
        "0.9",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--lr",
        "3e-3",
        "--warmup-frac",
        "0.1",
        "--hidden",
        "16",
        "--no-progress",
        "--device",
        "cpu",
        "--out",
        str(out),
        *extra,
    ]


def test_cli_train(problem, tmp_path, capsys):
    assert main(cli_args(problem, tmp_path)) == 0
    out = capsys.readouterr().out
    assert "best epoch" in out and "samples/s" in out
    pred = kdmetrics.load_predictions(tmp_path / "student_val.npz")
    assert pred.n_classes == K


def test_cli_train_without_torch(problem, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    assert main(cli_args(problem, tmp_path)) == 2
    assert "pip install 'kdmetrics[torch]'" in capsys.readouterr().err


def test_import_kdmetrics_does_not_import_torch():
    code = (
        "import sys, kdmetrics, kdmetrics.cli, kdmetrics.kd; kdmetrics.cli.build_parser(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    env = {**os.environ, "PYTHONPATH": PYTHON_DIR}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_ddp_two_processes_match_one(problem, tmp_path):
    """torchrun with 2 CPU processes (gloo): every optimizer step sees the same
    global batch as the 1-process run, so the metrics agree to float rounding."""
    assert main(cli_args(problem, tmp_path / "one")) == 0
    env = {**os.environ, "PYTHONPATH": PYTHON_DIR, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "kdmetrics.cli",
        *cli_args(problem, tmp_path / "two"),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = kdmetrics.load_predictions(tmp_path / "one" / "student_val.npz")
    two = kdmetrics.load_predictions(tmp_path / "two" / "student_val.npz")
    np.testing.assert_allclose(two.logits, one.logits, atol=1e-4)
    assert kdmetrics.nll(two.labels, two.logits) == pytest.approx(
        kdmetrics.nll(one.labels, one.logits), abs=1e-5
    )
    start = read_log(tmp_path / "two" / "log.jsonl")[0]
    assert start["world_size"] == 2
