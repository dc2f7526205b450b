//! Credentials in the event loop: issuing (per task, policy-checked in the Writ design),
//! refreshing, ending (revocation, expiry, a rotated-out secret's grace), and the long-lived
//! designs' replacements.

use crate::decide::Scope;
use crate::design::Design;
use crate::events::{Ev, EventLoop};
use crate::model::{Cred, Time};

impl EventLoop<'_> {
    pub(crate) fn holder(&self, agent: usize) -> usize {
        if self.design.per_task() { agent } else { self.w.holder[agent] }
    }

    /// Stores copies of long-lived secrets at rest (config, CI, tickets, resources).
    pub(crate) fn stores_at_rest(&self) -> bool {
        !self.design.per_task() && self.design != Design::Vaulted
    }

    pub(crate) fn new_cred(&mut self, holder: usize, cred: Cred) -> usize {
        let id = self.record_cred(cred);
        self.held[holder].push(id);
        id
    }

    /// A credential issued to no holder of the simulation (the attacker's own workload).
    pub(crate) fn record_cred(&mut self, cred: Cred) -> usize {
        let id = self.creds.len();
        if let Some(t) = self.trace.as_deref_mut()
            && cred.until != Time::MAX
        {
            t.ends.push((id, cred.until, 0));
        }
        self.creds.push(cred);
        self.m.credentials_issued += 1;
        id
    }

    /// Credential `c` stops working now (revocation, replacement).
    pub(crate) fn end(&mut self, c: usize, now: Time) {
        if now < self.creds[c].until {
            self.creds[c].until = now;
            if let Some(t) = self.trace.as_deref_mut() {
                t.ends.push((c, now, self.current_seq));
            }
        }
    }

    /// Credential `c` stops working at `t` (a rotated-out secret's grace period).
    pub(crate) fn end_at(&mut self, c: usize, t: Time) {
        if t < self.creds[c].until {
            self.creds[c].until = t;
            if let Some(tr) = self.trace.as_deref_mut() {
                tr.ends.push((c, t, 0));
            }
        }
    }

    pub(crate) fn live(&self, holder: usize, now: Time) -> Vec<usize> {
        self.held[holder].iter().copied().filter(|c| self.creds[*c].works(now)).collect()
    }

    /// Per-task designs: a credential for `agent` in task `ti`; `None` when refused. In the
    /// Writ design the decider issues it (its lifetime the decider's: the requested TTL capped
    /// by policy's `@ttl`, the identity and the task) — delegated from the task owner's
    /// credential when that covers this agent's scope.
    pub(crate) fn grant(&mut self, ti: usize, agent: usize, scope: std::rc::Rc<[usize]>, now: Time) -> Option<usize> {
        let (s, w) = (self.s, self.w);
        let ttl = s.design.ttl_s;
        let cred = if self.design == Design::Writ {
            let task = self.stream.tasks[ti].id.as_str();
            let pairs: Vec<(&str, &str)> = scope.iter().map(|p| w.names(s, *p)).collect();
            let owner = w.task_agents[self.stream.tasks[ti].workflow][0].0;
            let covering = (owner != agent)
                .then(|| {
                    self.task_creds[ti].iter().rev().map(|(_, c)| *c).find(|c| {
                        let parent = &self.creds[*c];
                        parent.holder == owner && parent.works(now) && scope.iter().all(|p| parent.scope.contains(p))
                    })
                })
                .flatten();
            let (granted, delegator) = match covering.and_then(|c| self.creds[c].token.clone()) {
                Some(parent) => {
                    self.m.policy_decisions += scope.len() as u64 + 1;
                    let scope = Scope { task, pairs: &pairs };
                    let g = self.decider.delegate(&parent, &s.agents[owner].id, &s.agents[agent].id, scope, ttl, now);
                    (g, Some(owner))
                }
                None => {
                    self.m.policy_decisions += scope.len() as u64;
                    (self.decider.issue(&s.agents[agent].id, Scope { task, pairs: &pairs }, ttl, now), None)
                }
            };
            Cred { delegator, task: Some(ti), ..Cred::granted(scope, now, &granted?, agent) }
        } else if self.offboarded[agent] {
            // JIT's issuer knows who was offboarded, as Writ's decider does: nothing is issued.
            return None;
        } else {
            Cred { task: Some(ti), ..Cred::bearer(scope, now, now.saturating_add(ttl), agent) }
        };
        self.latency_us += s.cost.issue_us;
        let c = self.new_cred(agent, cred);
        self.task_creds[ti].push((agent, c));
        self.given(agent, c, now);
        Some(c)
    }

    /// Per-task designs: agent `a`'s credentials stop working now — and, in the Writ design,
    /// those it delegated, the decider cutting it off (and restoring it at once when
    /// `restore`: revoked, then free to work with fresh credentials).
    pub(crate) fn cut_off(&mut self, a: usize, restore: bool, now: Time) {
        if self.design == Design::Writ {
            self.decider.cut_off(&self.s.agents[a].id, restore, now);
            let delegated: Vec<usize> = (0..self.creds.len())
                .filter(|c| self.creds[*c].delegator == Some(a) && self.creds[*c].works(now))
                .collect();
            for c in delegated {
                self.end(c, now);
            }
        }
        for c in self.live(self.holder(a), now) {
            self.end(c, now);
        }
    }

    pub(crate) fn task_end(&self, ti: usize) -> Time {
        let t = &self.stream.tasks[ti];
        t.start + self.w.duration[t.workflow] + 1
    }

    pub(crate) fn schedule_refresh(&mut self, ti: usize, agent: usize, issued: Time) {
        let (ttl, before) = (self.s.design.ttl_s, self.s.design.refresh_before_s);
        if before > 0 && before < ttl {
            let at = issued + (ttl - before);
            if at < self.task_end(ti) {
                self.at(at, Ev::Refresh(ti, agent));
            }
        }
    }

    /// Long-lived designs: replace the credential of group `g` of `holder` now; the old one
    /// works until `old_until`.
    pub(crate) fn replace(&mut self, holder: usize, g: usize, now: Time, old_until: Time) {
        let (old, scope, _) = self.current[holder][g].clone();
        if old_until <= now {
            // Now, after whatever this second has already seen.
            self.end(old, now);
        } else {
            self.end_at(old, old_until);
        }
        let c = self.new_cred(holder, Cred::bearer(scope, now, Time::MAX, holder));
        self.current[holder][g].0 = c;
        self.given(holder, c, now);
    }

    /// Long-lived designs: replace every secret of `holder` now (unless revoked for good);
    /// rotation designs keep the old ones for the grace period.
    pub(crate) fn replace_all(&mut self, holder: usize, now: Time) {
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
}
