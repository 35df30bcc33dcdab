//! The element types logits arrive in, read as they are (no upcast copy of the array).

use half::f16;
use half::slice::HalfFloatSliceExt;
use ndarray::ArrayView1;

/// A float element type kernels accept: float16, float32 or float64.
pub trait Logit: Copy + Send + Sync + 'static {
    fn to_f64(self) -> f64;

    /// Converts a contiguous row; types with a faster bulk conversion override it.
    fn load_slice(src: &[Self], out: &mut [f64]) {
        for (o, &s) in out.iter_mut().zip(src) {
            *o = s.to_f64();
        }
    }
}

impl Logit for f64 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    fn load_slice(src: &[Self], out: &mut [f64]) {
        out.copy_from_slice(src);
    }
}

impl Logit for f32 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Logit for f16 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f16::to_f64(self)
    }
    fn load_slice(src: &[Self], out: &mut [f64]) {
        // `half` picks the F16C instructions at run time where the CPU has them.
        src.convert_to_f64_slice(out);
    }
}

/// Copies one row (contiguous or strided) into `out` as float64.
#[inline(always)]
pub fn load_row<T: Logit>(row: ArrayView1<'_, T>, out: &mut [f64]) {
    match row.as_slice() {
        Some(s) => T::load_slice(s, out),
        None => {
            for (o, &v) in out.iter_mut().zip(row.iter()) {
                *o = v.to_f64();
            }
        }
    }
}
