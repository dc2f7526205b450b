//! The draws of one replication — task arrivals, where credential copies live, when they are
//! exposed and how soon each exposure is exploited, detected and remediated, hijacks,
//! offboarding, the offset of each rotation schedule — made from its seed before any design
//! runs, so every design plays the same stream (common random numbers).
//!
//! Each kind of draw has its own sub-stream of the seed (per workflow, per agent, per place),
//! so changing one rate never moves another's draws; events that arrive at a rate are drawn
//! in layers ([`poisson`]), so a higher rate only adds events to the same ones.

use crate::scenario::{Scenario, YEAR_S};
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
    /// Seconds from the exposure to its detection.
    pub(crate) detect_after: u64,
    /// Seconds from the exposure to a scanner's remediation of a leaked long-lived secret.
    pub(crate) remediate_after: Option<u64>,
    /// Working memory stolen whole, the holder's key with it (only at place 0).
    pub(crate) memory_theft: bool,
}

/// An agent hijacked at `at` for `len` seconds (unless detected first).
#[derive(Debug, Clone)]
pub(crate) struct Hijack {
    pub(crate) agent: usize,
    pub(crate) at: u64,
    pub(crate) len: u64,
    /// Seconds from the hijack to its detection.
    pub(crate) detect_after: u64,
}

/// The draws of one replication, independent of the design.
#[derive(Debug, Clone)]
pub struct Stream {
    pub(crate) tasks: Vec<Task>,
    pub(crate) exposures: Vec<Exposure>,
    pub(crate) hijacks: Vec<Hijack>,
    /// Per agent: when it is offboarded, and whether its long-lived credentials stay live.
    pub(crate) offboarded: Vec<Option<(u64, bool)>>,
    /// Per agent: the offset of its rotation schedules — a schedule of period `p` rotates at
    /// every `offset + k × p` (k any integer) inside the run, so schedules are not all in step,
    /// and one whose period divides another's rotates whenever the other does.
    pub(crate) rotation_offset: Vec<u64>,
}

/// Sub-streams of a replication's seed.
const TASKS: u64 = 1;
const DUPLICATION: u64 = 2;
const EXPOSURES: u64 = 3;
const HIJACKS: u64 = 4;
const OFFBOARDING: u64 = 5;
const ROTATION: u64 = 6;

/// The generator of sub-stream `index` of `purpose` under `seed`.
fn rng(seed: u64, purpose: u64, index: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream((purpose << 56) ^ index);
    r
}

/// An exponential draw of mean `mean`.
fn exp(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    let u: f64 = rng.r#gen::<f64>();
    -mean * (1.0 - u).ln()
}

/// Seconds, saturating (an infinite or huge draw is "never").
fn secs(v: f64) -> u64 {
    if v.is_finite() { v as u64 } else { u64::MAX }
}

/// The points of a Poisson process of `per_year` events a year on `[from, to)` seconds, each
/// with what `draw` makes of it, in time order. Drawn in layers: layer 0 a process of one a
/// year, layer k ≥ 1 one of 2^(k−1) a year, each point kept with the share of its layer the
/// rate covers — so a higher rate keeps every point (and its draws) a lower rate keeps. `draw`
/// runs for every point, kept or not, so the draws never shift.
fn poisson<T>(
    seed: u64,
    purpose: u64,
    index: u64,
    per_year: f64,
    (from, to): (u64, u64),
    mut draw: impl FnMut(&mut ChaCha8Rng) -> T,
) -> Vec<(u64, T)> {
    let mut points = Vec::new();
    let mut layer = 0u64;
    loop {
        let (base, covered) = if layer == 0 {
            (1.0, per_year.min(1.0))
        } else {
            let b = (2f64).powi(layer as i32 - 1);
            (b, (per_year / b - 1.0).clamp(0.0, 1.0))
        };
        if covered <= 0.0 {
            break;
        }
        let mut r = rng(seed, purpose, (index << 8) | layer);
        let mut t = from as f64;
        loop {
            t += exp(&mut r, YEAR_S / base);
            if t >= to as f64 {
                break;
            }
            let keep = r.r#gen::<f64>() < covered;
            let v = draw(&mut r);
            if keep {
                points.push((t as u64, v));
            }
        }
        layer += 1;
    }
    points.sort_by_key(|p| p.0);
    points
}

