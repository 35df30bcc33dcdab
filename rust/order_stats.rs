//! Order statistics of the columns of a matrix: what exact bootstrap
//! quantiles need, by selection (O(R) per rank) instead of a full sort.

use rayon::prelude::*;

use crate::error::KernelError;

/// For each request `(cols[i], ranks[i])`: the `ranks[i]`-th smallest
/// (0-based) non-NaN value of column `cols[i]` of the row-major
/// `n_rows x n_cols` matrix `values`, in IEEE total order (so `-0.0` sorts
/// before `+0.0`); NaN when the rank is negative or not below the column's
/// count of non-NaN values. Columns run in parallel; the result does not
/// depend on the thread count (a selected value is the same whatever the
/// order of work).
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
    let mut requests: Vec<Vec<usize>> = vec![Vec::new(); n_cols];
    for (i, &c) in cols.iter().enumerate() {
        requests[c as usize].push(i);
    }
    let wanted: Vec<usize> = (0..n_cols).filter(|&c| !requests[c].is_empty()).collect();
    let answers: Vec<Vec<(usize, f64)>> = wanted
        .par_iter()
        .map(|&c| {
            // A strided gather (the prefetcher follows a fixed stride).
            let mut col: Vec<f64> = (0..n_rows)
                .map(|r| values[r * n_cols + c])
                .filter(|x| !x.is_nan())
                .collect();
            let mut valid: Vec<usize> = requests[c]
                .iter()
                .filter_map(|&i| usize::try_from(ranks[i]).ok())
                .filter(|&r| r < col.len())
                .collect();
            valid.sort_unstable();
            valid.dedup();
            select_ranks(&mut col, 0, &valid);
            requests[c]
                .iter()
                .map(|&i| {
                    let v = usize::try_from(ranks[i])
                        .ok()
                        .and_then(|r| col.get(r).copied());
                    (i, v.unwrap_or(f64::NAN))
                })
                .collect()
        })
        .collect();
    let mut result = vec![f64::NAN; cols.len()];
    for (i, v) in answers.into_iter().flatten() {
        result[i] = v;
    }
    Ok(result)
}

/// Puts the value of every rank in `ranks` (ascending, distinct, each in
/// `base .. base + col.len()`) at its place, `col` holding positions from
/// `base` on. Selects the middle rank, then the ranks below it in the part
/// below and those above in the part above, so each level of the recursion
/// reads the column about once: O(R log m) for m ranks rather than one pass
/// of the remainder per rank. A rank next to a selected one is found by
/// `select_nth_unstable` at an end of its part, which is a single min/max scan.
fn select_ranks(col: &mut [f64], base: usize, ranks: &[usize]) {
    if ranks.is_empty() {
        return;
    }
    let mid = ranks.len() / 2;
    let at = ranks[mid] - base;
    col.select_nth_unstable_by(at, f64::total_cmp);
    let (below, above) = col.split_at_mut(at);
    select_ranks(below, base, &ranks[..mid]);
    select_ranks(&mut above[1..], ranks[mid] + 1, &ranks[mid + 1..]);
}

/// Per column of a row-major `n_rows x n_cols` matrix: how many values are
/// not NaN, the smallest and largest of them (NaN when none; `-0.0` counts
/// as below `+0.0`), and for each of `n_thresholds` thresholds per column
/// (`thresholds[c * n_thresholds + t]`) how many values are `<=` it and how
/// many `<` it (NaN compares false). Counts are `n_cols x n_thresholds`,
/// row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnSummary {
    pub n_defined: Vec<i64>,
    pub minimum: Vec<f64>,
    pub maximum: Vec<f64>,
    pub count_le: Vec<i64>,
    pub count_lt: Vec<i64>,
}

/// Rows per task of [`column_summary`].
const SUMMARY_ROWS: usize = 512;

/// One pass over the rows (blocks of rows in parallel, merged in order):
/// see [`ColumnSummary`]. Counts are integers and min/max are exact, so the
/// result does not depend on the thread count.
pub fn column_summary(
    values: &[f64],
    n_rows: usize,
    n_cols: usize,
    thresholds: &[f64],
    n_thresholds: usize,
) -> Result<ColumnSummary, KernelError> {
    let len = n_rows
        .checked_mul(n_cols)
        .ok_or_else(|| KernelError::invalid("n_rows * n_cols overflows"))?;
    crate::error::check_len("values length vs n_rows * n_cols", len, values.len())?;
    let n_thr = n_cols
        .checked_mul(n_thresholds)
        .ok_or_else(|| KernelError::invalid("n_cols * n_thresholds overflows"))?;
    crate::error::check_len(
        "thresholds length vs n_cols * n_thresholds",
        n_thr,
        thresholds.len(),
    )?;
    // Thresholds by (threshold, column), so the inner loops run along a row.
    let by_threshold: Vec<f64> = (0..n_thresholds)
        .flat_map(|t| (0..n_cols).map(move |c| thresholds[c * n_thresholds + t]))
        .collect();
    let empty = || Partial::new(n_cols, n_thresholds);
    if n_cols == 0 || n_rows == 0 {
        return Ok(empty().into_summary(n_cols, n_thresholds));
    }
    let total = values
        .par_chunks(SUMMARY_ROWS * n_cols)
        .map(|block| {
            let mut p = empty();
            crate::softmax::with_best_simd(
                #[inline(always)]
                || {
                    for row in block.chunks_exact(n_cols) {
                        p.add_row(row, &by_threshold);
                    }
                },
            );
            p
        })
        .reduce(empty, |mut a, b| {
            a.merge(&b);
            a
        });
    Ok(total.into_summary(n_cols, n_thresholds))
}

