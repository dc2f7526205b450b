//! `writ-sim compare [SCENARIO…]`: every design on the same event streams; prints the table
//! and writes `results.csv`, `summary.json` and `report.md` into `--out`.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use writ_sim::scenario::Scenario;

#[derive(Parser)]
#[command(name = "writ-sim", version, about = "Blast radius of credential designs under simulated breaches")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Engine {
    /// The Writ component through writ-host.
    Component,
    /// writ-core natively.
    Native,
}

#[derive(Subcommand)]
enum Command {
    /// Run every design on the scenarios (default: all shipped ones).
    Compare {
        /// Scenario files (TOML). Default: `simulator/scenarios/*.toml`.
        scenarios: Vec<PathBuf>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 30)]
        replications: u64,
        #[arg(long, value_enum, default_value = "component")]
        engine: Engine,
        /// Where results go.
        #[arg(long, default_value = "sim-out")]
        out: PathBuf,
    },
}

fn shipped() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "toml")).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn main() -> ExitCode {
    let Command::Compare { scenarios, seed, replications, engine, out } = Cli::parse().command;
    let files = if scenarios.is_empty() { shipped() } else { scenarios };
    let mut loaded = Vec::new();
    for f in &files {
        match Scenario::load(f) {
            Ok(s) => loaded.push(s),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let decider: Result<Box<dyn writ_sim::decide::Decider>, String> = match engine {
        Engine::Component => writ_sim::decide::Component::new().map(|d| Box::new(d) as _),
        Engine::Native => writ_sim::decide::Native::new().map(|d| Box::new(d) as _),
    };
    let mut decider = match decider {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let rows = writ_sim::compare(&loaded, seed, replications, decider.as_mut());
    let report = writ_sim::report(&loaded, &rows, seed, replications, decider.as_mut());
    println!("writ-sim compare: {} scenarios × 6 designs × {replications} replications, seed {seed} (ChaCha8)", loaded.len());
    print!("{}", writ_sim::table(&rows));
    let written = std::fs::create_dir_all(&out)
        .and_then(|()| std::fs::write(out.join("results.csv"), writ_sim::csv(&rows)))
        .and_then(|()| std::fs::write(out.join("summary.json"), format!("{:#}\n", writ_sim::summary(&rows))))
        .and_then(|()| std::fs::write(out.join("report.md"), &report));
    if let Err(e) = written {
        eprintln!("error: cannot write to `{}`: {e}", out.display());
        return ExitCode::from(2);
    }
    println!("\nwrote {0}/results.csv, {0}/summary.json and {0}/report.md", out.display());
    ExitCode::SUCCESS
}
