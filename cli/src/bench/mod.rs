//! `writ bench`: replay requests against a policy pack and report latency percentiles and
//! throughput, through the component and natively (writ-core, the same rules compiled for
//! the host) in the same run, with their ratio. Defaults: the shipped pack and requests
//! generated from its entities.

mod requests;

use crate::{PolicySource, Usage, load_source};
use clap::{Args, ValueEnum};
use requests::{Request, generated_requests, read_requests};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use writ_types::{Identity, Intent, Proof};

/// Which implementation of the rules decides.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Decider {
    /// Through the Writ component (wasmtime).
    Component,
    /// writ-core called directly (the comparison floor; needs the `native` feature).
    Native,
    /// Both, in the same run, with the component/native ratio (needs the `native` feature).
    Both,
}

/// Both where this `writ` can run writ-core natively, else the component alone.
const DEFAULT_DECIDER: &str = if cfg!(feature = "native") { "both" } else { "component" };

#[derive(Args)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    source: PolicySource,
    /// Requests, one JSON object per line: an intent
    /// (`{"principal":…,"action":…,"resource":"Type::\"id\"","task":…,"context":{…}}`) or an
    /// AuthZEN evaluation (`{"subject":{"type":"Agent","id":…},"action":{"name":…},
    /// "resource":{"type":…,"id":…},"context":{…}}`, the task in `context.task_id`).
    /// Default: requests generated from the shipped pack's entities.
    #[arg(long, value_name = "FILE.jsonl")]
    requests: Option<PathBuf>,
    /// Which implementation decides (default: both when built with the `native` feature).
    #[arg(long, alias = "engine", value_enum, default_value = DEFAULT_DECIDER)]
    decider: Decider,
    /// Seconds each engine replays the requests.
    #[arg(long, value_name = "S", default_value_t = 3.0)]
    duration: f64,
    /// Threads replaying at once (each with its own instance or engine).
    #[arg(long, value_name = "N", default_value_t = 1)]
    threads: usize,
    /// Answer repeated requests from the decision memo (as a deployed Writ does); by default
    /// every request is evaluated, which is what the policies cost.
    #[arg(long)]
    memo: bool,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

/// What one decider measured.
#[derive(Debug, Clone)]
pub(crate) struct Figures {
    pub engine: &'static str,
    pub calls: u64,
    pub wall_s: f64,
    /// Sorted latencies, microseconds.
    pub latencies_us: Vec<f64>,
    pub allow: u64,
    pub deny: u64,
    /// Decisions that carried an evaluation or request error (still denies).
    pub errors: u64,
}

impl Figures {
    pub fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((p / 100.0) * (self.latencies_us.len() - 1) as f64).round() as usize;
        self.latencies_us[i.min(self.latencies_us.len() - 1)]
    }

    pub fn throughput(&self) -> f64 {
        self.calls as f64 / self.wall_s.max(1e-9)
    }

    fn json(&self) -> Value {
        json!({
            "engine": self.engine, "calls": self.calls, "wall_s": self.wall_s, "throughput_per_s": self.throughput(),
            "p50_us": self.percentile(50.0), "p90_us": self.percentile(90.0), "p99_us": self.percentile(99.0), "p99_9_us": self.percentile(99.9),
            "allow": self.allow, "deny": self.deny, "errors": self.errors,
        })
    }
}

/// (allow, had errors) of one decision.
type Outcome = (bool, bool);

