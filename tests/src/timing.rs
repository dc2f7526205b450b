//! Latency percentiles for the benches' percentile tables (criterion reports means).

use std::time::Instant;

/// p50 and p99 in µs of `n` calls of `f`, after `n / 10` warm-up calls.
pub fn percentiles(mut f: impl FnMut(), n: usize) -> (f64, f64) {
    for _ in 0..n / 10 {
        f();
    }
    percentiles_over((0..n).collect(), |_| f())
}

/// p50 and p99 in µs of `f` over `inputs`, each used once (for operations whose input must
/// be fresh, like a credential never presented before).
pub fn percentiles_over<T>(inputs: Vec<T>, mut f: impl FnMut(T)) -> (f64, f64) {
    let mut t: Vec<f64> = inputs
        .into_iter()
        .map(|x| {
            let s = Instant::now();
            f(x);
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    let n = t.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    (t[n / 2], t[n * 99 / 100])
}

/// Whether a bench binary runs its percentile pass: under `cargo bench` (`--bench`), not in
/// `cargo test --benches` (each bench once) nor under criterion's `--profile-time` (a profiler
/// wants the filtered bench alone).
pub fn percentile_pass() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--profile-time")
}
