//! The prepared problem: built once in O(N M), then resampled many times.

use super::rng::PositionMap;
use super::stat_binned::Binned;
use super::stat_mean::{Mean, RealSweep};
use super::{ProblemInput, Statistic};
use crate::error::{check_labels, check_len, KernelError};

/// One prepared statistic.
pub(super) enum Stat {
    MacroF1,
    Mean(Mean),
    Binned(Binned),
}

/// How the examples are laid out, for the statistic modules' `prepare`.
pub(super) struct Layout<'a> {
    pub(super) n: usize,
    pub(super) n_models: usize,
    pub(super) n_tiers: usize,
    pub(super) ex_tier: &'a [u32],
    /// Sorted order: `order[q]` is the example at position `q`.
    pub(super) order: &'a [u32],
    /// Example -> sorted position.
    pub(super) pos_of: &'a [u32],
}

/// The prepared problem of M models (model 0 the reference) on N examples.
///
/// Statistics are numbered `s = statistic * n_groups + group`, groups being
/// "all" then each tier (when there are several); a (re)sample's values are
/// `s * M + model`. Examples are laid out sorted by (tier, label), so each
/// tier and each class is a contiguous range: a resample counts how often
/// each example was drawn straight into this order, and from there every
/// sum is a contiguous sweep or a short gather. A model's confusion counts
/// come from one pass over its wrong predictions (grouped by label, each
/// with its prediction): `tp = support - fn`.
pub struct Problem {
    pub(super) n: usize,
    pub(super) k: usize,
    pub(super) m: usize,
    pub(super) n_tiers: usize,
    pub(super) n_groups: usize,
    pub(super) class_tier: Vec<u32>,
    pub(super) labels: Vec<u32>,
    /// Per model, each example's predicted class.
    pub(super) preds: Vec<Vec<u32>>,
    /// Class `c` is sorted positions `class_range[c].0 .. class_range[c].1`.
    pub(super) class_range: Vec<(u32, u32)>,
    /// Per model, its wrongly predicted examples grouped by label (CSR over
    /// classes).
    pub(super) wrong_by_label: Vec<Csr>,
    /// Per model, the prediction of each item of `wrong_by_label`.
    pub(super) wrong_pred: Vec<Vec<u32>>,
    /// Example -> sorted position (as u16 too when every position fits:
    /// half the cache footprint in the draw loop; empty otherwise).
    pub(super) pos_of: PositionMap<u32>,
    pub(super) pos_of16: Option<PositionMap<u16>>,
    pub(super) ex_tier: Vec<u32>,
    /// Sorted positions `[lo, hi)` of each tier.
    pub(super) tier_range: Vec<(usize, usize)>,
    pub(super) stats: Vec<Stat>,
    /// Accumulator slots of one tier; all tiers lie one after another.
    pub(super) tier_slots: usize,
    pub(super) has_f1: bool,
    /// Every real-valued mean series, swept together.
    pub(super) real: RealSweep,
}

/// Sorted positions of examples grouped by class: class `c` holds
/// `items[start[c]..start[c + 1]]`.
pub(super) struct Csr {
    pub(super) start: Vec<u32>,
    pub(super) items: Vec<u32>,
}

impl Csr {
    /// The positions of the examples `j` (ascending) with `keep(j)`, grouped
    /// by `class_of(j)`.
    fn group(
        pos_of: &[u32],
        k: usize,
        keep: impl Fn(usize) -> bool,
        class_of: impl Fn(usize) -> usize,
    ) -> Csr {
        let n = pos_of.len();
        let mut start = vec![0u32; k + 1];
        for j in (0..n).filter(|&j| keep(j)) {
            start[class_of(j) + 1] += 1;
        }
        for c in 1..start.len() {
            start[c] += start[c - 1];
        }
        let mut fill = start.clone();
        let mut items = vec![0u32; start[k] as usize];
        for j in (0..n).filter(|&j| keep(j)) {
            let c = class_of(j);
            items[fill[c] as usize] = pos_of[j];
            fill[c] += 1;
        }
        Csr { start, items }
    }
}

