//! The prepared problem: built once in O(N), then resampled many times.

use super::stat_binned::Binned;
use super::stat_mean::Mean;
use super::{PairedInput, Statistic};
use crate::error::{check_labels, check_len, KernelError};

/// A distinct (label, pred A, pred B) combination.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cell {
    pub(super) y: u32,
    pub(super) pred: [u32; 2],
}

/// One prepared statistic.
pub(super) enum Stat {
    MacroF1,
    Mean(Mean),
    Binned(Binned),
}

impl Stat {
    /// Whether its delete-one values depend only on the left-out example's cell.
    pub(super) fn by_cell(&self) -> bool {
        match self {
            Stat::MacroF1 => true,
            Stat::Mean(m) => m.by_cell,
            Stat::Binned(_) => false,
        }
    }
}

/// How the examples are laid out, for the statistic modules' `prepare`.
pub(super) struct Layout<'a> {
    pub(super) n: usize,
    pub(super) n_cells: usize,
    pub(super) n_tiers: usize,
    pub(super) cell_of: &'a [u32],
    pub(super) cell_tier: &'a [u32],
    /// Tier-sorted order: `order[q]` is the example at sorted position `q`.
    pub(super) order: &'a [u32],
}

/// The prepared paired problem.
///
/// Statistics are numbered `s = statistic * n_groups + group`, groups being
/// "all" then each tier (when there are several). Confusion counts come from
/// cell counts; per-example statistics from per-example draw counts, with
/// examples sorted by tier so each tier is one contiguous dot product.
pub struct Paired {
    pub(super) n: usize,
    pub(super) k: usize,
    pub(super) n_tiers: usize,
    pub(super) n_groups: usize,
    pub(super) class_tier: Vec<u32>,
    pub(super) cells: Vec<Cell>,
    /// Per model and confusion slot (tp, fn, fp of each class; CSR) the cells
    /// that add to it, so the counts are gathered sums, not scattered adds.
    pub(super) slot_start: [Vec<u32>; 2],
    pub(super) slot_cells: [Vec<u32>; 2],
    pub(super) cell_of: Vec<u32>,
    /// `cell_of` as u16 when the cells fit (half the cache footprint in the
    /// draw loop); empty otherwise.
    pub(super) cell_of16: Vec<u16>,
    /// Example -> position in tier-sorted order.
    pub(super) pos_of: Vec<u32>,
    pub(super) ex_tier: Vec<u32>,
    /// Sorted positions `[lo, hi)` of each tier.
    pub(super) tier_range: Vec<(usize, usize)>,
    pub(super) stats: Vec<Stat>,
    /// Accumulator slots of one tier; all tiers lie one after another.
    pub(super) tier_slots: usize,
    /// Largest bin count of the binned statistics (0 without).
    pub(super) max_bins: usize,
    /// Some statistic needs per-example draw counts (not only cell counts).
    pub(super) per_example: bool,
    pub(super) has_f1: bool,
}

/// Distinct (label, pred A, pred B) cells, numbered in order of first
/// appearance, and each example's cell.
fn build_cells(input: &PairedInput<'_>) -> (Vec<Cell>, Vec<u32>) {
    let n = input.labels.len();
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
    (cells, cell_of)
}

/// Per model, the CSR index from confusion slot (tp `[0, K)`, fn `[K, 2K)`,
/// fp `[2K, 3K)`) to the cells adding to it, cells ascending within a slot.
fn build_slot_index(cells: &[Cell], k: usize) -> ([Vec<u32>; 2], [Vec<u32>; 2]) {
    let (mut slot_start, mut slot_cells) = ([vec![], vec![]], [vec![], vec![]]);
    for m in 0..2 {
        // A correct cell adds to tp only; a wrong one to fn of y and fp of p.
        let slots = |c: &Cell| -> (u32, Option<u32>) {
            let (y, p) = (c.y, c.pred[m]);
            if y == p {
                (y, None)
            } else {
                (k as u32 + y, Some(2 * k as u32 + p))
            }
        };
        let mut start = vec![0u32; 3 * k + 1];
        for c in cells {
            let (a, b) = slots(c);
            start[a as usize + 1] += 1;
            if let Some(b) = b {
                start[b as usize + 1] += 1;
            }
        }
        for s in 1..start.len() {
            start[s] += start[s - 1];
        }
        let mut fill = start.clone();
        let mut list = vec![0u32; start[3 * k] as usize];
        for (ci, c) in cells.iter().enumerate() {
            let (a, b) = slots(c);
            for s in std::iter::once(a).chain(b) {
                list[fill[s as usize] as usize] = ci as u32;
                fill[s as usize] += 1;
            }
        }
        slot_start[m] = start;
        slot_cells[m] = list;
    }
    (slot_start, slot_cells)
}

