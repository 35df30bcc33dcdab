//! Statistic kind `MacroF1`: mean per-class F1 of a group's classes, from
//! confusion counts over all examples of the (re)sample; a class with
//! `TP + FP + FN = 0` is left out of the average.

use super::problem::Problem;
use super::resample::Totals;

#[inline]
fn f1_of(tp: i64, fp: i64, fn_: i64) -> Option<f64> {
    let d = 2 * tp + fp + fn_;
    (d > 0).then(|| 2.0 * tp as f64 / d as f64)
}

/// Per model and group, the sum and count of defined per-class F1 from the
/// counts `confusion[m]` (tp `[0, K)`, fn `[K, 2K)`, fp `[2K, 3K)`).
#[inline(always)]
pub(super) fn totals(p: &Problem, confusion: &[Vec<i64>], t: &mut Totals) {
    let k = p.k;
    for m in 0..p.m {
        t.f1_sum[m].fill(0.0);
        t.f1_cnt[m].fill(0.0);
        let (tp, rest) = confusion[m].split_at(k);
        let (fn_, fp) = rest.split_at(k);
        for c in 0..k {
            let g = if p.n_groups > 1 {
                1 + p.class_tier[c] as usize
            } else {
                0
            };
            if let Some(f) = f1_of(tp[c], fp[c], fn_[c]) {
                t.f1_sum[m][g] += f;
                t.f1_cnt[m][g] += 1.0;
            }
        }
        if p.n_groups > 1 {
            for v in [&mut t.f1_sum[m], &mut t.f1_cnt[m]] {
                v[0] = v[1..].iter().sum();
            }
        }
    }
}

#[inline(always)]
pub(super) fn value(t: &Totals, g: usize, m: usize) -> f64 {
    t.f1_sum[m][g] / t.f1_cnt[m][g]
}

/// Macro F1 of group `g`, model `m`, with example `j` left out: only the
/// classes of its label and its prediction change.
pub(super) fn leave_one_out(
    p: &Problem,
    t: &Totals,
    confusion: &[Vec<i64>],
    g: usize,
    m: usize,
    j: usize,
) -> f64 {
    let k = p.k;
    let (y, pr) = (p.labels[j] as usize, p.preds[m][j] as usize);
    let conf = &confusion[m];
    let (tp, fn_, fp) = (&conf[..k], &conf[k..2 * k], &conf[2 * k..3 * k]);
    let (mut sum, mut cnt) = (t.f1_sum[m][g], t.f1_cnt[m][g]);
    let in_set = |c: usize| g == 0 || p.class_tier[c] as usize == g - 1;
    let mut touch = |c: usize, dtp: i64, dfp: i64, dfn: i64| {
        if !in_set(c) {
            return;
        }
        if let Some(f) = f1_of(tp[c], fp[c], fn_[c]) {
            sum -= f;
            cnt -= 1.0;
        }
        if let Some(f) = f1_of(tp[c] - dtp, fp[c] - dfp, fn_[c] - dfn) {
            sum += f;
            cnt += 1.0;
        }
    };
    if y == pr {
        touch(y, 1, 0, 0);
    } else {
        touch(y, 0, 0, 1);
        touch(pr, 0, 1, 0);
    }
    sum / cnt
}
