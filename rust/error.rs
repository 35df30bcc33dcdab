//! One error type for every kernel. It does not know which public function
//! called the kernel: the Python layer prefixes that name. The bindings map
//! each variant to its own Python exception class (`rust/python/errors.rs`).

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum KernelError {
    /// Two inputs that must describe the same examples (or classes) differ in length.
    LengthMismatch {
        what: String,
        expected: usize,
        got: usize,
    },
    /// An input that must not be empty is.
    Empty { what: String },
    /// A label (or prediction / group id) outside `[0, bound)`; `index` is
    /// its position within `what`.
    OutOfRange {
        what: String,
        index: usize,
        value: i64,
        bound: usize,
    },
    /// NaN or +-inf where only finite values make sense.
    NonFinite {
        what: String,
        row: usize,
        col: usize,
    },
    /// Any other invalid argument (including sizes too large to allocate).
    Invalid { message: String },
}

impl KernelError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        KernelError::Invalid {
            message: message.into(),
        }
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::LengthMismatch {
                what,
                expected,
                got,
            } => write!(f, "{what}: expected {expected}, got {got}"),
            KernelError::Empty { what } => write!(f, "{what} is empty"),
            KernelError::OutOfRange {
                what,
                index,
                value,
                bound,
            } => write!(f, "{what}[{index}] = {value} is out of range [0, {bound})"),
            KernelError::NonFinite { what, row, col } => write!(
                f,
                "{what} has a NaN or infinite value at row {row}, column {col}"
            ),
            KernelError::Invalid { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for KernelError {}

/// Checks that every label lies in `[0, n_classes)`.
pub fn check_labels(what: &str, labels: &[i64], n_classes: usize) -> Result<(), KernelError> {
    for (index, &value) in labels.iter().enumerate() {
        if value < 0 || value as u64 >= n_classes as u64 {
            return Err(KernelError::OutOfRange {
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
pub fn check_len(what: &str, expected: usize, got: usize) -> Result<(), KernelError> {
    if expected != got {
        return Err(KernelError::LengthMismatch {
            what: what.to_string(),
            expected,
            got,
        });
    }
    Ok(())
}

/// A zero-filled vector of `len` elements, or an error (never an abort) when
/// the memory cannot be had.
pub fn try_zeros<T: Clone + Default>(what: &str, len: usize) -> Result<Vec<T>, KernelError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        KernelError::invalid(format!(
            "{what}: cannot allocate {len} elements of {} bytes",
            std::mem::size_of::<T>()
        ))
    })?;
    v.resize(len, T::default());
    Ok(v)
}
