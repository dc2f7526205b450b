//! [`Attested`]: an identity the component established, as the host holds it — and the
//! component's handles for it, one per instance.
//!
//! The WIT passes identities to decisions and credentials only as `attested` handles, which
//! only the component's `attest` functions make: the host cannot hand a decision an identity
//! the component never established. A handle lives in the instance that made it, and the host
//! pools instances, so an [`Attested`] keeps what it was established from (the chain, the
//! token, the possession proof, or the host's assertion) and an instance that has no handle
//! for it yet establishes it again, under its own settings and clock: after a bundle is
//! removed or the identity expires, that fails, and the call with it.

use crate::convert;
use crate::pool::Instance;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use wasmtime::component::ResourceAny;
use writ_types::{Error, Identity};

/// What an identity was established from, kept so that another instance can establish it too.
pub(crate) enum Evidence {
    X509 { chain: Vec<Vec<u8>> },
    X509Holding { chain: Vec<Vec<u8>>, challenge: Vec<u8>, signature: Vec<u8> },
    Jwt { token: String, audience: String },
    Oidc { token: String, issuer: Option<String>, audience: String },
    Token { token: String, audience: String },
    Asserted { spiffe_id: String, expires_at: u64, by: String },
}

pub(crate) struct Inner {
    /// Unique in this process: the key of its handles in every instance.
    key: u64,
    identity: Identity,
    evidence: Evidence,
}

/// An identity the component attested (or, proof `asserted`, took on the host's word): what
/// [`Writ::check`](crate::Writ::check), `issue`, `present`, `delegate` and `open_task` take.
/// Cheap to clone; derefs to the [`Identity`] it holds. Made only by the `Writ`'s `attest_*`
/// and `assert_identity` functions.
#[derive(Clone)]
pub struct Attested(Arc<Inner>);

impl std::fmt::Debug for Attested {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Attested").field(&self.0.identity).finish()
    }
}

impl std::ops::Deref for Attested {
    type Target = Identity;
    fn deref(&self) -> &Identity {
        &self.0.identity
    }
}

impl Attested {
    /// The identity as the component established it.
    pub fn identity(&self) -> &Identity {
        &self.0.identity
    }
}

/// Handles an instance keeps at most; past it, those of dropped [`Attested`]s go first, then
/// all (each is established again on its next use).
const MAX_HANDLES: usize = 16_384;

/// One instance's handles, by [`Inner::key`].
#[derive(Default)]
pub(crate) struct Handles {
    held: HashMap<u64, (Weak<Inner>, ResourceAny)>,
}

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// The certificates of an X.509 chain as the component's export borrows them.
fn certificates(chain: &[Vec<u8>]) -> Vec<&[u8]> {
    chain.iter().map(Vec::as_slice).collect()
}

impl Evidence {
    /// Establish the identity in `inst`: the component's own handle, or why it refused.
    fn establish(&self, inst: &mut Instance) -> wasmtime::Result<Result<ResourceAny, Error>> {
        let attest = inst.module.writ_agent_attest();
        let store = &mut inst.store;
        let made = match self {
            Evidence::X509 { chain } => attest.call_x509_svid(store, &certificates(chain))?,
            Evidence::X509Holding { chain, challenge, signature } => {
                attest.call_x509_svid_holding(store, &certificates(chain), challenge, signature)?
            }
            Evidence::Jwt { token, audience } => attest.call_jwt_svid(store, token, audience)?,
            Evidence::Oidc { token, issuer, audience } => {
                attest.call_oidc(store, token, issuer.as_deref(), audience)?
            }
            Evidence::Token { token, audience } => attest.call_token(store, token, audience)?,
            Evidence::Asserted { spiffe_id, expires_at, by } => {
                attest.call_asserted(store, spiffe_id, *expires_at, by)?
            }
        };
        Ok(made.map_err(convert::error))
    }
}

impl Instance {
    /// Establish an identity here for the first time: the [`Attested`] the host keeps, with
    /// this instance's handle for it.
    pub(crate) fn attest(&mut self, evidence: Evidence) -> wasmtime::Result<Result<Attested, Error>> {
        let handle = match evidence.establish(self)? {
            Ok(h) => h,
            Err(e) => return Ok(Err(e)),
        };
        let record = self.module.writ_agent_attest().attested().call_identity(&mut self.store, handle)?;
        let inner = Arc::new(Inner {
            key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
            identity: convert::identity(record),
            evidence,
        });
        self.make_room(1)?;
        self.handles.held.insert(inner.key, (Arc::downgrade(&inner), handle));
        Ok(Ok(Attested(inner)))
    }

    /// This instance's handle for `who`, established here first if it was not yet — or why
    /// the component refused it now (the identity expired since, its bundle was removed).
    pub(crate) fn handle(&mut self, who: &Attested) -> wasmtime::Result<Result<ResourceAny, Error>> {
        self.make_room(1)?;
        self.held_or_established(who)
    }

    /// [`handle`](Self::handle) for two identities at once (room for both is made first, so
    /// gathering the second never drops the first).
    pub(crate) fn handle_pair(
        &mut self,
        a: &Attested,
        b: &Attested,
    ) -> wasmtime::Result<Result<(ResourceAny, ResourceAny), Error>> {
        self.make_room(2)?;
        let a = match self.held_or_established(a)? {
            Ok(h) => h,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.held_or_established(b)?.map(|b| (a, b)))
    }

    fn held_or_established(&mut self, who: &Attested) -> wasmtime::Result<Result<ResourceAny, Error>> {
        if let Some((_, h)) = self.handles.held.get(&who.0.key) {
            return Ok(Ok(*h));
        }
        let made = who.0.evidence.establish(self)?;
        if let Ok(h) = made {
            self.handles.held.insert(who.0.key, (Arc::downgrade(&who.0), h));
        }
        Ok(made)
    }

    /// Make room for `n` more handles: drop those whose [`Attested`] is gone, and if that is
    /// not enough, all of them (dropping a handle runs the component's destructor).
    fn make_room(&mut self, n: usize) -> wasmtime::Result<()> {
        if self.handles.held.len() + n <= MAX_HANDLES {
            return Ok(());
        }
        let dead: Vec<u64> =
            self.handles.held.iter().filter(|(_, (w, _))| w.strong_count() == 0).map(|(k, _)| *k).collect();
        let mut gone: Vec<ResourceAny> =
            dead.iter().filter_map(|k| self.handles.held.remove(k)).map(|(_, h)| h).collect();
        if self.handles.held.len() + n > MAX_HANDLES {
            gone.extend(self.handles.held.drain().map(|(_, (_, h))| h));
        }
        for h in gone {
            h.resource_drop(&mut self.store)?;
        }
        Ok(())
    }

    /// Handles held.
    pub(crate) fn handle_count(&self) -> usize {
        self.handles.held.len()
    }
}
