//! The resampling engine: draws -> counts per example -> sufficient
//! statistics of every model -> values.

use rayon::prelude::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::problem::{Problem, Stat};
use super::rng::count_draws;
use super::stat_confusion;
use super::stat_mean::{Lane, BATCH};
use crate::error::KernelError;

/// A draw count: u16 when no count can exceed 65535 (half the cache
/// footprint in the gathers), u32 otherwise.
pub(super) trait Count: Copy + Default {
    fn get(self) -> u32;
    fn as_f64(self) -> f64;
    fn bump(&mut self);
    /// The counts as u16, when they are.
    fn as_u16(c: &[Self]) -> Option<&[u16]>;
    /// `p[0..8]` as two vectors of four float64, exactly. Safety: the eight
    /// reads must be in bounds and the CPU must support AVX2 (called from
    /// AVX2 code, into which it inlines).
    #[cfg(target_arch = "x86_64")]
    unsafe fn widen8(p: *const Self) -> (__m256d, __m256d);
}

impl Count for u16 {
    #[inline(always)]
    fn get(self) -> u32 {
        self as u32
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn bump(&mut self) {
        *self += 1;
    }
    #[inline(always)]
    fn as_u16(c: &[Self]) -> Option<&[u16]> {
        Some(c)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn widen8(p: *const Self) -> (__m256d, __m256d) {
        let c32 = _mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i));
        (
            _mm256_cvtepi32_pd(_mm256_castsi256_si128(c32)),
            _mm256_cvtepi32_pd(_mm256_extracti128_si256::<1>(c32)),
        )
    }
}

impl Count for u32 {
    #[inline(always)]
    fn get(self) -> u32 {
        self
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn bump(&mut self) {
        *self += 1;
    }
    #[inline(always)]
    fn as_u16(_: &[Self]) -> Option<&[u16]> {
        None
    }
    /// Unsigned: flip the sign bit, convert as signed, add 2^31 back (exact:
    /// every u32 is a float64).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn widen8(p: *const Self) -> (__m256d, __m256d) {
        let x = _mm256_xor_si256(
            _mm256_loadu_si256(p as *const __m256i),
            _mm256_set1_epi32(i32::MIN),
        );
        let off = _mm256_set1_pd(2147483648.0);
        (
            _mm256_add_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(x)), off),
            _mm256_add_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256::<1>(x)), off),
        )
    }
}

/// Scratch space of one worker.
pub(super) struct Scratch<C: Count> {
    /// Draws per example, in sorted order.
    pub(super) counts: Vec<C>,
    /// Draws of each class's examples.
    support: Vec<u32>,
    /// Per model: tp `[0, K)`, fn `[K, 2K)`, fp `[2K, 3K)`.
    pub(super) confusion: Vec<Vec<i64>>,
    /// Running sum over one model's wrong predictions.
    wrong_run: Vec<u32>,
    /// Per-tier accumulators, one block of `tier_slots` per tier.
    tier_acc: Vec<f64>,
    pub(super) t: Totals,
}

/// Sufficient statistics of one (re)sample.
#[derive(Clone, Default)]
pub(super) struct Totals {
    pub(super) group_n: Vec<f64>,
    /// Per model, per group.
    pub(super) f1_sum: Vec<Vec<f64>>,
    pub(super) f1_cnt: Vec<Vec<f64>>,
    /// Per group, the per-tier accumulators summed over the group's tiers.
    pub(super) gacc: Vec<f64>,
}

impl Problem {
    pub(super) fn scratch<C: Count>(&self) -> Scratch<C> {
        let per_model = |len: usize| vec![vec![0.0; len]; self.m];
        Scratch {
            counts: vec![C::default(); self.n],
            support: vec![0; self.k],
            confusion: vec![vec![0; 3 * self.k]; self.m],
            wrong_run: vec![
                0;
                1 + self
                    .wrong_by_label
                    .iter()
                    .map(|w| w.items.len())
                    .max()
                    .unwrap_or(0)
            ],
            tier_acc: vec![0.0; self.tier_slots * self.n_tiers],
            t: Totals {
                group_n: vec![0.0; self.n_groups],
                f1_sum: per_model(self.n_groups),
                f1_cnt: per_model(self.n_groups),
                gacc: vec![0.0; self.tier_slots * self.n_groups],
            },
        }
    }

