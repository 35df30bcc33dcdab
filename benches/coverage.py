"""Coverage harness: how often do kdmetrics' 95 % intervals contain the truth?

Simulated long-tail populations with known metric values (K = 113 classes,
tiers 20/40/53 whose shares of the label distribution are the reference
validation sizes head 5,155 / mid 1,065 / tail 210 of N = 6,430), a teacher
and two correlated students A and B. For each scenario:

1. **Truth.** Every metric of A, B (and the teacher divergences) is computed
   in float64 NumPy on a large draw, *stratified by tier* (``--truth-per-tier``
   examples per tier, combined with the tier shares), so that small groups
   get accurate population values too: a near-calibrated model's binned ECE
   on a small sample is itself biased upward, and the truth must not be.
2. **Repeated validation sets.** ``--draws`` i.i.d. validation sets of 6,430
   examples; on each, ``kdmetrics.paired_bootstrap`` (``--resamples``
   resamples, BCa, deltas returned) and
   ``kdmetrics.stats.policy.calibration_bootstrap`` (the debiased calibration
   error, on the same resample draws).
3. **Coverage** of each interval construction (percentile, basic, BCa,
   mean-shifted percentile) per (metric, group), with its Monte-Carlo
   standard error ``sqrt(c (1 - c) / R)``, the misses on each side, and the
   bias of the point estimate of B - A (in units of its SD across sets).

Usage::

    PYTHONPATH=python python benches/coverage.py --quick
    PYTHONPATH=python python benches/coverage.py --draws 400 --resamples 1000 --out cov.md

The short version runs in the default test suite (tests/stats/test_coverage.py).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kdmetrics.metrics.registry import METRICS as REGISTRY
from kdmetrics.stats import bootstrap as bs
from kdmetrics.stats import policy
from kdmetrics.tiers import TIER_NAMES

K = 113
TIER_SIZES = (20, 40, 53)
VALIDATION = (5_155, 1_065, 210)  # reference validation examples per tier
N_VAL = sum(VALIDATION)
N_BINS = 15
CI = 0.95
GROUPS = ("all", *TIER_NAMES)
# Every metric the bootstrap engine computes, in registry order.
ENGINE_METRICS = tuple(m for m in REGISTRY if m in bs.METRICS)
CAL_METRICS = tuple(policy.CALIBRATION_ESTIMATORS)
ENGINE_METHODS = (*bs.METHODS, policy.SHIFTED)
CAL_METHODS = tuple(m for m in ENGINE_METHODS if m != "bca")


@dataclass(frozen=True)
class Model:
    sigma: float  # own noise
    tau: float  # logit scale: > calibrated is over-confident, < under-confident
    beta: float  # signal bonus on the true class


@dataclass(frozen=True)
class Scenario:
    name: str
    intent: str
    s_head: float
    s_tail: float
    gamma: float  # prior towards frequent classes
    a: Model
    b: Model
    teacher: Model = Model(0.7, 2.0, 1.0)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "kd_like",
            "A over-confident (vanilla), B near-calibrated and a little better (distilled)",
            4.6, 3.4, 0.35, Model(1.0, 3.0, 0.0), Model(0.95, 2.2, 0.05),
        ),
        Scenario(
            "close",
            "both near-calibrated overall, close in accuracy: small true differences",
            4.6, 3.4, 0.35, Model(1.0, 2.2, 0.0), Model(1.0, 2.2, 0.03),
        ),
        Scenario(
            "tail_calibrated",
            "no head prior: B near-calibrated in every tier, tail included; A over-confident",
            4.0, 4.0, 0.0, Model(1.0, 3.0, 0.0), Model(0.95, 2.1, 0.05),
        ),
        Scenario(
            "under_confident",
            "both under-confident (logits too soft), B less so and a little better",
            4.6, 3.4, 0.35, Model(1.0, 1.3, 0.0), Model(0.95, 1.7, 0.05),
        ),
    )
}  # fmt: skip


def class_frequencies() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frequency of each class, tier code of each class, tier shares)."""
    shares = np.array(VALIDATION, dtype=np.float64) / N_VAL
    freq, tiers = [], []
    for t, (size, share) in enumerate(zip(TIER_SIZES, shares, strict=True)):
        w = 0.97 ** np.arange(size)
        freq.append(share * w / w.sum())
        tiers.append(np.full(size, t))
    return np.concatenate(freq), np.concatenate(tiers), shares


