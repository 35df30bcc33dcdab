use super::jackknife::acceleration;
use super::*;

struct Toy {
    y: Vec<i64>,
    pa: Vec<i64>,
    pb: Vec<i64>,
    ca: Vec<f64>,
    cb: Vec<f64>,
    ok_a: Vec<f64>,
    ok_b: Vec<f64>,
    tiers: Vec<i64>,
}

fn toy() -> Toy {
    let n = 400;
    let y: Vec<i64> = (0..n).map(|i| ((i * 7) % 5) as i64).collect();
    let pa: Vec<i64> = (0..n)
        .map(|i| {
            if i % 3 == 0 {
                ((i + 1) % 5) as i64
            } else {
                y[i]
            }
        })
        .collect();
    let pb: Vec<i64> = (0..n)
        .map(|i| {
            if i % 4 == 0 {
                ((i + 2) % 5) as i64
            } else {
                y[i]
            }
        })
        .collect();
    let ca = (0..n)
        .map(|i| 0.2 + 0.8 * ((i * 13) % 97) as f64 / 97.0)
        .collect();
    let cb = (0..n)
        .map(|i| 0.3 + 0.7 * ((i * 29) % 89) as f64 / 89.0)
        .collect();
    let ok = |p: &[i64]| -> Vec<f64> {
        y.iter()
            .zip(p)
            .map(|(a, b)| (a == b) as u8 as f64)
            .collect()
    };
    let (ok_a, ok_b) = (ok(&pa), ok(&pb));
    Toy {
        y,
        pa,
        pb,
        ca,
        cb,
        ok_a,
        ok_b,
        tiers: vec![0, 0, 1, 2, 2],
    }
}

fn problem(d: &Toy, n_tiers: usize, ct: &[i64]) -> Problem {
    Problem::new(&ProblemInput {
        labels: &d.y,
        preds: vec![&d.pa, &d.pb],
        n_classes: 5,
        class_tier: ct,
        n_tiers,
        statistics: vec![
            Statistic::MacroF1,
            Statistic::ExampleMean {
                values: vec![&d.ok_a, &d.ok_b],
            },
            Statistic::Binned {
                n_bins: 15,
                confidence: vec![&d.ca, &d.cb],
            },
            Statistic::ExampleMean {
                values: vec![&d.cb, &d.ca],
            },
        ],
    })
    .unwrap()
}

#[test]
fn resample_equals_eval_of_its_indices() {
    let d = toy();
    let p = problem(&d, 3, &d.tiers);
    let mut s = p.scratch::<u32>();
    let mut v = vec![0.0; 2 * p.n_stats()];
    let idx: Vec<usize> = resample_indices(400, 5, 3, 400).unwrap();
    p.draw(5, 3, &mut s);
    p.finish(&mut s, &mut v);
    assert_eq!(p.eval_indices(&[idx]).unwrap(), v);
}

#[test]
fn ranges_merge_and_threads_do_not_matter() {
    let d = toy();
    let p = problem(&d, 3, &d.tiers);
    let run = |threads: usize, start: u64, count: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| p.deltas(9, start, count).unwrap())
    };
    let whole = run(1, 0, 50);
    assert_eq!(whole, run(3, 0, 50));
    let mut merged = run(2, 0, 17);
    merged.extend(run(2, 17, 33));
    assert_eq!(whole, merged);
}

#[test]
fn jackknife_matches_recomputation() {
    let d = toy();
    let ct = [0i64; 5];
    for (n_tiers, tiers) in [(3, &d.tiers[..]), (1, &ct[..])] {
        let p = problem(&d, n_tiers, tiers);
        let fast = p.jackknife_accel();
        // Delete-one by brute force: weights all 1 except example j.
        let ns = p.n_stats();
        let mut thetas = vec![vec![0.0; p.n]; ns];
        let mut s = p.scratch::<u32>();
        let mut v = vec![0.0; 2 * ns];
        for j in 0..p.n {
            let mut w = vec![1u32; p.n];
            w[j] = 0;
            p.set_weights(&mut s, &w);
            p.finish(&mut s, &mut v);
            for st in 0..ns {
                thetas[st][j] = v[2 * st + 1] - v[2 * st];
            }
        }
        for st in 0..ns {
            let slow = acceleration(&thetas[st]);
            assert!(
                (fast[st] - slow).abs() <= 1e-9 * slow.abs().max(1e-3),
                "stat {st}: {} vs {slow}",
                fast[st]
            );
        }
    }
}

