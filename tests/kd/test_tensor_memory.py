"""Peak tensor memory on the CPU: hand-counted cases."""

import pytest

torch = pytest.importorskip("torch")

from kdmetrics.kd import profile_model  # noqa: E402
from kdmetrics.kd.tensor_memory import peak_tensor_bytes  # noqa: E402


def mlp(inplace: bool):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(64, 256), torch.nn.ReLU(inplace=inplace), torch.nn.Linear(256, 10)
    ).eval()


def test_a_forward_pass_counted_by_hand():
    x = torch.randn(512, 64)
    hidden, out = 512 * 256 * 4, 512 * 10 * 4
    plain, inplace = mlp(False), mlp(True)
    with torch.inference_mode():
        # ReLU makes a new tensor while the Linear output is still held:
        # two hidden activations at once, then the output beside one.
        assert peak_tensor_bytes(lambda: plain(x)) == 2 * hidden
        # In place, ReLU adds nothing: one hidden activation and the output.
        assert peak_tensor_bytes(lambda: inplace(x)) == hidden + out
    # Parameters made during the work are counted like any tensor.
    params = sum(p.numel() * 4 for p in plain.parameters())
    with torch.inference_mode():
        assert peak_tensor_bytes(lambda: mlp(False)(x)) == params + 2 * hidden


def test_frees_are_seen_and_views_add_nothing():
    def loop():
        y = None
        for _ in range(10):
            y = torch.ones(1000)  # the new one exists before the old one goes
        return y

    assert peak_tensor_bytes(loop) == 2 * 4000
    base = torch.ones(4096)
    assert peak_tensor_bytes(lambda: base.view(64, 64).t()[::2]) == 0
    assert peak_tensor_bytes(lambda: base.add_(1.0)) == 0


def test_repeatable():
    x = torch.randn(33, 64)
    m = mlp(False)
    runs = {peak_tensor_bytes(lambda: m(x)) for _ in range(3)}
    assert len(runs) == 1


def test_profile_model_reports_it_for_a_tiny_model():
    m = mlp(False)
    p = profile_model(m, torch.randn(8, 64), batch_sizes=(1, 512), warmup=0, repeats=1,
                      device="cpu")  # fmt: skip
    # At the largest batch size: the two hidden activations.
    assert p.peak_mem_mb["cpu"] == pytest.approx(2 * 512 * 256 * 4 / 1e6)
    assert "tensor storages" in p.peak_mem_method["cpu"]


def test_tensors_without_a_storage_are_skipped_not_fatal():
    # Sparse and MKL-DNN tensors have no storage to read: not counted, and
    # the dense tensors beside them still are.
    sparse = torch.sparse_coo_tensor([[0, 1]], [1.0, 2.0], (3,), check_invariants=True)
    assert peak_tensor_bytes(lambda: sparse * 2) == 0
    if torch.backends.mkldnn.is_available():
        dense = torch.ones(100)
        assert peak_tensor_bytes(lambda: (dense.to_mkldnn(), dense + 1)) == 400
