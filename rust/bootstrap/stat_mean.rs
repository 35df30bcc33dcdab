//! Statistic kinds `ExampleMean` and `PairMean`: the mean over a group's
//! examples of a per-example value (a pair statistic is a mean whose
//! reference values are all 0). Values that are all small integers
//! (accuracy's and top-k's 0/1) are kept as bytes and summed in integers:
//! exact, and an eighth of the memory traffic.

use super::problem::{Layout, Problem};
use super::resample::Count;
use crate::error::{check_len, KernelError};

/// One model's values in sorted order.
enum Values {
    Real(Vec<f64>),
    /// Every value an integer in `[0, 255]`.
    Small(Vec<u8>),
}

impl Values {
    fn of(sorted: Vec<f64>) -> Values {
        if sorted
            .iter()
            .all(|&x| x.fract() == 0.0 && (0.0..=255.0).contains(&x))
        {
            Values::Small(sorted.iter().map(|&x| x as u8).collect())
        } else {
            Values::Real(sorted)
        }
    }

    fn at(&self, q: usize) -> f64 {
        match self {
            Values::Real(v) => v[q],
            Values::Small(v) => v[q] as f64,
        }
    }

    /// `sum w_q v_q` over `lo..hi`: real values against the float64 counts
    /// `wf`, small integers against the integer counts `w`.
    #[inline(always)]
    fn dot<C: Count>(&self, w: &[C], wf: &[f64], lo: usize, hi: usize) -> f64 {
        match self {
            Values::Real(v) => dot(&wf[lo..hi], &v[lo..hi]),
            Values::Small(v) => dot_small(&w[lo..hi], &v[lo..hi]) as f64,
        }
    }

    fn is_real(&self) -> bool {
        matches!(self, Values::Real(_))
    }
}

pub(super) struct Mean {
    /// Offset of its M slots (one per model) within a tier block.
    pub(super) offset: usize,
    /// Per model, each example's value in sorted order.
    vals: Vec<Values>,
}

impl Mean {
    pub(super) fn prepare(
        what: &str,
        values: &[&[f64]],
        offset: usize,
        layout: &Layout<'_>,
    ) -> Result<Self, KernelError> {
        if values.len() != layout.n_models {
            return Err(KernelError::invalid(format!(
                "{what}: needs values for each of the {} models, got {}",
                layout.n_models,
                values.len()
            )));
        }
        for (mi, v) in values.iter().enumerate() {
            check_len(
                &format!("{what} values of model {mi} vs labels"),
                layout.n,
                v.len(),
            )?;
        }
        let sorted =
            |v: &[f64]| -> Vec<f64> { layout.order.iter().map(|&j| v[j as usize]).collect() };
        Ok(Mean {
            offset,
            vals: values.iter().map(|v| Values::of(sorted(v))).collect(),
        })
    }

    /// Whether some model's values are not small integers (then the sweep
    /// needs the counts as float64).
    pub(super) fn needs_float_counts(&self) -> bool {
        self.vals.iter().any(Values::is_real)
    }

    /// Per-tier sums from the draw counts `w` (sorted order; `wf` the same
    /// as float64, converted once per resample for every mean), into the
    /// tier blocks of `acc`.
    #[inline(always)]
    pub(super) fn sweep<C: Count>(&self, p: &Problem, w: &[C], wf: &[f64], acc: &mut [f64]) {
        for (t, &(lo, hi)) in p.tier_range.iter().enumerate() {
            let base = t * p.tier_slots + self.offset;
            for (m, v) in self.vals.iter().enumerate() {
                acc[base + m] = v.dot(w, wf, lo, hi);
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
        p: &Problem,
        gacc: &[f64],
        n1: f64,
        m: usize,
        j: usize,
    ) -> f64 {
        (gacc[self.offset + m] - self.vals[m].at(p.pos_of[j] as usize)) / n1
    }
}

/// `sum a_i b_i` in sixteen fixed lanes (four AVX2 registers, enough to hide
/// the add latency); the order never changes.
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    const L: usize = 16;
    let mut acc = [0.0f64; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..L {
            acc[j] += x[j] * y[j];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    let mut half = [0.0f64; 8];
    for j in 0..8 {
        half[j] = acc[j] + acc[j + 8];
    }
    let q = [
        half[0] + half[4],
        half[1] + half[5],
        half[2] + half[6],
        half[3] + half[7],
    ];
    (q[0] + q[1]) + (q[2] + q[3]) + tail
}

/// `sum a_i b_i` in integers (exact; u64 lanes cannot overflow: the counts
/// sum to at most 2^32 draws, each times at most 255).
#[inline(always)]
fn dot_small<C: Count>(a: &[C], b: &[u8]) -> u64 {
    const L: usize = 8;
    let mut acc = [0u64; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..L {
            acc[j] += x[j].get() as u64 * y[j] as u64;
        }
    }
    let tail: u64 = ra
        .iter()
        .zip(rb)
        .map(|(x, &y)| x.get() as u64 * y as u64)
        .sum();
    acc.iter().sum::<u64>() + tail
}