impl Stream {
    pub fn draw(s: &Scenario, seed: u64) -> Stream {
        let horizon = s.horizon_s();
        let attacked = (s.warmup_s(), horizon);
        let mut tasks = Vec::new();
        for (wi, w) in s.workflows.iter().enumerate() {
            if w.rate_per_hour <= 0.0 {
                continue;
            }
            let mut r = rng(seed, TASKS, wi as u64);
            let mut t = 0.0;
            let mut n = 0;
            loop {
                t += exp(&mut r, 3600.0 / w.rate_per_hour);
                if t >= horizon as f64 {
                    break;
                }
                n += 1;
                let id = w.task.clone().unwrap_or_else(|| format!("{}-{n}", w.name));
                tasks.push(Task { workflow: wi, start: t as u64, id });
            }
        }
        tasks.sort_by_key(|t| (t.start, t.workflow));
        let b = &s.breach;
        // Each breach is detected after an exponential delay of the cited median.
        let dwell_mean = b.detection_dwell_s as f64 / std::f64::consts::LN_2;
        let mut exposures = Vec::new();
        for (ai, a) in s.agents.iter().enumerate() {
            // A higher duplication rate only turns on more of the same places.
            let duplicated = rng(seed, DUPLICATION, ai as u64).r#gen::<f64>() < b.duplication_rate;
            let places = if duplicated { a.copies + b.extra_copies } else { a.copies };
            for location in 0..places {
                let index = ((ai as u64) << 16) | u64::from(location);
                let points = poisson(seed, EXPOSURES, index, b.exposures_per_year, attacked, |r| {
                    let delay = secs(exp(r, b.time_to_exploit_s));
                    let detect_after = secs(exp(r, dwell_mean));
                    let u: f64 = r.r#gen();
                    let remediate_after = (b.remediations_per_day > 0.0)
                        .then(|| secs(-(1.0 - u).ln() / b.remediations_per_day * 86_400.0));
                    let theft = r.r#gen::<f64>() < b.memory_theft_rate;
                    (delay, detect_after, remediate_after, theft && location == 0)
                });
                for (at, (delay, detect_after, remediate_after, memory_theft)) in points {
                    let x = Exposure { agent: ai, location, at, delay, detect_after, remediate_after, memory_theft };
                    exposures.push(x);
                }
            }
        }
        exposures.sort_by_key(|x| (x.at, x.agent, x.location));
        let mut hijacks = Vec::new();
        for ai in 0..s.agents.len() {
            let points = poisson(seed, HIJACKS, ai as u64, b.hijacks_per_year, attacked, |r| secs(exp(r, dwell_mean)));
            for (at, detect_after) in points {
                hijacks.push(Hijack { agent: ai, at, len: b.hijack_duration_s, detect_after });
            }
        }
        hijacks.sort_by_key(|h| (h.at, h.agent));
        let offboarded = s
            .agents
            .iter()
            .enumerate()
            .map(|(ai, a)| {
                let live = rng(seed, OFFBOARDING, ai as u64).r#gen::<f64>() < b.offboarded_live_rate;
                a.offboarded_at_hours.map(|h| ((h * 3600.0) as u64, live))
            })
            .collect();
        // Uniform over 2^40 s (35 000 years): its remainder is uniform for any period.
        let rotation_offset =
            (0..s.agents.len()).map(|ai| rng(seed, ROTATION, ai as u64).gen_range(0..1u64 << 40)).collect();
        // Tasks an offboarded agent would own after it left do not run.
        let owner = |t: &Task| s.agents.iter().position(|a| a.id == s.workflows[t.workflow].steps[0].agent);
        let gone = |t: &Task| {
            owner(t).and_then(|i| s.agents[i].offboarded_at_hours).is_some_and(|h| t.start >= (h * 3600.0) as u64)
        };
        tasks.retain(|t| !gone(t));
        Stream { tasks, exposures, hijacks, offboarded, rotation_offset }
    }

    /// (agent, place, second) of every exposure, in time order.
    pub fn exposure_times(&self) -> Vec<(usize, u32, u64)> {
        self.exposures.iter().map(|x| (x.agent, x.location, x.at)).collect()
    }

    /// (agent, second) of every hijack, in time order.
    pub fn hijack_times(&self) -> Vec<(usize, u64)> {
        self.hijacks.iter().map(|h| (h.agent, h.at)).collect()
    }

    /// The start of every task, in time order.
    pub fn task_starts(&self) -> Vec<u64> {
        self.tasks.iter().map(|t| t.start).collect()
    }
}
