//! The proxy-wasm filter's per-request logic (`writ-proxy`, natively — the same code the
//! `.wasm` runs): any method, path, `x-forwarded-client-cert`, `Authorization`,
//! `x-writ-identity-token`, context, MCP routing headers (`/mcp` is an MCP endpoint) and peer
//! certificate fields get an answer, never a panic; an allow names a caller of the trusted
//! domain; fail-closed never lets a request through unchecked.

use crate::fixtures::{NOW, decode, filter_config};
use std::cell::RefCell;
use writ_proxy::{Filter, Outcome, Peer, Request};

thread_local! {
    static FILTER: RefCell<Filter> = RefCell::new(Filter::configure(&filter_config(), 1).expect("the fixed configuration loads"));
}

/// One input.
pub fn run(data: &[u8]) {
    let p = decode(data, 11);
    let part = |i: usize| p.get(i).map(|b| String::from_utf8_lossy(b).into_owned());
    let present = |i: usize| part(i).filter(|s| !s.is_empty());
    let req = Request {
        method: part(0).unwrap_or_default(),
        path: part(1).unwrap_or_default(),
        xfcc: present(2),
        authorization: present(3),
        identity_token: present(7),
        context: present(4),
        peer: present(5).map(|uri_san| Peer { uri_san, sha256_hex: part(6).unwrap_or_default() }),
        mcp_method: present(8),
        mcp_name: present(9),
        task: present(10),
    };
    FILTER.with(|f| {
        let (outcome, audit) = f.borrow_mut().decide(&req, NOW + 1);
        match outcome {
            Outcome::Allow { headers } => {
                let subject =
                    headers.iter().find(|(k, _)| k == "x-writ-subject").map(|(_, v)| v.as_str()).unwrap_or("");
                assert!(subject.starts_with("spiffe://example.org/"), "{subject}");
                // Only MCP requests with nothing to decide pass without a decision's audit.
                let passed = headers.iter().any(|(k, v)| k == "x-writ-decision" && v == "pass");
                assert!(audit.is_some() != passed, "{headers:?}");
            }
            Outcome::Reply { status, body, .. } => {
                assert!(matches!(status, 400 | 401 | 403 | 405 | 503), "{status}");
                assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok());
            }
            Outcome::Unchecked { .. } => panic!("fail_closed is on: nothing goes through unchecked"),
        }
        if let Some(a) = audit {
            assert!(serde_json::from_str::<serde_json::Value>(&a).is_ok());
        }
    });
}
