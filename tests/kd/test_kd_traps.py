"""The training loop with users' own data and models: one test per trap.

Data-set forms, model-output forms, the test split, instance sharing,
metadata, clear errors before the first epoch, the open parts (callable
loss, optimizer/scheduler factories, callbacks, early stopping, online
teacher) and the progress output.
"""

import io
import sys
import warnings

import numpy as np
import pytest

import kdmetrics
from kdmetrics.cli import main
from kdmetrics.cli.train import add_arguments
from kdmetrics.kd import (
    MLP,
    DeviceUnavailableError,
    FeatureDataset,
    LossOutput,
    NearChanceTeacherWarning,
    PredictionPrecisionWarning,
    TeacherLogits,
    TrainConfig,
    kd_loss,
    predict_logits,
    save_teacher_logits,
    train,
    validation_metric_names,
    validation_metrics,
    warmup_linear_decay,
)
from kdmetrics.metrics.registry import METRICS

from _kd_torch import torch

torch.set_num_threads(1)
N, D, K = 120, 6, 4


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(D, K))

    def split(n):
        x = rng.normal(size=(n, D)).astype(np.float32)
        return x, (x @ w + 0.5 * rng.normal(size=(n, K))).argmax(axis=1)

    (x, y), (xv, yv), (xt, yt) = split(N), split(60), split(60)
    d = tmp_path_factory.mktemp("traps")
    teacher = d / "teacher.npz"
    save_teacher_logits(teacher, (x @ w).astype(np.float32), np.arange(N))
    for name, (a, b) in {"train": (x, y), "val": (xv, yv), "test": (xt, yt)}.items():
        np.savez(d / f"{name}.npz", features=a, labels=b, ids=np.arange(len(b)))
    return {
        "x": x, "y": y, "xv": xv, "yv": yv, "xt": xt, "yt": yt, "w": w, "dir": d,
        "teacher": str(teacher),
        "train": FeatureDataset(x, y),
        "val": FeatureDataset(xv, yv),
        "test": FeatureDataset(xt, yt),
    }  # fmt: skip


def cfg(**kw):
    base = dict(epochs=2, batch_size=32, lr=3e-3, progress=False, tier_sizes=(1, 1))
    base.update(kw)
    return TrainConfig(**base)


def mlp():
    return MLP(D, K, (8,))


class Pairs(torch.utils.data.Dataset):
    """Yields (x, y) only, no index, no ids."""

    def __init__(self, x, y):
        self.x, self.y = torch.tensor(x), torch.tensor(y)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class Dicts(Pairs):
    """Hugging Face style items: model inputs by name plus ``labels``."""

    def __getitem__(self, i):
        return {"features": self.x[i], "labels": self.y[i]}


class KwargsModel(torch.nn.Module):
    """Takes keyword inputs and returns a dict with ``logits``, as HF models do."""

    def __init__(self):
        super().__init__()
        self.net = mlp()

    def forward(self, features):
        return {"logits": self.net(features), "hidden": features}


class Output:
    """A ModelOutput-like object: logits as an attribute."""

    def __init__(self, logits):
        self.logits = logits


class AttrModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = mlp()

    def forward(self, x):
        return Output(self.net(x))


# ---------------------------------------------------------------- data sets and models


