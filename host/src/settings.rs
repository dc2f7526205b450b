//! The component's control settings (the WIT `control` interface's setters): one list that
//! serves both the setters of [`crate::Writ`] and the replay into every fresh instance.

use crate::bindings::PolicyModule;
use crate::bindings::exports::writ::agent::control::CryptoProvider as WitProvider;
use crate::convert;
use crate::imports::HostState;
use std::collections::BTreeMap;
use wasmtime::Store;
use writ_types::Error;

/// Which implementation checks signatures inside the component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CryptoProvider {
    /// The host's `crypto` import (`ring`, native). Default.
    #[default]
    Host,
    /// Pure Rust (RustCrypto) compiled into the component.
    Builtin,
}

impl CryptoProvider {
    fn to_wit(self) -> WitProvider {
        match self {
            CryptoProvider::Host => WitProvider::Host,
            CryptoProvider::Builtin => WitProvider::Builtin,
        }
    }
}

/// One control setting, named as in the WIT `control` interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Setting {
    CryptoProvider(CryptoProvider),
    Leeway(u32),
    TtlCap(u32),
    Issuer(String),
    MaxDelegationDepth(u32),
    DecisionMemo(bool),
    Audit(bool),
    Bundle { trust_domain: String, bundle: Vec<u8> },
    RemoveBundle(String),
    Policies { policies: String, schema: Option<String>, entities: Option<String> },
    Approvers(String),
    OidcIssuers(String),
}

/// What a setter answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    Done,
    /// `remove-bundle`: whether the trust domain had a bundle.
    Removed(bool),
    /// `set-policies`, `set-approvers`, `set-oidc-issuers`: how many policies (keys, issuers)
    /// are loaded.
    Loaded(u32),
}

impl Setting {
    /// Call this setting's setter on an instance: a trap is the outer error, the component's
    /// refusal (a bad bundle or policy set) the inner one.
    pub(crate) fn apply(
        &self,
        module: &PolicyModule,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Result<Applied, Error>> {
        let control = module.writ_agent_control();
        let done = |()| Ok(Applied::Done);
        match self {
            Setting::CryptoProvider(p) => control.call_set_crypto_provider(store, p.to_wit()).map(done),
            Setting::Leeway(secs) => control.call_set_leeway(store, *secs).map(done),
            Setting::TtlCap(secs) => control.call_set_ttl_cap(store, *secs).map(done),
            Setting::Issuer(name) => control.call_set_issuer(store, name).map(done),
            Setting::MaxDelegationDepth(depth) => control.call_set_max_delegation_depth(store, *depth).map(done),
            Setting::DecisionMemo(on) => control.call_set_decision_memo(store, *on).map(done),
            Setting::Audit(on) => control.call_set_audit(store, *on).map(done),
            Setting::Bundle { trust_domain, bundle } => Ok(control
                .call_set_bundle(store, trust_domain, bundle)?
                .map(|()| Applied::Done)
                .map_err(convert::error)),
            Setting::RemoveBundle(trust_domain) => {
                control.call_remove_bundle(store, trust_domain).map(|had| Ok(Applied::Removed(had)))
            }
            Setting::Approvers(jwks) => {
                Ok(control.call_set_approvers(store, jwks)?.map(Applied::Loaded).map_err(convert::error))
            }
            Setting::OidcIssuers(config) => {
                Ok(control.call_set_oidc_issuers(store, config)?.map(Applied::Loaded).map_err(convert::error))
            }
            Setting::Policies { policies, schema, entities } => Ok(control
                .call_set_policies(store, policies, schema.as_deref(), entities.as_deref())?
                .map(Applied::Loaded)
                .map_err(convert::error)),
        }
    }

    /// Settings of one kind replace each other; bundles are per trust domain.
    fn kind(&self) -> u8 {
        match self {
            Setting::CryptoProvider(_) => 0,
            Setting::Leeway(_) => 1,
            Setting::TtlCap(_) => 2,
            Setting::Issuer(_) => 3,
            Setting::MaxDelegationDepth(_) => 4,
            Setting::DecisionMemo(_) => 5,
            Setting::Audit(_) => 6,
            Setting::Bundle { .. } | Setting::RemoveBundle(_) => 7,
            Setting::Policies { .. } => 8,
            Setting::Approvers(_) => 9,
            Setting::OidcIssuers(_) => 10,
        }
    }
}

/// The settings in force, with a generation number that every change (and every issuer key
/// retirement) advances: a pooled instance of an older generation is discarded, and a fresh
/// one replays [`Settings::replay`].
#[derive(Debug, Default)]
pub(crate) struct Settings {
    pub(crate) generation: u64,
    /// By kind: a later setting of a kind replaces the earlier one.
    scalars: BTreeMap<u8, Setting>,
    /// By trust domain.
    bundles: BTreeMap<String, Setting>,
    policies: Option<Setting>,
}

impl Settings {
    /// Record a setting that the component accepted.
    pub(crate) fn record(&mut self, setting: Setting) {
        match setting {
            Setting::Bundle { ref trust_domain, .. } => {
                self.bundles.insert(trust_domain.clone(), setting);
            }
            Setting::RemoveBundle(trust_domain) => {
                self.bundles.remove(&trust_domain);
            }
            Setting::Policies { .. } => self.policies = Some(setting),
            other => {
                self.scalars.insert(other.kind(), other);
            }
        }
    }

    /// The settings to replay into a fresh instance, in order: the scalar settings, then the
    /// trust bundles, then the policies (loaded last, under the settings that shape them).
    pub(crate) fn replay(&self) -> impl Iterator<Item = &Setting> {
        self.scalars.values().chain(self.bundles.values()).chain(&self.policies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_settings_replace_earlier_ones_and_policies_replay_last() {
        let mut s = Settings::default();
        s.record(Setting::Policies { policies: "p1".into(), schema: None, entities: None });
        s.record(Setting::Leeway(5));
        s.record(Setting::Bundle { trust_domain: "a.org".into(), bundle: vec![1] });
        s.record(Setting::Bundle { trust_domain: "b.org".into(), bundle: vec![2] });
        s.record(Setting::Leeway(7));
        s.record(Setting::RemoveBundle("a.org".into()));
        s.record(Setting::Policies { policies: "p2".into(), schema: None, entities: None });
        let replayed: Vec<&Setting> = s.replay().collect();
        assert_eq!(
            replayed,
            [
                &Setting::Leeway(7),
                &Setting::Bundle { trust_domain: "b.org".into(), bundle: vec![2] },
                &Setting::Policies { policies: "p2".into(), schema: None, entities: None },
            ]
        );
    }
}
