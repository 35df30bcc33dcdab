//! Paired bootstrap over per-example sufficient statistics (SPEC §3).
//!
//! The caller computes per-example quantities once (prediction, confidence,
//! NLL, Brier, KL, JS of models A and B). A resample then draws N example
//! indices, counts the draws per example and sweeps once, so no N x R index
//! matrix ever exists. Accuracy and F1 only need how often each distinct
//! (label, pred A, pred B) cell was drawn, so with those metrics alone the draws
//! go straight into cell counts.
//!
//! **PRNG.** Resample `i` under `seed` uses its own four xoshiro256++ 1.0
//! generators (Blackman & Vigna 2019) stepped together, their 4 x 256-bit
//! state filled in order by SplitMix64 from
//! `key = splitmix64(splitmix64(seed) ^ i)`. Each step gives lanes 0..3; each
//! 64-bit output gives two 32-bit words (high half first), each mapped to
//! `[0, N)` by Lemire's nearly-divisionless method (reject when the low
//! product word is below `2^32 mod N`). Four independent lanes keep the CPU
//! busy; written here (no crate) so the stream can never change under a
//! dependency update. `tests::golden_stream` pins it, and
//! `tests/test_bootstrap.py` re-implements it in pure Python.
//!
//! Resample values are written to their own slot in index order, so the
//! result does not depend on the thread count, and a range
//! `[start, start + count)` equals the same rows of any larger run.

use rayon::prelude::*;

use crate::error::{check_labels, check_len, KernelError};

/// One SplitMix64 step (Steele, Lea & Flood 2014).
#[inline]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256++ 1.0.
#[derive(Clone, Debug)]
pub struct Xoshiro256pp {
    s: [u64; 4],
}

impl Xoshiro256pp {
    pub fn from_seed_u64(seed: u64) -> Self {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Xoshiro256pp { s }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let out = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }
}

/// Four xoshiro256++ generators stepped together: independent dependency
/// chains the CPU overlaps (and the compiler may vectorise).
#[derive(Clone, Debug)]
pub struct Xoshiro256ppX4 {
    /// `s[word][lane]`.
    s: [[u64; 4]; 4],
}

impl Xoshiro256ppX4 {
    /// Resample `i` under `seed`: SplitMix64 from `splitmix64(splitmix64(seed) ^ i)`
    /// fills lane 0's four state words, then lane 1's, and so on.
    pub fn for_resample(seed: u64, i: u64) -> Self {
        let mut a = seed;
        let mut b = splitmix64(&mut a) ^ i;
        let mut sm = splitmix64(&mut b);
        let mut s = [[0u64; 4]; 4];
        for lane in 0..4 {
            for word in s.iter_mut() {
                word[lane] = splitmix64(&mut sm);
            }
        }
        Xoshiro256ppX4 { s }
    }

    /// One output of each lane, lane 0 first.
    #[inline(always)]
    pub fn next_x4(&mut self) -> [u64; 4] {
        let s = &mut self.s;
        let mut out = [0u64; 4];
        for l in 0..4 {
            out[l] = s[0][l]
                .wrapping_add(s[3][l])
                .rotate_left(23)
                .wrapping_add(s[0][l]);
            let t = s[1][l] << 17;
            s[2][l] ^= s[0][l];
            s[3][l] ^= s[1][l];
            s[1][l] ^= s[2][l];
            s[0][l] ^= s[3][l];
            s[2][l] ^= t;
            s[3][l] = s[3][l].rotate_left(45);
        }
        out
    }
}

/// Calls `f(index)` with the first `count` indices in `[0, n)` of resample `i`.
///
/// The word stream: each step of [`Xoshiro256ppX4`] gives lanes 0..3, each
/// 64-bit output split into two 32-bit words, high half first. A word `u` maps
/// to `(u * n) >> 32` unless the low half of `u * n` is below `2^32 mod n`
/// (Lemire's nearly-divisionless rejection, which makes the map exactly
/// uniform). The indices are the accepted words in order. `n` in `[1, 2^32)`.
#[inline(always)]
pub fn draws(seed: u64, i: u64, n: u32, count: usize, mut f: impl FnMut(usize)) {
    let mut rng = Xoshiro256ppX4::for_resample(seed, i);
    let nn = n as u64;
    let threshold = n.wrapping_neg() % n;
    let mut left = count;
    // Eight words per step; finish word by word when one step could overshoot.
    while left >= 8 {
        let r = rng.next_x4();
        for &x in r.iter() {
            let m1 = (x >> 32) * nn;
            let m2 = (x & 0xFFFF_FFFF) * nn;
            if (m1 as u32) >= threshold {
                f((m1 >> 32) as usize);
                left -= 1;
            }
            if (m2 as u32) >= threshold {
                f((m2 >> 32) as usize);
                left -= 1;
            }
        }
    }
    while left > 0 {
        let r = rng.next_x4();
        for u in r.iter().flat_map(|&x| [x >> 32, x & 0xFFFF_FFFF]) {
            let m = u * nn;
            if left > 0 && (m as u32) >= threshold {
                f((m >> 32) as usize);
                left -= 1;
            }
        }
    }
}

