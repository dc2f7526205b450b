//! The draws of one replication — task arrivals, where credential copies live and when they
//! are exposed, exploit delays, hijacks, offboarding, remediation — made from its seed before
//! any design runs, so every design plays the same stream (common random numbers).

use crate::scenario::Scenario;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One task instance.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub(crate) workflow: usize,
    pub(crate) start: u64,
    pub(crate) id: String,
}

/// A copy of an agent's credentials being exposed at `at`, used `delay` seconds later.
#[derive(Debug, Clone)]
pub(crate) struct Exposure {
    pub(crate) agent: usize,
    /// 0 is the agent's working memory (prompts, logs of the running task); others are where
    /// a long-lived secret is stored (config, CI, tickets).
    pub(crate) location: u32,
    pub(crate) at: u64,
    pub(crate) delay: u64,
}

/// The draws of one replication, independent of the design.
#[derive(Debug, Clone)]
pub struct Stream {
    pub(crate) tasks: Vec<Task>,
    pub(crate) exposures: Vec<Exposure>,
    /// Per agent: a hijack window.
    pub(crate) hijacks: Vec<Option<(u64, u64)>>,
    /// Per agent: when it is offboarded, and whether its long-lived credentials stay live.
    pub(crate) offboarded: Vec<Option<(u64, bool)>>,
    /// Per exposure: whether the leaked long-lived secret is remediated after the delay.
    pub(crate) remediated: Vec<bool>,
}

fn exp(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    let u: f64 = rng.r#gen::<f64>();
    -mean * (1.0 - u).ln()
}

impl Stream {
    pub fn draw(s: &Scenario, seed: u64) -> Stream {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let horizon = s.horizon_s();
        let mut tasks = Vec::new();
        for (wi, w) in s.workflows.iter().enumerate() {
            if w.rate_per_hour <= 0.0 {
                continue;
            }
            let mut t = 0.0;
            let mut n = 0;
            loop {
                t += exp(&mut rng, 3600.0 / w.rate_per_hour);
                if t >= horizon as f64 {
                    break;
                }
                n += 1;
                let id = w.task.clone().unwrap_or_else(|| format!("{}-{n}", w.name));
                tasks.push(Task { workflow: wi, start: t as u64, id });
            }
        }
        tasks.sort_by_key(|t| (t.start, t.workflow));
        // Each place an agent's credentials are kept is exposed at most once, at a uniform time.
        let p_exposed = s.breach.exposure_rate;
        let mut exposures = Vec::new();
        for (ai, a) in s.agents.iter().enumerate() {
            // The same draws whatever the rates: a higher duplication or exposure rate only
            // turns on more of the same places (so rates can be compared on one stream).
            let duplicated = rng.r#gen::<f64>() < s.breach.duplication_rate;
            for location in 0..(a.copies + s.breach.extra_copies) {
                let exposed = rng.r#gen::<f64>() < p_exposed;
                let at = rng.gen_range(0..horizon.max(1));
                let delay = exp(&mut rng, s.breach.time_to_exploit_s) as u64;
                if exposed && (location < a.copies || duplicated) {
                    exposures.push(Exposure { agent: ai, location, at, delay });
                }
            }
        }
        let hijacks = s
            .agents
            .iter()
            .map(|_| {
                (rng.r#gen::<f64>() < s.breach.hijack_rate)
                    .then(|| (rng.gen_range(0..horizon.max(1)), s.breach.hijack_duration_s))
            })
            .collect();
        let offboarded = s
            .agents
            .iter()
            .map(|a| {
                let live = rng.r#gen::<f64>() < s.breach.offboarded_live_rate;
                a.offboarded_at_hours.map(|h| ((h * 3600.0) as u64, live))
            })
            .collect();
        // Tasks an offboarded agent would own after it left do not run.
        let owner = |t: &Task| s.agents.iter().position(|a| a.id == s.workflows[t.workflow].steps[0].agent);
        let gone = |t: &Task| {
            owner(t).and_then(|i| s.agents[i].offboarded_at_hours).is_some_and(|h| t.start >= (h * 3600.0) as u64)
        };
        tasks.retain(|t| !gone(t));
        // Drawn last, so the draws above are the same whatever this rate is.
        let remediated = exposures.iter().map(|_| rng.r#gen::<f64>() < s.breach.remediation_rate).collect();
        Stream { tasks, exposures, hijacks, offboarded, remediated }
    }
}