def test_dataset_yielding_x_y_pairs_trains_and_fetches_teacher_by_position(task):
    ds = torch.utils.data.TensorDataset(torch.tensor(task["x"]), torch.tensor(task["y"]))
    res = train(mlp, ds, task["val"], cfg(loss="kd"), teachers=[task["teacher"]])
    ref = train(mlp, task["train"], task["val"], cfg(loss="kd"), teachers=[task["teacher"]])
    # Same data in another item form: the same run, weight for weight.
    for a, b in zip(res.model.state_dict().values(), ref.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_dataset_yielding_dicts_with_labels_and_model_returning_dict(task):
    res = train(KwargsModel, Dicts(task["x"], task["y"]), Dicts(task["xv"], task["yv"]), cfg())
    z = predict_logits(res.model, Dicts(task["xv"], task["yv"]))
    assert z.shape == (60, K)
    assert res.best_metrics["accuracy"] == kdmetrics.accuracy(task["yv"], z)


def test_model_returning_model_output_object(task):
    res = train(AttrModel, task["train"], task["val"], cfg(epochs=1))
    assert np.isfinite(res.history[0]["train_loss"])


def test_model_returning_something_else_is_refused(task):
    class Bad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.l = torch.nn.Linear(D, K)

        def forward(self, x):
            return [self.l(x)]

    with pytest.raises(ValueError, match=r"train: model: the model returned list.*'logits'"):
        train(Bad, task["train"], task["val"], cfg())


def test_dataset_index_that_is_not_the_position_is_refused(task):
    class Shifted(Pairs):
        def __getitem__(self, i):
            return self.x[i], self.y[i], i + 1

    with pytest.raises(ValueError, match="third item .* differs from the example's position"):
        train(mlp, Shifted(task["x"], task["y"]), task["val"], cfg())


def test_dataset_of_wrong_item_form_is_refused(task):
    class Triple(Pairs):
        def __getitem__(self, i):
            return self.x[i], self.y[i], i, i

    with pytest.raises(ValueError, match=r"must yield \(x, y\), \(x, y, index\) or a dict"):
        train(mlp, Triple(task["x"], task["y"]), task["val"], cfg())


def test_ids_optional_and_used_for_teacher_alignment(task, tmp_path):
    # Without ids, positions are the ids: the teacher (ids 0..N-1) matches.
    train(mlp, Pairs(task["x"], task["y"]), task["val"], cfg(loss="kd", epochs=1),
          teachers=[task["teacher"]])  # fmt: skip
    # With ids, the teacher must carry those ids in that order.
    ds = FeatureDataset(task["x"], task["y"], ids=[f"ex{i}" for i in range(N)])
    with pytest.raises(ValueError, match=r"ids differ from the training set at position 0"):
        train(mlp, ds, task["val"], cfg(loss="kd"), teachers=[task["teacher"]])


# ---------------------------------------------------------------- splits and metadata


def test_test_split_predictions_and_selected_on(task, tmp_path):
    res = train(mlp, task["train"], task["val"], cfg(out_dir=str(tmp_path), epochs=3),
                test_set=task["test"])  # fmt: skip
    val = kdmetrics.load_predictions(res.predictions_path)
    test = kdmetrics.load_predictions(res.test_predictions_path)
    assert (val.metadata["split"], test.metadata["split"]) == ("val", "test")
    assert val.metadata["selected_on"] == test.metadata["selected_on"] == "val"
    assert val.metadata["epoch"] == test.metadata["epoch"] == res.best_epoch
    np.testing.assert_array_equal(test.labels, task["yt"])
    assert res.test_metrics["accuracy"] == kdmetrics.accuracy(test.labels, test.logits)
    np.testing.assert_array_equal(predict_logits(res.model, task["test"]), test.logits)


def test_model_instance_is_not_shared_between_arms(task):
    m = mlp()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    a = train(m, task["train"], task["val"], cfg(loss="vanilla"))
    b = train(m, task["train"], task["val"], cfg(loss="kd"), teachers=[task["teacher"]])
    assert a.model is not m and b.model is not m and a.model is not b.model
    assert a.init_sha256 == b.init_sha256  # both arms start from the instance's weights
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_metadata_record_only_hyperparameters_of_the_loss(task, tmp_path):
    cases = {
        "vanilla": (set(), None),
        "kd": ({"T", "alpha"}, [task["teacher"]]),
        "hard": ({"alpha"}, [task["teacher"]]),
        "dkd": ({"T", "dkd_alpha", "dkd_beta", "dkd_warmup_epochs"}, [task["teacher"]]),
        "multi": ({"T", "alpha", "multi_strategy"}, [task["teacher"], task["teacher"]]),
    }
    for loss, (keys, teachers) in cases.items():
        c = cfg(loss=loss, epochs=1, out_dir=str(tmp_path / loss))
        res = train(mlp, task["train"], task["val"], c, teachers=teachers)
        meta = kdmetrics.load_predictions(res.predictions_path).metadata
        hyper = {"T", "alpha", "dkd_alpha", "dkd_beta", "dkd_warmup_epochs", "multi_strategy"}
        assert set(meta) & hyper == keys, loss


def test_float16_prediction_file_never_holds_inf(task, tmp_path):
    class Big(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.l = torch.nn.Linear(D, K)

        def forward(self, x):
            return self.l(x) * 1e6

    c = cfg(epochs=1, out_dir=str(tmp_path / "big"), pred_dtype="float16", lr=1e-9)
    with pytest.warns(PredictionPrecisionWarning, match="saved as float32"):
        res = train(Big, task["train"], task["val"], c)
    z = np.load(res.predictions_path)["logits"]
    assert z.dtype == np.float32 and np.isfinite(z).all() and np.abs(z).max() > 65504
    # Logits that fit stay float16, without a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c16 = cfg(epochs=1, out_dir=str(tmp_path / "small"), pred_dtype="float16")
        small = train(mlp, task["train"], task["val"], c16)
    assert np.load(small.predictions_path)["logits"].dtype == np.float16


# ---------------------------------------------------------------- clear errors, early


def test_device_cuda_without_cuda_is_refused(task):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(DeviceUnavailableError, match="train: device 'cuda' .* CUDA is not"):
        train(mlp, task["train"], task["val"], cfg(device="cuda"))


def test_unknown_device_is_refused(task):
    with pytest.raises(ValueError, match="train: device 'tpu9' is not a device name"):
        train(mlp, task["train"], task["val"], cfg(device="tpu9"))


def test_label_not_below_k_is_refused_before_training(task):
    y = task["y"].copy()
    y[5] = K + 3
    with pytest.raises(ValueError, match=rf"train_set label {K + 3} at position 5 .* K={K}"):
        train(mlp, FeatureDataset(task["x"], y), task["val"], cfg())


def test_teacher_with_fewer_classes_than_labels_is_refused(task, tmp_path):
    small = tmp_path / "t3.npz"
    save_teacher_logits(small, np.zeros((N, K - 1), np.float32) + np.eye(K - 1)[0], np.arange(N))
    with pytest.raises(ValueError, match=f"has {K - 1} classes but the student has {K}"):
        train(mlp, task["train"], task["val"], cfg(loss="kd"), teachers=[small])
    d = task["dir"]
    args = ["train", "--train", str(d / "train.npz"), "--val", str(d / "val.npz"), "--loss", "kd",
            "--teacher", str(small), "--out", str(tmp_path / "cli"), "--no-progress"]  # fmt: skip
    assert main(args) == 2  # one line naming the teacher, not a traceback


def test_cli_hidden_zero_is_refused(task, tmp_path, capsys):
    d = task["dir"]
    args = ["train", "--train", str(d / "train.npz"), "--val", str(d / "val.npz"),
            "--hidden", "0", "--out", str(tmp_path)]  # fmt: skip
    with pytest.raises(SystemExit):
        main(args)
    assert "hidden widths must be integers >= 1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="MLP: hidden widths must be integers >= 1"):
        MLP(D, K, (0,))


class Counting(FeatureDataset):
    def __init__(self, ds):
        super().__init__(ds.features.numpy(), ds.labels.numpy(), ds.ids)
        self.reads = 0

    def __getitem__(self, i):
        self.reads += 1
        return super().__getitem__(i)


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"select_metric": "teacher_agreement"}, "need val_teachers or teacher_model"),
        ({"select_metric": "macro_f1_tail", "tier_sizes": (20, 40)}, "not a validation metric"),
        ({"select_metric": "churn"}, "select_metric must be a validation metric"),
        ({"tier_of_class": [0, 1, 2]}, "tier_of_class must have one entry per class"),
        ({"train_counts": [1, 2]}, "train_counts must be 4 integers"),
    ],
)
def test_select_metric_and_tier_of_class_checked_before_first_epoch(task, kw, match):
    ds = Counting(task["train"])
    with pytest.raises(ValueError, match=match):
        train(mlp, ds, task["val"], cfg(**kw))
    assert ds.reads <= 1  # at most the class-count probe: no epoch ran


