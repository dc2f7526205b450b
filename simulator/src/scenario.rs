//! Scenario files (TOML): the world (agents, resources), the workflows that run in it, the
//! breach rates, and the design parameters. Every default is a calibrated figure cited where
//! it is defined; every one can be overridden in the file.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A scenario as written, with defaults filled in.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Simulated time, hours. Default a year: every design's own mechanism (rotation,
    /// TTLs, detection, remediation) happens many times. (The shipped scenarios run half a
    /// year: five 30-day rotations after the warm-up, at half the cost.)
    #[serde(default = "default_horizon")]
    pub horizon_hours: f64,
    /// Hours at the start the attacker leaves alone and the metrics exclude: credentials,
    /// rotations and tasks settle into their steady state first. Default 30 days (one default
    /// rotation period); below the horizon.
    #[serde(default = "default_warmup")]
    pub warmup_hours: f64,
    #[serde(default)]
    pub breach: Breach,
    #[serde(default)]
    pub design: DesignParams,
    #[serde(default)]
    pub cost: Cost,
    #[serde(rename = "agent")]
    pub agents: Vec<Agent>,
    #[serde(rename = "resource")]
    pub resources: Vec<Resource>,
    #[serde(rename = "workflow")]
    pub workflows: Vec<Workflow>,
    /// Long-lived secrets no design manages (a database password in a config file, a cloud key
    /// on a host): the same in every design, found by whoever reaches where they are stored.
    #[serde(rename = "secret", default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
}

/// An unmanaged secret: stored on some resources, granting every action on others.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    pub name: String,
    /// Resources (uids) it is stored on: exercising any action there finds it.
    pub stored_on: Vec<String>,
    /// Resources (uids) it grants every action on.
    pub grants: Vec<String>,
}

pub(crate) fn default_horizon() -> f64 {
    365.0 * 24.0
}

pub(crate) fn default_warmup() -> f64 {
    30.0 * 24.0
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// SPIFFE ID.
    pub id: String,
    /// Places a copy of this agent's credentials is kept (logs, prompt memory, CI, tickets…):
    /// where a long-lived secret can leak from.
    #[serde(default = "default_copies")]
    pub copies: u32,
    /// When the agent is offboarded (hours into the run): it starts no more tasks, and its
    /// long-lived credentials stay live with `breach.offboarded_live_rate`.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offboarded_at_hours: Option<f64>,
    /// A service account shared with the other agents naming the same one: in the long-lived
    /// designs they hold one secret between them (its scope is what all of them need, a leak
    /// or hijack of any of them exposes it, and it cannot be revoked while one of them still
    /// works). Per-task designs give each agent its own credentials whatever this says.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

fn default_copies() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// Cedar entity uid, e.g. `PayrollRecord::"run-42/emp-7"`.
    pub uid: String,
    /// 0 public, 1 internal, 2 confidential, 3 restricted.
    pub sensitivity: u8,
    /// Records an action on it touches.
    #[serde(default = "default_value")]
    pub records: u64,
    pub actions: Vec<String>,
    /// Credentials are per protocol in the rotation designs (`db`, `http`, `ssh`…).
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// Agents (SPIFFE IDs) whose long-lived secret is stored on this resource (a config file,
    /// a CI variable, a shared document): an attacker who exercises any action on it finds
    /// the secret — the next hop of lateral movement. Per-task and vaulted designs store no
    /// secret at rest, so there is nothing to find.
    #[serde(default)]
    pub holds: Vec<String>,
}

fn default_value() -> u64 {
    1
}

fn default_protocol() -> String {
    "http".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    pub name: String,
    /// Task arrivals per hour (Poisson).
    pub rate_per_hour: f64,
    /// The task id every instance carries (policies may name it); default `<name>-<n>`.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The first step's agent owns the task; steps of other agents are delegated to them.
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Seconds after the task starts.
    pub at: u64,
    pub agent: String,
    pub action: String,
    pub resource: String,
    /// The intent's context JSON.
    #[serde(default)]
    pub context: String,
}

