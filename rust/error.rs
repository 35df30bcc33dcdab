//! One error type for every kernel; the bindings turn it into `ValueError`.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum KernelError {
    /// Two inputs that must describe the same examples (or classes) differ in length.
    LengthMismatch {
        func: &'static str,
        what: String,
        expected: usize,
        got: usize,
    },
    /// An input that must not be empty is.
    Empty { func: &'static str, what: String },
    /// A label (or prediction / group id) outside `[0, bound)`.
    OutOfRange {
        func: &'static str,
        what: String,
        index: usize,
        value: i64,
        bound: usize,
    },
    /// NaN or +-inf where only finite values make sense.
    NonFinite {
        func: &'static str,
        what: String,
        row: usize,
        col: usize,
    },
    /// Any other invalid argument.
    Invalid { func: &'static str, message: String },
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::LengthMismatch {
                func,
                what,
                expected,
                got,
            } => write!(f, "{func}: {what}: expected {expected}, got {got}"),
            KernelError::Empty { func, what } => write!(f, "{func}: {what} is empty"),
            KernelError::OutOfRange {
                func,
                what,
                index,
                value,
                bound,
            } => write!(
                f,
                "{func}: {what}[{index}] = {value} is out of range [0, {bound})"
            ),
            KernelError::NonFinite {
                func,
                what,
                row,
                col,
            } => write!(
                f,
                "{func}: {what} has a NaN or infinite value at row {row}, column {col}"
            ),
            KernelError::Invalid { func, message } => write!(f, "{func}: {message}"),
        }
    }
}

impl std::error::Error for KernelError {}

/// Checks that every label lies in `[0, n_classes)`.
pub fn check_labels(
    func: &'static str,
    what: &str,
    labels: &[i64],
    n_classes: usize,
) -> Result<(), KernelError> {
    for (index, &value) in labels.iter().enumerate() {
        if value < 0 || value as u64 >= n_classes as u64 {
            return Err(KernelError::OutOfRange {
                func,
                what: what.to_string(),
                index,
                value,
                bound: n_classes,
            });
        }
    }
    Ok(())
}

/// Checks `got == expected` for two lengths that must agree.
pub fn check_len(
    func: &'static str,
    what: &str,
    expected: usize,
    got: usize,
) -> Result<(), KernelError> {
    if expected != got {
        return Err(KernelError::LengthMismatch {
            func,
            what: what.to_string(),
            expected,
            got,
        });
    }
    Ok(())
}
