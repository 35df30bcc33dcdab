//! The paired bootstrap of M models as a prepared object: built once, then
//! asked for resample ranges, the full-data values, the jackknife or
//! explicit draws.

use numpy::ndarray::{Array2, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

use super::errors::invalid;
use super::run;
use crate::bootstrap::{resample_indices, Problem, ProblemInput, Statistic};

type Values<'py> = Option<Vec<PyReadonlyArray1<'py, f64>>>;

/// The prepared problem of a paired bootstrap of M models (model 0 the
/// reference) on the same resampled examples.
///
/// `statistics` is a list of `(kind, values)`: kind `"example_mean"`
/// (per-example values of every model), `"macro_f1"` (values None),
/// `"binned"` (the confidences of every model; `n_bins` equal-width bins) or
/// `"pair_mean"` (per-example values of each pair (variant, reference), one
/// array per variant; the reference's value is reported as 0, so the
/// delta is the pair's value).
#[pyclass(frozen, module = "kdmetrics._core")]
pub(super) struct ResampleProblem {
    inner: Problem,
}

fn slices<'a>(
    kind: &str,
    values: &'a Values<'_>,
    want: usize,
    what: &str,
) -> PyResult<Vec<&'a [f64]>> {
    match values {
        Some(v) if v.len() == want => v.iter().map(|a| Ok(a.as_slice()?)).collect(),
        Some(v) => Err(invalid(format!(
            "statistic {kind:?} needs {want} arrays ({what}), got {}",
            v.len()
        ))),
        None => Err(invalid(format!(
            "statistic {kind:?} needs per-example values ({what})"
        ))),
    }
}

#[pymethods]
impl ResampleProblem {
    #[new]
    #[pyo3(signature = (labels, preds, n_classes, class_tier, n_tiers, statistics, n_bins))]
    #[allow(clippy::too_many_arguments)] // the constructor of a prepared problem
    fn new(
        py: Python<'_>,
        labels: PyReadonlyArray1<'_, i64>,
        preds: Vec<PyReadonlyArray1<'_, i64>>,
        n_classes: usize,
        class_tier: PyReadonlyArray1<'_, i64>,
        n_tiers: usize,
        statistics: Vec<(String, Values<'_>)>,
        n_bins: usize,
    ) -> PyResult<Self> {
        let m = preds.len();
        let mut stats = Vec::with_capacity(statistics.len());
        for (kind, values) in &statistics {
            stats.push(match kind.as_str() {
                "example_mean" => Statistic::ExampleMean {
                    values: slices(kind, values, m, "one per model")?,
                },
                "macro_f1" => Statistic::MacroF1,
                "binned" => Statistic::Binned {
                    n_bins,
                    confidence: slices(kind, values, m, "one per model")?,
                },
                "pair_mean" => Statistic::PairMean {
                    values: slices(kind, values, m.saturating_sub(1), "one per variant")?,
                },
                other => return Err(invalid(format!("unknown statistic kind {other:?}"))),
            });
        }
        let preds: Vec<&[i64]> = preds
            .iter()
            .map(|p| p.as_slice())
            .collect::<Result<_, _>>()?;
        let input = ProblemInput {
            labels: labels.as_slice()?,
            preds,
            n_classes,
            class_tier: class_tier.as_slice()?,
            n_tiers,
            statistics: stats,
        };
        let inner = run(py, || Problem::new(&input))?;
        Ok(ResampleProblem { inner })
    }

    /// Number of models M (the reference first).
    #[getter]
    fn n_models(&self) -> usize {
        self.inner.n_models()
    }

    /// Number of delta columns of `deltas`: statistic s, variant m at
    /// `s (M - 1) + m - 1`.
    #[getter]
    fn n_deltas(&self) -> usize {
        self.inner.n_deltas()
    }

    /// Number of statistics (kind x group) per model.
    #[getter]
    fn n_stats(&self) -> usize {
        self.inner.n_stats()
    }

    /// Deltas (model m - reference) of resamples `start .. start + count`
    /// (count x n_deltas), computed in parallel with the GIL released.
    fn deltas<'py>(
        &self,
        py: Python<'py>,
        seed: u64,
        start: u64,
        count: usize,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let nd = self.inner.n_deltas();
        let d = run(py, || self.inner.deltas(seed, start, count))?;
        let arr = Array2::from_shape_vec((count, nd), d).map_err(|e| invalid(e.to_string()))?;
        Ok(arr.into_pyarray(py))
    }

    /// [`deltas`] written into `out`, a C-contiguous (count x n_deltas)
    /// float64 array (rows of a larger array), with the GIL released.
    fn deltas_into(
        &self,
        py: Python<'_>,
        seed: u64,
        start: u64,
        mut out: numpy::PyReadwriteArray2<'_, f64>,
    ) -> PyResult<()> {
        let nd = self.inner.n_deltas();
        let cols = out.as_array().ncols();
        if cols != nd {
            return Err(invalid(format!(
                "out has {cols} columns, the problem {nd} deltas"
            )));
        }
        let slice = out.as_slice_mut()?;
        run(py, || self.inner.deltas_into(seed, start, slice))
    }

    /// Values of every model on the full data (n_stats x M).
    fn full<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let v = run(py, || Ok(self.inner.full()))?;
        let arr = Array2::from_shape_vec((self.inner.n_stats(), self.inner.n_models()), v)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(arr.into_pyarray(py))
    }

    /// BCa acceleration of each delta column (NaN where degenerate).
    fn jackknife_accel<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let a = run(py, || Ok(self.inner.jackknife_accel()))?;
        Ok(a.into_pyarray(py))
    }

    /// Values of every model (R x n_stats x M) for explicit index draws (R x N').
    fn eval_indices<'py>(
        &self,
        py: Python<'py>,
        indices: PyReadonlyArray2<'py, i64>,
    ) -> PyResult<Bound<'py, PyArray3<f64>>> {
        let idx = indices.as_array();
        if let Some(((r, pos), &j)) = idx.indexed_iter().find(|(_, &j)| j < 0) {
            return Err(crate::error::KernelError::OutOfRange {
                what: format!("indices[{r}]"),
                index: pos,
                value: j,
                bound: self.inner.n_examples(),
            }
            .into());
        }
        let rows: Vec<Vec<usize>> = idx
            .rows()
            .into_iter()
            .map(|r| r.iter().map(|&j| j as usize).collect())
            .collect();
        let out = run(py, || self.inner.eval_indices(&rows))?;
        let shape = (rows.len(), self.inner.n_stats(), self.inner.n_models());
        let arr = Array3::from_shape_vec(shape, out).map_err(|e| invalid(e.to_string()))?;
        Ok(arr.into_pyarray(py))
    }
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
    let v = run(py, || resample_indices(n, seed, i, count))?;
    let v: Vec<i64> = v.into_iter().map(|j| j as i64).collect();
    Ok(v.into_pyarray(py))
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ResampleProblem>()?;
    m.add_function(wrap_pyfunction!(bootstrap_indices_py, m)?)?;
    Ok(())
}
