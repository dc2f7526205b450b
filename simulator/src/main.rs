//! `writ-sim compare | sweep | sensitivity | import-otel | bench`: every design on the same event streams; tables on
//! stdout, results, summaries, the report and SVG plots into `--out`, wall-clock timings into
//! `timing.json` (outside the reproducible set).

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use writ_simulator::Runner;
use writ_simulator::decide::{Counting, Decider};
use writ_simulator::design::Design;
use writ_simulator::scenario::Scenario;

#[derive(Parser)]
#[command(name = "writ-sim", version, about = "Blast radius of credential designs under simulated breaches")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which implementation of the rules decides the Writ design's intents.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DecidedBy {
    /// The Writ component through writ-host.
    Component,
    /// writ-core natively.
    Native,
}

#[derive(Args, Clone)]
struct PolicyArgs {
    /// Cedar policies the Writ design decides with: a file, or a directory of `*.cedar`
    /// files. Default: the shipped pack (`policies/`) with its schema and entities.
    #[arg(long)]
    policies: Option<PathBuf>,
    /// A Cedar schema for `--policies`.
    #[arg(long)]
    schema: Option<PathBuf>,
    /// Cedar entities (JSON) for `--policies`.
    #[arg(long)]
    entities: Option<PathBuf>,
}

impl PolicyArgs {
    fn pack(&self) -> Result<writ_host::pack::Pack, String> {
        writ_host::pack::Pack::load(self.policies.as_slice(), self.schema.as_deref(), self.entities.as_deref())
    }
}

#[derive(Args)]
struct Common {
    /// Scenario files (TOML). Default: every shipped scenario (`simulator/scenarios/*.toml`).
    scenarios: Vec<PathBuf>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 30)]
    replications: u64,
    /// Who decides the Writ design's intents.
    #[arg(long, alias = "engine", value_enum, default_value = "component")]
    decider: DecidedBy,
    /// Worker threads (default: one per core). Outputs do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Where results go.
    #[arg(long, default_value = "sim-out")]
    out: PathBuf,
    #[command(flatten)]
    policy: PolicyArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run every design on the scenarios.
    Compare(Common),
    /// Run every design under every combination of parameter values.
    Sweep {
        #[command(flatten)]
        common: Common,
        /// NAME=V1,V2,… (repeatable): ttl, rotation, grace, refresh, dwell, exploit (durations:
        /// 90, 15m, 1h, 30d), duplication, offboarded_live, memory_theft (probabilities) or exposure,
        /// hijack (per year), remediation (per day).
        #[arg(long = "param", required = true)]
        params: Vec<String>,
    },
    /// Global sensitivity of the seeds' claims: a tornado and a Latin-hypercube sample over
    /// every assumption's plausible range, the share of it where each claim holds.
    Sensitivity {
        #[command(flatten)]
        common: Common,
        /// Latin-hypercube samples of the parameter space (besides the tornado's 21 points).
        #[arg(long, default_value_t = 16)]
        samples: usize,
        /// Run each scenario over this many days instead of its own horizon (a warm-up longer
        /// than a sixth of it is cut to a sixth).
        #[arg(long)]
        horizon_days: Option<f64>,
    },
    /// A scenario from OpenTelemetry traces (OTLP JSON with GenAI spans: `invoke_agent`,
    /// `execute_tool`, MCP `tools/call`): one workflow per distinct sequence of tool calls, at
    /// the rate observed; breach and design defaults to edit.
    ImportOtel {
        /// The OTLP JSON trace file.
        traces: PathBuf,
        /// The scenario's name (default: the file's stem).
        #[arg(long)]
        name: Option<String>,
        /// Agents become `spiffe://<trust-domain>/agent/<gen_ai.agent.name>`.
        #[arg(long, default_value = "acme.example")]
        trust_domain: String,
        /// The sensitivity (0–3) of every tool.
        #[arg(long, default_value_t = 1)]
        sensitivity: u8,
        /// Where to write the scenario (TOML); default: stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Decisions per second with the component in the loop and natively, on the Writ design.
    Bench {
        scenarios: Vec<PathBuf>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 30)]
        replications: u64,
        #[arg(long)]
        threads: Option<usize>,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        policy: PolicyArgs,
    },
}