    /// Sets the draw counts of every example (`weights` in example order).
    pub(super) fn set_weights(&self, s: &mut Scratch<u32>, weights: &[u32]) {
        for (&q, &w) in self.pos_of.iter().zip(weights) {
            s.counts[q as usize] = w;
        }
    }

    /// Draws of each class: a contiguous sum per class (vectorised).
    #[inline(always)]
    pub(super) fn gather<C: Count>(&self, s: &mut Scratch<C>) {
        for (sup, &(lo, hi)) in s.support.iter_mut().zip(&self.class_range) {
            *sup = s.counts[lo as usize..hi as usize]
                .iter()
                .map(|c| c.get())
                .sum();
        }
    }

    /// A model's false negatives and false positives per class, in one pass
    /// over its wrong predictions (grouped by label, each with its
    /// prediction): the counts go into a running sum (a class's false
    /// negatives are a difference of two entries: no branch per class) and
    /// onto their predicted class's false positives.
    #[inline(always)]
    fn wrong_sums<C: Count>(
        counts: &[C],
        list: &super::problem::Csr,
        pred: &[u32],
        run: &mut [u32],
        fn_: &mut [i64],
        fp: &mut [i64],
    ) {
        let items = &list.items[..];
        assert!(run.len() > items.len() && pred.len() == items.len());
        fp.fill(0);
        let mut total = 0u32;
        for (i, (&q, &p)) in items.iter().zip(pred).enumerate() {
            // SAFETY: i + 1 <= items.len() < run.len(); every listed position
            // is below n = counts.len() (checked by the caller); every
            // prediction is a class below k = fp.len() (checked in `new`).
            unsafe {
                let c = counts.get_unchecked(q as usize).get();
                total += c;
                *run.get_unchecked_mut(i + 1) = total;
                *fp.get_unchecked_mut(p as usize) += c as i64;
            }
        }
        for (c, o) in fn_.iter_mut().enumerate() {
            *o = (run[list.start[c + 1] as usize] - run[list.start[c] as usize]) as i64;
        }
    }

    /// Per-tier sums of the real-valued means for up to [`BATCH`] resamples
    /// at once (each block of values is read once for all of them).
    #[inline(always)]
    fn sweep_real<C: Count, const B: usize>(&self, s: &mut [Scratch<C>; B]) {
        let mut lanes = s.each_mut().map(|x| Lane {
            counts: &x.counts[..],
            acc: &mut x.tier_acc[..],
        });
        self.real
            .sweep(&self.tier_range, self.tier_slots, &mut lanes);
    }

    /// Per-tier sums of the other per-example statistics.
    #[inline(always)]
    fn sweep_rest<C: Count>(&self, s: &mut Scratch<C>) {
        for stat in &self.stats {
            match stat {
                Stat::Mean(mean) => mean.sweep(self, &s.counts, &mut s.tier_acc),
                Stat::Binned(b) => b.sweep(self, &s.counts, &mut s.tier_acc),
                _ => {}
            }
        }
    }

    /// Fills `s.t` from the counts and the per-tier accumulators.
    #[inline(always)]
    pub(super) fn totals<C: Count>(&self, s: &mut Scratch<C>) {
        let k = self.k;
        let t = &mut s.t;
        t.group_n.fill(0.0);
        for c in 0..k {
            let g = if self.n_groups > 1 {
                1 + self.class_tier[c] as usize
            } else {
                0
            };
            t.group_n[g] += s.support[c] as f64;
        }
        if self.n_groups > 1 {
            t.group_n[0] = t.group_n[1..].iter().sum();
        }
        if self.has_f1 {
            assert!(s.counts.len() == self.n, "one count per example");
            for m in 0..self.m {
                let conf = &mut s.confusion[m];
                let (tp, rest) = conf.split_at_mut(k);
                let (fn_, fp) = rest.split_at_mut(k);
                Self::wrong_sums(
                    &s.counts,
                    &self.wrong_by_label[m],
                    &self.wrong_pred[m],
                    &mut s.wrong_run,
                    fn_,
                    fp,
                );
                for c in 0..k {
                    tp[c] = s.support[c] as i64 - fn_[c];
                }
            }
            stat_confusion::totals(self, &s.confusion, t);
        }
        let ts = self.tier_slots;
        for g in 0..self.n_groups {
            let dst = &mut t.gacc[g * ts..(g + 1) * ts];
            dst.fill(0.0);
            for r in self.group_tiers(g) {
                for (d, &a) in dst.iter_mut().zip(&s.tier_acc[r * ts..(r + 1) * ts]) {
                    *d += a;
                }
            }
        }
    }

