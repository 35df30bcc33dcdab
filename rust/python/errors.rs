//! Kernel errors become Python exceptions here, and only here.
//!
//! The classes are defined once, in Python (`kdmetrics/errors.py`), so that
//! the Python-side checks raise the very same classes with keyword
//! attributes; the extension imports them on first use.

use pyo3::prelude::*;

use crate::error::KernelError;

pyo3::import_exception!(kdmetrics.errors, ShapeError);
pyo3::import_exception!(kdmetrics.errors, NonFiniteError);
pyo3::import_exception!(kdmetrics.errors, OutOfRangeError);
pyo3::import_exception!(kdmetrics.errors, InvalidArgumentError);

/// Each variant to its class; the structured fields become attributes.
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

/// An invalid argument found by the bindings themselves.
pub(super) fn invalid(message: impl Into<String>) -> PyErr {
    KernelError::invalid(message).into()
}
