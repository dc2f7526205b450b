//! The event loop of one replication under one design: events in time order (ties in the
//! order they were scheduled), each handled by the design's rules; then the metrics.

use crate::decide::{Decider, OPENER, Presented};
use crate::design::Design;
use crate::metrics::Metrics;
use crate::model::{Cred, Group, Time, World};
use crate::scenario::Scenario;
use crate::stream::Stream;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

/// What happens, in time order (ties broken by the order events were scheduled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ev {
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
    /// The attacker uses credential `.0`, found `.1` hops from the original breach; `.2`: with
    /// its holder's key (stolen memory), so it presents as the holder.
    Use(usize, u64, bool),
    /// Hijack `.0` of the stream begins; agent `.0`'s hijack ends (unless a later one runs on).
    Hijack(usize),
    HijackEnd(usize),
    /// The warm-up ends: the counters so far are left out of the metrics.
    WarmupEnd,
    /// Agent `.0` is offboarded.
    Offboard(usize),
    /// A breach of agent `.0` is detected: the design responds.
    Detect(usize),
    /// A leaked long-lived secret of agent `.0` is replaced after a scanner's alert.
    Remediate(usize),
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

/// One replication under one design: a discrete-event queue over integer seconds.
pub(crate) struct EventLoop<'a> {
    pub(crate) s: &'a Scenario,
    pub(crate) w: &'a World,
    pub(crate) stream: &'a Stream,
    pub(crate) design: Design,
    pub(crate) decider: &'a mut dyn Decider,
    pub(crate) trace: Option<&'a mut Trace>,
    pub(crate) horizon: Time,
    /// The end of the warm-up; the counters when it ended (metrics, latency, calls).
    pub(crate) warmup: Time,
    pub(crate) before_warmup: Option<(Metrics, f64, u64)>,
    pub(crate) queue: BinaryHeap<Reverse<(Time, u64, Ev)>>,
    pub(crate) seq: u64,
    /// The sequence number of the event being handled.
    pub(crate) current_seq: u64,
    pub(crate) creds: Vec<Cred>,
    /// Per holder (per agent in per-task designs): every credential it was given.
    pub(crate) held: Vec<Vec<usize>>,
    /// Long-lived designs, per holder: the current credential of each protocol group, with
    /// the group's protocol scope and rotation period.
    pub(crate) current: Vec<Vec<Group>>,
    /// Per holder: revoked for good at offboarding.
    pub(crate) dead: Vec<bool>,
    /// Per agent: offboarded.
    pub(crate) offboarded: Vec<bool>,
    /// Per agent: the end of a running hijack.
    pub(crate) hijacked: Vec<Option<Time>>,
    /// Per task: (agent, credential) in issue order; failed.
    pub(crate) task_creds: Vec<Vec<(usize, usize)>>,
    pub(crate) failed: Vec<bool>,
    /// Per exposure: when, and the credentials it gave the attacker.
    pub(crate) exposed: Vec<(Time, Vec<usize>)>,
    /// Secrets found on resources already taken.
    pub(crate) found: BTreeSet<usize>,
    /// The credentials of the unmanaged `[[secret]]`s.
    pub(crate) secret_creds: Vec<usize>,
    /// Tasks started and not yet ended.
    pub(crate) running: BTreeSet<usize>,
    pub(crate) exercised: Vec<bool>,
    pub(crate) reachable: Vec<bool>,
    pub(crate) m: Metrics,
    pub(crate) latency_us: f64,
    pub(crate) calls: u64,
}

