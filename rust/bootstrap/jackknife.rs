//! BCa acceleration from the delete-one jackknife, O(N) in total: each
//! leave-one-out value is an O(1) update of the full-data sufficient
//! statistics (the touched classes, bin or sum), done by the statistic's module.

use super::problem::{Paired, Stat};
use super::resample::Scratch;
use super::stat_confusion;

impl Paired {
    /// BCa acceleration of each statistic's delta,
    /// `sum d^3 / (6 (sum d^2)^1.5)` with `d = mean(theta_j) - theta_j`.
    /// NaN when every `theta_j` is equal (degenerate).
    pub fn jackknife_accel(&self) -> Vec<f64> {
        let mut s = self.scratch();
        self.set_weights(&mut s, &vec![1; self.n]);
        self.sweep(&mut s);
        self.totals(&mut s);
        // Cell statistics only see an example's cell: one jackknife value per
        // cell, weighted by the cell's size.
        let nc = self.cells.len();
        let mut first = vec![usize::MAX; nc];
        for (j, &c) in self.cell_of.iter().enumerate().rev() {
            first[c as usize] = j;
        }
        let size: Vec<f64> = s.cell_w[..nc].iter().map(|&w| w as f64).collect();
        let mut accel = vec![f64::NAN; self.n_stats()];
        let mut theta = vec![0.0; self.n];
        for si in 0..self.stats.len() {
            let by_cell = self.stats[si].by_cell();
            for g in 0..self.n_groups {
                let full = [self.value(&s.t, si, g, 0), self.value(&s.t, si, g, 1)];
                let len = if by_cell { nc } else { self.n };
                for (r, th) in theta[..len].iter_mut().enumerate() {
                    let j = if by_cell { first[r] } else { r };
                    let v = |m: usize| self.jack_value(&s, si, g, m, j, full[m]);
                    *th = v(1) - v(0);
                }
                let w = by_cell.then_some(&size[..]);
                accel[si * self.n_groups + g] = acceleration(&theta[..len], w);
            }
        }
        accel
    }

    /// Statistic `si`, group `g`, model `m` with example `j` left out.
    fn jack_value(&self, s: &Scratch, si: usize, g: usize, m: usize, j: usize, full: f64) -> f64 {
        let t = &s.t;
        let stat = &self.stats[si];
        if let Stat::MacroF1 = stat {
            return stat_confusion::leave_one_out(self, t, &s.confusion, g, m, j);
        }
        if g != 0 && self.ex_tier[j] as usize != g - 1 {
            return full;
        }
        let gacc = &t.gacc[g * self.tier_slots..(g + 1) * self.tier_slots];
        let n = t.group_n[g];
        match stat {
            Stat::Mean(mean) => mean.leave_one_out(self, gacc, n - 1.0, m, j),
            Stat::Binned(b) => b.leave_one_out(self, gacc, n, full, m, j),
            Stat::MacroF1 => unreachable!("handled above"),
        }
    }
}

/// `sum d^3 / (6 (sum d^2)^1.5)`, `d = mean - theta_j` (Efron & Tibshirani
/// eq. 14.15, as scipy.stats.bootstrap computes it).
pub(super) fn acceleration(theta: &[f64], weight: Option<&[f64]>) -> f64 {
    let w = |i: usize| weight.map_or(1.0, |w| w[i]);
    let total: f64 = (0..theta.len()).map(w).sum();
    let mean = theta
        .iter()
        .enumerate()
        .map(|(i, &x)| w(i) * x)
        .sum::<f64>()
        / total;
    let (mut s2, mut s3) = (0.0, 0.0);
    for (i, &x) in theta.iter().enumerate() {
        let d = mean - x;
        s2 += w(i) * d * d;
        s3 += w(i) * d * d * d;
    }
    // Relative to the spread of theta, s2 == 0 (up to rounding) means every
    // leave-one-out value is the same: no acceleration can be estimated.
    if s2 > 0.0 && s2.is_finite() {
        s3 / (6.0 * s2.powf(1.5))
    } else {
        f64::NAN
    }
}
