//! Per-group (per-tier) aggregation of per-example values.

use crate::error::{check_labels, check_len, KernelError};

/// `sums[g] = sum of values[i] over i with groups[i] = g`, and the counts.
/// Summed in example order, so the result is reproducible.
pub fn group_sums(
    values: &[f64],
    groups: &[i64],
    n_groups: usize,
) -> Result<(Vec<f64>, Vec<u64>), KernelError> {
    check_len("groups length vs values length", values.len(), groups.len())?;
    check_labels("groups", groups, n_groups)?;
    let mut sums = vec![0.0; n_groups];
    let mut counts = vec![0u64; n_groups];
    for (&v, &g) in values.iter().zip(groups) {
        sums[g as usize] += v;
        counts[g as usize] += 1;
    }
    Ok((sums, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        let (s, c) = group_sums(&[1.0, 2.0, 3.0, 4.0], &[0, 2, 0, 2], 3).unwrap();
        assert_eq!(s, vec![4.0, 0.0, 6.0]);
        assert_eq!(c, vec![2, 0, 2]);
        assert!(group_sums(&[1.0], &[3], 3).is_err());
    }
}
