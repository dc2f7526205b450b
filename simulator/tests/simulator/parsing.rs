//! Parsing scenarios and sweep parameters.

use writ_simulator::params::{Assignment, Param, grid, parse};
use writ_simulator::scenario::Scenario;

#[test]
fn durations_and_rates_parse_and_bad_ones_are_refused() {
    assert_eq!(parse("ttl=60,5m,1h").unwrap(), (Param::Ttl, vec![60.0, 300.0, 3600.0]));
    assert_eq!(parse("rotation=1h,24h,30d").unwrap().1, vec![3600.0, 86_400.0, 2_592_000.0]);
    assert_eq!(parse("duplication=0,0.62,1").unwrap().1, vec![0.0, 0.62, 1.0]);
    assert!(parse("ttl=soon").unwrap_err().contains("not a duration"));
    assert!(parse("ttl=-5").is_err());
    assert!(parse("speed=1").unwrap_err().contains("known: ttl"));
    assert!(parse("ttl").is_err());
    assert!(parse("ttl=").unwrap_err().contains("no values"));
}

#[test]
fn the_grid_is_every_combination_first_slowest() {
    let g = grid(&[(Param::Ttl, vec![60.0, 900.0]), (Param::Rotation, vec![3600.0, 86_400.0, 7.0])]).unwrap();
    assert_eq!(g.len(), 6);
    assert_eq!(g[0].label(), "ttl=60 rotation=3600");
    assert_eq!(g[5].label(), "ttl=900 rotation=7");
    assert!(grid(&[(Param::Ttl, vec![1.0]), (Param::Ttl, vec![2.0])]).is_err());
    assert_eq!(grid(&[]).unwrap(), vec![Assignment::default()]);
}

const OK: &str = r#"
name = "t"
[[agent]]
id = "spiffe://t/a"
[[resource]]
uid = 'Doc::"d"'
sensitivity = 1
actions = ["read"]
[[workflow]]
name = "w"
rate_per_hour = 1
[[workflow.step]]
at = 0
agent = "spiffe://t/a"
action = "read"
resource = 'Doc::"d"'
"#;

#[test]
fn a_valid_scenario_loads_with_defaults() {
    let s = Scenario::parse(OK, "t.toml").unwrap();
    assert_eq!(s.breach.duplication_rate, 0.62);
    assert_eq!(s.design.ttl_s, 900);
    // A year, the first 30 days a warm-up.
    assert_eq!((s.horizon_s(), s.warmup_s()), (365 * 86_400, 30 * 86_400));
    assert_eq!(s.breach.exposures_per_year, writ_simulator::scenario::EXPOSURES_PER_YEAR);
    assert!(((-s.breach.exposures_per_year).exp() - 0.56).abs() < 1e-12, "44% exposed within a year");
    // A warm-up must leave some of the run; rates are not probabilities.
    let e = Scenario::parse(&format!("horizon_hours = 10\nwarmup_hours = 10\n{OK}"), "w.toml").unwrap_err();
    assert!(e.0.contains("`warmup_hours` is 10"), "{e}");
    let ok = Scenario::parse(&format!("{OK}\n[breach]\nhijacks_per_year = 12\n"), "h.toml").unwrap();
    assert_eq!(ok.breach.hijacks_per_year, 12.0);
    let e = Scenario::parse(&format!("{OK}\n[breach]\nexposures_per_year = -1\n"), "x.toml").unwrap_err();
    assert!(e.0.contains("`breach.exposures_per_year` is -1"), "{e}");
    // Every default written out reads back the same.
    let again = Scenario::parse(&s.to_toml().unwrap(), "again.toml").unwrap();
    assert_eq!(again.to_toml().unwrap(), s.to_toml().unwrap());
}

#[test]
fn errors_name_the_file_line_and_field() {
    let e = Scenario::parse(&OK.replace("sensitivity = 1", "sensitivity = \"high\""), "bad.toml").unwrap_err();
    assert!(e.0.starts_with("bad.toml line 7 `sensitivity = \"high\"`"), "{e}");
    let e = Scenario::parse(&OK.replace("rate_per_hour = 1", "rate_per_hour = -2"), "neg.toml").unwrap_err();
    assert!(e.0.contains("rate_per_hour") && e.0.contains("-2"), "{e}");
    let e = Scenario::parse(&format!("{OK}\n[design]\nttl_s = 0\n"), "ttl.toml").unwrap_err();
    assert!(e.0.contains("ttl_s"), "{e}");
    let e = Scenario::parse(&OK.replace("action = \"read\"", "action = \"write\""), "act.toml").unwrap_err();
    assert!(e.0.contains("not an action"), "{e}");
    let e = Scenario::parse(&format!("{OK}\nsurprise = 1\n"), "unk.toml").unwrap_err();
    assert!(e.0.contains("surprise"), "{e}");
}
