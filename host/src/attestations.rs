//! The X.509-SVID chains and bearer identity tokens (JWT-SVIDs, OIDC workload tokens) a `Writ`
//! attested, remembered with the [`Attested`] each gave: a caller that presents the same chain
//! or token again (every request of one mTLS peer, every request a proxy or the MCP gateway
//! forwards for one workload) gets the same identity, and its handles in the instances, without
//! a call into the component. A token is remembered under its kind, audience (and issuer asked
//! for) and its exact bytes, so a token is never answered for another audience.
//!
//! A remembered attestation holds only while it would hold if made again: between the time it
//! was made and the identity's expiry, under the settings in force then — any setting applied
//! (a bundle installed or removed, policies, leeway) forgets them all. Answered from here, an
//! attestation is not audited again (its first one was).

use crate::attested::Attested;
use std::collections::HashMap;
use std::hash::Hasher as _;
use std::sync::Mutex;

/// Chains remembered at most (buckets, nearly always one chain each); past it, the expired go
/// first, then all.
const MAX_CHAINS: usize = 4096;

/// A chain's bucket: each certificate's length and last bytes (its signature, unique per
/// certificate), not the whole DER; a bucket's chains are compared byte for byte.
fn bucket(chain: &[Vec<u8>]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    for cert in chain {
        h.write_usize(cert.len());
        h.write(&cert[cert.len().saturating_sub(32)..]);
    }
    h.finish()
}

/// An attestation of `chain` made at `at` (this `Writ`'s clock).
struct Made {
    chain: Vec<Vec<u8>>,
    attested: Attested,
    at: u64,
}

#[derive(Default)]
pub(crate) struct Attestations {
    remembered: Mutex<Remembered>,
}

#[derive(Default)]
struct Remembered {
    buckets: HashMap<u64, Vec<Made>>,
    /// How many times everything was forgotten: an attestation begun before the last time is
    /// not remembered (a setting applied while it ran).
    epoch: u64,
}

impl Attestations {
    /// The identity `chain` gave, if it was attested under the settings in force and would
    /// still be valid at `now`.
    pub(crate) fn get(&self, chain: &[Vec<u8>], now: u64) -> Option<Attested> {
        let r = crate::pool::lock(&self.remembered);
        r.buckets
            .get(&bucket(chain))?
            .iter()
            .find(|m| m.chain == chain)
            .filter(|m| m.at <= now && now <= m.attested.expires_at)
            .map(|m| m.attested.clone())
    }

    /// The epoch to hand [`remember`](Self::remember) for an attestation beginning now.
    pub(crate) fn epoch(&self) -> u64 {
        crate::pool::lock(&self.remembered).epoch
    }

    /// Remember an attestation begun in `epoch` (unless everything was forgotten since).
    pub(crate) fn remember(&self, chain: &[Vec<u8>], attested: &Attested, now: u64, epoch: u64) {
        let mut r = crate::pool::lock(&self.remembered);
        if r.epoch != epoch {
            return;
        }
        let buckets = &mut r.buckets;
        if buckets.len() >= MAX_CHAINS {
            buckets.retain(|_, made| {
                made.retain(|m| m.attested.expires_at >= now);
                !made.is_empty()
            });
            if buckets.len() >= MAX_CHAINS {
                buckets.clear();
            }
        }
        let made = buckets.entry(bucket(chain)).or_default();
        made.retain(|m| m.chain != chain);
        made.push(Made { chain: chain.to_vec(), attested: attested.clone(), at: now });
    }

    /// Forget every attestation (a setting changed what attesting would say).
    pub(crate) fn forget(&self) {
        let mut r = crate::pool::lock(&self.remembered);
        r.buckets.clear();
        r.epoch += 1;
    }
}
