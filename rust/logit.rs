//! The element types logits arrive in, read as they are (no upcast copy of the array).
//!
//! Each input type has a *work* type a row is held in while it is processed:
//! float32 for float16 and float32 input (both convert exactly), float64 for
//! float64 input. Keeping float32 rows in float32 halves the memory traffic
//! and doubles the SIMD width of the per-element passes.

use half::f16;
use half::slice::HalfFloatSliceExt;
use ndarray::ArrayView1;

/// The float a row is processed in: `f32` or `f64`.
pub trait Work: Copy + Send + Sync + PartialOrd + Default + 'static {
    const NEG_INFINITY: Self;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    fn is_finite(self) -> bool;
    fn is_nan(self) -> bool;
    /// `(self - max) * inv_t`, rounded to float32 for the vectorised exp.
    fn shift_scale(self, max: Self, inv_t: Self) -> f32;
}

impl Work for f32 {
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    #[inline(always)]
    fn shift_scale(self, max: Self, inv_t: Self) -> f32 {
        (self - max) * inv_t
    }
}

impl Work for f64 {
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    #[inline(always)]
    fn shift_scale(self, max: Self, inv_t: Self) -> f32 {
        ((self - max) * inv_t) as f32
    }
}

/// A float element type kernels accept: float16, float32 or float64.
pub trait Logit: Copy + Send + Sync + 'static {
    type Work: Work;
    fn to_work(self) -> Self::Work;

    /// The slice itself when it already is in the work type (float32, float64):
    /// rows are then read in place, not copied.
    #[inline(always)]
    fn as_work(_src: &[Self]) -> Option<&[Self::Work]> {
        None
    }

    /// Converts a contiguous row; types with a faster bulk conversion override it.
    #[inline(always)]
    fn load_slice(src: &[Self], out: &mut [Self::Work]) {
        for (o, &s) in out.iter_mut().zip(src) {
            *o = s.to_work();
        }
    }
}

impl Logit for f64 {
    type Work = f64;
    #[inline(always)]
    fn to_work(self) -> f64 {
        self
    }
    #[inline(always)]
    fn as_work(src: &[Self]) -> Option<&[f64]> {
        Some(src)
    }
}

impl Logit for f32 {
    type Work = f32;
    #[inline(always)]
    fn to_work(self) -> f32 {
        self
    }
    #[inline(always)]
    fn as_work(src: &[Self]) -> Option<&[f32]> {
        Some(src)
    }
}

impl Logit for f16 {
    type Work = f32;
    #[inline(always)]
    fn to_work(self) -> f32 {
        f16::to_f32(self)
    }
    fn load_slice(src: &[Self], out: &mut [f32]) {
        // `half` picks the F16C instructions at run time where the CPU has them.
        src.convert_to_f32_slice(out);
    }
}

/// One row in the work type: the input itself when it is contiguous and
/// already float32/float64, else converted (or gathered, if strided) into `buf`.
#[inline(always)]
pub fn load_row<'a, T: Logit>(row: ArrayView1<'a, T>, buf: &'a mut [T::Work]) -> &'a [T::Work] {
    match row.to_slice() {
        Some(s) => match T::as_work(s) {
            Some(w) => w,
            None => {
                T::load_slice(s, buf);
                buf
            }
        },
        None => {
            for (o, &v) in buf.iter_mut().zip(row.iter()) {
                *o = v.to_work();
            }
            buf
        }
    }
}
