//! MCP sessions bound to the agent that opened them and the task it opened them in: the
//! upstream names a session (`Mcp-Session-Id`) in its answer to `initialize`; from then on only
//! that agent (its SPIFFE ID) may use it, and only in that task (none, when it named none). A session this gateway never saw opened, or another agent's, is unknown to
//! the caller (404, as MCP says of an unknown session). Bounded; per process (a replica
//! without the binding answers 404, and MCP clients then start a new session).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Sessions remembered at most; the oldest go first.
const MAX_SESSIONS: usize = 65_536;

#[derive(Default)]
pub(crate) struct Sessions {
    bound: Mutex<Bound>,
}

#[derive(Default)]
struct Bound {
    /// (upstream, session id) → the agent's SPIFFE ID and the session's task.
    by_id: HashMap<(String, String), (String, String)>,
    order: VecDeque<(String, String)>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Bound> {
        self.bound.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bind `session` of `upstream` to `agent` and `task` (a session id already bound keeps
    /// its binding).
    pub fn bind(&self, upstream: &str, session: &str, agent: &str, task: &str) {
        let mut b = self.lock();
        let key = (upstream.to_string(), session.to_string());
        if b.by_id.contains_key(&key) {
            return;
        }
        if b.order.len() >= MAX_SESSIONS
            && let Some(old) = b.order.pop_front()
        {
            b.by_id.remove(&old);
        }
        b.by_id.insert(key.clone(), (agent.to_string(), task.to_string()));
        b.order.push_back(key);
    }

    /// The task of `session` of `upstream` when `agent` may use it (`""`: no task); `None`
    /// when the session is unknown or another agent's.
    pub fn task_for(&self, upstream: &str, session: &str, agent: &str) -> Option<String> {
        let b = self.lock();
        let (bound_agent, task) = b.by_id.get(&(upstream.to_string(), session.to_string()))?;
        (bound_agent == agent).then(|| task.clone())
    }

    /// Forget a session (ended with `DELETE`).
    pub fn end(&self, upstream: &str, session: &str) {
        let mut b = self.lock();
        let key = (upstream.to_string(), session.to_string());
        if b.by_id.remove(&key).is_some() {
            b.order.retain(|k| *k != key);
        }
    }
}
