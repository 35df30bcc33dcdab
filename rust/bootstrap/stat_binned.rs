//! Statistic kind `Binned`: top-1 ECE from per-bin sums. Only
//! `sum_b |sum over the bin of (correct - confidence)|` is needed, so each
//! example carries `correct - confidence` and its bin.

use super::problem::{Layout, Problem};
use super::resample::Count;
use super::rng::Position;
use super::ProblemInput;
use crate::error::{check_len, KernelError};

/// Bin indices are stored as u16.
pub(super) const MAX_BINS: usize = 65535;

/// One model's examples sorted by (tier, bin): each (tier, bin) is one
/// contiguous range, so a resample's bin sums are short dot products of draw
/// counts (gathered by the examples' sorted positions) with
/// `correct - confidence`.
struct Sorted {
    /// The problem's sorted position of each example, in this order (as
    /// u16 when every position fits, else u32).
    position: Positions,
    /// `correct - confidence` at each position.
    diff: Vec<f64>,
    /// Range of (tier `t`, bin `b`): `start[t * n_bins + b] .. start[.. + 1]`.
    start: Vec<u32>,
}

enum Positions {
    Short(Vec<u16>),
    Long(Vec<u32>),
}

pub(super) struct Binned {
    pub(super) n_bins: usize,
    /// Offset of its `M n_bins` slots (model 0's bins, then model 1's, ...)
    /// within a tier block.
    pub(super) offset: usize,
    sorted: Vec<Sorted>,
    /// Per model, each example's `correct - confidence` and bin (example
    /// order), for the jackknife.
    diff_of: Vec<Vec<f64>>,
    bin_of: Vec<Vec<u16>>,
}

impl Binned {
    pub(super) fn prepare(
        what: &str,
        n_bins: usize,
        confidence: &[&[f64]],
        input: &ProblemInput<'_>,
        offset: usize,
        layout: &Layout<'_>,
    ) -> Result<Self, KernelError> {
        if !(1..=MAX_BINS).contains(&n_bins) {
            return Err(KernelError::invalid(format!(
                "n_bins must be in [1, {MAX_BINS}], got {n_bins}"
            )));
        }
        let n = layout.n;
        if confidence.len() != layout.n_models {
            return Err(KernelError::invalid(format!(
                "{what}: needs confidences for each of the {} models, got {}",
                layout.n_models,
                confidence.len()
            )));
        }
        let edges: Vec<f64> = (0..=n_bins).map(|b| b as f64 / n_bins as f64).collect();
        let mut out = Binned {
            n_bins,
            offset,
            sorted: Vec::new(),
            diff_of: Vec::new(),
            bin_of: Vec::new(),
        };
        for (m, conf) in confidence.iter().enumerate() {
            check_len(
                &format!("{what} confidence of model {m} vs labels"),
                n,
                conf.len(),
            )?;
            let mut diff = Vec::with_capacity(n);
            let mut bins = Vec::with_capacity(n);
            for (j, &x) in conf.iter().enumerate() {
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
                diff.push(correct - x);
                bins.push(b as u16);
            }
            // Stable sort of the examples by (tier, bin).
            let key = |j: usize| layout.ex_tier[j] as usize * n_bins + bins[j] as usize;
            let mut example: Vec<u32> = (0..n as u32).collect();
            example.sort_by_key(|&j| key(j as usize));
            let mut start = vec![0u32; layout.n_tiers * n_bins + 1];
            for j in 0..n {
                start[key(j) + 1] += 1;
            }
            for s in 1..start.len() {
                start[s] += start[s - 1];
            }
            let sorted_diff = example.iter().map(|&j| diff[j as usize]).collect();
            let position = if n <= 1 << 16 {
                Positions::Short(
                    example
                        .iter()
                        .map(|&j| layout.pos_of[j as usize] as u16)
                        .collect(),
                )
            } else {
                Positions::Long(example.iter().map(|&j| layout.pos_of[j as usize]).collect())
            };
            out.sorted.push(Sorted {
                position,
                diff: sorted_diff,
                start,
            });
            out.diff_of.push(diff);
            out.bin_of.push(bins);
        }
        Ok(out)
    }

    /// Per-tier bin sums from the draw counts `counts` (sorted order), into
    /// the tier blocks of `acc`.
    #[inline(always)]
    pub(super) fn sweep<C: Count>(&self, p: &Problem, counts: &[C], acc: &mut [f64]) {
        let nb = self.n_bins;
        assert!(counts.len() == p.n, "one count per example");
        for (m, s) in self.sorted.iter().enumerate() {
            for t in 0..p.n_tiers {
                let base = t * p.tier_slots + self.offset + m * nb;
                for b in 0..nb {
                    let r = s.start[t * nb + b] as usize..s.start[t * nb + b + 1] as usize;
                    acc[base + b] = match &s.position {
                        Positions::Short(q) => gather_dot(counts, &q[r.clone()], &s.diff[r]),
                        Positions::Long(q) => gather_dot(counts, &q[r.clone()], &s.diff[r]),
                    };
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
    pub(super) fn leave_one_out(&self, gacc: &[f64], n: f64, full: f64, m: usize, j: usize) -> f64 {
        let x = self.diff_of[m][j];
        let d_b = gacc[self.offset + m * self.n_bins + self.bin_of[m][j] as usize];
        (full * n - d_b.abs() + (d_b - x).abs()) / (n - 1.0)
    }
}

/// `sum counts[position[i]] * diff[i]` in four fixed lanes.
#[inline(always)]
fn gather_dot<C: Count, P: Position>(counts: &[C], position: &[P], diff: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ce, cd) = (position.chunks_exact(4), diff.chunks_exact(4));
    let (re, rd) = (ce.remainder(), cd.remainder());
    // SAFETY (both loops): every listed position is below n (a range of a
    // permutation of 0..n, built in `prepare`), and `sweep` checks that
    // counts.len() == n.
    for (e, d) in ce.zip(cd) {
        for l in 0..4 {
            acc[l] += unsafe { counts.get_unchecked(e[l].at()) }.as_f64() * d[l];
        }
    }
    let mut tail = 0.0;
    for (&e, &d) in re.iter().zip(rd) {
        tail += unsafe { counts.get_unchecked(e.at()) }.as_f64() * d;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}
