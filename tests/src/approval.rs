//! Break-glass approvals for tests: an approver (a P-256 key and its JWKS) and approvals it
//! signs, shaped as Writ verifies them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use writ_core::approval::APPROVAL_AUDIENCE;
use writ_core::crypto::{Crypto as _, RustCrypto};

/// An approver: its signing key (from a fixed scalar) and its public JWKS.
pub struct Approver {
    key: RustCrypto,
    pub jwks: String,
}

impl Approver {
    pub fn new(scalar: u8) -> Approver {
        let key = RustCrypto::with_p256_scalar([scalar; 32]).expect("a valid P-256 scalar");
        let jwks = key.public_keys();
        Approver { key, jwks }
    }

    /// The claims of an approval of `agent` in `task`, issued at `now` for 10 minutes.
    pub fn claims(agent: &str, task: &str, jti: &str, now: u64) -> Value {
        json!({
            "iss": "alice@acme.example", "aud": APPROVAL_AUDIENCE, "sub": agent, "txn": task,
            "reason": "payroll outage", "ticket": "INC-7", "jti": jti, "iat": now, "exp": now + 600,
        })
    }

    /// `claims` signed (ES256) as a compact JWS.
    pub fn sign(&self, claims: &Value) -> String {
        let kid = self.key.signing_key().expect("a signing key").kid;
        let header = json!({ "alg": "ES256", "kid": kid, "typ": "JWT" });
        let mut token =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = self.key.sign(&kid, token.as_bytes()).expect("signing");
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        token
    }

    /// The caller context carrying `token` as its approval.
    pub fn context(token: &str) -> String {
        json!({ "approval": token }).to_string()
    }
}
