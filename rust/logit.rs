//! The element types logits arrive in, read as they are (no upcast copy of the array).
//!
//! Each input type has a *work* type a row is held in while it is processed:
//! float32 for float16 and float32 input (both convert exactly), float64 for
//! float64 input. Keeping float32 rows in float32 halves the memory traffic
//! and doubles the SIMD width of the per-element passes.

use half::f16;
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
    #[inline(always)]
    fn load_slice(src: &[Self], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("f16c") {
            // SAFETY: the CPU has F16C (and so AVX), checked just above.
            return unsafe { f16_to_f32_f16c(src, out) };
        }
        for (o, &h) in out.iter_mut().zip(src) {
            *o = f16_bits_to_f32(h.to_bits());
        }
    }
}

/// Exact float16 -> float32 by bit manipulation (F. Giesen's branch-free
/// method): selects instead of branches, so a row converts in SIMD inside the
/// vectorised kernels, where a call per element into `half` would not.
#[inline(always)]
pub fn f16_bits_to_f32(h: u16) -> f32 {
    const SHIFTED_EXP: u32 = 0x7c00 << 13;
    let magic = f32::from_bits(113 << 23);
    let h = h as u32;
    let o = (h & 0x7fff) << 13;
    let exp = o & SHIFTED_EXP;
    let o = o + ((127 - 15) << 23);
    let special = o + ((128 - 16) << 23); // Inf / NaN: exponent all ones
    let denormal = f32::from_bits(o + (1 << 23)) - magic; // zero / subnormal: renormalise
    let v = if exp == SHIFTED_EXP {
        f32::from_bits(special)
    } else if exp == 0 {
        denormal
    } else {
        f32::from_bits(o)
    };
    f32::from_bits(v.to_bits() | ((h & 0x8000) << 16))
}

/// float16 -> float32 with the F16C instruction, eight at a time (exact, as
/// the portable [`f16_bits_to_f32`]; a test checks every value).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
unsafe fn f16_to_f32_f16c(src: &[f16], out: &mut [f32]) {
    use std::arch::x86_64::{__m128i, _mm256_cvtph_ps, _mm256_storeu_ps, _mm_loadu_si128};
    let n = src.len().min(out.len());
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, within both slices; unaligned load and store.
        unsafe {
            let h = _mm_loadu_si128(src.as_ptr().add(i) as *const __m128i);
            _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
        }
        i += 8;
    }
    for j in i..n {
        out[j] = f16_bits_to_f32(src[j].to_bits());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16c_and_portable_conversions_agree_on_every_value() {
        let all: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).collect();
        let mut a = vec![0.0f32; all.len()];
        f16::load_slice(&all, &mut a);
        for (h, v) in all.iter().zip(&a) {
            let want = f16_bits_to_f32(h.to_bits());
            assert!(v.to_bits() == want.to_bits() || (v.is_nan() && want.is_nan()));
        }
    }

    #[test]
    fn float16_conversion_is_exact_for_every_value() {
        for bits in 0..=u16::MAX {
            let want = f16::from_bits(bits).to_f32();
            let got = f16_bits_to_f32(bits);
            if want.is_nan() {
                assert!(got.is_nan(), "{bits:#x}");
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "{bits:#x}");
            }
        }
    }
}
