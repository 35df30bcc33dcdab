"""Compressing trained students for real and comparing the variants.

Three compressions of every student, each a new model (the input is left
unchanged):

- ``int8``: dynamic int8 quantization of the ``Linear`` layers
  (``torch.ao.quantization.quantize_dynamic``: int8 weights, activations
  quantized on the fly);
- ``int4``: weight-only 4-bit fake quantization of the ``Linear`` weights,
  per output channel, symmetric (weights rounded to ``scale * q`` with ``q`` in
  ``[-7, 7]`` and ``scale = max|w| / 7`` per row), computed in float: it shows
  what 4-bit weights do to the predictions, not int4 kernels' speed;
- ``pruned50``: global magnitude pruning of 50 % of the ``Linear`` weights
  (``torch.nn.utils.prune.global_unstructured``, L1), made permanent; stored
  dense, so size and latency do not shrink.

Every variant is profiled with :func:`kdmetrics.kd.profile_model`, predicts the
validation set, and :func:`kdmetrics.compare` compares all of them with the
reference student's fp32 model. With a vanilla and a distilled student, the
cross-compression question "does quantization erase distillation's
calibration gain?" gets its own table and sentences: the gain (vanilla -
distilled, for ECE and NLL, raw and after temperature scaling) at each
precision and its change from fp32, with paired intervals from the shared
draws.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from kdmetrics.errors import InvalidArgumentError, ShapeError

COMPRESSIONS: tuple[str, ...] = ("fp32", "int8", "int4", "pruned50")
DEFAULT_CONSTRAINTS: tuple[str, ...] = (
    "macro_f1>=0.20",
    "ece_scaled<=0.05",
    "latency_ms<=10",
    "size_mb<=0.05",
)


def _linears(model: torch.nn.Module) -> list[torch.nn.Linear]:
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear)]


def quantize_int8_dynamic(model: torch.nn.Module) -> torch.nn.Module:
    """A dynamically int8-quantized copy (``Linear`` layers), on CPU, in eval mode."""
    m = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; still the eager API.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(m, {torch.nn.Linear}, dtype=torch.qint8)


def int4_weights(weight: torch.Tensor, bits: int = 4) -> torch.Tensor:
    """Per-output-channel symmetric fake quantization of a 2-D weight: each row
    becomes ``scale * q``, ``q`` integer in ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]``,
    ``scale = max|row| / (2**(bits-1) - 1)``; an all-zero row stays zero."""
    if weight.dim() != 2:
        raise ShapeError(f"int4_weights: weight must be 2-D, got shape {tuple(weight.shape)}")
    qmax = 2 ** (bits - 1) - 1
    scale = weight.abs().amax(dim=1, keepdim=True) / qmax
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.clamp(torch.round(weight / safe), -qmax, qmax)
    return torch.where(scale > 0, q * scale, torch.zeros_like(weight))


def fake_quantize_int4(model: torch.nn.Module, bits: int = 4) -> torch.nn.Module:
    """A copy whose ``Linear`` weights are fake-quantized by :func:`int4_weights`."""
    m = copy.deepcopy(model).cpu().eval()
    with torch.no_grad():
        for layer in _linears(m):
            layer.weight.copy_(int4_weights(layer.weight, bits))
    return m


def int4_packed_size_mb(model: torch.nn.Module, bits: int = 4) -> float:
    """The serialized size a real ``bits``-bit weight-only model would have:
    ``Linear`` weights at ``bits`` bits plus one float32 scale per output
    channel; every other parameter and buffer at its own width."""
    total = 0.0
    quantized = set()
    for layer in _linears(model):
        quantized.add(id(layer.weight))
        total += layer.weight.numel() * bits / 8 + layer.weight.shape[0] * 4
    for t in [*model.parameters(), *model.buffers()]:
        if id(t) not in quantized:
            total += t.numel() * t.element_size()
    return total / 1e6


def magnitude_prune(model: torch.nn.Module, amount: float = 0.5) -> torch.nn.Module:
    """A copy with the ``amount`` fraction of smallest-magnitude ``Linear``
    weights (global over all layers) set to zero, pruning made permanent."""
    from torch.nn.utils import prune

    if not 0 <= amount < 1:
        raise InvalidArgumentError(f"magnitude_prune: amount must be in [0, 1), got {amount}")
    m = copy.deepcopy(model).cpu().eval()
    params = [(layer, "weight") for layer in _linears(m)]
    if not params:
        raise InvalidArgumentError("magnitude_prune: the model has no Linear layer")
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    for layer, name in params:
        prune.remove(layer, name)
    return m


def predict(model: torch.nn.Module, features: Any, batch_size: int = 1024) -> np.ndarray:
    """float32 logits of ``model`` on ``features`` (N x D), in batches, on CPU."""
    x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    out = []
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for i in range(0, x.shape[0], batch_size):
                out.append(model(x[i : i + batch_size]).float().cpu().numpy())
    finally:
        model.train(was)
    return np.concatenate(out)


def compress(model: torch.nn.Module) -> dict[str, tuple[torch.nn.Module, dict[str, Any]]]:
    """The fp32 model (a CPU copy) and its compressions, each with cost
    metadata that profiling does not measure (precision, notes, size overrides)."""
    fp32 = copy.deepcopy(model).cpu().eval()
    int4 = fake_quantize_int4(fp32)
    return {
        "fp32": (fp32, {"precision": "fp32"}),
        "int8": (quantize_int8_dynamic(fp32), {"precision": "int8 dynamic (Linear)"}),
        "int4": (
            int4,
            {
                "precision": "int4 weight-only (simulated)",
                "size_mb": int4_packed_size_mb(fp32),
                "note": "size: packed 4-bit estimate; latency and memory: fp32 kernels",
            },
        ),
        "pruned50": (
            magnitude_prune(fp32, 0.5),
            {"precision": "fp32, 50% sparse", "note": "stored dense: no size or speed gain"},
        ),
    }


def _trust(result: Any, models: Sequence[str], metric: str, scaling: str) -> tuple[bool, str]:
    """(trusted, reason) of a contrast of ``models`` on ``metric`` (group all):
    trusted when the delta row of every model among them (the reference has
    none) is trusted and has no caveat."""
    if scaling == "full":
        table = result.deltas
    else:
        table = result.calibration_deltas
        table = table[table["scaling"] == scaling]
    rows = table[
        (table["metric"] == metric) & (table["group"] == "all") & table["variant"].isin(models)
    ]
    for r in rows.itertuples(index=False):
        caveat = str(getattr(r, "caveat", "") or "")
        if not bool(r.trusted) or caveat:
            return False, str(r.flag_reason or "") or caveat
    return True, ""


def gain_table(result: Any, base: str, distilled: str, precisions: Sequence[str]) -> pd.DataFrame:
    """Distillation's calibration gain at each precision and its change from fp32.

    gain = metric(base student) - metric(distilled student) (ECE and NLL:
    positive = distillation calibrates better), on all examples (``raw``) and
    after each model's own temperature scaling (``scaled``, evaluation half);
    change = gain at the precision - gain at fp32. Intervals are paired, from
    the shared resample draws. ``gain_trusted``/``gain_flag_reason`` and
    ``change_trusted``/``change_flag_reason``: an interval is trusted only when
    the delta rows of every model it combines (``result.deltas``, or the
    scaled ``result.calibration_deltas``) are trusted and carry no caveat (plain
    ECE's intervals do not: its sample bias); the reason is the first such
    row's ``flag_reason``, else its caveat.
    """
    rows = []
    cal = result.calibration_deltas
    metrics = [m for m in ("ece", "nll") if m in result.scalars["metrics"]]
    for scaling in ("full", "scaled"):
        if scaling == "scaled" and cal is None:
            continue
        for metric in metrics:
            b0, d0 = f"{base}_fp32", f"{distilled}_fp32"
            for p in precisions:
                b, d = f"{base}_{p}", f"{distilled}_{p}"
                g = result.linear({b: 1.0, d: -1.0}, metric, "all", scaling)
                g_trusted, g_reason = _trust(result, (b, d), metric, scaling)
                row = {
                    "metric": metric,
                    "scaling": "raw" if scaling == "full" else "scaled",
                    "precision": p,
                    "gain": g["estimate"],
                    "gain_ci_low": g["ci_low"],
                    "gain_ci_high": g["ci_high"],
                    "gain_verdict": g["verdict"],
                    "gain_trusted": g_trusted,
                    "gain_flag_reason": g_reason,
                }
                if p != "fp32":
                    c = result.linear({b: 1.0, d: -1.0, b0: -1.0, d0: 1.0}, metric, "all", scaling)
                    c_trusted, c_reason = _trust(result, (b, d, b0, d0), metric, scaling)
                    row.update(
                        change=c["estimate"],
                        change_ci_low=c["ci_low"],
                        change_ci_high=c["ci_high"],
                        change_verdict=c["verdict"],
                        change_trusted=c_trusted,
                        change_flag_reason=c_reason,
                    )
                rows.append(row)
    return pd.DataFrame(rows)


def gain_sentences(table: pd.DataFrame) -> list[str]:
    """One answer per (metric, scaling, precision) to "does compression erase
    distillation's calibration gain?"."""
    from kdmetrics.comparison.render import interval_text

    out = []
    for (metric, scaling), t in table.groupby(["metric", "scaling"], sort=False):
        t = t.set_index("precision")
        base = t.loc["fp32"]
        reasons: list[str] = []

        def flag(r: Any, kind: str, reasons: list[str] = reasons) -> str:
            """ ", interval not trusted" for an untrusted quoted interval."""
            if bool(r.get(f"{kind}_trusted", True)):
                return ""
            reasons.append(str(r.get(f"{kind}_flag_reason", "") or "no reason recorded"))
            return ", interval not trusted"

        head = (
            f"Distillation's {metric.upper()} gain ({scaling}) at fp32: "
            f"{interval_text(base['gain'], base['gain_ci_low'], base['gain_ci_high'])} "
            f"({base['gain_verdict']}{flag(base, 'gain')})"
        )
        if base["gain_verdict"] != "real":
            text = head + ": no resolvable gain at fp32, so there is none to erase."
        elif base["gain"] < 0:
            text = head + ": distillation is worse here at fp32, so there is no gain to erase."
        else:
            parts = []
            for p, r in t.drop(index="fp32").iterrows():
                gain_real = r["gain_verdict"] == "real" and r["gain"] > 0
                lost = r["change_verdict"] == "real" and r["change"] < 0
                if gain_real and not lost:
                    answer = "kept"
                elif gain_real:
                    answer = "reduced, not erased"
                elif lost:
                    answer = "erased"
                else:
                    answer = "no longer resolvable, but its loss is not resolvable either"
                gain = interval_text(r["gain"], r["gain_ci_low"], r["gain_ci_high"])
                change = interval_text(r["change"], r["change_ci_low"], r["change_ci_high"])
                parts.append(
                    f"{p} {gain}{flag(r, 'gain')}, change {change}{flag(r, 'change')}: {answer}"
                )
            text = head + "; " + "; ".join(parts) + "."
        if reasons:
            text += (
                " The intervals marked not trusted are a reading of the point estimates: "
                + "; ".join(dict.fromkeys(reasons))
                + "."
            )
        out.append(text)
    return out


def compress_and_compare(
    students: Mapping[str, torch.nn.Module],
    val_features: Any,
    labels: Any,
    tier_of_class: Any,
    out_dir: str,
    *,
    reference: str | None = None,
    gain_pair: tuple[str, str] = ("vanilla", "distilled"),
    n_resamples: int = 10_000,
    seed: int = 0,
    constraints: Sequence[str] = DEFAULT_CONSTRAINTS,
    batch_sizes: Sequence[int] = (1, 32),
    warmup: int = 5,
    repeats: int = 30,
    num_threads: int | None = 1,
    say: Callable[[str], None] = print,
    write: bool = True,
):
    """Compresses every student (:func:`compress`), profiles and predicts each
    variant, saves their prediction files (with costs in the metadata) under
    ``out_dir/predictions`` and compares them all with ``reference``'s fp32
    model (default: the first student); writes the comparison to
    ``out_dir/compare`` unless ``write=False``. Returns the
    :class:`~kdmetrics.comparison.engine.Comparison`, with the table
    ``distillation_gain_under_compression`` when both students of
    ``gain_pair`` are present.

    Latencies are per example at the smallest batch size, on CPU with
    ``num_threads`` PyTorch threads.
    """
    from kdmetrics.comparison.engine import compare
    from kdmetrics.comparison.render import write_comparison
    from kdmetrics.io.predictions import save_predictions
    from kdmetrics.kd.profile import profile_model

    if not students:
        raise ShapeError("compress_and_compare: students is empty")
    ref_student = reference or next(iter(students))
    if ref_student not in students:
        raise InvalidArgumentError(
            f"compress_and_compare: reference {ref_student!r} is not among the students "
            f"{list(students)}"
        )
    y = np.asarray(labels)
    x = torch.as_tensor(np.asarray(val_features), dtype=torch.float32)
    example = x[: max(batch_sizes)]
    pred_dir = os.path.join(out_dir, "predictions")
    os.makedirs(pred_dir, exist_ok=True)
    logits: dict[str, np.ndarray] = {}
    costs: dict[str, dict[str, Any]] = {}
    for student, model in students.items():
        for kind, (m, meta) in compress(model).items():
            name = f"{student}_{kind}"
            prof = profile_model(
                m, example, batch_sizes=batch_sizes, warmup=warmup, repeats=repeats,
                device="cpu", num_threads=num_threads,
            )  # fmt: skip
            row: dict[str, Any] = {**prof.costs("cpu"), **meta}
            costs[name] = row
            logits[name] = predict(m, x)
            save_predictions(
                os.path.join(pred_dir, f"{name}.npz"), logits[name], y,
                tier_of_class=tier_of_class, model=name,
                **{k: v for k, v in row.items() if v is not None},
            )  # fmt: skip
            say(
                f"{name}: {row['precision']}, {row['params']:.0f} params, "
                f"{row['size_mb']:.3f} MB, {row['latency_ms']:.4f} ms/example"
            )
    ref_name = f"{ref_student}_fp32"
    variants = {n: z for n, z in logits.items() if n != ref_name}
    say(f"compare: {len(variants)} variants against {ref_name}, {n_resamples} resamples")
    result = compare(
        y, (ref_name, logits[ref_name]), variants, tier_of_class=tier_of_class, costs=costs,
        constraints=constraints, n_resamples=n_resamples, seed=seed,
    )  # fmt: skip
    base, distilled = gain_pair
    if base in students and distilled in students:
        table = gain_table(result, base, distilled, COMPRESSIONS)
        result.extra_tables["distillation_gain_under_compression"] = table
        result.extra_findings += [
            "Does compression erase distillation's calibration gain? " + s
            for s in gain_sentences(table)
        ]
    if write:
        write_comparison(result, os.path.join(out_dir, "compare"))
    return result
