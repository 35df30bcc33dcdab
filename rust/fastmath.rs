//! Branch-free float32 `exp` and `ln` that the compiler vectorises.
//!
//! Both follow the Cephes single-precision algorithms (range reduction plus a
//! minimax polynomial, about 1 ulp). kdmetrics evaluates them on values that are
//! then accumulated in float64; docs/conventions.md (Inputs) allows per-element float32 exp/log as
//! long as results agree with a float64 reference to 1e-6.

// The Cephes coefficients are kept as published.
#![allow(clippy::excessive_precision)]

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Below this, `exp` underflows float32's normal range; we return 0.
const EXP_MIN: f32 = -87.336_55;
const EXP_MAX: f32 = 88.722_83;
/// 1.5 * 2^23: adding and subtracting it rounds to the nearest integer
/// without a rounding instruction (SSE2 has none).
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `e^x` in float32; 0 for `x < -87.34` (including -inf), +inf above 88.72.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let xc = x.clamp(EXP_MIN, EXP_MAX);
    let shifted = xc.mul_add(LOG2E, ROUND_MAGIC);
    let n = shifted - ROUND_MAGIC;
    let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, xc));
    // n as an integer sits in the low mantissa bits of `shifted`; reading it
    // from there avoids a saturating float-to-int cast that blocks SIMD.
    let n_int = shifted.to_bits().wrapping_sub(ROUND_MAGIC.to_bits()) as i32;
    let y = exp_poly(r);
    let scale = f32::from_bits((n_int.wrapping_add(127) as u32) << 23);
    let v = y * scale;
    if x < EXP_MIN {
        0.0
    } else if x > EXP_MAX {
        f32::INFINITY
    } else {
        v
    }
}

/// `e^r` for |r| <= ln(2)/2 (Cephes minimax polynomial), Horner with fused
/// multiply-adds: one rounding per step, and exactly the same result with or
/// without FMA hardware (`mul_add` is always fused).
#[inline(always)]
fn exp_poly(r: f32) -> f32 {
    let p = 1.987_569_1e-4f32
        .mul_add(r, 1.398_199_9e-3)
        .mul_add(r, 8.333_452e-3)
        .mul_add(r, 4.166_579_6e-2)
        .mul_add(r, 1.666_666_5e-1)
        .mul_add(r, 5.000_000_1e-1);
    p.mul_add(r * r, r) + 1.0
}

/// Natural log in float32 for positive normal `x` (callers never pass 0:
/// they skip zero-probability terms).
#[inline(always)]
pub fn ln_f32(x: f32) -> f32 {
    let x = x.max(f32::MIN_POSITIVE);
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 126;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000); // in [0.5, 1)
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    let e = (if small { e - 1 } else { e }) as f32;
    let m = if small { m + m - 1.0 } else { m - 1.0 };
    let z = m * m;
    let mut y = ((((((((7.037_683_6e-2 * m - 1.151_461e-1) * m + 1.167_699_9e-1) * m
        - 1.242_014_1e-1)
        * m
        + 1.424_932_3e-1)
        * m
        - 1.666_805_8e-1)
        * m
        + 2.000_071_4e-1)
        * m
        - 2.499_999_4e-1)
        * m
        + 3.333_333e-1)
        * m
        * z;
    y += LN2_LO * e;
    y -= 0.5 * z;
    m + y + LN2_HI * e
}

/// True when the AVX2 + FMA code paths can run (x86-64 CPUs since ~2013).
#[inline(always)]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Replaces each value by its `exp_f32`, with AVX2 + FMA where the CPU has them.
///
/// Both paths run the same operations in the same order: Rust never fuses a
/// multiply and an add on its own, and `mul_add` is fused on every path (in
/// software without FMA hardware, slowly but exactly), so the results are
/// bit-identical. (The kernels fuse exp into their row passes; this whole-slice
/// form checks the SIMD path in tests.)
#[cfg(test)]
fn exp_inplace(v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { exp_inplace_avx2(v) };
    }
    exp_inplace_generic(v)
}

#[cfg(test)]
#[inline(always)]
fn exp_inplace_generic(v: &mut [f32]) {
    for x in v.iter_mut() {
        *x = exp_f32(*x);
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_inplace_avx2(v: &mut [f32]) {
    exp_inplace_generic(v)
}

/// Replaces each value by its `ln_f32`, with AVX2 where the CPU has it.
pub fn ln_inplace(v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { ln_inplace_avx2(v) };
    }
    ln_inplace_generic(v)
}

#[inline(always)]
fn ln_inplace_generic(v: &mut [f32]) {
    for x in v.iter_mut() {
        *x = ln_f32(*x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn ln_inplace_avx2(v: &mut [f32]) {
    ln_inplace_generic(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let got = exp_f32(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.001_7;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
    }

    #[test]
    fn simd_paths_are_bit_identical_to_scalar() {
        let xs: Vec<f32> = (0..4099).map(|i| -90.0 + i as f32 * 0.0231).collect();
        let mut a = xs.clone();
        exp_inplace(&mut a);
        let b: Vec<f32> = xs.iter().map(|&x| exp_f32(x)).collect();
        assert_eq!(a, b);
        let ys: Vec<f32> = (1..4099).map(|i| i as f32 * 0.000_37).collect();
        let mut a = ys.clone();
        ln_inplace(&mut a);
        let b: Vec<f32> = ys.iter().map(|&x| ln_f32(x)).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn exp_edges() {
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
    }

    #[test]
    fn ln_matches_std_to_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut x = 1e-30f32;
        while x < 1e30 {
            let got = ln_f32(x) as f64;
            let want = (x as f64).ln();
            worst = worst.max((got - want).abs() / want.abs().max(1.0));
            x *= 1.001_3;
        }
        assert!(worst < 3e-7, "worst error {worst}");
        assert_eq!(ln_f32(1.0), 0.0);
    }
}