def test_cli_and_api_loss_defaults_are_identical():
    import argparse

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--train", "a", "--val", "b", "--out", "c"])
    api = TrainConfig()
    for name in ("loss", "T", "alpha", "epochs", "batch_size", "lr", "select_metric", "device"):
        assert getattr(args, name) == getattr(api, name), name


# ---------------------------------------------------------------- open parts


def test_callable_loss_gets_aligned_teacher_rows(task):
    seen = []

    def my_loss(student_logits, teacher_logits, labels, epoch):
        seen.append((len(teacher_logits), epoch))
        return kd_loss(student_logits, teacher_logits[0], labels, T=2.0, alpha=0.5)

    c = cfg(loss=my_loss, epochs=2)
    res = train(mlp, task["train"], task["val"], c, teachers=[task["teacher"]])

    def builtin(s, t, y, e):
        return kd_loss(s, t[0], y, T=2.0, alpha=0.5)

    ref = train(mlp, task["train"], task["val"], cfg(loss=builtin, epochs=2),
                teachers=[task["teacher"]])  # fmt: skip
    assert {n for n, _ in seen} == {1} and {e for _, e in seen} == {0, 1}
    assert res.history[-1]["train_kl"] == ref.history[-1]["train_kl"]
    assert res.config["loss"].startswith("callable:") and res.config["loss"].endswith("my_loss")


