//! The shipped scenarios, as shipped and with their breach clock compressed for tests.

use writ_simulator::scenario::Scenario;

/// Each file of `scenarios/`, in name order.
pub fn shipped() -> Vec<Scenario> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.iter().map(|f| Scenario::load(f).unwrap()).collect()
}

/// How much faster the breach clock runs in [`compressed`].
pub const SPEED: f64 = 182.5;

/// Each shipped scenario on a 48-hour horizon (4 h warm-up) with every breach process and
/// every long-lived mechanism [`SPEED`] times faster — exposures, hijacks, detection,
/// remediation, rotation periods, offboarding — while tasks, TTLs, grace and exploit delays
/// keep their real time: the year-long run's shape in a debug build's time.
pub fn compressed() -> Vec<Scenario> {
    shipped().into_iter().map(compress).collect()
}

pub fn compress(mut s: Scenario) -> Scenario {
    let scale = |v: u64| ((v as f64 / SPEED) as u64).max(1);
    s.horizon_hours = 48.0;
    s.warmup_hours = 4.0;
    s.design.rotation_period_s = scale(s.design.rotation_period_s);
    for v in s.design.rotation_by_protocol.values_mut() {
        *v = scale(*v);
    }
    s.breach.exposures_per_year *= SPEED;
    s.breach.hijacks_per_year *= SPEED;
    s.breach.remediations_per_day *= SPEED;
    s.breach.detection_dwell_s = scale(s.breach.detection_dwell_s);
    for a in &mut s.agents {
        a.offboarded_at_hours = a.offboarded_at_hours.map(|h| h / SPEED);
    }
    s.check().unwrap();
    s
}

/// The compressed copy of `scenarios/<name>` written into `dir`, for the command line.
pub fn compressed_file(name: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let s = compressed().into_iter().find(|s| format!("{}.toml", s.name) == name).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    // Tests run at once: each writes its own file and renames it into place.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mine = dir.join(format!("{name}.{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    std::fs::write(&mine, s.to_toml().unwrap()).unwrap();
    std::fs::rename(&mine, &path).unwrap();
    path
}
