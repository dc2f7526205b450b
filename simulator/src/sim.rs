//! One replication: draw the event stream (task arrivals, where credential copies live and
//! when they are exposed, exploit delays, hijacks) from the seed — the same stream for every
//! design — then play it under one design and measure what the attacker reached.

use crate::decide::Decider;
use crate::scenario::Scenario;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

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
    pub const ALL: [Design; 6] =
        [Design::Static, Design::RotationOnly, Design::Vaulted, Design::LeastPrivilege, Design::Jit, Design::Writ];

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
    /// Pairs a credential the attacker obtained allowed while it worked, but that the attacker
    /// never exercised (the credential died first, or policy refused the intent).
    pub reachable_not_exercised: u64,
    /// Records of the exercised pairs.
    pub records_touched: u64,
    /// Mean over exposed copies of the seconds from exposure until the last credential in the
    /// copy stops working for the attacker.
    pub exposure_window_s: f64,
    /// The longest chain of secrets found on compromised resources that the attacker used
    /// (0: only what leaked or was hijacked directly).
    pub lateral_hops: u64,
    /// Credentials the attacker obtained (exposed copies and secrets found on resources).
    pub leaks: u64,
    pub credentials_issued: u64,
    /// Credentials re-issued before expiry during a task (JIT designs with refresh).
    pub refreshes: u64,
    pub policy_decisions: u64,
    /// Tasks that could not finish: a step after the credential expired or was revoked, or
    /// an intent denied by policy.
    pub failed_tasks: u64,
    pub rotations: u64,
    pub tasks: u64,
    /// Tool calls the workflows made (steps run).
    pub tool_calls: u64,
    /// Microseconds the design adds to a tool call on average (issuance, presentation, vault
    /// fetches at the scenario's per-operation costs, over the tool calls made).
    pub latency_per_call_us: f64,
}

impl Metrics {
    pub const NAMES: [&'static str; 15] = [
        "blast_radius",
        "blast_radius_weighted",
        "reachable_not_exercised",
        "records_touched",
        "exposure_window_s",
        "lateral_hops",
        "leaks",
        "credentials_issued",
        "refreshes",
        "policy_decisions",
        "failed_tasks",
        "rotations",
        "tasks",
        "tool_calls",
        "latency_per_call_us",
    ];

    pub fn values(&self) -> [f64; 15] {
        [
            self.blast_radius as f64,
            self.blast_radius_weighted as f64,
            self.reachable_not_exercised as f64,
            self.records_touched as f64,
            self.exposure_window_s,
            self.lateral_hops as f64,
            self.leaks as f64,
            self.credentials_issued as f64,
            self.refreshes as f64,
            self.policy_decisions as f64,
            self.failed_tasks as f64,
            self.rotations as f64,
            self.tasks as f64,
            self.tool_calls as f64,
            self.latency_per_call_us,
        ]
    }

    /// The value of the metric called `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        Self::NAMES.iter().position(|n| *n == name).map(|i| self.values()[i])
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
    /// Per exposure: whether the leaked long-lived secret is remediated after the delay.
    remediated: Vec<bool>,
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

/// Seconds of simulated time.
type Time = u64;

/// What happens, in time order (ties broken by the order events were scheduled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// A task starts: per-task credentials are issued, a vault is read.
    TaskStart(usize),
    /// Step `.1` of task `.0`: a tool call.
    Step(usize, usize),
    /// Agent `.1` of task `.0` refreshes its credential.
    Refresh(usize, usize),
    /// The task ends: its credentials are revoked.
    TaskEnd(usize),
    /// Holder `.0` rotates its credential for protocol group `.1`.
    Rotate(usize, usize),
    /// Exposure `.0` of the stream: a copy of an agent's credentials leaks.
    Expose(usize),
    /// The attacker uses credential `.0`, found `.1` hops from the original breach.
    Use(usize, u64),
    /// Agent `.0` is hijacked; the hijack ends.
    Hijack(usize),
    HijackEnd(usize),
    /// Agent `.0` is offboarded.
    Offboard(usize),
    /// A breach of agent `.0` is detected: the design responds.
    Detect(usize),
    /// A leaked long-lived secret of agent `.0` is replaced after a scanner's alert.
    Remediate(usize),
}

