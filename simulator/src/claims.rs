//! The seeds' claims, each a paired comparison on the same streams (see `paired`): what the
//! report states per scenario, and what the sensitivity analysis evaluates across the
//! parameter space.

use crate::decide::Decider;
use crate::design::Design;
use crate::paired::{self, Paired};
use crate::run::{self, Row, Runner};
use crate::scenario::Scenario;
use std::collections::BTreeMap;

/// The claims, in the order [`Claims::holds`] and [`Claims::statistics`] list them.
pub const NAMES: [&str; 4] = [
    "rotation-only leaves exposed copies usable (rotation-only − Writ exposure window)",
    "Writ shrinks blast radius tenfold (rotation-only − 10 × Writ)",
    "… within the workflows' need (rotation-only − 10 × Writ, needed pairs)",
    "very short TTLs raise failed tasks (JIT at 60 s − at the scenario's TTL)",
];

/// Short names for tables and CSV columns.
pub const KEYS: [&str; 4] = ["window", "tenfold", "tenfold_in_need", "short_ttl"];

/// The paired comparisons of one scenario's rows.
#[derive(Debug, Clone)]
pub struct Claims {
    pub window: Paired,
    pub leaks: Paired,
    pub tenfold: Paired,
    pub raw: Paired,
    pub tenfold_need: Paired,
    pub failing: Paired,
}

impl Claims {
    /// From the rows of `scenario` and JIT's failed tasks per replication seed at the short TTL.
    pub fn of(rows: &[Row], scenario: &str, short_ttl_failed: &BTreeMap<u64, f64>) -> Claims {
        let of = |d: Design, m: &str| paired::by_seed(rows, scenario, d, m);
        let diff = |a: &BTreeMap<u64, f64>, b: &BTreeMap<u64, f64>, scale: f64| {
            paired::paired(&paired::differences(a, b, scale))
        };
        let (rot_br, writ_br) = (of(Design::RotationOnly, "blast_radius"), of(Design::Writ, "blast_radius"));
        let (rot_need, writ_need) =
            (of(Design::RotationOnly, "blast_radius_in_need"), of(Design::Writ, "blast_radius_in_need"));
        Claims {
            window: diff(&of(Design::RotationOnly, "exposure_window_s"), &of(Design::Writ, "exposure_window_s"), 1.0),
            leaks: diff(&of(Design::RotationOnly, "leaks"), &of(Design::Writ, "leaks"), 1.0),
            tenfold: diff(&rot_br, &writ_br, 10.0),
            raw: diff(&rot_br, &writ_br, 1.0),
            tenfold_need: diff(&rot_need, &writ_need, 10.0),
            failing: diff(short_ttl_failed, &of(Design::Jit, "failed_tasks"), 1.0),
        }
    }

    /// The claims of scenario `s` from its `rows`, replaying JIT at the short TTL on the same
    /// streams.
    pub fn evaluate(
        runner: &Runner<'_>,
        s: &Scenario,
        rows: &[Row],
        seed: u64,
        replications: u64,
        decider: &mut dyn Decider,
    ) -> Result<Claims, String> {
        let short = run::jit_failed_tasks(runner, s, crate::SHORT_TTL_S, seed, replications, decider)?;
        Ok(Claims::of(rows, &s.name, &short))
    }

    /// Whether each claim holds: its paired interval wholly above zero.
    pub fn holds(&self) -> [bool; 4] {
        [
            self.window.above_zero() && self.leaks.above_zero(),
            self.tenfold.above_zero(),
            self.tenfold_need.above_zero(),
            self.failing.above_zero(),
        ]
    }

    /// Whether each claim is contradicted: its paired interval wholly below zero (a claim
    /// neither holding nor contradicted is unresolved at this many replications).
    pub fn contradicted(&self) -> [bool; 4] {
        let below = |p: &Paired| p.hi < 0.0;
        [
            below(&self.window) || below(&self.leaks),
            below(&self.tenfold),
            below(&self.tenfold_need),
            below(&self.failing),
        ]
    }

    /// Each claim's mean paired difference (above zero where it points the claimed way).
    pub fn statistics(&self) -> [f64; 4] {
        [self.window.mean, self.tenfold.mean, self.tenfold_need.mean, self.failing.mean]
    }
}
