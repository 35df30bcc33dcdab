//! Per-example KL and Jensen-Shannon divergence between two models' softmax
//! outputs at one temperature, in nats.

use ndarray::ArrayView2;

use crate::error::{check_len, KernelError};
use crate::fastmath::ln_inplace;
use crate::logit::Logit;
use crate::softmax::{check_inv_t, check_logits_shape, par_rows, prepare_row, sum4, Input, RowBuf};

/// Per-task scratch: the two rows and the per-class terms.
struct Scratch {
    p: RowBuf,
    q: RowBuf,
    pk: Vec<f64>,
    qk: Vec<f64>,
    lp: Vec<f64>,
    lq: Vec<f64>,
    half_log: Vec<f32>,
    kl_terms: Vec<f64>,
    kl_weight: Vec<f64>,
    js_terms: Vec<f64>,
}

impl Scratch {
    fn new(k: usize) -> Self {
        Scratch {
            p: RowBuf::new(k),
            q: RowBuf::new(k),
            pk: vec![0.0; k],
            qk: vec![0.0; k],
            lp: vec![0.0; k],
            lq: vec![0.0; k],
            half_log: vec![0.0; k],
            kl_terms: vec![0.0; k],
            kl_weight: vec![0.0; k],
            js_terms: vec![0.0; k],
        }
    }
}

/// Above this `sum_k p_k |log p_k - log q_k|`, a row's KL is recomputed in float64.
const KL_REFINE_WEIGHT: f64 = 2.0;

/// `kl[i] = KL(p_i || q_i)`, `js[i] = JS(p_i, q_i)`, both in nats.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Divergences {
    pub kl: Vec<f64>,
    pub js: Vec<f64>,
}

