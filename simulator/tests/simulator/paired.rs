//! Paired comparisons: Student's t intervals, degenerate samples, the replications an effect
//! needs, pairing by seed.

use std::collections::BTreeMap;
use writ_simulator::paired::{Paired, differences, paired};

#[test]
fn the_interval_is_students_t_and_degenerate_samples_say_so() {
    // Differences 1, 2, 3: mean 2, sd 1, t(2) = 4.303 → half-width 4.303 / √3 = 2.484.
    let p = paired(&[1.0, 2.0, 3.0]);
    assert!((p.mean - 2.0).abs() < 1e-12);
    assert!((p.hi - p.mean - 2.4843).abs() < 1e-3, "{p:?}");
    assert!((p.effect - 2.0).abs() < 1e-12);
    assert!(!p.above_zero(), "an interval reaching below zero does not show a difference");
    assert!(paired(&[5.0, 6.0, 5.5, 6.5, 5.0]).above_zero());
    // One replication concludes nothing; constant differences are exact.
    assert!(!paired(&[9.0]).above_zero());
    let constant = paired(&[3.0, 3.0, 3.0]);
    assert!(constant.above_zero() && constant.effect.is_infinite());
    assert_eq!(paired(&[0.0, 0.0]).effect, 0.0);
    assert!(paired(&[]).describe(" s").contains("n = 0"));
}

#[test]
fn the_replications_to_resolve_an_effect_are_where_its_interval_clears_zero() {
    // d_z 2 (differences 1, 2, 3): t(n−1)/√n < 2 first at n = 4 (t(3) = 3.182, /2 = 1.59;
    // at n = 3, 4.303/1.732 = 2.48).
    let p = paired(&[1.0, 2.0, 3.0]);
    assert_eq!(p.replications_to_resolve(), Some(4));
    // A small effect needs many: d_z 0.2 → about (1.96/0.2)² ≈ 99.
    let small = Paired { n: 30, mean: 0.2, lo: -1.0, hi: 1.0, effect: 0.2 };
    let n = small.replications_to_resolve().unwrap();
    assert!((97..=101).contains(&n), "{n}");
    assert_eq!(paired(&[0.0, 0.0, 0.0]).replications_to_resolve(), None);
    assert_eq!(paired(&[3.0, 3.0]).replications_to_resolve(), Some(2));
}

#[test]
fn differences_pair_by_seed() {
    let a: BTreeMap<u64, f64> = [(1, 10.0), (2, 20.0), (3, 30.0)].into();
    let b: BTreeMap<u64, f64> = [(2, 1.0), (3, 2.0), (4, 3.0)].into();
    assert_eq!(differences(&a, &b, 10.0), vec![10.0, 10.0]);
}
