//! Paired bootstrap over per-example sufficient statistics.
//!
//! The caller computes per-example quantities once (prediction, confidence,
//! per-example values of each metric, for models A and B). A resample then
//! draws N example indices ([`rng`]), counts the draws per example and sweeps
//! once, so no N x R index matrix ever exists.
//!
//! The bootstrap knows statistic *kinds*, not metric names ([`Statistic`]);
//! each kind lives in its own module (`stat_mean`, `stat_confusion`,
//! `stat_binned`) with its preparation, accumulation, value and delete-one
//! (jackknife) update. Confusion-derived statistics, and per-example means
//! whose values are integers fixed by the example's (label, pred A, pred B)
//! cell (accuracy, churn), only need how often each distinct cell was drawn:
//! with those alone the draws go straight into cell counts.
//!
//! Resample values are written to their own slot in index order, so the
//! result does not depend on the thread count, and a range
//! `[start, start + count)` equals the same rows of any larger run.

mod jackknife;
mod problem;
mod resample;
mod rng;
mod stat_binned;
mod stat_confusion;
mod stat_mean;

pub use problem::Paired;
pub use rng::resample_indices;

/// What the bootstrap computes for one metric: its kind, with the
/// per-example inputs it needs. Model 0 is A, model 1 is B.
#[derive(Clone, Copy, Debug)]
pub enum Statistic<'a> {
    /// Mean of a per-example value of each model (accuracy, NLL, Brier, KL, ...).
    ExampleMean { values: [&'a [f64]; 2] },
    /// Mean per-class F1 of the group's classes, from confusion counts over
    /// all examples of the (re)sample; classes with `TP + FP + FN = 0` left out.
    MacroF1,
    /// Top-1 ECE over `n_bins` equal-width, right-closed bins of each model's
    /// confidence (in `[0, 1]`).
    Binned {
        n_bins: usize,
        confidence: [&'a [f64]; 2],
    },
    /// Mean of a per-example value of the *pair* (e.g. churn). It has no
    /// value per model: model A's slot holds 0, so the "delta" B - A of every
    /// (re)sample is the pair's value itself.
    PairMean { values: &'a [f64] },
}

/// What the caller hands over.
pub struct PairedInput<'a> {
    pub labels: &'a [i64],
    pub preds: [&'a [i64]; 2],
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
