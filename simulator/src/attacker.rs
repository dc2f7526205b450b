//! The attacker inside the event loop: what it reaches with a credential it obtained, the
//! secrets it finds on resources it takes, and a hijacked agent acting through its own
//! credentials (checked against policy in the Writ design).

use crate::design::Design;
use crate::events::{Ev, EventLoop};
use crate::model::Time;
use crate::scenario::Scenario;

/// The attacker's intent context: exfiltration goes to an external destination.
pub(crate) fn attack_context(s: &Scenario) -> String {
    if s.breach.exfiltrate { r#"{"destination":"paste.attacker.example"}"#.into() } else { String::new() }
}

impl EventLoop<'_> {
    pub(crate) fn hijacker(&self, holder: usize, now: Time) -> Option<usize> {
        let members: &[usize] =
            if self.design.per_task() { std::slice::from_ref(&holder) } else { &self.w.members[holder] };
        members.iter().copied().find(|a| self.hijacked[*a].is_some_and(|end| now < end))
    }

    pub(crate) fn decide(&mut self, agent: usize, pair: usize, task: Option<usize>, context: &str, now: Time) -> bool {
        self.m.policy_decisions += 1;
        let (ri, action) = &self.w.pairs[pair];
        let task = task.map_or("", |t| self.stream.tasks[t].id.as_str());
        self.decider.allow(&self.s.agents[agent].id, action, &self.s.resources[*ri].uid, task, context, now)
    }

    /// The attacker exercises `pair` at `now`, `hop` secrets away from the breach, and takes
    /// any secret stored on the resource.
    pub(crate) fn exercise(&mut self, pair: usize, hop: u64, now: Time) {
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
    pub(crate) fn obtained(&mut self, c: usize) {
        if !self.creds[c].bound {
            for &p in self.creds[c].scope.iter() {
                self.reachable[p] = true;
            }
        }
    }

    pub(crate) fn traced_use(&mut self, c: usize, now: Time) {
        let seq = self.current_seq;
        if let Some(t) = self.trace.as_deref_mut() {
            t.uses.push((c, now, seq));
        }
    }

    /// A hijacked agent acts through credential `c`: in the Writ design every intent is
    /// checked against policy with the attacker's context.
    pub(crate) fn act(&mut self, agent: usize, c: usize, now: Time) {
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
    pub(crate) fn given(&mut self, holder: usize, c: usize, now: Time) {
        if let Some(a) = self.hijacker(holder, now) {
            self.act(a, c, now);
        }
    }
}
