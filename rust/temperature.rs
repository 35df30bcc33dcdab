//! Mean NLL as a function of the inverse temperature, with its exact first and
//! second derivatives, for a safeguarded Newton fit of T (docs/conventions.md).

use ndarray::ArrayView2;

use crate::error::{check_labels, check_len, KernelError};
use crate::logit::{Logit, Work};
use crate::softmax::{check_inv_t, check_logits_shape, par_rows, prepare_row, Input, RowBuf};

/// NLL(beta) = mean_i [logsumexp(beta z_i) - beta z_iy]; convex in beta = 1/T.
/// `d1` = mean (E_p[z] - z_y), `d2` = mean Var_p[z], with p = softmax(beta z).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NllCurve {
    pub nll: f64,
    pub d1: f64,
    pub d2: f64,
}

pub fn nll_curve<T: Logit>(
    logits: ArrayView2<'_, T>,
    labels: &[i64],
    beta: f64,
    input: Input,
    name: &str,
) -> Result<NllCurve, KernelError> {
    check_logits_shape(name, &logits)?;
    check_inv_t::<T::Work>(beta)?;
    let (n, k) = logits.dim();
    check_len(&format!("labels length vs {name} rows"), n, labels.len())?;
    check_labels("labels", labels, k)?;
    let rows = par_rows(
        n,
        || RowBuf::<T::Work>::new(k),
        #[inline(always)]
        |i, buf| {
            let (r, x) = prepare_row(name, i, logits.row(i), input, beta, &mut buf.x, &mut buf.e)?;
            let y = labels[i] as usize;
            // Work with d_k = x_k - max (zero-probability entries have d = -inf
            // and weight 0: skip them).
            let (mut m1, mut m2) = (0.0f64, 0.0f64);
            for (&e, &x) in buf.e.iter().zip(x) {
                if e > 0.0 {
                    let d = x.to_f64() - r.max;
                    m1 += e as f64 * d;
                    m2 += e as f64 * d * d;
                }
            }
            let (m1, m2) = (m1 / r.sum, m2 / r.sum);
            let dy = x[y].to_f64() - r.max;
            Ok((r.sum.ln() - beta * dy, m1 - dy, (m2 - m1 * m1).max(0.0)))
        },
    )?;
    let mut c = NllCurve {
        nll: 0.0,
        d1: 0.0,
        d2: 0.0,
    };
    for (a, b, d) in &rows {
        c.nll += a;
        c.d1 += b;
        c.d2 += d;
    }
    let n = n as f64;
    Ok(NllCurve {
        nll: c.nll / n,
        d1: c.d1 / n,
        d2: c.d2 / n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn derivatives_match_finite_differences() {
        let z = array![[2.0f64, -1.0, 0.5], [0.0, 3.0, -2.0], [1.0, 1.0, 4.0]];
        let y = [0i64, 2, 2];
        let at = |b| nll_curve(z.view(), &y, b, Input::Logits, "logits").unwrap();
        for &b in &[0.3, 1.0, 2.0] {
            // float32 exp noise (~1e-7) limits how small h can be.
            let h = 1e-3;
            let c = at(b);
            let fd1 = (at(b + h).nll - at(b - h).nll) / (2.0 * h);
            let fd2 = (at(b + h).d1 - at(b - h).d1) / (2.0 * h);
            assert!((c.d1 - fd1).abs() < 1e-5, "{} vs {}", c.d1, fd1);
            assert!((c.d2 - fd2).abs() < 1e-3, "{} vs {}", c.d2, fd2);
        }
    }
}
