//! Order statistics of the columns of a matrix: what exact bootstrap
//! quantiles need, by selection (O(R) per rank) instead of a full sort.

use rayon::prelude::*;

use crate::error::KernelError;

/// For each request `(cols[i], ranks[i])`: the `ranks[i]`-th smallest
/// (0-based) non-NaN value of column `cols[i]` of the row-major
/// `n_rows x n_cols` matrix `values`, in IEEE total order (so `-0.0` sorts
/// before `+0.0`); NaN when the rank is negative or not below the column's
/// count of non-NaN values. Columns run in parallel; the result does not
/// depend on the thread count.
pub fn order_statistics(
    values: &[f64],
    n_rows: usize,
    n_cols: usize,
    cols: &[i64],
    ranks: &[i64],
) -> Result<Vec<f64>, KernelError> {
    let len = n_rows
        .checked_mul(n_cols)
        .ok_or_else(|| KernelError::invalid("n_rows * n_cols overflows"))?;
    crate::error::check_len("values length vs n_rows * n_cols", len, values.len())?;
    crate::error::check_len("ranks length vs cols length", cols.len(), ranks.len())?;
    crate::error::check_labels("cols", cols, n_cols)?;
    // Requests grouped by column, ranks ascending within a column.
    let mut order: Vec<usize> = (0..cols.len()).collect();
    order.sort_by_key(|&i| (cols[i], ranks[i]));
    let mut groups: Vec<&[usize]> = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let c = cols[order[start]];
        let end = start + order[start..].iter().take_while(|&&i| cols[i] == c).count();
        groups.push(&order[start..end]);
        start = end;
    }
    let answers: Vec<Vec<(usize, f64)>> = groups
        .par_iter()
        .map(|group| {
            let c = cols[group[0]] as usize;
            let mut col: Vec<f64> = (0..n_rows)
                .map(|r| values[r * n_cols + c])
                .filter(|x| !x.is_nan())
                .collect();
            let mut out = Vec::with_capacity(group.len());
            // Each selection leaves smaller values before the rank and
            // larger after, so the next (larger) rank is searched above it.
            let (mut lo, mut selected) = (0, false);
            for &i in group.iter() {
                let r = ranks[i];
                if r < 0 || r as usize >= col.len() {
                    out.push((i, f64::NAN));
                    continue;
                }
                let r = r as usize;
                if selected && r == lo + 1 {
                    // The rank just above a selected one (a quantile's second
                    // neighbour): the least value above it, by one scan.
                    let m = (r..col.len())
                        .min_by(|&a, &b| col[a].total_cmp(&col[b]))
                        .unwrap_or(r);
                    col.swap(r, m);
                    lo = r;
                } else if r >= lo {
                    col[lo..].select_nth_unstable_by(r - lo, f64::total_cmp);
                    lo = r;
                    selected = true;
                }
                out.push((i, col[r]));
            }
            out
        })
        .collect();
    let mut result = vec![f64::NAN; cols.len()];
    for (i, v) in answers.into_iter().flatten() {
        result[i] = v;
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_sorting() {
        // 7 rows x 3 columns with NaNs, ties and signed zeros.
        let v = [
            3.0,
            f64::NAN,
            0.0, //
            -1.0,
            2.0,
            -0.0, //
            3.0,
            f64::NAN,
            5.0, //
            0.5,
            2.0,
            0.0, //
            f64::NAN,
            -4.0,
            1.0, //
            7.0,
            2.0,
            -2.0, //
            -1.0,
            9.0,
            0.0,
        ];
        for c in 0..3 {
            let mut sorted: Vec<f64> = (0..7)
                .map(|r| v[r * 3 + c])
                .filter(|x| !x.is_nan())
                .collect();
            sorted.sort_by(f64::total_cmp);
            let ranks: Vec<i64> = vec![3, 0, -1, sorted.len() as i64 - 1, 1, 99, 3];
            let cols = vec![c as i64; ranks.len()];
            let got = order_statistics(&v, 7, 3, &cols, &ranks).unwrap();
            for (g, &r) in got.iter().zip(&ranks) {
                if r < 0 || r as usize >= sorted.len() {
                    assert!(g.is_nan());
                } else {
                    assert_eq!(g.to_bits(), sorted[r as usize].to_bits());
                }
            }
        }
        assert!(order_statistics(&v, 7, 3, &[3], &[0]).is_err());
        assert!(order_statistics(&v, 6, 3, &[0], &[0]).is_err());
    }

    #[test]
    fn neighbouring_ranks_match_sorting() {
        // One column with ties and signed zeros; every quantile's pair of
        // neighbours (r, r + 1), and runs of consecutive ranks.
        let mut state = 7u64;
        let v: Vec<f64> = (0..257)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                match state >> 61 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => f64::NAN,
                    _ => ((state >> 33) % 17) as f64 - 8.0,
                }
            })
            .collect();
        let mut sorted: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as i64;
        for ranks in [
            vec![0, 1, 5, 6, n / 2, n / 2 + 1, n - 2, n - 1],
            (0..n).collect::<Vec<i64>>(),
            vec![3, 4, 4, 5, 9, 10, 11],
        ] {
            let cols = vec![0i64; ranks.len()];
            let got = order_statistics(&v, v.len(), 1, &cols, &ranks).unwrap();
            for (g, &r) in got.iter().zip(&ranks) {
                assert_eq!(g.to_bits(), sorted[r as usize].to_bits(), "rank {r}");
            }
        }
    }
}
