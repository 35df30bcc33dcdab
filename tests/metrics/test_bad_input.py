"""Every public function rejects bad input with a ValueError naming the problem."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kdmetrics as km

Z = np.zeros((4, 3), dtype=np.float32)
Y = np.array([0, 1, 2, 0])

LABELLED = [
    km.accuracy,
    km.macro_f1,
    km.f1_per_class,
    km.ece,
    km.nll,
    km.brier,
    km.reliability_table,
    km.fit_temperature,
    km.threshold_table,
    km.sla_threshold,
    km.summary,
]


@pytest.mark.parametrize("fn", LABELLED, ids=lambda f: f.__name__)
class TestLabelledFunctions:
    def test_length_mismatch(self, fn):
        with pytest.raises(ValueError, match=r"labels has 3 rows but logits has 4"):
            fn(Y[:3], Z)

    def test_label_out_of_range(self, fn):
        with pytest.raises(ValueError, match=r"labels\[1\] = 3 is out of range \[0, 3\)"):
            fn(np.array([0, 3, 1, 0]), Z)

    def test_negative_label(self, fn):
        with pytest.raises(ValueError, match=r"labels\[0\] = -1"):
            fn(np.array([-1, 0, 1, 0]), Z)

    def test_float_labels(self, fn):
        with pytest.raises(
            ValueError, match="labels must be integer class indices, got dtype float64"
        ):
            fn(Y.astype(float), Z)

    def test_2d_labels(self, fn):
        with pytest.raises(ValueError, match="labels must be 1-D"):
            fn(Y[:, None], Z)

    def test_nan_logits(self, fn):
        z = Z.copy()
        z[2, 1] = np.nan
        with pytest.raises(ValueError, match=r"NaN or infinite value at row 2, column 1"):
            fn(Y, z)

    def test_inf_logits(self, fn):
        z = Z.copy()
        z[3, 0] = np.inf
        with pytest.raises(ValueError, match=r"row 3, column 0"):
            fn(Y, z)

    def test_error_names_the_function(self, fn):
        z = Z.copy()
        z[0, 0] = np.nan
        with pytest.raises(ValueError, match=rf"^{fn.__name__}: "):
            fn(Y, z)

    def test_empty(self, fn):
        with pytest.raises(ValueError, match="labels is empty"):
            fn(np.array([], dtype=np.int64), np.zeros((0, 3)))


@pytest.mark.parametrize(
    "fn",
    [km.ece, km.nll, km.brier, km.reliability_table, km.fit_temperature],
    ids=lambda f: f.__name__,
)
class TestScoreArrays:
    def test_integer_logits(self, fn):
        with pytest.raises(
            ValueError, match="logits must be float16, float32 or float64, got dtype int64"
        ):
            fn(Y, Z.astype(np.int64))

    def test_1d_logits(self, fn):
        with pytest.raises(ValueError, match="logits must be 2-D"):
            fn(Y, Z[:, 0])

    def test_one_class(self, fn):
        with pytest.raises(ValueError, match="at least 2 classes"):
            fn(np.zeros(4, dtype=int), Z[:, :1])


@pytest.mark.parametrize("bad", [0.0, -1.0, np.inf, np.nan, "hot"])
def test_bad_temperature(bad):
    with pytest.raises(ValueError, match="temperature must be"):
        km.nll(Y, Z, temperature=bad)


def test_probabilities_must_sum_to_one():
    p = np.full((4, 3), 0.3)
    with pytest.raises(ValueError, match=r"row 0 sums to 0\.(9|8999).*not 1"):
        km.nll(Y, p, probs=True)
    p = np.array([[1.2, -0.2, 0.0]] * 4)
    with pytest.raises(ValueError, match="negative value"):
        km.brier(Y, p, probs=True)


def test_probabilities_are_never_guessed():
    p = np.full((4, 3), 1 / 3)
    # read as logits unless probs=True: all ties -> uniform either way, but the
    # value differs for a non-uniform row
    p2 = np.array([[0.7, 0.2, 0.1]] * 4)
    assert km.nll(Y, p2) != pytest.approx(km.nll(Y, p2, probs=True))
    assert km.nll(Y, p) == pytest.approx(np.log(3))


def test_divergence_shape_mismatch():
    with pytest.raises(
        ValueError, match=r"p_logits has shape \(4, 3\) but q_logits has shape \(4, 2\)"
    ):
        km.kl_divergence(Z, Z[:, :2])
    with pytest.raises(ValueError, match=r"has shape \(4, 3\) but q_logits has shape \(3, 3\)"):
        km.js_divergence(Z, Z[:3])
    z = Z.copy()
    z[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"js_divergence: q_logits has a NaN .* row 1, column 2"):
        km.js_divergence(Z, z)
    with pytest.raises(ValueError, match="base must be"):
        km.js_divergence(Z, Z, base=1)


def test_bad_options():
    with pytest.raises(ValueError, match="n_bins must be a positive integer"):
        km.ece(Y, Z, n_bins=0)
    with pytest.raises(ValueError, match="strategy must be one of"):
        km.ece(Y, Z, strategy="kmeans")
    with pytest.raises(ValueError, match="zero_division must be"):
        km.macro_f1(Y, Z, zero_division="warn")
    with pytest.raises(ValueError, match="n_classes=4 but logits has 3 classes"):
        km.f1_per_class(Y, Z, n_classes=4)
    with pytest.raises(ValueError, match="preds has 2 rows|labels has 4 rows but preds has 2"):
        km.accuracy(Y, np.array([0, 1]))
    with pytest.raises(ValueError, match="target must be in"):
        km.sla_threshold(Y, Z, target=1.5)
    with pytest.raises(ValueError, match="bounds must satisfy"):
        km.fit_temperature(Y, Z, bounds=(2.0, 1.0))
    with pytest.raises(ValueError, match=r"classes\[0\] = 7 is out of range"):
        km.macro_f1(Y, Z, classes=[7])


def test_tier_arguments():
    with pytest.raises(ValueError, match=r"tier_of_class must have one entry per class \(3\)"):
        km.summary(Y, Z, tier_of_class=[0, 1])
    with pytest.raises(ValueError, match="unknown tier name 'body'"):
        km.summary(Y, Z, tier_of_class=["head", "body", "tail"])
    with pytest.raises(ValueError, match=r"tier_of_class\[2\] = 5 is not a tier code"):
        km.summary(Y, Z, tier_of_class=[0, 1, 5])
    with pytest.raises(ValueError, match="sizes .* need at least 60 classes"):
        km.tiers_from_counts(np.ones(10))
    with pytest.raises(ValueError, match="train_counts must be >= 0"):
        km.tiers_from_counts([1, -1, 2], sizes=(1, 1))


# ---------------------------------------------------------------- nothing crashes

# Each of these once aborted the interpreter (a failed allocation) or raised a
# Rust panic; each must now be a clean ValueError subclass naming function and
# argument. Run in a subprocess, so a regression cannot take pytest down.
FORMERLY_ABORTING = [
    ("km.accuracy([0, 10**12], [0, 10**12])", "accuracy: labels"),
    ("km.accuracy([0, 3_000_000_000], [0, 3_000_000_000])", "accuracy: labels"),
    ("km.macro_f1([0, 1], [0, 10**12])", "macro_f1: preds"),
    ("km.confusion_counts([0, 1], [0, 1], n_classes=10**12)", "confusion_counts: n_classes"),
    ("km.ece(y, z, n_bins=10**12, strategy='quantile')", "ece: n_bins"),
    ("km.ece(y, z, n_bins=2**64)", "ece: n_bins"),
    ("km.paired_bootstrap(y, a, b, metrics=['accuracy'], n_resamples=10**12)",
     "paired_bootstrap: n_resamples"),
    ("km.paired_bootstrap(y, a, b, metrics=['accuracy'], n_resamples=2**63)",
     "paired_bootstrap: n_resamples"),
    ("km.paired_bootstrap(y, a, b, metrics=['accuracy'], n_resamples=(2**64 + 4) // 5)",
     "paired_bootstrap: n_resamples"),
    ("km.paired_bootstrap(y, a, b, metrics=['accuracy'], n_resamples=2**64)",
     "paired_bootstrap: n_resamples"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "message"), FORMERLY_ABORTING)
def test_former_aborts_are_clean_value_errors(call, message):
    script = textwrap.dedent(
        f"""
        import numpy as np, kdmetrics as km
        y = np.array([0, 1, 1, 0]); z = np.random.default_rng(0).normal(size=(4, 2))
        a = np.array([0, 1, 0, 0]); b = np.array([0, 1, 1, 1])
        try:
            {call}
        except km.KdMetricsError as e:
            assert isinstance(e, ValueError)
            print("REFUSED", e)
        else:
            print("ACCEPTED")
        """
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("REFUSED " + message), r.stdout


def test_tiny_temperature_is_refused_for_float32_not_a_perfect_brier():
    y = np.array([0, 1, 1])
    z = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]], np.float32)
    for fn in (km.nll, km.brier, km.ece):
        with pytest.raises(
            km.InvalidArgumentError, match=f"^{fn.__name__}: temperature .*too small"
        ):
            fn(y, z, temperature=1e-39)
    with pytest.raises(km.InvalidArgumentError, match="too small"):
        km.kl_divergence(z, z[::-1].copy(), temperature=1e-39)
    with pytest.raises(km.InvalidArgumentError, match=r"bounds\[0\] .* too small"):
        km.fit_temperature(y, z, bounds=(1e-45, 10.0))
    # float64 logits are scaled in float64: the right answer.
    z64 = z.astype(np.float64)
    assert km.brier(y, z64, temperature=1e-39) == pytest.approx(2 / 3)
    assert km.nll(y, z64, temperature=1e-30) == pytest.approx(1e30)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(max_iter=0), "max_iter must be an integer >= 1"),
        (dict(max_iter=-3), "max_iter must be an integer >= 1"),
        (dict(max_iter=2.5), "max_iter must be an integer"),
        (dict(tol=-1.0), "tol must be > 0"),
        (dict(tol=float("nan")), "tol must be finite"),
        (dict(bounds=5), r"bounds must be a pair \(low, high\)"),
        (dict(bounds="ab"), r"bounds must be a pair"),
        (dict(bounds=(0.1, "x")), r"bounds\[1\] must be a number"),
        (dict(probs="no"), "probs must be True or False"),
    ],
)
def test_fit_temperature_arguments(kw, match):
    with pytest.raises(km.InvalidArgumentError, match=f"^fit_temperature: {match}"):
        km.fit_temperature(Y, Z, **kw)


def test_duplicate_classes_are_refused():
    y = np.array([0, 0, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 2])
    with pytest.raises(km.InvalidArgumentError, match=r"macro_f1: classes lists class\(es\) \[0\]"):
        km.macro_f1(y, p, classes=[0, 0, 1])


def test_big_endian_logits_are_byte_swapped():
    z = np.random.default_rng(0).normal(size=(6, 3))
    y = np.array([0, 1, 2, 0, 1, 2])
    for dt in (">f2", ">f4", ">f8"):
        big = z.astype(dt)
        native = big.astype(big.dtype.newbyteorder("="))
        assert km.nll(y, big) == km.nll(y, native)
        assert km.accuracy(y, big) == km.accuracy(y, native)
        before = big.tobytes()
        km.kl_divergence(big, native)
        assert big.tobytes() == before  # the caller's array is untouched


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: km.nll(Y, Z, temperature=True), "nll: temperature must be a number"),
        (lambda: km.macro_f1(Y, Z, zero_division=True), "macro_f1: zero_division must be"),
        (lambda: km.f1_per_class(Y, Y, n_classes=True), "f1_per_class: n_classes must be"),
        (lambda: km.f1_per_class(Y, Y, n_classes=-1), "f1_per_class: n_classes must be"),
        (lambda: km.ece(Y, Z, n_bins=float("nan")), "ece: n_bins must be a positive integer"),
        (lambda: km.ece(Y, Z, n_bins=float("inf")), "ece: n_bins must be a positive integer"),
        (lambda: km.ece(Y, Z, n_bins=True), "ece: n_bins must be a positive integer"),
        (lambda: km.reliability_table(Y, Z, n_bins="15"), "reliability_table: n_bins"),
        (lambda: km.threshold_table(Y, Z, ["a"]), "threshold_table: thresholds must be"),
        (lambda: km.sla_threshold(Y, Z, target="x"), "sla_threshold: target must be a number"),
        (lambda: km.js_divergence(Z, Z, base="2"), "js_divergence: base must be a number"),
        (lambda: km.set_num_threads(-1), r"set_num_threads: n must be an integer in \[0"),
        (lambda: km.set_num_threads(2.0), "set_num_threads: n must be an integer"),
    ],
)
def test_argument_errors_are_clear(call, match):
    with pytest.raises(km.InvalidArgumentError, match=f"^{match}"):
        call()
