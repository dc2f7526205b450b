//! Global sensitivity of the seeds' claims over every assumption: each parameter's plausible
//! range (written here with its reason), a tornado (one parameter at a time at each end of its
//! range, the others at the scenario's values), a Latin-hypercube sample of the whole space
//! with the share of it where each claim holds, and first-order variance indices estimated
//! from that sample (the share of a claim statistic's variance its parameter's quartile
//! explains). Every point plays the same replication seeds. At each point a claim holds (its
//! paired 95% interval above zero), is contradicted (below zero) or is unresolved (the
//! interval spans zero: too few replications for the effect there).

use crate::claims::{Claims, KEYS};
use crate::decide::Decider;
use crate::params::{Assignment, Param};
use crate::run::{self, Runner};
use crate::scenario::Scenario;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A parameter's plausible range.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub param: Param,
    pub low: f64,
    pub high: f64,
    /// Sampled evenly in its logarithm (rates and durations spanning orders of magnitude).
    pub log: bool,
    pub why: &'static str,
}

/// The ranges analysed: every breach assumption and the two design periods.
pub fn ranges() -> Vec<Range> {
    let r = |param, low, high, log, why| Range { param, low, high, log, why };
    vec![
        r(Param::Exposure, 0.1, 5.0, true, "the cited 44% read as within ten years … within two months"),
        r(Param::Hijack, 0.1, 12.0, true, "no published rate: once a decade … monthly"),
        r(Param::Exploit, 60.0, 86_400.0, true, "a minute (honeypot reports) … a day"),
        r(Param::Dwell, 86_400.0, 100.0 * 86_400.0, true, "a day … M-Trends' long tail"),
        r(Param::Remediation, 0.002, 0.2, true, "a tenth … ten times the GitGuardian-derived hazard"),
        r(Param::Duplication, 0.3, 0.9, false, "around the cited 62%"),
        r(Param::MemoryTheft, 0.0, 0.5, false, "no published figure"),
        r(Param::OffboardedLive, 0.5, 1.0, false, "around the cited 91%"),
        r(Param::Rotation, 86_400.0, 90.0 * 86_400.0, true, "daily … quarterly rotation"),
        r(Param::Ttl, 300.0, 3600.0, true, "five minutes … an hour"),
    ]
}

impl Range {
    /// The value at position `u` ∈ [0, 1] of the range.
    pub fn at(&self, u: f64) -> f64 {
        let v = if self.log {
            (self.low.ln() + u * (self.high.ln() - self.low.ln())).exp()
        } else {
            self.low + u * (self.high - self.low)
        };
        // Durations are whole seconds.
        if self.param.is_duration() { v.round() } else { v }
    }
}

/// One evaluated point of the parameter space.
#[derive(Debug, Clone)]
pub struct Point {
    /// `base`, `low` / `high` (tornado, with `moved`), or `sample`.
    pub kind: &'static str,
    /// The parameter a tornado point moved.
    pub moved: Option<Param>,
    pub values: Assignment,
    pub claims: Claims,
}

/// The claims of `s` under `a`, over `replications` seeds.
fn evaluate(
    runner: &Runner<'_>,
    s: &Scenario,
    a: &Assignment,
    seed: u64,
    replications: u64,
    decider: &mut dyn Decider,
) -> Result<Claims, String> {
    let s = a.apply(s)?;
    let rows = run::compare_with(runner, std::slice::from_ref(&s), seed, replications, decider)?;
    Claims::evaluate(runner, &s, &rows, seed, replications, decider)
}