fn shipped() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "toml")).collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn load(files: &[PathBuf]) -> Result<Vec<Scenario>, String> {
    let files = if files.is_empty() { shipped() } else { files.to_vec() };
    if files.is_empty() {
        return Err("no scenario files".into());
    }
    files.iter().map(|f| Scenario::load(f).map_err(|e| e.to_string())).collect()
}

fn decider(by: DecidedBy, policy: &PolicyArgs) -> Result<Box<dyn Decider>, String> {
    let pack = policy.pack()?;
    match by {
        DecidedBy::Component => writ_simulator::decide::Component::with_pack(pack).map(|d| Box::new(d) as _),
        DecidedBy::Native => writ_simulator::decide::Native::with_pack(pack).map(|d| Box::new(d) as _),
    }
}

fn threads(n: Option<usize>) -> usize {
    n.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1)
}

fn decider_name(e: DecidedBy) -> &'static str {
    match e {
        DecidedBy::Component => "component",
        DecidedBy::Native => "native",
    }
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} replications, eta {eta}") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    pb
}

fn write(out: &Path, files: &[(String, String)]) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create `{}`: {e}", out.display()))?;
    for (name, text) in files {
        if let Some(dir) = out.join(name).parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
        }
        std::fs::write(out.join(name), text)
            .map_err(|e| format!("cannot write `{}`: {e}", out.join(name).display()))?;
    }
    Ok(())
}

fn timing(by: DecidedBy, threads: usize, wall: f64, rows: usize, decisions: u64) -> String {
    let per_s = if wall > 0.0 { decisions as f64 / wall } else { 0.0 };
    format!(
        "{:#}\n",
        serde_json::json!({ "engine": decider_name(by), "threads": threads, "wall_s": wall, "rows": rows, "policy_decisions": decisions, "decisions_per_s": per_s })
    )
}

/// The generator and seed every output carries.
fn run_json(seed: u64, replications: u64, key: &str, results: serde_json::Value) -> serde_json::Value {
    serde_json::json!({ "rng": "ChaCha8", "seed": seed, "replications": replications, key: results })
}

fn run_label(seed: u64, replications: u64) -> String {
    format!("seed {seed} (ChaCha8), {replications} replications")
}

fn compare(c: Common) -> Result<(), String> {
    let scenarios = load(&c.scenarios)?;
    let mut d = decider(c.decider, &c.policy)?;
    let threads = threads(c.threads);
    let pb = bar(scenarios.len() as u64 * c.replications * 2, "compare");
    let tick = || pb.inc(1);
    let runner = Runner { threads, progress: &tick };
    let start = Instant::now();
    let rows = writ_simulator::run::compare_with(&runner, &scenarios, c.seed, c.replications, d.as_mut())?;
    let report = writ_simulator::report_with(&runner, &scenarios, &rows, c.seed, c.replications, d.as_mut())?;
    let wall = start.elapsed().as_secs_f64();
    pb.finish_and_clear();
    println!(
        "writ-sim compare: {} scenarios × 6 designs × {} replications, seed {} (ChaCha8)",
        scenarios.len(),
        c.replications,
        c.seed
    );
    print!("{}", writ_simulator::table(&rows));
    let mut files = vec![
        ("results.csv".to_string(), writ_simulator::csv(&rows)),
        (
            "summary.json".to_string(),
            format!("{:#}\n", run_json(c.seed, c.replications, "scenarios", writ_simulator::summary(&rows))),
        ),
        ("report.md".to_string(), report),
    ];
    for s in &scenarios {
        files.push((
            format!("compare-{}.svg", s.name),
            writ_simulator::plot::compare(&rows, &s.name, &run_label(c.seed, c.replications))?,
        ));
    }
    for s in &scenarios {
        for design in writ_simulator::design::Design::ALL {
            let graph = writ_simulator::opengraph::graph(s, design);
            files.push((format!("opengraph/{}-{}.json", s.name, design.name()), format!("{graph:#}\n")));
        }
    }
    let decisions = rows.iter().map(|r| r.metrics.policy_decisions).sum();
    files.push(("timing.json".to_string(), timing(c.decider, threads, wall, rows.len(), decisions)));
    write(&c.out, &files)?;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).filter(|n| !n.starts_with("opengraph/")).collect();
    println!(
        "\nwrote into {}: {}, opengraph/ (one attack graph per scenario and design)",
        c.out.display(),
        names.join(", ")
    );
    Ok(())
}

