//! One replication: draw the event stream (task arrivals, where credential copies live and
//! when they are exposed, exploit delays, hijacks) from the seed — the same stream for every
//! design — then play it under one design and measure what the attacker reached.

use crate::decide::Decider;
use crate::scenario::Scenario;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;

/// The six credential designs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Design {
    /// One broad, never-expiring secret per agent, copied wherever it is used.
    Static,
    /// The static secret, rotated every period; the old one works for a grace period.
    RotationOnly,
    /// Rotated and fetched from a vault at run time: only the agent's memory holds it.
    Vaulted,
    /// Static, but scoped to what the agent's workflows need.
    LeastPrivilege,
    /// Per task: task scope, TTL, revoked at task end; a bearer token.
    Jit,
    /// JIT, sender-constrained (`cnf`), and every use checked against policy (Writ).
    Writ,
}

impl Design {
    pub const ALL: [Design; 6] = [Design::Static, Design::RotationOnly, Design::Vaulted, Design::LeastPrivilege, Design::Jit, Design::Writ];

    pub fn name(self) -> &'static str {
        match self {
            Design::Static => "static",
            Design::RotationOnly => "rotation-only",
            Design::Vaulted => "vaulted-rotation",
            Design::LeastPrivilege => "least-privilege",
            Design::Jit => "jit",
            Design::Writ => "writ",
        }
    }

    fn per_task(self) -> bool {
        matches!(self, Design::Jit | Design::Writ)
    }

    fn rotates(self) -> bool {
        matches!(self, Design::RotationOnly | Design::Vaulted)
    }
}

/// Metrics of one replication under one design.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// Distinct (resource, action) pairs the attacker exercised.
    pub blast_radius: u64,
    /// The same, each weighted by 1 + the resource's sensitivity.
    pub blast_radius_weighted: u64,
    /// Records of the exercised pairs.
    pub records_touched: u64,
    /// Mean over exposed copies of the seconds from exposure until the last credential in the
    /// copy stops working for the attacker.
    pub exposure_window_s: f64,
    /// Exposures (credential copies the attacker obtained).
    pub leaks: u64,
    pub credentials_issued: u64,
    pub policy_decisions: u64,
    /// Tasks that could not finish: a step after the credential expired, or denied by policy.
    pub failed_tasks: u64,
    pub rotations: u64,
    pub tasks: u64,
}

impl Metrics {
    pub const NAMES: [&'static str; 10] = [
        "blast_radius",
        "blast_radius_weighted",
        "records_touched",
        "exposure_window_s",
        "leaks",
        "credentials_issued",
        "policy_decisions",
        "failed_tasks",
        "rotations",
        "tasks",
    ];

    pub fn values(&self) -> [f64; 10] {
        [
            self.blast_radius as f64,
            self.blast_radius_weighted as f64,
            self.records_touched as f64,
            self.exposure_window_s,
            self.leaks as f64,
            self.credentials_issued as f64,
            self.policy_decisions as f64,
            self.failed_tasks as f64,
            self.rotations as f64,
            self.tasks as f64,
        ]
    }
}

/// One task instance.
#[derive(Debug, Clone)]
struct Task {
    workflow: usize,
    start: u64,
    id: String,
}

/// A copy of an agent's credentials being exposed at `at`, used `delay` seconds later.
#[derive(Debug, Clone)]
struct Exposure {
    agent: usize,
    /// 0 is the agent's working memory (prompts, logs of the running task); others are where
    /// a long-lived secret is stored (config, CI, tickets).
    location: u32,
    at: u64,
    delay: u64,
}