/// Long-lived designs: one protocol group of a holder — its current credential, the group's
/// scope, and its rotation period.
type Group = (usize, std::rc::Rc<[usize]>, Time);

/// A credential as the simulation sees it.
#[derive(Debug, Clone)]
struct Cred {
    /// Indices into the world's (resource, action) pairs.
    scope: std::rc::Rc<[usize]>,
    from: Time,
    /// When it stops working (expiry, revocation, rotation + grace); `Time::MAX`: never.
    until: Time,
    /// Sender-constrained: useless to anyone but its holder.
    bound: bool,
    /// The task it belongs to, for per-task designs.
    task: Option<usize>,
}

impl Cred {
    fn works(&self, now: Time) -> bool {
        self.from <= now && now < self.until
    }
}

/// Every attacker use of a credential and every moment one stopped working, keyed by
/// (time, event sequence), for checking that nothing works after it ended.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// (credential, time, sequence) of each successful use by the attacker.
    pub uses: Vec<(usize, Time, u64)>,
    /// (credential, time, sequence) from which it no longer works; an expiry at `t` is
    /// `(t, 0)`: nothing at `t` or later.
    pub ends: Vec<(usize, Time, u64)>,
}

/// The world as the engine indexes it (the same for every design).
struct World {
    /// (resource, action) pairs.
    pairs: Vec<(usize, String)>,
    /// Per workflow, per step: the pair.
    step_pair: Vec<Vec<usize>>,
    /// Per workflow: the distinct agents of its steps, in order, with their task scope.
    task_agents: Vec<Vec<(usize, std::rc::Rc<[usize]>)>>,
    /// Per workflow: the offset of its last step.
    duration: Vec<Time>,
    /// Per resource: the agents whose secret is stored on it.
    holds: Vec<Vec<usize>>,
    /// Per agent: its holder of long-lived credentials (its shared account, or itself).
    holder: Vec<usize>,
    /// Per holder: its agents.
    members: Vec<Vec<usize>>,
}

impl World {
    fn new(s: &Scenario) -> World {
        let pairs: Vec<(usize, String)> =
            s.resources.iter().enumerate().flat_map(|(i, r)| r.actions.iter().map(move |a| (i, a.clone()))).collect();
        let agent = |id: &str| s.agents.iter().position(|a| a.id == id).unwrap_or(0);
        let pair = |st: &crate::scenario::Step| {
            let ri = s.resources.iter().position(|r| r.uid == st.resource).unwrap_or(0);
            pairs.iter().position(|(r, a)| *r == ri && *a == st.action).unwrap_or(0)
        };
        let step_pair: Vec<Vec<usize>> = s.workflows.iter().map(|w| w.steps.iter().map(pair).collect()).collect();
        let task_agents = s
            .workflows
            .iter()
            .enumerate()
            .map(|(wi, w)| {
                let mut agents: Vec<usize> = Vec::new();
                for st in &w.steps {
                    let a = agent(&st.agent);
                    if !agents.contains(&a) {
                        agents.push(a);
                    }
                }
                agents
                    .into_iter()
                    .map(|a| {
                        let scope: BTreeSet<usize> = w
                            .steps
                            .iter()
                            .zip(&step_pair[wi])
                            .filter(|(st, _)| agent(&st.agent) == a)
                            .map(|(_, p)| *p)
                            .collect();
                        (a, scope.into_iter().collect::<Vec<_>>().into())
                    })
                    .collect()
            })
            .collect();
        let duration = s.workflows.iter().map(|w| w.steps.iter().map(|st| st.at).max().unwrap_or(0)).collect();
        let holds = s.resources.iter().map(|r| r.holds.iter().map(|id| agent(id)).collect()).collect();
        let mut holder = Vec::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        let mut accounts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for (ai, a) in s.agents.iter().enumerate() {
            let h = match a.account.as_deref() {
                Some(acc) => *accounts.entry(acc).or_insert_with(|| {
                    members.push(Vec::new());
                    members.len() - 1
                }),
                None => {
                    members.push(Vec::new());
                    members.len() - 1
                }
            };
            members[h].push(ai);
            holder.push(h);
        }
        World { pairs, step_pair, task_agents, duration, holds, holder, members }
    }