/// Replay `requests` on `threads` threads for `duration`; `make` builds each thread's decider.
fn replay<D>(
    engine: &'static str,
    requests: &[Request],
    threads: usize,
    duration: Duration,
    make: impl Fn() -> Result<D, String>,
) -> Result<Figures, String>
where
    D: FnMut(&Request) -> Result<Outcome, String> + Send,
{
    let deciders = (0..threads.max(1)).map(|_| make()).collect::<Result<Vec<D>, String>>()?;
    let start = Instant::now();
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = deciders
            .into_iter()
            .enumerate()
            .map(|(t, mut decide)| {
                s.spawn(move || -> Result<(Vec<f64>, u64, u64, u64), String> {
                    let (mut lat, mut allow, mut deny, mut errors) = (Vec::new(), 0, 0, 0);
                    let mut i = t * requests.len() / threads.max(1);
                    while start.elapsed() < duration {
                        let r = &requests[i % requests.len()];
                        let t0 = Instant::now();
                        let (ok, err) = decide(r)?;
                        lat.push(t0.elapsed().as_secs_f64() * 1e6);
                        if ok {
                            allow += 1;
                        } else {
                            deny += 1;
                        }
                        errors += u64::from(err);
                        i += 1;
                    }
                    Ok((lat, allow, deny, errors))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a bench thread panicked".into())))
            .collect::<Vec<_>>()
    });
    let wall_s = start.elapsed().as_secs_f64();
    let mut f = Figures { engine, calls: 0, wall_s, latencies_us: Vec::new(), allow: 0, deny: 0, errors: 0 };
    for r in results {
        let (lat, allow, deny, errors) = r?;
        f.calls += lat.len() as u64;
        f.latencies_us.extend(lat);
        f.allow += allow;
        f.deny += deny;
        f.errors += errors;
    }
    f.latencies_us.sort_by(f64::total_cmp);
    Ok(f)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn trust_domain(spiffe_id: &str) -> String {
    spiffe_id.trim_start_matches("spiffe://").split('/').next().unwrap_or("").to_string()
}

/// The requests as identities and intents (what both deciders take), built once before the
/// timed runs, and each request's index among them.
struct Prepared<'a> {
    calls: Vec<(Identity, Intent)>,
    index: HashMap<&'a Request, usize>,
}

impl<'a> Prepared<'a> {
    fn new(requests: &'a [Request]) -> Prepared<'a> {
        let expires = now() + 3600;
        let calls = requests
            .iter()
            .map(|r| {
                let who = Identity {
                    spiffe_id: r.principal.clone(),
                    trust_domain: trust_domain(&r.principal),
                    expires_at: expires,
                    thumbprint: String::new(),
                    proof: Proof::X509Svid,
                    claims: Default::default(),
                };
                let what = Intent {
                    action: r.action.clone(),
                    resource: r.resource.clone(),
                    task_id: r.task.clone(),
                    context: r.context.clone(),
                    input: String::new(),
                };
                (who, what)
            })
            .collect();
        Prepared { calls, index: requests.iter().enumerate().map(|(i, r)| (r, i)).collect() }
    }

    fn get(&self, r: &Request) -> &(Identity, Intent) {
        &self.calls[self.index.get(r).copied().unwrap_or(0)]
    }
}

/// writ-core called natively: the same rules compiled for the host (built only with the
/// `native` feature, the one place `writ` links writ-core).
#[cfg(feature = "native")]
fn native(
    pack: &(String, Option<String>, Option<String>),
    requests: &[Request],
    threads: usize,
    duration: Duration,
    memo: bool,
) -> Result<Figures, String> {
    let prepared = Prepared::new(requests);
    replay("native", requests, threads, duration, || {
        let mut rules = writ_core::Writ::default();
        rules.set_decision_memo(memo);
        rules.set_policies(&pack.0, pack.1.as_deref(), pack.2.as_deref()).map_err(|e| e.to_string())?;
        // Against a ledger, as the component's `check` decides (cut-offs, task records).
        let (ledger, crypto) = (writ_core::MemoryLedger::new(), writ_core::crypto::RustCrypto::new());
        let prepared = &prepared;
        Ok(move |r: &Request| {
            let (who, what) = prepared.get(r);
            let d = rules.decide(who, what, now(), 0, &ledger, &crypto);
            Ok((d.allow, !d.errors.is_empty()))
        })
    })
}

#[cfg(not(feature = "native"))]
fn native(
    _: &(String, Option<String>, Option<String>),
    _: &[Request],
    _: usize,
    _: Duration,
    _: bool,
) -> Result<Figures, String> {
    Err("this `writ` was built without the `native` feature, so it cannot run writ-core natively: build it with `cargo build --release -p writ-cli --features native`, or use `--decider component`".into())
}

fn component(
    pack: &(String, Option<String>, Option<String>),
    requests: &[Request],
    threads: usize,
    duration: Duration,
    memo: bool,
) -> Result<Figures, String> {
    let writ = writ_host::Writ::builder().build().map_err(|e| e.to_string())?;
    writ.set_decision_memo(memo).map_err(|e| e.to_string())?;
    writ.set_policies(&pack.0, pack.1.as_deref(), pack.2.as_deref()).map_err(|e| e.to_string())?;
    let prepared = Prepared::new(requests);
    // Each principal asserted once (proof `asserted`: a benchmark names principals, it holds no
    // SVIDs), as a server attests each caller once per connection.
    let mut asserted: HashMap<&str, writ_host::Attested> = HashMap::new();
    for (who, _) in &prepared.calls {
        if !asserted.contains_key(who.spiffe_id.as_str()) {
            let a = writ.assert_identity(&who.spiffe_id, who.expires_at, "writ bench").map_err(|e| e.to_string())?;
            asserted.insert(&who.spiffe_id, a);
        }
    }
    replay("component", requests, threads, duration, || {
        let writ = writ.clone();
        let (prepared, asserted) = (&prepared, &asserted);
        Ok(move |r: &Request| {
            let (who, what) = prepared.get(r);
            let who = asserted.get(who.spiffe_id.as_str()).ok_or("an unasserted principal")?;
            let d = writ.check(who, what).map_err(|e| e.to_string())?;
            Ok((d.allow, !d.errors.is_empty()))
        })
    })
}

pub(crate) fn run(args: BenchArgs) -> Result<ExitCode, Usage> {
    let pack = load_source(&args.source)?;
    let (requests, origin) = match &args.requests {
        Some(p) => (read_requests(p)?, p.display().to_string()),
        None => (generated_requests(), "generated from the shipped pack's entities".to_string()),
    };
    if !(args.duration > 0.0 && args.duration.is_finite()) {
        return Err(Usage(format!("--duration is {}; it must be above 0", args.duration)));
    }
    let duration = Duration::from_secs_f64(args.duration);
    let threads = args.threads.max(1);
    let policies = writ_host::Writ::builder()
        .build()
        .and_then(|w| w.set_policies(&pack.0, pack.1.as_deref(), pack.2.as_deref()))
        .map_err(|e| Usage(format!("the policies do not load: {e}")))?;
    let mut figures = Vec::new();
    if matches!(args.decider, Decider::Native | Decider::Both) {
        figures.push(native(&pack, &requests, threads, duration, args.memo).map_err(Usage)?);
    }
    if matches!(args.decider, Decider::Component | Decider::Both) {
        figures.push(component(&pack, &requests, threads, duration, args.memo).map_err(Usage)?);
    }
    let ratio = match (figures.iter().find(|f| f.engine == "native"), figures.iter().find(|f| f.engine == "component"))
    {
        (Some(n), Some(c)) if n.percentile(50.0) > 0.0 => Some(c.percentile(50.0) / n.percentile(50.0)),
        _ => None,
    };
    if args.json {
        let v = json!({
            "policies": policies, "requests": requests.len(), "requests_from": origin, "threads": threads,
            "duration_s": args.duration, "memo": args.memo, "engines": figures.iter().map(Figures::json).collect::<Vec<_>>(),
            "component_native_p50": ratio,
        });
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "writ bench: {policies} policies, {} requests ({origin}), {} s per engine, {threads} thread{}, decision memo {}",
        requests.len(),
        args.duration,
        if threads == 1 { "" } else { "s" },
        if args.memo { "on" } else { "off (every request evaluated)" }
    );
    println!(
        "{:<10} {:>10} {:>12} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>7}",
        "engine", "calls", "calls/s", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "allow", "deny", "errors"
    );
    for f in &figures {
        println!(
            "{:<10} {:>10} {:>12.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>8} {:>8} {:>7}",
            f.engine,
            f.calls,
            f.throughput(),
            f.percentile(50.0),
            f.percentile(90.0),
            f.percentile(99.0),
            f.percentile(99.9),
            f.allow,
            f.deny,
            f.errors
        );
    }
    if let Some(r) = ratio {
        println!("component/native p50: {r:.2}×");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_read_the_sorted_latencies() {
        let f = Figures {
            engine: "x",
            calls: 100,
            wall_s: 2.0,
            latencies_us: (1..=100).map(f64::from).collect(),
            allow: 1,
            deny: 99,
            errors: 0,
        };
        assert_eq!((f.percentile(50.0), f.percentile(99.0), f.percentile(100.0)), (51.0, 99.0, 100.0));
        assert_eq!(f.throughput(), 50.0);
    }
}