/// The draws of one replication, independent of the design.
#[derive(Debug, Clone)]
pub struct Stream {
    tasks: Vec<Task>,
    exposures: Vec<Exposure>,
    /// Per agent: a hijack window.
    hijacks: Vec<Option<(u64, u64)>>,
    /// Per agent: when it is offboarded, and whether its long-lived credentials stay live.
    offboarded: Vec<Option<(u64, bool)>>,
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
            .map(|_| (rng.r#gen::<f64>() < s.breach.hijack_rate).then(|| (rng.gen_range(0..horizon.max(1)), s.breach.hijack_duration_s)))
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
        let gone = |t: &Task| owner(t).and_then(|i| s.agents[i].offboarded_at_hours).is_some_and(|h| t.start >= (h * 3600.0) as u64);
        tasks.retain(|t| !gone(t));
        Stream { tasks, exposures, hijacks, offboarded }
    }
}

/// A credential as the simulation sees it.
#[derive(Debug, Clone)]
struct Cred {
    /// (resource index, action).
    scope: BTreeSet<(usize, String)>,
    from: u64,
    /// When it stops working (expiry, revocation, rotation + grace); `u64::MAX`: never.
    until: u64,
    /// Sender-constrained: useless to anyone but its holder.
    bound: bool,
    /// The task it belongs to, for per-task designs.
    task: Option<usize>,
}

/// Every (resource, action) pair of the world.
fn all_pairs(s: &Scenario) -> BTreeSet<(usize, String)> {
    s.resources.iter().enumerate().flat_map(|(i, r)| r.actions.iter().map(move |a| (i, a.clone()))).collect()
}

fn resource_index(s: &Scenario, uid: &str) -> usize {
    s.resources.iter().position(|r| r.uid == uid).unwrap_or(0)
}

/// The pairs an agent's workflows need.
fn needs(s: &Scenario, agent: &str) -> BTreeSet<(usize, String)> {
    s.workflows.iter().flat_map(|w| &w.steps).filter(|st| st.agent == agent).map(|st| (resource_index(s, &st.resource), st.action.clone())).collect()
}

/// The pairs one task gives one agent.
fn task_scope(s: &Scenario, workflow: usize, agent: &str) -> BTreeSet<(usize, String)> {
    s.workflows[workflow].steps.iter().filter(|st| st.agent == agent).map(|st| (resource_index(s, &st.resource), st.action.clone())).collect()
}

fn task_end(s: &Scenario, t: &Task) -> u64 {
    t.start + s.workflows[t.workflow].steps.iter().map(|st| st.at).max().unwrap_or(0) + 1
}

/// The attacker's intent context: exfiltration goes to an external destination.
fn attack_context(s: &Scenario) -> String {
    if s.breach.exfiltrate { r#"{"destination":{"host":"paste.attacker.example","external":true}}"#.into() } else { String::new() }
}

/// Play `stream` under `design`.
pub fn run(s: &Scenario, stream: &Stream, design: Design, decider: &mut dyn Decider) -> Metrics {
    let horizon = s.horizon_s();
    let mut m = Metrics { tasks: stream.tasks.len() as u64, ..Metrics::default() };
    let all = all_pairs(s);
    let ttl = s.design.ttl_s;

    // Credentials per agent: long-lived (one per agent) or per task.
    let mut creds: Vec<Vec<Cred>> = vec![Vec::new(); s.agents.len()];
    let agent_index = |id: &str| s.agents.iter().position(|a| a.id == id).unwrap_or(0);
    if design.per_task() {
        for (ti, t) in stream.tasks.iter().enumerate() {
            let end = task_end(s, t);
            let w = &s.workflows[t.workflow];
            let mut failed = false;
            let agents: BTreeSet<&str> = w.steps.iter().map(|st| st.agent.as_str()).collect();
            for a in agents {
                let scope = task_scope(s, t.workflow, a);
                m.credentials_issued += 1;
                if design == Design::Writ {
                    // Issuance checks every scope intent against policy.
                    for (ri, action) in &scope {
                        m.policy_decisions += 1;
                        if !decider.allow(a, action, &s.resources[*ri].uid, &t.id, "", t.start) {
                            failed = true;
                        }
                    }
                }
                // Revoked at task end; never beyond the TTL.
                let until = end.min(t.start + ttl);
                creds[agent_index(a)].push(Cred { scope, from: t.start, until, bound: design == Design::Writ, task: Some(ti) });
            }
            for st in &w.steps {
                if design == Design::Writ {
                    m.policy_decisions += 1;
                    if !decider.allow(&st.agent, &st.action, &st.resource, &t.id, &st.context, t.start + st.at) {
                        failed = true;
                    }
                }
                if st.at >= ttl {
                    failed = true; // the credential expired mid-task
                }
            }
            m.failed_tasks += u64::from(failed);
        }
    } else {
        for (ai, a) in s.agents.iter().enumerate() {
            let scope = if design == Design::LeastPrivilege { needs(s, &a.id) } else { all.clone() };
            if design.rotates() {
                let period = s.design.rotation_period_s;
                let mut from = 0;
                while from < horizon {
                    creds[ai].push(Cred { scope: scope.clone(), from, until: from + period + s.design.rotation_grace_s, bound: false, task: None });
                    m.credentials_issued += 1;
                    from += period;
                    if from < horizon {
                        m.rotations += 1;
                    }
                }
            } else {
                creds[ai].push(Cred { scope, from: 0, until: u64::MAX, bound: false, task: None });
                m.credentials_issued += 1;
            }
        }
    }

    // Offboarding: per-task designs cut the agent off; long-lived secrets are revoked unless
    // (with the cited probability) they are forgotten and stay live.
    for (ai, off) in stream.offboarded.iter().enumerate() {
        let Some((at, stays_live)) = *off else { continue };
        if design.per_task() || !stays_live {
            for c in &mut creds[ai] {
                c.until = c.until.min(at.max(c.from));
            }
        }
    }

    // Detection after the dwell time triggers the design's response: the static secret is
    // replaced (rotation designs keep the old one for the grace period), a JIT token revoked,
    // a Writ agent cut off.
    let dwell = s.breach.detection_dwell_s;
    let response = |detected: u64| if design.rotates() { detected.saturating_add(s.design.rotation_grace_s) } else { detected };

    // What the attacker reached: (resource, action) pairs.
    let mut reach: BTreeSet<(usize, String)> = BTreeSet::new();
    let mut windows = Vec::new();
    // Leaks: the credentials held at the exposed location at that time.
    for e in &stream.exposures {
        // Per-task and vaulted credentials live only in the agent's working memory.
        if e.location != 0 && (design.per_task() || design == Design::Vaulted) {
            continue;
        }
        // The exposure window: until the last credential in the exposed copy stops working.
        let mut window: Option<u64> = None;
        for c in creds[e.agent].iter().filter(|c| c.from <= e.at && e.at < c.until) {
            m.leaks += 1;
            let until = c.until.min(response(e.at.saturating_add(dwell)));
            let usable_until = if c.bound { e.at } else { until.min(horizon) };
            window = Some(window.unwrap_or(0).max(usable_until.saturating_sub(e.at)));
            let use_at = e.at + e.delay;
            if !c.bound && use_at < until && use_at < horizon {
                reach.extend(c.scope.iter().cloned());
            }
        }
        windows.extend(window.map(|w| w as f64));
    }
    // Hijacks: the attacker acts as the agent through what it holds during the window.
    let ctx = attack_context(s);
    for (ai, h) in stream.hijacks.iter().enumerate() {
        let Some((start, len)) = *h else { continue };
        // Detected after the dwell time at the latest.
        let end = (start + len.min(dwell)).min(horizon);
        for c in creds[ai].iter().filter(|c| c.from < end && start < c.until) {
            for (ri, action) in &c.scope {
                let ok = match design {
                    // Every use is an intent checked against policy, with the attacker's context.
                    Design::Writ => {
                        m.policy_decisions += 1;
                        let task = c.task.map(|t| stream.tasks[t].id.as_str()).unwrap_or("");
                        decider.allow(&s.agents[ai].id, action, &s.resources[*ri].uid, task, &ctx, start.max(c.from))
                    }
                    _ => true,
                };
                if ok {
                    reach.insert((*ri, action.clone()));
                }
            }
        }
    }
    m.blast_radius = reach.len() as u64;
    m.blast_radius_weighted = reach.iter().map(|(ri, _)| 1 + u64::from(s.resources[*ri].sensitivity)).sum();
    m.records_touched = reach.iter().map(|(ri, _)| s.resources[*ri].records).sum();
    m.exposure_window_s = if windows.is_empty() { 0.0 } else { windows.iter().sum::<f64>() / windows.len() as f64 };
    m
}