    /// The pairs of every resource.
    fn all(&self) -> Vec<usize> {
        (0..self.pairs.len()).collect()
    }

    /// The pairs the workflows of `agents` need.
    fn needs(&self, agents: &[usize]) -> Vec<usize> {
        let set: BTreeSet<usize> = self
            .task_agents
            .iter()
            .flatten()
            .filter(|(a, _)| agents.contains(a))
            .flat_map(|(_, sc)| sc.iter().copied())
            .collect();
        set.into_iter().collect()
    }
}

/// The attacker's intent context: exfiltration goes to an external destination.
fn attack_context(s: &Scenario) -> String {
    if s.breach.exfiltrate {
        r#"{"destination":{"host":"paste.attacker.example","external":true}}"#.into()
    } else {
        String::new()
    }
}

/// One replication under one design: a discrete-event queue over integer seconds.
struct Engine<'a> {
    s: &'a Scenario,
    w: &'a World,
    stream: &'a Stream,
    design: Design,
    decider: &'a mut dyn Decider,
    trace: Option<&'a mut Trace>,
    horizon: Time,
    queue: BinaryHeap<Reverse<(Time, u64, Ev)>>,
    seq: u64,
    /// The sequence number of the event being handled.
    current_seq: u64,
    creds: Vec<Cred>,
    /// Per holder (per agent in per-task designs): every credential it was given.
    held: Vec<Vec<usize>>,
    /// Long-lived designs, per holder: the current credential of each protocol group, with
    /// the group's protocol scope and rotation period.
    current: Vec<Vec<Group>>,
    /// Per holder: revoked for good at offboarding.
    dead: Vec<bool>,
    /// Per agent: offboarded.
    offboarded: Vec<bool>,
    /// Per agent: the end of a running hijack.
    hijacked: Vec<Option<Time>>,
    /// Per task: (agent, credential) in issue order; failed.
    task_creds: Vec<Vec<(usize, usize)>>,
    failed: Vec<bool>,
    /// Per exposure: when, and the credentials it gave the attacker.
    exposed: Vec<(Time, Vec<usize>)>,
    /// Secrets found on resources already taken.
    found: BTreeSet<usize>,
    exercised: Vec<bool>,
    reachable: Vec<bool>,
    ctx: String,
    m: Metrics,
    latency_us: f64,
    calls: u64,
}

