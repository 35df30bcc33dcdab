//! Binned top-1 calibration: per-bin counts and sums for ECE and reliability
//! diagrams, with equal-width (given edges) or equal-mass bins.

use crate::error::{check_len, try_zeros, KernelError};

/// Sufficient statistics of each bin; ECE and the reliability table follow.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BinSums {
    pub count: Vec<u64>,
    pub sum_conf: Vec<f64>,
    pub sum_correct: Vec<f64>,
}

impl BinSums {
    /// Empty bins; an error, not an abort, when they do not fit in memory.
    fn zeros(n_bins: usize) -> Result<Self, KernelError> {
        Ok(BinSums {
            count: try_zeros("bins", n_bins)?,
            sum_conf: try_zeros("bins", n_bins)?,
            sum_correct: try_zeros("bins", n_bins)?,
        })
    }

    fn add(&mut self, b: usize, conf: f64, correct: bool) {
        self.count[b] += 1;
        self.sum_conf[b] += conf;
        self.sum_correct[b] += correct as u8 as f64;
    }

    /// `sum_b |B_b|/n * |acc(B_b) - conf(B_b)|` (Python computes ECE from
    /// the sums; this checks them in tests).
    #[cfg(test)]
    fn ece(&self) -> f64 {
        let n: u64 = self.count.iter().sum();
        if n == 0 {
            return f64::NAN;
        }
        let mut total = 0.0;
        for b in 0..self.count.len() {
            // |B|/n * |acc - conf| = |sum_correct - sum_conf| / n
            total += (self.sum_correct[b] - self.sum_conf[b]).abs();
        }
        total / n as f64
    }
}

fn check_inputs(conf: &[f64], correct: &[bool]) -> Result<(), KernelError> {
    check_len(
        "correct length vs confidence length",
        conf.len(),
        correct.len(),
    )?;
    if let Some(i) = conf.iter().position(|c| !(0.0..=1.0).contains(c)) {
        return Err(KernelError::Invalid {
            message: format!("confidence[{i}] = {} is not in [0, 1]", conf[i]),
        });
    }
    Ok(())
}

/// Bins by the given increasing `edges` (B + 1 of them, 0 and 1 at the ends).
///
/// `right_closed = true`: bin b holds `edge_b < c <= edge_{b+1}`, bin 0 also
/// `c = 0` (docs/conventions.md, Calibration; Guo et al.). `false`: `edge_b <= c < edge_{b+1}`, the last
/// bin closed (netcal's rule).
pub fn bin_by_edges(
    conf: &[f64],
    correct: &[bool],
    edges: &[f64],
    right_closed: bool,
) -> Result<BinSums, KernelError> {
    check_inputs(conf, correct)?;
    if edges.len() < 2 || edges.windows(2).any(|w| w[0] >= w[1]) {
        return Err(KernelError::Invalid {
            message: "edges must be at least 2 strictly increasing values".into(),
        });
    }
    let n_bins = edges.len() - 1;
    let mut sums = BinSums::zeros(n_bins)?;
    let (lo, hi) = (edges[0], edges[n_bins]);
    for (&c, &ok) in conf.iter().zip(correct) {
        // Guess the bin as if the edges were uniform, then step to the exact
        // one: O(1) for np.linspace edges, still correct for any others.
        let guess = ((c - lo) / (hi - lo) * n_bins as f64).max(0.0) as usize;
        let mut b = guess.min(n_bins - 1);
        if right_closed {
            // edge_b < c <= edge_{b+1}; bin 0 also takes c <= edge_0
            while b > 0 && c <= edges[b] {
                b -= 1;
            }
            while b + 1 < n_bins && c > edges[b + 1] {
                b += 1;
            }
        } else {
            // edge_b <= c < edge_{b+1}; the last bin also takes c >= its top
            while b > 0 && c < edges[b] {
                b -= 1;
            }
            while b + 1 < n_bins && c >= edges[b + 1] {
                b += 1;
            }
        }
        sums.add(b, c, ok);
    }
    Ok(sums)
}

