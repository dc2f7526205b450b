//! The proxy-wasm binding (ABI 0.2.1, Rust SDK): a root context that configures one
//! [`Filter`] per VM, and an HTTP context per request that asks it and applies the answer.
//! No blocking calls: everything per request happens in memory, in `on_http_request_headers`.

use crate::filter::{DECISION_HEADERS, Filter, Outcome, Peer, Request};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::cell::RefCell;
use std::hash::BuildHasher as _;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { filter: None }) });
}}

fn log(level: LogLevel, message: &str) {
    // Logging failures have nowhere to be reported.
    let _ = hostcalls::log(level, message);
}

struct Root {
    filter: Option<Rc<RefCell<Filter>>>,
}

impl Context for Root {
    fn on_http_call_response(&mut self, _token_id: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        let Some(filter) = self.filter.clone() else { return };
        let status = self.get_http_call_response_header_bytes(":status").and_then(|s| String::from_utf8(s).ok());
        let body = if body_size == 0 {
            Vec::new()
        } else {
            self.get_http_call_response_body(0, body_size).unwrap_or_default()
        };
        let now = self.get_current_time().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        match filter.borrow_mut().feed_response(status.as_deref(), &body, now) {
            Ok(0) => {}
            Ok(n) => log(LogLevel::Info, &format!("writ: {n} revocation(s) from the feed")),
            Err(e) => log(LogLevel::Warn, &format!("writ: {e}")),
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        // Entropy for the caches' hashers: std's RandomState draws it from WASI `random_get`.
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x7772_6974_u64);
        match Filter::configure(&bytes, seed) {
            Ok(f) => {
                log(LogLevel::Info, "writ: configured");
                if let Some(feed) = &f.config().revocations {
                    self.set_tick_period(Duration::from_millis(feed.period_ms));
                }
                self.filter = Some(Rc::new(RefCell::new(f)));
                true
            }
            Err(e) => {
                // Refusing the configuration makes the proxy reject it (and keep any previous one).
                log(LogLevel::Error, &format!("writ: configuration refused: {e}"));
                false
            }
        }
    }

    /// Poll the revocation feed (an HTTP callout; the answer comes to `on_http_call_response`).
    fn on_tick(&mut self) {
        let Some(filter) = self.filter.clone() else { return };
        let Some(call) = filter.borrow_mut().feed_call() else { return };
        let headers: Vec<(&str, &str)> = call.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if let Err(status) =
            self.dispatch_http_call(&call.cluster, headers, None, vec![], Duration::from_millis(call.timeout_ms))
        {
            filter.borrow_mut().feed_failed();
            log(
                LogLevel::Warn,
                &format!("writ: cannot poll the revocation feed through cluster `{}`: {status:?}", call.cluster),
            );
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream { filter: self.filter.clone() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    filter: Option<Rc<RefCell<Filter>>>,
}

impl Context for Stream {}

/// A property as text (the proxy hands back raw bytes).
fn text_property(ctx: &dyn Context, path: Vec<&str>) -> Option<String> {
    ctx.get_property(path).and_then(|b| String::from_utf8(b).ok()).filter(|s| !s.is_empty())
}

impl Stream {
    /// The request as the filter sees it; `Err` names a header that is not text (the SDK's
    /// text getters would trap on it, so bytes are read and checked here).
    fn request(&self, context_header: &str) -> Result<Request, String> {
        let header = |name: &str| -> Result<Option<String>, String> {
            if name.is_empty() {
                return Ok(None);
            }
            match self.get_http_request_header_bytes(name) {
                None => Ok(None),
                Some(b) => String::from_utf8(b).map(Some).map_err(|_| format!("the `{name}` header is not UTF-8")),
            }
        };
        let peer = text_property(self, vec!["connection", "uri_san_peer_certificate"]).map(|uri_san| Peer {
            uri_san,
            sha256_hex: text_property(self, vec!["connection", "sha256_peer_certificate_digest"]).unwrap_or_default(),
        });
        Ok(Request {
            method: header(":method")?.unwrap_or_default(),
            path: header(":path")?.unwrap_or_default(),
            xfcc: header("x-forwarded-client-cert")?,
            authorization: header("authorization")?,
            identity_token: header("x-writ-identity-token")?,
            context: header(context_header)?,
            mcp_method: header("mcp-method")?,
            mcp_name: header("mcp-name")?,
            task: header(crate::filter::TASK_HEADER)?,
            peer,
        })
    }

    fn apply(&mut self, outcome: Outcome) -> Action {
        match outcome {
            Outcome::Allow { headers } => {
                for (name, value) in headers {
                    self.set_http_request_header(&name, Some(&value));
                }
                Action::Continue
            }
            Outcome::Unchecked { problem } => {
                for name in DECISION_HEADERS {
                    self.set_http_request_header(name, None);
                }
                self.set_http_request_header("x-writ-decision", Some("unchecked"));
                log(LogLevel::Warn, &format!("writ: request let through unchecked (fail_closed is false): {problem}"));
                Action::Continue
            }
            Outcome::Reply { status, headers, body } => {
                let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                self.send_http_response(status, headers, Some(body.as_bytes()));
                Action::Pause
            }
        }
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(filter) = self.filter.clone() else {
            return self.apply(Filter::undecidable(true, "the Writ filter is not configured"));
        };
        let now = self.get_current_time().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let (context_header, fail_closed) = {
            let f = filter.borrow();
            (f.config().context_header.clone(), f.config().fail_closed)
        };
        let req = match self.request(&context_header) {
            Ok(r) => r,
            Err(problem) => return self.apply(Filter::undecidable(fail_closed, &problem)),
        };
        let (outcome, audit) = filter.borrow_mut().decide(&req, now);
        if let Some(line) = audit {
            log(LogLevel::Info, &line);
        }
        self.apply(outcome)
    }
}
