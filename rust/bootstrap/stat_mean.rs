//! Statistic kinds `ExampleMean` and `PairMean`: the mean over a group's
//! examples of a per-example value (a pair statistic is a mean whose
//! reference values are all 0). Values that are all small integers
//! (accuracy's and top-k's 0/1) are kept as bytes and summed in integers:
//! exact, and an eighth of the memory traffic. Real values of every mean and
//! model are swept together ([`RealSweep`]).

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

    /// Each model's real values (sorted order) with its accumulator slot.
    pub(super) fn real_series(&self) -> impl Iterator<Item = (usize, &[f64])> {
        self.vals.iter().enumerate().filter_map(|(m, v)| match v {
            Values::Real(x) => Some((self.offset + m, &x[..])),
            Values::Small(_) => None,
        })
    }

    /// Per-tier sums of the small-integer models from the draw counts `w`
    /// (sorted order), into the tier blocks of `acc`. (Real values: the
    /// problem's [`RealSweep`].)
    #[inline(always)]
    pub(super) fn sweep<C: Count>(&self, p: &Problem, w: &[C], acc: &mut [f64]) {
        for (t, &(lo, hi)) in p.tier_range.iter().enumerate() {
            let base = t * p.tier_slots + self.offset;
            for (m, v) in self.vals.iter().enumerate() {
                if let Values::Small(v) = v {
                    acc[base + m] = dot_small(&w[lo..hi], &v[lo..hi]) as f64;
                }
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

/// Positions per block of the fused sweep: two AVX2 registers per series.
const LANES: usize = 8;
/// Series per group (the sweep's dispatch handles 1 and 2).
const GROUP: usize = 2;
/// Resamples swept together: each block of values is loaded once for all of
/// them. `GROUP` series x `BATCH` resamples x 2 registers = 8 independent
/// multiply-add chains, within the sixteen AVX2 registers. (Measured on the
/// reference workload: 2 x 2 beats 4 x 1, 1 x 4 and 4 x 2, which spills.)
pub(super) const BATCH: usize = 2;

/// One resample's side of a sweep: its draw counts (sorted order) and its
/// per-tier accumulators.
pub(super) struct Lane<'a, C> {
    pub(super) counts: &'a [C],
    pub(super) acc: &'a mut [f64],
}

/// Every real-valued series (mean statistic, model) of the problem, summed
/// per tier in one fused sweep: in groups of up to [`GROUP`] series whose
/// values are interleaved in blocks of [`LANES`] positions, so one pass over
/// the values feeds every series of the group and up to [`BATCH`] resamples
/// (the values, not the counts, are what must come from the second-level
/// cache). Lane `l` of a series accumulates the tier's positions
/// `q = l (mod 8)` in increasing order with a fused multiply-add (the same
/// bits on every CPU: `mul_add` is fused in hardware or in software), and
/// the eight lanes are added in a fixed tree; so a series' sums depend only
/// on its own values and the counts, never on the series or resamples swept
/// beside it.
pub(super) struct RealSweep {
    groups: Vec<RealGroup>,
}

struct RealGroup {
    /// Accumulator slot (within a tier block) of each series.
    slots: Vec<usize>,
    /// `vals[(block * G + s) * LANES + lane]`: series `s` at position
    /// `block * LANES + lane` (0 past the last position).
    vals: Vec<f64>,
}

impl RealSweep {
    /// `series`: (slot, values in sorted order), each of length `n`.
    pub(super) fn new(n: usize, series: &[(usize, &[f64])]) -> RealSweep {
        let blocks = n.div_ceil(LANES);
        let groups = series
            .chunks(GROUP)
            .map(|chunk| {
                let g = chunk.len();
                let mut vals = vec![0.0; blocks * g * LANES];
                for (s, (_, v)) in chunk.iter().enumerate() {
                    for (q, &x) in v.iter().enumerate() {
                        vals[((q / LANES) * g + s) * LANES + q % LANES] = x;
                    }
                }
                RealGroup {
                    slots: chunk.iter().map(|&(slot, _)| slot).collect(),
                    vals,
                }
            })
            .collect();
        RealSweep { groups }
    }

    /// Per-tier sums of every real series for each resample of `lanes`
    /// (tier `t`'s accumulator block starts at `t * tier_slots`; tier `t` is
    /// positions `tier_range[t]`).
    #[inline(always)]
    pub(super) fn sweep<C: Count, const B: usize>(
        &self,
        tier_range: &[(usize, usize)],
        tier_slots: usize,
        lanes: &mut [Lane<'_, C>; B],
    ) {
        for g in &self.groups {
            // A group holds GROUP = 2 series, the last one perhaps 1.
            match g.slots.len() {
                1 => g.sweep::<1, B, C>(tier_range, tier_slots, lanes),
                _ => g.sweep::<GROUP, B, C>(tier_range, tier_slots, lanes),
            }
        }
    }
}

impl RealGroup {
    #[inline(always)]
    fn sweep<const G: usize, const B: usize, C: Count>(
        &self,
        tier_range: &[(usize, usize)],
        tier_slots: usize,
        lanes: &mut [Lane<'_, C>; B],
    ) {
        assert!(self.slots.len() == G, "G series");
        for r in lanes.iter() {
            assert!(
                self.vals.len() == r.counts.len().div_ceil(LANES) * G * LANES,
                "one count and one value per position"
            );
        }
        for (t, &(lo, hi)) in tier_range.iter().enumerate() {
            let mut a = [[[0.0f64; LANES]; G]; B];
            // Blocks lo / 8 .. ceil(hi / 8): whole ones in one tight loop,
            // a partial first or last block lane by lane.
            let (i0, i1) = (lo.div_ceil(LANES), hi / LANES);
            if lo < hi && i0 > i1 {
                self.partial(lanes, lo / LANES, lo, hi, &mut a);
            } else if lo < hi {
                if lo % LANES != 0 {
                    self.partial(lanes, lo / LANES, lo, hi, &mut a);
                }
                let counts: [&[C]; B] =
                    std::array::from_fn(|b| &lanes[b].counts[i0 * LANES..i1 * LANES]);
                whole_blocks(counts, &self.vals[i0 * G * LANES..i1 * G * LANES], &mut a);
                if hi % LANES != 0 {
                    self.partial(lanes, i1, lo, hi, &mut a);
                }
            }
            for (r, ab) in lanes.iter_mut().zip(&a) {
                let base = t * tier_slots;
                for (x, &slot) in ab.iter().zip(&self.slots) {
                    r.acc[base + slot] =
                        ((x[0] + x[4]) + (x[2] + x[6])) + ((x[1] + x[5]) + (x[3] + x[7]));
                }
            }
        }
    }

    /// Block `blk`'s lanes whose positions lie in `lo..hi`.
    #[inline(always)]
    fn partial<const G: usize, const B: usize, C: Count>(
        &self,
        lanes: &[Lane<'_, C>; B],
        blk: usize,
        lo: usize,
        hi: usize,
        a: &mut [[[f64; LANES]; G]; B],
    ) {
        for (r, ab) in lanes.iter().zip(a.iter_mut()) {
            for l in 0..LANES {
                let q = blk * LANES + l;
                if (lo..hi).contains(&q) {
                    let w = r.counts[q].as_f64();
                    for s in 0..G {
                        ab[s][l] = w.mul_add(self.vals[(blk * G + s) * LANES + l], ab[s][l]);
                    }
                }
            }
        }
    }
}

/// Whole blocks: `a[b][s][l] += w_q v_q` (fused) for the positions of `c[b]`.
#[inline(always)]
fn whole_blocks<const G: usize, const B: usize, C: Count>(
    c: [&[C]; B],
    v: &[f64],
    a: &mut [[[f64; LANES]; G]; B],
) {
    for cb in c {
        assert!(cb.len() % LANES == 0 && v.len() == cb.len() * G);
    }
    #[cfg(target_arch = "x86_64")]
    if crate::fastmath::has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        unsafe { whole_blocks_avx2(c, v, a) };
        return;
    }
    whole_blocks_scalar(c, v, a);
}

/// [`whole_blocks`] lane by lane (CPUs without AVX2 and FMA): the same bits.
#[inline(always)]
fn whole_blocks_scalar<const G: usize, const B: usize, C: Count>(
    c: [&[C]; B],
    v: &[f64],
    a: &mut [[[f64; LANES]; G]; B],
) {
    for (blk, v) in v.chunks_exact(G * LANES).enumerate() {
        for (cb, ab) in c.iter().zip(a.iter_mut()) {
            let mut w = [0.0f64; LANES];
            for l in 0..LANES {
                w[l] = cb[blk * LANES + l].as_f64();
            }
            for s in 0..G {
                for l in 0..LANES {
                    ab[s][l] = w[l].mul_add(v[s * LANES + l], ab[s][l]);
                }
            }
        }
    }
}

/// [`whole_blocks`] in AVX2 registers (the compiler does not vectorise the
/// fused form on its own): the same fused multiply-add per lane, in the same
/// order, so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn whole_blocks_avx2<const G: usize, const B: usize, C: Count>(
    c: [&[C]; B],
    v: &[f64],
    a: &mut [[[f64; LANES]; G]; B],
) {
    use std::arch::x86_64::*;
    // Every load below lies inside `c[b]` and `v`.
    for cb in c {
        assert!(cb.len() % LANES == 0 && v.len() == cb.len() * G);
    }
    let mut lo = [[_mm256_setzero_pd(); G]; B];
    let mut hi = [[_mm256_setzero_pd(); G]; B];
    for b in 0..B {
        for s in 0..G {
            lo[b][s] = _mm256_loadu_pd(a[b][s].as_ptr());
            hi[b][s] = _mm256_loadu_pd(a[b][s].as_ptr().add(4));
        }
    }
    for (blk, v) in v.chunks_exact(G * LANES).enumerate() {
        let mut vl = [_mm256_setzero_pd(); G];
        let mut vh = [_mm256_setzero_pd(); G];
        for s in 0..G {
            vl[s] = _mm256_loadu_pd(v.as_ptr().add(s * LANES));
            vh[s] = _mm256_loadu_pd(v.as_ptr().add(s * LANES + 4));
        }
        for b in 0..B {
            let (w_lo, w_hi) = C::widen8(c[b].as_ptr().add(blk * LANES));
            for s in 0..G {
                lo[b][s] = _mm256_fmadd_pd(w_lo, vl[s], lo[b][s]);
                hi[b][s] = _mm256_fmadd_pd(w_hi, vh[s], hi[b][s]);
            }
        }
    }
    for b in 0..B {
        for s in 0..G {
            _mm256_storeu_pd(a[b][s].as_mut_ptr(), lo[b][s]);
            _mm256_storeu_pd(a[b][s].as_mut_ptr().add(4), hi[b][s]);
        }
    }
}

/// `sum a_i b_i` in integers (exact; u64 lanes cannot overflow: the counts
/// sum to at most 2^32 draws, each times at most 255).
#[inline(always)]
fn dot_small<C: Count>(a: &[C], b: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if let Some(a16) = C::as_u16(a) {
        if crate::fastmath::has_avx2_fma() {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { dot_small_avx2(a16, b) };
        }
    }
    dot_small_generic(a, b)
}

/// [`dot_small`] of u16 counts in eight 32-bit lanes, exact: a product is
/// below 2^24, so a lane takes 256 of them without wrapping; the lanes are
/// added into 64 bits every 1024 positions (128 per lane).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_small_avx2(a: &[u16], b: &[u8]) -> u64 {
    use std::arch::x86_64::*;
    assert!(a.len() == b.len());
    let mut total = 0u64;
    for (a, b) in a.chunks(1024).zip(b.chunks(1024)) {
        let mut acc = _mm256_setzero_si256();
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            let w = _mm256_cvtepu16_epi32(_mm_loadu_si128(x.as_ptr() as *const __m128i));
            let v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(y.as_ptr() as *const __m128i));
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(w, v));
        }
        let mut lanes = [0u32; 8];
        _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, acc);
        total += lanes.iter().map(|&l| l as u64).sum::<u64>();
        total += ra
            .iter()
            .zip(rb)
            .map(|(&x, &y)| x as u64 * y as u64)
            .sum::<u64>();
    }
    total
}

