//! A general (AuthZEN-shaped) evaluation: subjects that are not attested agents, with
//! properties. Decided by the same loaded policies as `check`.
//!
//! The mapping onto Cedar: principal `<subject.type>::"<subject.id>"` with the loaded entity's
//! attributes overlaid by the subject's properties; action `Action::"<action>"`; resource
//! likewise; context the request's `context` plus, when the action has properties, the key
//! `action` holding them.

use serde::{Deserialize, Serialize};

/// An entity as an AuthZEN request names it: a Cedar entity type, an id, and attributes (a
/// JSON object, or empty) overlaying the loaded entity's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntityRef {
    /// A Cedar entity type name (`User`, `Acme::Doc`).
    #[serde(rename = "type")]
    pub type_name: String,
    pub id: String,
    /// A JSON object's text, or empty.
    #[serde(default)]
    pub properties: String,
}

/// One AuthZEN-shaped evaluation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Evaluation {
    pub subject: EntityRef,
    /// The action name (`Action::"<name>"`).
    pub action: String,
    /// A JSON object, or empty: when present, the Cedar context's `action` key.
    #[serde(default)]
    pub action_properties: String,
    pub resource: EntityRef,
    /// A JSON object, or empty.
    #[serde(default)]
    pub context: String,
}