/// Fills `out` with the first `out.len()` indices of resample `i`: the same
/// stream as [`draws`], generated eight words at a time. Rejections are rare
/// (probability `(2^32 mod n) / 2^32` per word), so a step whose eight words
/// all pass is written out whole, branch-free; any other step goes word by word.
#[inline(always)]
pub fn fill_draws(seed: u64, i: u64, n: u32, out: &mut [u32]) {
    let mut rng = Xoshiro256ppX4::for_resample(seed, i);
    let nn = n as u64;
    let threshold = n.wrapping_neg() % n;
    let len = out.len();
    let mut pos = 0;
    while len - pos >= 8 {
        let r = rng.next_x4();
        let mut m = [0u64; 8];
        for l in 0..4 {
            m[2 * l] = (r[l] >> 32) * nn;
            m[2 * l + 1] = (r[l] & 0xFFFF_FFFF) * nn;
        }
        if m.iter().fold(true, |ok, &v| ok & ((v as u32) >= threshold)) {
            // One bounds check for the block, then a vector store.
            let dst: &mut [u32; 8] = (&mut out[pos..pos + 8]).try_into().unwrap();
            for q in 0..8 {
                dst[q] = (m[q] >> 32) as u32;
            }
            pos += 8;
        } else {
            for &v in &m {
                if (v as u32) >= threshold {
                    out[pos] = (v >> 32) as u32;
                    pos += 1;
                }
            }
        }
    }
    while pos < len {
        let r = rng.next_x4();
        for u in r.iter().flat_map(|&x| [x >> 32, x & 0xFFFF_FFFF]) {
            let m = u * nn;
            if pos < len && (m as u32) >= threshold {
                out[pos] = (m >> 32) as u32;
                pos += 1;
            }
        }
    }
}

/// The first `count` indices of resample `i` (for tests and audits).
pub fn resample_indices(n: u32, seed: u64, i: u64, count: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(count);
    draws(seed, i, n, count, |j| out.push(j));
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    MacroF1,
    Accuracy,
    Ece,
    Nll,
    Brier,
    Kl,
    Js,
}

impl Metric {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "macro_f1" => Metric::MacroF1,
            "accuracy" => Metric::Accuracy,
            "ece" => Metric::Ece,
            "nll" => Metric::Nll,
            "brier" => Metric::Brier,
            "kl" => Metric::Kl,
            "js" => Metric::Js,
            _ => return None,
        })
    }

    /// Whether the metric needs per-example values (ECE: the confidence).
    pub fn needs_values(self) -> bool {
        !matches!(self, Metric::MacroF1 | Metric::Accuracy)
    }
}

