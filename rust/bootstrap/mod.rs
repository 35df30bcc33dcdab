//! Paired bootstrap of M models (a reference and variants) on the same
//! examples, over per-example sufficient statistics.
//!
//! The caller computes per-example quantities once (prediction, confidence,
//! per-example values of each metric, for every model). A resample draws N
//! example indices ([`rng`]), counts the draws per example, and scores every
//! model on that one draw, so every delta against the reference, and every
//! contrast between variants, comes from the same resampled examples. No
//! N x R index matrix ever exists.
//!
//! The bootstrap knows statistic *kinds*, not metric names ([`Statistic`]);
//! each kind lives in its own module (`stat_mean`, `stat_confusion`,
//! `stat_binned`) with its preparation, accumulation, value and delete-one
//! (jackknife) update. Confusion-derived statistics only read the draws of
//! each class and of each model's wrong predictions; means whose values are
//! small integers (accuracy, top-k, agreement, churn) are summed in integers.
//!
//! Resample values are written to their own slot in index order, so the
//! result does not depend on the thread count, and a range
//! `[start, start + count)` equals the same rows of any larger run. Model m's
//! values depend only on its own inputs and the draw, never on which other
//! models are in the problem: the pair (reference, m) alone gives the same
//! numbers.

mod jackknife;
mod problem;
mod resample;
mod rng;
mod stat_binned;
mod stat_confusion;
mod stat_mean;

pub use problem::Problem;
pub use rng::resample_indices;

/// What the bootstrap computes for one metric: its kind, with the
/// per-example inputs it needs, one slice per model (model 0 the reference).
#[derive(Clone, Debug)]
pub enum Statistic<'a> {
    /// Mean of a per-example value of each model (accuracy, NLL, Brier, KL, ...).
    ExampleMean { values: Vec<&'a [f64]> },
    /// Mean per-class F1 of the group's classes, from confusion counts over
    /// all examples of the (re)sample; classes with `TP + FP + FN = 0` left out.
    MacroF1,
    /// Top-1 ECE over `n_bins` equal-width, right-closed bins of each model's
    /// confidence (in `[0, 1]`).
    Binned {
        n_bins: usize,
        confidence: Vec<&'a [f64]>,
    },
    /// Mean of a per-example value of each *pair* (variant m, reference),
    /// one slice per variant (e.g. churn). The reference's slot holds 0, so
    /// the "delta" of every (re)sample is the pair's value itself.
    PairMean { values: Vec<&'a [f64]> },
}

/// What the caller hands over.
pub struct ProblemInput<'a> {
    pub labels: &'a [i64],
    /// Predicted classes of each model; at least two (the reference first).
    pub preds: Vec<&'a [i64]>,
    pub n_classes: usize,
    /// Tier of each class in `[0, n_tiers)`; with `n_tiers = 1` only "all" is reported.
    pub class_tier: &'a [i64],
    pub n_tiers: usize,
    pub statistics: Vec<Statistic<'a>>,
}

#[cfg(test)]
use crate::error::KernelError;

#[cfg(test)]
mod tests;
