"""Which kdmetrics.errors class each refusal raises (all are ValueErrors):
files that do not describe the same examples raise AlignmentError; positions
and values are attributes where the check knows them."""

from __future__ import annotations

import numpy as np
import pytest

import kdmetrics as km
from kdmetrics.errors import (
    AlignmentError,
    InvalidArgumentError,
    NonFiniteError,
    OutOfRangeError,
    ShapeError,
)
from kdmetrics.io.align import align_predictions
from kdmetrics.io.predictions import Predictions

RNG = np.random.default_rng(0)


def _pred(n=6, k=3, ids=None, labels=None, name="a.npz"):
    y = np.arange(n) % k if labels is None else np.asarray(labels)
    return Predictions(logits=RNG.normal(size=(n, k)), labels=y, ids=ids, path=name)


@pytest.mark.parametrize(
    "other",
    [
        _pred(n=5, name="b.npz"),  # fewer examples
        _pred(k=4, name="b.npz"),  # more classes
        _pred(ids=np.arange(6)[::-1].copy(), name="b.npz"),  # ids in another order
        _pred(labels=[0, 1, 2, 0, 1, 1], name="b.npz"),  # one label differs
    ],
)
def test_check_aligned_raises_alignment_error(other):
    ref = _pred(ids=np.arange(6) if other.ids is not None else None)
    with pytest.raises(AlignmentError, match="b.npz"):
        km.check_aligned([ref, other])
    with pytest.raises(ValueError):  # callers catching ValueError keep working
        km.check_aligned([ref, other])


def test_check_aligned_of_nothing_is_a_shape_error():
    with pytest.raises(ShapeError, match="^check_aligned: no prediction files"):
        km.check_aligned([])


def test_align_by_id_missing_id_is_an_alignment_error():
    ref = _pred(ids=np.arange(6))
    other = _pred(ids=np.arange(1, 7), name="b.npz")
    with pytest.raises(AlignmentError, match="missing from"):
        align_predictions(ref, other)


def test_tier_codes_out_of_range_carries_position_and_bound():
    with pytest.raises(OutOfRangeError) as e:
        km.summary(np.arange(6) % 3, RNG.normal(size=(6, 3)), tier_of_class=[0, 5, 1])
    assert (e.value.index, e.value.value, e.value.bound) == (1, 5, 3)


def test_tiers_from_counts_refusals():
    with pytest.raises(InvalidArgumentError, match="^tiers_from_counts: sizes"):
        km.tiers_from_counts([3, 2, 1], sizes=5)
    with pytest.raises(InvalidArgumentError, match="^tiers_from_counts: sizes"):
        km.tiers_from_counts([3, 2, 1], sizes=(True, 1))
    with pytest.raises(ShapeError, match="^tiers_from_counts: train_counts"):
        km.tiers_from_counts([[1], []])
    with pytest.raises(NonFiniteError) as e:
        km.tiers_from_counts([3.0, np.nan, 1.0])
    assert (e.value.row, e.value.col) == (1, None)


def test_compare_seeds_nonfinite_score_carries_position():
    with pytest.raises(NonFiniteError, match="^compare_seeds: scores_b") as e:
        km.compare_seeds([0.5, 0.6, 0.7], [0.5, np.inf, 0.7])
    assert e.value.row == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda: km.macro_f1([0, 1], [0, 1], classes=[[], [0]]),
        lambda: km.threshold_table([0, 1], [[1.0, 0.0], [0.0, 1.0]], thresholds=[[0.5], []]),
        lambda: km.ids_sha256([[1], [2, 3]]),
    ],
)
def test_ragged_lists_are_shape_errors(call):
    with pytest.raises(ShapeError, match="is not an array"):
        call()


@pytest.mark.parametrize("value", [np.zeros(3), np.array([], dtype=bool)])
def test_array_valued_flags_are_refused_by_name(value):
    y, z = np.arange(6) % 3, RNG.normal(size=(6, 3))
    with pytest.raises(InvalidArgumentError, match="^nll: probs"):
        km.nll(y, z, probs=value)
    with pytest.raises(InvalidArgumentError, match="^ece: strategy"):
        km.ece(y, z, strategy=value)
    with pytest.raises(InvalidArgumentError, match="^f1_per_class: zero_division"):
        km.f1_per_class(y, z, zero_division=value)
