//! What a run reports: `results.csv` / `sweep.csv`, the per-design summaries with confidence
//! intervals, the comparison tables, and `report.md` (whether each seed claim holds).

use crate::decide::Decider;
use crate::design::Design;
use crate::metrics::Metrics;
use crate::params;
use crate::run::{Row, Runner};
use crate::scenario::Scenario;

/// `results.csv` (one row per scenario × design × replication) or, when the rows carry swept
/// parameters, `sweep.csv` (one per scenario × design × parameter values × replication, a
/// column per parameter).
pub fn csv(rows: &[Row]) -> String {
    let params: Vec<&str> =
        rows.first().map(|r| r.params.0.iter().map(|(p, _)| p.name()).collect()).unwrap_or_default();
    let mut head = vec!["scenario", "design"];
    head.extend(&params);
    head.push("seed");
    head.extend(Metrics::NAMES);
    let mut out = head.join(",");
    out.push('\n');
    for r in rows {
        let mut cells = vec![r.scenario.clone(), r.design.name().to_string()];
        cells.extend(r.params.0.iter().map(|(_, v)| format!("{v}")));
        cells.push(r.seed.to_string());
        cells.extend(r.metrics.values().iter().map(|v| format!("{v}")));
        out.push_str(&cells.join(","));
        out.push('\n');
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
    let cols = [
        "blast_radius",
        "blast_radius_weighted",
        "exposure_window_s",
        "failed_tasks",
        "credentials_issued",
        "policy_decisions",
        "rotations",
    ];
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
                let v: Vec<f64> =
                    rows.iter().filter(|r| r.scenario == s && r.design == d).map(|r| r.metrics.values()[i]).collect();
                let (mean, ci) = mean_ci(&v);
                out.push_str(&format!(" {:>24}", format!("{mean:.1} ± {ci:.1}")));
            }
            out.push('\n');
        }
    }
    out
}

/// The TTL of the "very short TTL" check in the report, seconds.
pub const SHORT_TTL_S: u64 = 60;

/// Mean ± CI of `metric` over the rows of one scenario and design.
pub fn stat(rows: &[Row], scenario: &str, design: Design, metric: &str) -> (f64, f64) {
    let i = Metrics::NAMES.iter().position(|n| *n == metric).unwrap_or(0);
    let v: Vec<f64> =
        rows.iter().filter(|r| r.scenario == scenario && r.design == design).map(|r| r.metrics.values()[i]).collect();
    mean_ci(&v)
}

/// `report.md`: the comparison per scenario, then — plainly, with the CIs — whether each of
/// the seeds' claims holds in this run. The short-TTL check replays JIT on the same streams
/// with a TTL of [`SHORT_TTL_S`].
pub fn report(scenarios: &[Scenario], rows: &[Row], seed: u64, replications: u64, decider: &mut dyn Decider) -> String {
    report_with(&Runner::default(), scenarios, rows, seed, replications, decider).unwrap_or_default()
}

