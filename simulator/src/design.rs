//! The six credential designs the simulator compares.

/// The six credential designs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Design {
    /// One broad, never-expiring secret per agent, copied wherever it is used.
    Static,
    /// The static secret, rotated every period; the old one works for a grace period.
    RotationOnly,
    /// Rotated and fetched from a vault at run time: only the agent's memory holds it.
    Vaulted,
    /// Static, but scoped to what the agent's workflows need.
    LeastPrivilege,
    /// Per task: task scope, TTL, revoked at task end; a bearer token.
    Jit,
    /// JIT, sender-constrained (`cnf`), and every use checked against policy (Writ).
    Writ,
}

impl Design {
    pub const ALL: [Design; 6] =
        [Design::Static, Design::RotationOnly, Design::Vaulted, Design::LeastPrivilege, Design::Jit, Design::Writ];

    pub fn name(self) -> &'static str {
        match self {
            Design::Static => "static",
            Design::RotationOnly => "rotation-only",
            Design::Vaulted => "vaulted-rotation",
            Design::LeastPrivilege => "least-privilege",
            Design::Jit => "jit",
            Design::Writ => "writ",
        }
    }

    pub(crate) fn per_task(self) -> bool {
        matches!(self, Design::Jit | Design::Writ)
    }

    pub(crate) fn rotates(self) -> bool {
        matches!(self, Design::RotationOnly | Design::Vaulted)
    }
}