impl EventLoop<'_> {
    pub(crate) fn at(&mut self, t: Time, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, ev)));
    }

    /// Attacker and rotation events happen only inside the horizon.
    pub(crate) fn at_within(&mut self, t: Time, ev: Ev) {
        if t < self.horizon {
            self.at(t, ev);
        }
    }

    fn setup(&mut self) {
        let s = self.s;
        // Unmanaged secrets: never expire, held by no agent, the same in every design.
        for k in 0..self.w.secrets.len() {
            self.secret_creds.push(self.creds.len());
            self.creds.push(Cred::bearer(self.w.secrets[k].clone(), 0, Time::MAX, 0));
        }
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
                    let c = self.new_cred(h, Cred::bearer(scope.clone(), 0, Time::MAX, h));
                    self.current[h].push((c, scope, period));
                    if self.design.rotates() {
                        // The holder's schedule: every `offset + k × period` (see `Stream`).
                        let first = match self.stream.rotation_offset[self.w.members[h][0]] % period {
                            0 => period,
                            r => r,
                        };
                        self.at_within(first, Ev::Rotate(h, g));
                    }
                }
            }
        }
        for e in 0..self.stream.exposures.len() {
            self.at_within(self.stream.exposures[e].at, Ev::Expose(e));
        }
        for k in 0..self.stream.hijacks.len() {
            self.at_within(self.stream.hijacks[k].at, Ev::Hijack(k));
        }
        if self.warmup > 0 {
            self.at_within(self.warmup, Ev::WarmupEnd);
        }
        for a in 0..s.agents.len() {
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
                if self.design == Design::Writ {
                    // Tasks are records: the broker opens this one, naming its agents, until
                    // the instance ends; a fixed task id is one task its instances share, open
                    // for as long as a task may be (a week), opened again when it has ended.
                    let members: Vec<String> = agents.iter().map(|(a, _)| s.agents[*a].id.clone()).collect();
                    let deadline = if s.workflows[wi].task.is_some() {
                        now + writ_core::ledger::MAX_TASK_SECS
                    } else {
                        self.task_end(ti)
                    };
                    self.decider.open_task(OPENER, &self.stream.tasks[ti].id, &members, deadline, now);
                }
                let agents = &self.w.task_agents[wi];
                if self.design.per_task() {
                    for k in 0..agents.len() {
                        let (a, scope) = self.w.task_agents[wi][k].clone();
                        match self.grant(ti, a, scope, now) {
                            Some(_) => self.schedule_refresh(ti, a, now),
                            None => self.failed[ti] = true,
                        }
                    }
                } else if self.design == Design::Vaulted {
                    self.latency_us += s.cost.vault_fetch_us * agents.len() as f64;
                }
                self.running.insert(ti);
                // A hijacked member asks for more in its new task.
                for k in 0..self.w.task_agents[wi].len() {
                    let a = self.w.task_agents[wi][k].0;
                    if self.hijacker(self.holder(a), now) == Some(a) {
                        self.ask_for_more(a, Some(ti), now);
                    }
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
                        if let Some(token) = self.creds[c].token.clone() {
                            // Writ: the agent presents its credential for the step's intent.
                            self.latency_us += s.cost.present_us;
                            let ask = self.ask(self.w.step_pair[wi][si], Some(ti), &st.context);
                            self.m.policy_decisions += 1;
                            if self.decider.present(&token, &s.agents[agent].id, ask, now) != Presented::Allowed {
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
                    match self.grant(ti, agent, scope, now) {
                        Some(_) => self.schedule_refresh(ti, agent, now),
                        None => self.failed[ti] = true,
                    }
                }
            }
            Ev::TaskEnd(ti) => {
                self.running.remove(&ti);
                // Per-task credentials are revoked when the task ends. Writ revokes a task's
                // credentials by ending the task: one whose id its instances share stays open,
                // and this instance's credentials live out their lifetimes.
                let shared = s.workflows[self.stream.tasks[ti].workflow].task.is_some();
                if !(self.design == Design::Writ && shared) {
                    for k in 0..self.task_creds[ti].len() {
                        let c = self.task_creds[ti][k].1;
                        self.end(c, now);
                    }
                }
                if self.design == Design::Writ && !shared {
                    self.decider.end_task(&self.stream.tasks[ti].id, now);
                }
                // Tasks of the warm-up are left out.
                self.m.failed_tasks += u64::from(self.failed[ti] && self.stream.tasks[ti].start >= self.warmup);
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
                let (agent, delay, detect_after, remediate_after, theft) =
                    (x.agent, x.delay, x.detect_after, x.remediate_after, x.memory_theft);
                let got = self.live(self.holder(agent), now);
                self.m.leaks += got.len() as u64;
                for &c in &got {
                    self.obtained(c);
                    self.at_within(now.saturating_add(delay), Ev::Use(c, 0, theft));
                }
                if let Some(after) = remediate_after.filter(|_| !got.is_empty() && !self.design.per_task()) {
                    self.at_within(now.saturating_add(after), Ev::Remediate(agent));
                }
                self.exposed.push((now, got));
                self.at_within(now.saturating_add(detect_after), Ev::Detect(agent));
            }
            Ev::Use(c, hop, theft) => self.attack(c, hop, theft, now),
            Ev::Hijack(k) => {
                let hj = &self.stream.hijacks[k];
                let (a, len, detect_after) = (hj.agent, hj.len, hj.detect_after);
                // Detection ends the hijack at the latest; an overlapping one runs on.
                let end = now.saturating_add(len.min(detect_after)).min(self.horizon);
                let end = self.hijacked[a].map_or(end, |e| e.max(end));
                self.hijacked[a] = Some(end);
                self.at(end, Ev::HijackEnd(a));
                self.at_within(now.saturating_add(detect_after), Ev::Detect(a));
                let h = self.holder(a);
                for c in self.live(h, now) {
                    self.act(a, c, now);
                }
                // It asks for more: JIT's issuer, or Writ in every running task it belongs to.
                self.ask_for_more(a, None, now);
                let mine: Vec<usize> = self
                    .running
                    .iter()
                    .copied()
                    .filter(|t| self.w.task_agents[self.stream.tasks[*t].workflow].iter().any(|(m, _)| *m == a))
                    .collect();
                for ti in mine {
                    self.ask_for_more(a, Some(ti), now);
                }
            }
            Ev::HijackEnd(a) => {
                if self.hijacked[a].is_some_and(|end| end <= now) {
                    self.hijacked[a] = None;
                }
            }
            Ev::WarmupEnd => self.before_warmup = Some((self.m.clone(), self.latency_us, self.calls)),
            Ev::Offboard(a) => {
                self.offboarded[a] = true;
                let stays_live = self.stream.offboarded[a].is_some_and(|o| o.1);
                let h = self.holder(a);
                if self.design.per_task() {
                    // Cut off for good: nothing it holds or delegated works any more.
                    self.cut_off(a, false, now);
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
                    // Revoke what the agent holds (Writ: cut it off and restore it at once, so
                    // its later tasks get fresh credentials).
                    self.cut_off(a, true, now);
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
    if design == Design::Writ {
        // Every replication starts with no tasks, credentials or cut-offs on record.
        decider.reset();
    }
    let w = World::new(s);
    let holders = if design.per_task() { s.agents.len() } else { w.members.len() };
    let mut e = EventLoop {
        s,
        w: &w,
        stream,
        design,
        decider,
        trace,
        horizon: s.horizon_s(),
        warmup: s.warmup_s(),
        before_warmup: None,
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
        secret_creds: Vec::new(),
        running: BTreeSet::new(),
        exercised: vec![false; w.pairs.len()],
        reachable: vec![false; w.pairs.len()],
        m: Metrics {
            tasks: stream.tasks.iter().filter(|t| t.start >= s.warmup_s()).count() as u64,
            ..Metrics::default()
        },
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
    // What the warm-up counted is left out.
    let (mut latency_us, mut calls) = (e.latency_us, e.calls);
    if let Some((before, latency_before, calls_before)) = e.before_warmup.take() {
        m.credentials_issued -= before.credentials_issued;
        m.refreshes -= before.refreshes;
        m.policy_decisions -= before.policy_decisions;
        m.rotations -= before.rotations;
        latency_us -= latency_before;
        calls -= calls_before;
    }
    let reach: Vec<usize> = (0..w.pairs.len()).filter(|p| e.exercised[*p]).collect();
    m.blast_radius = reach.len() as u64;
    m.blast_radius_weighted = reach.iter().map(|p| 1 + u64::from(s.resources[w.pairs[*p].0].sensitivity)).sum();
    let needed: BTreeSet<usize> = w.step_pair.iter().flatten().copied().collect();
    m.blast_radius_in_need = reach.iter().filter(|p| needed.contains(p)).count() as u64;
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
                    // Refused to the attacker by the decider (its holder binding): never usable.
                    if c.refused { 0 } else { c.until.min(horizon).saturating_sub(*at) }
                })
                .max()
                .unwrap_or(0) as f64
        })
        .collect();
    m.exposure_window_s = if windows.is_empty() { 0.0 } else { windows.iter().sum::<f64>() / windows.len() as f64 };
    m.tool_calls = calls;
    m.latency_per_call_us = if calls == 0 { 0.0 } else { latency_us / calls as f64 };
    m
}