def test_callable_loss_returning_a_scalar_tensor_and_bad_return(task):
    def plain(s, t, y, e):
        return torch.nn.functional.cross_entropy(s, y)

    res = train(mlp, task["train"], task["val"], cfg(loss=plain, epochs=1))
    assert set(res.history[0]) >= {"train_loss"}

    def bad(s, t, y, e):
        return torch.nn.functional.cross_entropy(s, y, reduction="none")

    with pytest.raises(ValueError, match=r"return a scalar floating tensor or a LossOutput"):
        train(mlp, task["train"], task["val"], cfg(loss=bad, epochs=1))


def test_optimizer_and_scheduler_factories(task):
    calls = {}

    def sgd(model):
        calls["opt"] = model
        return torch.optim.SGD(model.parameters(), lr=0.05)

    def constant(optimizer, total_steps):
        calls["total"] = total_steps
        return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)

    res = train(mlp, task["train"], task["val"], cfg(epochs=2), optimizer=sgd, scheduler=constant)
    assert calls["opt"] is res.model and calls["total"] == 2 * 4  # ceil(120/32) per epoch
    assert all(h["lr"] == 0.05 for h in res.history)
    assert res.config["optimizer"].endswith("sgd") and res.config["scheduler"].endswith("constant")


def test_warmup_linear_decay_schedule():
    f = warmup_linear_decay(10, 2)
    assert [f(s) for s in range(11)] == [0.5, 1.0, 1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8,
                                         1 / 8, 0.0]  # fmt: skip
    assert warmup_linear_decay(4, 0)(0) == 1.0
    with pytest.raises(ValueError, match="warmup_linear_decay"):
        warmup_linear_decay(4, 5)


def test_early_stopping_on_the_selection_metric(task):
    # nll: lower is better (from the registry). A huge lr makes it worse after epoch 1.
    c = cfg(epochs=8, select_metric="nll", early_stopping_patience=2, lr=5.0, warmup_frac=0.0)
    res = train(mlp, task["train"], task["val"], c)
    nll = [h["val_nll"] for h in res.history]
    assert res.stopped_early and len(res.history) < 8
    assert res.best_epoch == 1 + int(np.argmin(nll))  # the direction is the registry's
    assert len(res.history) - res.best_epoch == 2


def test_best_checkpoint_direction_comes_from_the_registry(task):
    for name in ("nll", "ece", "brier", "accuracy"):
        res = train(mlp, task["train"], task["val"], cfg(epochs=3, select_metric=name))
        values = [h[f"val_{name}"] for h in res.history]
        pick = np.argmax if METRICS[name].higher_is_better else np.argmin
        assert res.best_epoch == 1 + int(pick(values)), name


def test_epoch_end_callbacks_can_stop_the_run(task):
    events = []

    def stop_after_two(event):
        events.append((event.epoch, sorted(k for k in event.record if k.startswith("val_"))[:1]))
        return event.epoch >= 2

    res = train(mlp, task["train"], task["val"], cfg(epochs=5), callbacks=[stop_after_two])
    assert [e for e, _ in events] == [1, 2] and res.stopped_early and len(res.history) == 2
    assert events[0][1] == ["val_accuracy"]


