import io
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import kdmetrics  # noqa: E402
from kdmetrics.demo.compress import (  # noqa: E402
    COMPRESSIONS,
    compress_and_compare,
    fake_quantize_int4,
    gain_sentences,
    gain_table,
    int4_packed_size_mb,
    int4_weights,
    magnitude_prune,
    predict,
    quantize_int8_dynamic,
)
from kdmetrics.kd import MLP, profile_model  # noqa: E402


def tiny(seed=0, d=16, k=10):
    torch.manual_seed(seed)
    return MLP(d, k, hidden=(32,))


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@given(st.integers(1, 6), st.integers(1, 9), st.integers(0, 10_000))
def test_int4_weights_per_channel_symmetric(rows, cols, seed):
    w = torch.from_numpy(np.random.default_rng(seed).normal(size=(rows, cols))).float()
    w[0] = 0.0  # an all-zero row stays zero
    q = int4_weights(w)
    scale = w.abs().amax(dim=1, keepdim=True) / 7
    assert torch.equal(q[0], torch.zeros(cols))
    for r in range(1, rows):
        levels = q[r] / scale[r]
        assert torch.allclose(levels, torch.round(levels), atol=1e-4)
        assert levels.abs().max() <= 7 + 1e-4
        assert len(torch.unique(torch.round(levels))) <= 15
        assert (q[r] - w[r]).abs().max() <= scale[r].item() / 2 + 1e-6
        # the largest weight of a row is represented exactly
        assert q[r].abs().max().item() == pytest.approx(w[r].abs().max().item(), rel=1e-6)


def test_int4_weights_hand_case():
    w = torch.tensor([[0.7, -0.35, 0.1, 0.04]])
    # scale 0.1: 0.1 -> 1, 0.04 -> round(0.4) = 0, -0.35 -> round(-3.5) = -4 (half to even)
    assert torch.allclose(int4_weights(w), torch.tensor([[0.7, -0.4, 0.1, 0.0]]))
    with pytest.raises(ValueError, match="2-D"):
        int4_weights(torch.zeros(3))


def test_fake_int4_and_prune_leave_the_input_alone():
    m = tiny()
    before = _state(m)
    q = fake_quantize_int4(m)
    p = magnitude_prune(m, 0.5)
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k])
    lin_m = [x for x in m.modules() if isinstance(x, torch.nn.Linear)]
    lin_q = [x for x in q.modules() if isinstance(x, torch.nn.Linear)]
    assert len(lin_q) == len(lin_m) == 2
    for a, b in zip(lin_m, lin_q, strict=True):
        assert not torch.equal(a.weight, b.weight)
        assert torch.equal(a.bias, b.bias)  # weight-only
    assert set(p.state_dict()) == set(m.state_dict())  # no weight_orig / weight_mask left


def test_magnitude_prune_global_half():
    m = tiny()
    p = magnitude_prune(m, 0.5)
    lin_m = [x for x in m.modules() if isinstance(x, torch.nn.Linear)]
    lin_p = [x for x in p.modules() if isinstance(x, torch.nn.Linear)]
    w = torch.cat([x.weight.flatten() for x in lin_m])
    wp = torch.cat([x.weight.flatten() for x in lin_p])
    assert int((wp == 0).sum()) == round(0.5 * w.numel())
    kept, pruned = w[wp != 0].abs(), w[wp == 0].abs()
    assert kept.min() >= pruned.max()  # global: smallest magnitudes went, across layers
    assert torch.equal(wp[wp != 0], w[wp != 0])
    for a, b in zip(lin_m, lin_p, strict=True):
        assert torch.equal(a.bias, b.bias)
    with pytest.raises(ValueError, match="amount"):
        magnitude_prune(m, 1.0)


def test_int8_dynamic_is_close_and_quantized():
    m = tiny()
    x = torch.randn(64, 16)
    q = quantize_int8_dynamic(m)
    assert any("quantized" in type(x).__module__ for x in q.modules())
    assert all(not isinstance(x, torch.nn.Linear) or "quantized" in type(x).__module__
               for x in q.modules())  # fmt: skip
    with torch.no_grad():
        ref, out = m(x), q(x)
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()
    assert not torch.equal(out, ref)


def test_int4_packed_size_hand_case():
    m = tiny()  # Linear 16->32 and 32->10, float32 biases
    want = (16 * 32 * 4 / 8 + 32 * 4) + (32 * 10 * 4 / 8 + 10 * 4) + (32 + 10) * 4
    assert int4_packed_size_mb(m) == pytest.approx(want / 1e6)


