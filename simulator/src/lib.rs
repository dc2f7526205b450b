//! `writ-sim`: replays multi-agent workflows under six credential designs, injects breaches
//! (exposed credential copies used after a delay, hijacked agents), and measures what an
//! attacker reaches and what each design costs. The Writ design decides every intent with the
//! real Writ component (or `writ-core` natively) under the simulated clock.

pub mod decide;
pub mod scenario;
pub mod sim;

use decide::Decider;
use scenario::Scenario;
use sim::{Design, Metrics, Stream};

/// One row of results: a scenario × design × replication.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub scenario: String,
    pub design: Design,
    pub seed: u64,
    pub metrics: Metrics,
}

/// The seed of replication `r` of a run seeded `seed`.
pub fn replication_seed(seed: u64, r: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(r)
}

/// Every design on the same event stream of each replication.
pub fn compare(scenarios: &[Scenario], seed: u64, replications: u64, decider: &mut dyn Decider) -> Vec<Row> {
    let mut rows = Vec::new();
    for s in scenarios {
        for r in 0..replications {
            let rs = replication_seed(seed, r);
            let stream = Stream::draw(s, rs);
            for d in Design::ALL {
                rows.push(Row { scenario: s.name.clone(), design: d, seed: rs, metrics: sim::run(s, &stream, d, decider) });
            }
        }
    }
    rows
}

/// `results.csv`: one row per scenario × design × replication.
pub fn csv(rows: &[Row]) -> String {
    let mut out = format!("scenario,design,seed,{}\n", Metrics::NAMES.join(","));
    for r in rows {
        let values: Vec<String> = r.metrics.values().iter().map(|v| format!("{v}")).collect();
        out.push_str(&format!("{},{},{},{}\n", r.scenario, r.design.name(), r.seed, values.join(",")));
    }
    out
}

/// Mean and 95% confidence half-width (normal approximation).
pub fn mean_ci(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, 1.96 * (var / n).sqrt())
}

/// Per scenario and design: mean ± CI of every metric.
pub fn summary(rows: &[Row]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    let scenarios: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.scenario.as_str()).collect();
    for s in scenarios {
        let mut per_design = serde_json::Map::new();
        for d in Design::ALL {
            let mine: Vec<&Row> = rows.iter().filter(|r| r.scenario == s && r.design == d).collect();
            let mut metrics = serde_json::Map::new();
            for (i, name) in Metrics::NAMES.iter().enumerate() {
                let v: Vec<f64> = mine.iter().map(|r| r.metrics.values()[i]).collect();
                let (mean, ci) = mean_ci(&v);
                metrics.insert((*name).into(), serde_json::json!({ "mean": mean, "ci95": ci }));
            }
            per_design.insert(d.name().into(), serde_json::Value::Object(metrics));
        }
        out.insert(s.into(), serde_json::Value::Object(per_design));
    }
    serde_json::Value::Object(out)
}

/// The comparison table printed by `writ-sim compare`.
pub fn table(rows: &[Row]) -> String {
    let cols = ["blast_radius", "blast_radius_weighted", "exposure_window_s", "failed_tasks", "credentials_issued", "policy_decisions"];
    let mut out = String::new();
    let scenarios: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.scenario.as_str()).collect();
    for s in scenarios {
        out.push_str(&format!("\n{s}\n{:<18}", "design"));
        for c in cols {
            out.push_str(&format!(" {c:>24}"));
        }
        out.push('\n');
        for d in Design::ALL {
            out.push_str(&format!("{:<18}", d.name()));
            for c in cols {
                let i = Metrics::NAMES.iter().position(|n| *n == c).unwrap_or(0);
                let v: Vec<f64> = rows.iter().filter(|r| r.scenario == s && r.design == d).map(|r| r.metrics.values()[i]).collect();
                let (mean, ci) = mean_ci(&v);
                out.push_str(&format!(" {:>24}", format!("{mean:.1} ± {ci:.1}")));
            }
            out.push('\n');
        }
    }
    out
}