/// KL(p || q) = sum_k p_k (log p_k - log q_k) with 0 log 0 = 0, and
/// JS(p, q) = KL(p || m)/2 + KL(q || m)/2 with m = (p + q)/2.
///
/// `log p` and `log q` come straight from the log-softmax in float64; only
/// the bounded part of `log m` uses the float32 [`ln_f32`].
pub fn divergences<P: Logit, Q: Logit>(
    p_logits: ArrayView2<'_, P>,
    q_logits: ArrayView2<'_, Q>,
    inv_t: f64,
    p_input: Input,
    q_input: Input,
    (p_name, q_name): (&str, &str),
) -> Result<Divergences, KernelError> {
    const F: &str = "divergence";
    check_logits_shape(F, p_name, &p_logits)?;
    check_logits_shape(F, q_name, &q_logits)?;
    check_inv_t(F, inv_t)?;
    let (n, k) = p_logits.dim();
    check_len(
        F,
        &format!("{q_name} rows vs {p_name} rows"),
        n,
        q_logits.nrows(),
    )?;
    check_len(
        F,
        &format!("{q_name} classes vs {p_name} classes"),
        k,
        q_logits.ncols(),
    )?;
    let rows = par_rows(
        n,
        || Scratch::new(k),
        |i, sc| {
            let rp = prepare_row(F, p_name, i, p_logits.row(i), p_input, inv_t, &mut sc.p)?;
            let rq = prepare_row(F, q_name, i, q_logits.row(i), q_input, inv_t, &mut sc.q)?;
            let (lsp, lsq) = (rp.sum.ln(), rq.sum.ln());
            let (ip, iq) = (1.0 / rp.sum, 1.0 / rq.sum);
            // Pass 1: probabilities, log-probabilities and the argument of the
            // bounded log: log m = log max(p, q) + log((1 + r) / 2), r = min/max.
            for c in 0..k {
                let pk = sc.p.e[c] as f64 * ip;
                let qk = sc.q.e[c] as f64 * iq;
                let (hi, lo) = if pk >= qk { (pk, qk) } else { (qk, pk) };
                let r = if hi > 0.0 { lo / hi } else { 1.0 };
                sc.pk[c] = pk;
                sc.qk[c] = qk;
                sc.lp[c] = (sc.p.x[c] - rp.max) * inv_t - lsp;
                sc.lq[c] = (sc.q.x[c] - rq.max) * inv_t - lsq;
                sc.half_log[c] = (0.5 + 0.5 * r) as f32;
            }
            // The float32 log only sees [0.5, 1]: error ~4e-8 absolute, and
            // identical rows (r = 1) give exactly 0.
            ln_inplace(&mut sc.half_log);
            // Pass 2: per-class terms (selects, not branches, so it vectorises;
            // 0 * log 0 terms are selected away).
            for c in 0..k {
                let (pk, qk, lp, lq) = (sc.pk[c], sc.qk[c], sc.lp[c], sc.lq[c]);
                let lm = if pk >= qk { lp } else { lq } + sc.half_log[c] as f64;
                let d = lp - lq;
                sc.kl_terms[c] = if pk > 0.0 { pk * d } else { 0.0 };
                sc.kl_weight[c] = if pk > 0.0 { pk * d.abs() } else { 0.0 };
                let jp = if pk > 0.0 { pk * (lp - lm) } else { 0.0 };
                let jq = if qk > 0.0 { qk * (lq - lm) } else { 0.0 };
                sc.js_terms[c] = jp + jq;
            }
            let mut kl = sum4(&sc.kl_terms);
            let js = 0.5 * sum4(&sc.js_terms);
            // Rounding in float32 p costs KL about 2e-7 * sum p |log p - log q|.
            if sum4(&sc.kl_weight) > KL_REFINE_WEIGHT {
                // Far-apart rows (KL of many nats): redo KL with float64 p so the
                // absolute error stays below 1e-6. JS needs no such care: its
                // terms are bounded by ln 2.
                let sum_p: f64 = sc.p.x.iter().map(|&v| ((v - rp.max) * inv_t).exp()).sum();
                let lsp = sum_p.ln();
                kl = 0.0;
                for c in 0..k {
                    let lp = (sc.p.x[c] - rp.max) * inv_t - lsp;
                    let pk = lp.exp();
                    if pk > 0.0 {
                        kl += pk * (lp - sc.lq[c]);
                    }
                }
            }
            Ok((kl, js))
        },
    )?;
    let (kl, js) = rows.into_iter().unzip();
    Ok(Divergences { kl, js })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    const NAMES: (&str, &str) = ("p", "q");

    fn softmax(z: &[f64]) -> Vec<f64> {
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
        z.iter().map(|v| (v - m).exp() / s).collect()
    }

    fn kl(p: &[f64], q: &[f64]) -> f64 {
        p.iter()
            .zip(q)
            .map(|(a, b)| if *a > 0.0 { a * (a.ln() - b.ln()) } else { 0.0 })
            .sum()
    }

    #[test]
    fn hand_computed() {
        // p = [0.5, 0.5], q = [0.25, 0.75]
        let p = array![[0.0f64, 0.0]];
        let q = array![[0.0f64, 3.0f64.ln()]];
        let d = divergences(p.view(), q.view(), 1.0, Input::Logits, Input::Logits, NAMES).unwrap();
        let want_kl = 0.5 * (0.5f64 / 0.25).ln() + 0.5 * (0.5f64 / 0.75).ln();
        assert!((d.kl[0] - want_kl).abs() < 1e-7);
        let m = [0.375, 0.625];
        let want_js = 0.5 * kl(&[0.5, 0.5], &m) + 0.5 * kl(&[0.25, 0.75], &m);
        assert!((d.js[0] - want_js).abs() < 1e-7);
    }

    #[test]
    fn identical_rows_give_zero_and_disjoint_give_ln2() {
        let z = array![[1.0f32, 2.0, -3.0], [0.0, 0.0, 0.0]];
        let d = divergences(z.view(), z.view(), 1.0, Input::Logits, Input::Logits, NAMES).unwrap();
        for v in d.kl.iter().chain(&d.js) {
            assert!(v.abs() < 1e-7, "{v}");
        }
        let p = array![[1.0f64, 0.0, 0.0]];
        let q = array![[0.0f64, 0.5, 0.5]];
        let probs = Input::Probs { atol: 1e-9 };
        let d = divergences(p.view(), q.view(), 1.0, probs, probs, NAMES).unwrap();
        assert!((d.js[0] - 2f64.ln()).abs() < 1e-7);
        assert_eq!(d.kl[0], f64::INFINITY);
    }

    #[test]
    fn matches_reference_with_temperature_and_mixed_dtypes() {
        let p = array![[2.0f64, -1.0, 0.5, 7.0], [0.0, 40.0, -3.0, 1.0]];
        let q = array![[1.5f32, 0.0, -0.5, 3.0], [1.0, -2.0, 30.0, 0.0]];
        let t = 2.5;
        let d = divergences(
            p.view(),
            q.view(),
            1.0 / t,
            Input::Logits,
            Input::Logits,
            NAMES,
        )
        .unwrap();
        for i in 0..2 {
            let ps = softmax(&p.row(i).iter().map(|v| v / t).collect::<Vec<_>>());
            let qs = softmax(&q.row(i).iter().map(|&v| v as f64 / t).collect::<Vec<_>>());
            let m: Vec<f64> = ps.iter().zip(&qs).map(|(a, b)| 0.5 * (a + b)).collect();
            assert!((d.kl[i] - kl(&ps, &qs)).abs() < 1e-6);
            let js = 0.5 * kl(&ps, &m) + 0.5 * kl(&qs, &m);
            assert!((d.js[i] - js).abs() < 1e-6);
        }
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let p = array![[0.0f64, 1.0]];
        let q = array![[0.0f64, 1.0, 2.0]];
        let e =
            divergences(p.view(), q.view(), 1.0, Input::Logits, Input::Logits, NAMES).unwrap_err();
        assert!(e.to_string().contains("classes"), "{e}");
    }
}
