//! Tasks as records: a task is opened by a principal policy allows (action `open_task` on
//! `Task::"<id>"`), with its members, purpose and deadline; credentials are issued and
//! delegated only inside an open task and only to its members, and live no longer than its
//! deadline. An id never opened cannot be used or ended.

use super::{Env, MAX_FIELD_BYTES};
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::ledger::MAX_TASK_SECS;
use crate::spiffe_id::clip;
use crate::writ::Writ;
use crate::{Decision, Intent, Task};

/// Members one task may name.
pub const MAX_MEMBERS: usize = 256;

/// The reason a refusal names when the task was never opened (or is forgotten).
pub const TASK_NOT_OPEN: &str = "writ:task-not-open";
/// The reason a refusal names when the agent is not one of the task's members.
pub const NOT_A_MEMBER: &str = "writ:not-a-member";

fn refusal(reason: &str, message: String) -> Error {
    Error::Denied(Decision { allow: false, reasons: vec![reason.into()], errors: vec![message], max_ttl_secs: 0 })
}

fn bounded(name: &str, v: &str, empty_ok: bool) -> Result<()> {
    if v.is_empty() && !empty_ok {
        return Err(Error::Malformed(format!("{name} is empty")));
    }
    if v.len() > MAX_FIELD_BYTES {
        return Err(Error::Limit(format!("{name} is {} bytes, over the cap of {MAX_FIELD_BYTES}", v.len())));
    }
    Ok(())
}

/// The task `task_id` when it is open at `env.now` and `member` is one of its members:
/// what issuing or delegating a credential of it requires.
pub(super) fn open_task_for(env: &Env<'_>, task_id: &str, member: &str) -> Result<std::sync::Arc<Task>> {
    let Some(task) = env.ledger.task(task_id, env.now) else {
        return Err(refusal(TASK_NOT_OPEN, format!("task `{}` was never opened", clip(task_id))));
    };
    if let Some(at) = task.ended_at {
        return Err(Error::Revoked(format!("task `{}` ended at {at}", clip(task_id))));
    }
    if env.now >= task.deadline {
        return Err(Error::Expired(format!("task `{}` passed its deadline ({})", clip(task_id), task.deadline)));
    }
    if !task.has_member(member) {
        return Err(refusal(NOT_A_MEMBER, format!("`{}` is not a member of task `{}`", clip(member), clip(task_id))));
    }
    Ok(task)
}

impl Writ {
    /// Open task `id` for `opener`: its members (SPIFFE IDs), purpose and deadline (after now,
    /// at most [`MAX_TASK_SECS`] ahead). The opener must be attested and live, not cut off,
    /// allowed by policy (`open_task` on `Task::"<id>"`), under its quota of open tasks; the id
    /// must be new.
    pub fn open_task(
        &self,
        opener: &Identity,
        id: &str,
        members: &[String],
        purpose: &str,
        deadline: u64,
        env: &Env<'_>,
    ) -> Result<Task> {
        bounded("the task id", id, false)?;
        bounded("the purpose", purpose, true)?;
        if members.is_empty() {
            return Err(Error::Malformed("a task needs at least one member".into()));
        }
        if members.len() > MAX_MEMBERS {
            return Err(Error::Limit(format!("{} members, over the cap of {MAX_MEMBERS}", members.len())));
        }
        for m in members {
            bounded("a member", m, false)?;
            if !m.starts_with("spiffe://") {
                return Err(Error::Malformed(format!("member `{}` is not a SPIFFE ID", clip(m))));
            }
        }
        if deadline <= env.now {
            return Err(Error::Malformed(format!("the deadline {deadline} is not after now ({})", env.now)));
        }
        if deadline - env.now > MAX_TASK_SECS {
            return Err(Error::Limit(format!("the deadline is more than {MAX_TASK_SECS} s ahead")));
        }
        Self::live_identity(opener, env.now)?;
        if let Some(at) = env.ledger.cut_off_since(&opener.spiffe_id, env.now) {
            return Err(Error::Revoked(format!("`{}` was cut off at {at}", opener.spiffe_id)));
        }
        let open = Intent {
            action: "open_task".into(),
            resource: format!("Task::{}", serde_json::Value::from(id)),
            task_id: id.to_string(),
            context: String::new(),
            input: String::new(),
        };
        let d = self.decide(opener, &open, env.now, 0, env.ledger, env.crypto);
        if !d.allow {
            return Err(Error::Denied(d));
        }
        let mut unique: Vec<String> = Vec::with_capacity(members.len());
        for m in members {
            if !unique.contains(m) {
                unique.push(m.clone());
            }
        }
        let task = Task {
            id: id.to_string(),
            opener: opener.spiffe_id.clone(),
            members: unique,
            purpose: purpose.to_string(),
            opened_at: env.now,
            deadline,
            ended_at: None,
        };
        env.ledger.open_task(&task, env.now)?;
        Ok(task)
    }
}
