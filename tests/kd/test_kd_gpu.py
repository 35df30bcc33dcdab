"""On CUDA: the loop under bf16 autocast, and bf16 losses against float32.

Skipped without CUDA. Losses are computed in float32 inside an autocast-free
region, so the same bf16 student logits give the same loss with and without
autocast; a bf16 forward pass changes the logits by about bf16's precision,
and the losses follow within a few parts in a hundred.
"""

import numpy as np
import pytest

from kdmetrics.kd import (
    MLP,
    FeatureDataset,
    TrainConfig,
    ce_loss,
    dkd_loss,
    hard_kd_loss,
    kd_loss,
    multi_teacher_kd_loss,
    save_teacher_logits,
    train,
)

from _kd_torch import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

N, D, K = 512, 32, 10
LOSSES = {
    "vanilla": lambda s, t, y: ce_loss(s, y),
    "kd": lambda s, t, y: kd_loss(s, t, y, T=4.0, alpha=0.9),
    "hard": lambda s, t, y: hard_kd_loss(s, t, y, alpha=0.5),
    "dkd": lambda s, t, y: dkd_loss(s, t, y, T=4.0, alpha=1.0, beta=8.0),
    "multi": lambda s, t, y: multi_teacher_kd_loss(s, [t, 0.5 * t], y, T=4.0, alpha=0.9),
}


def data(seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(D, K))
    x = rng.normal(size=(N, D)).astype(np.float32)
    y = (x @ w + rng.normal(size=(N, K))).argmax(axis=1)
    return x, y, (x @ w).astype(np.float16)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_bf16_losses_match_float32(name):
    x, y, t = data()
    dev = torch.device("cuda")
    torch.manual_seed(0)
    net = MLP(D, K, (64,)).to(dev)
    xs, ys, ts = (torch.tensor(a, device=dev) for a in (x, y, t))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        s16 = net(xs)
        assert s16.dtype == torch.bfloat16
        out16 = LOSSES[name](s16, ts, ys)
    assert out16.loss.dtype == torch.float32
    # Same bf16 logits without autocast: the loss itself is float32 either way.
    same = LOSSES[name](s16.float(), ts, ys)
    assert out16.loss.item() == pytest.approx(same.loss.item(), rel=1e-6)
    # float32 forward pass: the logits differ by bf16 rounding only.
    out32 = LOSSES[name](net(xs), ts, ys)
    assert out16.loss.item() == pytest.approx(out32.loss.item(), rel=3e-2)
    out16.loss.backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("loss", ["vanilla", "kd", "dkd"])
def test_train_loop_on_cuda_with_bf16_autocast(loss, tmp_path):
    x, y, t = data()
    save_teacher_logits(tmp_path / "t.npz", t, np.arange(N))
    teachers = None if loss == "vanilla" else [str(tmp_path / "t.npz")]
    runs = {}
    for device in ("cuda", "cpu"):
        c = TrainConfig(loss=loss, epochs=2, batch_size=64, lr=1e-4, device=device,
                        progress=False, tier_sizes=(3, 3))  # fmt: skip
        torch.cuda.reset_peak_memory_stats()
        runs[device] = train(lambda: MLP(D, K, (64,)), FeatureDataset(x, y),
                             FeatureDataset(x[:128], y[:128]), c, teachers=teachers)  # fmt: skip
        if device == "cuda":
            peak = torch.cuda.max_memory_allocated() / 2**20
            sps = runs[device].history[-1]["samples_per_s"]
            print(f"{loss}: {sps:.0f} samples/s, peak {peak:.1f} MiB (bf16 autocast)")
    gpu, cpu = runs["cuda"], runs["cpu"]
    assert gpu.init_sha256 == cpu.init_sha256
    assert next(gpu.model.parameters()).device.type == "cuda"
    for h_gpu, h_cpu in zip(gpu.history, cpu.history, strict=True):
        assert h_gpu["order_sha256"] == h_cpu["order_sha256"]
        assert h_gpu["train_loss"] == pytest.approx(h_cpu["train_loss"], rel=3e-2)
        assert h_gpu["val_nll"] == pytest.approx(h_cpu["val_nll"], rel=3e-2)
