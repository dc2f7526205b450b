//! What credentials exist and which are revoked: the grant registry and the revocation set.
//!
//! In the component, revocations are replicated into every instance through the host's
//! `ledger` import (so a task ended or an agent cut off through one instance is refused by
//! all), and grants are registered with the host, which finds them again by task or agent
//! for counting. Entries are forgotten once nothing they cover can still be valid: a grant at
//! its expiry, a revocation after the horizon (the longest lifetime a credential issued before
//! it can have: the lifetime cap). At most [`MAX_REVOCATIONS`] revocations are held; beyond
//! that the ledger fails closed and refuses every credential until entries expire.

use crate::Task;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// No credential lives longer than this (seconds), whatever the configuration says; the
/// default horizon of a revocation.
pub const MAX_TTL_SECS: u32 = 86_400;

/// Revocations (ended tasks plus cut-off agents) held at once.
pub const MAX_REVOCATIONS: usize = 100_000;

/// The `until` of a cut-off: it stays in force until the agent is restored.
pub const UNTIL_RESTORED: u64 = u64::MAX;

/// The reason of every decision about a cut-off agent.
pub const CUT_OFF_REASON: &str = "writ:cut-off";

/// Tasks of one opener the registry may remember at once — open or ended, until forgotten a
/// lifetime cap past their deadline: what bounds a flood of openings, and so of ended tasks
/// (revocations every replica keeps), by one caller cycling open and end.
pub const MAX_TASKS_PER_OPENER: usize = 1_000;

/// The longest a task may stay open, seconds (a week).
pub const MAX_TASK_SECS: u64 = 7 * 86_400;

/// One issued credential, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    pub jti: String,
    pub task_id: String,
    /// The original subject and every actor it was delegated to, in order.
    pub agents: Vec<String>,
    pub issued_at: u64,
    pub expires_at: u64,
}

/// Where grants are registered and revocations kept.
pub trait Ledger {
    /// Register a grant just issued.
    fn record(&self, grant: &GrantRecord);
    /// Why `grant` (or a grant about to be issued like it) is revoked at `now`, if it is.
    fn revoked(&self, grant: &GrantRecord, now: u64) -> Option<String>;
    /// Revoke every grant of `task_id` (delegated ones too), and refuse new ones for it.
    /// Returns how many live grants this revoked.
    fn end_task(&self, task_id: &str, now: u64) -> u32;
    /// Revoke every grant held by or delegated from `spiffe_id`, refuse new ones to it, and
    /// deny every decision about it until it is restored. Returns how many live grants this
    /// revoked.
    fn cut_off(&self, spiffe_id: &str, now: u64) -> u32;
    /// Since when `spiffe_id` is cut off, if it is at `now`.
    fn cut_off_since(&self, spiffe_id: &str, now: u64) -> Option<u64>;
    /// Lift `spiffe_id`'s cut-off: decisions and new credentials again; credentials issued
    /// before stay revoked. Returns whether it was cut off.
    fn restore(&self, spiffe_id: &str, now: u64) -> bool;
    /// The task `id` as the registry knows it at `now` (with `ended_at` when it ended), or
    /// `None` when it was never opened (or is long forgotten). Shared, not copied: decisions
    /// read it on every request that names a task.
    fn task(&self, id: &str, now: u64) -> Option<Arc<Task>>;
    /// Register a task just opened. Fails (`malformed`) when `task.id` is already known, or
    /// (`limit`) when the registry remembers [`MAX_TASKS_PER_OPENER`] tasks of its opener.
    fn open_task(&self, task: &Task, now: u64) -> crate::Result<()>;
    /// Consume the break-glass approval `jti` (valid `until`): `false` when it was used before.
    fn use_approval(&self, jti: &str, until: u64, now: u64) -> bool;
    /// Spend one of the `budget` calls policy `policy` may allow in task `task_id` (remembered
    /// `until`, the task's deadline): `false` when they are all spent. Replicas sharing a
    /// ledger share the count: the order the shared log holds the calls in decides which
    /// are within the budget.
    fn spend_call(&self, task_id: &str, policy: &str, budget: u32, until: u64, now: u64) -> bool;
    /// Whether this ledger can count `@max_calls` budgets at all (one copy among several that
    /// share no count cannot: then every budgeted permit denies).
    fn counts_calls(&self) -> bool {
        true
    }
}

