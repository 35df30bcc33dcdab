//! PyO3 bindings: convert arrays, release the GIL, map errors. No maths here.

// Signatures mirror the Python ones: many arguments, tuples of arrays.
#![allow(clippy::type_complexity, clippy::too_many_arguments)]

use std::sync::{Arc, Mutex};

use half::f16;
use numpy::{
    dtype, Element, IntoPyArray, PyArray1, PyArray2, PyArrayDescrMethods, PyArrayMethods,
    PyReadonlyArray1, PyReadonlyArray2, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use rayon::ThreadPool;

use crate::bootstrap::{resample_indices, Metric, Paired, PairedInput};
use crate::calibration::{bin_by_edges, bin_equal_mass, BinSums};
use crate::confusion::confusion_counts;
use crate::divergence::divergences;
use crate::error::KernelError;
use crate::groups::group_sums;
use crate::softmax::{example_stats, predict, Input};
use crate::temperature::nll_curve;

// The classes are defined once, in Python (`kdmetrics/errors.py`), so that
// Python-side checks raise the very same classes with keyword attributes.
pyo3::import_exception!(kdmetrics.errors, ShapeError);
pyo3::import_exception!(kdmetrics.errors, NonFiniteError);
pyo3::import_exception!(kdmetrics.errors, OutOfRangeError);
pyo3::import_exception!(kdmetrics.errors, InvalidArgumentError);

/// The one place a kernel error becomes a Python exception.
impl From<KernelError> for PyErr {
    fn from(e: KernelError) -> PyErr {
        let msg = e.to_string();
        match e {
            KernelError::LengthMismatch { .. } | KernelError::Empty { .. } => {
                ShapeError::new_err(msg)
            }
            KernelError::OutOfRange {
                index,
                value,
                bound,
                ..
            } => OutOfRangeError::new_err((msg, index, value, bound)),
            KernelError::NonFinite { row, col, .. } => NonFiniteError::new_err((msg, row, col)),
            KernelError::Invalid { .. } => InvalidArgumentError::new_err(msg),
        }
    }
}

fn invalid(message: impl Into<String>) -> PyErr {
    KernelError::invalid(message).into()
}

/// The pool every kernel runs on, rebuilt in a forked child (whose copy of the
/// parent's worker threads does not exist) and when the thread count changes.
struct Pool {
    pid: u32,
    threads: usize,
    pool: Arc<ThreadPool>,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);
static THREADS: Mutex<usize> = Mutex::new(0);

fn pool() -> PyResult<Arc<ThreadPool>> {
    let threads = *THREADS.lock().unwrap_or_else(|e| e.into_inner());
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if let Some(p) = guard.as_ref() {
        if p.pid == pid && p.threads == threads {
            return Ok(p.pool.clone());
        }
    }
    // threads = 0: rayon's default (RAYON_NUM_THREADS, else one per CPU).
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| invalid(format!("cannot start threads: {e}")))?;
    let pool = Arc::new(built);
    *guard = Some(Pool {
        pid,
        threads,
        pool: pool.clone(),
    });
    Ok(pool)
}

/// Runs `f` on the kdmetrics pool with the GIL released.
fn run<T: Send, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: FnOnce() -> Result<T, KernelError> + Send,
{
    let pool = pool()?;
    py.detach(|| pool.install(f)).map_err(PyErr::from)
}

/// Sets the number of worker threads (0 = default). Results never depend on it.
#[pyfunction]
fn set_num_threads(n: usize) {
    *THREADS.lock().unwrap_or_else(|e| e.into_inner()) = n;
}

#[pyfunction]
fn get_num_threads() -> PyResult<usize> {
    Ok(pool()?.current_num_threads())
}

fn input_kind(log_probs: bool) -> Input {
    if log_probs {
        Input::LogProbs
    } else {
        Input::Logits
    }
}

fn is<T: Element>(a: &Bound<'_, PyUntypedArray>) -> bool {
    a.dtype().is_equiv_to(&dtype::<T>(a.py()))
}

/// Calls `$body` with `$view` bound to a 2-D view of `$arr` as f16, f32 or f64.
macro_rules! with_view2 {
    ($arr:expr, $name:expr, |$view:ident| $body:expr) => {{
        let a: &Bound<'_, PyUntypedArray> = $arr;
        if is::<f32>(a) {
            let r = a.cast::<PyArray2<f32>>()?.readonly();
            let $view = r.as_array();
            $body
        } else if is::<f16>(a) {
            let r = a.cast::<PyArray2<f16>>()?.readonly();
            let $view = r.as_array();
            $body
        } else if is::<f64>(a) {
            let r = a.cast::<PyArray2<f64>>()?.readonly();
            let $view = r.as_array();
            $body
        } else {
            Err(PyTypeError::new_err(format!(
                "{} must be a 2-D float16, float32 or float64 array, got dtype {}",
                $name,
                a.dtype()
            )))
        }
    }};
}

