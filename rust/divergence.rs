//! Per-example KL and Jensen-Shannon divergence between two models' softmax
//! outputs at one temperature, in nats.

use ndarray::ArrayView2;

use crate::error::{check_len, KernelError};
use crate::fastmath::ln_inplace;
use crate::logit::{Logit, Work};
use crate::softmax::{check_inv_t, check_logits_shape, par_rows, prepare_row, sum4, Input, RowBuf};

/// Per-task scratch: the two rows and the per-class terms.
struct Scratch<P, Q> {
    p: RowBuf<P>,
    q: RowBuf<Q>,
    pk: Vec<f64>,
    qk: Vec<f64>,
    lp: Vec<f64>,
    lq: Vec<f64>,
    half_log: Vec<f32>,
    kl_terms: Vec<f64>,
    kl_weight: Vec<f64>,
    js_terms: Vec<f64>,
}

impl<P: Work, Q: Work> Scratch<P, Q> {
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
    check_logits_shape(p_name, &p_logits)?;
    check_logits_shape(q_name, &q_logits)?;
    check_inv_t::<P::Work>(inv_t)?;
    check_inv_t::<Q::Work>(inv_t)?;
    let (n, k) = p_logits.dim();
    check_len(
        &format!("{q_name} rows vs {p_name} rows"),
        n,
        q_logits.nrows(),
    )?;
    check_len(
        &format!("{q_name} classes vs {p_name} classes"),
        k,
        q_logits.ncols(),
    )?;
    let rows = par_rows(
        n,
        || Scratch::<P::Work, Q::Work>::new(k),
        #[inline(always)]
        |i, sc| {
            let (rp, px) = prepare_row(
                p_name,
                i,
                p_logits.row(i),
                p_input,
                inv_t,
                &mut sc.p.x,
                &mut sc.p.e,
            )?;
            let (rq, qx) = prepare_row(
                q_name,
                i,
                q_logits.row(i),
                q_input,
                inv_t,
                &mut sc.q.x,
                &mut sc.q.e,
            )?;
            let (lsp, lsq) = (rp.sum.ln(), rq.sum.ln());
            let (ip, iq) = (1.0 / rp.sum, 1.0 / rq.sum);
            // Pass 1: probabilities, log-probabilities and the argument of the
            // bounded log: log m = log max(p, q) + log((1 + r) / 2), r = min/max.
            // Every slice is cut to length k first so the loops carry no bounds
            // checks and vectorise.
            let (pe, qe) = (&sc.p.e[..k], &sc.q.e[..k]);
            let (px, qx) = (&px[..k], &qx[..k]);
            let (pk, qk) = (&mut sc.pk[..k], &mut sc.qk[..k]);
            let (lp, lq) = (&mut sc.lp[..k], &mut sc.lq[..k]);
            let half_log = &mut sc.half_log[..k];
            for c in 0..k {
                let a = pe[c] as f64 * ip;
                let b = qe[c] as f64 * iq;
                let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
                let r = if hi > 0.0 { lo / hi } else { 1.0 };
                pk[c] = a;
                qk[c] = b;
                lp[c] = (px[c].to_f64() - rp.max) * inv_t - lsp;
                lq[c] = (qx[c].to_f64() - rq.max) * inv_t - lsq;
                half_log[c] = (0.5 + 0.5 * r) as f32;
            }
            // The float32 log only sees [0.5, 1]: error ~4e-8 absolute, and
            // identical rows (r = 1) give exactly 0.
            ln_inplace(half_log);
            // Pass 2: per-class terms (selects, not branches, so it vectorises;
            // 0 * log 0 terms are selected away).
            let kl_terms = &mut sc.kl_terms[..k];
            let kl_weight = &mut sc.kl_weight[..k];
            let js_terms = &mut sc.js_terms[..k];
            for c in 0..k {
                let (a, b, la, lb) = (pk[c], qk[c], lp[c], lq[c]);
                let lm = if a >= b { la } else { lb } + half_log[c] as f64;
                let d = la - lb;
                kl_terms[c] = if a > 0.0 { a * d } else { 0.0 };
                kl_weight[c] = if a > 0.0 { a * d.abs() } else { 0.0 };
                let jp = if a > 0.0 { a * (la - lm) } else { 0.0 };
                let jq = if b > 0.0 { b * (lb - lm) } else { 0.0 };
                js_terms[c] = jp + jq;
            }
            let mut kl = sum4(&sc.kl_terms);
            let js = 0.5 * sum4(&sc.js_terms);
            // Rounding in float32 p costs KL about 2e-7 * sum p |log p - log q|.
            if sum4(&sc.kl_weight) > KL_REFINE_WEIGHT {
                // Far-apart rows (KL of many nats): redo KL with float64 p so the
                // absolute error stays below 1e-6. JS needs no such care: its
                // terms are bounded by ln 2.
                let sum_p: f64 = px
                    .iter()
                    .map(|&v| ((v.to_f64() - rp.max) * inv_t).exp())
                    .sum();
                let lsp = sum_p.ln();
                kl = 0.0;
                for c in 0..k {
                    let lp = (px[c].to_f64() - rp.max) * inv_t - lsp;
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
        let p = array![[1.0f64, 0.0, 0.0]].mapv(f64::ln);
        let q = array![[0.0f64, 0.5, 0.5]].mapv(f64::ln);
        let probs = Input::LogProbs;
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
