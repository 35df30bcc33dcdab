"""Every public function rejects bad input with a ValueError naming the problem."""

from __future__ import annotations

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