/// What the caller hands over; model 0 is A, model 1 is B.
pub struct PairedInput<'a> {
    pub labels: &'a [i64],
    pub preds: [&'a [i64]; 2],
    pub n_classes: usize,
    /// Tier of each class in `[0, n_tiers)`; with `n_tiers = 1` only "all" is reported.
    pub class_tier: &'a [i64],
    pub n_tiers: usize,
    /// Each metric with, where it needs them, per-example values of A and B
    /// (ECE: confidence; otherwise the per-example NLL, Brier, KL or JS).
    pub metrics: Vec<(Metric, Option<[&'a [f64]; 2]>)>,
    /// Equal-width ECE bins, right-closed (SPEC §2).
    pub n_bins: usize,
}

#[derive(Clone, Copy, Debug)]
struct Cell {
    y: u32,
    pred: [u32; 2],
}

/// Per-example values of one metric for models A and B, in tier-sorted order.
struct Series {
    /// ECE: `correct - confidence`; otherwise the per-example value.
    vals: [Vec<f64>; 2],
    /// ECE only: each example's bin.
    bins: Option<[Vec<u16>; 2]>,
}

/// The prepared problem: built once in O(N), then resampled many times.
///
/// Statistics are numbered `s = metric * n_groups + group`, groups being "all"
/// then each tier (when there are several). Accuracy and F1 come from cell
/// counts; the other metrics from per-example draw counts, with examples
/// sorted by tier so each tier is one contiguous dot product.
pub struct Paired {
    n: usize,
    k: usize,
    n_tiers: usize,
    n_groups: usize,
    metrics: Vec<Metric>,
    n_bins: usize,
    class_tier: Vec<u32>,
    cells: Vec<Cell>,
    /// Per model and confusion slot (tp, fn, fp of each class; CSR) the cells
    /// that add to it, so the counts are gathered sums, not scattered adds.
    slot_start: [Vec<u32>; 2],
    slot_cells: [Vec<u32>; 2],
    cell_of: Vec<u32>,
    /// `cell_of` as u16 when the cells fit (half the cache footprint in the
    /// draw loop); empty otherwise.
    cell_of16: Vec<u16>,
    /// Example -> position in tier-sorted order.
    pos_of: Vec<u32>,
    ex_tier: Vec<u32>,
    /// Sorted positions `[lo, hi)` of each tier.
    tier_range: Vec<(usize, usize)>,
    series: Vec<Option<Series>>,
    /// Accumulator slots of one tier; all tiers lie one after another.
    tier_slots: usize,
    /// Per metric: offset of its slots within a tier block.
    offset: Vec<usize>,
}

/// Scratch space of one worker.
pub struct Scratch {
    /// The resample's indices.
    idx: Vec<u32>,
    counts: Vec<u32>,
    w: Vec<f64>,
    /// Draws per cell. (Spreading the increments over four copies to avoid
    /// store-to-load stalls measured no faster on the reference workload.)
    cell_w: Vec<u32>,
    /// Per model: tp `[0, K)`, fn `[K, 2K)`, fp `[2K, 3K)`, a dummy at `3K`.
    conf: [Vec<i64>; 2],
    acc: Vec<f64>,
    bins: Vec<f64>,
    t: Totals,
}

/// Sufficient statistics of one (re)sample.
#[derive(Clone, Default)]
struct Totals {
    group_n: Vec<f64>,
    /// Per model and group: correct predictions.
    correct: [Vec<f64>; 2],
    f1_sum: [Vec<f64>; 2],
    f1_cnt: [Vec<f64>; 2],
    /// Per group, the per-tier accumulators summed over the group's tiers.
    gacc: Vec<f64>,
}

#[inline]
fn f1_of(tp: i64, fp: i64, fn_: i64) -> Option<f64> {
    let d = 2 * tp + fp + fn_;
    (d > 0).then(|| 2.0 * tp as f64 / d as f64)
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

impl Paired {
    pub fn new(input: &PairedInput<'_>) -> Result<Self, KernelError> {
        let n = input.labels.len();
        let k = input.n_classes;
        if n < 2 {
            return Err(KernelError::Invalid {
                message: format!("need at least 2 examples, got {n}"),
            });
        }
        if n as u64 >= 1 << 32 {
            return Err(KernelError::Invalid {
                message: format!("at most 2^32 - 1 examples, got {n}"),
            });
        }
        if input.n_tiers == 0 || input.n_bins == 0 || input.n_bins > 65535 || k == 0 {
            return Err(KernelError::Invalid {
                message: "n_tiers and n_classes must be >= 1, n_bins in [1, 65535]".into(),
            });
        }
        check_labels("labels", input.labels, k)?;
        for (m, name) in [(0, "preds_a"), (1, "preds_b")] {
            check_len(&format!("{name} length vs labels"), n, input.preds[m].len())?;
            check_labels(name, input.preds[m], k)?;
        }
        check_len(
            "tier_of_class length vs n_classes",
            k,
            input.class_tier.len(),
        )?;
        check_labels("tier_of_class", input.class_tier, input.n_tiers)?;
        if input.metrics.is_empty() {
            return Err(KernelError::Empty {
                what: "metrics".into(),
            });
        }
        let n_tiers = input.n_tiers;
        let n_groups = if n_tiers > 1 { 1 + n_tiers } else { 1 };
        let class_tier: Vec<u32> = input.class_tier.iter().map(|&t| t as u32).collect();
        let ex_tier: Vec<u32> = input
            .labels
            .iter()
            .map(|&y| class_tier[y as usize])
            .collect();

        // Distinct (label, pred A, pred B) cells, numbered in order of first appearance.
        let mut cell_id = std::collections::HashMap::new();
        let mut cells = Vec::new();
        let mut cell_of = Vec::with_capacity(n);
        for i in 0..n {
            let key = (input.labels[i], input.preds[0][i], input.preds[1][i]);
            let id = *cell_id.entry(key).or_insert_with(|| {
                cells.push(Cell {
                    y: key.0 as u32,
                    pred: [key.1 as u32, key.2 as u32],
                });
                cells.len() as u32 - 1
            });
            cell_of.push(id);
        }
        let cells_len = cells.len();
        // Per cell and model the two confusion slots it adds to: tp, or fn and fp.
        let cell_slots: Vec<[u32; 4]> = cells
            .iter()
            .map(|c| {
                let mut sl = [0u32; 4];
                for m in 0..2 {
                    let (y, p) = (c.y, c.pred[m]);
                    let pair = if y == p {
                        [y, 3 * k as u32]
                    } else {
                        [k as u32 + y, 2 * k as u32 + p]
                    };
                    sl[2 * m..2 * m + 2].copy_from_slice(&pair);
                }
                sl
            })
            .collect();
        let (mut slot_start, mut slot_cells) = ([vec![], vec![]], [vec![], vec![]]);
        for m in 0..2 {
            let mut lists = vec![Vec::new(); 3 * k + 1];
            for (c, sl) in cell_slots.iter().enumerate() {
                lists[sl[2 * m] as usize].push(c as u32);
                lists[sl[2 * m + 1] as usize].push(c as u32);
            }
            slot_start[m].push(0);
            // The dummy slot (3K) only collects the "correct" half-pairs: skip it.
            for list in &lists[..3 * k] {
                slot_cells[m].extend_from_slice(list);
                slot_start[m].push(slot_cells[m].len() as u32);
            }
        }

        // Tier-sorted order (stable), so each tier's examples are contiguous.
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by_key(|&j| ex_tier[j as usize]);
        let mut pos_of = vec![0u32; n];
        for (q, &j) in order.iter().enumerate() {
            pos_of[j as usize] = q as u32;
        }
        let mut tier_range = Vec::with_capacity(n_tiers);
        let mut lo = 0;
        for t in 0..n_tiers as u32 {
            let hi = lo + ex_tier.iter().filter(|&&x| x == t).count();
            tier_range.push((lo, hi));
            lo = hi;
        }

        let edges: Vec<f64> = (0..=input.n_bins)
            .map(|b| b as f64 / input.n_bins as f64)
            .collect();
        let mut offset = Vec::new();
        let mut series = Vec::new();
        let mut tier_slots = 0;
        for &(metric, values) in &input.metrics {
            offset.push(tier_slots);
            if !metric.needs_values() {
                series.push(None);
                continue;
            }
            let v = values.ok_or_else(|| KernelError::Invalid {
                message: format!("{metric:?} needs per-example values of both models"),
            })?;
            for (m, name) in [(0, "values of A"), (1, "values of B")] {
                check_len(&format!("{metric:?} {name} vs labels"), n, v[m].len())?;
            }
            let mut vals = [Vec::with_capacity(n), Vec::with_capacity(n)];
            let mut bins = [Vec::with_capacity(n), Vec::with_capacity(n)];
            for m in 0..2 {
                for &j in &order {
                    let (j, x) = (j as usize, v[m][j as usize]);
                    if metric != Metric::Ece {
                        vals[m].push(x);
                        continue;
                    }
                    if !(0.0..=1.0).contains(&x) {
                        return Err(KernelError::Invalid {
                            message: format!("confidence[{j}] = {x} is not in [0, 1]"),
                        });
                    }
                    // Right-closed bins as in calibration::bin_by_edges (bin 0 also takes 0).
                    let b = edges
                        .partition_point(|&e| e < x)
                        .saturating_sub(1)
                        .min(input.n_bins - 1);
                    let correct = (input.preds[m][j] == input.labels[j]) as u8 as f64;
                    // ECE only needs sum(correct - conf) per bin: |that| / n.
                    vals[m].push(correct - x);
                    bins[m].push(b as u16);
                }
            }
            let is_ece = metric == Metric::Ece;
            tier_slots += if is_ece { 2 * input.n_bins } else { 2 };
            series.push(Some(Series {
                vals,
                bins: is_ece.then_some(bins),
            }));
        }
        Ok(Paired {
            n,
            k,
            n_tiers,
            n_groups,
            metrics: input.metrics.iter().map(|m| m.0).collect(),
            n_bins: input.n_bins,
            class_tier,
            cells,
            slot_start,
            slot_cells,
            cell_of16: if cells_len <= 1 << 16 {
                cell_of.iter().map(|&c| c as u16).collect()
            } else {
                Vec::new()
            },
            cell_of,
            pos_of,
            ex_tier,
            tier_range,
            series,
            tier_slots,
            offset,
        })
    }

    /// Number of statistics (metric, group) per resample.
    pub fn n_stats(&self) -> usize {
        self.metrics.len() * self.n_groups
    }

    pub fn n_cells(&self) -> usize {
        self.cells.len()
    }

    fn per_example(&self) -> bool {
        self.tier_slots > 0
    }

    pub fn scratch(&self) -> Scratch {
        let twof = |len: usize| [vec![0.0; len], vec![0.0; len]];
        let ex = if self.per_example() { self.n } else { 0 };
        Scratch {
            idx: vec![0; self.n],
            counts: vec![0; ex],
            w: vec![0.0; ex],
            cell_w: vec![0; self.cells.len()],
            conf: [vec![0; 3 * self.k + 1], vec![0; 3 * self.k + 1]],
            acc: vec![0.0; self.tier_slots * self.n_tiers],
            bins: vec![0.0; 4 * self.n_bins],
            t: Totals {
                group_n: vec![0.0; self.n_groups],
                correct: twof(self.n_groups),
                f1_sum: twof(self.n_groups),
                f1_cnt: twof(self.n_groups),
                gacc: vec![0.0; self.tier_slots * self.n_groups],
            },
        }
    }

    /// Tiers that make up group `g` (0 = all).
    fn group_tiers(&self, g: usize) -> std::ops::Range<usize> {
        if g == 0 {
            0..self.n_tiers
        } else {
            g - 1..g
        }
    }

    /// Sets the draw counts of every example (original order).
    fn set_weights(&self, s: &mut Scratch, weights: &[u32]) {
        s.cell_w.fill(0);
        if self.per_example() {
            s.counts.fill(0);
        }
        for (j, &w) in weights.iter().enumerate() {
            s.cell_w[self.cell_of[j] as usize] += w;
            if self.per_example() {
                s.counts[self.pos_of[j] as usize] = w;
            }
        }
    }

    /// Per-tier sums of the per-example metrics from `s.counts`.
    #[inline(always)]
    fn sweep(&self, s: &mut Scratch) {
        if !self.per_example() {
            return;
        }
        for (w, &c) in s.w.iter_mut().zip(&s.counts) {
            *w = c as f64;
        }
        let nb = self.n_bins;
        for (mi, ser) in self.series.iter().enumerate() {
            let Some(ser) = ser else { continue };
            for (t, &(lo, hi)) in self.tier_range.iter().enumerate() {
                let w = &s.w[lo..hi];
                let base = t * self.tier_slots + self.offset[mi];
                for m in 0..2 {
                    let v = &ser.vals[m][lo..hi];
                    let Some(bins) = &ser.bins else {
                        s.acc[base + m] = dot(w, v);
                        continue;
                    };
                    // Four copies of the bins break the add-after-add dependency.
                    s.bins.fill(0.0);
                    for (q, ((&wq, &d), &b)) in w.iter().zip(v).zip(&bins[m][lo..hi]).enumerate() {
                        s.bins[(q & 3) * nb + b as usize] += wq * d;
                    }
                    for b in 0..nb {
                        let c = |r: usize| s.bins[r * nb + b];
                        s.acc[base + m * nb + b] = (c(0) + c(1)) + (c(2) + c(3));
                    }
                }
            }
        }
    }

    /// Fills `s.t` from cell weights and the per-tier accumulators.
    #[inline(always)]
    fn totals(&self, s: &mut Scratch) {
        for m in 0..2 {
            s.conf[m].fill(0);
        }
        for m in 0..2 {
            let (start, cells) = (&self.slot_start[m], &self.slot_cells[m]);
            for (slot, c) in s.conf[m][..3 * self.k].iter_mut().enumerate() {
                let list = &cells[start[slot] as usize..start[slot + 1] as usize];
                *c = list.iter().map(|&x| s.cell_w[x as usize] as i64).sum();
            }
        }
        let k = self.k;
        let t = &mut s.t;
        t.group_n.fill(0.0);
        for m in 0..2 {
            t.correct[m].fill(0.0);
            t.f1_sum[m].fill(0.0);
            t.f1_cnt[m].fill(0.0);
            let (tp, rest) = s.conf[m].split_at(k);
            let (fn_, fp) = rest.split_at(k);
            for c in 0..k {
                let g = 1 + self.class_tier[c] as usize;
                let g = if self.n_groups > 1 { g } else { 0 };
                // Support (tp + fn) of the class is the number of its examples.
                if m == 0 {
                    t.group_n[g] += (tp[c] + fn_[c]) as f64;
                }
                t.correct[m][g] += tp[c] as f64;
                if let Some(f) = f1_of(tp[c], fp[c], fn_[c]) {
                    t.f1_sum[m][g] += f;
                    t.f1_cnt[m][g] += 1.0;
                }
            }
            if self.n_groups > 1 {
                for v in [&mut t.correct[m], &mut t.f1_sum[m], &mut t.f1_cnt[m]] {
                    v[0] = v[1..].iter().sum();
                }
            }
        }
        if self.n_groups > 1 {
            t.group_n[0] = t.group_n[1..].iter().sum();
        }
        let ts = self.tier_slots;
        for g in 0..self.n_groups {
            let dst = &mut t.gacc[g * ts..(g + 1) * ts];
            dst.fill(0.0);
            for r in self.group_tiers(g) {
                for (d, &a) in dst.iter_mut().zip(&s.acc[r * ts..(r + 1) * ts]) {
                    *d += a;
                }
            }
        }
    }

    /// Value of metric `mi` in group `g` for model `m`.
    #[inline(always)]
    fn value(&self, t: &Totals, mi: usize, g: usize, m: usize) -> f64 {
        let n = t.group_n[g];
        let off = g * self.tier_slots + self.offset[mi];
        match self.metrics[mi] {
            Metric::MacroF1 => t.f1_sum[m][g] / t.f1_cnt[m][g],
            Metric::Accuracy => t.correct[m][g] / n,
            Metric::Ece => {
                let bins = &t.gacc[off + m * self.n_bins..off + (m + 1) * self.n_bins];
                bins.iter().map(|d| d.abs()).sum::<f64>() / n
            }
            _ => t.gacc[off + m] / n,
        }
    }

    /// `out[2 s + m]` = statistic `s` of model `m` from the weights in `s`.
    /// NaN where a group is empty or no class of the set is defined.
    #[inline(always)]
    fn finish(&self, s: &mut Scratch, out: &mut [f64]) {
        self.sweep(s);
        self.totals(s);
        for mi in 0..self.metrics.len() {
            for g in 0..self.n_groups {
                let st = mi * self.n_groups + g;
                for m in 0..2 {
                    out[2 * st + m] = self.value(&s.t, mi, g, m);
                }
            }
        }
    }

    /// Values of both models for resample `i` under `seed`.
    #[inline(always)]
    pub fn resample(&self, seed: u64, i: u64, s: &mut Scratch, out: &mut [f64]) {
        s.cell_w.fill(0);
        fill_draws(seed, i, self.n as u32, &mut s.idx);
        if self.per_example() {
            s.counts.fill(0);
            let (counts, cell_w) = (&mut s.counts, &mut s.cell_w);
            for &j in &s.idx {
                counts[self.pos_of[j as usize] as usize] += 1;
                cell_w[self.cell_of[j as usize] as usize] += 1;
            }
        } else if !self.cell_of16.is_empty() {
            // Accuracy / F1 only: the draws go straight into cell counts.
            let (cell_w, cell_of) = (&mut s.cell_w[..], &self.cell_of16[..]);
            assert!(cell_of.len() == self.n && s.idx.len() == self.n);
            for &j in &s.idx {
                // SAFETY: j < n (Lemire's map lands in [0, n)) and cell_of has n
                // entries, each a cell index below cell_w.len() by construction
                // in `new`. Unchecked, this scatter is a third cheaper.
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

    /// Values of both models on the full data (every example once).
    pub fn full(&self) -> Vec<f64> {
        let mut s = self.scratch();
        self.set_weights(&mut s, &vec![1; self.n]);
        let mut out = vec![0.0; 2 * self.n_stats()];
        self.finish(&mut s, &mut out);
        out
    }

    /// Values of both models for explicit index draws (rows of `indices`).
    pub fn eval_indices(&self, indices: &[Vec<usize>]) -> Result<Vec<f64>, KernelError> {
        let mut s = self.scratch();
        let w = 2 * self.n_stats();
        let mut out = vec![0.0; w * indices.len()];
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
    pub fn deltas(&self, seed: u64, start: u64, count: usize) -> Vec<f64> {
        const PER_TASK: usize = 16;
        let ns = self.n_stats();
        let mut out = vec![0.0; count * ns];
        out.par_chunks_mut(PER_TASK * ns)
            .enumerate()
            .for_each(|(t, chunk)| {
                self.rows(seed, start + (t * PER_TASK) as u64, chunk);
            });
        out
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

    /// BCa acceleration of each statistic's delta from the delete-one jackknife,
    /// `sum d^3 / (6 (sum d^2)^1.5)` with `d = mean(theta_j) - theta_j`.
    ///
    /// Each `theta_j` comes from the full-data sufficient statistics by an O(1)
    /// update (the touched classes, bin and sums), so the whole jackknife is
    /// O(N x statistics). NaN when every `theta_j` is equal (degenerate).
    pub fn jackknife_accel(&self) -> Vec<f64> {
        let mut s = self.scratch();
        self.set_weights(&mut s, &vec![1; self.n]);
        self.sweep(&mut s);
        self.totals(&mut s);
        let (t, conf) = (&s.t, &s.conf);
        // Accuracy and F1 only see an example's cell: one jackknife value per
        // cell, weighted by the cell's size.
        let nc = self.cells.len();
        let mut first = vec![usize::MAX; nc];
        for (j, &c) in self.cell_of.iter().enumerate().rev() {
            first[c as usize] = j;
        }
        let size: Vec<f64> = s.cell_w[..nc].iter().map(|&w| w as f64).collect();
        let mut accel = vec![f64::NAN; self.n_stats()];
        let mut theta = vec![0.0; self.n];
        for mi in 0..self.metrics.len() {
            let by_cell = !self.metrics[mi].needs_values();
            for g in 0..self.n_groups {
                let full = [self.value(t, mi, g, 0), self.value(t, mi, g, 1)];
                let rows: &[usize] = if by_cell { &first } else { &[] };
                let len = if by_cell { nc } else { self.n };
                for (r, th) in theta[..len].iter_mut().enumerate() {
                    let j = if by_cell { rows[r] } else { r };
                    let v = |m: usize| self.jack_value(t, conf, mi, g, m, j, full[m]);
                    *th = v(1) - v(0);
                }
                let w = by_cell.then_some(&size[..]);
                accel[mi * self.n_groups + g] = acceleration(&theta[..len], w);
            }
        }
        accel
    }

    /// Metric `mi`, group `g`, model `m` with example `j` left out.
    #[allow(clippy::too_many_arguments)]
    fn jack_value(
        &self,
        t: &Totals,
        conf: &[Vec<i64>; 2],
        mi: usize,
        g: usize,
        m: usize,
        j: usize,
        full: f64,
    ) -> f64 {
        let tier = self.ex_tier[j] as usize;
        let cell = self.cells[self.cell_of[j] as usize];
        let (y, p) = (cell.y as usize, cell.pred[m] as usize);
        let metric = self.metrics[mi];
        if metric == Metric::MacroF1 {
            let k = self.k;
            let (tp, fn_, fp) = (&conf[m][..k], &conf[m][k..2 * k], &conf[m][2 * k..3 * k]);
            let (mut sum, mut cnt) = (t.f1_sum[m][g], t.f1_cnt[m][g]);
            let in_set = |c: usize| g == 0 || self.class_tier[c] as usize == g - 1;
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
            if y == p {
                touch(y, 1, 0, 0);
            } else {
                touch(y, 0, 0, 1);
                touch(p, 0, 1, 0);
            }
            return sum / cnt;
        }
        if g != 0 && tier != g - 1 {
            return full;
        }
        let n1 = t.group_n[g] - 1.0;
        let q = self.pos_of[j] as usize;
        let off = g * self.tier_slots + self.offset[mi];
        match (metric, &self.series[mi]) {
            (Metric::Accuracy, _) => (t.correct[m][g] - (y == p) as u8 as f64) / n1,
            (_, Some(ser)) => {
                let x = ser.vals[m][q];
                match &ser.bins {
                    Some(bins) => {
                        // Only the example's bin changes: swap |D_b| for |D_b - d_j|.
                        let d_b = t.gacc[off + m * self.n_bins + bins[m][q] as usize];
                        let num = full * t.group_n[g];
                        (num - d_b.abs() + (d_b - x).abs()) / n1
                    }
                    None => (t.gacc[off + m] - x) / n1,
                }
            }
            _ => f64::NAN,
        }
    }
}

/// `sum d^3 / (6 (sum d^2)^1.5)`, `d = mean - theta_j` (Efron & Tibshirani
/// eq. 14.15, as scipy.stats.bootstrap computes it).
fn acceleration(theta: &[f64], weight: Option<&[f64]>) -> f64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_values() {
        // Published SplitMix64 outputs for seed 0.
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut s), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(splitmix64(&mut s), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn xoshiro_reference_values() {
        // First outputs of the reference C implementation from state {1, 2, 3, 4}.
        let mut r = Xoshiro256pp { s: [1, 2, 3, 4] };
        assert_eq!(r.next_u64(), 41943041);
        assert_eq!(r.next_u64(), 58720359);
        assert_eq!(r.next_u64(), 3588806011781223);
    }

    #[test]
    fn lanes_are_xoshiro256pp() {
        let mut x4 = Xoshiro256ppX4::for_resample(3, 11);
        let mut lanes: Vec<Xoshiro256pp> = (0..4)
            .map(|l| Xoshiro256pp {
                s: [x4.s[0][l], x4.s[1][l], x4.s[2][l], x4.s[3][l]],
            })
            .collect();
        for _ in 0..5 {
            let out = x4.next_x4();
            for l in 0..4 {
                assert_eq!(out[l], lanes[l].next_u64());
            }
        }
    }

    #[test]
    fn fill_draws_is_the_draws_stream() {
        for &(n, count) in &[(6430u32, 6430usize), (7, 100), (3_000_000_019, 37)] {
            for i in 0..5 {
                let mut a = vec![0u32; count];
                fill_draws(11, i, n, &mut a);
                let mut b = Vec::new();
                draws(11, i, n, count, |j| b.push(j as u32));
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn golden_stream() {
        // Pinned: any change to the generator, the stream derivation or the
        // bounded-int mapping breaks reproducibility of published intervals.
        let idx = resample_indices(1000, 0, 0, 8);
        assert_eq!(idx, GOLDEN_0_0.to_vec());
        let idx = resample_indices(6430, 42, 7, 8);
        assert_eq!(idx, GOLDEN_42_7.to_vec());
    }

    const GOLDEN_0_0: [usize; 8] = [245, 25, 469, 405, 413, 324, 872, 437];
    const GOLDEN_42_7: [usize; 8] = [6107, 618, 2615, 2146, 6418, 1601, 3776, 2728];

    type Toy = (Vec<i64>, Vec<i64>, Vec<i64>, Vec<f64>, Vec<f64>, Vec<i64>);

    fn toy() -> Toy {
        let n = 400;
        let y: Vec<i64> = (0..n).map(|i| ((i * 7) % 5) as i64).collect();
        let pa: Vec<i64> = (0..n)
            .map(|i| {
                if i % 3 == 0 {
                    ((i + 1) % 5) as i64
                } else {
                    y[i]
                }
            })
            .collect();
        let pb: Vec<i64> = (0..n)
            .map(|i| {
                if i % 4 == 0 {
                    ((i + 2) % 5) as i64
                } else {
                    y[i]
                }
            })
            .collect();
        let ca: Vec<f64> = (0..n)
            .map(|i| 0.2 + 0.8 * ((i * 13) % 97) as f64 / 97.0)
            .collect();
        let cb: Vec<f64> = (0..n)
            .map(|i| 0.3 + 0.7 * ((i * 29) % 89) as f64 / 89.0)
            .collect();
        (y, pa, pb, ca, cb, vec![0, 0, 1, 2, 2])
    }

    fn problem<'a>(d: &'a Toy, n_tiers: usize, ct: &'a [i64]) -> Paired {
        Paired::new(&PairedInput {
            labels: &d.0,
            preds: [&d.1, &d.2],
            n_classes: 5,
            class_tier: ct,
            n_tiers,
            metrics: vec![
                (Metric::MacroF1, None),
                (Metric::Accuracy, None),
                (Metric::Ece, Some([&d.3, &d.4])),
                (Metric::Nll, Some([&d.4, &d.3])),
            ],
            n_bins: 15,
        })
        .unwrap()
    }

    #[test]
    fn resample_equals_eval_of_its_indices() {
        let d = toy();
        let p = problem(&d, 3, &d.5);
        let mut s = p.scratch();
        let mut v = vec![0.0; 2 * p.n_stats()];
        p.resample(5, 3, &mut s, &mut v);
        let idx = resample_indices(400, 5, 3, 400);
        assert_eq!(p.eval_indices(&[idx]).unwrap(), v);
    }

    #[test]
    fn ranges_merge_and_threads_do_not_matter() {
        let d = toy();
        let p = problem(&d, 3, &d.5);
        let run = |threads: usize, start: u64, count: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| p.deltas(9, start, count))
        };
        let whole = run(1, 0, 50);
        assert_eq!(whole, run(3, 0, 50));
        let mut merged = run(2, 0, 17);
        merged.extend(run(2, 17, 33));
        assert_eq!(whole, merged);
    }

    #[test]
    fn jackknife_matches_recomputation() {
        let d = toy();
        let ct = [0i64; 5];
        for (n_tiers, tiers) in [(3, &d.5[..]), (1, &ct[..])] {
            let p = problem(&d, n_tiers, tiers);
            let fast = p.jackknife_accel();
            // Delete-one by brute force: weights all 1 except example j.
            let ns = p.n_stats();
            let mut thetas = vec![vec![0.0; p.n]; ns];
            let mut s = p.scratch();
            let mut v = vec![0.0; 2 * ns];
            for j in 0..p.n {
                let mut w = vec![1u32; p.n];
                w[j] = 0;
                p.set_weights(&mut s, &w);
                p.finish(&mut s, &mut v);
                for st in 0..ns {
                    thetas[st][j] = v[2 * st + 1] - v[2 * st];
                }
            }
            for st in 0..ns {
                let slow = acceleration(&thetas[st], None);
                assert!(
                    (fast[st] - slow).abs() <= 1e-9 * slow.abs().max(1e-3),
                    "stat {st}: {} vs {slow}",
                    fast[st]
                );
            }
        }
    }

    #[test]
    fn identical_models_give_zero_deltas_and_nan_accel() {
        let d = toy();
        let same = (
            d.0.clone(),
            d.1.clone(),
            d.1.clone(),
            d.3.clone(),
            d.3.clone(),
            d.5.clone(),
        );
        let p = problem(&same, 3, &same.5);
        assert!(p.deltas(1, 0, 20).iter().all(|&x| x == 0.0 || x.is_nan()));
        assert!(p.jackknife_accel().iter().all(|a| a.is_nan()));
    }

    #[test]
    fn full_data_hand_check() {
        let y = [0i64, 1, 1, 2];
        let pa = [0i64, 1, 0, 2];
        let pb = [0i64, 1, 1, 1];
        let p = Paired::new(&PairedInput {
            labels: &y,
            preds: [&pa, &pb],
            n_classes: 3,
            class_tier: &[0, 0, 0],
            n_tiers: 1,
            metrics: vec![(Metric::Accuracy, None), (Metric::MacroF1, None)],
            n_bins: 15,
        })
        .unwrap();
        let v = p.full();
        assert_eq!(&v[..2], &[0.75, 0.75]);
        // A: F1 = [2/3, 2/3, 1]; B: F1 = [1, 0.8, 0]
        assert!((v[2] - (2.0 / 3.0 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-15);
        assert!((v[3] - 1.8 / 3.0).abs() < 1e-15);
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// On-CPU nanoseconds of this thread (not wall time: the machine is shared).
    fn cpu_ns() -> f64 {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
        s.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// `cargo test --release --lib timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn time_resamples() {
        let n = 6430u32;
        let reps = 3000;
        let t0 = cpu_ns();
        let mut acc = 0usize;
        let mut buf = vec![0u32; n as usize];
        for i in 0..reps {
            fill_draws(0, i, n, &mut buf);
            acc = acc.wrapping_add(buf[(i % 100) as usize] as usize);
        }
        let dt = cpu_ns() - t0;
        println!(
            "draws: {:.2} ns/index ({acc})",
            dt / (reps as f64 * n as f64)
        );
        let y: Vec<i64> = (0..n as i64).map(|i| (i * 7919) % 113).collect();
        let pa: Vec<i64> = (0..n as i64)
            .map(|i| {
                if i % 4 == 0 {
                    (i * 31) % 113
                } else {
                    y[i as usize]
                }
            })
            .collect();
        let pb: Vec<i64> = (0..n as i64)
            .map(|i| {
                if i % 5 == 0 {
                    (i * 37) % 113
                } else {
                    y[i as usize]
                }
            })
            .collect();
        let ct: Vec<i64> = (0..113)
            .map(|c| (c >= 20) as i64 + (c >= 60) as i64)
            .collect();
        let v1: Vec<f64> = (0..n).map(|i| (i % 97) as f64 / 97.0).collect();
        let v2: Vec<f64> = (0..n).map(|i| (i % 89) as f64 / 89.0).collect();
        let all = vec![
            (Metric::MacroF1, None),
            (Metric::Accuracy, None),
            (Metric::Ece, Some([&v1[..], &v2[..]])),
            (Metric::Nll, Some([&v1[..], &v2[..]])),
            (Metric::Brier, Some([&v1[..], &v2[..]])),
        ];
        for metrics in [vec![(Metric::MacroF1, None)], all] {
            let p = Paired::new(&PairedInput {
                labels: &y,
                preds: [&pa, &pb],
                n_classes: 113,
                class_tier: &ct,
                n_tiers: 3,
                metrics,
                n_bins: 15,
            })
            .unwrap();
            let mut s = p.scratch();
            let mut v = vec![0.0; 2 * p.n_stats()];
            let t0 = cpu_ns();
            for i in 0..reps {
                p.resample(0, i, &mut s, &mut v);
            }
            let per = (cpu_ns() - t0) / reps as f64 / 1e3;
            let mut rows = vec![0.0; reps as usize * p.n_stats()];
            let t0 = cpu_ns();
            p.rows(0, 0, &mut rows);
            let per_rows = (cpu_ns() - t0) / reps as f64 / 1e3;
            println!("rows: {per_rows:.2} us/resample");
            let t0 = cpu_ns();
            for _ in 0..reps {
                p.finish(&mut s, &mut v);
            }
            let fin = (cpu_ns() - t0) / reps as f64 / 1e3;
            let t0 = cpu_ns();
            let a = p.jackknife_accel();
            let jack = (cpu_ns() - t0) / 1e3;
            println!(
                "{} stats: resample {per:.2} us (finish {fin:.2} us), jackknife {jack:.0} us, {} cells ({})",
                p.n_stats(),
                p.n_cells(),
                a[0]
            );
        }
    }
}
