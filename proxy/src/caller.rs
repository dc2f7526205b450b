//! Who is calling: the mTLS peer the proxy validated, or the client certificate a proxy in
//! front forwarded (`x-forwarded-client-cert`, its chain attested here), from the first
//! configured source a request has.

use crate::config::Source;
use crate::filter::{Filter, Request};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use writ_core::{Identity, Proof, spiffe_id};
use writ_types::xfcc;

/// Vouched identities remembered at once (the cache starts over when full).
pub(crate) const MAX_VOUCHED: usize = 4096;

/// Decoded XFCC chains remembered at once (values are a few KB each).
pub(crate) const MAX_FORWARDED: usize = 256;

/// A caller that could not be identified (401) or a request that could not be decided.
pub(crate) struct Refusal {
    pub(crate) status: u32,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
}

impl Filter {
    /// The caller, from the first configured source that has one.
    pub(crate) fn caller(&mut self, req: &Request, now: u64) -> Result<Identity, Refusal> {
        let unauth = |message: String| Refusal { status: 401, reason: "unauthenticated", message };
        for i in 0..self.config.identity_sources.len() {
            match self.config.identity_sources[i] {
                Source::Connection => {
                    if let Some(peer) = &req.peer {
                        return self.vouched_cached(&peer.uri_san, &peer.sha256_hex, now).map_err(unauth);
                    }
                }
                Source::Xfcc => {
                    if let Some(value) = &req.xfcc {
                        return self.forwarded(value, now).map_err(unauth);
                    }
                }
                Source::Token => {
                    if let Some(token) = &req.identity_token {
                        return self
                            .rules
                            .attest_token(token.trim(), &self.config.token_audience, now, &self.crypto)
                            .map_err(|e| unauth(format!("{}: {}", e.kind(), e.message())));
                    }
                }
            }
        }
        let tried: Vec<&str> = self
            .config
            .identity_sources
            .iter()
            .map(|s| match s {
                Source::Connection => "an mTLS peer certificate",
                Source::Xfcc => "x-forwarded-client-cert",
                Source::Token => "x-writ-identity-token",
            })
            .collect();
        Err(unauth(format!("no caller identity: the request has no {}", tried.join(" or "))))
    }

    /// [`Filter::vouched`], remembered by URI SAN and digest.
    fn vouched_cached(&mut self, uri: &str, sha256_hex: &str, now: u64) -> Result<Identity, String> {
        let expires_at = now.saturating_add(self.config.vouched_identity_secs);
        if let Some((hex, id)) = self.vouched.get(uri)
            && hex == sha256_hex
        {
            return Ok(Identity { expires_at, ..id.clone() });
        }
        let id = self.vouched(uri, Some(sha256_hex), now, Proof::X509Svid)?;
        self.vouched.insert(uri.to_string(), (sha256_hex.to_string(), id.clone()));
        Ok(id)
    }

    /// An identity the proxy validated: its own TLS stack (`proof` X.509-SVID: the handshake
    /// proved the key), or a front proxy's XFCC `URI` (`proof` asserted: this filter saw no
    /// proof, so decisions take it and credentials do not).
    fn vouched(&self, uri: &str, sha256_hex: Option<&str>, now: u64, proof: Proof) -> Result<Identity, String> {
        let (spiffe_id, trust_domain) = spiffe_id::parse(uri)?;
        if !self.config.trust_domains.contains_key(&trust_domain) {
            return Err(format!("trust domain `{trust_domain}` is not one this filter trusts"));
        }
        let thumbprint = match sha256_hex {
            None => String::new(),
            Some(h) => xfcc::from_hex(h)
                .filter(|d| d.len() == 32)
                .map(|d| URL_SAFE_NO_PAD.encode(d))
                .ok_or_else(|| format!("the peer certificate digest `{}` is not SHA-256 hex", spiffe_id::clip(h)))?,
        };
        Ok(Identity {
            spiffe_id,
            trust_domain,
            expires_at: now.saturating_add(self.config.vouched_identity_secs),
            thumbprint,
            proof,
            claims: Default::default(),
        })
    }

    /// The nearest XFCC element: its chain attested here, or its URI when trusted.
    fn forwarded(&mut self, value: &str, now: u64) -> Result<Identity, String> {
        if let Some(chain) = self.forwarded.get(value) {
            return self
                .rules
                .attest_x509(chain, now, &self.crypto)
                .map_err(|e| format!("{}: {}", e.kind(), e.message()));
        }
        let f = xfcc::fields(value);
        if let Some(c) = f.get("chain").or_else(|| f.get("cert")) {
            let chain = xfcc::certificates(c)?;
            let identity = self
                .rules
                .attest_x509(&chain, now, &self.crypto)
                .map_err(|e| format!("{}: {}", e.kind(), e.message()))?;
            self.forwarded.insert(value.to_string(), chain);
            return Ok(identity);
        }
        let uri = f.get("uri").ok_or("`x-forwarded-client-cert` has no Chain, Cert or URI")?;
        if !self.config.xfcc_trust_uri {
            return Err("`x-forwarded-client-cert` carries no certificate to attest (forward Cert and Chain, or set `xfcc_trust_uri`)".into());
        }
        self.vouched(uri, f.get("hash").map(String::as_str), now, Proof::Asserted)
    }
}