fn sensitivity(c: Common, samples: usize, horizon_days: Option<f64>) -> Result<(), String> {
    let mut scenarios = load(&c.scenarios)?;
    if let Some(days) = horizon_days {
        for s in &mut scenarios {
            s.horizon_hours = days * 24.0;
            s.warmup_hours = s.warmup_hours.min(s.horizon_hours / 6.0);
            s.check().map_err(|e| format!("`--horizon-days {days}` for `{}`: {e}", s.name))?;
        }
    }
    let mut d = decider(c.decider, &c.policy)?;
    let threads = threads(c.threads);
    let points = (1 + 2 * writ_simulator::sensitivity::ranges().len() + samples) as u64;
    let pb = bar(scenarios.len() as u64 * points * c.replications * 2, "sensitivity");
    let tick = || pb.inc(1);
    let runner = Runner { threads, progress: &tick };
    let start = Instant::now();
    let mut analyses = Vec::new();
    for s in &scenarios {
        let pts = writ_simulator::sensitivity::analyse(&runner, s, samples, c.seed, c.replications, d.as_mut())?;
        analyses.push((s.name.clone(), pts));
    }
    let wall = start.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let report = writ_simulator::sensitivity::report(&analyses, samples, c.seed, c.replications);
    print!("{report}");
    let mut files = vec![
        ("sensitivity.md".to_string(), report),
        ("sensitivity.csv".to_string(), writ_simulator::sensitivity::csv(&analyses)),
    ];
    for (name, pts) in &analyses {
        let label = run_label(c.seed, c.replications);
        files.push((format!("tornado-{name}.svg"), writ_simulator::plot::tornado(pts, name, 1, &label)?));
    }
    files.push(("timing.json".to_string(), timing(c.decider, threads, wall, analyses.len(), 0)));
    write(&c.out, &files)?;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    println!("\nwrote into {}: {}", c.out.display(), names.join(", "));
    Ok(())
}

