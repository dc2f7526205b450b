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
        let line = || event.to_json_line();
        match self {
            AuditSink::Discard => true,
            AuditSink::Stdout => writeln!(std::io::stdout().lock(), "{}", line()).is_ok(),
            AuditSink::Stderr => writeln!(std::io::stderr().lock(), "{}", line()).is_ok(),
            AuditSink::File(f) => {
                let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
                writeln!(f, "{}", line()).and_then(|()| f.flush()).is_ok()
            }
            AuditSink::Callback(cb) => {
                cb(&event);
                true
            }
        }
    }
}
