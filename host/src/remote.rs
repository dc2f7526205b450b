//! What the host fetches for the component and keeps fresh: the keys of OIDC issuers (from a
//! `jwks_uri`, or found through the issuer's OpenID discovery document) and SPIFFE bundles
//! from bundle endpoints (`https_web` and `https_spiffe` profiles of the SPIFFE Trust Domain and
//! Bundle specification). The component stays pure: it gets the fetched text through its
//! `control` setters, which check it exactly as they check a file's.
//!
//! All fetching happens on one thread of its own, so a slow or hanging server never holds a
//! request: requests read only what was fetched last. A source is fetched again every refresh
//! period (for a bundle, its `spiffe_refresh_hint`), and, for an OIDC issuer, when a token names
//! a key it does not have — at most once per `min_refresh_secs`, and only the request that asked
//! waits for the answer (bounded by the fetch timeout). A failed fetch, or text the component
//! refuses, keeps the last good keys or bundle in force.

use crate::https_get::{self, Trust};
use crate::pool::{Pool, lock};
use crate::settings::{Applied, Setting};
use serde_json::Value;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};
use writ_types::Error;

/// Where an OIDC issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysFrom {
    /// `<issuer>/.well-known/openid-configuration`, whose `issuer` must be the configured one
    /// exactly, and the `jwks_uri` it names.
    Discovery,
    /// This JWKS URL.
    JwksUri(String),
}

/// How often, how patiently and from whom a source is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetching {
    /// Fetched again after this long (a bundle's `spiffe_refresh_hint` overrides it).
    pub refresh: Duration,
    /// Never fetched more often than this: not on unknown key ids, not on retries after a
    /// failure, not for a bundle whose refresh hint is shorter.
    pub min_refresh: Duration,
    /// The deadline of one GET, connection included.
    pub timeout: Duration,
    /// CA certificates (PEM) the server's certificate must chain to (`https_web`); `None`: the
    /// system's roots.
    pub ca_file: Option<PathBuf>,
    /// A file whose contents are sent as `Authorization: Bearer` (read at every fetch: the
    /// projected token of a pod that asks its Kubernetes API server).
    pub token_file: Option<PathBuf>,
}

impl Default for Fetching {
    fn default() -> Fetching {
        Fetching {
            refresh: Duration::from_secs(300),
            min_refresh: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            ca_file: None,
            token_file: None,
        }
    }
}

/// An OIDC issuer whose keys the host fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteIssuer {
    /// Its name in the configuration.
    pub name: String,
    /// Its `iss`.
    pub issuer: String,
    pub keys_from: KeysFrom,
    pub fetching: Fetching,
}

/// How a bundle endpoint's server is authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    /// A Web PKI certificate for the URL's host (the system's roots, or `ca_file`).
    HttpsWeb,
    /// An X.509-SVID of this SPIFFE ID, under the bundle in force for its trust domain (which
    /// may be the very trust domain fetched: its bundle then vouches for its own successor).
    HttpsSpiffe { endpoint_spiffe_id: String },
}

/// A SPIFFE bundle endpoint: where a trust domain's bundle is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleEndpoint {
    pub trust_domain: String,
    pub url: String,
    pub profile: Profile,
    pub fetching: Fetching,
}

/// A fetched source, as `/metrics` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStatus {
    /// `oidc` (an issuer's keys) or `bundle` (a trust domain's bundle).
    pub kind: &'static str,
    /// The issuer's name, or the trust domain.
    pub name: String,
    /// Since the last good fetch; `None`: never fetched.
    pub age: Option<Duration>,
    /// Fetches that failed or were refused, in all.
    pub failures: u64,
    /// Fetches tried, in all.
    pub fetches: u64,
    /// Why the last fetch failed, if it did.
    pub last_error: Option<String>,
}

/// When a source is fetched, and how it went.
struct Schedule {
    fetching: Fetching,
    due: Instant,
    /// A fetch is running.
    busy: bool,
    /// When an unknown key id last asked for a fetch.
    last_asked: Option<Instant>,
    /// Told when the running (or next) fetch ends.
    waiters: Vec<mpsc::Sender<()>>,
    last_ok: Option<Instant>,
    fetches: u64,
    failures: u64,
    /// Failures since the last good fetch: the retry waits `min_refresh` doubled this often
    /// (at most the refresh period).
    failing: u32,
    last_error: Option<String>,
}