/// Stable tier-sorted order, each example's position in it, and each tier's range.
fn tier_order(ex_tier: &[u32], n_tiers: usize) -> (Vec<u32>, Vec<u32>, Vec<(usize, usize)>) {
    let n = ex_tier.len();
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
    (order, pos_of, tier_range)
}

impl Paired {
    pub fn new(input: &PairedInput<'_>) -> Result<Self, KernelError> {
        let n = input.labels.len();
        let k = input.n_classes;
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
        if input.n_tiers == 0 || k == 0 {
            return Err(KernelError::invalid("n_tiers and n_classes must be >= 1"));
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
        let (cells, cell_of) = build_cells(input);
        let (slot_start, slot_cells) = build_slot_index(&cells, k);
        let (order, pos_of, tier_range) = tier_order(&ex_tier, n_tiers);
        let cell_tier: Vec<u32> = cells.iter().map(|c| class_tier[c.y as usize]).collect();
        let layout = Layout {
            n,
            n_cells: cells.len(),
            n_tiers,
            cell_of: &cell_of,
            cell_tier: &cell_tier,
            order: &order,
        };

        let mut stats = Vec::with_capacity(input.statistics.len());
        let mut tier_slots = 0;
        for (si, st) in input.statistics.iter().enumerate() {
            let what = format!("statistics[{si}]");
            let stat = match *st {
                Statistic::MacroF1 => Stat::MacroF1,
                Statistic::ExampleMean { values } => {
                    Stat::Mean(Mean::prepare(&what, values, tier_slots, &layout)?)
                }
                Statistic::PairMean { values } => {
                    let zeros = vec![0.0; n];
                    Stat::Mean(Mean::prepare(&what, [&zeros, values], tier_slots, &layout)?)
                }
                Statistic::Binned { n_bins, confidence } => Stat::Binned(Binned::prepare(
                    &what, n_bins, confidence, input, tier_slots, &layout,
                )?),
            };
            tier_slots += match &stat {
                Stat::MacroF1 => 0,
                Stat::Mean(_) => 2,
                Stat::Binned(b) => 2 * b.n_bins,
            };
            stats.push(stat);
        }
        let max_bins = stats
            .iter()
            .map(|s| match s {
                Stat::Binned(b) => b.n_bins,
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        let per_example = stats.iter().any(|s| match s {
            Stat::MacroF1 => false,
            Stat::Mean(m) => !m.by_cell,
            Stat::Binned(_) => true,
        });
        let has_f1 = stats.iter().any(|s| matches!(s, Stat::MacroF1));
        Ok(Paired {
            n,
            k,
            n_tiers,
            n_groups,
            class_tier,
            cell_of16: if cells.len() <= 1 << 16 {
                cell_of.iter().map(|&c| c as u16).collect()
            } else {
                Vec::new()
            },
            cells,
            slot_start,
            slot_cells,
            cell_of,
            pos_of,
            ex_tier,
            tier_range,
            stats,
            tier_slots,
            max_bins,
            per_example,
            has_f1,
        })
    }

    /// Number of examples N.
    pub fn n_examples(&self) -> usize {
        self.n
    }

    /// Number of statistics (statistic, group) per resample.
    pub fn n_stats(&self) -> usize {
        self.stats.len() * self.n_groups
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
