//! Running replications: every design on the same event stream of each replication, the
//! replications spread over threads (each with its own fork of the decider), the rows always
//! in the same order — so the bytes of every output depend on the seed, never on the threads.

use crate::decide::Decider;
use crate::design::Design;
use crate::events;
use crate::metrics::Metrics;
use crate::params::Assignment;
use crate::scenario::Scenario;
use crate::stream::Stream;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One row of results: a scenario × design × replication (× parameter values in a sweep).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub scenario: String,
    pub design: Design,
    /// The swept parameters' values (empty outside a sweep).
    pub params: Assignment,
    pub seed: u64,
    pub metrics: Metrics,
}

/// The seed of replication `r` of a run seeded `seed`.
pub fn replication_seed(seed: u64, r: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(r)
}

/// How a run is spread and reported.
pub struct Runner<'a> {
    /// Worker threads (each gets its own decider).
    pub threads: usize,
    /// Called once per finished job (a replication of one scenario).
    pub progress: &'a (dyn Fn() + Sync),
}

impl Default for Runner<'_> {
    fn default() -> Self {
        Runner { threads: 1, progress: &|| {} }
    }
}

impl Runner<'_> {
    /// `f` on every job index, over the threads; results in job order. The first worker uses
    /// `decider`, the others forks of it.
    pub fn map<T: Send>(
        &self,
        jobs: usize,
        decider: &mut dyn Decider,
        f: impl Fn(usize, &mut dyn Decider) -> T + Sync,
    ) -> Result<Vec<T>, String> {
        let threads = self.threads.clamp(1, jobs.max(1));
        let mut forks: Vec<Box<dyn Decider>> = (1..threads).map(|_| decider.fork()).collect::<Result<_, _>>()?;
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<T>>> = Mutex::new((0..jobs).map(|_| None).collect());
        let work = |d: &mut dyn Decider| {
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= jobs {
                    break;
                }
                let r = f(j, d);
                results.lock().unwrap_or_else(|p| p.into_inner())[j] = Some(r);
                (self.progress)();
            }
        };
        std::thread::scope(|scope| {
            for fork in &mut forks {
                let work = &work;
                scope.spawn(move || work(fork.as_mut()));
            }
            work(decider);
        });
        let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
        results
            .into_iter()
            .collect::<Option<Vec<T>>>()
            .ok_or_else(|| "a worker thread stopped before its job finished".to_string())
    }
}

/// Every design on one replication's stream.
fn replication(s: &Scenario, params: &Assignment, seed: u64, decider: &mut dyn Decider) -> Vec<Row> {
    let stream = Stream::draw(s, seed);
    Design::ALL
        .into_iter()
        .map(|d| Row {
            scenario: s.name.clone(),
            design: d,
            params: params.clone(),
            seed,
            metrics: events::run(s, &stream, d, decider),
        })
        .collect()
}

/// Every design on the same event stream of each replication, on one thread.
pub fn compare(scenarios: &[Scenario], seed: u64, replications: u64, decider: &mut dyn Decider) -> Vec<Row> {
    let jobs = scenarios.len() * replications as usize;
    // One thread forks nothing, so this cannot fail.
    Runner::default()
        .map(jobs, decider, |j, d| job(scenarios, seed, replications, j, d))
        .map(|v| v.concat())
        .unwrap_or_default()
}

fn job(scenarios: &[Scenario], seed: u64, replications: u64, j: usize, d: &mut dyn Decider) -> Vec<Row> {
    let (si, r) = (j / replications as usize, j as u64 % replications);
    replication(&scenarios[si], &Assignment::default(), replication_seed(seed, r), d)
}

/// [`compare`] over the runner's threads.
pub fn compare_with(
    runner: &Runner<'_>,
    scenarios: &[Scenario],
    seed: u64,
    replications: u64,
    decider: &mut dyn Decider,
) -> Result<Vec<Row>, String> {
    let jobs = scenarios.len() * replications as usize;
    Ok(runner.map(jobs, decider, |j, d| job(scenarios, seed, replications, j, d))?.concat())
}

/// Every design under every combination of the swept parameters: the same replication
/// seeds for every combination, so each combination sees the same draws.
pub fn sweep(
    runner: &Runner<'_>,
    scenarios: &[Scenario],
    grid: &[Assignment],
    seed: u64,
    replications: u64,
    decider: &mut dyn Decider,
) -> Result<Vec<Row>, String> {
    // Every combination applied (and validated) up front: a bad value fails before any run.
    let mut variants = Vec::new();
    for s in scenarios {
        for a in grid {
            variants.push((a.apply(s)?, a.clone()));
        }
    }
    let jobs = variants.len() * replications as usize;
    let rows = runner.map(jobs, decider, |j, d| {
        let (vi, r) = (j / replications as usize, j as u64 % replications);
        let (s, a) = &variants[vi];
        replication(s, a, replication_seed(seed, r), d)
    })?;
    Ok(rows.concat())
}

/// JIT's failed tasks per replication seed with the TTL set to `ttl_s` (the report's
/// short-TTL check), on the same streams as the main run.
pub fn jit_failed_tasks(
    runner: &Runner<'_>,
    s: &Scenario,
    ttl_s: u64,
    seed: u64,
    replications: u64,
    decider: &mut dyn Decider,
) -> Result<std::collections::BTreeMap<u64, f64>, String> {
    let mut short = s.clone();
    short.design.ttl_s = ttl_s;
    // A refresh margin keeps its share of the lifetime: one at or past the short TTL would
    // never let a refreshed credential last (and the scenario forbids it).
    short.design.refresh_before_s = match s.design.ttl_s {
        0 => 0,
        t => s.design.refresh_before_s.saturating_mul(ttl_s) / t,
    };
    let failed = runner.map(replications as usize, decider, |r, d| {
        let seed = replication_seed(seed, r as u64);
        (seed, events::run(&short, &Stream::draw(&short, seed), Design::Jit, d).failed_tasks as f64)
    })?;
    Ok(failed.into_iter().collect())
}
