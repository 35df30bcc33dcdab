//! PyO3 bindings: convert arrays, release the GIL, map errors. No maths here.
//! One file per area, each with a `register(m)`.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use rayon::ThreadPool;

use crate::error::KernelError;

mod arrays;
mod bootstrap;
mod errors;
mod metrics;

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
        .map_err(|e| errors::invalid(format!("cannot start threads: {e}")))?;
    let pool = Arc::new(built);
    *guard = Some(Pool {
        pid,
        threads,
        pool: pool.clone(),
    });
    Ok(pool)
}

/// Runs `f` on the kdmetrics pool with the GIL released; the one way in.
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

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    metrics::register(m)?;
    bootstrap::register(m)?;
    Ok(())
}