/// A block's counts, by (threshold, column). Min and max start at +inf and
/// -inf and keep the value a NaN never replaces (a NaN compares false); the
/// zeros seen are flagged by sign, so a zero extreme gets its sign from the
/// total order whatever the order of the values. Every update is a select,
/// not a branch, so the loops vectorise.
struct Partial {
    n: Vec<u64>,
    min: Vec<f64>,
    max: Vec<f64>,
    neg_zero: Vec<u8>,
    pos_zero: Vec<u8>,
    le: Vec<u64>,
    lt: Vec<u64>,
}

const NEG_ZERO_BITS: u64 = 1 << 63;

impl Partial {
    fn new(n_cols: usize, n_thresholds: usize) -> Self {
        Partial {
            n: vec![0; n_cols],
            min: vec![f64::INFINITY; n_cols],
            max: vec![f64::NEG_INFINITY; n_cols],
            neg_zero: vec![0; n_cols],
            pos_zero: vec![0; n_cols],
            le: vec![0; n_cols * n_thresholds],
            lt: vec![0; n_cols * n_thresholds],
        }
    }

    #[inline(always)]
    fn add_row(&mut self, row: &[f64], by_threshold: &[f64]) {
        let k = row.len();
        let (n, min, max) = (&mut self.n[..k], &mut self.min[..k], &mut self.max[..k]);
        let (neg, pos) = (&mut self.neg_zero[..k], &mut self.pos_zero[..k]);
        for c in 0..k {
            let x = row[c];
            n[c] += u64::from(!x.is_nan());
            min[c] = if x < min[c] { x } else { min[c] };
            max[c] = if x > max[c] { x } else { max[c] };
            neg[c] |= u8::from(x.to_bits() == NEG_ZERO_BITS);
            pos[c] |= u8::from(x.to_bits() == 0);
        }
        for (t, thr) in by_threshold.chunks_exact(k).enumerate() {
            let (le, lt) = (
                &mut self.le[t * k..(t + 1) * k],
                &mut self.lt[t * k..(t + 1) * k],
            );
            for c in 0..k {
                le[c] += u64::from(row[c] <= thr[c]);
                lt[c] += u64::from(row[c] < thr[c]);
            }
        }
    }

    fn merge(&mut self, b: &Partial) {
        for (x, y) in self.n.iter_mut().zip(&b.n) {
            *x += y;
        }
        for (x, &y) in self.min.iter_mut().zip(&b.min) {
            *x = if y < *x { y } else { *x };
        }
        for (x, &y) in self.max.iter_mut().zip(&b.max) {
            *x = if y > *x { y } else { *x };
        }
        for (x, y) in self.neg_zero.iter_mut().zip(&b.neg_zero) {
            *x |= y;
        }
        for (x, y) in self.pos_zero.iter_mut().zip(&b.pos_zero) {
            *x |= y;
        }
        for (x, y) in self.le.iter_mut().zip(&b.le) {
            *x += y;
        }
        for (x, y) in self.lt.iter_mut().zip(&b.lt) {
            *x += y;
        }
    }

    fn into_summary(self, n_cols: usize, n_thresholds: usize) -> ColumnSummary {
        let by_column = |v: &[u64]| -> Vec<i64> {
            (0..n_cols * n_thresholds)
                .map(|i| v[(i % n_thresholds) * n_cols + i / n_thresholds] as i64)
                .collect()
        };
        // A zero extreme takes the sign the total order gives it: -0.0 is
        // the smaller of the two zeros.
        let mut minimum = self.min;
        let mut maximum = self.max;
        for c in 0..n_cols {
            if self.n[c] == 0 {
                (minimum[c], maximum[c]) = (f64::NAN, f64::NAN);
            }
            if minimum[c] == 0.0 {
                minimum[c] = if self.neg_zero[c] != 0 { -0.0 } else { 0.0 };
            }
            if maximum[c] == 0.0 {
                maximum[c] = if self.pos_zero[c] != 0 { 0.0 } else { -0.0 };
            }
        }
        ColumnSummary {
            n_defined: self.n.iter().map(|&x| x as i64).collect(),
            minimum,
            maximum,
            count_le: by_column(&self.le),
            count_lt: by_column(&self.lt),
        }
    }
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

