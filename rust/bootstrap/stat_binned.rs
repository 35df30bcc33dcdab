//! Statistic kind `Binned`: top-1 ECE from per-bin sums. Only
//! `sum_b |sum over the bin of (correct - confidence)|` is needed, so each
//! example carries `correct - confidence` and its bin.

use super::problem::{Layout, Paired};
use super::PairedInput;
use crate::error::{check_len, KernelError};

/// Bin indices are stored as u16.
pub(super) const MAX_BINS: usize = 65535;

pub(super) struct Binned {
    pub(super) n_bins: usize,
    /// Offset of its `2 n_bins` slots (A's bins, then B's) within a tier block.
    pub(super) offset: usize,
    /// Per model, `correct - confidence` of each example in tier-sorted order.
    vals: [Vec<f64>; 2],
    /// Per model, each example's bin in tier-sorted order.
    bins: [Vec<u16>; 2],
}

impl Binned {
    pub(super) fn prepare(
        what: &str,
        n_bins: usize,
        confidence: [&[f64]; 2],
        input: &PairedInput<'_>,
        offset: usize,
        layout: &Layout<'_>,
    ) -> Result<Self, KernelError> {
        if !(1..=MAX_BINS).contains(&n_bins) {
            return Err(KernelError::invalid(format!(
                "n_bins must be in [1, {MAX_BINS}], got {n_bins}"
            )));
        }
        let n = layout.n;
        for (m, name) in [(0, "confidence of A"), (1, "confidence of B")] {
            check_len(&format!("{what} {name} vs labels"), n, confidence[m].len())?;
        }
        let edges: Vec<f64> = (0..=n_bins).map(|b| b as f64 / n_bins as f64).collect();
        let mut vals = [Vec::with_capacity(n), Vec::with_capacity(n)];
        let mut bins = [Vec::with_capacity(n), Vec::with_capacity(n)];
        for m in 0..2 {
            for &j in layout.order {
                let (j, x) = (j as usize, confidence[m][j as usize]);
                if !(0.0..=1.0).contains(&x) {
                    return Err(KernelError::invalid(format!(
                        "confidence[{j}] = {x} is not in [0, 1]"
                    )));
                }
                // Right-closed bins as in calibration::bin_by_edges (bin 0 also takes 0).
                let b = edges
                    .partition_point(|&e| e < x)
                    .saturating_sub(1)
                    .min(n_bins - 1);
                let correct = (input.preds[m][j] == input.labels[j]) as u8 as f64;
                vals[m].push(correct - x);
                bins[m].push(b as u16);
            }
        }
        Ok(Binned {
            n_bins,
            offset,
            vals,
            bins,
        })
    }

    /// Per-tier bin sums from per-example weights `w` (tier-sorted), into the
    /// tier blocks of `acc`; `lanes` is scratch of `4 n_bins`.
    #[inline(always)]
    pub(super) fn sweep(&self, p: &Paired, w: &[f64], acc: &mut [f64], lanes: &mut [f64]) {
        let nb = self.n_bins;
        let lanes = &mut lanes[..4 * nb];
        for (t, &(lo, hi)) in p.tier_range.iter().enumerate() {
            let base = t * p.tier_slots + self.offset;
            for m in 0..2 {
                // Four copies of the bins break the add-after-add dependency.
                lanes.fill(0.0);
                let (v, bins) = (&self.vals[m][lo..hi], &self.bins[m][lo..hi]);
                for (q, ((&wq, &d), &b)) in w[lo..hi].iter().zip(v).zip(bins).enumerate() {
                    lanes[(q & 3) * nb + b as usize] += wq * d;
                }
                for b in 0..nb {
                    let c = |r: usize| lanes[r * nb + b];
                    acc[base + m * nb + b] = (c(0) + c(1)) + (c(2) + c(3));
                }
            }
        }
    }

    /// ECE of model `m` in a group with bin sums in `gacc` and `n` examples.
    #[inline(always)]
    pub(super) fn value(&self, gacc: &[f64], n: f64, m: usize) -> f64 {
        let nb = self.n_bins;
        let bins = &gacc[self.offset + m * nb..self.offset + (m + 1) * nb];
        bins.iter().map(|d| d.abs()).sum::<f64>() / n
    }

    /// The ECE with example `j` (of the group) left out: only its bin changes,
    /// `|D_b|` becomes `|D_b - d_j|`.
    pub(super) fn leave_one_out(
        &self,
        p: &Paired,
        gacc: &[f64],
        n: f64,
        full: f64,
        m: usize,
        j: usize,
    ) -> f64 {
        let q = p.pos_of[j] as usize;
        let x = self.vals[m][q];
        let d_b = gacc[self.offset + m * self.n_bins + self.bins[m][q] as usize];
        (full * n - d_b.abs() + (d_b - x).abs()) / (n - 1.0)
    }
}
