//! The resampling engine: draw counts -> sufficient statistics -> values.

use rayon::prelude::*;

use super::problem::{Paired, Stat};
use super::rng::fill_draws;
use super::stat_confusion;
use crate::error::KernelError;

/// Scratch space of one worker.
pub(super) struct Scratch {
    /// The resample's indices.
    idx: Vec<u32>,
    /// Draws per example, tier-sorted (per-example statistics only).
    counts: Vec<u32>,
    w: Vec<f64>,
    /// Draws per cell.
    pub(super) cell_w: Vec<u32>,
    /// Per model: tp `[0, K)`, fn `[K, 2K)`, fp `[2K, 3K)`.
    pub(super) confusion: [Vec<i64>; 2],
    /// Per-tier accumulators, one block of `tier_slots` per tier.
    tier_acc: Vec<f64>,
    /// Four lanes of bin sums for the binned statistics.
    lanes: Vec<f64>,
    pub(super) t: Totals,
}

/// Sufficient statistics of one (re)sample.
#[derive(Clone, Default)]
pub(super) struct Totals {
    pub(super) group_n: Vec<f64>,
    pub(super) f1_sum: [Vec<f64>; 2],
    pub(super) f1_cnt: [Vec<f64>; 2],
    /// Per group, the per-tier accumulators summed over the group's tiers.
    pub(super) gacc: Vec<f64>,
}

impl Paired {
    pub(super) fn scratch(&self) -> Scratch {
        let twof = |len: usize| [vec![0.0; len], vec![0.0; len]];
        let ex = if self.per_example { self.n } else { 0 };
        Scratch {
            idx: vec![0; self.n],
            counts: vec![0; ex],
            w: vec![0.0; ex],
            cell_w: vec![0; self.cells.len()],
            confusion: [vec![0; 3 * self.k], vec![0; 3 * self.k]],
            tier_acc: vec![0.0; self.tier_slots * self.n_tiers],
            lanes: vec![0.0; 4 * self.max_bins],
            t: Totals {
                group_n: vec![0.0; self.n_groups],
                f1_sum: twof(self.n_groups),
                f1_cnt: twof(self.n_groups),
                gacc: vec![0.0; self.tier_slots * self.n_groups],
            },
        }
    }

    /// Sets the draw counts of every example (original order).
    pub(super) fn set_weights(&self, s: &mut Scratch, weights: &[u32]) {
        s.cell_w.fill(0);
        if self.per_example {
            s.counts.fill(0);
        }
        for (j, &w) in weights.iter().enumerate() {
            s.cell_w[self.cell_of[j] as usize] += w;
            if self.per_example {
                s.counts[self.pos_of[j] as usize] = w;
            }
        }
    }

    /// Per-tier sums of the per-example statistics from `s.counts`.
    #[inline(always)]
    pub(super) fn sweep(&self, s: &mut Scratch) {
        if !self.per_example {
            return;
        }
        for (w, &c) in s.w.iter_mut().zip(&s.counts) {
            *w = c as f64;
        }
        for stat in &self.stats {
            match stat {
                Stat::Mean(mean) if !mean.by_cell => mean.sweep(self, &s.w, &mut s.tier_acc),
                Stat::Binned(b) => b.sweep(self, &s.w, &mut s.tier_acc, &mut s.lanes),
                _ => {}
            }
        }
    }

