//! PyO3 bindings: convert arrays, release the GIL, map errors. No maths here.

// Signatures mirror the Python ones: many arguments, tuples of arrays.
#![allow(clippy::type_complexity, clippy::too_many_arguments)]

use std::sync::{Arc, Mutex};

use half::f16;
use numpy::{
    dtype, Element, IntoPyArray, PyArray1, PyArray2, PyArrayDescrMethods, PyArrayMethods,
    PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use rayon::ThreadPool;

use crate::calibration::{bin_by_edges, bin_equal_mass, BinSums};
use crate::confusion::confusion_counts;
use crate::divergence::divergences;
use crate::error::KernelError;
use crate::groups::group_sums;
use crate::softmax::{example_stats, predict, Input};
use crate::temperature::nll_curve;

impl From<KernelError> for PyErr {
    fn from(e: KernelError) -> PyErr {
        PyValueError::new_err(e.to_string())
    }
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
        .map_err(|e| PyValueError::new_err(format!("cannot start threads: {e}")))?;
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

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
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
    Ok(())
}