/// [`report`], its replays over the runner's threads.
pub fn report_with(
    runner: &Runner<'_>,
    scenarios: &[Scenario],
    rows: &[Row],
    seed: u64,
    replications: u64,
    decider: &mut dyn Decider,
) -> Result<String, String> {
    let mut out = format!(
        "# writ-sim report\n\nSeed {seed} (ChaCha8), {replications} replications per scenario; every design on the same event stream of each replication. Means ± 95% confidence half-widths (normal approximation) in the table; each claim below is a paired comparison on the same streams, with Student's t 95% interval and effect size d_z, and holds when its interval is wholly above zero.\n"
    );
    for s in scenarios {
        out.push_str(&format!(
            "\n- {}: {:.0} days, the first {:.0} left out (warm-up); rotation every {:.0} days{}, a credential's TTL {} s.",
            s.name,
            s.horizon_hours / 24.0,
            s.warmup_hours / 24.0,
            s.design.rotation_period_s as f64 / 86_400.0,
            if s.design.rotation_by_protocol.is_empty() { "" } else { " (some protocols on their own period)" },
            s.design.ttl_s,
        ));
    }
    out.push_str("\n\n```");
    out.push_str(table(rows).trim_end());
    out.push_str("\n```\n\n## The seeds' claims\n\n");
    let fmt = |(m, ci): (f64, f64)| format!("{m:.1} ± {ci:.1}");
    let verdict = |h: bool| if h { "**holds**" } else { "**does not hold** in this run" };
    for s in scenarios {
        let name = s.name.as_str();
        let c = crate::claims::Claims::evaluate(runner, s, rows, seed, replications, decider)?;
        let (window, leaks, tenfold, raw, tenfold_need, failing) =
            (&c.window, &c.leaks, &c.tenfold, &c.raw, &c.tenfold_need, &c.failing);
        let [holds1, holds2, holds_need, holds3] = c.holds();
        // A task whose steps all fall within the short TTL cannot outlive its credential:
        // there the claim cannot be tested, which is not the same as failing.
        let longest = s.workflows.iter().flat_map(|w| w.steps.iter().map(|st| st.at)).max().unwrap_or(0);
        let verdict3 = if longest < SHORT_TTL_S && !holds3 {
            format!("**not testable here** (every task's steps fall within {SHORT_TTL_S} s)")
        } else {
            verdict(holds3).to_string()
        };
        out.push_str(&format!(
            "### {name}\n\n\
             - Rotation-only leaves the active window and duplicated copies usable: {} — rotation-only − Writ on the same streams: exposure window {}; exposed copies obtained {}.\n\
             - JIT with intent checks (Writ) shrinks blast radius by an order of magnitude: {} — rotation-only − 10 × Writ: {} (rotation-only {} vs Writ {} (resource, action) pairs; rotation-only − Writ {}). Within the workflows' need (pairs some task uses): {} — rotation-only − 10 × Writ: {} (rotation-only {} vs Writ {}).\n\
             - Very short TTLs raise failed tasks: {} — JIT failed tasks at a {} s TTL − at {} s: {}.\n\
             - Precision: replications for each interval to clear zero at the effect seen — {} (this run: {replications}).\n\n",
            verdict(holds1),
            window.describe(" s"),
            leaks.describe(""),
            verdict(holds2),
            tenfold.describe(""),
            fmt(stat(rows, name, Design::RotationOnly, "blast_radius")),
            fmt(stat(rows, name, Design::Writ, "blast_radius")),
            raw.describe(""),
            verdict(holds_need),
            tenfold_need.describe(""),
            fmt(stat(rows, name, Design::RotationOnly, "blast_radius_in_need")),
            fmt(stat(rows, name, Design::Writ, "blast_radius_in_need")),
            verdict3,
            SHORT_TTL_S,
            s.design.ttl_s,
            failing.describe(""),
            [("window", window), ("tenfold", tenfold), ("tenfold within need", tenfold_need), ("short TTLs", failing)]
                .iter()
                .map(|(k, p)| format!(
                    "{k} {}",
                    p.replications_to_resolve().map_or("— (no effect)".to_string(), |n| n.to_string())
                ))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    Ok(out)
}

/// Rows grouped by (scenario, design, parameter values), in order of first appearance.
fn groups(rows: &[Row]) -> Vec<(&str, Design, &params::Assignment, Vec<&Row>)> {
    let mut out: Vec<(&str, Design, &params::Assignment, Vec<&Row>)> = Vec::new();
    for r in rows {
        match out.iter_mut().find(|(s, d, a, _)| *s == r.scenario && *d == r.design && **a == r.params) {
            Some(g) => g.3.push(r),
            None => out.push((r.scenario.as_str(), r.design, &r.params, vec![r])),
        }
    }
    out
}

fn metric_stats(rows: &[&Row]) -> serde_json::Map<String, serde_json::Value> {
    let mut metrics = serde_json::Map::new();
    for (i, name) in Metrics::NAMES.iter().enumerate() {
        let v: Vec<f64> = rows.iter().map(|r| r.metrics.values()[i]).collect();
        let (mean, ci) = mean_ci(&v);
        metrics.insert((*name).into(), serde_json::json!({ "mean": mean, "ci95": ci }));
    }
    metrics
}

/// `sweep-summary.json`: per scenario, design and parameter values, mean ± CI of every metric.
pub fn sweep_summary(rows: &[Row]) -> serde_json::Value {
    let cells: Vec<serde_json::Value> = groups(rows)
        .into_iter()
        .map(|(s, d, a, mine)| {
            let params: serde_json::Map<String, serde_json::Value> =
                a.0.iter().map(|(p, v)| (p.name().to_string(), serde_json::json!(v))).collect();
            serde_json::json!({ "scenario": s, "design": d.name(), "params": params, "metrics": metric_stats(&mine) })
        })
        .collect();
    serde_json::Value::Array(cells)
}

/// The table `writ-sim sweep` prints: per scenario, each design under each combination.
pub fn sweep_table(rows: &[Row]) -> String {
    let cols = ["blast_radius", "exposure_window_s", "failed_tasks", "credentials_issued"];
    let mut out = String::new();
    let mut last = "";
    for (s, d, a, mine) in groups(rows) {
        if s != last {
            out.push_str(&format!("\n{s}\n{:<18} {:<28}", "design", "parameters"));
            for c in cols {
                out.push_str(&format!(" {c:>22}"));
            }
            out.push('\n');
            last = s;
        }
        out.push_str(&format!("{:<18} {:<28}", d.name(), a.label()));
        for c in cols {
            let v: Vec<f64> = mine.iter().filter_map(|r| r.metrics.get(c)).collect();
            let (mean, ci) = mean_ci(&v);
            out.push_str(&format!(" {:>22}", format!("{mean:.1} ± {ci:.1}")));
        }
        out.push('\n');
    }
    out
}
