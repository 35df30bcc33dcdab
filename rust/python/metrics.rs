//! Bindings of the per-example and counting kernels.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use super::arrays::Scores;
use super::run;
use crate::calibration::{bin_by_edges, bin_equal_mass, BinSums};
use crate::confusion::confusion_counts;
use crate::divergence::{divergences, Divergences};
use crate::groups::group_sums;
use crate::logit::Logit;
use crate::order_stats::{column_summary, order_statistics};
use crate::ranking::top_k_hits;
use crate::softmax::{example_stats, predict, Input};
use crate::temperature::nll_curve;

type F64Array<'py> = Bound<'py, PyArray1<f64>>;
type I64Array<'py> = Bound<'py, PyArray1<i64>>;
type U64Array<'py> = Bound<'py, PyArray1<u64>>;

fn input_kind(log_probs: bool) -> Input {
    if log_probs {
        Input::LogProbs
    } else {
        Input::Logits
    }
}

/// Per-example (pred, confidence, nll, brier); nll/brier are None without labels.
/// `log_probs`: the array holds log-probabilities (-inf allowed).
#[pyfunction]
#[pyo3(name = "example_stats", signature = (logits, labels, temperature, log_probs=false, name="logits"))]
fn example_stats_py<'py>(
    py: Python<'py>,
    logits: Scores<'py>,
    labels: Option<PyReadonlyArray1<'py, i64>>,
    temperature: f64,
    log_probs: bool,
    name: &str,
) -> PyResult<(
    I64Array<'py>,
    F64Array<'py>,
    Option<F64Array<'py>>,
    Option<F64Array<'py>>,
)> {
    let (input, inv_t) = (input_kind(log_probs), 1.0 / temperature);
    let y = labels.as_ref().map(|l| l.as_slice()).transpose()?;
    let s = match &logits {
        Scores::F32(a) => {
            let v = a.as_array();
            run(py, || example_stats(v, y, inv_t, input, name))
        }
        Scores::F16(a) => {
            let v = a.as_array();
            run(py, || example_stats(v, y, inv_t, input, name))
        }
        Scores::F64(a) => {
            let v = a.as_array();
            run(py, || example_stats(v, y, inv_t, input, name))
        }
    }?;
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
fn predict_py<'py>(py: Python<'py>, logits: Scores<'py>, name: &str) -> PyResult<I64Array<'py>> {
    let p = match &logits {
        Scores::F32(a) => {
            let v = a.as_array();
            run(py, || predict(v, name))
        }
        Scores::F16(a) => {
            let v = a.as_array();
            run(py, || predict(v, name))
        }
        Scores::F64(a) => {
            let v = a.as_array();
            run(py, || predict(v, name))
        }
    }?;
    Ok(p.into_pyarray(py))
}

/// 1.0 where the label is among the row's `k` top classes (argmax tie rule).
#[pyfunction]
#[pyo3(name = "top_k_hits", signature = (logits, labels, k, name="logits"))]
fn top_k_hits_py<'py>(
    py: Python<'py>,
    logits: Scores<'py>,
    labels: PyReadonlyArray1<'py, i64>,
    k: usize,
    name: &str,
) -> PyResult<F64Array<'py>> {
    let y = labels.as_slice()?;
    let h = match &logits {
        Scores::F32(a) => {
            let v = a.as_array();
            run(py, || top_k_hits(v, y, k, name))
        }
        Scores::F16(a) => {
            let v = a.as_array();
            run(py, || top_k_hits(v, y, k, name))
        }
        Scores::F64(a) => {
            let v = a.as_array();
            run(py, || top_k_hits(v, y, k, name))
        }
    }?;
    Ok(h.into_pyarray(py))
}

/// How the two arrays of [`divergences_py`] are read.
struct DivArgs<'a> {
    inv_t: f64,
    inputs: (Input, Input),
    names: (&'a str, &'a str),
}

