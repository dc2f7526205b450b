//! Where audit events from the component go.

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use writ_types::AuditEvent;

type Callback = Arc<dyn Fn(&AuditEvent) + Send + Sync>;

/// Where audit events go.
#[derive(Clone, Default)]
pub enum AuditSink {
    /// Dropped.
    #[default]
    Discard,
    /// JSON lines on standard output.
    Stdout,
    /// JSON lines on standard error (for CLIs whose standard output is the answer).
    Stderr,
    /// JSON lines appended to a file.
    File(Arc<Mutex<std::fs::File>>),
    /// Handed to a function.
    Callback(Callback),
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuditSink::Discard => "Discard",
            AuditSink::Stdout => "Stdout",
            AuditSink::Stderr => "Stderr",
            AuditSink::File(_) => "File",
            AuditSink::Callback(_) => "Callback",
        })
    }
}

impl AuditSink {
    pub fn callback(f: impl Fn(&AuditEvent) + Send + Sync + 'static) -> Self {
        AuditSink::Callback(Arc::new(f))
    }

    /// Append JSON lines to `path` (created if missing).
    pub fn file(path: &std::path::Path) -> std::io::Result<Self> {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AuditSink::File(Arc::new(Mutex::new(f))))
    }

    /// Write `event`; false when the write failed (the caller counts it).
    pub(crate) fn emit(&self, event: AuditEvent) -> bool {
        // The line and its newline in one write: one system call per event, and one append
        // (a second process appending to the file cannot land between them).
        let line = || {
            let mut line = event.to_json_line();
            line.push('\n');
            line
        };
        match self {
            AuditSink::Discard => true,
            AuditSink::Stdout => std::io::stdout().lock().write_all(line().as_bytes()).is_ok(),
            AuditSink::Stderr => std::io::stderr().lock().write_all(line().as_bytes()).is_ok(),
            AuditSink::File(f) => {
                let line = line();
                let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
                f.write_all(line.as_bytes()).and_then(|()| f.flush()).is_ok()
            }
            AuditSink::Callback(cb) => {
                cb(&event);
                true
            }
        }
    }
}