def test_profile_model():
    m = tiny()
    m.train()
    p = profile_model(m, torch.randn(3, 16), batch_sizes=(1, 8), warmup=1, repeats=3,
                      device="cpu", num_threads=1)  # fmt: skip
    assert m.training  # restored
    assert p.params == sum(x.numel() for x in m.parameters())
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    assert p.size_mb == pytest.approx(len(buf.getvalue()) / 1e6, rel=0.01)
    t = p.timings.set_index("batch_size")
    assert list(t.index) == [1, 8]
    assert (t["repeats"] == 3).all()
    for b in (1, 8):
        assert t.loc[b, "latency_ms_median"] == pytest.approx(t.loc[b, "batch_ms_median"] / b)
        assert t.loc[b, "throughput_per_s"] == pytest.approx(1e3 * b / t.loc[b, "batch_ms_median"])
        assert t.loc[b, "batch_ms_q25"] <= t.loc[b, "batch_ms_median"] <= t.loc[b, "batch_ms_q75"]
    c = p.costs()
    assert set(c) == {"latency_ms", "size_mb", "peak_mem_mb", "params"}
    assert c["latency_ms"] == t.loc[1, "latency_ms_median"]
    assert "cpu" in p.peak_mem_method
    q = profile_model(quantize_int8_dynamic(m), torch.randn(4, 16), batch_sizes=(2,), warmup=0,
                      repeats=2, device="cpu")  # fmt: skip
    assert q.params == p.params  # packed int8 weights are counted
    assert q.size_mb < p.size_mb
    pruned = profile_model(magnitude_prune(m), torch.randn(4, 16), batch_sizes=(2,), repeats=1)
    lin_w = sum(x.weight.numel() for x in m.modules() if isinstance(x, torch.nn.Linear))
    assert pruned.nonzero_params == pytest.approx(p.params - round(lin_w / 2), abs=2)


def test_profile_model_bad_input():
    m = tiny()
    with pytest.raises(ValueError, match="torch.nn.Module"):
        profile_model(lambda x: x, torch.randn(2, 16))
    with pytest.raises(ValueError, match="batch_sizes"):
        profile_model(m, torch.randn(2, 16), batch_sizes=(0,))
    with pytest.raises(ValueError, match="example_batch"):
        profile_model(m, np.zeros((2, 16)))
    with pytest.raises(ValueError, match="repeats"):
        profile_model(m, torch.randn(2, 16), repeats=0)
    with pytest.raises(ValueError, match="costs: batch size 7"):
        profile_model(m, torch.randn(2, 16), batch_sizes=(1,), repeats=1).costs(batch_size=7)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            profile_model(m, torch.randn(2, 16), device="cuda")


def _task(n=500, d=16, k=10, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(d, k))
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ w + rng.normal(size=(n, k))).argmax(1)
    return x, y


def _fit(model, x, y, epochs, temp=1.0):
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xt) / temp, yt).backward()
        opt.step()
    return model


def test_compress_and_compare_tiny_mlp(tmp_path):
    x, y = _task()
    van = _fit(tiny(1), x, y, 80)
    dis = _fit(tiny(1), x, y, 80, temp=2.0)
    tiers = np.array([0] * 3 + [1] * 3 + [2] * 4)
    lines = []
    res = compress_and_compare(
        {"vanilla": van, "distilled": dis}, x, y, tiers, str(tmp_path), n_resamples=200,
        repeats=2, warmup=0, batch_sizes=(1, 4), say=lines.append,
    )  # fmt: skip
    names = [f"{s}_{c}" for s in ("vanilla", "distilled") for c in COMPRESSIONS]
    assert res.reference == "vanilla_fp32"
    assert res.variants == names[1:]
    assert len(lines) == 9
    # prediction files carry the costs; their logits are the models' outputs
    p = kdmetrics.load_predictions(tmp_path / "predictions" / "distilled_int8.npz")
    assert p.metadata["precision"] == "int8 dynamic (Linear)"
    assert p.metadata["latency_ms"] == res.costs.loc["distilled_int8", "latency_ms"]
    np.testing.assert_allclose(p.logits, predict(quantize_int8_dynamic(dis), x), rtol=0, atol=0)
    assert res.costs.loc["vanilla_int4", "size_mb"] == pytest.approx(int4_packed_size_mb(van))
    # the cross-compression question is answered
    gain = res.extra_tables["distillation_gain_under_compression"]
    assert set(gain["precision"]) == set(COMPRESSIONS)
    row = gain.query("metric == 'ece' and scaling == 'raw' and precision == 'int8'").iloc[0]
    direct = res.linear(
        {"vanilla_int8": 1, "distilled_int8": -1, "vanilla_fp32": -1, "distilled_fp32": 1}, "ece"
    )
    assert row["change"] == pytest.approx(direct["estimate"])
    assert row["change_ci_low"] == pytest.approx(direct["ci_low"])
    ece = res.metrics.query("group == 'all'").set_index("model")["ece"]
    assert row["gain"] == pytest.approx(ece["vanilla_int8"] - ece["distilled_int8"])
    assert any("erase distillation's calibration gain" in f for f in res.extra_findings)
    written = os.listdir(tmp_path / "compare")
    assert "distillation_gain_under_compression.csv" in written
    assert "pareto_macro_f1.png" in written
    md = (tmp_path / "compare" / "report.md").read_text()
    assert "## Distillation gain under compression" in md
    assert res.constraints is not None and len(res.constraints) == 4 * len(names)
    size = res.constraints[res.constraints["constraint"] == "size_mb<=0.05"].set_index("model")
    for m in names:
        assert size.loc[m, "value"] == res.costs.loc[m, "size_mb"]
        assert size.loc[m, "satisfied"] == (res.costs.loc[m, "size_mb"] <= 0.05)


