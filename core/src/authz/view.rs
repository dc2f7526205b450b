//! What a compiled condition reads (see `compiled`): the request's principal, resource and
//! context, and the entities it is decided against — the context read either from the parts it
//! is built from (Writ's keys and the caller's plain JSON, so a decision the compiled
//! conditions settle never builds Cedar's context at all) or from a context Cedar built.
//!
//! A [`Val`] is a value as Cedar would see it, without converting it: a caller's JSON number
//! is Cedar's long, a task's members are a set of `Agent` entities, and so on. The parts view
//! holds exactly what `context` builds from the same parts on the direct path (`writ_pairs` and
//! the caller's records); it is used only where that path builds the request's context.

use super::context::{WritKeys, agent_uid, long};
use cedar_policy::{Context, Entities, EntityTypeName, EntityUid, EvalResult};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A value a compiled expression evaluates to (see the module docs).
#[derive(Debug, Clone)]
pub(super) enum Val<'a> {
    /// A Cedar value: a policy literal (borrowed), an entity's attribute or a value of a
    /// context Cedar built.
    Cedar(Cow<'a, EvalResult>),
    /// The request's principal or resource.
    Uid(&'a EntityUid),
    /// An `Agent` entity named by its SPIFFE ID (a task's opener or one of its members).
    Agent(&'a str),
    Bool(bool),
    Long(i64),
    Str(&'a str),
    /// A value of the caller's JSON (plainly Cedar: checked when the parts view is chosen).
    Json(&'a Value),
    /// A caller's object (`claimed`, `input`) as a record.
    Object(&'a Map<String, Value>),
    /// Writ's record of the task (`context.task`).
    Task(&'a crate::Task),
    /// A task's members: a set of `Agent` entities.
    Members(&'a [String]),
    /// A verified break-glass approval (`context.approval`).
    Approval(&'a crate::approval::Approval),
    /// An OIDC identity's verified claims (`context.oidc`): a record of strings.
    Oidc(&'a BTreeMap<String, String>),
}

/// A value `==` compares by plain equality (no set, record or extension value).
#[derive(Debug, Clone, Copy)]
pub(super) enum Prim<'a> {
    Bool(bool),
    Long(i64),
    Str(&'a str),
    Uid(&'a EntityUid),
    Agent(&'a str),
}

/// Where the context's keys come from.
pub(super) enum ContextSource<'a> {
    /// The parts the direct path builds the context from.
    Parts { keys: &'a WritKeys<'a>, claimed: Option<&'a Map<String, Value>>, input: Option<&'a Map<String, Value>> },
    /// A context Cedar built: the keys the slice's conditions read, converted once (Cedar hands
    /// out context values by copy).
    Cedar(Vec<(&'a str, Option<EvalResult>)>),
    /// No context known (a request Cedar would decide partially): nothing is read.
    Unknown,
}

impl<'a> ContextSource<'a> {
    /// The keys `keys` of a context Cedar built.
    pub(super) fn cedar(context: Option<&Context>, keys: &'a [String]) -> ContextSource<'a> {
        match context {
            Some(c) => ContextSource::Cedar(keys.iter().map(|k| (k.as_str(), c.get(k))).collect()),
            None => ContextSource::Unknown,
        }
    }
}

/// What a compiled condition reads.
pub(super) struct Env<'a> {
    pub(super) principal: &'a EntityUid,
    pub(super) resource: &'a EntityUid,
    context: ContextSource<'a>,
    pub(super) entities: &'a Entities,
    agent_type: &'a EntityTypeName,
}

impl<'a> Env<'a> {
    pub(super) fn new(
        (principal, resource): (&'a EntityUid, &'a EntityUid),
        context: ContextSource<'a>,
        entities: &'a Entities,
        agent_type: &'a EntityTypeName,
    ) -> Env<'a> {
        Env { principal, resource, context, entities, agent_type }
    }

    /// `context has key`: `None` when the context is not known.
    pub(super) fn context_has(&self, key: &str) -> Option<bool> {
        match self.context {
            ContextSource::Unknown => None,
            _ => Some(self.context_value(key).is_some()),
        }
    }

    /// The context's value for `key`: `None` when the key is not there (or, for a context
    /// Cedar built, was not converted: never, for a compiled condition's key), or the context
    /// is not known.
    pub(super) fn context_value(&self, key: &str) -> Option<Val<'_>> {
        match &self.context {
            ContextSource::Unknown => None,
            ContextSource::Cedar(pairs) => pairs
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v.as_ref())
                .map(|v| Val::Cedar(Cow::Borrowed(v))),
            // As `writ_pairs` and the caller's records build them.
            ContextSource::Parts { keys, claimed, input } => match key {
                "task_id" => Some(Val::Str(keys.task_id)),
                "now" => Some(Val::Long(long(keys.now))),
                "delegation_depth" => Some(Val::Long(long(u64::from(keys.delegation_depth)))),
                "identity_expires_at" => keys.identity_expires_at.map(|e| Val::Long(long(e))),
                "task" => keys.task.map(Val::Task),
                "approval" => keys.approval.map(Val::Approval),
                "oidc" => keys.oidc.map(Val::Oidc),
                "claimed" => claimed.map(Val::Object),
                "input" => input.map(Val::Object),
                _ => None,
            },
        }
    }

    /// The agent a SPIFFE ID names.
    fn agent(&self, spiffe_id: &str) -> EntityUid {
        agent_uid(self.agent_type, spiffe_id)
    }

    /// An entity's attribute: `None` when the entity is not in the store or has no such
    /// attribute (Cedar's to say).
    fn entity_attr(&self, uid: &EntityUid, attr: &str) -> Option<Val<'a>> {
        Some(Val::Cedar(Cow::Owned(self.entities.get(uid)?.attr(attr)?.ok()?)))
    }

    /// `v.attr`, or `None` where Cedar would error (no such attribute, not a record or entity).
    pub(super) fn attr<'v>(&'v self, v: Val<'v>, attr: &str) -> Option<Val<'v>> {
        match v {
            Val::Cedar(Cow::Borrowed(EvalResult::Record(r))) => Some(Val::Cedar(Cow::Borrowed(r.get(attr)?))),
            Val::Cedar(Cow::Owned(EvalResult::Record(r))) => Some(Val::Cedar(Cow::Owned(r.get(attr)?.clone()))),
            Val::Cedar(v) => match &*v {
                EvalResult::EntityUid(uid) => self.entity_attr(uid, attr),
                _ => None,
            },
            Val::Uid(uid) => self.entity_attr(uid, attr),
            Val::Agent(id) => self.entity_attr(&self.agent(id), attr),
            Val::Json(Value::Object(o)) | Val::Object(o) => Some(Val::Json(o.get(attr)?)),
            Val::Task(t) => match attr {
                "id" => Some(Val::Str(&t.id)),
                "opener" => Some(Val::Agent(&t.opener)),
                "members" => Some(Val::Members(&t.members)),
                "purpose" => Some(Val::Str(&t.purpose)),
                "opened_at" => Some(Val::Long(long(t.opened_at))),
                "deadline" => Some(Val::Long(long(t.deadline))),
                _ => None,
            },
            Val::Approval(a) => match attr {
                "approver" => Some(Val::Str(&a.approver)),
                "ticket" => Some(Val::Str(&a.ticket)),
                "reason" => Some(Val::Str(&a.reason)),
                "expires_at" => Some(Val::Long(long(a.expires_at))),
                _ => None,
            },
            Val::Oidc(claims) => Some(Val::Str(claims.get(attr)?)),
            _ => None,
        }
    }

    /// `v has attr`, or `None` where Cedar would error or only Cedar can say (an entity not in
    /// the store).
    pub(super) fn has(&self, v: &Val<'_>, attr: &str) -> Option<bool> {
        let entity = |uid: &EntityUid| Some(self.entities.get(uid)?.attr(attr).is_some());
        match v {
            Val::Cedar(v) => match &**v {
                EvalResult::EntityUid(uid) => entity(uid),
                EvalResult::Record(r) => Some(r.get(attr).is_some()),
                _ => None,
            },
            Val::Uid(uid) => entity(uid),
            Val::Agent(id) => entity(&self.agent(id)),
            Val::Json(Value::Object(o)) => Some(o.contains_key(attr)),
            Val::Object(o) => Some(o.contains_key(attr)),
            // Writ's records have exactly the fields `attr` reads.
            Val::Task(_) | Val::Approval(_) | Val::Oidc(_) => Some(self.attr(v.clone(), attr).is_some()),
            _ => None,
        }
    }

    /// `v` as an entity uid, when it is one.
    pub(super) fn uid<'v>(&self, v: &'v Val<'_>) -> Option<Cow<'v, EntityUid>> {
        match v {
            Val::Cedar(c) => match &**c {
                EvalResult::EntityUid(uid) => Some(Cow::Borrowed(uid)),
                _ => None,
            },
            Val::Uid(uid) => Some(Cow::Borrowed(*uid)),
            Val::Agent(id) => Some(Cow::Owned(self.agent(id))),
            _ => None,
        }
    }

    /// Whether two primitive values are equal as Cedar's `==` says (values of different types
    /// are not).
    pub(super) fn same(&self, a: Prim<'_>, b: Prim<'_>) -> bool {
        let agent_is = |uid: &EntityUid, id: &str| uid.type_name() == self.agent_type && uid.id().unescaped() == id;
        match (a, b) {
            (Prim::Bool(a), Prim::Bool(b)) => a == b,
            (Prim::Long(a), Prim::Long(b)) => a == b,
            (Prim::Str(a), Prim::Str(b)) => a == b,
            (Prim::Uid(a), Prim::Uid(b)) => a == b,
            (Prim::Agent(a), Prim::Agent(b)) => a == b,
            (Prim::Uid(u), Prim::Agent(id)) | (Prim::Agent(id), Prim::Uid(u)) => agent_is(u, id),
            _ => false,
        }
    }
}

impl<'a> Val<'a> {
    /// The value when `==` compares it plainly: `None` for a set, a record or an extension
    /// value (or JSON that is not plainly Cedar).
    pub(super) fn prim(&self) -> Option<Prim<'_>> {
        Some(match self {
            Val::Cedar(v) => match &**v {
                EvalResult::Bool(b) => Prim::Bool(*b),
                EvalResult::Long(n) => Prim::Long(*n),
                EvalResult::String(s) => Prim::Str(s),
                EvalResult::EntityUid(uid) => Prim::Uid(uid),
                _ => return None,
            },
            Val::Uid(uid) => Prim::Uid(uid),
            Val::Agent(id) => Prim::Agent(id),
            Val::Bool(b) => Prim::Bool(*b),
            Val::Long(n) => Prim::Long(*n),
            Val::Str(s) => Prim::Str(s),
            Val::Json(Value::Bool(b)) => Prim::Bool(*b),
            Val::Json(Value::Number(n)) => Prim::Long(n.as_i64()?),
            Val::Json(Value::String(s)) => Prim::Str(s),
            _ => return None,
        })
    }

    pub(super) fn as_bool(&self) -> Option<bool> {
        match self.prim()? {
            Prim::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub(super) fn as_long(&self) -> Option<i64> {
        match self.prim()? {
            Prim::Long(n) => Some(n),
            _ => None,
        }
    }

    /// Calls `each` with every element when the value is a set, stopping with `None` as soon as
    /// `each` refuses one; `None` too when the value is not a set.
    pub(super) fn each_element(&self, mut each: impl FnMut(Val<'_>) -> Option<()>) -> Option<()> {
        match self {
            Val::Cedar(v) => match &**v {
                EvalResult::Set(set) => set.iter().try_for_each(|e| each(Val::Cedar(Cow::Borrowed(e)))),
                _ => None,
            },
            Val::Json(Value::Array(a)) => a.iter().try_for_each(|e| each(Val::Json(e))),
            Val::Members(m) => m.iter().try_for_each(|id| each(Val::Agent(id))),
            _ => None,
        }
    }
}