fn import_otel(
    traces: &Path,
    name: Option<String>,
    trust_domain: String,
    sensitivity: u8,
    out: Option<&Path>,
) -> Result<(), String> {
    let text = std::fs::read_to_string(traces).map_err(|e| format!("{}: {e}", traces.display()))?;
    let name = name.unwrap_or_else(|| traces.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
    let how = writ_simulator::otel::Import { name, trust_domain, sensitivity };
    let s = writ_simulator::otel::import(&text, &how).map_err(|e| format!("{}: {e}", traces.display()))?;
    let toml = format!(
        "# Imported by `writ-sim import-otel` from {}: {} workflows, {} agents, {} tools. The\n# breach and design parameters are the defaults; edit them here.\n{}",
        traces.display(),
        s.workflows.len(),
        s.agents.len(),
        s.resources.len(),
        s.to_toml().map_err(|e| e.to_string())?
    );
    match out {
        Some(path) => std::fs::write(path, toml).map_err(|e| format!("cannot write `{}`: {e}", path.display())),
        None => {
            print!("{toml}");
            Ok(())
        }
    }
}

fn sweep(c: Common, params: &[String]) -> Result<(), String> {
    let scenarios = load(&c.scenarios)?;
    let parsed = params.iter().map(|p| writ_simulator::params::parse(p)).collect::<Result<Vec<_>, _>>()?;
    let grid = writ_simulator::params::grid(&parsed)?;
    let mut d = decider(c.decider, &c.policy)?;
    let threads = threads(c.threads);
    let pb = bar(scenarios.len() as u64 * grid.len() as u64 * c.replications, "sweep");
    let tick = || pb.inc(1);
    let runner = Runner { threads, progress: &tick };
    let start = Instant::now();
    let rows = writ_simulator::run::sweep(&runner, &scenarios, &grid, c.seed, c.replications, d.as_mut())?;
    let wall = start.elapsed().as_secs_f64();
    pb.finish_and_clear();
    println!(
        "writ-sim sweep: {} scenarios × {} parameter combinations × 6 designs × {} replications, seed {} (ChaCha8)",
        scenarios.len(),
        grid.len(),
        c.replications,
        c.seed
    );
    print!("{}", writ_simulator::sweep_table(&rows));
    let summary = run_json(c.seed, c.replications, "cells", writ_simulator::sweep_summary(&rows));
    let mut files = vec![
        ("sweep.csv".to_string(), writ_simulator::csv(&rows)),
        ("sweep-summary.json".to_string(), format!("{summary:#}\n")),
    ];
    for s in &scenarios {
        files.push((
            format!("pareto-{}.svg", s.name),
            writ_simulator::plot::pareto(&rows, &s.name, &run_label(c.seed, c.replications))?,
        ));
    }
    for s in &scenarios {
        for design in writ_simulator::design::Design::ALL {
            let graph = writ_simulator::opengraph::graph(s, design);
            files.push((format!("opengraph/{}-{}.json", s.name, design.name()), format!("{graph:#}\n")));
        }
    }
    let decisions = rows.iter().map(|r| r.metrics.policy_decisions).sum();
    files.push(("timing.json".to_string(), timing(c.decider, threads, wall, rows.len(), decisions)));
    write(&c.out, &files)?;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    println!("\nwrote into {}: {}", c.out.display(), names.join(", "));
    Ok(())
}

fn bench(
    files: &[PathBuf],
    seed: u64,
    replications: u64,
    threads_arg: Option<usize>,
    json: bool,
    policy: &PolicyArgs,
) -> Result<(), String> {
    let scenarios = load(files)?;
    let threads = threads(threads_arg);
    let mut figures = Vec::new();
    for by in [DecidedBy::Native, DecidedBy::Component] {
        let (counting, stats) = Counting::new(decider(by, policy)?);
        let mut d: Box<dyn Decider> = Box::new(counting);
        let runner = Runner { threads, progress: &|| {} };
        let start = Instant::now();
        let calls = runner.map(scenarios.len() * replications as usize, d.as_mut(), |j, d| {
            let (si, r) = (j / replications as usize, j as u64 % replications);
            let s = &scenarios[si];
            let stream = writ_simulator::stream::Stream::draw(s, writ_simulator::replication_seed(seed, r));
            let m = writ_simulator::events::run(s, &stream, Design::Writ, d);
            m.tool_calls
        })?;
        let wall = start.elapsed().as_secs_f64();
        let (decisions, busy) = stats.totals();
        figures.push(serde_json::json!({
            "engine": decider_name(by),
            "threads": threads,
            "policy_decisions": decisions,
            "tool_calls": calls.iter().sum::<u64>(),
            "wall_s": wall,
            "decisions_per_s": decisions as f64 / wall.max(1e-9),
            "decisions_per_s_in_decider": decisions as f64 / busy.max(1e-9) * threads as f64,
            "tool_calls_per_s": calls.iter().sum::<u64>() as f64 / wall.max(1e-9),
        }));
    }
    if json {
        println!("{:#}", serde_json::Value::Array(figures));
        return Ok(());
    }
    println!(
        "writ-sim bench: the Writ design on {} scenarios × {replications} replications, {threads} threads, seed {seed}",
        scenarios.len()
    );
    println!(
        "{:<10} {:>10} {:>11} {:>9} {:>14} {:>22} {:>14}",
        "engine", "decisions", "tool calls", "wall s", "decisions/s", "decisions/s (decider)", "tool calls/s"
    );
    for f in &figures {
        let g = |k: &str| f.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
        println!(
            "{:<10} {:>10} {:>11} {:>9.3} {:>14.0} {:>22.0} {:>14.0}",
            f.get("engine").and_then(serde_json::Value::as_str).unwrap_or(""),
            g("policy_decisions"),
            g("tool_calls"),
            g("wall_s"),
            g("decisions_per_s"),
            g("decisions_per_s_in_decider"),
            g("tool_calls_per_s")
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Compare(c) => compare(c),
        Command::Sweep { common, params } => sweep(common, &params),
        Command::Sensitivity { common, samples, horizon_days } => sensitivity(common, samples, horizon_days),
        Command::ImportOtel { traces, name, trust_domain, sensitivity, out } => {
            import_otel(&traces, name, trust_domain, sensitivity, out.as_deref())
        }
        Command::Bench { scenarios, seed, replications, threads, json, policy } => {
            bench(&scenarios, seed, replications, threads, json, &policy)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