class Spy(torch.nn.Module):
    """Records the inputs it sees."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.inputs, self.modes = inner, [], []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        self.modes.append(self.training)
        return self.inner(x)


class Augmented(Pairs):
    """Random noise per read: cached teacher logits could not follow it."""

    def __getitem__(self, i):
        return self.x[i] + 0.1 * torch.randn(self.x.shape[1]), self.y[i]


def test_online_teacher_sees_the_same_augmented_batch(task):
    w = torch.tensor(task["w"], dtype=torch.float32)

    class Linear(torch.nn.Module):
        def forward(self, x):
            return x @ w

    teacher = Spy(Linear())
    students = []

    def student():
        s = Spy(mlp())
        students.append(s)
        return s

    c = cfg(loss="kd", epochs=1, select_metric="teacher_agreement")
    res = train(student, Augmented(task["x"], task["y"]), task["val"], c, teacher_model=teacher)
    # Student: probe, 4 training batches, validation. Teacher: probe, validation, 4 batches.
    s_in, t_in = students[0].inputs[1:5], teacher.inputs[2:]
    assert len(t_in) == 4 and all(torch.equal(a, b) for a, b in zip(s_in, t_in, strict=True))
    assert "val_teacher_agreement" in res.history[0]
    assert not any(teacher.modes) and teacher.training  # eval while used, mode restored


def test_online_teacher_class_count_and_near_chance_are_checked(task):
    with pytest.raises(ValueError, match=f"teacher_model outputs 3 classes but the student .* {K}"):
        train(mlp, task["train"], task["val"], cfg(loss="kd"), teacher_model=MLP(D, 3, (4,)))

    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(x.shape[0], K) + torch.arange(K) * (x[:, :1] * 0 + 1)

    with pytest.warns(NearChanceTeacherWarning, match="teacher_model's validation accuracy"):
        train(mlp, task["train"], task["val"], cfg(loss="kd", epochs=1), teacher_model=Constant())
    with pytest.raises(ValueError, match="teacher_model is the student model itself"):
        m = mlp()
        train(m, task["train"], task["val"], cfg(loss="kd"), teacher_model=m)
    with pytest.raises(ValueError, match=r"needs exactly 1 teacher.*got 2 \(use loss='multi'"):
        train(mlp, task["train"], task["val"], cfg(loss="kd"), teachers=[task["teacher"]],
              teacher_model=MLP(D, K, (4,)))  # fmt: skip


def test_validation_metric_names_match_validation_metrics(task):
    rng = np.random.default_rng(0)
    z, t = rng.normal(size=(60, K)), rng.normal(size=(60, K))
    tiers = np.array([0, 1, 2, 2])
    for ref in (None, t):
        for tier in (None, tiers):
            got = validation_metrics(task["yv"], z, tier, ref)
            assert list(got) == validation_metric_names(ref is not None, tier is not None)
    assert {"top_k_accuracy", "teacher_agreement"} <= set(
        validation_metrics(task["yv"], z, None, t)
    )


# ---------------------------------------------------------------- progress output


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal(task, capsys):
    train(mlp, task["train"], task["val"], cfg(progress=True, epochs=2))
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2: train loss")


def test_progress_is_a_bar_on_a_terminal(task, monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    fake = Tty()
    monkeypatch.setattr(sys, "stderr", fake)
    train(mlp, task["train"], task["val"], cfg(progress=True, epochs=1))
    assert "\r" in fake.getvalue() and "epoch 1/1" in fake.getvalue()


# ---------------------------------------------------------------- the CLI


def test_cli_train_with_test_split(task, tmp_path, capsys):
    d = task["dir"]
    args = ["train", "--train", str(d / "train.npz"), "--val", str(d / "val.npz"),
            "--test", str(d / "test.npz"), "--epochs", "2", "--hidden", "8", "--device", "cpu",
            "--tier-sizes", "1", "1", "--quiet", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "chosen on --val" in out and "test (held out)" in out
    test = kdmetrics.load_predictions(tmp_path / "student_test.npz")
    assert test.metadata["split"] == "test" and test.metadata["selected_on"] == "val"
    assert test.metadata["loss"] == "vanilla" and "T" not in test.metadata


def test_loss_output_is_reexported():
    assert LossOutput is kdmetrics.kd.losses.LossOutput
    assert TeacherLogits is kdmetrics.kd.store.TeacherLogits


def test_d12_feature_dataset_from_corrupted_files_names_the_file(task, tmp_path, capsys):
    good = (task["dir"] / "train.npz").read_bytes()
    flipped = bytearray(good)
    flipped[200] ^= 0xFF  # inside the first member's data: fails its CRC-32
    cases = {
        "flip.npz": bytes(flipped),
        "trunc.npz": good[: len(good) // 2],
        "empty.npz": b"",
    }
    for name, raw in cases.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(ValueError, match=rf"FeatureDataset.from_npz: .*{name}: not a readable"):
            FeatureDataset.from_npz(tmp_path / name)
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"from_npz: .*x.npy: not a readable .npz"):
        FeatureDataset.from_npz(tmp_path / "x.npy")
    args = ["train", "--train", str(tmp_path / "flip.npz"), "--val", str(task["dir"] / "val.npz"),
            "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(args) == 2
    assert "flip.npz: not a readable .npz file" in capsys.readouterr().err


def test_vanilla_with_a_teacher_is_refused_with_a_hint(task):
    with pytest.raises(ValueError, match=r"loss='vanilla' needs exactly 0 .*to distil, choose"):
        train(mlp, task["train"], task["val"], cfg(), teachers=[task["teacher"]])


def test_h10_single_class_model_is_refused(task):
    with pytest.raises(ValueError, match="train: the model outputs 1 class.*at least 2"):
        train(lambda: MLP(D, 1, (4,)), task["train"], task["val"], cfg())