    /// Value of statistic `si` in group `g` for model `m`.
    #[inline(always)]
    pub(super) fn value(&self, t: &Totals, si: usize, g: usize, m: usize) -> f64 {
        let n = t.group_n[g];
        let gacc = &t.gacc[g * self.tier_slots..(g + 1) * self.tier_slots];
        match &self.stats[si] {
            Stat::MacroF1 => stat_confusion::value(t, g, m),
            Stat::Mean(mean) => mean.value(gacc, n, m),
            Stat::Binned(b) => b.value(gacc, n, m),
        }
    }

    /// `out[s M + m]` = statistic `s` of model `m` from the counts in `s`.
    /// NaN where a group is empty or no class of the set is defined.
    #[inline(always)]
    pub(super) fn finish<C: Count>(&self, s: &mut Scratch<C>, out: &mut [f64]) {
        self.sweep_real(std::array::from_mut(s));
        self.finish_after_real(s, out);
    }

    /// [`Problem::finish`] once the real-valued means are swept.
    #[inline(always)]
    fn finish_after_real<C: Count>(&self, s: &mut Scratch<C>, out: &mut [f64]) {
        self.gather(s);
        self.sweep_rest(s);
        self.totals(s);
        for si in 0..self.stats.len() {
            for g in 0..self.n_groups {
                let st = si * self.n_groups + g;
                for m in 0..self.m {
                    out[st * self.m + m] = self.value(&s.t, si, g, m);
                }
            }
        }
    }

    /// The draw counts of resample `i` under `seed` into `s.counts`.
    #[inline(always)]
    pub(super) fn draw<C: Count>(&self, seed: u64, i: u64, s: &mut Scratch<C>) {
        s.counts.fill(C::default());
        match &self.pos_of16 {
            Some(pos) => count_draws(seed, i, pos, &mut s.counts),
            None => count_draws(seed, i, &self.pos_of, &mut s.counts),
        }
    }

    /// Values of every model on the full data (every example once),
    /// `n_stats x M` row-major. A pair statistic's reference slot is 0 (see
    /// `Statistic::PairMean`).
    pub fn full(&self) -> Vec<f64> {
        let mut s = self.scratch::<u32>();
        self.set_weights(&mut s, &vec![1; self.n]);
        let mut out = vec![0.0; self.m * self.n_stats()];
        self.finish(&mut s, &mut out);
        out
    }

    /// Values of every model for explicit index draws (rows of `indices`),
    /// `R x n_stats x M` row-major.
    pub fn eval_indices(&self, indices: &[Vec<usize>]) -> Result<Vec<f64>, KernelError> {
        let w = self.m * self.n_stats();
        let len = w
            .checked_mul(indices.len())
            .ok_or_else(|| KernelError::invalid("too many index rows"))?;
        let mut out = crate::error::try_zeros::<f64>("eval_indices output", len)?;
        let mut s = self.scratch::<u32>();
        let mut weights = vec![0u32; self.n];
        for (r, idx) in indices.iter().enumerate() {
            weights.fill(0);
            for (pos, &j) in idx.iter().enumerate() {
                if j >= self.n {
                    return Err(KernelError::OutOfRange {
                        what: format!("indices[{r}]"),
                        index: pos,
                        value: j as i64,
                        bound: self.n,
                    });
                }
                weights[j] += 1;
            }
            self.set_weights(&mut s, &weights);
            self.finish(&mut s, &mut out[r * w..(r + 1) * w]);
        }
        Ok(out)
    }