impl Engine<'_> {
    fn at(&mut self, t: Time, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, ev)));
    }

    /// Attacker and rotation events happen only inside the horizon.
    fn at_within(&mut self, t: Time, ev: Ev) {
        if t < self.horizon {
            self.at(t, ev);
        }
    }

    fn holder(&self, agent: usize) -> usize {
        if self.design.per_task() { agent } else { self.w.holder[agent] }
    }

    /// Stores copies of long-lived secrets at rest (config, CI, tickets, resources).
    fn stores_at_rest(&self) -> bool {
        !self.design.per_task() && self.design != Design::Vaulted
    }

    fn hijacker(&self, holder: usize, now: Time) -> Option<usize> {
        let members: &[usize] =
            if self.design.per_task() { std::slice::from_ref(&holder) } else { &self.w.members[holder] };
        members.iter().copied().find(|a| self.hijacked[*a].is_some_and(|end| now < end))
    }

    fn new_cred(&mut self, holder: usize, cred: Cred) -> usize {
        let id = self.creds.len();
        if let Some(t) = self.trace.as_deref_mut()
            && cred.until != Time::MAX
        {
            t.ends.push((id, cred.until, 0));
        }
        self.creds.push(cred);
        self.held[holder].push(id);
        self.m.credentials_issued += 1;
        id
    }

    /// Credential `c` stops working now (revocation, replacement).
    fn end(&mut self, c: usize, now: Time) {
        if now < self.creds[c].until {
            self.creds[c].until = now;
            if let Some(t) = self.trace.as_deref_mut() {
                t.ends.push((c, now, self.current_seq));
            }
        }
    }

    /// Credential `c` stops working at `t` (a rotated-out secret's grace period).
    fn end_at(&mut self, c: usize, t: Time) {
        if t < self.creds[c].until {
            self.creds[c].until = t;
            if let Some(tr) = self.trace.as_deref_mut() {
                tr.ends.push((c, t, 0));
            }
        }
    }

    fn live(&self, holder: usize, now: Time) -> Vec<usize> {
        self.held[holder].iter().copied().filter(|c| self.creds[*c].works(now)).collect()
    }

    fn decide(&mut self, agent: usize, pair: usize, task: Option<usize>, context: &str, now: Time) -> bool {
        self.m.policy_decisions += 1;
        let (ri, action) = &self.w.pairs[pair];
        let task = task.map_or("", |t| self.stream.tasks[t].id.as_str());
        self.decider.allow(&self.s.agents[agent].id, action, &self.s.resources[*ri].uid, task, context, now)
    }

    /// The attacker exercises `pair` at `now`, `hop` secrets away from the breach, and takes
    /// any secret stored on the resource.
    fn exercise(&mut self, pair: usize, hop: u64, now: Time) {
        self.exercised[pair] = true;
        self.m.lateral_hops = self.m.lateral_hops.max(hop);
        if !self.stores_at_rest() {
            return;
        }
        let ri = self.w.pairs[pair].0;
        for bi in 0..self.w.holds[ri].len() {
            let h = self.holder(self.w.holds[ri][bi]);
            for c in self.live(h, now) {
                if self.found.insert(c) {
                    self.m.leaks += 1;
                    self.obtained(c);
                    self.at_within(now + self.s.breach.lateral_delay_s, Ev::Use(c, hop + 1));
                }
            }
        }
    }

    /// The attacker holds credential `c`, working now: what it allows is within reach
    /// (unless it is bound to its holder's key).
    fn obtained(&mut self, c: usize) {
        if !self.creds[c].bound {
            for &p in self.creds[c].scope.iter() {
                self.reachable[p] = true;
            }
        }
    }

    fn traced_use(&mut self, c: usize, now: Time) {
        let seq = self.current_seq;
        if let Some(t) = self.trace.as_deref_mut() {
            t.uses.push((c, now, seq));
        }
    }

    /// A hijacked agent acts through credential `c`: in the Writ design every intent is
    /// checked against policy with the attacker's context.
    fn act(&mut self, agent: usize, c: usize, now: Time) {
        if !self.creds[c].works(now) {
            return;
        }
        self.traced_use(c, now);
        let scope = self.creds[c].scope.clone();
        let task = self.creds[c].task;
        let ctx = std::mem::take(&mut self.ctx);
        for &p in scope.iter() {
            self.reachable[p] = true;
            if self.design != Design::Writ || self.decide(agent, p, task, &ctx, now) {
                self.exercise(p, 0, now);
            }
        }
        self.ctx = ctx;
    }

    /// A credential was just given to `holder`: a hijacker of it acts through it at once.
    fn given(&mut self, holder: usize, c: usize, now: Time) {
        if let Some(a) = self.hijacker(holder, now) {
            self.act(a, c, now);
        }
    }

    /// Per-task designs: a credential for `agent` in task `ti`; `None` when policy refuses.
    fn issue(&mut self, ti: usize, agent: usize, scope: std::rc::Rc<[usize]>, now: Time) -> Option<usize> {
        if self.design == Design::Writ {
            let mut allowed = true;
            for &p in scope.iter() {
                allowed &= self.decide(agent, p, Some(ti), "", now);
            }
            if !allowed {
                return None;
            }
        }
        self.latency_us += self.s.cost.issue_us;
        let cred = Cred {
            scope,
            from: now,
            until: now.saturating_add(self.s.design.ttl_s),
            bound: self.design == Design::Writ,
            task: Some(ti),
        };
        let c = self.new_cred(agent, cred);
        self.task_creds[ti].push((agent, c));
        self.given(agent, c, now);
        Some(c)
    }

    fn task_end(&self, ti: usize) -> Time {
        let t = &self.stream.tasks[ti];
        t.start + self.w.duration[t.workflow] + 1
    }

    fn schedule_refresh(&mut self, ti: usize, agent: usize, issued: Time) {
        let (ttl, before) = (self.s.design.ttl_s, self.s.design.refresh_before_s);
        if before > 0 {
            let at = issued + ttl - before;
            if at < self.task_end(ti) {
                self.at(at, Ev::Refresh(ti, agent));
            }
        }
    }

    /// Long-lived designs: replace the credential of group `g` of `holder` now; the old one
    /// works until `old_until`.
    fn replace(&mut self, holder: usize, g: usize, now: Time, old_until: Time) {
        let (old, scope, _) = self.current[holder][g].clone();
        self.end_at(old, old_until.max(now));
        let c = self.new_cred(holder, Cred { scope, from: now, until: Time::MAX, bound: false, task: None });
        self.current[holder][g].0 = c;
        self.given(holder, c, now);
    }

    /// Long-lived designs: replace every secret of `holder` now (unless revoked for good);
    /// rotation designs keep the old ones for the grace period.
    fn replace_all(&mut self, holder: usize, now: Time) {
        if self.dead[holder] {
            return;
        }
        let until = if self.design.rotates() { now.saturating_add(self.s.design.rotation_grace_s) } else { now };
        for g in 0..self.current[holder].len() {
            if self.design.rotates() {
                self.m.rotations += 1;
            }
            self.replace(holder, g, now, until);
        }
    }

    fn setup(&mut self) {
        let s = self.s;
        for ti in 0..self.stream.tasks.len() {
            self.at(self.stream.tasks[ti].start, Ev::TaskStart(ti));
        }
        if !self.design.per_task() {
            for h in 0..self.w.members.len() {
                let scope =
                    if self.design == Design::LeastPrivilege { self.w.needs(&self.w.members[h]) } else { self.w.all() };
                // Rotation designs: one credential per protocol, each on its own period.
                let groups: Vec<(Vec<usize>, Time)> = if self.design.rotates() {
                    let protocols: BTreeSet<&str> =
                        scope.iter().map(|p| s.resources[self.w.pairs[*p].0].protocol.as_str()).collect();
                    protocols
                        .into_iter()
                        .map(|proto| {
                            (
                                scope
                                    .iter()
                                    .copied()
                                    .filter(|p| s.resources[self.w.pairs[*p].0].protocol == proto)
                                    .collect(),
                                s.design.rotation_period(proto),
                            )
                        })
                        .collect()
                } else {
                    vec![(scope, Time::MAX)]
                };
                for (g, (scope, period)) in groups.into_iter().enumerate() {
                    let scope: std::rc::Rc<[usize]> = scope.into();
                    let c = self.new_cred(
                        h,
                        Cred { scope: scope.clone(), from: 0, until: Time::MAX, bound: false, task: None },
                    );
                    self.current[h].push((c, scope, period));
                    if self.design.rotates() {
                        self.at_within(period, Ev::Rotate(h, g));
                    }
                }
            }
        }
        for e in 0..self.stream.exposures.len() {
            self.at_within(self.stream.exposures[e].at, Ev::Expose(e));
        }
        for a in 0..s.agents.len() {
            if let Some((start, _)) = self.stream.hijacks[a] {
                self.at_within(start, Ev::Hijack(a));
            }
            if let Some((at, _)) = self.stream.offboarded[a] {
                self.at_within(at, Ev::Offboard(a));
            }
        }
    }

    fn handle(&mut self, now: Time, ev: Ev) {
        let s = self.s;
        match ev {
            Ev::TaskStart(ti) => {
                let wi = self.stream.tasks[ti].workflow;
                let agents = &self.w.task_agents[wi];
                if self.design.per_task() {
                    for k in 0..agents.len() {
                        let (a, scope) = self.w.task_agents[wi][k].clone();
                        match self.issue(ti, a, scope, now) {
                            Some(_) => self.schedule_refresh(ti, a, now),
                            None => self.failed[ti] = true,
                        }
                    }
                } else if self.design == Design::Vaulted {
                    self.latency_us += s.cost.vault_fetch_us * agents.len() as f64;
                }
                let start = self.stream.tasks[ti].start;
                for (si, st) in s.workflows[wi].steps.iter().enumerate() {
                    self.at(start + st.at, Ev::Step(ti, si));
                }
                self.at(self.task_end(ti), Ev::TaskEnd(ti));
            }
            Ev::Step(ti, si) => {
                self.calls += 1;
                if !self.design.per_task() {
                    return;
                }
                let wi = self.stream.tasks[ti].workflow;
                let st = &s.workflows[wi].steps[si];
                let agent = s.agents.iter().position(|a| a.id == st.agent).unwrap_or(0);
                // The agent's newest credential of this task.
                let cred = self.task_creds[ti].iter().rev().find(|(a, _)| *a == agent).map(|(_, c)| *c);
                match cred {
                    Some(c) if self.creds[c].works(now) => {
                        if self.design == Design::Writ {
                            self.latency_us += s.cost.present_us;
                            let pair = self.w.step_pair[wi][si];
                            if !self.decide(agent, pair, Some(ti), &st.context, now) {
                                self.failed[ti] = true;
                            }
                        }
                    }
                    // Expired, revoked, or never issued.
                    _ => self.failed[ti] = true,
                }
            }
            Ev::Refresh(ti, agent) => {
                let cred = self.task_creds[ti].iter().rev().find(|(a, _)| *a == agent).map(|(_, c)| *c);
                if let Some(c) = cred.filter(|c| self.creds[*c].works(now)) {
                    let scope = self.creds[c].scope.clone();
                    self.m.refreshes += 1;
                    match self.issue(ti, agent, scope, now) {
                        Some(_) => self.schedule_refresh(ti, agent, now),
                        None => self.failed[ti] = true,
                    }
                }
            }
            Ev::TaskEnd(ti) => {
                // Per-task credentials are revoked when the task ends.
                for k in 0..self.task_creds[ti].len() {
                    let c = self.task_creds[ti][k].1;
                    self.end(c, now);
                }
                self.m.failed_tasks += u64::from(self.failed[ti]);
            }
            Ev::Rotate(h, g) => {
                if self.dead[h] {
                    return;
                }
                self.m.rotations += 1;
                self.replace(h, g, now, now.saturating_add(s.design.rotation_grace_s));
                let period = self.current[h][g].2;
                self.at_within(now.saturating_add(period), Ev::Rotate(h, g));
            }
            Ev::Expose(e) => {
                let x = &self.stream.exposures[e];
                // Per-task and vaulted credentials live only in the agent's working memory.
                if x.location != 0 && !self.stores_at_rest() {
                    return;
                }
                let (agent, delay) = (x.agent, x.delay);
                let got = self.live(self.holder(agent), now);
                self.m.leaks += got.len() as u64;
                for &c in &got {
                    self.obtained(c);
                    if !self.creds[c].bound {
                        self.at_within(now.saturating_add(delay), Ev::Use(c, 0));
                    }
                }
                if !got.is_empty() && self.stream.remediated[e] && !self.design.per_task() {
                    self.at_within(now.saturating_add(s.breach.remediation_delay_s), Ev::Remediate(agent));
                }
                self.exposed.push((now, got));
                self.at_within(now.saturating_add(s.breach.detection_dwell_s), Ev::Detect(agent));
            }
            Ev::Use(c, hop) => {
                let scope = self.creds[c].scope.clone();
                if self.creds[c].works(now) {
                    self.traced_use(c, now);
                    for &p in scope.iter() {
                        self.exercise(p, hop, now);
                    }
                }
            }
            Ev::Hijack(a) => {
                let len = self.stream.hijacks[a].map_or(0, |h| h.1);
                // Detection ends the hijack at the latest.
                let end = now.saturating_add(len.min(s.breach.detection_dwell_s)).min(self.horizon);
                self.hijacked[a] = Some(end);
                self.at(end, Ev::HijackEnd(a));
                self.at_within(now.saturating_add(s.breach.detection_dwell_s), Ev::Detect(a));
                let h = self.holder(a);
                for c in self.live(h, now) {
                    self.act(a, c, now);
                }
            }
            Ev::HijackEnd(a) => self.hijacked[a] = None,
            Ev::Offboard(a) => {
                self.offboarded[a] = true;
                let stays_live = self.stream.offboarded[a].is_some_and(|o| o.1);
                let h = self.holder(a);
                if self.design.per_task() {
                    // Cut off: nothing it holds works any more.
                    for c in self.live(h, now) {
                        self.end(c, now);
                    }
                } else if !stays_live && self.w.members[h].iter().all(|m| self.offboarded[*m]) {
                    // Revoked — unless the secret is forgotten (the cited 91%) or shared with
                    // agents still at work.
                    self.dead[h] = true;
                    for c in self.live(h, now) {
                        self.end(c, now);
                    }
                }
            }
            Ev::Detect(a) => {
                let h = self.holder(a);
                if self.design.per_task() {
                    // Revoke the agent's live tokens (Writ: cut the agent off).
                    for c in self.live(h, now) {
                        self.end(c, now);
                    }
                } else {
                    self.replace_all(h, now);
                }
            }
            Ev::Remediate(a) => {
                let h = self.holder(a);
                self.replace_all(h, now);
            }
        }
    }
}

