//! Per-example softmax quantities: prediction, confidence, NLL and Brier.
//!
//! Each row is loaded as float64, shifted by its max and scaled by 1/T, then
//! exponentiated in float32 ([`exp_f32`]); sums are float64.

use ndarray::{ArrayView1, ArrayView2};
use rayon::prelude::*;

use crate::error::{check_labels, check_len, KernelError};
use crate::fastmath::exp_f32;
use crate::logit::{load_row, Logit, Work};

/// How to read the values of a row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Input {
    /// Unnormalised logits: finite values only.
    Logits,
    /// Log-probabilities (the caller took the log of validated probabilities):
    /// -inf marks a zero probability; NaN and +inf are refused.
    LogProbs,
}

/// Scratch space for one row, reused across the rows of a task.
pub struct RowBuf<W> {
    /// The row in its work type (logits, or log-probabilities).
    pub x: Vec<W>,
    /// `exp((x - max) / T)` in float32.
    pub e: Vec<f32>,
}

impl<W: Work> RowBuf<W> {
    pub fn new(k: usize) -> Self {
        RowBuf {
            x: vec![W::default(); k],
            e: vec![0.0; k],
        }
    }
}

/// What one pass over a row yields; probabilities are `e[k] / sum`.
#[derive(Clone, Copy, Debug)]
pub struct RowSoftmax {
    pub max: f64,
    /// First index of the max (NumPy's tie rule).
    pub argmax: usize,
    /// `sum_k exp((x_k - max) / T)`, >= 1.
    pub sum: f64,
}

/// True when no value is NaN or infinite (vectorises: no early exit).
#[inline(always)]
fn all_finite<W: Work>(x: &[W]) -> bool {
    x.iter().fold(true, |ok, v| ok & v.is_finite())
}

/// The error for row `row` of `what`, naming its first NaN or infinite value.
#[cold]
fn non_finite<W: Work>(x: &[W], what: &str, row: usize) -> KernelError {
    KernelError::NonFinite {
        what: what.to_string(),
        row,
        col: x.iter().position(|v| !v.is_finite()).unwrap_or(0),
    }
}

/// Refuses a row holding a NaN or an infinite value, naming where.
#[inline(always)]
pub fn check_finite_row<W: Work>(x: &[W], what: &str, row: usize) -> Result<(), KernelError> {
    if all_finite(x) {
        Ok(())
    } else {
        Err(non_finite(x, what, row))
    }
}

/// The max and the first index holding it (NumPy's tie rule). Two passes
/// that vectorise: a lane-wise max, then a blockwise search for its first
/// occurrence. Finite input, so `>` is a total order.
#[inline(always)]
pub fn max_and_argmax<W: Work>(x: &[W]) -> (W, usize) {
    let (max, arg, _) = max_argmax_finite(x);
    (max, arg)
}

/// [`max_and_argmax`] and whether every value is finite, from one lane-wise
/// pass (max and finiteness) and a blockwise search for the first max. With a
/// NaN present the max and index are meaningless, and `finite` is false.
#[inline(always)]
pub fn max_argmax_finite<W: Work>(x: &[W]) -> (W, usize, bool) {
    const L: usize = 8;
    let mut lanes = [W::NEG_INFINITY; L];
    let mut ok = [true; L];
    let mut chunks = x.chunks_exact(L);
    for c in &mut chunks {
        for j in 0..L {
            lanes[j] = if c[j] > lanes[j] { c[j] } else { lanes[j] };
            ok[j] &= c[j].is_finite();
        }
    }
    let mut max = W::NEG_INFINITY;
    let mut finite = ok.iter().all(|&b| b);
    for &v in chunks.remainder() {
        finite &= v.is_finite();
    }
    for &v in lanes.iter().chain(chunks.remainder()) {
        max = if v > max { v } else { max };
    }
    for (b, c) in x.chunks(L).enumerate() {
        if c.iter().fold(false, |hit, &v| hit | (v == max)) {
            let j = c.iter().position(|&v| v == max).unwrap_or(0);
            return (max, b * L + j, finite);
        }
    }
    (max, 0, finite)
}