FREQ, TIER_OF_CLASS, SHARES = class_frequencies()


def _signal(sc: Scenario) -> np.ndarray:
    k = np.arange(K)
    return sc.s_head + (sc.s_tail - sc.s_head) * np.log(k + 1) / np.log(K)


def draw(sc: Scenario, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """float32 logits (teacher, A, B) for labels ``y``."""
    n = y.shape[0]
    s = _signal(sc)
    prior = (sc.gamma * np.log(FREQ / FREQ.max())).astype(np.float32)
    shared = rng.standard_normal((n, K), dtype=np.float32)
    rows = np.arange(n)
    out = []
    for m in (sc.teacher, sc.a, sc.b):
        z = shared + np.float32(m.sigma) * rng.standard_normal((n, K), dtype=np.float32)
        z += prior
        z[rows, y] += (s[y] + m.beta).astype(np.float32)
        z *= np.float32(m.tau)
        out.append(z)
    return tuple(out)


def _example_values(z: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    z = z.astype(np.float64)
    zmax = z.max(axis=1, keepdims=True)
    e = np.exp(z - zmax)
    s = e.sum(axis=1, keepdims=True)
    p = e / s
    logp = z - zmax - np.log(s)
    rows = np.arange(y.shape[0])
    pred = z.argmax(axis=1)
    conf = p.max(axis=1)
    correct = (pred == y).astype(np.float64)
    return {
        "p": p,
        "logp": logp,
        "pred": pred,
        "conf": conf,
        "correct": correct,
        "nll": -logp[rows, y],
        "brier": (p * p).sum(axis=1) - 2 * p[rows, y] + 1.0,
    }


def _kl_js(t: dict, m: dict) -> tuple[np.ndarray, np.ndarray]:
    pt, pm = t["p"], m["p"]
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(pt > 0, pt * (t["logp"] - m["logp"]), 0.0).sum(axis=1)
        mix = 0.5 * (pt + pm)
        lmix = np.log(mix)
        js = 0.5 * (
            np.where(pt > 0, pt * (t["logp"] - lmix), 0.0).sum(axis=1)
            + np.where(pm > 0, pm * (m["logp"] - lmix), 0.0).sum(axis=1)
        )
    return kl, js


def population_truth(sc: Scenario, per_tier: int, seed: int, chunk: int = 20_000) -> pd.DataFrame:
    """True value of every (metric, group) for A and B: a metric's expectation
    over the population, from ``per_tier`` examples drawn within each tier and
    combined with the tier shares (macro F1 from population TP / true / predicted
    rates; binned metrics from population per-bin rates)."""
    rng = np.random.default_rng([seed, 7])
    n_t = len(TIER_SIZES)
    # Expectations per tier (conditional on the tier), per model.
    mean = {m: np.zeros((2, n_t)) for m in ("correct", "nll", "brier", "kl", "js")}
    bins = np.zeros((2, n_t, 3, N_BINS))  # P(bin), E[conf 1_bin], E[correct 1_bin]
    tp = np.zeros((2, n_t, K))  # P(pred = y = c | tier)
    npred = np.zeros((2, n_t, K))  # P(pred = c | tier)
    for t in range(n_t):
        cls = np.flatnonzero(TIER_OF_CLASS == t)
        pc = FREQ[cls] / FREQ[cls].sum()
        done = 0
        while done < per_tier:
            m_ = min(chunk, per_tier - done)
            y = rng.choice(cls, size=m_, p=pc)
            zt, za, zb = draw(sc, y, rng)
            vt = _example_values(zt, y)
            for j, z in enumerate((za, zb)):
                v = _example_values(z, y)
                kl, js = _kl_js(vt, v)
                for key, val in (
                    ("correct", v["correct"]), ("nll", v["nll"]), ("brier", v["brier"]),
                    ("kl", kl), ("js", js),
                ):  # fmt: skip
                    mean[key][j, t] += val.sum() / per_tier
                ids = np.clip(
                    np.searchsorted(np.linspace(0, 1, N_BINS + 1), v["conf"]) - 1, 0, None
                )
                bins[j, t, 0] += np.bincount(ids, minlength=N_BINS) / per_tier
                bins[j, t, 1] += np.bincount(ids, weights=v["conf"], minlength=N_BINS) / per_tier
                bins[j, t, 2] += np.bincount(ids, weights=v["correct"], minlength=N_BINS) / per_tier
                hit = v["correct"] > 0
                tp[j, t] += np.bincount(y[hit], minlength=K) / per_tier
                npred[j, t] += np.bincount(v["pred"], minlength=K) / per_tier
            done += m_
    rows = []
    for j, model in enumerate(("a", "b")):
        ntrue = FREQ
        tp_all = (SHARES[:, None] * tp[j]).sum(0)
        pred_all = (SHARES[:, None] * npred[j]).sum(0)
        f1 = 2 * tp_all / (ntrue + pred_all)
        for g, group in enumerate(GROUPS):
            w = SHARES if g == 0 else np.eye(n_t)[g - 1]
            vals: dict[str, float] = {}
            for key, name in (("correct", "accuracy"), ("nll", "nll"), ("brier", "brier"),
                              ("kl", "kl"), ("js", "js")):  # fmt: skip
                vals[name] = float((w * mean[key][j]).sum() / w.sum())
            pb = (w[:, None, None] * bins[j]).sum(0) / w.sum()  # (3, bins)
            vals["ece"] = float(np.abs(pb[2] - pb[1]).sum())
            with np.errstate(invalid="ignore", divide="ignore"):
                gap = np.where(pb[0] > 0, (pb[2] - pb[1]) / pb[0], 0.0)
            ce2 = float((pb[0] * gap**2).sum())
            vals["ce2_debiased"] = ce2
            vals["ce_debiased"] = float(np.sqrt(ce2))
            cls = np.arange(K) if g == 0 else np.flatnonzero(TIER_OF_CLASS == g - 1)
            vals["macro_f1"] = float(f1[cls].mean())
            for metric, value in vals.items():
                rows.append((metric, group, model, value))
    t = pd.DataFrame(rows, columns=["metric", "group", "model", "value"])
    t = t.pivot_table(index=["metric", "group"], columns="model", values="value").reset_index()
    t["true_delta"] = t["b"] - t["a"]
    return t


def _one_draw(sc: Scenario, r: int, resamples: int, seed: int) -> tuple[list[tuple], int]:
    rng = np.random.default_rng([seed, 11, r])
    y = rng.choice(K, size=N_VAL, p=FREQ)
    zt, za, zb = draw(sc, y, rng)
    out = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table, deltas = bs.paired_bootstrap(
            y, za, zb, tier_of_class=TIER_OF_CLASS, metrics=ENGINE_METRICS, reference_logits=zt,
            n_resamples=resamples, method="bca", seed=r, return_deltas=True,
        )  # fmt: skip
        keys = list(zip(table.metric, table.group, strict=True))
        d = np.stack([deltas[k] for k in keys], axis=1)
        est = table["delta"].to_numpy()
        ints = {"bca": (table["ci_low"].to_numpy(), table["ci_high"].to_numpy())}
        for method in ENGINE_METHODS:
            if method != "bca":
                ints[method] = policy.any_interval(d, est, CI, method)
        prep = policy._prepare_calibration("coverage", y, za, zb, TIER_OF_CLASS, N_BINS)
        full, res = policy._calibration_values(prep, resamples, r, 0)
        for metric in CAL_METRICS:
            ct, cd = policy._calibration_table(
                prep, metric, full, res, CI, "percentile", return_deltas=True
            )
            ck = list(zip(ct.metric, ct.group, strict=True))
            cdm = np.stack([cd[k] for k in ck], axis=1)
            cest = ct["delta"].to_numpy()
            keys += ck
            est = np.concatenate([est, cest])
            table = pd.concat([table, ct], ignore_index=True)
            for method in ENGINE_METHODS:
                lo, hi = (
                    (np.full(len(ck), np.nan), np.full(len(ck), np.nan))
                    if method == "bca"
                    else policy.any_interval(cdm, cest, CI, method)
                )
                ints[method] = (
                    np.concatenate([ints[method][0], lo]),
                    np.concatenate([ints[method][1], hi]),
                )
            d = np.concatenate([d, cdm], axis=1)
    boot_sd = np.nanstd(d, axis=0, ddof=1)
    for s, (metric, group) in enumerate(keys):
        row = [sc.name, r, metric, group, table["a"].iat[s], table["b"].iat[s], est[s], boot_sd[s]]
        for method in ENGINE_METHODS:
            row += [ints[method][0][s], ints[method][1][s]]
        out.append(tuple(row))
    return out, len(caught)


def run(
    scenarios: list[str],
    draws: int,
    resamples: int,
    truth_per_tier: int,
    seed: int = 2024,
    log=None,
    checkpoint=None,
    every: int = 50,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(per-draw rows, truth, info) for the named scenarios. ``checkpoint``
    (if given) is called with the same triple every ``every`` draws."""
    cols = ["scenario", "draw", "metric", "group", "est_a", "est_b", "estimate", "boot_sd"]
    for m in ENGINE_METHODS:
        cols += [f"{m}_lo", f"{m}_hi"]
    rows, truths, info = [], [], {}
    for name in scenarios:
        sc = SCENARIOS[name]
        t0 = time.perf_counter()
        truth = population_truth(sc, truth_per_tier, seed)
        truth.insert(0, "scenario", name)
        truths.append(truth)
        n_warn = 0
        for r in range(draws):
            out, w = _one_draw(sc, r, resamples, seed)
            rows += out
            n_warn += w
            if checkpoint is not None and (r + 1) % every == 0 and r + 1 < draws:
                info[name] = {"seconds": time.perf_counter() - t0, "warnings": n_warn}
                checkpoint(
                    pd.DataFrame(rows, columns=cols), pd.concat(truths, ignore_index=True), info
                )
        info[name] = {"seconds": time.perf_counter() - t0, "warnings": n_warn}
        if log:
            log(f"{name}: {draws} draws in {info[name]['seconds']:.0f} s, {n_warn} warnings")
    return pd.DataFrame(rows, columns=cols), pd.concat(truths, ignore_index=True), info


def summarize(per_draw: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """One row per (scenario, metric, group, method): coverage, its Monte-Carlo
    SE, misses on each side, mean width; and the bias of the point estimate."""
    df = per_draw.merge(truth, on=["scenario", "metric", "group"])
    out = []
    for (scn, metric, group), g in df.groupby(["scenario", "metric", "group"], sort=False):
        true = float(g["true_delta"].iat[0])
        est = g["estimate"].to_numpy()
        sd = float(np.std(est, ddof=1)) if len(est) > 1 else np.nan
        base = {
            "scenario": scn, "metric": metric, "group": group,
            "true_a": float(g["a"].iat[0]), "true_b": float(g["b"].iat[0]), "true_delta": true,
            "mean_est_a": float(g["est_a"].mean()), "mean_est_b": float(g["est_b"].mean()),
            "mean_estimate": float(est.mean()), "bias": float(est.mean() - true),
            "bias_sd": float((est.mean() - true) / sd) if sd > 0 else np.nan,
            "sd_estimate": sd, "mean_boot_sd": float(g["boot_sd"].mean()),
        }  # fmt: skip
        for method in ENGINE_METHODS:
            lo, hi = g[f"{method}_lo"].to_numpy(), g[f"{method}_hi"].to_numpy()
            ok = np.isfinite(lo) & np.isfinite(hi)
            r = int(ok.sum())
            if r == 0:
                continue
            cov = float(((lo[ok] <= true) & (true <= hi[ok])).mean())
            out.append({
                **base, "method": method, "draws": r, "coverage": cov,
                "mc_se": float(np.sqrt(cov * (1 - cov) / r)),
                "miss_low": float((lo[ok] > true).mean()),
                "miss_high": float((hi[ok] < true).mean()),
                "mean_width": float((hi[ok] - lo[ok]).mean()),
            })  # fmt: skip
    return pd.DataFrame(out)


def markdown(summary: pd.DataFrame, info: dict, command: str, params: str) -> str:
    """The coverage tables (one per scenario) and the bias table."""
    lines = [f"Command: `{command}`", "", params, ""]
    methods = [m for m in ENGINE_METHODS if m in set(summary.method)]
    for scn, s in summary.groupby("scenario", sort=False):
        sc = SCENARIOS[scn]
        lines += [f"#### `{scn}`: {sc.intent}", ""]
        lines.append(f"{info[scn]['warnings']} warnings from kdmetrics in this scenario.")
        lines.append("")
        head = "| metric | group | true Δ | bias/SD | " + " | ".join(methods) + " |"
        lines += [head, "|" + "---|" * (4 + len(methods))]
        for (metric, group), g in s.groupby(["metric", "group"], sort=False):
            g = g.set_index("method")
            cells = []
            for m in methods:
                if m in g.index:
                    c = g.loc[m]
                    cells.append(f"{c.coverage:.3f} ± {c.mc_se:.3f}")
                else:
                    cells.append("n/a")
            first = g.iloc[0]
            lines.append(
                f"| {metric} | {group} | {first.true_delta:+.4f} | {first.bias_sd:+.2f} | "
                + " | ".join(cells)
                + " |"
            )
        lines.append("")
    lines += [
        "#### Bias of the point estimates (mean over validation sets − population value)",
        "",
        "| scenario | metric | group | A: true | A: mean est. | B: true | B: mean est. "
        "| bias of Δ | SD of Δ | mean boot SD |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    first = summary.drop_duplicates(["scenario", "metric", "group"])
    for _, c in first.iterrows():
        lines.append(
            f"| {c.scenario} | {c.metric} | {c.group} | {c.true_a:.4f} | {c.mean_est_a:.4f} | "
            f"{c.true_b:.4f} | {c.mean_est_b:.4f} | {c.bias:+.4f} | {c.sd_estimate:.4f} | "
            f"{c.mean_boot_sd:.4f} |"
        )
    return "\n".join(lines) + "\n"


def seed_coverage(
    n_seeds: int,
    reps: int,
    *,
    paired: bool = False,
    interval: str = "t",
    sd_a: float = 0.0015,
    sd_b: float = 0.0015,
    seed_sd: float = 0.0,
    true_delta: float = 0.004,
    resamples: int = 2000,
    seed: int = 99,
) -> dict:
    """Coverage of ``compare_seeds``' interval: per recipe ``n_seeds`` normal
    per-seed scores (means 0.72 and 0.72 + ``true_delta``, SDs ``sd_a``,
    ``sd_b``); ``seed_sd`` adds a seed effect shared by both arms (what
    pairing by seed removes)."""
    from kdmetrics.stats.seeds import compare_seeds

    rng = np.random.default_rng([seed, n_seeds, int(paired)])
    hit = 0
    for i in range(reps):
        shared = rng.normal(0.0, seed_sd, n_seeds)
        a = 0.72 + shared + rng.normal(0.0, sd_a, n_seeds)
        b = 0.72 + true_delta + shared + rng.normal(0.0, sd_b, n_seeds)
        r = compare_seeds(
            a, b, paired=paired, interval=interval, n_resamples=resamples, seed=i, max_exact=0
        )
        hit += r.ci_low <= true_delta <= r.ci_high
    cov = hit / reps
    return {"coverage": cov, "mc_se": float(np.sqrt(cov * (1 - cov) / reps)), "reps": reps}


SEED_CASES = {
    "equal SDs": {},
    "SD of B twice A's": {"sd_b": 0.003},
    "shared seed effect": {"seed_sd": 0.002},
}


def seed_table(reps: int, seeds: tuple[int, ...] = (3, 5, 10)) -> str:
    lines = [
        f"{reps} repetitions per cell; true Δ = 0.004; Monte-Carlo SE at 0.95: "
        f"{np.sqrt(0.95 * 0.05 / reps):.4f}.",
        "",
        "| case | seeds per recipe | Welch t (default) | paired t (`paired=True`) "
        '| bootstrap (`interval="bootstrap"`) |',
        "|---|---|---|---|---|",
    ]
    for case, kw in SEED_CASES.items():
        for n in seeds:
            w = seed_coverage(n, reps, **kw)
            pt = seed_coverage(n, reps, paired=True, **kw)
            bt = seed_coverage(n, reps, interval="bootstrap", **kw)
            lines.append(
                f"| {case} | {n} | {w['coverage']:.3f} ± {w['mc_se']:.3f} | "
                f"{pt['coverage']:.3f} ± {pt['mc_se']:.3f} | "
                f"{bt['coverage']:.3f} ± {bt['mc_se']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def policy_literal(summary: pd.DataFrame, run: str) -> str:
    """The MEASURED block of ``kdmetrics/stats/policy.py`` for a summary table."""
    scenarios = list(dict.fromkeys(summary["scenario"]))
    draws = int(summary["draws"].min())
    import re
    import textwrap

    # The commands of the run, without their output paths, wrapped to fit.
    cmds = [re.sub(r" --(out|csv) \S+", "", c).strip() for c in run.split(";") if c.strip()]
    lines = ["MEASURED_RUN: tuple[str, ...] = ("]
    for c in cmds:
        parts = textwrap.wrap(c, 80, break_on_hyphens=False)
        lines += [f"    {parts[0]!r}"] + [f"    {' ' + q!r}" for q in parts[1:]]
        lines[-1] += ","
    lines += [
        ")",
        f"MEASURED_DRAWS = {draws}",
        f"SCENARIOS: tuple[str, ...] = {tuple(scenarios)!r}",
        "# (metric, group, method) -> coverage of the 95 % interval in each scenario.",
        "MEASURED: dict[tuple[str, str, str], tuple[float, ...]] = {",
    ]
    for (metric, group, method), g in summary.groupby(["metric", "group", "method"], sort=False):
        cov = g.set_index("scenario").reindex(scenarios)["coverage"]
        if cov.isna().any():
            continue
        vals = ", ".join(f"{c:.4f}" for c in cov)
        lines.append(f"    ({metric!r}, {group!r}, {method!r}): ({vals},),")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short run (test suite size)")
    p.add_argument("--scenarios", nargs="*", default=list(SCENARIOS), choices=list(SCENARIOS))
    p.add_argument("--draws", type=int, default=400)
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--truth-per-tier", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--out", help="write the Markdown tables here")
    p.add_argument("--csv", help="write the summary table (one row per method) here")
    p.add_argument("--seeds", type=int, default=0, help="only the compare_seeds study, N reps")
    p.add_argument("--emit-policy", nargs="+", metavar="CSV", help="print policy.MEASURED")
    p.add_argument("--run", default="", help="with --emit-policy: the command of the run")
    a = p.parse_args(argv)
    if a.emit_policy:
        summary = pd.concat([pd.read_csv(f) for f in a.emit_policy], ignore_index=True)
        print(policy_literal(summary, a.run), end="")
        return 0
    command = "PYTHONPATH=python python benches/coverage.py " + " ".join(argv or sys.argv[1:])
    if a.seeds:
        text = f"Command: `{command}`\n\n" + seed_table(a.seeds)
        if a.out:
            with open(a.out, "w") as f:
                f.write(text)
        print(text)
        return 0
    if a.quick:
        a.draws, a.resamples, a.truth_per_tier = 30, 300, 100_000

    def write(per_draw: pd.DataFrame, truth: pd.DataFrame, info: dict) -> str:
        summary = summarize(per_draw, truth)
        done = per_draw.groupby("scenario")["draw"].nunique().min()
        params = (
            f"{done} validation sets of n = {N_VAL} per scenario, {a.resamples} resamples each, "
            f"truth from {a.truth_per_tier:,} examples per tier, seed {a.seed}. "
            "Cells: coverage of the 95 % interval ± its Monte-Carlo SE."
        )
        text = markdown(summary, info, command, params)
        if a.out:
            with open(a.out, "w") as f:
                f.write(text)
        if a.csv:
            summary.to_csv(a.csv, index=False)
        return text

    per_draw, truth, info = run(
        a.scenarios, a.draws, a.resamples, a.truth_per_tier, a.seed,
        log=lambda s: print(s, file=sys.stderr, flush=True),
        checkpoint=write if (a.out or a.csv) else None,
    )  # fmt: skip
    print(write(per_draw, truth, info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
