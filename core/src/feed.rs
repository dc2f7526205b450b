//! The revocation feed's pages, signed by the issuer: what a decision server serves at
//! `/ledger/revocations` to the proxy-wasm filters that poll it. A page says which request it
//! answers (`after`) and when it was made (`at`), so a filter can tell a real, fresh answer
//! from a forged one (another key) or a replayed one (an older page).

use crate::credential::jws;
use crate::crypto::Crypto;
use crate::error::{Error, Result};
use crate::ledger::LedgerEvent;
use serde::{Deserialize, Serialize};

/// The JWS `typ` of a feed page.
pub const FEED_TYPE: &str = "writ-feed+jwt";
/// The largest signed page accepted, bytes.
pub const MAX_PAGE_BYTES: usize = 8 << 20;

/// One page of the feed: the events recorded after sequence number `after`, up to `next`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Names the server's run: a new epoch means its numbering started over.
    pub epoch: String,
    /// The `after` of the request this page answers.
    pub after: u64,
    /// The sequence number to ask after next.
    pub next: u64,
    /// When the server made the page (Unix seconds).
    pub at: u64,
    pub revocations: Vec<serde_json::Value>,
}

/// `page` signed with the issuer's current key.
pub fn sign(page: &Page, crypto: &dyn Crypto) -> Result<String> {
    let payload = serde_json::to_vec(page).map_err(|e| Error::Malformed(format!("feed page: {e}")))?;
    jws::sign(FEED_TYPE, &payload, crypto)
}

/// The page `token` holds, when it is signed by one of the issuer's keys (the provider's
/// JWKS), answers the request made `after`, and was made no more than `max_age` seconds
/// before `now`. Its events are checked to be ledger events this build reads.
pub fn verify(
    token: &str,
    after: u64,
    now: u64,
    max_age: u64,
    crypto: &dyn Crypto,
) -> Result<(Page, Vec<LedgerEvent>)> {
    let payload = jws::verify(token.trim(), FEED_TYPE, "feed page", MAX_PAGE_BYTES, crypto)?;
    let page: Page = serde_json::from_slice(&payload).map_err(|e| Error::Malformed(format!("feed page: {e}")))?;
    if page.after != after {
        return Err(Error::Untrusted(format!(
            "the feed page answers `after={}`, not the request's `after={after}` (replayed?)",
            page.after
        )));
    }
    if page.at.saturating_add(max_age) < now {
        return Err(Error::Expired(format!("the feed page was made at {}, over {max_age} s before {now}", page.at)));
    }
    let events = page
        .revocations
        .iter()
        .map(|v| serde_json::from_value(v.clone()).map_err(|e| Error::Malformed(format!("feed page event: {e}"))))
        .collect::<Result<Vec<LedgerEvent>>>()?;
    Ok((page, events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::RustCrypto;

    fn page(after: u64, at: u64) -> Page {
        let event = serde_json::json!({ "event": "end-task", "task_id": "run-42", "at": at, "until": at + 60 });
        Page { epoch: "e".into(), after, next: after + 1, at, revocations: vec![event] }
    }

    #[test]
    fn only_fresh_pages_of_the_issuer_answering_this_request_verify() {
        let issuer = RustCrypto::with_ed25519_seed([7; 32]);
        let other = RustCrypto::with_ed25519_seed([8; 32]);
        let signed = sign(&page(5, 1000), &issuer).unwrap();
        let (p, events) = verify(&signed, 5, 1005, 10, &issuer).unwrap();
        assert_eq!((p.next, events.len()), (6, 1));
        // Another request's page (a replay), an old page, another key, a tampered one.
        assert!(matches!(verify(&signed, 4, 1005, 10, &issuer), Err(Error::Untrusted(_))));
        assert!(matches!(verify(&signed, 5, 1011, 10, &issuer), Err(Error::Expired(_))));
        assert!(matches!(
            verify(&sign(&page(5, 1000), &other).unwrap(), 5, 1005, 10, &issuer),
            Err(Error::Untrusted(_))
        ));
        let mut parts: Vec<String> = signed.split('.').map(String::from).collect();
        parts[1] = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            serde_json::to_vec(&Page { revocations: Vec::new(), ..page(5, 1000) }).unwrap(),
        );
        assert!(matches!(verify(&parts.join("."), 5, 1005, 10, &issuer), Err(Error::Untrusted(_))));
        // Unsigned JSON, a credential-typed token, garbage: refused, never a panic.
        assert!(verify(&serde_json::to_string(&page(5, 1000)).unwrap(), 5, 1005, 10, &issuer).is_err());
        let credential_typed =
            jws::sign("txntoken+jwt", &serde_json::to_vec(&page(5, 1000)).unwrap(), &issuer).unwrap();
        assert!(matches!(verify(&credential_typed, 5, 1005, 10, &issuer), Err(Error::Untrusted(_))));
        assert!(verify("a.b.c", 5, 1005, 10, &issuer).is_err());
    }
}