type StatsOut<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
    Option<Bound<'py, PyArray1<f64>>>,
    Option<Bound<'py, PyArray1<f64>>>,
);

/// Per-example (pred, confidence, nll, brier); nll/brier are None without labels.
/// `log_probs`: the array holds log-probabilities (-inf allowed).
#[pyfunction]
#[pyo3(name = "example_stats", signature = (logits, labels, temperature, log_probs=false, name="logits"))]
fn example_stats_py<'py>(
    py: Python<'py>,
    logits: &Bound<'py, PyUntypedArray>,
    labels: Option<PyReadonlyArray1<'py, i64>>,
    temperature: f64,
    log_probs: bool,
    name: &str,
) -> PyResult<StatsOut<'py>> {
    let input = input_kind(log_probs);
    let y = labels.as_ref().map(|l| l.as_slice()).transpose()?;
    let s = with_view2!(logits, "logits", |v| run(py, || example_stats(
        v,
        y,
        1.0 / temperature,
        input,
        name
    )))?;
    let scored = y.is_some();
    Ok((
        s.pred.into_pyarray(py),
        s.conf.into_pyarray(py),
        scored.then(|| s.nll.into_pyarray(py)),
        scored.then(|| s.brier.into_pyarray(py)),
    ))
}

/// Predicted class per row.
#[pyfunction]
#[pyo3(name = "predict", signature = (logits, name="logits"))]
fn predict_py<'py>(
    py: Python<'py>,
    logits: &Bound<'py, PyUntypedArray>,
    name: &str,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let p = with_view2!(logits, "logits", |v| run(py, || predict(v, name)))?;
    Ok(p.into_pyarray(py))
}

/// Per-example (kl, js) in nats between p and q.
#[pyfunction]
#[pyo3(name = "divergences", signature = (p_logits, q_logits, temperature, p_log_probs=false, q_log_probs=false, p_name="p_logits", q_name="q_logits"))]
fn divergences_py<'py>(
    py: Python<'py>,
    p_logits: &Bound<'py, PyUntypedArray>,
    q_logits: &Bound<'py, PyUntypedArray>,
    temperature: f64,
    p_log_probs: bool,
    q_log_probs: bool,
    p_name: &str,
    q_name: &str,
) -> PyResult<(Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>)> {
    let (pi, qi) = (input_kind(p_log_probs), input_kind(q_log_probs));
    let inv_t = 1.0 / temperature;
    let d = with_view2!(p_logits, "p_logits", |p| with_view2!(
        q_logits,
        "q_logits",
        |q| run(py, || divergences(p, q, inv_t, pi, qi, (p_name, q_name)))
    ))?;
    Ok((d.kl.into_pyarray(py), d.js.into_pyarray(py)))
}

/// Mean NLL at inverse temperature beta with its first two derivatives.
#[pyfunction]
#[pyo3(name = "nll_curve", signature = (logits, labels, beta, log_probs=false, name="logits"))]
fn nll_curve_py(
    py: Python<'_>,
    logits: &Bound<'_, PyUntypedArray>,
    labels: PyReadonlyArray1<'_, i64>,
    beta: f64,
    log_probs: bool,
    name: &str,
) -> PyResult<(f64, f64, f64)> {
    let y = labels.as_slice()?;
    let input = input_kind(log_probs);
    let c = with_view2!(logits, "logits", |v| run(py, || nll_curve(
        v, y, beta, input, name
    )))?;
    Ok((c.nll, c.d1, c.d2))
}

type Counts<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
);

/// Per-class (tp, fp, fn).
#[pyfunction]
#[pyo3(name = "confusion_counts")]
fn confusion_counts_py<'py>(
    py: Python<'py>,
    labels: PyReadonlyArray1<'py, i64>,
    preds: PyReadonlyArray1<'py, i64>,
    n_classes: usize,
) -> PyResult<Counts<'py>> {
    let (y, p) = (labels.as_slice()?, preds.as_slice()?);
    let c = run(py, || confusion_counts(y, p, n_classes))?;
    Ok((
        c.tp.into_pyarray(py),
        c.fp.into_pyarray(py),
        c.fn_.into_pyarray(py),
    ))
}

type Bins<'py> = (
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
);