/// Play `stream` under `design`.
pub fn run(s: &Scenario, stream: &Stream, design: Design, decider: &mut dyn Decider) -> Metrics {
    run_traced(s, stream, design, decider, None)
}

/// [`run`], recording every attacker use and every credential end into `trace`.
pub fn run_traced(
    s: &Scenario,
    stream: &Stream,
    design: Design,
    decider: &mut dyn Decider,
    trace: Option<&mut Trace>,
) -> Metrics {
    let w = World::new(s);
    let holders = if design.per_task() { s.agents.len() } else { w.members.len() };
    let mut e = Engine {
        s,
        w: &w,
        stream,
        design,
        decider,
        trace,
        horizon: s.horizon_s(),
        queue: BinaryHeap::new(),
        seq: 0,
        current_seq: 0,
        creds: Vec::new(),
        held: vec![Vec::new(); holders],
        current: vec![Vec::new(); holders],
        dead: vec![false; holders],
        offboarded: vec![false; s.agents.len()],
        hijacked: vec![None; s.agents.len()],
        task_creds: vec![Vec::new(); stream.tasks.len()],
        failed: vec![false; stream.tasks.len()],
        exposed: Vec::new(),
        found: BTreeSet::new(),
        exercised: vec![false; w.pairs.len()],
        reachable: vec![false; w.pairs.len()],
        ctx: attack_context(s),
        m: Metrics { tasks: stream.tasks.len() as u64, ..Metrics::default() },
        latency_us: 0.0,
        calls: 0,
    };
    e.setup();
    while let Some(Reverse((now, seq, ev))) = e.queue.pop() {
        e.current_seq = seq;
        e.handle(now, ev);
    }
    let horizon = e.horizon;
    let mut m = std::mem::take(&mut e.m);
    let reach: Vec<usize> = (0..w.pairs.len()).filter(|p| e.exercised[*p]).collect();
    m.blast_radius = reach.len() as u64;
    m.blast_radius_weighted = reach.iter().map(|p| 1 + u64::from(s.resources[w.pairs[*p].0].sensitivity)).sum();
    m.records_touched = reach.iter().map(|p| s.resources[w.pairs[*p].0].records).sum();
    m.reachable_not_exercised = (0..w.pairs.len()).filter(|p| e.reachable[*p] && !e.exercised[*p]).count() as u64;
    // The exposure window: until the last credential in the exposed copy stops working.
    let windows: Vec<f64> = e
        .exposed
        .iter()
        .filter(|(_, got)| !got.is_empty())
        .map(|(at, got)| {
            got.iter()
                .map(|c| {
                    let c = &e.creds[*c];
                    if c.bound { 0 } else { c.until.min(horizon).saturating_sub(*at) }
                })
                .max()
                .unwrap_or(0) as f64
        })
        .collect();
    m.exposure_window_s = if windows.is_empty() { 0.0 } else { windows.iter().sum::<f64>() / windows.len() as f64 };
    m.tool_calls = e.calls;
    m.latency_per_call_us = if e.calls == 0 { 0.0 } else { e.latency_us / e.calls as f64 };
    m
}
