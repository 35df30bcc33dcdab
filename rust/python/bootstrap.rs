//! The paired bootstrap as a prepared object: built once, then asked for
//! resample ranges, the full-data values, the jackknife or explicit draws.

use numpy::ndarray::{Array2, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

use super::errors::invalid;
use super::run;
use crate::bootstrap::{resample_indices, Paired, PairedInput, Statistic};

type Values<'py> = Option<PyReadonlyArray1<'py, f64>>;

/// The prepared problem of a paired bootstrap of model B against model A.
///
/// `statistics` is a list of `(kind, values_a, values_b)`: kind
/// `"example_mean"` (per-example values of A and B), `"macro_f1"` (no values),
/// `"binned"` (the confidences of A and B; `n_bins` equal-width bins) or
/// `"pair_mean"` (per-example values of the pair as `values_b`, `values_a`
/// None; model A's value is reported as 0, so its delta is the pair's value).
#[pyclass(frozen, module = "kdmetrics._core")]
pub(super) struct PairedProblem {
    inner: Paired,
}

fn two<'a>(kind: &str, a: &'a Values<'_>, b: &'a Values<'_>) -> PyResult<[&'a [f64]; 2]> {
    match (a, b) {
        (Some(a), Some(b)) => Ok([a.as_slice()?, b.as_slice()?]),
        _ => Err(invalid(format!(
            "statistic {kind:?} needs per-example values of both models"
        ))),
    }
}

#[pymethods]
impl PairedProblem {
    #[new]
    #[pyo3(signature = (labels, pred_a, pred_b, n_classes, class_tier, n_tiers, statistics, n_bins))]
    #[allow(clippy::too_many_arguments)] // the constructor of a prepared problem
    fn new(
        py: Python<'_>,
        labels: PyReadonlyArray1<'_, i64>,
        pred_a: PyReadonlyArray1<'_, i64>,
        pred_b: PyReadonlyArray1<'_, i64>,
        n_classes: usize,
        class_tier: PyReadonlyArray1<'_, i64>,
        n_tiers: usize,
        statistics: Vec<(String, Values<'_>, Values<'_>)>,
        n_bins: usize,
    ) -> PyResult<Self> {
        let mut stats = Vec::with_capacity(statistics.len());
        for (kind, a, b) in &statistics {
            stats.push(match kind.as_str() {
                "example_mean" => Statistic::ExampleMean {
                    values: two(kind, a, b)?,
                },
                "macro_f1" => Statistic::MacroF1,
                "binned" => Statistic::Binned {
                    n_bins,
                    confidence: two(kind, a, b)?,
                },
                "pair_mean" => match (a, b) {
                    (None, Some(v)) => Statistic::PairMean {
                        values: v.as_slice()?,
                    },
                    _ => {
                        return Err(invalid(
                            "statistic \"pair_mean\" takes the pair's values as values_b only",
                        ))
                    }
                },
                other => return Err(invalid(format!("unknown statistic kind {other:?}"))),
            });
        }
        let input = PairedInput {
            labels: labels.as_slice()?,
            preds: [pred_a.as_slice()?, pred_b.as_slice()?],
            n_classes,
            class_tier: class_tier.as_slice()?,
            n_tiers,
            statistics: stats,
        };
        let inner = run(py, || Paired::new(&input))?;
        Ok(PairedProblem { inner })
    }

    /// Number of statistics (kind x group): the columns of `deltas`.
    #[getter]
    fn n_stats(&self) -> usize {
        self.inner.n_stats()
    }

    /// Deltas B - A of resamples `start .. start + count` (count x n_stats),
    /// computed in parallel with the GIL released.
    fn deltas<'py>(
        &self,
        py: Python<'py>,
        seed: u64,
        start: u64,
        count: usize,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let ns = self.inner.n_stats();
        let d = run(py, || self.inner.deltas(seed, start, count))?;
        let arr = Array2::from_shape_vec((count, ns), d).map_err(|e| invalid(e.to_string()))?;
        Ok(arr.into_pyarray(py))
    }

    /// Values of A and B on the full data (n_stats x 2).
    fn full<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let v = run(py, || Ok(self.inner.full()))?;
        let arr = Array2::from_shape_vec((self.inner.n_stats(), 2), v)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(arr.into_pyarray(py))
    }

    /// BCa acceleration of each statistic's delta (NaN where degenerate).
    fn jackknife_accel<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let a = run(py, || Ok(self.inner.jackknife_accel()))?;
        Ok(a.into_pyarray(py))
    }

    /// Values of A and B (R x n_stats x 2) for explicit index draws (R x N').
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
        let arr = Array3::from_shape_vec((rows.len(), self.inner.n_stats(), 2), out)
            .map_err(|e| invalid(e.to_string()))?;
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
    m.add_class::<PairedProblem>()?;
    m.add_function(wrap_pyfunction!(bootstrap_indices_py, m)?)?;
    Ok(())
}
