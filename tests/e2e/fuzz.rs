//! The fuzz targets as ordinary tests: every seed (built in the targets' worlds, each checked
//! to be accepted or refused as it says) and every committed regression input under
//! `fuzz/regressions/<target>/` runs through its target on every `cargo test`. A crash a
//! fuzzing run finds is committed there and stays a test.

use std::path::Path;
use writ_fuzz::fixtures::{decode, encode};

/// Run `input` through `target`, naming the input when the target panics.
fn replay(target: &str, what: &str, input: &[u8]) {
    let run = writ_fuzz::target(target).unwrap_or_else(|| panic!("{what}: no fuzz target `{target}`"));
    if let Err(panic) = std::panic::catch_unwind(|| run(input)) {
        let message =
            panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
        panic!("fuzz target `{target}` fails on {what}: {}", message.unwrap_or_default());
    }
}

#[test]
fn every_seed_replays_through_its_target() {
    let seeds = writ_tests::fuzz_seeds::seeds();
    for (target, _) in writ_fuzz::TARGETS {
        assert!(seeds.iter().any(|s| s.target == target), "no seed for `{target}`");
    }
    for s in &seeds {
        replay(s.target, &format!("seed `{}`", s.name), &s.bytes);
    }
}

#[test]
fn every_regression_input_replays_through_its_target() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_dir() {
            continue;
        }
        let target = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(writ_fuzz::target(&target).is_some(), "{} names no fuzz target", path.display());
        for input in std::fs::read_dir(&path).unwrap() {
            let input = input.unwrap().path();
            replay(&target, &input.display().to_string(), &std::fs::read(&input).unwrap());
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no regression inputs under {}", dir.display());
}

#[test]
fn multi_part_inputs_round_trip() {
    let input = encode(&[b"bundle", b"", b"cert two"]);
    assert_eq!(decode(&input, 5), vec![&b"bundle"[..], b"", b"cert two"]);
    assert_eq!(decode(&input, 2), vec![&b"bundle"[..], b""]);
    assert_eq!(decode(b"x", 4), vec![&b"x"[..]]);
    assert_eq!(decode(&[0, 9, 1, 2], 4), vec![&[1u8, 2][..]], "a prefix past the end takes the rest");
}
