//! BCa acceleration from the delete-one jackknife, O(N) in total: each
//! leave-one-out value is an O(1) update of the full-data sufficient
//! statistics (the touched classes, bin or sum), done by the statistic's module.

use super::problem::{Problem, Stat};
use super::resample::Scratch;
use super::stat_confusion;

impl Problem {
    /// BCa acceleration of each delta column (statistic `s`, variant `m`:
    /// column `s (M - 1) + m - 1`), `sum d^3 / (6 (sum d^2)^1.5)` with
    /// `d = mean(theta_j) - theta_j`, `theta_j` the delete-one delta.
    /// NaN when every `theta_j` is equal (degenerate).
    pub fn jackknife_accel(&self) -> Vec<f64> {
        let mut s = self.scratch::<u32>();
        self.set_weights(&mut s, &vec![1; self.n]);
        self.finish(&mut s, &mut vec![0.0; self.m * self.n_stats()]);
        let mv = self.m - 1;
        let mut accel = vec![f64::NAN; self.n_deltas()];
        let mut theta = vec![0.0; self.n];
        let mut reference = vec![0.0; self.n];
        for si in 0..self.stats.len() {
            for g in 0..self.n_groups {
                let full: Vec<f64> = (0..self.m).map(|m| self.value(&s.t, si, g, m)).collect();
                for (j, x) in reference.iter_mut().enumerate() {
                    *x = self.jack_value(&s, si, g, 0, j, full[0]);
                }
                for m in 1..self.m {
                    for (j, th) in theta.iter_mut().enumerate() {
                        *th = self.jack_value(&s, si, g, m, j, full[m]) - reference[j];
                    }
                    accel[(si * self.n_groups + g) * mv + m - 1] = acceleration(&theta);
                }
            }
        }
        accel
    }

    /// Statistic `si`, group `g`, model `m` with example `j` left out.
    fn jack_value(
        &self,
        s: &Scratch<u32>,
        si: usize,
        g: usize,
        m: usize,
        j: usize,
        full: f64,
    ) -> f64 {
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
            Stat::Binned(b) => b.leave_one_out(gacc, n, full, m, j),
            Stat::MacroF1 => unreachable!("handled above"),
        }
    }
}

/// `sum d^3 / (6 (sum d^2)^1.5)`, `d = mean - theta_j` (Efron & Tibshirani
/// eq. 14.15, as scipy.stats.bootstrap computes it).
pub(super) fn acceleration(theta: &[f64]) -> f64 {
    let mean = theta.iter().sum::<f64>() / theta.len() as f64;
    let (mut s2, mut s3) = (0.0, 0.0);
    for &x in theta {
        let d = mean - x;
        s2 += d * d;
        s3 += d * d * d;
    }
    // Relative to the spread of theta, s2 == 0 (up to rounding) means every
    // leave-one-out value is the same: no acceleration can be estimated.
    if s2 > 0.0 && s2.is_finite() {
        s3 / (6.0 * s2.powf(1.5))
    } else {
        f64::NAN
    }
}
