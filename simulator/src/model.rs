//! The scenario as the event loop indexes it — (resource, action) pairs, per-workflow steps
//! and task scopes, who holds which long-lived secret — and the credentials it tracks.

use crate::scenario::Scenario;
use std::collections::BTreeSet;

/// Seconds of simulated time.
pub(crate) type Time = u64;

/// Long-lived designs: one protocol group of a holder — its current credential, the group's
/// scope, and its rotation period.
pub(crate) type Group = (usize, std::rc::Rc<[usize]>, Time);

/// A credential as the simulation sees it.
#[derive(Debug, Clone)]
pub(crate) struct Cred {
    /// Indices into the world's (resource, action) pairs.
    pub(crate) scope: std::rc::Rc<[usize]>,
    pub(crate) from: Time,
    /// When it stops working (expiry, revocation, rotation + grace); `Time::MAX`: never.
    pub(crate) until: Time,
    /// The Writ design's token: what the attacker presents, and the decider judges.
    pub(crate) token: Option<std::rc::Rc<str>>,
    /// Who holds it (an agent in per-task designs).
    pub(crate) holder: usize,
    /// The agent that delegated it, if it was delegated (cutting that agent off revokes it).
    pub(crate) delegator: Option<usize>,
    /// The task it belongs to, for per-task designs.
    pub(crate) task: Option<usize>,
    /// The decider refused it to the attacker who presented it (its holder binding).
    pub(crate) refused: bool,
}

impl Cred {
    /// A bearer credential of `holder` allowing `scope` from `from` until `until`, in no task,
    /// delegated by nobody (the other fields are set where they differ).
    pub(crate) fn bearer(scope: std::rc::Rc<[usize]>, from: Time, until: Time, holder: usize) -> Cred {
        Cred { scope, from, until, token: None, holder, delegator: None, task: None, refused: false }
    }

    /// The Writ design's credential of `holder` the decider just granted.
    pub(crate) fn granted(scope: std::rc::Rc<[usize]>, now: Time, g: &crate::decide::Grant, holder: usize) -> Cred {
        Cred { token: Some(std::rc::Rc::from(g.token.as_str())), ..Cred::bearer(scope, now, g.expires_at, holder) }
    }

    pub(crate) fn works(&self, now: Time) -> bool {
        self.from <= now && now < self.until
    }
}

/// The world as the event loop indexes it (the same for every design).
pub(crate) struct World {
    /// (resource, action) pairs.
    pub(crate) pairs: Vec<(usize, String)>,
    /// Per workflow, per step: the pair.
    pub(crate) step_pair: Vec<Vec<usize>>,
    /// Per workflow: the distinct agents of its steps, in order, with their task scope.
    pub(crate) task_agents: Vec<Vec<(usize, std::rc::Rc<[usize]>)>>,
    /// Per workflow: the offset of its last step.
    pub(crate) duration: Vec<Time>,
    /// Per resource: the agents whose secret is stored on it.
    pub(crate) holds: Vec<Vec<usize>>,
    /// Per unmanaged `[[secret]]`: the pairs it grants.
    pub(crate) secrets: Vec<std::rc::Rc<[usize]>>,
    /// Per resource: the unmanaged secrets stored on it.
    pub(crate) stored: Vec<Vec<usize>>,
    /// Per agent: its holder of long-lived credentials (its shared account, or itself).
    pub(crate) holder: Vec<usize>,
    /// Per holder: its agents.
    pub(crate) members: Vec<Vec<usize>>,
}

impl World {
    pub(crate) fn new(s: &Scenario) -> World {
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
        let secrets = s
            .secrets
            .iter()
            .map(|k| {
                (0..pairs.len()).filter(|p| k.grants.contains(&s.resources[pairs[*p].0].uid)).collect::<Vec<_>>().into()
            })
            .collect();
        let stored = s
            .resources
            .iter()
            .map(|r| (0..s.secrets.len()).filter(|k| s.secrets[*k].stored_on.contains(&r.uid)).collect())
            .collect();
        World { pairs, step_pair, task_agents, duration, holds, secrets, stored, holder, members }
    }

    /// The pairs of every resource.
    pub(crate) fn all(&self) -> Vec<usize> {
        (0..self.pairs.len()).collect()
    }

    /// Pair `p` as the decider names it: (action, resource uid).
    pub(crate) fn names<'w>(&'w self, s: &'w Scenario, p: usize) -> (&'w str, &'w str) {
        (self.pairs[p].1.as_str(), s.resources[self.pairs[p].0].uid.as_str())
    }

    /// The pairs the workflows of `agents` need.
    pub(crate) fn needs(&self, agents: &[usize]) -> Vec<usize> {
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