#[inline(always)]
fn dot_small_generic<C: Count>(a: &[C], b: &[u8]) -> u64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random numbers for the tests (SplitMix64).
    fn stream(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed;
        move || super::super::rng::splitmix64(&mut s)
    }

    /// The sweep's arithmetic written out plainly: lane `l` accumulates the
    /// tier's positions `q = l (mod 8)` in increasing order with a fused
    /// multiply-add, then the fixed tree.
    fn lane_sum(counts: &[u16], v: &[f64], lo: usize, hi: usize) -> f64 {
        let mut x = [0.0f64; 8];
        for q in lo..hi {
            x[q % 8] = (counts[q] as f64).mul_add(v[q], x[q % 8]);
        }
        ((x[0] + x[4]) + (x[2] + x[6])) + ((x[1] + x[5]) + (x[3] + x[7]))
    }

    #[test]
    fn the_fused_sweep_is_the_lane_sum_of_each_series() {
        let mut r = stream(5);
        for &n in &[1usize, 3, 7, 8, 9, 16, 17, 40, 6430] {
            // Tier boundaries at every alignment, including empty tiers and
            // tiers inside one block.
            let cuts: Vec<usize> = {
                let mut c = vec![0, n];
                for _ in 0..3 {
                    c.push((r() % (n as u64 + 1)) as usize);
                }
                c.sort();
                c
            };
            let tiers: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
            let counts: Vec<u16> = (0..n).map(|_| (r() % 5) as u16).collect();
            let series: Vec<Vec<f64>> = (0..6)
                .map(|_| {
                    (0..n)
                        .map(|_| (r() % 100_000) as f64 / 7919.0 - 3.0)
                        .collect()
                })
                .collect();
            let with_slots: Vec<(usize, &[f64])> = series
                .iter()
                .enumerate()
                .map(|(s, v)| (s, &v[..]))
                .collect();
            let sweep = RealSweep::new(n, &with_slots);
            let slots = 6;
            let mut acc = vec![f64::NAN; slots * tiers.len()];
            sweep.sweep(
                &tiers,
                slots,
                &mut [Lane {
                    counts: &counts,
                    acc: &mut acc,
                }],
            );
            for (t, &(lo, hi)) in tiers.iter().enumerate() {
                for (s, v) in series.iter().enumerate() {
                    let got = acc[t * slots + s];
                    assert_eq!(got.to_bits(), lane_sum(&counts, v, lo, hi).to_bits());
                    let plain: f64 = (lo..hi).map(|q| counts[q] as f64 * v[q]).sum();
                    assert!((got - plain).abs() <= 1e-9 * (1.0 + plain.abs()));
                }
            }
            // The u32 counts (their own widening) give the same bits.
            let wide: Vec<u32> = counts.iter().map(|&c| c as u32).collect();
            let mut acc32 = vec![f64::NAN; slots * tiers.len()];
            sweep.sweep(
                &tiers,
                slots,
                &mut [Lane {
                    counts: &wide,
                    acc: &mut acc32,
                }],
            );
            // In a batch of two (the second resample's counts reversed),
            // each resample gets the bits it gets alone.
            let other: Vec<u16> = counts.iter().rev().copied().collect();
            let (mut a0, mut a1) = (vec![f64::NAN; acc.len()], vec![f64::NAN; acc.len()]);
            sweep.sweep(
                &tiers,
                slots,
                &mut [
                    Lane {
                        counts: &counts,
                        acc: &mut a0,
                    },
                    Lane {
                        counts: &other,
                        acc: &mut a1,
                    },
                ],
            );
            let mut alone1 = vec![f64::NAN; acc.len()];
            sweep.sweep(
                &tiers,
                slots,
                &mut [Lane {
                    counts: &other,
                    acc: &mut alone1,
                }],
            );
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a0), bits(&acc));
            assert_eq!(bits(&a1), bits(&alone1));
            assert_eq!(
                acc.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                acc32.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn the_vector_and_scalar_blocks_give_the_same_bits() {
        let mut r = stream(11);
        let n = 8 * 37;
        let v: Vec<f64> = (0..2 * n)
            .map(|_| (r() % 100_000) as f64 / 977.0 - 40.0)
            .collect();
        let c16: Vec<u16> = (0..n).map(|_| (r() % 7) as u16).collect();
        let c32: Vec<u32> = (0..n).map(|_| (r() >> 32) as u32).collect();
        let start = [[[0.25f64; LANES]; 2]; 2];
        let bits = |a: &[[[f64; LANES]; 2]; 2]| -> Vec<u64> {
            a.iter().flatten().flatten().map(|x| x.to_bits()).collect()
        };
        let (mut x, mut y) = (start, start);
        whole_blocks([&c16[..], &c16[..]], &v, &mut x);
        whole_blocks_scalar([&c16[..], &c16[..]], &v, &mut y);
        assert_eq!(bits(&x), bits(&y));
        let (mut x, mut y) = (start, start);
        whole_blocks([&c32[..], &c32[..]], &v, &mut x);
        whole_blocks_scalar([&c32[..], &c32[..]], &v, &mut y);
        assert_eq!(bits(&x), bits(&y));
    }

    #[test]
    fn u32_counts_above_2_31_convert_exactly() {
        // The u32 vector path converts through a sign flip: counts at and
        // above 2^31 must come out as themselves.
        let n = 24;
        let counts: Vec<u32> = (0..n as u32)
            .map(|i| [0, 1, (1 << 31) - 1, 1 << 31, u32::MAX, 3_000_000_019][i as usize % 6])
            .collect();
        let v: Vec<f64> = (0..n).map(|q| 0.5 + q as f64).collect();
        let mut acc = vec![f64::NAN; 1];
        RealSweep::new(n, &[(0, &v[..])]).sweep(
            &[(0, n)],
            1,
            &mut [Lane {
                counts: &counts,
                acc: &mut acc,
            }],
        );
        let mut x = [0.0f64; 8];
        for q in 0..n {
            x[q % 8] = (counts[q] as f64).mul_add(v[q], x[q % 8]);
        }
        let want = ((x[0] + x[4]) + (x[2] + x[6])) + ((x[1] + x[5]) + (x[3] + x[7]));
        assert_eq!(acc[0].to_bits(), want.to_bits());
    }

    #[test]
    fn a_series_sums_the_same_alone_or_in_a_group() {
        let mut r = stream(9);
        let n = 1000;
        let tiers = [(0, 333), (333, 1000)];
        let counts: Vec<u16> = (0..n).map(|_| (r() % 4) as u16).collect();
        let series: Vec<Vec<f64>> = (0..5)
            .map(|_| (0..n).map(|_| (r() % 1000) as f64 / 13.0).collect())
            .collect();
        let mut alone = vec![0.0f64; 2];
        RealSweep::new(n, &[(0, &series[2][..])]).sweep(
            &tiers,
            1,
            &mut [Lane {
                counts: &counts,
                acc: &mut alone,
            }],
        );
        let all: Vec<(usize, &[f64])> = series
            .iter()
            .enumerate()
            .map(|(s, v)| (s, &v[..]))
            .collect();
        let mut grouped = vec![0.0f64; 10];
        RealSweep::new(n, &all).sweep(
            &tiers,
            5,
            &mut [Lane {
                counts: &counts,
                acc: &mut grouped,
            }],
        );
        assert_eq!(alone[0].to_bits(), grouped[2].to_bits());
        assert_eq!(alone[1].to_bits(), grouped[5 + 2].to_bits());
    }

    #[test]
    fn small_integer_dots_are_exact() {
        let mut r = stream(3);
        for &n in &[0usize, 1, 7, 8, 9, 1023, 1024, 1025, 6430, 70_000] {
            let a: Vec<u16> = (0..n).map(|_| (r() % 65536) as u16).collect();
            let b: Vec<u8> = (0..n).map(|_| (r() % 256) as u8).collect();
            let want: u64 = a.iter().zip(&b).map(|(&x, &y)| x as u64 * y as u64).sum();
            // Full-range counts (a lane wraps within 257 such products).
            assert_eq!(dot_small(&a, &b), want);
            assert_eq!(dot_small_generic(&a, &b), want);
            let wide: Vec<u32> = a.iter().map(|&x| x as u32).collect();
            assert_eq!(dot_small(&wide, &b), want);
        }
    }
}