/// Sums float32 values in float64 with four fixed lanes: faster than one
/// dependency chain, and the order never changes, so neither does the result.
#[inline(always)]
pub fn sum_f64(v: &[f32]) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut chunks = v.chunks_exact(4);
    for c in &mut chunks {
        for j in 0..4 {
            acc[j] += c[j] as f64;
        }
    }
    let mut tail = 0.0;
    for &r in chunks.remainder() {
        tail += r as f64;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Loads row `i`, checks it, and fills `buf.e`. Argmax ignores the temperature.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn prepare_row<'a, T: Logit>(
    what: &str,
    i: usize,
    row: ArrayView1<'a, T>,
    input: Input,
    inv_t: f64,
    x_buf: &'a mut [T::Work],
    e: &mut [f32],
) -> Result<(RowSoftmax, &'a [T::Work]), KernelError> {
    let x = load_row(row, x_buf);
    let (max, argmax, finite) = max_argmax_finite(x);
    let ok = match input {
        Input::Logits => finite,
        // -inf is a zero probability; NaN, +inf or an all -inf row are not.
        Input::LogProbs => {
            x.iter()
                .all(|&v| !v.is_nan() && v < T::Work::from_f64(f64::INFINITY))
                && x.iter().any(|v| v.is_finite())
        }
    };
    if !ok {
        return Err(non_finite(x, what, i));
    }
    // Shift and scale in the work type, exp in float32: one vectorised pass.
    let inv_t_w = T::Work::from_f64(inv_t);
    for (e, &v) in e.iter_mut().zip(x) {
        *e = exp_f32(v.shift_scale(max, inv_t_w));
    }
    let sum = sum_f64(e);
    Ok((
        RowSoftmax {
            max: max.to_f64(),
            argmax,
            sum,
        },
        x,
    ))
}

/// Runs `f` compiled for AVX2 + FMA when the CPU has them (x86-64 baseline
/// otherwise). Same operations either way (Rust never fuses multiply-add by
/// itself; explicit `mul_add` is fused on both), so the results are
/// bit-identical; only the speed changes.
#[inline(always)]
pub fn with_best_simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if crate::fastmath::has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { run_avx2(f) };
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Rows per rayon task: big enough to amortise scheduling, small enough to balance.
const ROWS_PER_TASK: usize = 256;