    /// A small deterministic generator of awkward values: ties, signed
    /// zeros, NaN and infinities.
    fn awkward(len: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                match state >> 59 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => f64::NAN,
                    3 => f64::INFINITY,
                    4 => f64::NEG_INFINITY,
                    _ => ((state >> 33) % 23) as f64 - 11.0,
                }
            })
            .collect()
    }

    #[test]
    fn many_columns_and_ranks_match_sorting() {
        // Many columns (each its own task), every second one with requests.
        let (n_rows, n_cols) = (301, 37);
        let v = awkward(n_rows * n_cols, 11);
        let (mut cols, mut ranks) = (Vec::new(), Vec::new());
        for c in (0..n_cols).step_by(2) {
            for r in [-1i64, 0, 1, 2, 7, 8, 150, 151, 290, 299, 300, 301, 8, 0] {
                cols.push(c as i64);
                ranks.push((r + c as i64) % 305 - 1);
            }
        }
        let got = order_statistics(&v, n_rows, n_cols, &cols, &ranks).unwrap();
        for ((&c, &r), g) in cols.iter().zip(&ranks).zip(&got) {
            let mut sorted: Vec<f64> = (0..n_rows)
                .map(|i| v[i * n_cols + c as usize])
                .filter(|x| !x.is_nan())
                .collect();
            sorted.sort_by(f64::total_cmp);
            match usize::try_from(r).ok().and_then(|r| sorted.get(r)) {
                Some(want) => assert_eq!(g.to_bits(), want.to_bits(), "col {c} rank {r}"),
                None => assert!(g.is_nan(), "col {c} rank {r}"),
            }
        }
    }

    #[test]
    fn column_summary_counts_by_hand() {
        // 3 rows x 2 columns; thresholds (0, 1) for column 0, (NaN, -0.0) for column 1.
        let v = [1.0, -0.0, f64::NAN, 0.0, -2.0, f64::NAN];
        let thr = [0.0, 1.0, f64::NAN, -0.0];
        let s = column_summary(&v, 3, 2, &thr, 2).unwrap();
        assert_eq!(s.n_defined, vec![2, 2]);
        assert_eq!(s.minimum[0], -2.0);
        assert_eq!(s.maximum[0], 1.0);
        assert_eq!(s.minimum[1].to_bits(), (-0.0f64).to_bits());
        assert_eq!(s.maximum[1].to_bits(), 0.0f64.to_bits());
        // Column 0: {1, -2}: <= 0: 1, <= 1: 2; < 0: 1, < 1: 1.
        // Column 1: {-0, +0}: NaN threshold: 0; <= -0.0: 2, < -0.0: 0.
        assert_eq!(s.count_le, vec![1, 2, 0, 2]);
        assert_eq!(s.count_lt, vec![1, 1, 0, 0]);
        let none = column_summary(&[f64::NAN, f64::NAN], 2, 1, &[], 0).unwrap();
        assert_eq!(none.n_defined, vec![0]);
        assert!(none.minimum[0].is_nan() && none.maximum[0].is_nan());
        assert!(column_summary(&v, 2, 2, &thr, 2).is_err());
        assert!(column_summary(&v, 3, 2, &thr, 1).is_err());
    }

    #[test]
    fn column_summary_matches_a_plain_count_over_many_blocks() {
        let (n_rows, n_cols, n_thr) = (3 * SUMMARY_ROWS + 17, 5, 3);
        let v = awkward(n_rows * n_cols, 5);
        let thr = awkward(n_cols * n_thr, 9);
        let s = column_summary(&v, n_rows, n_cols, &thr, n_thr).unwrap();
        for c in 0..n_cols {
            let col: Vec<f64> = (0..n_rows).map(|i| v[i * n_cols + c]).collect();
            let mut defined: Vec<f64> = col.iter().copied().filter(|x| !x.is_nan()).collect();
            defined.sort_by(f64::total_cmp);
            assert_eq!(s.n_defined[c], defined.len() as i64);
            assert_eq!(s.minimum[c].to_bits(), defined[0].to_bits());
            assert_eq!(s.maximum[c].to_bits(), defined[defined.len() - 1].to_bits());
            for t in 0..n_thr {
                let h = thr[c * n_thr + t];
                let le = col.iter().filter(|&&x| x <= h).count() as i64;
                let lt = col.iter().filter(|&&x| x < h).count() as i64;
                assert_eq!(s.count_le[c * n_thr + t], le);
                assert_eq!(s.count_lt[c * n_thr + t], lt);
            }
        }
    }
}