    /// Fills `s.t` from cell weights and the per-tier accumulators.
    #[inline(always)]
    pub(super) fn totals(&self, s: &mut Scratch) {
        for m in 0..2 {
            let (start, cells) = (&self.slot_start[m], &self.slot_cells[m]);
            for (slot, c) in s.confusion[m].iter_mut().enumerate() {
                let list = &cells[start[slot] as usize..start[slot + 1] as usize];
                *c = list.iter().map(|&x| s.cell_w[x as usize] as i64).sum();
            }
        }
        let k = self.k;
        let t = &mut s.t;
        t.group_n.fill(0.0);
        // Support (tp + fn) of a class is the number of its examples.
        let (tp, fn_) = (&s.confusion[0][..k], &s.confusion[0][k..2 * k]);
        for c in 0..k {
            let g = if self.n_groups > 1 {
                1 + self.class_tier[c] as usize
            } else {
                0
            };
            t.group_n[g] += (tp[c] + fn_[c]) as f64;
        }
        if self.n_groups > 1 {
            t.group_n[0] = t.group_n[1..].iter().sum();
        }
        if self.has_f1 {
            stat_confusion::totals(self, &s.confusion, t);
        }
        for stat in &self.stats {
            if let Stat::Mean(mean) = stat {
                if mean.by_cell {
                    mean.sweep_cells(self, &s.cell_w, &mut s.tier_acc);
                }
            }
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

    /// `out[2 s + m]` = statistic `s` of model `m` from the weights in `s`.
    /// NaN where a group is empty or no class of the set is defined.
    #[inline(always)]
    pub(super) fn finish(&self, s: &mut Scratch, out: &mut [f64]) {
        self.sweep(s);
        self.totals(s);
        for si in 0..self.stats.len() {
            for g in 0..self.n_groups {
                let st = si * self.n_groups + g;
                for m in 0..2 {
                    out[2 * st + m] = self.value(&s.t, si, g, m);
                }
            }
        }
    }

    /// Values of both models for resample `i` under `seed`.
    #[inline(always)]
    pub(super) fn resample(&self, seed: u64, i: u64, s: &mut Scratch, out: &mut [f64]) {
        s.cell_w.fill(0);
        fill_draws(seed, i, self.n as u32, &mut s.idx);
        if self.per_example {
            s.counts.fill(0);
            let (counts, cell_w) = (&mut s.counts, &mut s.cell_w);
            for &j in &s.idx {
                counts[self.pos_of[j as usize] as usize] += 1;
                cell_w[self.cell_of[j as usize] as usize] += 1;
            }
        } else if !self.cell_of16.is_empty() {
            // Cell statistics only: the draws go straight into cell counts.
            let (cell_w, cell_of) = (&mut s.cell_w[..], &self.cell_of16[..]);
            assert!(cell_of.len() == self.n && s.idx.len() == self.n);
            for &j in &s.idx {
                // SAFETY: j < n (Lemire's map lands in [0, n)) and cell_of has n
                // entries, each a cell index below cell_w.len() by construction
                // in `Paired::new`. Unchecked, this scatter is a third cheaper.
                unsafe {
                    let c = *cell_of.get_unchecked(j as usize) as usize;
                    *cell_w.get_unchecked_mut(c) += 1;
                }
            }
        } else {
            let (cell_w, cell_of) = (&mut s.cell_w, &self.cell_of[..]);
            for &j in &s.idx {
                cell_w[cell_of[j as usize] as usize] += 1;
            }
        }
        self.finish(s, out);
    }

    /// Values of both models on the full data (every example once), `S x 2`
    /// row-major. A pair statistic's model-A slot is 0 (see `Statistic::PairMean`).
    pub fn full(&self) -> Vec<f64> {
        let mut s = self.scratch();
        self.set_weights(&mut s, &vec![1; self.n]);
        let mut out = vec![0.0; 2 * self.n_stats()];
        self.finish(&mut s, &mut out);
        out
    }

    /// Values of both models for explicit index draws (rows of `indices`),
    /// `R x S x 2` row-major.
    pub fn eval_indices(&self, indices: &[Vec<usize>]) -> Result<Vec<f64>, KernelError> {
        let w = 2 * self.n_stats();
        let len = w
            .checked_mul(indices.len())
            .ok_or_else(|| KernelError::invalid("too many index rows"))?;
        let mut out = crate::error::try_zeros::<f64>("eval_indices output", len)?;
        let mut s = self.scratch();
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

    /// Deltas (B - A) of resamples `start .. start + count`, row-major
    /// (`count` x `n_stats`), in parallel; each row only depends on its index.
    /// An error, not an abort, when the output cannot be allocated.
    pub fn deltas(&self, seed: u64, start: u64, count: usize) -> Result<Vec<f64>, KernelError> {
        const PER_TASK: usize = 16;
        let ns = self.n_stats();
        if start.checked_add(count as u64).is_none() {
            return Err(KernelError::invalid(format!(
                "start + count must be below 2^64, got {start} + {count}"
            )));
        }
        let len = count
            .checked_mul(ns)
            .ok_or_else(|| KernelError::invalid(format!("count = {count} is too large")))?;
        let mut out = crate::error::try_zeros::<f64>("deltas", len)?;
        out.par_chunks_mut(PER_TASK * ns)
            .enumerate()
            .for_each(|(t, chunk)| {
                self.rows(seed, start + (t * PER_TASK) as u64, chunk);
            });
        Ok(out)
    }

    /// Fills `chunk` with the deltas of resamples `first, first + 1, ...`.
    #[inline(always)]
    fn rows(&self, seed: u64, first: u64, chunk: &mut [f64]) {
        let ns = self.n_stats();
        let mut s = self.scratch();
        let mut v = vec![0.0; 2 * ns];
        // Compiled for AVX2 + FMA where the CPU has them: the four generator
        // lanes and the index arithmetic vectorise. Integer work, same result.
        crate::softmax::with_best_simd(
            #[inline(always)]
            || {
                for (r, row) in chunk.chunks_mut(ns).enumerate() {
                    self.resample(seed, first + r as u64, &mut s, &mut v);
                    for (st, d) in row.iter_mut().enumerate() {
                        *d = v[2 * st + 1] - v[2 * st];
                    }
                }
            },
        )
    }
}