#[test]
fn identical_models_give_zero_deltas_and_nan_accel() {
    let mut d = toy();
    d.pb = d.pa.clone();
    d.cb = d.ca.clone();
    d.ok_b = d.ok_a.clone();
    let p = problem(&d, 3, &d.tiers);
    assert!(p
        .deltas(1, 0, 20)
        .unwrap()
        .iter()
        .all(|&x| x == 0.0 || x.is_nan()));
    assert!(p.jackknife_accel().iter().all(|a| a.is_nan()));
}

#[test]
fn full_data_hand_check() {
    let y = [0i64, 1, 1, 2];
    let pa = [0i64, 1, 0, 2];
    let pb = [0i64, 1, 1, 1];
    let ok_a = [1.0, 1.0, 0.0, 1.0];
    let ok_b = [1.0, 1.0, 1.0, 0.0];
    let p = Problem::new(&ProblemInput {
        labels: &y,
        preds: vec![&pa, &pb],
        n_classes: 3,
        class_tier: &[0, 0, 0],
        n_tiers: 1,
        statistics: vec![
            Statistic::ExampleMean {
                values: vec![&ok_a, &ok_b],
            },
            Statistic::MacroF1,
        ],
    })
    .unwrap();
    let v = p.full();
    assert_eq!(&v[..2], &[0.75, 0.75]);
    // A: F1 = [2/3, 2/3, 1]; B: F1 = [1, 0.8, 0]
    assert!((v[2] - (2.0 / 3.0 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-15);
    assert!((v[3] - 1.8 / 3.0).abs() < 1e-15);
}

#[test]
fn cell_and_example_paths_agree() {
    // 0/1 values, and the same values shifted by 0.5: the means differ by
    // exactly 0.5 in every resample, so the deltas agree.
    let d = toy();
    let shift = |v: &[f64]| -> Vec<f64> { v.iter().map(|x| x + 0.5).collect() };
    let (sa, sb) = (shift(&d.ok_a), shift(&d.ok_b));
    let make = |a: &[f64], b: &[f64]| {
        Problem::new(&ProblemInput {
            labels: &d.y,
            preds: vec![&d.pa, &d.pb],
            n_classes: 5,
            class_tier: &d.tiers,
            n_tiers: 3,
            statistics: vec![Statistic::ExampleMean { values: vec![a, b] }],
        })
        .unwrap()
    };
    let (cells, examples) = (make(&d.ok_a, &d.ok_b), make(&sa, &sb));
    let (x, y) = (
        cells.deltas(4, 0, 30).unwrap(),
        examples.deltas(4, 0, 30).unwrap(),
    );
    for (a, b) in x.iter().zip(&y) {
        assert!((a - b).abs() < 1e-12 || (a.is_nan() && b.is_nan()));
    }
}

#[test]
fn pair_mean_delta_is_its_value() {
    let d = toy();
    let churn: Vec<f64> =
        d.pa.iter()
            .zip(&d.pb)
            .map(|(a, b)| (a != b) as u8 as f64)
            .collect();
    let p = Problem::new(&ProblemInput {
        labels: &d.y,
        preds: vec![&d.pa, &d.pb],
        n_classes: 5,
        class_tier: &[0; 5],
        n_tiers: 1,
        statistics: vec![Statistic::PairMean {
            values: vec![&churn],
        }],
    })
    .unwrap();
    let full = p.full();
    let want = churn.iter().sum::<f64>() / churn.len() as f64;
    assert_eq!(full, vec![0.0, want]);
    let idx = resample_indices(400, 2, 0, 400).unwrap();
    let drawn = idx.iter().map(|&j| churn[j]).sum::<f64>() / 400.0;
    assert_eq!(p.deltas(2, 0, 1).unwrap(), vec![drawn]);
}

#[test]
fn bad_sizes_are_errors_not_aborts() {
    let d = toy();
    let p = problem(&d, 3, &d.tiers);
    assert!(p.deltas(0, 0, usize::MAX / 2).is_err());
    assert!(p.deltas(0, u64::MAX, 2).is_err());
    let bad = Problem::new(&ProblemInput {
        labels: &d.y,
        preds: vec![&d.pa, &d.pb],
        n_classes: 5,
        class_tier: &d.tiers,
        n_tiers: 3,
        statistics: vec![Statistic::Binned {
            n_bins: 70_000,
            confidence: vec![&d.ca, &d.cb],
        }],
    });
    assert!(matches!(bad, Err(KernelError::Invalid { .. })));
}

/// A third model: the toy's B with every fifth prediction moved.
fn third(d: &Toy) -> (Vec<i64>, Vec<f64>, Vec<f64>) {
    let pc: Vec<i64> =
        d.pb.iter()
            .enumerate()
            .map(|(i, &p)| if i % 5 == 0 { (p + 1) % 5 } else { p })
            .collect();
    let ok: Vec<f64> =
        d.y.iter()
            .zip(&pc)
            .map(|(a, b)| (a == b) as u8 as f64)
            .collect();
    let cc: Vec<f64> = d.cb.iter().map(|&c| (c * 0.9).min(1.0)).collect();
    (pc, ok, cc)
}

#[test]
fn each_variant_equals_its_own_pair() {
    // The reference and two variants on one draw: each variant's columns are
    // bit-identical to the 2-model problem (reference, variant).
    let d = toy();
    let (pc, ok_c, cc) = third(&d);
    let shifted: Vec<Vec<f64>> = [&d.ok_a, &d.ok_b, &ok_c]
        .iter()
        .map(|v| v.iter().map(|x| x * 0.7 + 0.1).collect())
        .collect();
    let build = |models: &[usize]| {
        let preds = [&d.pa[..], &d.pb[..], &pc[..]];
        let oks = [&d.ok_a[..], &d.ok_b[..], &ok_c[..]];
        let confs = [&d.ca[..], &d.cb[..], &cc[..]];
        let sh: Vec<&[f64]> = models.iter().map(|&m| &shifted[m][..]).collect();
        Problem::new(&ProblemInput {
            labels: &d.y,
            preds: models.iter().map(|&m| preds[m]).collect(),
            n_classes: 5,
            class_tier: &d.tiers,
            n_tiers: 3,
            statistics: vec![
                Statistic::MacroF1,
                Statistic::ExampleMean {
                    values: models.iter().map(|&m| oks[m]).collect(),
                },
                Statistic::Binned {
                    n_bins: 15,
                    confidence: models.iter().map(|&m| confs[m]).collect(),
                },
                Statistic::ExampleMean { values: sh },
            ],
        })
        .unwrap()
    };
    let all = build(&[0, 1, 2]);
    let ns = all.n_stats();
    assert_eq!(all.n_deltas(), 2 * ns);
    let three = all.deltas(8, 3, 40).unwrap();
    let full3 = all.full();
    let acc3 = all.jackknife_accel();
    for variant in [1usize, 2] {
        let pair = build(&[0, variant]);
        let two = pair.deltas(8, 3, 40).unwrap();
        let full2 = pair.full();
        let acc2 = pair.jackknife_accel();
        for st in 0..ns {
            for r in 0..40 {
                let (a, b) = (three[r * 2 * ns + st * 2 + variant - 1], two[r * ns + st]);
                assert!(
                    a.to_bits() == b.to_bits(),
                    "stat {st} resample {r}: {a} vs {b}"
                );
            }
            assert_eq!(
                full3[st * 3 + variant].to_bits(),
                full2[st * 2 + 1].to_bits()
            );
            assert_eq!(full3[st * 3].to_bits(), full2[st * 2].to_bits());
            let (x, y) = (acc3[st * 2 + variant - 1], acc2[st]);
            assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()));
        }
    }
}