/// The decision about a principal that is cut off at `now`: a deny naming the cut-off, before
/// any policy is consulted. `None` when it is not cut off.
pub fn cut_off_denial(ledger: &(impl Ledger + ?Sized), principal: &str, now: u64) -> Option<crate::Decision> {
    let at = ledger.cut_off_since(principal, now)?;
    Some(crate::Decision {
        allow: false,
        reasons: vec![CUT_OFF_REASON.to_string()],
        errors: vec![format!("`{}` was cut off at {at}", crate::spiffe_id::clip(principal))],
        max_ttl_secs: 0,
    })
}

/// One change to a ledger: what [`MemoryLedger`] replays and what a host persists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum LedgerEvent {
    Grant(GrantRecord),
    /// The task ended `at`; remembered `until` (every grant of it has expired by then).
    EndTask {
        task_id: String,
        at: u64,
        until: u64,
    },
    /// The agent was cut off `at`; in force until restored ([`UNTIL_RESTORED`]).
    CutOff {
        spiffe_id: String,
        at: u64,
        until: u64,
    },
    /// The agent was restored `at`; the credentials its cut-off revoked stay revoked, and
    /// the record is remembered `until` every one of them has expired.
    Restore {
        spiffe_id: String,
        at: u64,
        until: u64,
    },
    /// A task was opened; remembered a lifetime cap past its deadline.
    OpenTask(Task),
    /// A break-glass approval was used `at`; remembered `until` it expires (then it is
    /// refused as expired anyway). `claim` is unique per use: when replicas race to use one
    /// approval, the first claim in the shared log is the use that stands.
    UseApproval {
        jti: String,
        at: u64,
        until: u64,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        claim: String,
    },
    /// A call a budgeted permit (`@max_calls`) allowed in a task was counted `at`, under
    /// `claim` (unique per call: the shared log's order of claims decides which calls are
    /// within the budget); remembered `until` the task's deadline.
    SpendCall {
        task_id: String,
        policy: String,
        claim: String,
        at: u64,
        until: u64,
    },
}

impl LedgerEvent {
    /// Until when the event matters; after this it can be forgotten.
    pub fn relevant_until(&self) -> u64 {
        match self {
            LedgerEvent::Grant(g) => g.expires_at,
            LedgerEvent::EndTask { until, .. }
            | LedgerEvent::CutOff { until, .. }
            | LedgerEvent::Restore { until, .. }
            | LedgerEvent::UseApproval { until, .. }
            | LedgerEvent::SpendCall { until, .. } => *until,
            LedgerEvent::OpenTask(t) => t.deadline.saturating_add(u64::from(MAX_TTL_SECS)),
        }
    }
}

/// When a revocation, and until when it is remembered.
#[derive(Debug, Clone, Copy)]
struct Revocation {
    at: u64,
    until: u64,
}

/// The calls one budgeted policy allowed in one task: their claims in the order counted (at
/// most [`MAX_CALLS_PER_TASK`](crate::authz::MAX_CALLS_PER_TASK) kept; a call past them is
/// past every budget), remembered until the task's deadline.
#[derive(Debug, Clone, Default)]
struct Spent {
    claims: Vec<String>,
    until: u64,
}

/// A cut-off: in force until restored; after that, it still revokes what was issued before.
#[derive(Debug, Clone, Copy)]
struct Cut {
    at: u64,
    until: u64,
    restored_at: Option<u64>,
}

#[derive(Debug, Default)]
struct State {
    grants: HashMap<String, GrantRecord>,
    /// Task → when it ended.
    ended: HashMap<String, Revocation>,
    /// SPIFFE ID → its cut-off.
    cut: HashMap<String, Cut>,
    /// Task id → the task as opened.
    tasks: HashMap<String, Arc<Task>>,
    /// Break-glass approval id → until when it is remembered as used, and the claim of the
    /// use that stands.
    used_approvals: HashMap<String, (u64, String)>,
    /// (task id, policy id) → the calls counted against its `@max_calls`.
    spent: HashMap<(String, String), Spent>,
    /// Size after the last sweep of expired entries (sweeps are amortized).
    swept_at_len: usize,
}

