//! The attacker inside the event loop: what it reaches with a credential it obtained, the
//! secrets it finds on resources it takes, and a hijacked agent acting through its own
//! credentials and asking for more (checked against policy in the Writ design). It never
//! volunteers its intent: each intent is tried with every context of
//! `breach.attacker_contexts` until one is allowed.

use crate::decide::{ATTACKER, Ask, Presented, Scope};
use crate::design::Design;
use crate::events::{Ev, EventLoop};
use crate::model::{Cred, Time};

impl<'a> EventLoop<'a> {
    pub(crate) fn hijacker(&self, holder: usize, now: Time) -> Option<usize> {
        let members: &[usize] =
            if self.design.per_task() { std::slice::from_ref(&holder) } else { &self.w.members[holder] };
        members.iter().copied().find(|a| self.hijacked[*a].is_some_and(|end| now < end))
    }

    /// The intent of `pair` in task `ti`, with `context`.
    pub(crate) fn ask<'c>(&self, pair: usize, ti: Option<usize>, context: &'c str) -> Ask<'c>
    where
        'a: 'c,
    {
        let (action, resource) = self.w.names(self.s, pair);
        let task = ti.map_or("", |t| self.stream.tasks[t].id.as_str());
        Ask { action, resource, task, context }
    }

    /// Hijacked agent `a` asks for a credential for pair `p` alone in `task` (stream task
    /// `ti`, if it is one) and, granted, acts through it.
    fn ask_for_pair(&mut self, a: usize, p: usize, task: &str, ti: Option<usize>, now: Time) {
        let (s, w) = (self.s, self.w);
        self.m.policy_decisions += 1;
        let pair = [w.names(s, p)];
        let Some(g) = self.decider.issue(&s.agents[a].id, Scope { task, pairs: &pair }, s.design.ttl_s, now) else {
            return;
        };
        let c = self.new_cred(a, Cred { task: ti, ..Cred::granted(vec![p].into(), now, &g, a) });
        if let Some(ti) = ti {
            self.task_creds[ti].push((a, c));
        }
        self.act(a, c, now);
    }

    /// Credential `c` presented for `pair` by `presenter` with each of the attacker's contexts
    /// until one is allowed: the decider's answer (Writ tokens only; a bearer token or secret
    /// is not asked about).
    fn present(&mut self, c: usize, pair: usize, presenter: &str, now: Time) -> Presented {
        let Some(token) = self.creds[c].token.clone() else { return Presented::Allowed };
        let s = self.s;
        let mut answer = Presented::Denied;
        for context in contexts(&s.breach.attacker_contexts) {
            self.m.policy_decisions += 1;
            let ask = self.ask(pair, self.creds[c].task, context);
            answer = self.decider.present(&token, presenter, ask, now);
            if answer != Presented::Denied {
                break;
            }
        }
        answer
    }

    /// A hijacked agent `a` asks for more than it was given. Writ: a credential for every pair
    /// of the world its credentials in task `ti` lack, one intent at a time, each the
    /// decider's to refuse; once per hijack (`ti` none) a task of its own (if policy lets it
    /// open one) with every pair asked for in it, and each credential it holds delegated to the
    /// attacker's own workload. JIT: its issuer checks no intent, so it hands the agent a
    /// credential for everything its workflows use (once per hijack).
    pub(crate) fn ask_for_more(&mut self, a: usize, ti: Option<usize>, now: Time) {
        let (s, w) = (self.s, self.w);
        match (self.design, ti) {
            (Design::Writ, Some(ti)) => {
                let task = self.stream.tasks[ti].id.as_str();
                for p in 0..w.pairs.len() {
                    let held = self.task_creds[ti].iter().any(|(holder, c)| {
                        *holder == a && self.creds[*c].works(now) && self.creds[*c].scope.contains(&p)
                    });
                    if !held {
                        self.ask_for_pair(a, p, task, Some(ti), now);
                    }
                }
            }
            (Design::Writ, None) => {
                let me = s.agents[a].id.clone();
                let own = format!("{me}#hijack-{now}");
                self.m.policy_decisions += 1;
                if self.decider.open_task(&me, &own, std::slice::from_ref(&me), now + 3600, now) {
                    for p in 0..w.pairs.len() {
                        self.ask_for_pair(a, p, &own, None, now);
                    }
                }
                for c in self.live(a, now) {
                    let Some(token) = self.creds[c].token.clone() else { continue };
                    let task = self.creds[c].task.map_or("", |t| self.stream.tasks[t].id.as_str());
                    let scope = self.creds[c].scope.clone();
                    let pairs: Vec<(&str, &str)> = scope.iter().map(|p| w.names(s, *p)).collect();
                    self.m.policy_decisions += pairs.len() as u64 + 1;
                    let asked = Scope { task, pairs: &pairs };
                    if let Some(g) = self.decider.delegate(&token, &me, ATTACKER, asked, s.design.ttl_s, now) {
                        let cred =
                            Cred { delegator: Some(a), task: self.creds[c].task, ..Cred::granted(scope, now, &g, a) };
                        let handed = self.record_cred(cred);
                        self.attack(handed, 0, false, now);
                    }
                }
            }
            (Design::Jit, None) => {
                let scope: std::rc::Rc<[usize]> = w.needs(&[a]).into();
                // Its issuer knows who was offboarded, as Writ's decider does.
                if scope.is_empty() || self.offboarded[a] {
                    return;
                }
                let cred = Cred::bearer(scope, now, now.saturating_add(s.design.ttl_s), a);
                let c = self.new_cred(a, cred);
                self.act(a, c, now);
            }
            _ => {}
        }
    }

    /// The attacker uses credential `c`, obtained `hop` secrets away from the breach: every
    /// pair it allows, while it works. A Writ token is presented — from the attacker's own
    /// workload, or as its holder when `theft` took the holder's key too — and each intent is
    /// the decider's to allow.
    pub(crate) fn attack(&mut self, c: usize, hop: u64, theft: bool, now: Time) {
        if !self.creds[c].works(now) {
            return;
        }
        let presenter = if theft { self.s.agents[self.creds[c].holder].id.as_str() } else { ATTACKER };
        let scope = self.creds[c].scope.clone();
        let mut used = false;
        for &p in scope.iter() {
            match self.present(c, p, presenter, now) {
                Presented::Allowed => {
                    if !used {
                        self.traced_use(c, now);
                        used = true;
                    }
                    self.exercise(p, hop, now);
                }
                Presented::Denied => {}
                Presented::Refused => {
                    self.creds[c].refused = true;
                    return;
                }
            }
        }
    }

    /// The attacker exercises `pair` at `now`, `hop` secrets away from the breach, and takes
    /// any secret stored on the resource: an unmanaged `[[secret]]` in every design, an agent's
    /// long-lived secret where the design keeps one at rest.
    pub(crate) fn exercise(&mut self, pair: usize, hop: u64, now: Time) {
        self.exercised[pair] = true;
        self.m.lateral_hops = self.m.lateral_hops.max(hop);
        let ri = self.w.pairs[pair].0;
        for k in 0..self.w.stored[ri].len() {
            let c = self.secret_creds[self.w.stored[ri][k]];
            if self.found.insert(c) {
                self.m.leaks += 1;
                self.obtained(c);
                self.at_within(now + self.s.breach.lateral_delay_s, Ev::Use(c, hop + 1, false));
            }
        }
        if !self.stores_at_rest() {
            return;
        }
        for bi in 0..self.w.holds[ri].len() {
            let h = self.holder(self.w.holds[ri][bi]);
            for c in self.live(h, now) {
                if self.found.insert(c) {
                    self.m.leaks += 1;
                    self.obtained(c);
                    self.at_within(now + self.s.breach.lateral_delay_s, Ev::Use(c, hop + 1, false));
                }
            }
        }
    }

    /// The attacker holds credential `c`, working now: what it allows is within its reach.
    pub(crate) fn obtained(&mut self, c: usize) {
        for &p in self.creds[c].scope.iter() {
            self.reachable[p] = true;
        }
    }

    pub(crate) fn traced_use(&mut self, c: usize, now: Time) {
        let seq = self.current_seq;
        if let Some(t) = self.trace.as_deref_mut() {
            t.uses.push((c, now, seq));
        }
    }

    /// A hijacked agent acts through credential `c`, as itself: in the Writ design it
    /// presents the token for every intent, with the attacker's context.
    pub(crate) fn act(&mut self, agent: usize, c: usize, now: Time) {
        if !self.creds[c].works(now) {
            return;
        }
        self.traced_use(c, now);
        let scope = self.creds[c].scope.clone();
        for &p in scope.iter() {
            self.reachable[p] = true;
            if self.present(c, p, &self.s.agents[agent].id, now) == Presented::Allowed {
                self.exercise(p, 0, now);
            }
        }
    }

    /// A credential was just given to `holder`: a hijacker of it acts through it at once.
    pub(crate) fn given(&mut self, holder: usize, c: usize, now: Time) {
        if let Some(a) = self.hijacker(holder, now) {
            self.act(a, c, now);
        }
    }
}

/// The contexts to try: those given, or none declared.
fn contexts(given: &[String]) -> impl Iterator<Item = &str> {
    let none: &[&str] = if given.is_empty() { &[""] } else { &[] };
    given.iter().map(String::as_str).chain(none.iter().copied())
}
