"""Typed errors: one hierarchy of ValueError subclasses, raised by the Rust
kernels and the Python checks alike, named by the public function."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import kdmetrics as km
from kdmetrics import errors

CLASSES = [
    km.ShapeError,
    km.NonFiniteError,
    km.OutOfRangeError,
    km.AlignmentError,
    km.InvalidArgumentError,
]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_hierarchy(cls):
    assert issubclass(cls, km.KdMetricsError)
    assert issubclass(cls, ValueError)
    assert getattr(errors, cls.__name__) is cls


def test_nonfinite_from_rust_has_row_and_col():
    z = np.zeros((4, 3), np.float32)
    z[2, 1] = np.nan
    with pytest.raises(km.NonFiniteError) as info:
        km.nll([0, 1, 2, 0], z)
    assert (info.value.row, info.value.col) == (2, 1)
    assert str(info.value) == "nll: logits has a NaN or infinite value at row 2, column 1"


def test_nonfinite_from_python_probabilities_has_row_and_col():
    p = np.full((3, 2), 0.5)
    p[1, 0] = np.inf
    with pytest.raises(km.NonFiniteError) as info:
        km.nll([0, 1, 0], p, probs=True)
    assert (info.value.row, info.value.col) == (1, 0)
    assert str(info.value).startswith("nll: ")


def test_out_of_range_attributes():
    with pytest.raises(km.OutOfRangeError) as info:
        km.accuracy([0, 5, 1], np.zeros((3, 3)))
    assert (info.value.index, info.value.value, info.value.bound) == (1, 5, 3)


def test_shape_and_invalid_argument():
    with pytest.raises(km.ShapeError, match="^nll: labels has 3 rows but logits has 4"):
        km.nll([0, 1, 0], np.zeros((4, 2)))
    with pytest.raises(km.InvalidArgumentError, match="^nll: temperature"):
        km.nll([0, 1], np.zeros((2, 2)), temperature=True)


def test_prefix_keeps_class_and_attributes():
    e = km.OutOfRangeError("labels[1] = 5 is out of range [0, 3)", 1, 5, 3)
    p = e.with_prefix("f1_per_class")
    assert type(p) is km.OutOfRangeError
    assert str(p) == "f1_per_class: labels[1] = 5 is out of range [0, 3)"
    assert (p.index, p.value, p.bound) == (1, 5, 3)


def test_keyword_attributes_and_pickle():
    e = km.NonFiniteError("x", row=3, col=4)
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is km.NonFiniteError
    assert (str(back), back.row, back.col) == ("x", 3, 4)
    with pytest.raises(TypeError):
        km.NonFiniteError("x", nope=1)


def test_version_comes_from_the_extension():
    from kdmetrics import _core

    assert km.__version__ == _core.__version__
    assert km.__version__.count(".") >= 2


def test_bad_resample_index_names_its_position():
    from kdmetrics.stats.bootstrap import eval_indices

    y = np.array([0, 1, 1, 0, 2, 2])
    z = np.eye(3)[[0, 1, 2, 0, 2, 1]]
    idx = np.array([[0, 1, 2, 3, 4, 5], [5, 4, 9, 0, 0, 0]])
    with pytest.raises(km.OutOfRangeError) as info:
        eval_indices(y, z, z, idx, metrics=("accuracy",))
    assert str(info.value) == "eval_indices: indices[1][2] = 9 is out of range [0, 6)"
    assert (info.value.index, info.value.value, info.value.bound) == (2, 9, 6)
    idx[0, 4] = -1
    with pytest.raises(
        km.OutOfRangeError, match=r"indices\[0\]\[4\] = -1 is out of range \[0, 6\)"
    ):
        eval_indices(y, z, z, idx, metrics=("accuracy",))