fn bins_out(py: Python<'_>, s: BinSums) -> Bins<'_> {
    (
        s.count.into_pyarray(py),
        s.sum_conf.into_pyarray(py),
        s.sum_correct.into_pyarray(py),
    )
}

/// Per-bin (count, sum of confidence, sum of correct) for the given edges.
#[pyfunction]
#[pyo3(name = "bin_by_edges")]
fn bin_by_edges_py<'py>(
    py: Python<'py>,
    confidence: PyReadonlyArray1<'py, f64>,
    correct: PyReadonlyArray1<'py, bool>,
    edges: PyReadonlyArray1<'py, f64>,
    right_closed: bool,
) -> PyResult<Bins<'py>> {
    let (c, ok, e) = (
        confidence.as_slice()?,
        correct.as_slice()?,
        edges.as_slice()?,
    );
    let s = run(py, || bin_by_edges(c, ok, e, right_closed))?;
    Ok(bins_out(py, s))
}

/// Equal-mass bins: (count, sum_conf, sum_correct, lowest, highest).
#[pyfunction]
#[pyo3(name = "bin_equal_mass")]
fn bin_equal_mass_py<'py>(
    py: Python<'py>,
    confidence: PyReadonlyArray1<'py, f64>,
    correct: PyReadonlyArray1<'py, bool>,
    n_bins: usize,
) -> PyResult<(
    Bins<'py>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
)> {
    let (c, ok) = (confidence.as_slice()?, correct.as_slice()?);
    let (s, ranges) = run(py, || bin_equal_mass(c, ok, n_bins))?;
    let (lo, hi): (Vec<f64>, Vec<f64>) = ranges.into_iter().unzip();
    Ok((bins_out(py, s), lo.into_pyarray(py), hi.into_pyarray(py)))
}

/// Per-group (sums, counts) of per-example values.
#[pyfunction]
#[pyo3(name = "group_sums")]
fn group_sums_py<'py>(
    py: Python<'py>,
    values: PyReadonlyArray1<'py, f64>,
    groups: PyReadonlyArray1<'py, i64>,
    n_groups: usize,
) -> PyResult<(Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<u64>>)> {
    let (v, g) = (values.as_slice()?, groups.as_slice()?);
    let (s, c) = run(py, || group_sums(v, g, n_groups))?;
    Ok((s.into_pyarray(py), c.into_pyarray(py)))
}

/// Per-example values of models A and B for one metric (None for accuracy / F1).
type PairValues<'py> = Option<(PyReadonlyArray1<'py, f64>, PyReadonlyArray1<'py, f64>)>;

/// Builds the prepared paired-bootstrap problem from the Python arguments.
#[allow(clippy::too_many_arguments)]
fn paired_problem(
    labels: &PyReadonlyArray1<'_, i64>,
    pred_a: &PyReadonlyArray1<'_, i64>,
    pred_b: &PyReadonlyArray1<'_, i64>,
    n_classes: usize,
    class_tier: &PyReadonlyArray1<'_, i64>,
    n_tiers: usize,
    metrics: &[String],
    values: &[PairValues<'_>],
    n_bins: usize,
) -> PyResult<Paired> {
    if metrics.len() != values.len() {
        return Err(invalid("one values entry per metric"));
    }
    let mut ms = Vec::with_capacity(metrics.len());
    for (name, v) in metrics.iter().zip(values) {
        let metric =
            Metric::parse(name).ok_or_else(|| invalid(format!("unknown metric {name:?}")))?;
        let v = match v {
            Some((a, b)) => Some([a.as_slice()?, b.as_slice()?]),
            None => None,
        };
        ms.push((metric, v));
    }
    Ok(Paired::new(&PairedInput {
        labels: labels.as_slice()?,
        preds: [pred_a.as_slice()?, pred_b.as_slice()?],
        n_classes,
        class_tier: class_tier.as_slice()?,
        n_tiers,
        metrics: ms,
        n_bins,
    })?)
}

type BootOut<'py> = (
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray2<f64>>,
    Option<Bound<'py, PyArray1<f64>>>,
);