/// Breach rates and delays: what happens to a credential arrives as a rate in time (a Poisson
/// process), so results scale with the horizon. Each default is a cited figure or is marked as
/// a modelling assumption where it is defined.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Breach {
    /// Probability that a credential has extra copies beyond its home: 62% of secrets are
    /// duplicated in several locations (NHIMG research, as cited by the seeds). A share of
    /// secrets, not a rate in time: duplication is a fact of the world.
    pub duplication_rate: f64,
    /// Extra copies of a duplicated credential.
    pub extra_copies: u32,
    /// Exposures per year of each place holding an agent's credentials (logs, chat, tickets,
    /// commits, prompt memory): a Poisson process; what leaks is whatever credential that place
    /// holds at that moment. 44% of NHI tokens are exposed there (Entro Security, The 2025 State
    /// of NHIs and Secrets in Cybersecurity, as cited by the seeds); *assumption*: that share
    /// is read as the share exposed within a year, so the rate is −ln(1 − 0.44) ≈ 0.58 a year.
    pub exposures_per_year: f64,
    /// Mean time from exposure to the attacker's first use, seconds (exponential): leaked
    /// cloud keys are abused within minutes (public honeypot reports).
    pub time_to_exploit_s: f64,
    /// Hijacks (prompt injection) per agent per year, a Poisson process. *Assumption*: no
    /// published rate exists; one a year by default, set per scenario.
    pub hijacks_per_year: f64,
    /// Probability that an exposure of an agent's working memory is a theft of that memory —
    /// its private key with its tokens (a process dump, a compromised host) — rather than a
    /// leak of what it wrote (logs, prompts): the thief presents a sender-constrained token as
    /// its holder. *Assumption*: 10%, no published figure.
    pub memory_theft_rate: f64,
    /// How long a hijack lasts, seconds.
    pub hijack_duration_s: u64,
    /// The contexts an attacker presents an intent with, tried in order until one is allowed:
    /// by default it declares nothing, then claims an internal destination — a lie, the data
    /// goes to the attacker. What an intent's context claims is the caller's word: a policy
    /// that trusts a claimed destination is only as strong as the caller's honesty.
    pub attacker_contexts: Vec<String>,
    /// Probability that an offboarded agent's long-lived credentials stay live: 91% of
    /// offboarded tokens are still active (the same Entro report, as cited by the seeds).
    pub offboarded_live_rate: f64,
    /// Median seconds from a breach to its detection, which triggers the design's response
    /// (rotate the secret, revoke the token, cut the agent off); each breach's delay is
    /// exponential with this median. Default 10 days: the median dwell time reported by
    /// Mandiant M-Trends 2024.
    pub detection_dwell_s: u64,
    /// Seconds from finding a secret on a compromised resource to using it (a modelling
    /// assumption, not a cited figure: an attacker already inside moves at tool speed).
    pub lateral_delay_s: u64,
    /// Remediations per day of an exposed long-lived secret (a scanner's alert acted on): a
    /// constant hazard from the exposure. Over 90% of leaked secrets are still valid five days
    /// after the leak (GitGuardian, State of Secrets Sprawl 2024), so −ln(0.9)/5 ≈ 0.021 a day
    /// (*assumption*: a constant hazard). Per-task credentials need no remediation: they expire
    /// with their task.
    pub remediations_per_day: f64,
}

/// −ln(1 − 0.44): the yearly rate at which 44% of places are exposed within a year.
pub const EXPOSURES_PER_YEAR: f64 = 0.579_818_495_252_942;

/// −ln(0.9)/5: the daily hazard at which 90% of leaked secrets are still valid after 5 days.
pub const REMEDIATIONS_PER_DAY: f64 = 0.021_072_103_131_565_26;

/// Seconds in a (365-day) year.
pub const YEAR_S: f64 = 365.0 * 86_400.0;

impl Default for Breach {
    fn default() -> Self {
        Breach {
            duplication_rate: 0.62,
            extra_copies: 2,
            exposures_per_year: EXPOSURES_PER_YEAR,
            time_to_exploit_s: 300.0,
            hijacks_per_year: 1.0,
            memory_theft_rate: 0.1,
            hijack_duration_s: 1800,
            attacker_contexts: vec![String::new(), r#"{"destination":"warehouse.internal.example"}"#.into()],
            offboarded_live_rate: 0.91,
            detection_dwell_s: 10 * 86_400,
            lateral_delay_s: 60,
            remediations_per_day: REMEDIATIONS_PER_DAY,
        }
    }
}

/// Parameters of the designs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DesignParams {
    /// Rotation period, seconds (rotation designs). Default 30 days.
    pub rotation_period_s: u64,
    /// How long a rotated-out credential keeps working (propagation grace), seconds.
    pub rotation_grace_s: u64,
    /// Rotation period per protocol (`db = 86400`), seconds: in the rotation designs an agent
    /// holds one credential per protocol, each rotated on its own schedule. Protocols not
    /// listed rotate every `rotation_period_s`.
    pub rotation_by_protocol: BTreeMap<String, u64>,
    /// Credential lifetime of the JIT designs, seconds.
    pub ttl_s: u64,
    /// JIT designs: when above 0, an agent whose task outlives its credential refreshes it
    /// this many seconds before it expires (a new credential; the old one lives out its TTL).
    /// 0 (default): no refresh — a step after expiry fails the task.
    pub refresh_before_s: u64,
}