#[test]
fn a_single_model_is_an_error() {
    let d = toy();
    let bad = Problem::new(&ProblemInput {
        labels: &d.y,
        preds: vec![&d.pa],
        n_classes: 5,
        class_tier: &d.tiers,
        n_tiers: 3,
        statistics: vec![Statistic::MacroF1],
    });
    assert!(matches!(bad, Err(KernelError::Invalid { .. })));
}

#[test]
fn each_statistic_alone_equals_it_among_others() {
    let d = toy();
    let all = problem(&d, 3, &d.tiers);
    let stats = || {
        vec![
            Statistic::MacroF1,
            Statistic::ExampleMean {
                values: vec![&d.ok_a[..], &d.ok_b[..]],
            },
            Statistic::Binned {
                n_bins: 15,
                confidence: vec![&d.ca[..], &d.cb[..]],
            },
            Statistic::ExampleMean {
                values: vec![&d.cb[..], &d.ca[..]],
            },
        ]
    };
    let whole = all.deltas(3, 0, 25).unwrap();
    let ns = all.n_stats();
    let per = all.n_groups;
    for (si, st) in stats().into_iter().enumerate() {
        let alone = Problem::new(&ProblemInput {
            labels: &d.y,
            preds: vec![&d.pa, &d.pb],
            n_classes: 5,
            class_tier: &d.tiers,
            n_tiers: 3,
            statistics: vec![st],
        })
        .unwrap();
        let got = alone.deltas(3, 0, 25).unwrap();
        for r in 0..25 {
            for g in 0..per {
                let (a, b) = (got[r * per + g], whole[r * ns + si * per + g]);
                assert!(
                    a.to_bits() == b.to_bits(),
                    "stat {si} group {g}: {a} vs {b}"
                );
            }
        }
    }
}