/// Equal-mass (adaptive) bins: examples sorted by confidence (ties by index),
/// bin b takes sorted positions `[floor(b n / B), floor((b + 1) n / B))`.
/// Returns the sums and each bin's (lowest, highest) confidence.
pub fn bin_equal_mass(
    conf: &[f64],
    correct: &[bool],
    n_bins: usize,
) -> Result<(BinSums, Vec<(f64, f64)>), KernelError> {
    check_inputs(conf, correct)?;
    if n_bins == 0 {
        return Err(KernelError::Invalid {
            message: "n_bins must be >= 1".into(),
        });
    }
    let n = conf.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| conf[a].total_cmp(&conf[b]).then(a.cmp(&b)));
    let mut sums = BinSums::zeros(n_bins)?;
    let mut ranges = try_zeros::<(f64, f64)>("bins", n_bins)?;
    ranges.fill((f64::NAN, f64::NAN));
    for b in 0..n_bins {
        // In u128: b * n cannot overflow.
        let at = |b: usize| (b as u128 * n as u128 / n_bins as u128) as usize;
        let (lo, hi) = (at(b), at(b + 1));
        for &i in &order[lo..hi] {
            sums.add(b, conf[i], correct[i]);
        }
        if hi > lo {
            ranges[b] = (conf[order[lo]], conf[order[hi - 1]]);
        }
    }
    Ok((sums, ranges))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges(b: usize) -> Vec<f64> {
        (0..=b).map(|i| i as f64 / b as f64).collect()
    }

    #[test]
    fn hand_computed_ece() {
        // Two bins: [0, .5] and (.5, 1]. Bin 0: confs .2 .4, one right -> |0.5 - 0.3|
        // Bin 1: confs .9 .7 1.0, two right -> |2/3 - 0.8667|
        let conf = [0.2, 0.4, 0.9, 0.7, 1.0];
        let ok = [true, false, true, false, true];
        let s = bin_by_edges(&conf, &ok, &edges(2), true).unwrap();
        assert_eq!(s.count, vec![2, 3]);
        let want =
            (2.0 / 5.0) * (0.5f64 - 0.3).abs() + (3.0 / 5.0) * (2.0f64 / 3.0 - 2.6 / 3.0).abs();
        assert!((s.ece() - want).abs() < 1e-12);
    }

    #[test]
    fn edge_rules() {
        let conf = [0.0, 0.5, 1.0];
        let ok = [true; 3];
        let right = bin_by_edges(&conf, &ok, &edges(2), true).unwrap();
        assert_eq!(right.count, vec![2, 1]); // 0 and 0.5 in bin 0, 1.0 in the last bin
        let left = bin_by_edges(&conf, &ok, &edges(2), false).unwrap();
        assert_eq!(left.count, vec![1, 2]); // 0.5 opens bin 1; 1.0 in the closed last bin
    }

    #[test]
    fn equal_mass_sizes_and_ranges() {
        let conf = [0.9, 0.1, 0.5, 0.3, 0.7];
        let ok = [true, false, true, false, true];
        let (s, r) = bin_equal_mass(&conf, &ok, 2).unwrap();
        assert_eq!(s.count, vec![2, 3]);
        assert_eq!(r, vec![(0.1, 0.3), (0.5, 0.9)]);
        assert_eq!(s.sum_correct, vec![0.0, 3.0]);
    }

    #[test]
    fn bins_match_a_binary_search_for_any_edges() {
        let conf: Vec<f64> = (0..=2000).map(|i| i as f64 / 2000.0).collect();
        let ok = vec![true; conf.len()];
        let uneven = [0.0, 0.01, 0.5, 0.51, 0.9, 1.0];
        for e in [edges(15), edges(7), uneven.to_vec()] {
            for right in [true, false] {
                let s = bin_by_edges(&conf, &ok, &e, right).unwrap();
                let mut want = vec![0u64; e.len() - 1];
                for &c in &conf {
                    let pos = if right {
                        e.partition_point(|&x| x < c)
                    } else {
                        e.partition_point(|&x| x <= c)
                    };
                    want[pos.saturating_sub(1).min(e.len() - 2)] += 1;
                }
                assert_eq!(s.count, want);
            }
        }
    }

    #[test]
    fn rejects_bad_confidence() {
        assert!(bin_by_edges(&[1.5], &[true], &edges(2), true).is_err());
        assert!(bin_by_edges(&[0.5], &[true, false], &edges(2), true).is_err());
        assert!(bin_by_edges(&[0.5], &[true], &[0.0, 0.0, 1.0], true).is_err());
    }
}