/// Paired bootstrap: (deltas of resamples start..start+count as count x S,
/// full-data values as S x 2 (A, B), BCa acceleration per statistic or None).
#[pyfunction]
#[pyo3(name = "paired_bootstrap", signature = (labels, pred_a, pred_b, n_classes, class_tier, n_tiers, metrics, values, n_bins, seed, start, count, jackknife))]
#[allow(clippy::too_many_arguments)]
fn paired_bootstrap_py<'py>(
    py: Python<'py>,
    labels: PyReadonlyArray1<'py, i64>,
    pred_a: PyReadonlyArray1<'py, i64>,
    pred_b: PyReadonlyArray1<'py, i64>,
    n_classes: usize,
    class_tier: PyReadonlyArray1<'py, i64>,
    n_tiers: usize,
    metrics: Vec<String>,
    values: Vec<PairValues<'py>>,
    n_bins: usize,
    seed: u64,
    start: u64,
    count: usize,
    jackknife: bool,
) -> PyResult<BootOut<'py>> {
    let problem = paired_problem(
        &labels,
        &pred_a,
        &pred_b,
        n_classes,
        &class_tier,
        n_tiers,
        &metrics,
        &values,
        n_bins,
    )?;
    let ns = problem.n_stats();
    let (deltas, full, accel) = run(py, || {
        let deltas = problem.deltas(seed, start, count);
        let accel = jackknife.then(|| problem.jackknife_accel());
        Ok((deltas, problem.full(), accel))
    })?;
    let shape = |r: usize, c: usize, v: Vec<f64>| {
        numpy::ndarray::Array2::from_shape_vec((r, c), v).map_err(|e| invalid(e.to_string()))
    };
    Ok((
        shape(count, ns, deltas)?.into_pyarray(py),
        shape(ns, 2, full)?.into_pyarray(py),
        accel.map(|a| a.into_pyarray(py)),
    ))
}

/// Values of both models (R x S x 2) for explicit index draws (R x M).
#[pyfunction]
#[pyo3(name = "bootstrap_eval", signature = (labels, pred_a, pred_b, n_classes, class_tier, n_tiers, metrics, values, n_bins, indices))]
#[allow(clippy::too_many_arguments)]
fn bootstrap_eval_py<'py>(
    py: Python<'py>,
    labels: PyReadonlyArray1<'py, i64>,
    pred_a: PyReadonlyArray1<'py, i64>,
    pred_b: PyReadonlyArray1<'py, i64>,
    n_classes: usize,
    class_tier: PyReadonlyArray1<'py, i64>,
    n_tiers: usize,
    metrics: Vec<String>,
    values: Vec<PairValues<'py>>,
    n_bins: usize,
    indices: PyReadonlyArray2<'py, i64>,
) -> PyResult<Bound<'py, numpy::PyArray3<f64>>> {
    let problem = paired_problem(
        &labels,
        &pred_a,
        &pred_b,
        n_classes,
        &class_tier,
        n_tiers,
        &metrics,
        &values,
        n_bins,
    )?;
    let idx = indices.as_array();
    if idx.iter().any(|&j| j < 0) {
        return Err(invalid("indices must be >= 0"));
    }
    let rows: Vec<Vec<usize>> = idx
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|&j| j as usize).collect())
        .collect();
    let ns = problem.n_stats();
    let out = run(py, || problem.eval_indices(&rows))?;
    let arr = numpy::ndarray::Array3::from_shape_vec((rows.len(), ns, 2), out)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(arr.into_pyarray(py))
}

/// The first `count` example indices drawn by resample `i` (N = n).
#[pyfunction]
#[pyo3(name = "bootstrap_indices")]
fn bootstrap_indices_py(
    py: Python<'_>,
    n: u32,
    seed: u64,
    i: u64,
    count: usize,
) -> PyResult<Bound<'_, PyArray1<i64>>> {
    if n == 0 {
        return Err(invalid("n must be >= 1"));
    }
    let v: Vec<i64> = resample_indices(n, seed, i, count)
        .into_iter()
        .map(|j| j as i64)
        .collect();
    Ok(v.into_pyarray(py))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(example_stats_py, m)?)?;
    m.add_function(wrap_pyfunction!(predict_py, m)?)?;
    m.add_function(wrap_pyfunction!(divergences_py, m)?)?;
    m.add_function(wrap_pyfunction!(nll_curve_py, m)?)?;
    m.add_function(wrap_pyfunction!(confusion_counts_py, m)?)?;
    m.add_function(wrap_pyfunction!(bin_by_edges_py, m)?)?;
    m.add_function(wrap_pyfunction!(bin_equal_mass_py, m)?)?;
    m.add_function(wrap_pyfunction!(group_sums_py, m)?)?;
    m.add_function(wrap_pyfunction!(paired_bootstrap_py, m)?)?;
    m.add_function(wrap_pyfunction!(bootstrap_eval_py, m)?)?;
    m.add_function(wrap_pyfunction!(bootstrap_indices_py, m)?)?;
    Ok(())
}