/// Maps every row index through `f` in parallel, in row order, with one
/// scratch value per task. The first error (lowest row) wins.
pub fn par_rows<S, R, MS, F>(n: usize, make_scratch: MS, f: F) -> Result<Vec<R>, KernelError>
where
    R: Send,
    MS: Fn() -> S + Sync,
    F: Fn(usize, &mut S) -> Result<R, KernelError> + Sync,
{
    let n_tasks = n.div_ceil(ROWS_PER_TASK);
    let parts: Vec<Result<Vec<R>, KernelError>> = (0..n_tasks)
        .into_par_iter()
        .map(|t| {
            let mut scratch = make_scratch();
            let lo = t * ROWS_PER_TASK;
            let hi = (lo + ROWS_PER_TASK).min(n);
            let mut part = Vec::with_capacity(hi - lo);
            // A plain loop (not `collect`) so the row code inlines into the
            // AVX2-compiled function; row closures are `#[inline(always)]`.
            with_best_simd(
                #[inline(always)]
                || {
                    for i in lo..hi {
                        part.push(f(i, &mut scratch)?);
                    }
                    Ok(part)
                },
            )
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

/// Checks the shape of a logits array: at least one row and two classes.
pub fn check_logits_shape<T>(what: &str, logits: &ArrayView2<'_, T>) -> Result<(), KernelError> {
    if logits.nrows() == 0 {
        return Err(KernelError::Empty {
            what: format!("{what} (no rows)"),
        });
    }
    if logits.ncols() < 2 {
        return Err(KernelError::Invalid {
            message: format!(
                "{what} must have at least 2 classes (columns), got {}",
                logits.ncols()
            ),
        });
    }
    Ok(())
}

/// Per-example results of [`example_stats`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExampleStats {
    pub pred: Vec<i64>,
    /// Top-1 probability, `max_k p_k`.
    pub conf: Vec<f64>,
    /// `logsumexp(z/T) - z_y/T`; empty when no labels were given.
    pub nll: Vec<f64>,
    /// `sum_k (p_k - [k = y])^2`; empty when no labels were given.
    pub brier: Vec<f64>,
}

/// Prediction, confidence and (with labels) NLL and Brier of every row at
/// temperature `1 / inv_t`.
/// `name` is the array's name in error messages.
pub fn example_stats<T: Logit>(
    logits: ArrayView2<'_, T>,
    labels: Option<&[i64]>,
    inv_t: f64,
    input: Input,
    name: &str,
) -> Result<ExampleStats, KernelError> {
    check_logits_shape(name, &logits)?;
    check_inv_t::<T::Work>(inv_t)?;
    let (n, k) = logits.dim();
    if let Some(y) = labels {
        check_len(&format!("labels length vs {name} rows"), n, y.len())?;
        check_labels("labels", y, k)?;
    }
    let rows = par_rows(
        n,
        || RowBuf::<T::Work>::new(k),
        #[inline(always)]
        |i, buf| {
            let (r, x) = prepare_row(name, i, logits.row(i), input, inv_t, &mut buf.x, &mut buf.e)?;
            let conf = 1.0 / r.sum;
            let scored = labels.map(|y| {
                let y = y[i] as usize;
                let nll = (r.max - x[y].to_f64()) * inv_t + r.sum.ln();
                let sq: f64 = sum_sq_f64(&buf.e);
                let p_y = buf.e[y] as f64 / r.sum;
                let brier = sq / (r.sum * r.sum) - 2.0 * p_y + 1.0;
                (nll, brier.max(0.0))
            });
            Ok((r.argmax as i64, conf, scored))
        },
    )?;
    let mut out = ExampleStats {
        pred: Vec::with_capacity(n),
        conf: Vec::with_capacity(n),
        ..Default::default()
    };
    for (pred, conf, scored) in rows {
        out.pred.push(pred);
        out.conf.push(conf);
        if let Some((nll, brier)) = scored {
            out.nll.push(nll);
            out.brier.push(brier);
        }
    }
    Ok(out)
}

/// Sums float64 values with four fixed lanes (same reasons as [`sum_f64`]).
#[inline(always)]
pub fn sum4(v: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut chunks = v.chunks_exact(4);
    for c in &mut chunks {
        for j in 0..4 {
            acc[j] += c[j];
        }
    }
    let mut tail = 0.0;
    for &r in chunks.remainder() {
        tail += r;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Predicted class of every row (argmax, ties to the lowest index), after the
/// same finiteness check as every other kernel; no exponentials needed.
pub fn predict<T: Logit>(logits: ArrayView2<'_, T>, name: &str) -> Result<Vec<i64>, KernelError> {
    check_logits_shape(name, &logits)?;
    let k = logits.ncols();
    par_rows(
        logits.nrows(),
        || vec![T::Work::default(); k],
        #[inline(always)]
        |i, buf| {
            let x = load_row(logits.row(i), buf);
            check_finite_row(x, name, i)?;
            Ok(max_and_argmax(x).1 as i64)
        },
    )
}

/// `sum_k e_k^2` in float64 with fixed lanes.
#[inline(always)]
fn sum_sq_f64(v: &[f32]) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut chunks = v.chunks_exact(4);
    for c in &mut chunks {
        for j in 0..4 {
            let x = c[j] as f64;
            acc[j] += x * x;
        }
    }
    let mut tail = 0.0;
    for &r in chunks.remainder() {
        tail += (r as f64) * (r as f64);
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// A temperature must be finite and positive (checked as 1/T), and 1/T must
/// fit the work type `W` rows are scaled in: float16/float32 logits are
/// scaled in float32, where a 1/T above ~3.4e38 would become inf (and every
/// probability NaN or 0), so such a temperature is refused, not computed.
pub fn check_inv_t<W: Work>(inv_t: f64) -> Result<(), KernelError> {
    if !(inv_t.is_finite() && inv_t > 0.0) {
        return Err(KernelError::invalid(format!(
            "temperature must be finite and > 0, got {}",
            1.0 / inv_t
        )));
    }
    if !W::from_f64(inv_t).is_finite() {
        return Err(KernelError::invalid(format!(
            "temperature {:e} is too small for float16/float32 logits (1/T overflows \
             float32); pass float64 logits for such temperatures",
            1.0 / inv_t
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;
    use ndarray::{array, Array2};

    fn reference(z: &[f64], y: usize, t: f64) -> (usize, f64, f64, f64) {
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = z.iter().map(|v| ((v - m) / t).exp()).sum();
        let p: Vec<f64> = z.iter().map(|v| ((v - m) / t).exp() / s).collect();
        let arg = z.iter().position(|&v| v == m).unwrap();
        let nll = s.ln() - (z[y] - m) / t;
        let brier: f64 = p
            .iter()
            .enumerate()
            .map(|(k, pk)| (pk - if k == y { 1.0 } else { 0.0 }).powi(2))
            .sum();
        (arg, p[arg], nll, brier)
    }

    #[test]
    fn hand_computed_two_classes() {
        // softmax([0, ln 3]) = [0.25, 0.75]
        let z = array![[0.0f64, 3.0f64.ln()]];
        let s = example_stats(z.view(), Some(&[0]), 1.0, Input::Logits, "logits").unwrap();
        assert_eq!(s.pred, vec![1]);
        assert!((s.conf[0] - 0.75).abs() < 1e-7);
        assert!((s.nll[0] - 4.0f64.ln()).abs() < 1e-7);
        // (0.25 - 1)^2 + 0.75^2 = 1.125
        assert!((s.brier[0] - 1.125).abs() < 1e-7);
    }

    #[test]
    fn matches_reference_at_temperatures() {
        let z = array![
            [1.0f64, -2.0, 0.5, 3.0],
            [10.0, 10.0, -10.0, 0.0],
            [1e4, -1e4, 0.0, 5.0]
        ];
        let y = [2i64, 1, 1];
        for &t in &[0.5, 1.0, 4.0] {
            let s = example_stats(z.view(), Some(&y), 1.0 / t, Input::Logits, "logits").unwrap();
            for i in 0..3 {
                let (arg, conf, nll, brier) =
                    reference(z.row(i).as_slice().unwrap(), y[i] as usize, t);
                assert_eq!(s.pred[i] as usize, arg);
                assert!((s.conf[i] - conf).abs() < 1e-6);
                assert!((s.nll[i] - nll).abs() < 1e-6 * nll.abs().max(1.0));
                assert!((s.brier[i] - brier).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn predict_matches_example_stats() {
        let z = array![[1.0f32, 2.0, 2.0], [0.0, 0.0, 0.0], [-5.0, 3.0, 2.9]];
        let s = example_stats(z.view(), None, 1.0, Input::Logits, "logits").unwrap();
        assert_eq!(predict(z.view(), "logits").unwrap(), s.pred);
        let bad = array![[1.0f32, f32::INFINITY]];
        assert!(predict(bad.view(), "logits").is_err());
    }

    #[test]
    fn ties_go_to_lowest_index() {
        let z = array![[1.0f32, 2.0, 2.0], [0.0, 0.0, 0.0]];
        let s = example_stats(z.view(), None, 1.0, Input::Logits, "logits").unwrap();
        assert_eq!(s.pred, vec![1, 0]);
        assert!(s.nll.is_empty());
        assert!((s.conf[1] - 1.0 / 3.0).abs() < 1e-7);
    }

    #[test]
    fn float16_and_strided_views_agree_with_f64() {
        let z64 = array![[0.5f64, -1.25, 2.0], [3.0, 0.0, -4.0]];
        let z16: Array2<f16> = z64.mapv(f16::from_f64);
        let a = example_stats(z64.view(), Some(&[0, 1]), 1.0, Input::Logits, "logits").unwrap();
        let b = example_stats(z16.view(), Some(&[0, 1]), 1.0, Input::Logits, "logits").unwrap();
        assert_eq!(a, b); // these values are exact in float16
        let zt = z64.t().to_owned();
        let c = example_stats(zt.t(), Some(&[0, 1]), 1.0, Input::Logits, "logits").unwrap();
        assert_eq!(a, c);
    }

    #[test]
    fn rejects_bad_input() {
        let z = array![[0.0f64, f64::NAN]];
        let e = example_stats(z.view(), None, 1.0, Input::Logits, "logits").unwrap_err();
        assert!(e.to_string().contains("row 0, column 1"), "{e}");
        let z = array![[0.0f64, 1.0]];
        let e = example_stats(z.view(), Some(&[2]), 1.0, Input::Logits, "logits").unwrap_err();
        assert!(matches!(e, KernelError::OutOfRange { value: 2, .. }));
        let e = example_stats(z.view(), Some(&[0, 1]), 1.0, Input::Logits, "logits").unwrap_err();
        assert!(matches!(e, KernelError::LengthMismatch { .. }));
        assert!(example_stats(z.view(), None, 0.0, Input::Logits, "logits").is_err());
        // -inf is a zero probability for log-probabilities, an error for logits
        let lp = array![[0.0f64, f64::NEG_INFINITY]];
        assert!(example_stats(lp.view(), None, 1.0, Input::Logits, "logits").is_err());
        assert!(example_stats(lp.view(), None, 1.0, Input::LogProbs, "logits").is_ok());
        let bad = array![[f64::INFINITY, 0.0]];
        assert!(example_stats(bad.view(), None, 1.0, Input::LogProbs, "logits").is_err());
    }

    #[test]
    fn probabilities_with_zeros() {
        let p = array![[0.25f64, 0.75, 0.0]].mapv(f64::ln);
        let s = example_stats(p.view(), Some(&[0]), 1.0, Input::LogProbs, "logits").unwrap();
        assert_eq!(s.pred, vec![1]);
        assert!((s.conf[0] - 0.75).abs() < 1e-7);
        assert!((s.nll[0] - 4.0f64.ln()).abs() < 1e-7);
        let s = example_stats(p.view(), Some(&[2]), 1.0, Input::LogProbs, "logits").unwrap();
        assert_eq!(s.nll[0], f64::INFINITY);
    }

    #[test]
    fn same_result_on_any_thread_count() {
        let n = 3000;
        let z = Array2::from_shape_fn((n, 7), |(i, j)| {
            ((i * 31 + j * 17) % 23) as f32 * 0.37 - 4.0
        });
        let y: Vec<i64> = (0..n).map(|i| (i % 7) as i64).collect();
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    example_stats(z.view(), Some(&y), 0.7, Input::Logits, "logits").unwrap()
                })
        };
        assert_eq!(run(1), run(3));
    }
}