    /// Deltas (model m - model 0, m >= 1) of resamples `start .. start + count`,
    /// row-major (`count` x `n_deltas`, column `s (M - 1) + m - 1`), in
    /// parallel; each row only depends on its index. An error, not an abort,
    /// when the output cannot be allocated.
    pub fn deltas(&self, seed: u64, start: u64, count: usize) -> Result<Vec<f64>, KernelError> {
        let len = count
            .checked_mul(self.n_deltas())
            .ok_or_else(|| KernelError::invalid(format!("count = {count} is too large")))?;
        let mut out = crate::error::try_zeros::<f64>("deltas", len)?;
        self.deltas_into(seed, start, &mut out)?;
        Ok(out)
    }

    /// [`Problem::deltas`] written into `out` (`count` x `n_deltas` row-major,
    /// `count` = `out.len() / n_deltas`), so a caller's buffer is filled in
    /// place.
    pub fn deltas_into(&self, seed: u64, start: u64, out: &mut [f64]) -> Result<(), KernelError> {
        const PER_TASK: usize = 16;
        let nd = self.n_deltas();
        if nd == 0 && out.is_empty() {
            return Ok(());
        }
        if nd == 0 || out.len() % nd != 0 {
            return Err(KernelError::invalid(format!(
                "the output holds {} values, not a whole number of rows of {nd}",
                out.len()
            )));
        }
        let count = out.len() / nd;
        if start.checked_add(count as u64).is_none() {
            return Err(KernelError::invalid(format!(
                "start + count must be below 2^64, got {start} + {count}"
            )));
        }
        // A count never exceeds the N draws of its resample.
        let small = self.n <= u16::MAX as usize;
        out.par_chunks_mut(PER_TASK * nd)
            .enumerate()
            .for_each(|(t, chunk)| {
                let first = start + (t * PER_TASK) as u64;
                if small {
                    self.rows::<u16>(seed, first, chunk);
                } else {
                    self.rows::<u32>(seed, first, chunk);
                }
            });
        Ok(())
    }

    /// Fills `chunk` with the deltas of resamples `first, first + 1, ...`,
    /// [`BATCH`] resamples at a time.
    #[inline(always)]
    fn rows<C: Count>(&self, seed: u64, first: u64, chunk: &mut [f64]) {
        let (nd, m) = (self.n_deltas(), self.m);
        let mut s: [Scratch<C>; BATCH] = std::array::from_fn(|_| self.scratch::<C>());
        let mut v = vec![0.0; m * self.n_stats()];
        let deltas = |v: &[f64], row: &mut [f64]| {
            for (st, vals) in v.chunks_exact(m).enumerate() {
                for (mi, &x) in vals[1..].iter().enumerate() {
                    row[st * (m - 1) + mi] = x - vals[0];
                }
            }
        };
        // Compiled for AVX2 + FMA where the CPU has them: the sweeps
        // vectorise. Rust never contracts `a * b + c` on its own and
        // `mul_add` is always fused, so every CPU gives the same bits.
        crate::softmax::with_best_simd(
            #[inline(always)]
            || {
                let mut batches = chunk.chunks_mut(BATCH * nd);
                let mut i = first;
                for batch in batches.by_ref() {
                    if batch.len() == BATCH * nd {
                        for (b, x) in s.iter_mut().enumerate() {
                            self.draw(seed, i + b as u64, x);
                        }
                        self.sweep_real(&mut s);
                        for (x, row) in s.iter_mut().zip(batch.chunks_mut(nd)) {
                            self.finish_after_real(x, &mut v);
                            deltas(&v, row);
                        }
                    } else {
                        for (r, row) in batch.chunks_mut(nd).enumerate() {
                            self.draw(seed, i + r as u64, &mut s[0]);
                            self.finish(&mut s[0], &mut v);
                            deltas(&v, row);
                        }
                    }
                    i += BATCH as u64;
                }
            },
        )
    }
}
