//! kdmetrics kernels: plain Rust over `ndarray` views, no Python here.
//!
//! Every kernel reads float16/float32/float64 logits as they are (generic over
//! [`Logit`]), works row by row with per-element `exp`/`ln` in float32 and
//! float64 accumulation, and is parallel over rows with rayon. Per-row results
//! are collected in row order and reduced sequentially, so the answer does not
//! depend on the thread count. The PyO3 bindings live in `python/` behind the
//! `python` feature.
//!
//! Modules are private; the kernel API is re-exported below.

#![deny(dead_code)]
// Index loops over several equal-length slices read more clearly than zips.
#![allow(clippy::needless_range_loop)]

mod bootstrap;
mod calibration;
mod confusion;
mod divergence;
mod error;
mod fastmath;
mod groups;
mod logit;
mod order_stats;
mod ranking;
mod softmax;
mod temperature;

#[cfg(feature = "python")]
mod python;

pub use bootstrap::{resample_indices, Problem, ProblemInput, Statistic};
pub use calibration::{bin_by_edges, bin_equal_mass, BinSums};
pub use confusion::{confusion_counts, ConfusionCounts};
pub use divergence::{divergences, Divergences};
pub use error::KernelError;
pub use groups::group_sums;
pub use logit::Logit;
pub use order_stats::{column_summary, order_statistics, ColumnSummary};
pub use ranking::top_k_hits;
pub use softmax::{example_stats, predict, ExampleStats, Input};
pub use temperature::{nll_curve, NllCurve};