impl State {
    fn len(&self) -> usize {
        self.grants.len()
            + self.ended.len()
            + self.cut.len()
            + self.tasks.len()
            + self.used_approvals.len()
            + self.spent.len()
    }

    /// Forget what can no longer matter at `now`.
    fn sweep(&mut self, now: u64) {
        self.grants.retain(|_, g| g.expires_at > now);
        self.ended.retain(|_, r| r.until > now);
        self.cut.retain(|_, r| r.until > now);
        self.tasks.retain(|_, t| t.deadline.saturating_add(u64::from(MAX_TTL_SECS)) > now);
        self.used_approvals.retain(|_, (until, _)| *until > now);
        self.spent.retain(|_, s| s.until > now);
        self.swept_at_len = self.len();
    }

    fn maybe_sweep(&mut self, now: u64) {
        if self.len() >= (self.swept_at_len * 2).max(1024) {
            self.sweep(now);
        }
    }

    fn revoked(&self, g: &GrantRecord, now: u64) -> Option<String> {
        if self.ended.len() + self.cut.len() > MAX_REVOCATIONS {
            return Some(format!(
                "the revocation list is over {MAX_REVOCATIONS} entries: every credential is refused until entries expire"
            ));
        }
        if let Some(r) = self.ended.get(&g.task_id)
            && r.until > now
        {
            return Some(format!("task `{}` ended at {}", crate::spiffe_id::clip(&g.task_id), r.at));
        }
        g.agents.iter().find_map(|a| {
            let c = self.cut.get(a)?;
            // After a restore, only what was issued before it.
            let covered = c.until > now && c.restored_at.is_none_or(|restored| g.issued_at < restored);
            covered.then(|| format!("agent `{a}` was cut off at {}", c.at))
        })
    }

    fn cut_off_since(&self, spiffe_id: &str, now: u64) -> Option<u64> {
        let c = self.cut.get(spiffe_id)?;
        (c.restored_at.is_none() && c.until > now).then_some(c.at)
    }

    fn task(&self, id: &str, now: u64) -> Option<Arc<Task>> {
        let t = self.tasks.get(id)?;
        if t.deadline.saturating_add(u64::from(MAX_TTL_SECS)) <= now {
            return None;
        }
        match self.ended.get(id).filter(|r| r.until > now) {
            Some(r) => Some(Arc::new(Task { ended_at: Some(r.at), ..Task::clone(t) })),
            None => Some(t.clone()),
        }
    }

    /// Tasks of `opener` remembered at `now`, open or ended.
    fn remembered_of(&self, opener: &str, now: u64) -> usize {
        let retained = |t: &Task| t.deadline.saturating_add(u64::from(MAX_TTL_SECS)) > now;
        self.tasks.values().filter(|t| t.opener == opener && retained(t)).count()
    }