/// Divergences with `p` of a known element type and `q` dispatched.
fn divergences_q<P: Logit>(
    py: Python<'_>,
    p: numpy::ndarray::ArrayView2<'_, P>,
    q: &Scores<'_>,
    a: &DivArgs<'_>,
) -> PyResult<Divergences> {
    let (pi, qi) = a.inputs;
    match q {
        Scores::F32(b) => {
            let q = b.as_array();
            run(py, || divergences(p, q, a.inv_t, pi, qi, a.names))
        }
        Scores::F16(b) => {
            let q = b.as_array();
            run(py, || divergences(p, q, a.inv_t, pi, qi, a.names))
        }
        Scores::F64(b) => {
            let q = b.as_array();
            run(py, || divergences(p, q, a.inv_t, pi, qi, a.names))
        }
    }
}

/// Per-example (kl, js) in nats between p and q.
#[pyfunction]
#[pyo3(name = "divergences", signature = (p_logits, q_logits, temperature, p_log_probs=false, q_log_probs=false, p_name="p_logits", q_name="q_logits"))]
#[allow(clippy::too_many_arguments)] // mirrors the Python signature
fn divergences_py<'py>(
    py: Python<'py>,
    p_logits: Scores<'py>,
    q_logits: Scores<'py>,
    temperature: f64,
    p_log_probs: bool,
    q_log_probs: bool,
    p_name: &str,
    q_name: &str,
) -> PyResult<(F64Array<'py>, F64Array<'py>)> {
    let args = DivArgs {
        inv_t: 1.0 / temperature,
        inputs: (input_kind(p_log_probs), input_kind(q_log_probs)),
        names: (p_name, q_name),
    };
    let d = match &p_logits {
        Scores::F32(a) => divergences_q(py, a.as_array(), &q_logits, &args),
        Scores::F16(a) => divergences_q(py, a.as_array(), &q_logits, &args),
        Scores::F64(a) => divergences_q(py, a.as_array(), &q_logits, &args),
    }?;
    Ok((d.kl.into_pyarray(py), d.js.into_pyarray(py)))
}

/// Mean NLL at inverse temperature beta with its first two derivatives.
#[pyfunction]
#[pyo3(name = "nll_curve", signature = (logits, labels, beta, log_probs=false, name="logits"))]
fn nll_curve_py(
    py: Python<'_>,
    logits: Scores<'_>,
    labels: PyReadonlyArray1<'_, i64>,
    beta: f64,
    log_probs: bool,
    name: &str,
) -> PyResult<(f64, f64, f64)> {
    let y = labels.as_slice()?;
    let input = input_kind(log_probs);
    let c = match &logits {
        Scores::F32(a) => {
            let v = a.as_array();
            run(py, || nll_curve(v, y, beta, input, name))
        }
        Scores::F16(a) => {
            let v = a.as_array();
            run(py, || nll_curve(v, y, beta, input, name))
        }
        Scores::F64(a) => {
            let v = a.as_array();
            run(py, || nll_curve(v, y, beta, input, name))
        }
    }?;
    Ok((c.nll, c.d1, c.d2))
}

/// Per-class (tp, fp, fn).
#[pyfunction]
#[pyo3(name = "confusion_counts")]
fn confusion_counts_py<'py>(
    py: Python<'py>,
    labels: PyReadonlyArray1<'py, i64>,
    preds: PyReadonlyArray1<'py, i64>,
    n_classes: usize,
) -> PyResult<(I64Array<'py>, I64Array<'py>, I64Array<'py>)> {
    let (y, p) = (labels.as_slice()?, preds.as_slice()?);
    let c = run(py, || confusion_counts(y, p, n_classes))?;
    Ok((
        c.tp.into_pyarray(py),
        c.fp.into_pyarray(py),
        c.fn_.into_pyarray(py),
    ))
}

type Bins<'py> = (U64Array<'py>, F64Array<'py>, F64Array<'py>);

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

/// Equal-mass bins: (count, sum_conf, sum_correct), lowest, highest.
#[pyfunction]
#[pyo3(name = "bin_equal_mass")]
fn bin_equal_mass_py<'py>(
    py: Python<'py>,
    confidence: PyReadonlyArray1<'py, f64>,
    correct: PyReadonlyArray1<'py, bool>,
    n_bins: usize,
) -> PyResult<(Bins<'py>, F64Array<'py>, F64Array<'py>)> {
    let (c, ok) = (confidence.as_slice()?, correct.as_slice()?);
    let (s, ranges) = run(py, || bin_equal_mass(c, ok, n_bins))?;
    let (lo, hi): (Vec<f64>, Vec<f64>) = ranges.into_iter().unzip();
    Ok((bins_out(py, s), lo.into_pyarray(py), hi.into_pyarray(py)))
}

