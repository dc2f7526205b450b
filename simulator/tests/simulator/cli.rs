//! The `writ-sim` binary: compare, sweep and bench write what they say, bad input is refused
//! with the file, line or reason, and a run is reproducible from its seed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_writ-sim")).args(args).output().unwrap()
}

/// A shipped scenario with its breach clock compressed (`shipped::compressed`), as a file.
fn scenario(name: &str) -> PathBuf {
    crate::shipped::compressed_file(
        name,
        &std::env::temp_dir().join(format!("writ-sim-cli-{}-scenarios", std::process::id())),
    )
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("writ-sim-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn compare_writes_results_report_plots_and_timing_reproducibly() {
    let payroll = scenario("payroll.toml");
    let (a, b) = (tmp("a"), tmp("b"));
    for (out, threads) in [(&a, "1"), (&b, "2")] {
        let o = sim(&[
            "compare",
            payroll.to_str().unwrap(),
            "--decider",
            "native",
            "--replications",
            "3",
            "--threads",
            threads,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let stdout = String::from_utf8(o.stdout).unwrap();
        assert!(stdout.contains("1 scenarios × 6 designs × 3 replications, seed 42"));
        assert!(stdout.contains("rotation-only") && stdout.contains("writ "));
    }
    for f in ["results.csv", "summary.json", "report.md", "compare-payroll.svg"] {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f}: same seed, same bytes");
    }
    let timing: serde_json::Value = serde_json::from_slice(&std::fs::read(a.join("timing.json")).unwrap()).unwrap();
    assert_eq!(timing["engine"], "native");
    assert!(timing["wall_s"].as_f64().unwrap() > 0.0);
    let csv = std::fs::read_to_string(a.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 6 * 3);
}

#[test]
fn sweep_writes_the_grid_and_its_pareto_plot() {
    let out = tmp("sweep");
    let o = sim(&[
        "sweep",
        scenario("payroll.toml").to_str().unwrap(),
        "--decider",
        "native",
        "--replications",
        "2",
        "--param",
        "ttl=60,900",
        "--param",
        "rotation=1h,30d",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert!(csv.starts_with("scenario,design,ttl,rotation,seed,"));
    assert_eq!(csv.lines().count(), 1 + 4 * 6 * 2);
    let svg = std::fs::read_to_string(out.join("pareto-payroll.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("seed 42 (ChaCha8), 2 replications"));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("sweep-summary.json")).unwrap()).unwrap();
    assert_eq!(summary["seed"], 42);
    assert_eq!(summary["cells"].as_array().map(Vec::len), Some(4 * 6));
}

#[test]
fn bad_input_is_refused_with_where_and_why() {
    let dir = tmp("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\nhorizon_hours = \"soon\"\n").unwrap();
    let o = sim(&["compare", bad.to_str().unwrap(), "--decider", "native", "--out", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("bad.toml line 2 `horizon_hours = \"soon\"`"), "{err}");
    let o = sim(&[
        "sweep",
        scenario("payroll.toml").to_str().unwrap(),
        "--decider",
        "native",
        "--param",
        "ttl=0",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8(o.stderr).unwrap().contains("`design.ttl_s` is 0"));
    let o = sim(&["sweep", "--decider", "native", "--param", "duplication=1.5", "--out", dir.to_str().unwrap()]);
    assert!(String::from_utf8(o.stderr).unwrap().contains("a probability is between 0 and 1"));
    let o = sim(&["sweep", "--param", "speed=3"]);
    assert!(String::from_utf8(o.stderr).unwrap().contains("`speed` is not a parameter"));
}

#[test]
fn bench_prints_decisions_per_second_for_both_engines() {
    let o = sim(&["bench", scenario("payroll.toml").to_str().unwrap(), "--replications", "2", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let engines: Vec<&str> = v.as_array().unwrap().iter().map(|f| f["engine"].as_str().unwrap()).collect();
    assert_eq!(engines, ["native", "component"]);
    for f in v.as_array().unwrap() {
        assert!(f["policy_decisions"].as_u64().unwrap() > 0);
        assert_eq!(f["policy_decisions"], v[0]["policy_decisions"], "both engines make the same decisions");
        assert!(f["decisions_per_s"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn the_writ_design_decides_with_the_policies_given() {
    let writ_blast = |extra: Option<&str>| {
        let out = tmp(if extra.is_some() { "strict" } else { "pack" });
        let mut args = vec![
            "compare".to_string(),
            scenario("browser-agent.toml").display().to_string(),
            "--decider".into(),
            "native".into(),
        ];
        args.extend(["--replications".into(), "10".into(), "--out".into(), out.display().to_string()]);
        if let Some(extra) = extra {
            // The shipped pack plus one policy: nothing at all to external destinations.
            let dir = out.join("policies");
            std::fs::create_dir_all(&dir).unwrap();
            let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
            for f in std::fs::read_dir(&pack)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
            {
                std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
            }
            std::fs::write(dir.join("zz-strict.cedar"), extra).unwrap();
            args.extend(["--policies".into(), dir.display().to_string()]);
            args.extend(["--schema".into(), pack.join("writ.cedarschema").display().to_string()]);
            args.extend(["--entities".into(), pack.join("entities.json").display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = sim(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(
            (v["rng"].as_str(), v["seed"].as_u64(), v["replications"].as_u64()),
            (Some("ChaCha8"), Some(42), Some(10))
        );
        v["scenarios"]["browser-agent"]["writ"]["blast_radius"]["mean"].as_f64().unwrap()
    };
    let strict = r#"@id("no-sends") forbid(principal, action == Action::"send", resource);"#;
    // The shipped pack lets a hijacked analyst send internal (sensitivity 1) data wherever it
    // claims; one that forbids every send leaves it only reads.
    let (shipped, stricter) = (writ_blast(None), writ_blast(Some(strict)));
    assert!(shipped > 0.0 && stricter < shipped, "{shipped} vs {stricter}");
    let bad = tmp("badpolicy");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("x.cedar"), "permit(principal, action, resource) when {").unwrap();
    let o = sim(&[
        "compare",
        "--decider",
        "native",
        "--policies",
        bad.join("x.cedar").to_str().unwrap(),
        "--out",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8(o.stderr).unwrap().contains("policies: policy: policies do not parse"));
}

#[test]
fn the_attack_graphs_load_as_opengraph_and_answer_path_queries() {
    let out = tmp("graphs");
    let o = sim(&[
        "compare",
        scenario("payroll.toml").to_str().unwrap(),
        "--decider",
        "native",
        "--replications",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // BloodHound's OpenGraph format, read by the `bhopengraph` library: every graph valid, and
    // the paths from the attacker to the customer data (a resource no task uses) exist only
    // where a long-lived secret reaches everything.
    let script = r#"
import json, sys
from bhopengraph.OpenGraph import OpenGraph
out = {}
for design in ["static", "rotation-only", "vaulted-rotation", "least-privilege", "jit", "writ"]:
    g = OpenGraph()
    assert g.import_from_file(f"{sys.argv[1]}/opengraph/payroll-{design}.json"), design
    ok, errors = g.validate_graph()
    assert ok, (design, errors)
    paths = lambda to: len(g.find_paths("writ-sim:attacker", to)) if g.get_node_by_id(to) else 0
    out[design] = {
        "pii": paths('Dataset::"customer-pii"'),
        "record": paths('PayrollRecord::"run-42/emp-7"'),
        "nodes": g.get_node_count(),
    }
print(json.dumps(out))
"#;
    let py = Command::new("python3").args(["-c", script, out.to_str().unwrap()]).output().unwrap();
    assert!(py.status.success(), "bhopengraph (pip install bhopengraph): {}", String::from_utf8_lossy(&py.stderr));
    let v: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    for design in ["static", "rotation-only", "vaulted-rotation"] {
        assert!(v[design]["pii"].as_u64().unwrap() > 0, "{design}: {v}");
    }
    for design in ["least-privilege", "jit", "writ"] {
        assert_eq!(v[design]["pii"], 0, "{design}: {v}");
        assert!(v[design]["record"].as_u64().unwrap() > 0, "{design}: the record its task reads: {v}");
    }
}

#[test]
fn a_sample_opentelemetry_trace_becomes_a_scenario_that_replays_under_every_design() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("traces/sample-otel.json");
    let out = tmp("otel");
    std::fs::create_dir_all(&out).unwrap();
    let file = out.join("sample.toml");
    let o = sim(&["import-otel", sample.to_str().unwrap(), "--out", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = writ_simulator::scenario::Scenario::load(&file).unwrap();
    // Three traces search then browse (the MCP span inside `execute_tool` is the same call);
    // one calls the search tool over MCP alone.
    let mut shapes: Vec<(usize, f64)> = s.workflows.iter().map(|w| (w.steps.len(), w.rate_per_hour)).collect();
    shapes.sort_by_key(|s| s.0);
    assert_eq!(shapes, vec![(1, 1.0), (2, 3.0)]);
    let two = s.workflows.iter().find(|w| w.steps.len() == 2).unwrap();
    let steps: Vec<(u64, &str, &str)> =
        two.steps.iter().map(|st| (st.at, st.agent.as_str(), st.resource.as_str())).collect();
    assert_eq!(
        steps,
        vec![
            (40, "spiffe://acme.example/agent/browser", "Tool::\"web-search\""),
            (95, "spiffe://acme.example/agent/browser", "Tool::\"browser\"")
        ]
    );
    // Every design runs it; the shipped pack lets the browser agent use both its tools, so
    // Writ fails none of its tasks.
    let s = crate::shipped::compress(s);
    let stream = writ_simulator::stream::Stream::draw(&s, 1);
    let mut d = writ_simulator::decide::Native::new().unwrap();
    for design in writ_simulator::design::Design::ALL {
        let m = writ_simulator::events::run(&s, &stream, design, &mut d);
        assert!(m.tasks > 0 && m.tool_calls > 0, "{design:?}");
        if design == writ_simulator::design::Design::Writ {
            assert_eq!(m.failed_tasks, 0, "{m:?}");
        }
    }
    // Bad input is refused with the reason.
    let how = writ_simulator::otel::Import { name: "x".into(), trust_domain: "acme.example".into(), sensitivity: 1 };
    assert!(writ_simulator::otel::import("{", &how).unwrap_err().contains("not JSON"));
    assert!(writ_simulator::otel::import("{}", &how).unwrap_err().contains("no `resourceSpans`"));
    let no_tools =
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"1","spanId":"1","startTimeUnixNano":"5"}]}]}]}"#;
    assert!(writ_simulator::otel::import(no_tools, &how).unwrap_err().contains("no tool calls"));
    let o = sim(&["import-otel", out.join("missing.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn sensitivity_states_where_each_claim_holds_with_a_tornado_and_indices() {
    let out = tmp("sensitivity");
    let o = sim(&[
        "sensitivity",
        scenario("payroll.toml").to_str().unwrap(),
        "--decider",
        "native",
        "--samples",
        "8",
        "--replications",
        "2",
        "--horizon-days",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(out.join("sensitivity.md")).unwrap();
    assert!(
        md.contains("## payroll") && md.contains("sampled points where it holds / is contradicted / is unresolved"),
        "{md}"
    );
    for claim in writ_simulator::claims::NAMES {
        assert!(md.contains(&format!("| {claim} |")), "{claim}");
    }
    // Ten parameters, each in the tornado table.
    for r in writ_simulator::sensitivity::ranges() {
        assert!(md.contains(&format!("| `{}` |", r.param.name())), "{}", r.param.name());
    }
    // The base point, two per parameter, and the samples; each sample inside every range.
    let csv = std::fs::read_to_string(out.join("sensitivity.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 1 + 2 * 10 + 8);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    for line in csv.lines().filter(|l| l.contains(",sample,")) {
        let cells: Vec<&str> = line.split(',').collect();
        for r in writ_simulator::sensitivity::ranges() {
            let i = header.iter().position(|h| *h == r.param.name()).unwrap();
            let v: f64 = cells[i].parse().unwrap();
            assert!(v >= r.low - 0.5 && v <= r.high + 0.5, "{} = {v}", r.param.name());
        }
    }
    let svg = std::fs::read_to_string(out.join("tornado-payroll.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("exposure"));
}
