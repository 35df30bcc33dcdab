//! Top-k hits: is each row's label among its `k` highest-scoring classes?

use ndarray::ArrayView2;

use crate::error::{check_labels, check_len, KernelError};
use crate::logit::{load_row, Logit};
use crate::softmax::{check_finite_row, check_logits_shape, par_rows};

/// Per row, 1.0 when the label ranks below `k`, else 0.0. The label's rank
/// follows the argmax tie rule (ties go to the lower class index): the number
/// of classes scoring strictly higher plus the lower-indexed classes scoring
/// the same; so `k = 1` is exactly `argmax == label`. Rows must be finite
/// (as in every kernel); labels in `[0, K)`; `k >= 1`.
pub fn top_k_hits<T: Logit>(
    logits: ArrayView2<'_, T>,
    labels: &[i64],
    k: usize,
    name: &str,
) -> Result<Vec<f64>, KernelError> {
    check_logits_shape(name, &logits)?;
    let (n, n_classes) = logits.dim();
    check_len(&format!("labels length vs {name} rows"), n, labels.len())?;
    check_labels("labels", labels, n_classes)?;
    if k == 0 {
        return Err(KernelError::invalid("k must be >= 1"));
    }
    par_rows(
        n,
        || vec![T::Work::default(); n_classes],
        #[inline(always)]
        |i, buf| {
            let x = load_row(logits.row(i), buf);
            check_finite_row(x, name, i)?;
            let y = labels[i] as usize;
            let t = x[y];
            // Counted without branches, so the loops vectorise.
            let before = x[..y].iter().map(|&v| (v >= t) as usize).sum::<usize>();
            let after = x[y + 1..].iter().map(|&v| (v > t) as usize).sum::<usize>();
            Ok(((before + after) < k) as u8 as f64)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;
    use ndarray::array;

    #[test]
    fn hand_checked_ranks() {
        // Row 0: label 2 scores 3.0; one class higher (5.0): rank 1.
        // Row 1: label 1 ties class 0 (lower index, ranks first): rank 1.
        // Row 2: label 0 ties class 2 (higher index, ranks after): rank 0.
        let z = array![[1.0f32, 5.0, 3.0], [2.0, 2.0, 0.0], [4.0, 1.0, 4.0]];
        let y = [2i64, 1, 0];
        assert_eq!(
            top_k_hits(z.view(), &y, 1, "z").unwrap(),
            vec![0.0, 0.0, 1.0]
        );
        assert_eq!(
            top_k_hits(z.view(), &y, 2, "z").unwrap(),
            vec![1.0, 1.0, 1.0]
        );
    }

    #[test]
    fn k_1_is_the_argmax() {
        let z = array![[0.5f64, 0.5, 0.1], [0.0, 0.1, 0.1], [3.0, 2.0, 1.0]];
        let pred = crate::softmax::predict(z.view(), "z").unwrap();
        for y in 0..3i64 {
            let labels = [y; 3];
            let hits = top_k_hits(z.view(), &labels, 1, "z").unwrap();
            let want: Vec<f64> = pred.iter().map(|&p| (p == y) as u8 as f64).collect();
            assert_eq!(hits, want);
        }
    }

    #[test]
    fn float16_reads_as_its_values() {
        let z = array![[f16::from_f32(1.0), f16::from_f32(2.0)]];
        assert_eq!(top_k_hits(z.view(), &[0], 1, "z").unwrap(), vec![0.0]);
        assert_eq!(top_k_hits(z.view(), &[0], 2, "z").unwrap(), vec![1.0]);
    }

    #[test]
    fn bad_input_is_an_error() {
        let z = array![[1.0f32, f32::NAN]];
        assert!(matches!(
            top_k_hits(z.view(), &[0], 1, "z"),
            Err(KernelError::NonFinite { row: 0, col: 1, .. })
        ));
        let z = array![[1.0f32, 2.0]];
        assert!(top_k_hits(z.view(), &[2], 1, "z").is_err());
        assert!(top_k_hits(z.view(), &[0, 1], 1, "z").is_err());
        assert!(top_k_hits(z.view(), &[0], 0, "z").is_err());
    }
}
