//! What one replication under one design measured.

/// Metrics of one replication under one design.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// Distinct (resource, action) pairs the attacker exercised.
    pub blast_radius: u64,
    /// The same, each weighted by 1 + the resource's sensitivity.
    pub blast_radius_weighted: u64,
    /// The exercised pairs some workflow's step uses: the blast radius within the agents'
    /// legitimate need (over-privilege left out), so pairs no task needs cannot inflate it.
    pub blast_radius_in_need: u64,
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
    pub const NAMES: [&'static str; 16] = [
        "blast_radius",
        "blast_radius_weighted",
        "blast_radius_in_need",
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

    pub fn values(&self) -> [f64; 16] {
        [
            self.blast_radius as f64,
            self.blast_radius_weighted as f64,
            self.blast_radius_in_need as f64,
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
