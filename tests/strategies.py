"""Hypothesis strategies for (labels, logits) problems."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = [np.float16, np.float32, np.float64]


@st.composite
def problems(draw, max_n=40, max_k=12, extreme=True, dtypes=DTYPES):
    """(labels, logits) with random N (incl. 1) and K (incl. 2), any float dtype,
    values including exact ties and logits around +-1e4."""
    n = draw(st.integers(1, max_n))
    k = draw(st.integers(2, max_k))
    dtype = draw(st.sampled_from(dtypes))
    scale = draw(st.sampled_from([1.0, 10.0, 1e4] if extreme else [1.0, 10.0]))
    # A small integer grid makes exact ties common; a continuous draw makes them rare.
    if draw(st.booleans()):
        elements = st.integers(-3, 3).map(float)
    else:
        elements = st.floats(-1.0, 1.0, allow_nan=False, width=32)
    base = draw(hnp.arrays(np.float64, (n, k), elements=elements))
    logits = (base * scale).astype(dtype)
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    return labels, logits


temperatures = st.sampled_from([0.5, 1.0, 2.0, 4.0])


@st.composite
def logit_pairs(draw, max_n=40, max_k=12):
    """Two logit arrays of one shape (each its own dtype), e.g. teacher and student."""
    _, p = draw(problems(max_n=max_n, max_k=max_k))
    n, k = p.shape
    dtype = draw(st.sampled_from(DTYPES))
    scale = draw(st.sampled_from([1.0, 10.0, 1e4]))
    base = draw(hnp.arrays(np.float64, (n, k), elements=st.integers(-3, 3).map(float)))
    noise = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-1, 1, width=32)))
    q = ((base + noise) * scale).astype(dtype)
    return p, q