def _gain_comparison(n=1500, k=6, seed=0):
    """vanilla (over-confident) and distilled students at fp32 and int8."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = {}
    for student, scale in (("vanilla", 4.0), ("distilled", 1.2)):
        z = rng.normal(size=(n, k))
        z[np.arange(n), y] += 1.5
        for prec, noise in (("fp32", 0.0), ("int8", 0.05)):
            logits[f"{student}_{prec}"] = scale * (z + noise * rng.normal(size=(n, k)))
    ref = "vanilla_fp32"
    variants = {m: z for m, z in logits.items() if m != ref}
    return kdmetrics.compare(y, (ref, logits[ref]), variants, n_resamples=300, seed=1)


def test_gain_table_carries_the_rows_trust():
    res = _gain_comparison()
    table = gain_table(res, "vanilla", "distilled", ("fp32", "int8"))
    for r in table.itertuples(index=False):
        src = res.deltas if r.scaling == "raw" else res.calibration_deltas
        if r.scaling == "scaled":
            src = src[src["scaling"] == "scaled"]
        src = src[(src["metric"] == r.metric) & (src["group"] == "all")].set_index("variant")
        for kind, models in (
            ("gain", [f"vanilla_{r.precision}", f"distilled_{r.precision}"]),
            ("change", [f"vanilla_{r.precision}", f"distilled_{r.precision}", "distilled_fp32"]),
        ):
            if kind == "change" and r.precision == "fp32":
                continue
            rows = src.loc[[m for m in models if m != "vanilla_fp32"]]
            ok = bool(rows["trusted"].all()) and not rows["caveat"].astype(bool).any()
            assert getattr(r, f"{kind}_trusted") == ok
            reason = getattr(r, f"{kind}_flag_reason")
            if ok:
                assert reason == ""
            else:
                assert reason in set(rows["flag_reason"]) | set(rows["caveat"]) and reason
    # plain ECE carries its caveat in the engine, so its quoted intervals are flagged
    assert not table[table.metric == "ece"]["gain_trusted"].any()


def test_gain_sentence_says_when_an_interval_is_not_trusted():
    res = _gain_comparison()
    table = gain_table(res, "vanilla", "distilled", ("fp32", "int8"))
    sentences = dict(zip(table.groupby(["metric", "scaling"], sort=False).groups,
                         gain_sentences(table), strict=True))  # fmt: skip
    for (metric, scaling), text in sentences.items():
        t = table[(table.metric == metric) & (table.scaling == scaling)].set_index("precision")
        quoted = [t.loc["fp32", "gain_trusted"]]
        if t.loc["fp32", "gain_verdict"] == "real" and t.loc["fp32", "gain"] > 0:
            quoted += [t.loc["int8", "gain_trusted"], t.loc["int8", "change_trusted"]]
        untrusted = not all(bool(q) for q in quoted)
        assert ("interval not trusted" in text) == untrusted, text
        if untrusted:
            reasons = set(t["gain_flag_reason"]) | set(t["change_flag_reason"].dropna())
            assert any(r and r in text for r in reasons), text
    ece = sentences[("ece", "raw")]
    assert (
        "(real, interval not trusted)" in ece or "(inside the noise, interval not trusted)" in ece
    )


def test_gain_sentence_hand_case():
    row = {"metric": "ece", "scaling": "raw", "gain_verdict": "real", "change_verdict": "real"}
    table = pd.DataFrame(
        [
            {**row, "precision": "fp32", "gain": 0.05, "gain_ci_low": 0.02, "gain_ci_high": 0.08,
             "gain_trusted": False, "gain_flag_reason": "ECE is biased"},
            {**row, "precision": "int8", "gain": 0.04, "gain_ci_low": 0.01, "gain_ci_high": 0.07,
             "gain_trusted": False, "gain_flag_reason": "ECE is biased", "change": -0.01,
             "change_ci_low": -0.02, "change_ci_high": -0.005, "change_trusted": True,
             "change_flag_reason": ""},
        ]
    )  # fmt: skip
    (text,) = gain_sentences(table)
    assert text.count("interval not trusted") == 2  # fp32 gain, int8 gain; not the change
    assert "(real, interval not trusted)" in text
    assert text.endswith("a reading of the point estimates: ECE is biased.")
    trusted = table.assign(gain_trusted=True, gain_flag_reason="")
    (text,) = gain_sentences(trusted)
    assert "not trusted" not in text and "reduced, not erased" in text