    fn apply(&mut self, event: LedgerEvent, now: u64) -> u32 {
        self.maybe_sweep(now);
        let merge = |old: Option<&Revocation>, at: u64, until: u64| match old {
            Some(o) => Revocation { at: o.at.min(at), until: o.until.max(until) },
            None => Revocation { at, until },
        };
        match event {
            LedgerEvent::Grant(g) => {
                self.grants.insert(g.jti.clone(), g);
                0
            }
            LedgerEvent::EndTask { task_id, at, until } => {
                let live = self.live(now, |g| g.task_id == task_id);
                let r = merge(self.ended.get(&task_id), at, until);
                self.ended.insert(task_id, r);
                live
            }
            LedgerEvent::CutOff { spiffe_id, at, until } => {
                let live = self.live(now, |g| g.agents.contains(&spiffe_id));
                let c = match self.cut.get(&spiffe_id) {
                    // Cut off again while in force: the first time stands.
                    Some(c) if c.restored_at.is_none() => Cut { at: c.at.min(at), until: c.until.max(until), ..*c },
                    // Cut off again after a restore: everything issued before now is revoked.
                    Some(c) => Cut { at, until: c.until.max(until), restored_at: None },
                    None => Cut { at, until, restored_at: None },
                };
                self.cut.insert(spiffe_id, c);
                live
            }
            LedgerEvent::OpenTask(task) => {
                // The first opening of an id stands (two replicas opening one id at once).
                if self.tasks.contains_key(&task.id) {
                    0
                } else {
                    self.tasks.insert(task.id.clone(), Arc::new(Task { ended_at: None, ..task }));
                    1
                }
            }
            LedgerEvent::UseApproval { jti, until, claim, .. } => match self.used_approvals.get(&jti) {
                Some((u, _)) if *u > now => 0,
                _ => {
                    self.used_approvals.insert(jti, (until, claim));
                    1
                }
            },
            LedgerEvent::SpendCall { task_id, policy, claim, until, .. } => {
                let spent = self.spent.entry((task_id, policy)).or_default();
                spent.until = spent.until.max(until);
                if spent.claims.len() >= crate::authz::MAX_CALLS_PER_TASK as usize || spent.claims.contains(&claim) {
                    0
                } else {
                    spent.claims.push(claim);
                    1
                }
            }
            LedgerEvent::Restore { spiffe_id, at, until } => match self.cut.get_mut(&spiffe_id) {
                Some(c) if c.restored_at.is_none() => {
                    // Times are seconds: a grant issued in the second of the cut-off, before
                    // it, stays revoked even when the restore comes in that same second.
                    c.restored_at = Some(at.max(c.at.saturating_add(1)));
                    c.until = until;
                    1
                }
                _ => 0,
            },
        }
    }

    /// The calls of `policy` counted in `task_id` at `now`.
    fn spent(&self, task_id: &str, policy: &str, now: u64) -> Option<&Spent> {
        self.spent.get(&(task_id.to_string(), policy.to_string())).filter(|s| s.until > now)
    }

    /// Live, not yet revoked grants matching `f`.
    fn live(&self, now: u64, f: impl Fn(&GrantRecord) -> bool) -> u32 {
        self.live_among(self.grants.values().filter(|g| f(g)), now)
    }