impl Problem {
    pub fn new(input: &ProblemInput<'_>) -> Result<Self, KernelError> {
        let n = input.labels.len();
        let k = input.n_classes;
        let m = input.preds.len();
        if n < 2 {
            return Err(KernelError::invalid(format!(
                "need at least 2 examples, got {n}"
            )));
        }
        if n as u64 >= 1 << 32 {
            return Err(KernelError::invalid(format!(
                "at most 2^32 - 1 examples, got {n}"
            )));
        }
        if m < 2 {
            return Err(KernelError::invalid(format!(
                "need at least 2 models (a reference and a variant), got {m}"
            )));
        }
        if input.n_tiers == 0 || k == 0 {
            return Err(KernelError::invalid("n_tiers and n_classes must be >= 1"));
        }
        check_labels("labels", input.labels, k)?;
        for (mi, p) in input.preds.iter().enumerate() {
            let name = format!("preds[{mi}]");
            check_len(&format!("{name} length vs labels"), n, p.len())?;
            check_labels(&name, p, k)?;
        }
        check_len(
            "tier_of_class length vs n_classes",
            k,
            input.class_tier.len(),
        )?;
        check_labels("tier_of_class", input.class_tier, input.n_tiers)?;
        if input.statistics.is_empty() {
            return Err(KernelError::Empty {
                what: "statistics".into(),
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
        let labels: Vec<u32> = input.labels.iter().map(|&y| y as u32).collect();
        let preds: Vec<Vec<u32>> = input
            .preds
            .iter()
            .map(|p| p.iter().map(|&c| c as u32).collect())
            .collect();
        // Classes in (tier, class) order; examples sorted by their class's rank.
        let mut class_rank: Vec<usize> = (0..k).collect();
        class_rank.sort_by_key(|&c| (class_tier[c], c));
        let mut rank_of = vec![0usize; k];
        for (r, &c) in class_rank.iter().enumerate() {
            rank_of[c] = r;
        }
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by_key(|&j| rank_of[labels[j as usize] as usize]);
        let mut pos_of = vec![0u32; n];
        for (q, &j) in order.iter().enumerate() {
            pos_of[j as usize] = q as u32;
        }
        let mut rank_start = vec![0u32; k + 1];
        for &y in &labels {
            rank_start[rank_of[y as usize] + 1] += 1;
        }
        for r in 1..rank_start.len() {
            rank_start[r] += rank_start[r - 1];
        }
        let class_range = (0..k)
            .map(|c| (rank_start[rank_of[c]], rank_start[rank_of[c] + 1]))
            .collect();
        let wrong_by_label: Vec<Csr> = preds
            .iter()
            .map(|p| Csr::group(&pos_of, k, |j| p[j] != labels[j], |j| labels[j] as usize))
            .collect();
        let wrong_pred = wrong_by_label
            .iter()
            .zip(&preds)
            .map(|(w, p): (&Csr, &Vec<u32>)| {
                w.items
                    .iter()
                    .map(|&q| p[order[q as usize] as usize])
                    .collect()
            })
            .collect();
        let mut tier_range = Vec::with_capacity(n_tiers);
        let mut lo = 0;
        for t in 0..n_tiers as u32 {
            let hi = lo + ex_tier.iter().filter(|&&x| x == t).count();
            tier_range.push((lo, hi));
            lo = hi;
        }
        let layout = Layout {
            n,
            n_models: m,
            n_tiers,
            ex_tier: &ex_tier,
            order: &order,
            pos_of: &pos_of,
        };

        let mut stats = Vec::with_capacity(input.statistics.len());
        let mut tier_slots = 0;
        for (si, st) in input.statistics.iter().enumerate() {
            let what = format!("statistics[{si}]");
            let stat = match st {
                Statistic::MacroF1 => Stat::MacroF1,
                Statistic::ExampleMean { values } => {
                    Stat::Mean(Mean::prepare(&what, values, tier_slots, &layout)?)
                }
                Statistic::PairMean { values } => {
                    if values.len() + 1 != m {
                        return Err(KernelError::invalid(format!(
                            "{what}: a pair statistic needs values for each of the {} \
                             variants, got {}",
                            m - 1,
                            values.len()
                        )));
                    }
                    let zeros = vec![0.0; n];
                    let all: Vec<&[f64]> = std::iter::once(&zeros[..])
                        .chain(values.iter().copied())
                        .collect();
                    Stat::Mean(Mean::prepare(&what, &all, tier_slots, &layout)?)
                }
                Statistic::Binned { n_bins, confidence } => Stat::Binned(Binned::prepare(
                    &what, *n_bins, confidence, input, tier_slots, &layout,
                )?),
            };
            tier_slots += match &stat {
                Stat::MacroF1 => 0,
                Stat::Mean(_) => m,
                Stat::Binned(b) => m * b.n_bins,
            };
            stats.push(stat);
        }
        let has_f1 = stats.iter().any(|s| matches!(s, Stat::MacroF1));
        let series: Vec<(usize, &[f64])> = stats
            .iter()
            .filter_map(|s| match s {
                Stat::Mean(mean) => Some(mean.real_series()),
                _ => None,
            })
            .flatten()
            .collect();
        let real = RealSweep::new(n, &series);
        Ok(Problem {
            n,
            k,
            m,
            n_tiers,
            n_groups,
            class_tier,
            labels,
            preds,
            class_range,
            wrong_by_label,
            wrong_pred,
            pos_of16: if n <= 1 << 16 {
                PositionMap::new(pos_of.iter().map(|&q| q as u16).collect())
            } else {
                None
            },
            pos_of: PositionMap::new(pos_of).expect("a permutation of 0..n"),
            ex_tier,
            tier_range,
            stats,
            tier_slots,
            has_f1,
            real,
        })
    }

    /// Number of examples N.
    pub fn n_examples(&self) -> usize {
        self.n
    }

    /// Number of models M (the reference first).
    pub fn n_models(&self) -> usize {
        self.m
    }

    /// Number of statistics (statistic, group) per resample and model.
    pub fn n_stats(&self) -> usize {
        self.stats.len() * self.n_groups
    }

    /// Number of delta columns: each statistic for each variant (model >= 1).
    pub fn n_deltas(&self) -> usize {
        self.n_stats() * (self.m - 1)
    }

    /// Tiers that make up group `g` (0 = all).
    pub(super) fn group_tiers(&self, g: usize) -> std::ops::Range<usize> {
        if g == 0 {
            0..self.n_tiers
        } else {
            g - 1..g
        }
    }
}
