//! Confusion counts per class: the sufficient statistics of accuracy and F1.

use crate::error::{check_labels, check_len, try_zeros, KernelError};

/// Per-class true positives, false positives and false negatives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionCounts {
    pub tp: Vec<i64>,
    pub fp: Vec<i64>,
    pub fn_: Vec<i64>,
}

/// Counts over all examples: `tp[c]` = #(y = c, pred = c), `fp[c]` =
/// #(y != c, pred = c), `fn_[c]` = #(y = c, pred != c).
pub fn confusion_counts(
    labels: &[i64],
    preds: &[i64],
    n_classes: usize,
) -> Result<ConfusionCounts, KernelError> {
    check_len("preds length vs labels length", labels.len(), preds.len())?;
    check_labels("labels", labels, n_classes)?;
    check_labels("preds", preds, n_classes)?;
    let mut out = ConfusionCounts {
        tp: try_zeros("n_classes", n_classes)?,
        fp: try_zeros("n_classes", n_classes)?,
        fn_: try_zeros("n_classes", n_classes)?,
    };
    for (&y, &p) in labels.iter().zip(preds) {
        if y == p {
            out.tp[y as usize] += 1;
        } else {
            out.fp[p as usize] += 1;
            out.fn_[y as usize] += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        let c = confusion_counts(&[0, 0, 1, 2, 2], &[0, 1, 1, 2, 0], 4).unwrap();
        assert_eq!(c.tp, vec![1, 1, 1, 0]);
        assert_eq!(c.fp, vec![1, 1, 0, 0]);
        assert_eq!(c.fn_, vec![1, 0, 1, 0]);
    }

    #[test]
    fn rejects_out_of_range_and_mismatch() {
        assert!(confusion_counts(&[0, 3], &[0, 1], 3).is_err());
        assert!(confusion_counts(&[0, 1], &[0, -1], 3).is_err());
        assert!(confusion_counts(&[0, 1], &[0], 3).is_err());
    }
}