    /// How many of `grants` are live and not revoked at `now`.
    fn live_among<'a>(&self, grants: impl IntoIterator<Item = &'a GrantRecord>, now: u64) -> u32 {
        let n = grants.into_iter().filter(|g| g.expires_at > now && self.revoked(g, now).is_none()).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// The in-memory ledger. Thread-safe; share it with `Arc`.
#[derive(Debug)]
pub struct MemoryLedger {
    state: Mutex<State>,
    /// How long a revocation is remembered, seconds.
    horizon: std::sync::atomic::AtomicU64,
    /// Whether `@max_calls` budgets are counted here ([`Ledger::spend_call`]); when not, a
    /// budgeted permit allows nothing.
    counts_calls: bool,
}

impl Default for MemoryLedger {
    fn default() -> Self {
        MemoryLedger { state: Mutex::default(), horizon: u64::from(MAX_TTL_SECS).into(), counts_calls: true }
    }
}

impl MemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// A ledger that is one copy among many that do not share what they count (the proxy
    /// filter's, one per worker): it cannot count a budget honestly, so it spends none — every
    /// permit with `@max_calls` denies here ([`Ledger::spend_call`] is always `false`).
    pub fn without_budgets() -> Self {
        MemoryLedger { counts_calls: false, ..Self::default() }
    }

    /// Remember revocations made from now on for `secs`: at least the longest lifetime a
    /// credential issued before them can have (the lifetime cap).
    pub fn set_horizon(&self, secs: u64) {
        self.horizon.store(secs.min(u64::from(MAX_TTL_SECS)), std::sync::atomic::Ordering::Relaxed);
    }

    /// When a revocation made `now` can be forgotten.
    pub fn revocation_until(&self, now: u64) -> u64 {
        now.saturating_add(self.horizon.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// How long a revocation made `now` that covers `grants` must be kept: past the horizon,
    /// and past the expiry of every one of them.
    pub fn revocation_covering<'a>(&self, grants: impl IntoIterator<Item = &'a GrantRecord>, now: u64) -> u64 {
        grants.into_iter().map(|g| g.expires_at).fold(self.revocation_until(now), u64::max)
    }

    /// How long a revocation made `now` must be kept, over the grants held that it covers.
    fn until_covering(&self, now: u64, covers: impl Fn(&GrantRecord) -> bool) -> u64 {
        let s = self.state();
        self.revocation_covering(s.grants.values().filter(|g| covers(g)), now)
    }

    /// How many of `grants` are live and not revoked at `now` (grants this ledger does not
    /// hold itself: the component finds them through the host).
    pub fn live_among<'a>(&self, grants: impl IntoIterator<Item = &'a GrantRecord>, now: u64) -> u32 {
        self.state().live_among(grants, now)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Apply a recorded event (replaying a persisted ledger). Returns what the live
    /// operation would have returned.
    pub fn apply(&self, event: LedgerEvent, now: u64) -> u32 {
        if event.relevant_until() <= now {
            return 0;
        }
        self.state().apply(event, now)
    }

    /// Every event still relevant at `now`, to persist a compacted ledger.
    pub fn events(&self, now: u64) -> Vec<LedgerEvent> {
        let mut s = self.state();
        s.sweep(now);
        let mut out: Vec<LedgerEvent> = s.grants.values().cloned().map(LedgerEvent::Grant).collect();
        out.extend(s.ended.iter().map(|(t, r)| LedgerEvent::EndTask { task_id: t.clone(), at: r.at, until: r.until }));
        out.extend(s.tasks.values().map(|t| LedgerEvent::OpenTask(Task::clone(t))));
        out.extend(s.used_approvals.iter().map(|(j, (u, claim))| LedgerEvent::UseApproval {
            jti: j.clone(),
            at: now,
            until: *u,
            claim: claim.clone(),
        }));
        for ((task_id, policy), spent) in &s.spent {
            out.extend(spent.claims.iter().map(|claim| LedgerEvent::SpendCall {
                task_id: task_id.clone(),
                policy: policy.clone(),
                claim: claim.clone(),
                at: now,
                until: spent.until,
            }));
        }
        for (a, c) in &s.cut {
            match c.restored_at {
                None => out.push(LedgerEvent::CutOff { spiffe_id: a.clone(), at: c.at, until: UNTIL_RESTORED }),
                Some(restored) => {
                    out.push(LedgerEvent::CutOff { spiffe_id: a.clone(), at: c.at, until: UNTIL_RESTORED });
                    out.push(LedgerEvent::Restore { spiffe_id: a.clone(), at: restored, until: c.until });
                }
            }
        }
        out
    }

    /// How many calls of `policy` were counted in `task_id` (see [`Ledger::spend_call`]).
    pub fn calls_spent(&self, task_id: &str, policy: &str, now: u64) -> usize {
        self.state().spent(task_id, policy, now).map_or(0, |s| s.claims.len())
    }

    /// The place of the call counted under `claim` among the calls of `policy` in `task_id`
    /// (1 for the first), if it was counted.
    pub fn call_rank(&self, task_id: &str, policy: &str, claim: &str, now: u64) -> Option<usize> {
        let s = self.state();
        let spent = s.spent(task_id, policy, now)?;
        spent.claims.iter().position(|c| c == claim).map(|i| i + 1)
    }

    /// Entries held (grants, ended tasks, cut-off agents).
    pub fn len(&self) -> usize {
        self.state().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Ledger for MemoryLedger {
    fn record(&self, grant: &GrantRecord) {
        self.apply(LedgerEvent::Grant(grant.clone()), grant.issued_at);
    }

    fn revoked(&self, grant: &GrantRecord, now: u64) -> Option<String> {
        self.state().revoked(grant, now)
    }

    fn end_task(&self, task_id: &str, now: u64) -> u32 {
        let until = self.until_covering(now, |g| g.task_id == task_id);
        self.apply(LedgerEvent::EndTask { task_id: task_id.to_string(), at: now, until }, now)
    }

    fn cut_off(&self, spiffe_id: &str, now: u64) -> u32 {
        self.apply(LedgerEvent::CutOff { spiffe_id: spiffe_id.to_string(), at: now, until: UNTIL_RESTORED }, now)
    }

    fn cut_off_since(&self, spiffe_id: &str, now: u64) -> Option<u64> {
        self.state().cut_off_since(spiffe_id, now)
    }

    fn restore(&self, spiffe_id: &str, now: u64) -> bool {
        let until = self.until_covering(now, |g| g.agents.iter().any(|a| a == spiffe_id));
        self.apply(LedgerEvent::Restore { spiffe_id: spiffe_id.to_string(), at: now, until }, now) == 1
    }

    fn task(&self, id: &str, now: u64) -> Option<Arc<Task>> {
        self.state().task(id, now)
    }

    fn open_task(&self, task: &Task, now: u64) -> crate::Result<()> {
        self.admit_task(task, now)?;
        self.apply(LedgerEvent::OpenTask(task.clone()), now);
        Ok(())
    }

    fn use_approval(&self, jti: &str, until: u64, now: u64) -> bool {
        self.apply(LedgerEvent::UseApproval { jti: jti.to_string(), at: now, until, claim: String::new() }, now) == 1
    }

    fn counts_calls(&self) -> bool {
        self.counts_calls
    }

    fn spend_call(&self, task_id: &str, policy: &str, budget: u32, until: u64, now: u64) -> bool {
        if until <= now || !self.counts_calls {
            return false;
        }
        let mut s = self.state();
        let counted = s.spent(task_id, policy, now).map_or(0, |spent| spent.claims.len());
        if counted >= budget as usize {
            return false;
        }
        // One process, one lock: the count is the claim.
        let claim = counted.to_string();
        s.apply(LedgerEvent::SpendCall { task_id: task_id.into(), policy: policy.into(), claim, at: now, until }, now)
            == 1
    }
}

impl MemoryLedger {
    /// Whether the approval `jti` was used (and is still remembered) at `now`.
    pub fn approval_used(&self, jti: &str, now: u64) -> bool {
        self.state().used_approvals.get(jti).is_some_and(|(u, _)| *u > now)
    }

    /// The claim of the use of approval `jti` that stands at `now`, if it was used.
    pub fn approval_claim(&self, jti: &str, now: u64) -> Option<String> {
        self.state().used_approvals.get(jti).filter(|(u, _)| *u > now).map(|(_, c)| c.clone())
    }
}

impl MemoryLedger {
    /// Whether `task` may be registered now: a new id, and its opener under its quota.
    pub fn admit_task(&self, task: &Task, now: u64) -> crate::Result<()> {
        let s = self.state();
        if s.task(&task.id, now).is_some() || s.ended.contains_key(&task.id) {
            return Err(crate::Error::Malformed(format!(
                "task `{}` was already opened",
                crate::spiffe_id::clip(&task.id)
            )));
        }
        if s.remembered_of(&task.opener, now) >= MAX_TASKS_PER_OPENER {
            return Err(crate::Error::Limit(format!(
                "`{}` has {MAX_TASKS_PER_OPENER} tasks on record (open, or ended and remembered until a day past their deadline)",
                crate::spiffe_id::clip(&task.opener)
            )));
        }
        Ok(())
    }
}

impl<L: Ledger + ?Sized> Ledger for std::sync::Arc<L> {
    fn record(&self, grant: &GrantRecord) {
        (**self).record(grant);
    }
    fn revoked(&self, grant: &GrantRecord, now: u64) -> Option<String> {
        (**self).revoked(grant, now)
    }
    fn end_task(&self, task_id: &str, now: u64) -> u32 {
        (**self).end_task(task_id, now)
    }
    fn cut_off(&self, spiffe_id: &str, now: u64) -> u32 {
        (**self).cut_off(spiffe_id, now)
    }
    fn cut_off_since(&self, spiffe_id: &str, now: u64) -> Option<u64> {
        (**self).cut_off_since(spiffe_id, now)
    }
    fn restore(&self, spiffe_id: &str, now: u64) -> bool {
        (**self).restore(spiffe_id, now)
    }
    fn task(&self, id: &str, now: u64) -> Option<Arc<Task>> {
        (**self).task(id, now)
    }
    fn open_task(&self, task: &Task, now: u64) -> crate::Result<()> {
        (**self).open_task(task, now)
    }
    fn use_approval(&self, jti: &str, until: u64, now: u64) -> bool {
        (**self).use_approval(jti, until, now)
    }
    fn spend_call(&self, task_id: &str, policy: &str, budget: u32, until: u64, now: u64) -> bool {
        (**self).spend_call(task_id, policy, budget, until, now)
    }
    fn counts_calls(&self) -> bool {
        (**self).counts_calls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(jti: &str, task: &str, agents: &[&str], exp: u64) -> GrantRecord {
        GrantRecord {
            jti: jti.into(),
            task_id: task.into(),
            agents: agents.iter().map(|a| a.to_string()).collect(),
            issued_at: 100,
            expires_at: exp,
        }
    }

    #[test]
    fn end_task_revokes_that_task_only_and_counts_live_grants() {
        let l = MemoryLedger::new();
        l.record(&grant("a", "t1", &["spiffe://x/a"], 1000));
        l.record(&grant("b", "t1", &["spiffe://x/a", "spiffe://x/b"], 1000));
        l.record(&grant("c", "t2", &["spiffe://x/a"], 1000));
        l.record(&grant("d", "t1", &["spiffe://x/a"], 150)); // expired by then
        assert_eq!(l.end_task("t1", 200), 2);
        assert!(l.revoked(&grant("a", "t1", &["spiffe://x/a"], 1000), 200).is_some());
        assert!(l.revoked(&grant("c", "t2", &["spiffe://x/a"], 1000), 200).is_none());
        assert_eq!(l.end_task("t1", 201), 0, "already revoked grants are not counted again");
    }

    #[test]
    fn cut_off_revokes_held_and_delegated_from() {
        let l = MemoryLedger::new();
        l.record(&grant("a", "t1", &["spiffe://x/a"], 1000));
        l.record(&grant("b", "t1", &["spiffe://x/a", "spiffe://x/b"], 1000));
        l.record(&grant("c", "t2", &["spiffe://x/c"], 1000));
        assert_eq!(l.cut_off("spiffe://x/b", 200), 1);
        assert_eq!(l.cut_off("spiffe://x/a", 200), 1, "b's grant was already revoked");
        assert!(l.revoked(&grant("c", "t2", &["spiffe://x/c"], 1000), 200).is_none());
    }

    #[test]
    fn entries_are_forgotten_once_nothing_they_cover_can_be_valid() {
        let l = MemoryLedger::new();
        l.record(&grant("a", "t1", &["spiffe://x/a"], 300));
        l.end_task("t1", 200);
        l.cut_off("spiffe://x/z", 200);
        assert_eq!(l.events(250).len(), 3);
        let later = 200 + u64::from(MAX_TTL_SECS);
        // The ended task and the grant are forgotten; the cut-off holds until restored.
        assert_eq!(l.events(later).len(), 1);
        assert!(l.revoked(&grant("e", "t1", &["spiffe://x/q"], later + 10), later).is_none());
        assert!(l.revoked(&grant("e", "t1", &["spiffe://x/z"], later + 10), later).is_some());
        assert!(l.restore("spiffe://x/z", later));
        assert!(l.events(later + u64::from(MAX_TTL_SECS)).is_empty(), "restored, then forgotten");
    }

    #[test]
    fn a_cut_off_holds_until_restored_and_restoring_keeps_earlier_credentials_revoked() {
        let l = MemoryLedger::new();
        let z = "spiffe://x/z";
        let before = grant("a", "t", &[z], 100_000);
        l.record(&before);
        assert_eq!(l.cut_off(z, 200), 1);
        // Long past every lifetime cap: still cut off, decisions and new credentials refused.
        let much_later = 200 + 10 * u64::from(MAX_TTL_SECS);
        assert_eq!(l.cut_off_since(z, much_later), Some(200));
        assert!(cut_off_denial(&l, z, much_later).is_some_and(|d| !d.allow && d.reasons == [CUT_OFF_REASON]));
        let fresh = GrantRecord { issued_at: much_later, expires_at: much_later + 60, ..grant("b", "t", &[z], 0) };
        assert!(l.revoked(&fresh, much_later).is_some());
        // Restored: decisions and new credentials again; the credential from before stays revoked.
        assert!(l.restore(z, much_later));
        assert!(!l.restore(z, much_later), "restoring twice changes nothing");
        assert_eq!(l.cut_off_since(z, much_later + 1), None);
        assert!(cut_off_denial(&l, z, much_later + 1).is_none());
        let after = GrantRecord { issued_at: much_later + 1, expires_at: much_later + 60, ..grant("c", "t", &[z], 0) };
        assert!(l.revoked(&after, much_later + 1).is_none());
        assert!(l.revoked(&before, much_later + 1).is_some());
        // Replayed elsewhere, the same; cut off again, everything before is revoked again.
        let copy = MemoryLedger::new();
        for e in l.events(much_later + 1) {
            copy.apply(e, much_later + 1);
        }
        assert_eq!(copy.cut_off_since(z, much_later + 1), None);
        assert!(copy.revoked(&before, much_later + 1).is_some() && copy.revoked(&after, much_later + 1).is_none());
        copy.cut_off(z, much_later + 2);
        assert!(copy.revoked(&after, much_later + 2).is_some());
        assert_eq!(copy.cut_off_since(z, much_later + 2), Some(much_later + 2));
    }

    #[test]
    fn replayed_events_rebuild_the_same_ledger() {
        let l = MemoryLedger::new();
        l.record(&grant("a", "t1", &["spiffe://x/a"], 1000));
        l.end_task("t2", 150);
        let copy = MemoryLedger::new();
        for e in l.events(160) {
            copy.apply(e, 160);
        }
        assert_eq!(copy.len(), 2);
        assert!(copy.revoked(&grant("z", "t2", &["spiffe://x/q"], 900), 160).is_some());
    }

    #[test]
    fn the_horizon_bounds_how_long_revocations_are_kept() {
        let l = MemoryLedger::new();
        l.set_horizon(600);
        l.end_task("t", 100);
        assert!(l.revoked(&grant("a", "t", &["spiffe://x/a"], 650), 650).is_some());
        assert!(l.revoked(&grant("a", "t", &["spiffe://x/a"], 800), 700).is_none(), "forgotten after 100 + 600");
        assert_eq!(
            l.live_among([&grant("a", "t", &["spiffe://x/a"], 800), &grant("b", "u", &["spiffe://x/a"], 800)], 650),
            1
        );
    }

    #[test]
    fn a_revocation_outlives_every_grant_it_covers() {
        let l = MemoryLedger::new();
        l.set_horizon(60);
        l.record(&grant("a", "t", &["spiffe://x/a"], 5000));
        l.end_task("t", 100);
        assert!(
            l.revoked(&grant("a", "t", &["spiffe://x/a"], 5000), 4999).is_some(),
            "kept past the horizon until the grant expires"
        );
    }

    #[test]
    fn too_many_revocations_fail_closed() {
        let l = MemoryLedger::new();
        for i in 0..=MAX_REVOCATIONS {
            l.end_task(&format!("t{i}"), 100);
        }
        let why = l.revoked(&grant("a", "other", &["spiffe://x/a"], 900), 101).unwrap();
        assert!(why.contains("over"), "{why}");
    }

    #[test]
    fn counted_calls_replay_in_order_and_are_forgotten_at_the_deadline() {
        let l = MemoryLedger::new();
        assert!(l.spend_call("t", "p", 2, 500, 100));
        assert!(l.spend_call("t", "p", 2, 500, 101));
        assert!(!l.spend_call("t", "p", 2, 500, 102), "the budget is 2");
        assert!(l.spend_call("t", "q", 1, 500, 102), "another policy counts apart");
        assert!(!l.spend_call("u", "p", 2, 100, 102), "past the task's deadline nothing is counted");
        // A ledger replaying the events knows the same counts, in the same order.
        let replica = MemoryLedger::new();
        for e in l.events(103) {
            replica.apply(e, 103);
        }
        assert_eq!(replica.calls_spent("t", "p", 103), 2);
        assert_eq!(replica.call_rank("t", "p", "1", 103), Some(2));
        assert!(!replica.spend_call("t", "p", 2, 500, 104));
        // A claim applied twice counts once; after the deadline the count is gone.
        let again =
            LedgerEvent::SpendCall { task_id: "t".into(), policy: "q".into(), claim: "0".into(), at: 104, until: 500 };
        assert_eq!(replica.apply(again, 104), 0);
        assert_eq!(replica.calls_spent("t", "p", 500), 0);
    }
}
