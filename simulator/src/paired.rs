//! Paired comparisons: one metric of two designs (or two settings) on the same stream of each
//! replication — common random numbers — compared replication by replication. The difference's
//! mean, its Student's t 95% interval (n − 1 degrees of freedom, `statrs`), and the
//! standardized effect d_z (mean difference over the differences' standard deviation). A claim
//! holds when its interval lies wholly on its side of zero; with fewer than two replications
//! nothing can be concluded and the interval is unbounded.

use crate::design::Design;
use crate::metrics::Metrics;
use crate::run::Row;
use statrs::distribution::{ContinuousCDF, StudentsT};
use std::collections::BTreeMap;

/// A paired difference `a − b` over `n` replications.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    pub n: usize,
    pub mean: f64,
    /// The 95% interval of the mean difference.
    pub lo: f64,
    pub hi: f64,
    /// d_z: the mean difference in standard deviations of the differences (±∞ when they do
    /// not vary and are not all zero; 0 when all are zero).
    pub effect: f64,
}

impl Paired {
    /// Whether the difference is above zero: the interval's low end is.
    pub fn above_zero(&self) -> bool {
        self.lo > 0.0
    }

    /// The replications a run needs for this difference's 95% interval to clear zero at the
    /// effect size seen (the smallest n with t(n−1) / √n < |d_z|); `None` when there is no
    /// effect to resolve (a zero mean, or fewer than two replications).
    pub fn replications_to_resolve(&self) -> Option<usize> {
        let d = self.effect.abs();
        if self.n < 2 || self.mean == 0.0 || d == 0.0 {
            return None;
        }
        if !d.is_finite() {
            return Some(2);
        }
        (2..=1_000_000usize).find(|&n| t975(n - 1) / (n as f64).sqrt() < d)
    }

    /// `+1.5 (95% CI [0.9, 2.1], d_z 1.3)`.
    pub fn describe(&self, unit: &str) -> String {
        let bound = |v: f64| {
            if v.is_finite() {
                format!("{v:.1}")
            } else if v > 0.0 {
                "∞".into()
            } else {
                "−∞".into()
            }
        };
        let effect = if self.effect.is_finite() {
            format!("{:.2}", self.effect)
        } else if self.effect > 0.0 {
            "∞ (no variation)".into()
        } else {
            "−∞ (no variation)".into()
        };
        format!(
            "{:+.1}{unit} (95% CI [{}, {}], d_z {effect}, n = {})",
            self.mean,
            bound(self.lo),
            bound(self.hi),
            self.n
        )
    }
}

/// The t critical value for a two-sided 95% interval with `df` degrees of freedom.
fn t975(df: usize) -> f64 {
    StudentsT::new(0.0, 1.0, df as f64).map(|t| t.inverse_cdf(0.975)).unwrap_or(f64::INFINITY)
}

/// The paired statistics of `diffs` (one per replication).
pub fn paired(diffs: &[f64]) -> Paired {
    let n = diffs.len();
    if n == 0 {
        return Paired { n, mean: 0.0, lo: f64::NEG_INFINITY, hi: f64::INFINITY, effect: 0.0 };
    }
    let mean = diffs.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return Paired { n, mean, lo: f64::NEG_INFINITY, hi: f64::INFINITY, effect: 0.0 };
    }
    let var = diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let sd = var.sqrt();
    let half = t975(n - 1) * sd / (n as f64).sqrt();
    let effect = if sd > 0.0 {
        mean / sd
    } else if mean == 0.0 {
        0.0
    } else {
        mean.signum() * f64::INFINITY
    };
    Paired { n, mean, lo: mean - half, hi: mean + half, effect }
}

/// Per replication seed, `metric` of `design` in `scenario`.
pub fn by_seed(rows: &[Row], scenario: &str, design: Design, metric: &str) -> BTreeMap<u64, f64> {
    let i = Metrics::NAMES.iter().position(|n| *n == metric).unwrap_or(0);
    rows.iter()
        .filter(|r| r.scenario == scenario && r.design == design && r.params.0.is_empty())
        .map(|r| (r.seed, r.metrics.values()[i]))
        .collect()
}

/// `a − scale·b` for each seed both have.
pub fn differences(a: &BTreeMap<u64, f64>, b: &BTreeMap<u64, f64>, scale: f64) -> Vec<f64> {
    a.iter().filter_map(|(seed, x)| b.get(seed).map(|y| x - scale * y)).collect()
}
