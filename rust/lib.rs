//! kdmetrics kernels: plain Rust over `ndarray` views, no Python here.
//!
//! Every kernel reads float16/float32/float64 logits as they are (generic over
//! [`Logit`]), works row by row with per-element `exp`/`ln` in float32 and
//! float64 accumulation, and is parallel over rows with rayon. Per-row results
//! are collected in row order and reduced sequentially, so the answer does not
//! depend on the thread count. The PyO3 bindings live in `python.rs` behind the
//! `python` feature.

// Index loops over several equal-length slices read more clearly than zips.
#![allow(clippy::needless_range_loop)]

pub mod bootstrap;
pub mod calibration;
pub mod confusion;
pub mod divergence;
pub mod error;
pub mod fastmath;
pub mod groups;
pub mod logit;
pub mod softmax;
pub mod temperature;

#[cfg(feature = "python")]
mod python;

pub use error::KernelError;
pub use logit::Logit;
