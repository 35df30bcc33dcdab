import numpy as np
import pytest


def make_models(n=400, k=12, seed=0):
    """Labels, tiers and three correlated models' float32 logits."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    tiers = np.repeat([0, 1, 2], [4, 4, k - 8])
    base = rng.normal(size=(n, k)).astype(np.float32)
    base[np.arange(n), y] += 1.5
    ref = base + 0.3 * rng.normal(size=(n, k)).astype(np.float32)
    v1 = ref + 0.4 * rng.normal(size=(n, k)).astype(np.float32)
    v2 = 1.7 * ref + 0.2 * rng.normal(size=(n, k)).astype(np.float32)
    return y, tiers, ref, v1, v2


@pytest.fixture
def models():
    return make_models()