impl Default for DesignParams {
    fn default() -> Self {
        DesignParams {
            rotation_period_s: 30 * 86_400,
            rotation_grace_s: 3600,
            rotation_by_protocol: BTreeMap::new(),
            ttl_s: 900,
            refresh_before_s: 0,
        }
    }
}

impl DesignParams {
    /// The rotation period of credentials for `protocol`.
    pub fn rotation_period(&self, protocol: &str) -> u64 {
        self.rotation_by_protocol.get(protocol).copied().unwrap_or(self.rotation_period_s)
    }
}

/// What each operation adds to a tool call, microseconds. Fixed figures (not measured during
/// the run) so outputs stay byte-identical for a seed; the defaults are Writ's benchmarked
/// p50s through the component on the BENCHMARKS.md machine (`cargo bench -p writ-benches`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cost {
    /// Issuing a credential (Writ `issue`, EdDSA, policy checks included): 37.7 µs.
    pub issue_us: f64,
    /// Presenting a credential at a tool call (signature, binding, policy; cold): 64.1 µs.
    pub present_us: f64,
    /// Fetching a secret from a vault at task start. Not benchmarked here: an assumption of
    /// one network round trip (2 ms); override with your own figure.
    pub vault_fetch_us: f64,
}

impl Default for Cost {
    fn default() -> Self {
        Cost { issue_us: 37.7, present_us: 64.1, vault_fetch_us: 2000.0 }
    }
}