/// The analysis of one scenario: the base point, the tornado's, and `samples` Latin-hypercube
/// points.
pub fn analyse(
    runner: &Runner<'_>,
    s: &Scenario,
    samples: usize,
    seed: u64,
    replications: u64,
    decider: &mut dyn Decider,
) -> Result<Vec<Point>, String> {
    let ranges = ranges();
    let mut points = vec![Point {
        kind: "base",
        moved: None,
        values: Assignment::default(),
        claims: evaluate(runner, s, &Assignment::default(), seed, replications, decider)?,
    }];
    for r in &ranges {
        for (kind, end) in [("low", 0.0), ("high", 1.0)] {
            let a = Assignment(vec![(r.param, r.at(end))]);
            let claims = evaluate(runner, s, &a, seed, replications, decider)?;
            points.push(Point { kind, moved: Some(r.param), values: a, claims });
        }
    }
    // Latin hypercube: each parameter's range cut in `samples` strata, each stratum used once.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5e5e_5e5e);
    let strata: Vec<Vec<usize>> = ranges
        .iter()
        .map(|_| {
            let mut order: Vec<usize> = (0..samples).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.gen_range(0..=i));
            }
            order
        })
        .collect();
    for i in 0..samples {
        let values = ranges
            .iter()
            .zip(&strata)
            .map(|(r, order)| (r.param, r.at((order[i] as f64 + rng.r#gen::<f64>()) / samples as f64)))
            .collect();
        let a = Assignment(values);
        let claims = evaluate(runner, s, &a, seed, replications, decider)?;
        points.push(Point { kind: "sample", moved: None, values: a, claims });
    }
    Ok(points)
}

/// The first-order index of `param` for claim `k` over the sampled points: the variance of
/// the claim statistic's mean across the parameter's quartiles, over its total variance
/// (NaN, shown `—`, under 40 samples).
pub fn first_order(points: &[Point], param: Param, k: usize) -> f64 {
    let sampled: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.kind == "sample")
        .filter_map(|p| Some((p.values.get(param)?, p.claims.statistics()[k])))
        .collect();
    let n = sampled.len();
    // Four quartiles of fewer than ten points each estimate noise, not an index.
    if n < 40 {
        return f64::NAN;
    }
    let mean = sampled.iter().map(|x| x.1).sum::<f64>() / n as f64;
    let total = sampled.iter().map(|x| (x.1 - mean).powi(2)).sum::<f64>() / n as f64;
    if total <= 0.0 {
        return 0.0;
    }
    let mut by_x = sampled.clone();
    by_x.sort_by(|a, b| a.0.total_cmp(&b.0));
    let bins = 4;
    let between: f64 = (0..bins)
        .map(|b| {
            let part = &by_x[b * n / bins..(b + 1) * n / bins];
            let m = part.iter().map(|x| x.1).sum::<f64>() / part.len().max(1) as f64;
            part.len() as f64 * (m - mean).powi(2)
        })
        .sum::<f64>()
        / n as f64;
    between / total
}

/// `sensitivity.md` for the analysed scenarios.
pub fn report(analyses: &[(String, Vec<Point>)], samples: usize, seed: u64, replications: u64) -> String {
    let ranges = ranges();
    let mut out = format!(
        "# writ-sim sensitivity\n\nSeed {seed} (ChaCha8), {replications} replications per point, the same seeds at every point; {samples} Latin-hypercube samples of the ranges below, plus a tornado (each parameter at each end, the others at the scenario's values). A claim holds at a point when its paired 95% interval is wholly above zero.\n\n| parameter | range | why |\n|---|---|---|\n"
    );
    for r in &ranges {
        out.push_str(&format!(
            "| `{}` | {} … {}{} | {} |\n",
            r.param.name(),
            r.low,
            r.high,
            if r.log { " (log)" } else { "" },
            r.why
        ));
    }
    for (name, points) in analyses {
        out.push_str(&format!("\n## {name}\n\n"));
        let sampled: Vec<&Point> = points.iter().filter(|p| p.kind == "sample").collect();
        let base = points.iter().find(|p| p.kind == "base");
        out.push_str("| claim | at the scenario's values | sampled points where it holds / is contradicted / is unresolved | where it does not hold |\n|---|---|---|---|\n");
        for (k, claim) in crate::claims::NAMES.iter().enumerate() {
            let holding: Vec<&&Point> = sampled.iter().filter(|p| p.claims.holds()[k]).collect();
            let failing: Vec<&&Point> = sampled.iter().filter(|p| !p.claims.holds()[k]).collect();
            // Where it fails: the parameter whose position in its range differs most between
            // failing and holding points.
            let position = |p: &Point, r: &Range| {
                let v = p.values.get(r.param).unwrap_or(r.low);
                if r.log { (v.ln() - r.low.ln()) / (r.high.ln() - r.low.ln()) } else { (v - r.low) / (r.high - r.low) }
            };
            let mean_pos =
                |set: &[&&Point], r: &Range| set.iter().map(|p| position(p, r)).sum::<f64>() / set.len().max(1) as f64;
            let fails_where = if failing.is_empty() {
                "nowhere sampled".to_string()
            } else if holding.is_empty() {
                "everywhere sampled".to_string()
            } else {
                let (r, gap) = ranges
                    .iter()
                    .map(|r| (r, mean_pos(&failing, r) - mean_pos(&holding, r)))
                    .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                    .unwrap_or((&ranges[0], 0.0));
                format!(
                    "mostly at {} `{}` (failing points sit {:.0}% of its range {} the holding ones)",
                    if gap > 0.0 { "high" } else { "low" },
                    r.param.name(),
                    gap.abs() * 100.0,
                    if gap > 0.0 { "above" } else { "below" }
                )
            };
            let contradicted = sampled.iter().filter(|p| p.claims.contradicted()[k]).count();
            let at_base = base.map_or("—", |b| {
                if b.claims.holds()[k] {
                    "holds"
                } else if b.claims.contradicted()[k] {
                    "**contradicted**"
                } else {
                    "unresolved"
                }
            });
            out.push_str(&format!(
                "| {claim} | {at_base} | {} / {contradicted} / {} of {} ({:.0}% hold) | {fails_where} |\n",
                holding.len(),
                sampled.len() - holding.len() - contradicted,
                sampled.len(),
                100.0 * holding.len() as f64 / sampled.len().max(1) as f64,
            ));
        }
        out.push_str("\nTornado — each claim's mean paired difference with one parameter at the low / high end of its range (base: ");
        if let Some(b) = base {
            let stats = b.claims.statistics();
            out.push_str(&KEYS.iter().zip(stats).map(|(k, v)| format!("{k} {v:.1}")).collect::<Vec<_>>().join(", "));
        }
        out.push_str("); first-order index S from the sample:\n\n| parameter |");
        for k in KEYS {
            out.push_str(&format!(" {k} low / high | S |"));
        }
        out.push_str("\n|---|");
        for _ in KEYS {
            out.push_str("---|---|");
        }
        out.push('\n');
        for r in &ranges {
            let at = |kind: &str| points.iter().find(|p| p.kind == kind && p.moved == Some(r.param));
            out.push_str(&format!("| `{}` |", r.param.name()));
            for k in 0..KEYS.len() {
                let v = |p: Option<&Point>| p.map_or("—".to_string(), |p| format!("{:.1}", p.claims.statistics()[k]));
                let s = first_order(points, r.param, k);
                let s = if s.is_nan() { "—".to_string() } else { format!("{s:.2}") };
                out.push_str(&format!(" {} / {} | {s} |", v(at("low")), v(at("high"))));
            }
            out.push('\n');
        }
    }
    out
}

/// `sensitivity.csv`: one row per scenario and evaluated point.
pub fn csv(analyses: &[(String, Vec<Point>)]) -> String {
    let ranges = ranges();
    let mut out = String::from("scenario,kind,moved");
    for r in &ranges {
        out.push_str(&format!(",{}", r.param.name()));
    }
    for k in KEYS {
        out.push_str(&format!(",{k},{k}_lo,{k}_hi,{k}_holds"));
    }
    out.push('\n');
    for (name, points) in analyses {
        for p in points {
            out.push_str(&format!("{name},{},{}", p.kind, p.moved.map_or("", |m| m.name())));
            for r in &ranges {
                out.push_str(&format!(",{}", p.values.get(r.param).map_or(String::new(), |v| v.to_string())));
            }
            let c = &p.claims;
            for (d, holds) in [&c.window, &c.tenfold, &c.tenfold_need, &c.failing].iter().zip(c.holds()) {
                out.push_str(&format!(",{},{},{},{holds}", d.mean, d.lo, d.hi));
            }
            out.push('\n');
        }
    }
    out
}
