//! Conversions between the vocabulary (`writ-types`) and the bindgen records of the WIT
//! contract: the only place the host maps one onto the other.

use crate::bindings::exports::writ::agent::issue::Grant as WitGrant;
use crate::bindings::writ::agent::audit::Event as WitEvent;
use crate::bindings::writ::agent::types as wit;
use writ_types::{AuditEvent, Decision, EntityRef, Error, Evaluation, Grant, Identity, Intent, Proof};

impl From<wit::Decision> for Decision {
    fn from(d: wit::Decision) -> Self {
        Decision { allow: d.allow, reasons: d.reasons, errors: d.errors, max_ttl_secs: d.max_ttl_secs }
    }
}

pub(crate) fn error(e: wit::Error) -> Error {
    match e {
        wit::Error::Malformed(m) => Error::Malformed(m),
        wit::Error::Untrusted(m) => Error::Untrusted(m),
        wit::Error::Expired(m) => Error::Expired(m),
        wit::Error::NotYetValid(m) => Error::NotYetValid(m),
        wit::Error::Policy(m) => Error::Policy(m),
        wit::Error::Denied(d) => Error::Denied(d.into()),
        wit::Error::Revoked(m) => Error::Revoked(m),
        wit::Error::Limit(m) => Error::Limit(m),
        wit::Error::Unimplemented(m) => Error::Unimplemented(m),
    }
}

pub(crate) fn identity(i: wit::Identity) -> Identity {
    Identity {
        spiffe_id: i.spiffe_id,
        trust_domain: i.trust_domain,
        expires_at: i.expires_at,
        thumbprint: i.thumbprint,
        proof: match i.proof {
            wit::Proof::X509Svid => Proof::X509Svid,
            wit::Proof::JwtSvid => Proof::JwtSvid,
            wit::Proof::Asserted => Proof::Asserted,
            wit::Proof::Oidc => Proof::Oidc,
        },
        claims: i.claims.into_iter().collect(),
    }
}

/// The intent as the component's export takes it: borrowed, lowered without a copy.
pub(crate) fn intent_to_wit(i: &Intent) -> wit::Intent<'_> {
    wit::Intent { action: &i.action, resource: &i.resource, task_id: &i.task_id, context: &i.context, input: &i.input }
}

pub(crate) fn semantic_to_wit(s: writ_types::authzen::Semantic) -> wit::EvaluationsSemantic {
    use writ_types::authzen::Semantic as S;
    match s {
        S::ExecuteAll => wit::EvaluationsSemantic::ExecuteAll,
        S::DenyOnFirstDeny => wit::EvaluationsSemantic::DenyOnFirstDeny,
        S::PermitOnFirstPermit => wit::EvaluationsSemantic::PermitOnFirstPermit,
    }
}

fn entity_to_wit(r: &EntityRef) -> wit::EntityRef<'_> {
    wit::EntityRef { type_: &r.type_name, id: &r.id, properties: &r.properties }
}

pub(crate) fn evaluation_to_wit(e: &Evaluation) -> wit::Evaluation<'_> {
    wit::Evaluation {
        subject: entity_to_wit(&e.subject),
        action: &e.action,
        action_properties: &e.action_properties,
        resource: entity_to_wit(&e.resource),
        context: &e.context,
    }
}

pub(crate) fn task(t: crate::bindings::exports::writ::agent::issue::Task) -> crate::Task {
    crate::Task {
        id: t.id,
        opener: t.opener,
        members: t.members,
        purpose: t.purpose,
        opened_at: t.opened_at,
        deadline: t.deadline,
        ended_at: t.ended_at,
    }
}

pub(crate) fn grant(g: WitGrant) -> Grant {
    Grant { token: g.token, jti: g.jti, expires_at: g.expires_at }
}

pub(crate) fn audit_event(e: WitEvent) -> AuditEvent {
    AuditEvent {
        kind: e.kind,
        time: e.time,
        spiffe_id: e.spiffe_id,
        task_id: e.task_id,
        action: e.action,
        resource: e.resource,
        allow: e.allow,
        reasons: e.reasons,
        jti: e.jti,
        act_chain: e.act_chain,
        detail: e.detail,
        ..AuditEvent::default()
    }
}