/// The `ranks[i]`-th smallest non-NaN value of column `cols[i]` (C-contiguous
/// float64 matrix), NaN when out of range.
#[pyfunction]
#[pyo3(name = "order_statistics")]
fn order_statistics_py<'py>(
    py: Python<'py>,
    values: numpy::PyReadonlyArray2<'py, f64>,
    cols: PyReadonlyArray1<'py, i64>,
    ranks: PyReadonlyArray1<'py, i64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (n_rows, n_cols) = values.as_array().dim();
    let v = values.as_slice()?;
    let (c, r) = (cols.as_slice()?, ranks.as_slice()?);
    let out = run(py, || order_statistics(v, n_rows, n_cols, c, r))?;
    Ok(out.into_pyarray(py))
}

/// Per column of a C-contiguous float64 matrix: (non-NaN count, min, max,
/// count <= threshold, count < threshold), thresholds `n_cols x T`.
#[pyfunction]
#[pyo3(name = "column_summary")]
#[allow(clippy::type_complexity)]
fn column_summary_py<'py>(
    py: Python<'py>,
    values: numpy::PyReadonlyArray2<'py, f64>,
    thresholds: numpy::PyReadonlyArray2<'py, f64>,
) -> PyResult<(
    I64Array<'py>,
    F64Array<'py>,
    F64Array<'py>,
    Bound<'py, numpy::PyArray2<i64>>,
    Bound<'py, numpy::PyArray2<i64>>,
)> {
    let (n_rows, n_cols) = values.as_array().dim();
    let n_thr = thresholds.as_array().ncols();
    let (v, t) = (values.as_slice()?, thresholds.as_slice()?);
    let s = run(py, || column_summary(v, n_rows, n_cols, t, n_thr))?;
    let counts = |c: Vec<i64>| {
        numpy::ndarray::Array2::from_shape_vec((n_cols, n_thr), c)
            .map(|a| a.into_pyarray(py))
            .map_err(|e| super::errors::invalid(e.to_string()))
    };
    Ok((
        s.n_defined.into_pyarray(py),
        s.minimum.into_pyarray(py),
        s.maximum.into_pyarray(py),
        counts(s.count_le)?,
        counts(s.count_lt)?,
    ))
}

/// Per-group (sums, counts) of per-example values.
#[pyfunction]
#[pyo3(name = "group_sums")]
fn group_sums_py<'py>(
    py: Python<'py>,
    values: PyReadonlyArray1<'py, f64>,
    groups: PyReadonlyArray1<'py, i64>,
    n_groups: usize,
) -> PyResult<(F64Array<'py>, U64Array<'py>)> {
    let (v, g) = (values.as_slice()?, groups.as_slice()?);
    let (s, c) = run(py, || group_sums(v, g, n_groups))?;
    Ok((s.into_pyarray(py), c.into_pyarray(py)))
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(example_stats_py, m)?)?;
    m.add_function(wrap_pyfunction!(predict_py, m)?)?;
    m.add_function(wrap_pyfunction!(top_k_hits_py, m)?)?;
    m.add_function(wrap_pyfunction!(divergences_py, m)?)?;
    m.add_function(wrap_pyfunction!(column_summary_py, m)?)?;
    m.add_function(wrap_pyfunction!(nll_curve_py, m)?)?;
    m.add_function(wrap_pyfunction!(confusion_counts_py, m)?)?;
    m.add_function(wrap_pyfunction!(bin_by_edges_py, m)?)?;
    m.add_function(wrap_pyfunction!(bin_equal_mass_py, m)?)?;
    m.add_function(wrap_pyfunction!(group_sums_py, m)?)?;
    m.add_function(wrap_pyfunction!(order_statistics_py, m)?)?;
    Ok(())
}
