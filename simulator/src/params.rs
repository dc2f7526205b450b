//! Swept parameters: `--param ttl=60,300,900 --param rotation=1h,24h,30d` → a grid of
//! assignments, each applied to a scenario and checked like a scenario file's values.

use crate::scenario::Scenario;

/// A parameter `writ-sim sweep` can vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// `design.ttl_s`.
    Ttl,
    /// `design.rotation_period_s`.
    Rotation,
    /// `design.rotation_grace_s`.
    Grace,
    /// `design.refresh_before_s`.
    Refresh,
    /// `breach.detection_dwell_s`.
    Dwell,
    /// `breach.time_to_exploit_s`.
    Exploit,
    /// `breach.duplication_rate`.
    Duplication,
    /// `breach.exposures_per_year`.
    Exposure,
    /// `breach.hijacks_per_year`.
    Hijack,
    /// `breach.offboarded_live_rate`.
    OffboardedLive,
    /// `breach.remediations_per_day`.
    Remediation,
    /// `breach.memory_theft_rate`.
    MemoryTheft,
}

impl Param {
    pub const ALL: [Param; 12] = [
        Param::Ttl,
        Param::Rotation,
        Param::Grace,
        Param::Refresh,
        Param::Dwell,
        Param::Exploit,
        Param::Duplication,
        Param::Exposure,
        Param::Hijack,
        Param::OffboardedLive,
        Param::Remediation,
        Param::MemoryTheft,
    ];

    /// Its name on the command line and as a column of `sweep.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Param::Ttl => "ttl",
            Param::Rotation => "rotation",
            Param::Grace => "grace",
            Param::Refresh => "refresh",
            Param::Dwell => "dwell",
            Param::Exploit => "exploit",
            Param::Duplication => "duplication",
            Param::Exposure => "exposure",
            Param::Hijack => "hijack",
            Param::OffboardedLive => "offboarded_live",
            Param::Remediation => "remediation",
            Param::MemoryTheft => "memory_theft",
        }
    }

    /// Durations are seconds (written `90`, `90s`, `15m`, `1h`, `30d`); the others are
    /// probabilities or rates (exposures and hijacks a year, remediations a day).
    pub(crate) fn is_duration(self) -> bool {
        matches!(self, Param::Ttl | Param::Rotation | Param::Grace | Param::Refresh | Param::Dwell | Param::Exploit)
    }

    fn set(self, s: &mut Scenario, v: f64) {
        // Durations were parsed as whole seconds.
        let secs = v as u64;
        match self {
            Param::Ttl => s.design.ttl_s = secs,
            Param::Rotation => s.design.rotation_period_s = secs,
            Param::Grace => s.design.rotation_grace_s = secs,
            Param::Refresh => s.design.refresh_before_s = secs,
            Param::Dwell => s.breach.detection_dwell_s = secs,
            Param::Exploit => s.breach.time_to_exploit_s = v,
            Param::Duplication => s.breach.duplication_rate = v,
            Param::Exposure => s.breach.exposures_per_year = v,
            Param::Hijack => s.breach.hijacks_per_year = v,
            Param::OffboardedLive => s.breach.offboarded_live_rate = v,
            Param::Remediation => s.breach.remediations_per_day = v,
            Param::MemoryTheft => s.breach.memory_theft_rate = v,
        }
    }
}

/// Seconds in `90`, `90s`, `15m`, `1h`, `30d`.
pub fn duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1),
        Some((i, 'm')) => (&t[..i], 60),
        Some((i, 'h')) => (&t[..i], 3600),
        Some((i, 'd')) => (&t[..i], 86_400),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{text}` is not a duration (whole seconds, or with s, m, h or d)"))
}

/// One swept parameter and its values, from `name=v1,v2,…`.
pub fn parse(spec: &str) -> Result<(Param, Vec<f64>), String> {
    let (name, values) = spec.split_once('=').ok_or_else(|| format!("`{spec}`: expected NAME=V1,V2,…"))?;
    let names: Vec<&str> = Param::ALL.iter().map(|p| p.name()).collect();
    let p = Param::ALL
        .into_iter()
        .find(|p| p.name() == name.trim())
        .ok_or_else(|| format!("`{name}` is not a parameter; known: {}", names.join(", ")))?;
    let mut out = Vec::new();
    for v in values.split(',').filter(|v| !v.trim().is_empty()) {
        let x = if p.is_duration() {
            duration(v)? as f64
        } else {
            v.trim().parse::<f64>().map_err(|_| format!("`{name}`: `{v}` is not a number"))?
        };
        out.push(x);
    }
    if out.is_empty() {
        return Err(format!("`{name}` has no values"));
    }
    Ok((p, out))
}

/// Values of the swept parameters for one cell of the grid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assignment(pub Vec<(Param, f64)>);

impl Assignment {
    /// `s` with these values, checked like a scenario file (a TTL of 0 or a probability
    /// above 1 is refused with the reason).
    pub fn apply(&self, s: &Scenario) -> Result<Scenario, String> {
        let mut out = s.clone();
        for (p, v) in &self.0 {
            p.set(&mut out, *v);
        }
        out.check().map_err(|e| format!("scenario `{}` with {}: {e}", s.name, self.label()))?;
        Ok(out)
    }

    /// `ttl=60 rotation=3600`.
    pub fn label(&self) -> String {
        self.0.iter().map(|(p, v)| format!("{}={v}", p.name())).collect::<Vec<_>>().join(" ")
    }

    pub fn get(&self, p: Param) -> Option<f64> {
        self.0.iter().find(|(q, _)| *q == p).map(|(_, v)| *v)
    }
}

/// Every combination of the parameters' values, the first parameter varying slowest.
pub fn grid(params: &[(Param, Vec<f64>)]) -> Result<Vec<Assignment>, String> {
    for (i, (p, _)) in params.iter().enumerate() {
        if params[..i].iter().any(|(q, _)| q == p) {
            return Err(format!("`{}` is swept twice", p.name()));
        }
    }
    let mut out = vec![Assignment::default()];
    for (p, values) in params {
        out = out
            .iter()
            .flat_map(|a| values.iter().map(move |v| Assignment(a.0.iter().copied().chain([(*p, *v)]).collect())))
            .collect();
    }
    Ok(out)
}
