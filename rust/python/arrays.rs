//! The array types that cross the boundary.

use half::f16;
use numpy::PyReadonlyArray2;
use pyo3::prelude::*;

/// A 2-D float16, float32 or float64 array (logits, or log-probabilities),
/// borrowed read-only, any strides. The accepted dtypes are this type.
#[derive(FromPyObject)]
pub(super) enum Scores<'py> {
    F32(PyReadonlyArray2<'py, f32>),
    F16(PyReadonlyArray2<'py, f16>),
    F64(PyReadonlyArray2<'py, f64>),
}
