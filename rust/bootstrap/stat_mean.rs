//! Statistic kinds `ExampleMean` and `PairMean`: the mean over a group's
//! examples of a per-example value (a pair statistic is a mean whose model-A
//! values are all 0).

use super::problem::{Layout, Paired};
use crate::error::{check_len, KernelError};

/// Integer values up to this size sum exactly in float64 in any order (N < 2^32).
const EXACT_INT: f64 = (1u64 << 20) as f64;

pub(super) struct Mean {
    /// Offset of its two slots (A, B) within a tier block.
    pub(super) offset: usize,
    /// The values are integers fixed by the example's cell (accuracy's 0/1,
    /// churn's 0/1): sums come from cell draw counts, exactly, in any order.
    pub(super) by_cell: bool,
    /// `by_cell`: the value of each cell; otherwise each example's value in
    /// tier-sorted order.
    pub(super) vals: [Vec<f64>; 2],
    /// `by_cell` only, per model: the cells with a non-zero value grouped by
    /// tier (tier `t` is `terms[start[t]..start[t + 1]]`), so a resample's
    /// sums are short gathers without branches.
    terms: [Vec<(u32, f64)>; 2],
    term_start: [Vec<usize>; 2],
}

/// The value of each cell when every example of the cell has that value and
/// it is a small integer; None otherwise.
fn cell_values(v: &[f64], layout: &Layout<'_>) -> Option<Vec<f64>> {
    let mut out = vec![f64::NAN; layout.n_cells];
    for (&c, &x) in layout.cell_of.iter().zip(v) {
        if !(x.fract() == 0.0 && x.abs() <= EXACT_INT) {
            return None;
        }
        let slot = &mut out[c as usize];
        if slot.is_nan() {
            *slot = x;
        } else if *slot != x {
            return None;
        }
    }
    Some(out)
}

impl Mean {
    pub(super) fn prepare(
        what: &str,
        values: [&[f64]; 2],
        offset: usize,
        layout: &Layout<'_>,
    ) -> Result<Self, KernelError> {
        for (m, name) in [(0, "values of A"), (1, "values of B")] {
            check_len(
                &format!("{what} {name} vs labels"),
                layout.n,
                values[m].len(),
            )?;
        }
        if let (Some(a), Some(b)) = (
            cell_values(values[0], layout),
            cell_values(values[1], layout),
        ) {
            let (mut terms, mut term_start) = ([vec![], vec![]], [vec![0], vec![0]]);
            for (m, v) in [&a, &b].into_iter().enumerate() {
                for t in 0..layout.n_tiers as u32 {
                    terms[m].extend(
                        (0..layout.n_cells)
                            .filter(|&c| layout.cell_tier[c] == t && v[c] != 0.0)
                            .map(|c| (c as u32, v[c])),
                    );
                    term_start[m].push(terms[m].len());
                }
            }
            return Ok(Mean {
                offset,
                by_cell: true,
                vals: [a, b],
                terms,
                term_start,
            });
        }
        let sorted =
            |v: &[f64]| -> Vec<f64> { layout.order.iter().map(|&j| v[j as usize]).collect() };
        Ok(Mean {
            offset,
            by_cell: false,
            vals: [sorted(values[0]), sorted(values[1])],
            terms: [vec![], vec![]],
            term_start: [vec![], vec![]],
        })
    }

    /// Per-tier sums from per-example weights `w` (tier-sorted), into the
    /// tier blocks of `acc`.
    #[inline(always)]
    pub(super) fn sweep(&self, p: &Paired, w: &[f64], acc: &mut [f64]) {
        for (t, &(lo, hi)) in p.tier_range.iter().enumerate() {
            let base = t * p.tier_slots + self.offset;
            for m in 0..2 {
                acc[base + m] = dot(&w[lo..hi], &self.vals[m][lo..hi]);
            }
        }
    }

    /// Per-tier sums from cell draw counts (only for `by_cell`).
    #[inline(always)]
    pub(super) fn sweep_cells(&self, p: &Paired, cell_w: &[u32], acc: &mut [f64]) {
        for m in 0..2 {
            let start = &self.term_start[m];
            for t in 0..p.n_tiers {
                let terms = &self.terms[m][start[t]..start[t + 1]];
                let sum = terms
                    .iter()
                    .map(|&(c, v)| cell_w[c as usize] as f64 * v)
                    .sum::<f64>();
                acc[t * p.tier_slots + self.offset + m] = sum;
            }
        }
    }

    /// Value of model `m` in group `g` (sums `gacc`, group size `n`).
    #[inline(always)]
    pub(super) fn value(&self, gacc: &[f64], n: f64, m: usize) -> f64 {
        gacc[self.offset + m] / n
    }

    /// The value with example `j` (of the group) left out.
    pub(super) fn leave_one_out(
        &self,
        p: &Paired,
        gacc: &[f64],
        n1: f64,
        m: usize,
        j: usize,
    ) -> f64 {
        let x = if self.by_cell {
            self.vals[m][p.cell_of[j] as usize]
        } else {
            self.vals[m][p.pos_of[j] as usize]
        };
        (gacc[self.offset + m] - x) / n1
    }
}

/// `sum a_i b_i` in four fixed lanes (vectorises; the order never changes).
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..4 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}