impl Schedule {
    fn new(fetching: Fetching) -> Schedule {
        Schedule {
            fetching,
            due: Instant::now(),
            busy: false,
            last_asked: None,
            waiters: Vec::new(),
            last_ok: None,
            fetches: 0,
            failures: 0,
            failing: 0,
            last_error: None,
        }
    }

    fn status(&self, kind: &'static str, name: &str) -> SourceStatus {
        SourceStatus {
            kind,
            name: name.to_string(),
            age: self.last_ok.map(|t| t.elapsed()),
            failures: self.failures,
            fetches: self.fetches,
            last_error: self.last_error.clone(),
        }
    }

    /// Record a fetch's end: next due after `next` (at least the minimum), waiters told.
    fn ended(&mut self, outcome: Result<(), Error>, next: Option<Duration>) {
        self.busy = false;
        self.fetches += 1;
        let now = Instant::now();
        match outcome {
            Ok(()) => {
                self.last_ok = Some(now);
                self.last_error = None;
                self.failing = 0;
                let next = next.unwrap_or(self.fetching.refresh).max(self.fetching.min_refresh);
                self.due = now + next;
            }
            Err(e) => {
                self.failures += 1;
                self.last_error = Some(e.to_string());
                let backoff = self.fetching.min_refresh.saturating_mul(1 << self.failing.min(16));
                self.failing = self.failing.saturating_add(1);
                self.due = now + backoff.min(self.fetching.refresh.max(self.fetching.min_refresh));
            }
        }
        for w in self.waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

struct IssuerState {
    spec: RemoteIssuer,
    /// Its keys as last fetched and accepted (a JWKS), and their ids.
    jwks: Option<Value>,
    kids: HashSet<String>,
    schedule: Schedule,
}

struct EndpointState {
    spec: BundleEndpoint,
    /// The bundle last fetched and accepted, and its `spiffe_sequence`.
    bundle: Option<Vec<u8>>,
    sequence: Option<u64>,
    schedule: Schedule,
}

#[derive(Default)]
struct Sources {
    stop: bool,
    /// Bumped by every configuration: a fetch started under an older one is dropped.
    generation: u64,
    /// The OIDC configuration as the component takes it, but for the remote issuers' `jwks`.
    oidc_template: Option<Value>,
    issuers: Vec<IssuerState>,
    endpoints: Vec<EndpointState>,
    thread_started: bool,
}

struct Shared {
    sources: Mutex<Sources>,
    wake: Condvar,
    pool: Weak<Pool>,
}

/// The sources of one `Writ`; the thread that fetches them runs from the first one configured
/// until the `Writ` (every clone) is dropped.
pub(crate) struct Remote {
    shared: Arc<Shared>,
}

impl Drop for Remote {
    fn drop(&mut self) {
        lock(&self.shared.sources).stop = true;
        self.shared.wake.notify_all();
    }
}

/// What a fetch brought.
enum Fetched {
    Keys(Value),
    Bundle { text: Vec<u8>, hint: Option<u64>, sequence: Option<u64> },
}

/// What to fetch next.
enum Job {
    Issuer(usize, RemoteIssuer),
    Endpoint(usize, BundleEndpoint),
}

impl Remote {
    pub(crate) fn new(pool: Weak<Pool>) -> Remote {
        Remote { shared: Arc::new(Shared { sources: Mutex::new(Sources::default()), wake: Condvar::new(), pool }) }
    }

    /// Install the OIDC configuration `template` (the component's JSON, whose `issuers` named in
    /// `remote` get fetched keys), apply it with the keys known so far, fetch the keys of the
    /// issuers new to it, and wait for those fetches (each bounded by its timeout). Returns the
    /// issuers loaded, and the fetch errors of those whose keys could not be had (they accept
    /// no token until a later fetch succeeds).
    pub(crate) fn configure_oidc(
        &self,
        template: Value,
        remote: Vec<RemoteIssuer>,
    ) -> Result<(u32, Vec<String>), Error> {
        let pool = self.pool()?;
        let mut sources = lock(&self.shared.sources);
        let mut issuers = Vec::with_capacity(remote.len());
        let mut waiting = Vec::new();
        for spec in remote {
            let known =
                sources.issuers.iter().position(|i| i.spec.issuer == spec.issuer && i.spec.keys_from == spec.keys_from);
            let mut state = match known {
                Some(k) => {
                    let old = sources.issuers.swap_remove(k);
                    IssuerState { schedule: Schedule { fetching: spec.fetching.clone(), ..old.schedule }, spec, ..old }
                }
                None => IssuerState {
                    schedule: Schedule::new(spec.fetching.clone()),
                    spec,
                    jwks: None,
                    kids: HashSet::new(),
                },
            };
            state.schedule.busy = false;
            if state.jwks.is_none() {
                let (tx, rx) = mpsc::channel();
                state.schedule.waiters.push(tx);
                state.schedule.due = Instant::now();
                waiting.push((state.spec.name.clone(), rx, state.spec.fetching.timeout));
            }
            issuers.push(state);
        }
        let config = oidc_config(&template, &issuers);
        let loaded = match pool.apply(Setting::OidcIssuers(config))? {
            Applied::Loaded(n) => n,
            _ => 0,
        };
        sources.generation += 1;
        sources.oidc_template = Some(template);
        sources.issuers = issuers;
        self.start(&mut sources);
        drop(sources);
        self.shared.wake.notify_all();
        let mut unfetched = Vec::new();
        for (name, rx, timeout) in waiting {
            // Discovery and keys: two GETs.
            let _ = rx.recv_timeout(timeout * 2 + Duration::from_millis(250));
            let sources = lock(&self.shared.sources);
            if let Some(i) = sources.issuers.iter().find(|i| i.spec.name == name)
                && i.jwks.is_none()
            {
                let why = i.schedule.last_error.clone().unwrap_or_else(|| "the fetch did not end in time".into());
                unfetched.push(format!("issuer `{name}`: no keys yet: {why}"));
            }
        }
        Ok((loaded, unfetched))
    }

    /// Install the bundle endpoints: those already known keep their last good bundle (applied
    /// again, over a bundle file loaded since), the new ones are fetched now and waited for.
    /// Returns the fetch errors of those whose bundle could not be had (their trust domain
    /// keeps whatever bundle it had).
    pub(crate) fn configure_bundles(&self, endpoints: Vec<BundleEndpoint>) -> Result<Vec<String>, Error> {
        let pool = self.pool()?;
        let mut sources = lock(&self.shared.sources);
        let mut states = Vec::with_capacity(endpoints.len());
        let mut waiting = Vec::new();
        for spec in endpoints {
            let known = sources.endpoints.iter().position(|e| e.spec == spec);
            let mut state = match known {
                Some(k) => sources.endpoints.swap_remove(k),
                None => {
                    EndpointState { schedule: Schedule::new(spec.fetching.clone()), spec, bundle: None, sequence: None }
                }
            };
            state.schedule.busy = false;
            match &state.bundle {
                Some(bundle) => {
                    let setting =
                        Setting::Bundle { trust_domain: state.spec.trust_domain.clone(), bundle: bundle.clone() };
                    pool.apply(setting)?;
                }
                None => {
                    let (tx, rx) = mpsc::channel();
                    state.schedule.waiters.push(tx);
                    state.schedule.due = Instant::now();
                    waiting.push((state.spec.trust_domain.clone(), rx, state.spec.fetching.timeout));
                }
            }
            states.push(state);
        }
        sources.generation += 1;
        sources.endpoints = states;
        self.start(&mut sources);
        drop(sources);
        self.shared.wake.notify_all();
        let mut unfetched = Vec::new();
        for (td, rx, timeout) in waiting {
            let _ = rx.recv_timeout(timeout + Duration::from_millis(250));
            let sources = lock(&self.shared.sources);
            if let Some(e) = sources.endpoints.iter().find(|e| e.spec.trust_domain == td)
                && e.bundle.is_none()
            {
                let why = e.schedule.last_error.clone().unwrap_or_else(|| "the fetch did not end in time".into());
                unfetched.push(format!("bundle endpoint of `{td}`: no bundle yet: {why}"));
            }
        }
        Ok(unfetched)
    }

    /// Before a bearer token is attested: if it names a remote issuer and a key id that issuer
    /// does not have, ask for its keys again — unless asked within `min_refresh` — and wait for
    /// that fetch (bounded). Requests that did not ask never wait.
    pub(crate) fn before_attest(&self, token: &str) {
        let Some((iss, kid)) = peek(token) else { return };
        let rx = {
            let mut sources = lock(&self.shared.sources);
            let Some(issuer) = sources.issuers.iter_mut().find(|i| i.spec.issuer == iss) else { return };
            if issuer.kids.contains(&kid) {
                return;
            }
            let s = &mut issuer.schedule;
            let now = Instant::now();
            if s.busy || s.last_asked.is_some_and(|t| now.duration_since(t) < s.fetching.min_refresh) {
                return;
            }
            s.last_asked = Some(now);
            s.due = now;
            let (tx, rx) = mpsc::channel();
            s.waiters.push(tx);
            (rx, s.fetching.timeout)
        };
        self.shared.wake.notify_all();
        let _ = rx.0.recv_timeout(rx.1 * 2 + Duration::from_millis(250));
    }

    /// Every source and how its fetching goes.
    pub(crate) fn status(&self) -> Vec<SourceStatus> {
        let sources = lock(&self.shared.sources);
        let issuers = sources.issuers.iter().map(|i| i.schedule.status("oidc", &i.spec.name));
        let bundles = sources.endpoints.iter().map(|e| e.schedule.status("bundle", &e.spec.trust_domain));
        issuers.chain(bundles).collect()
    }

    fn pool(&self) -> Result<Arc<Pool>, Error> {
        self.shared.pool.upgrade().ok_or_else(|| Error::Runtime("the Writ is gone".into()))
    }

    fn start(&self, sources: &mut Sources) {
        if sources.thread_started || (sources.issuers.is_empty() && sources.endpoints.is_empty()) {
            return;
        }
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new().name("writ-fetch".into()).spawn(move || fetch_loop(&shared));
        sources.thread_started = spawned.is_ok();
    }
}

/// The component's OIDC configuration: the template with each remote issuer's keys (none yet:
/// an empty set, so its tokens are refused until they come).
fn oidc_config(template: &Value, issuers: &[IssuerState]) -> String {
    let mut config = template.clone();
    if let Some(list) = config.get_mut("issuers").and_then(Value::as_array_mut) {
        for entry in list.iter_mut() {
            let name = entry.get("name").and_then(Value::as_str).map(str::to_string);
            if let Some(state) = issuers.iter().find(|i| Some(&i.spec.name) == name.as_ref())
                && let Some(obj) = entry.as_object_mut()
            {
                let keys = state.jwks.clone().unwrap_or_else(|| serde_json::json!({ "keys": [] }));
                obj.insert("jwks".into(), keys);
            }
        }
    }
    config.to_string()
}

/// A token's `iss` and `kid`, read without verifying anything: only to decide whether to fetch.
fn peek(token: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let mut parts = token.splitn(3, '.');
    let decode = |p: &str| -> Option<Value> {
        if p.len() > 64 * 1024 {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let header = decode(parts.next()?)?;
    let claims = decode(parts.next()?)?;
    Some((claims.get("iss")?.as_str()?.to_string(), header.get("kid")?.as_str()?.to_string()))
}

/// The fetching thread: the next due source, fetched with no lock held, its result applied.
fn fetch_loop(shared: &Shared) {
    loop {
        let (job, generation) = {
            let mut sources = lock(&shared.sources);
            loop {
                if sources.stop {
                    return;
                }
                let now = Instant::now();
                if let Some(job) = next_job(&mut sources, now) {
                    break (job, sources.generation);
                }
                let next = sources
                    .issuers
                    .iter()
                    .map(|i| &i.schedule)
                    .chain(sources.endpoints.iter().map(|e| &e.schedule))
                    .filter(|s| !s.busy)
                    .map(|s| s.due)
                    .min();
                let wait = next.map_or(Duration::from_secs(60), |d| d.saturating_duration_since(now));
                sources = shared
                    .wake
                    .wait_timeout(sources, wait.min(Duration::from_secs(60)))
                    .map_or_else(|p| p.into_inner().0, |(g, _)| g);
            }
        };
        let Some(pool) = shared.pool.upgrade() else { return };
        let fetched = match &job {
            Job::Issuer(_, spec) => fetch_keys(spec).map(Fetched::Keys),
            Job::Endpoint(_, spec) => fetch_bundle(spec, &pool),
        };
        let mut sources = lock(&shared.sources);
        if sources.generation != generation {
            // Configured again meanwhile: the sources were replaced; tell any waiter anyway.
            release(&mut sources, &job);
            continue;
        }
        match (job, fetched) {
            (Job::Issuer(k, _), fetched) => {
                let outcome = fetched.and_then(|f| match f {
                    Fetched::Keys(jwks) => accept_keys(&mut sources, k, jwks, &pool),
                    Fetched::Bundle { .. } => Ok(()),
                });
                if let Some(i) = sources.issuers.get_mut(k) {
                    i.schedule.ended(outcome, None);
                }
            }
            (Job::Endpoint(k, _), fetched) => {
                let mut hint = None;
                let outcome = fetched.and_then(|f| match f {
                    Fetched::Bundle { text, hint: h, sequence } => {
                        hint = h.map(Duration::from_secs);
                        accept_bundle(&mut sources, k, text, sequence, &pool)
                    }
                    Fetched::Keys(_) => Ok(()),
                });
                if let Some(e) = sources.endpoints.get_mut(k) {
                    e.schedule.ended(outcome, hint);
                }
            }
        }
    }
}

/// The due (or asked-for) source fetched next, marked busy.
fn next_job(sources: &mut Sources, now: Instant) -> Option<Job> {
    if let Some((k, i)) =
        sources.issuers.iter_mut().enumerate().find(|(_, i)| !i.schedule.busy && i.schedule.due <= now)
    {
        i.schedule.busy = true;
        return Some(Job::Issuer(k, i.spec.clone()));
    }
    let (k, e) = sources.endpoints.iter_mut().enumerate().find(|(_, e)| !e.schedule.busy && e.schedule.due <= now)?;
    e.schedule.busy = true;
    Some(Job::Endpoint(k, e.spec.clone()))
}

/// A fetch outlived its configuration: the source with its name, if still there, is free again.
fn release(sources: &mut Sources, job: &Job) {
    let schedule = match job {
        Job::Issuer(_, spec) => sources.issuers.iter_mut().find(|i| i.spec == *spec).map(|i| &mut i.schedule),
        Job::Endpoint(_, spec) => sources.endpoints.iter_mut().find(|e| e.spec == *spec).map(|e| &mut e.schedule),
    };
    if let Some(s) = schedule {
        s.busy = false;
        s.due = Instant::now();
    }
}

/// New keys for issuer `k`: applied with every other issuer's if they differ from those in
/// force; the component refusing them keeps the old ones.
fn accept_keys(sources: &mut Sources, k: usize, jwks: Value, pool: &Pool) -> Result<(), Error> {
    if sources.issuers[k].jwks.as_ref() == Some(&jwks) {
        return Ok(());
    }
    let Some(template) = sources.oidc_template.clone() else { return Ok(()) };
    let previous = sources.issuers[k].jwks.replace(jwks);
    let config = oidc_config(&template, &sources.issuers);
    match pool.apply(Setting::OidcIssuers(config)) {
        Ok(_) => {
            let issuer = &mut sources.issuers[k];
            issuer.kids = key_ids(issuer.jwks.as_ref());
            Ok(())
        }
        Err(e) => {
            sources.issuers[k].jwks = previous;
            Err(e)
        }
    }
}

fn key_ids(jwks: Option<&Value>) -> HashSet<String> {
    let keys = jwks.and_then(|j| j.get("keys")).and_then(Value::as_array);
    keys.into_iter().flatten().filter_map(|k| k.get("kid").and_then(Value::as_str)).map(str::to_string).collect()
}

/// A new bundle for endpoint `k`: refused if its `spiffe_sequence` goes back (a replayed old
/// bundle), applied if it differs from the one in force.
fn accept_bundle(
    sources: &mut Sources,
    k: usize,
    text: Vec<u8>,
    sequence: Option<u64>,
    pool: &Pool,
) -> Result<(), Error> {
    let endpoint = &mut sources.endpoints[k];
    if let (Some(old), Some(new)) = (endpoint.sequence, sequence)
        && new < old
    {
        return Err(Error::Untrusted(format!(
            "the bundle's `spiffe_sequence` {new} is older than the one in force ({old})"
        )));
    }
    if endpoint.bundle.as_ref() == Some(&text) {
        return Ok(());
    }
    pool.apply(Setting::Bundle { trust_domain: endpoint.spec.trust_domain.clone(), bundle: text.clone() })?;
    endpoint.bundle = Some(text);
    endpoint.sequence = sequence.or(endpoint.sequence);
    Ok(())
}

fn parse_json(body: &[u8], what: &str) -> Result<Value, Error> {
    serde_json::from_slice(body).map_err(|e| Error::Malformed(format!("{what} is not JSON: {e}")))
}

fn bearer(fetching: &Fetching) -> Result<Option<String>, Error> {
    let Some(path) = &fetching.token_file else { return Ok(None) };
    let token = std::fs::read_to_string(path)
        .map_err(|e| Error::Unavailable(format!("cannot read `{}`: {e}", path.display())))?;
    Ok(Some(token.trim().to_string()))
}

/// An issuer's keys: the JWKS at its `jwks_uri`, found through discovery if so configured.
fn fetch_keys(spec: &RemoteIssuer) -> Result<Value, Error> {
    let f = &spec.fetching;
    let trust = Trust::Web(f.ca_file.clone());
    let token = bearer(f)?;
    let jwks_uri = match &spec.keys_from {
        KeysFrom::JwksUri(uri) => uri.clone(),
        KeysFrom::Discovery => {
            let url = format!("{}/.well-known/openid-configuration", spec.issuer.trim_end_matches('/'));
            let doc =
                parse_json(&https_get::get(&url, &trust, token.as_deref(), f.timeout)?, "the discovery document")?;
            let said = doc.get("issuer").and_then(Value::as_str).unwrap_or_default();
            if said != spec.issuer {
                return Err(Error::Untrusted(format!(
                    "the discovery document's `issuer` `{}` is not the configured `{}`",
                    said.chars().take(200).collect::<String>(),
                    spec.issuer
                )));
            }
            doc.get("jwks_uri")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::Malformed("the discovery document has no `jwks_uri`".into()))?
                .to_string()
        }
    };
    let jwks = parse_json(&https_get::get(&jwks_uri, &trust, token.as_deref(), f.timeout)?, "the JWKS")?;
    if !jwks.get("keys").is_some_and(Value::is_array) {
        return Err(Error::Malformed("the JWKS has no `keys` list".into()));
    }
    Ok(jwks)
}

/// A bundle endpoint's bundle (a SPIFFE bundle, JWKS-shaped), with its refresh hint and
/// sequence number.
fn fetch_bundle(spec: &BundleEndpoint, pool: &Arc<Pool>) -> Result<Fetched, Error> {
    let f = &spec.fetching;
    let trust = match &spec.profile {
        Profile::HttpsWeb => Trust::Web(f.ca_file.clone()),
        Profile::HttpsSpiffe { endpoint_spiffe_id } => {
            let want = endpoint_spiffe_id.clone();
            let pool = Arc::downgrade(pool);
            Trust::Spiffe(Arc::new(move |chain: &[Vec<u8>]| {
                let pool = pool.upgrade().ok_or("the Writ is gone")?;
                let evidence = crate::attested::Evidence::X509 { chain: chain.to_vec() };
                let attested = pool
                    .with_instance(|i| i.attest(evidence))
                    .and_then(|r| r)
                    .map_err(|e| format!("the endpoint's certificate is not an X.509-SVID in force: {e}"))?;
                if attested.spiffe_id != want {
                    return Err(format!("the endpoint is `{}`, not `{want}`", attested.spiffe_id));
                }
                Ok(())
            }))
        }
    };
    let text = https_get::get(&spec.url, &trust, bearer(f)?.as_deref(), f.timeout)?;
    let doc = parse_json(&text, "the bundle")?;
    if !doc.get("keys").is_some_and(Value::is_array) {
        return Err(Error::Malformed("the bundle has no `keys` list".into()));
    }
    let hint = doc.get("spiffe_refresh_hint").and_then(Value::as_u64);
    let sequence = doc.get("spiffe_sequence").and_then(Value::as_u64);
    Ok(Fetched::Bundle { text, hint, sequence })
}