/// A scenario that cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError(pub String);

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Scenario {
    /// Parse and check a scenario; errors name the file and, for syntax or field errors, the
    /// line and field.
    pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| {
            // The line number and the line itself (which names the field).
            let at = e.span().map(|r| {
                let start = r.start.min(text.len());
                let line = text[..start].matches('\n').count() + 1;
                let src = text.lines().nth(line - 1).unwrap_or("").trim();
                format!(" line {line} `{src}`")
            });
            ScenarioError(format!("{file}{}: {}", at.unwrap_or_default(), e.message()))
        })?;
        s.check().map_err(|m| ScenarioError(format!("{file}: {m}")))?;
        Ok(s)
    }

    /// The scenario as a file, every default written out.
    pub fn to_toml(&self) -> Result<String, ScenarioError> {
        toml::to_string(self).map_err(|e| ScenarioError(format!("scenario `{}`: {e}", self.name)))
    }

    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError(format!("{}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Impossible parameters are refused with a reason.
    pub fn check(&self) -> Result<(), String> {
        let prob = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("`breach.{name}` is {v}; a probability is between 0 and 1"))
            }
        };
        if !(self.horizon_hours > 0.0 && self.horizon_hours <= 24.0 * 366.0 * 10.0) {
            return Err(format!("`horizon_hours` is {}; it must be above 0 and at most ten years", self.horizon_hours));
        }
        if !(self.warmup_hours >= 0.0 && self.warmup_hours < self.horizon_hours) {
            return Err(format!(
                "`warmup_hours` is {}; it must be 0 or more and below `horizon_hours` ({})",
                self.warmup_hours, self.horizon_hours
            ));
        }
        prob("duplication_rate", self.breach.duplication_rate)?;
        prob("offboarded_live_rate", self.breach.offboarded_live_rate)?;
        prob("memory_theft_rate", self.breach.memory_theft_rate)?;
        for (name, v, max) in [
            ("exposures_per_year", self.breach.exposures_per_year, MAX_PER_YEAR),
            ("hijacks_per_year", self.breach.hijacks_per_year, MAX_PER_YEAR),
            ("remediations_per_day", self.breach.remediations_per_day, MAX_PER_YEAR / 365.0),
        ] {
            if !(v >= 0.0 && v <= max) {
                return Err(format!("`breach.{name}` is {v}; a rate is between 0 and {max}"));
            }
        }
        if !(self.breach.time_to_exploit_s >= 0.0 && self.breach.time_to_exploit_s.is_finite()) {
            return Err(format!(
                "`breach.time_to_exploit_s` is {}; it must be 0 or more",
                self.breach.time_to_exploit_s
            ));
        }
        if self.design.ttl_s == 0 {
            return Err("`design.ttl_s` is 0; a credential must live at least a second".into());
        }
        if self.design.rotation_period_s == 0 {
            return Err("`design.rotation_period_s` is 0; rotation needs a period".into());
        }
        if let Some((p, _)) = self.design.rotation_by_protocol.iter().find(|(_, v)| **v == 0) {
            return Err(format!("`design.rotation_by_protocol.{p}` is 0; rotation needs a period"));
        }
        if self.design.refresh_before_s >= self.design.ttl_s && self.design.refresh_before_s > 0 {
            return Err(format!(
                "`design.refresh_before_s` is {}; it must be below `design.ttl_s` ({}) or a refreshed credential would never last",
                self.design.refresh_before_s, self.design.ttl_s
            ));
        }
        for (name, v) in [
            ("issue_us", self.cost.issue_us),
            ("present_us", self.cost.present_us),
            ("vault_fetch_us", self.cost.vault_fetch_us),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(format!("`cost.{name}` is {v}; a cost is 0 or more"));
            }
        }
        let agents: BTreeSet<&str> = self.agents.iter().map(|a| a.id.as_str()).collect();
        for a in &self.agents {
            if !a.id.starts_with("spiffe://") {
                return Err(format!("agent `{}` is not a SPIFFE ID", a.id));
            }
            if a.offboarded_at_hours.is_some_and(|h| !(h >= 0.0 && h.is_finite())) {
                return Err(format!("agent `{}`: `offboarded_at_hours` must be 0 or more", a.id));
            }
        }
        let resources: BTreeSet<&str> = self.resources.iter().map(|r| r.uid.as_str()).collect();
        for r in &self.resources {
            if r.sensitivity > 3 {
                return Err(format!("resource `{}`: sensitivity {} is not 0–3", r.uid, r.sensitivity));
            }
            if !r.uid.contains("::\"") {
                return Err(format!("resource `{}` is not a Cedar uid like `Type::\"id\"`", r.uid));
            }
            if let Some(a) = r.holds.iter().find(|a| !agents.contains(a.as_str())) {
                return Err(format!("resource `{}` holds the secret of `{a}`, which is not an `[[agent]]`", r.uid));
            }
        }
        for k in &self.secrets {
            if let Some(r) = k.stored_on.iter().chain(&k.grants).find(|r| !resources.contains(r.as_str())) {
                return Err(format!("secret `{}` names `{r}`, which is not a `[[resource]]`", k.name));
            }
        }
        if self.workflows.is_empty() {
            return Err("no `[[workflow]]`".into());
        }
        for w in &self.workflows {
            if !(w.rate_per_hour >= 0.0 && w.rate_per_hour.is_finite()) {
                return Err(format!(
                    "workflow `{}`: `rate_per_hour` is {}; it must be 0 or more",
                    w.name, w.rate_per_hour
                ));
            }
            if w.steps.is_empty() {
                return Err(format!("workflow `{}` has no `[[workflow.step]]`", w.name));
            }
            for s in &w.steps {
                if !agents.contains(s.agent.as_str()) {
                    return Err(format!("workflow `{}`: step agent `{}` is not an `[[agent]]`", w.name, s.agent));
                }
                if !resources.contains(s.resource.as_str()) {
                    return Err(format!(
                        "workflow `{}`: step resource `{}` is not a `[[resource]]`",
                        w.name, s.resource
                    ));
                }
                let r = self.resources.iter().find(|r| r.uid == s.resource);
                if r.is_some_and(|r| !r.actions.contains(&s.action)) {
                    return Err(format!("workflow `{}`: `{}` is not an action of `{}`", w.name, s.action, s.resource));
                }
            }
        }
        Ok(())
    }

    pub fn horizon_s(&self) -> u64 {
        (self.horizon_hours * 3600.0) as u64
    }

    /// The end of the warm-up, seconds.
    pub fn warmup_s(&self) -> u64 {
        (self.warmup_hours * 3600.0) as u64
    }
}

/// The highest event rate a scenario may set, per year (it bounds the work of drawing them).
pub const MAX_PER_YEAR: f64 = 1_000_000.0;
