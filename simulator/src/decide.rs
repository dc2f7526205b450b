//! Who decides intents in the Writ design: the real component through `writ-host` (default)
//! or the native `writ-core` crate — the same rules either way, under the simulated clock.

use writ_host::pack;

/// Unix time of simulated second 0.
pub const EPOCH: u64 = 1_800_000_000;

/// Decides one intent of an agent at simulated time `at`.
pub trait Decider {
    fn allow(&mut self, agent: &str, action: &str, resource: &str, task: &str, context: &str, at: u64) -> bool;
}

/// The identity attestation would give the agent (its SVID outlives the simulation).
fn identity(agent: &str) -> writ_core::Identity {
    let td = agent.trim_start_matches("spiffe://").split('/').next().unwrap_or("").to_string();
    writ_core::Identity { spiffe_id: agent.into(), trust_domain: td, expires_at: EPOCH + 10 * 365 * 86_400, thumbprint: String::new(), proof: writ_core::Proof::X509Svid }
}

/// `writ-core` natively, with the shipped policy pack.
pub struct Native {
    engine: writ_core::Engine,
}

impl Native {
    pub fn new() -> Result<Native, String> {
        let mut engine = writ_core::Engine::default();
        engine.set_policies(pack::POLICIES, Some(pack::SCHEMA), Some(pack::ENTITIES)).map_err(|e| e.to_string())?;
        Ok(Native { engine })
    }
}

impl Decider for Native {
    fn allow(&mut self, agent: &str, action: &str, resource: &str, task: &str, context: &str, at: u64) -> bool {
        let what = writ_core::Intent { action: action.into(), resource: resource.into(), task_id: task.into(), context: context.into() };
        self.engine.check(&identity(agent), &what, EPOCH + at).allow
    }
}

/// The Writ component through `writ-host`, with the shipped policy pack.
pub struct Component {
    writ: writ_host::Writ,
}

impl Component {
    pub fn new() -> Result<Component, String> {
        let writ = writ_host::Writ::builder().time(EPOCH).build().map_err(|e| e.to_string())?;
        writ.set_policies(pack::POLICIES, Some(pack::SCHEMA), Some(pack::ENTITIES)).map_err(|e| e.to_string())?;
        Ok(Component { writ })
    }
}

impl Decider for Component {
    fn allow(&mut self, agent: &str, action: &str, resource: &str, task: &str, context: &str, at: u64) -> bool {
        let id = identity(agent);
        let who = writ_host::Identity {
            spiffe_id: id.spiffe_id,
            trust_domain: id.trust_domain,
            expires_at: id.expires_at,
            thumbprint: id.thumbprint,
            proof: writ_host::Proof::X509Svid,
        };
        let what = writ_host::Intent { action: action.into(), resource: resource.into(), task_id: task.into(), context: context.into() };
        self.writ.set_time(Some(EPOCH + at));
        // A runtime failure is a deny: closed by default.
        self.writ.check(&who, &what).is_ok_and(|d| d.allow)
    }
}
