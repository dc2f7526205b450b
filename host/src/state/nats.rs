//! State on NATS JetStream (`async-nats`), shared by every replica and CLI invocation that
//! names the same server and prefix.
//!
//! Layout, for prefix `P` (letters, digits, `-`, `_`):
//! - stream `P_revocations` (subject `P.revocations`, file storage): every revocation, in the
//!   order the server stored it; its stream sequence number is the revocation's `seq`. Each
//!   replica follows it with an ordered consumer into a local view that the component reads
//!   (`ledger.since`) without a round trip. The stream has no age limit: a replica purges the
//!   prefix of it whose entries have all passed their `until` by the real clock.
//! - stream `P_grants` (subjects `P.grants.<hash of key>`, one message per index key, age
//!   limit the credential lifetime cap plus an hour): read only when a revocation counts the
//!   grants it ends, by walking the messages of one subject.
//! - stream `P_keys` (subjects `P.keys.<kid>`, the newest message per subject kept): each
//!   issuer's public key (JWK) and until when it verifies; followed into the local view, so
//!   every replica verifies every live replica's credentials. (A stream, not a key-value
//!   bucket: this client's key-value API does not speak to the JetStream of the NATS server
//!   Debian ships, 2.9.)
//!
//! Freshness: a prober asks the server for the revocation stream's last sequence number every
//! `max_lag / 4`; the view is fresh as of the start of the last probe it had caught up with.
//! When the view is older than `max_lag` (NATS unreachable, the follower behind), reading
//! revocations fails `unavailable` — so a replica keeps deciding plain authorization but
//! refuses to issue or present credentials until it has caught up, in order.
//!
//! The store's calls are synchronous (they run inside component calls) and the NATS client is
//! async: the client lives on a runtime of its own thread, and each call waits for its answer.

use super::{MAX_CREDENTIAL_TTL_SECS, StateError, StateStore, Summary, real_now};
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A NATS state location: `nats://HOST:PORT[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsLocation {
    /// The server, `nats://HOST:PORT`.
    pub server: String,
    /// The prefix of every stream and subject (default `writ`).
    pub prefix: String,
}

impl NatsLocation {
    /// Parse `nats://HOST:PORT[/PREFIX]`.
    pub fn parse(spec: &str) -> Result<NatsLocation, String> {
        let rest = spec
            .strip_prefix("nats://")
            .ok_or_else(|| format!("state location `{spec}`: expected nats://HOST:PORT"))?;
        let (server, prefix) = match rest.split_once('/') {
            Some((server, prefix)) => (server, prefix.trim_end_matches('/')),
            None => (rest, ""),
        };
        if server.is_empty() {
            return Err(format!("state location `{spec}`: no NATS server named"));
        }
        let prefix = if prefix.is_empty() { "writ" } else { prefix };
        if prefix.len() > 64 || !prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(format!(
                "state location `{spec}`: the prefix `{prefix}` must be 1–64 letters, digits, `-` or `_`"
            ));
        }
        Ok(NatsLocation { server: format!("nats://{server}"), prefix: prefix.to_string() })
    }
}

impl std::fmt::Display for NatsLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.server, self.prefix)
    }
}

/// The default bound on how old a replica's view of revocations may be before it refuses
/// credentials.
pub const DEFAULT_MAX_LAG: Duration = Duration::from_secs(3);

/// How long a grant index entry is kept: the longest a credential can live, plus an hour.
const GRANT_RETENTION: Duration = Duration::from_secs(MAX_CREDENTIAL_TTL_SECS + 3600);

/// Between purges of the expired prefix of the revocation stream.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// One revocation or grant as stored in a message.
#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope {
    until: u64,
    data: String,
}

/// An issuer key as stored on the key stream.
#[derive(serde::Serialize, serde::Deserialize)]
struct PublishedKey {
    until: u64,
    jwk: serde_json::Value,
}

/// What this process has read from NATS.
#[derive(Default)]
struct View {
    /// Revocations (seq, until, data), in order, without gaps other than purged ones.
    log: Vec<(u64, u64, String)>,
    /// The newest revocation sequence number applied (or known purged).
    last_seq: u64,
    /// When the last probe that found this view caught up started.
    fresh_at: Option<Instant>,
    /// A probe found the stream at this sequence number, at this time, before the view had it.
    catching_up_to: Option<(u64, Instant)>,
    /// Published issuer keys by kid: (until, JWK text).
    keys: HashMap<String, (u64, String)>,
    /// The newest key message applied.
    keys_seq: u64,
    /// The last failure talking to NATS, for messages.
    last_error: Option<String>,
}

struct Shared {
    view: Mutex<View>,
    /// Signalled when revocations are applied.
    applied: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn note_error(&self, e: impl std::fmt::Display) {
        self.lock().last_error = Some(e.to_string());
    }

    /// Apply a revocation the follower received.
    fn apply(&self, seq: u64, payload: &[u8]) {
        let mut v = self.lock();
        if seq <= v.last_seq {
            return;
        }
        // A message that is not an envelope is still a revocation: kept (forever) as its
        // raw text, which the component cannot read and therefore refuses every credential.
        let (until, data) = match serde_json::from_slice::<Envelope>(payload) {
            Ok(e) => (e.until, e.data),
            Err(_) => (u64::MAX, String::from_utf8_lossy(payload).into_owned()),
        };
        v.log.push((seq, until, data));
        v.last_seq = seq;
        if let Some((target, at)) = v.catching_up_to
            && seq >= target
        {
            v.fresh_at = Some(at);
            v.catching_up_to = None;
        }
        drop(v);
        self.applied.notify_all();
    }
}

/// The thread that owns the client's runtime: dropping this stops it (a runtime may not be
/// dropped on an async worker thread, where a `Writ` may well be dropped).
struct RuntimeThread {
    stop: Option<std::sync::mpsc::Sender<()>>,
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        self.stop.take();
    }
}

/// State on NATS JetStream.
pub struct Nats {
    handle: tokio::runtime::Handle,
    _runtime: RuntimeThread,
    js: jetstream::Context,
    location: NatsLocation,
    shared: Arc<Shared>,
    max_lag: Duration,
    /// The longest a call waits for NATS.
    op_timeout: Duration,
}

fn err(location: &NatsLocation, what: &str) -> impl Fn(&dyn std::fmt::Display) -> StateError {
    let place = location.to_string();
    let what = what.to_string();
    move |e| StateError(format!("state `{place}`: {what}: {e}"))
}

impl Nats {
    /// Connect, create the streams when missing, and read every revocation and published key
    /// before returning. Fails when NATS does not answer within `max_lag` (at least 2 s).
    pub fn connect(location: &NatsLocation, max_lag: Duration) -> Result<Nats, StateError> {
        let op_timeout = max_lag.max(Duration::from_secs(2));
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("writ-nats".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("writ-nats-io")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(runtime.handle().clone()));
                // Until the store is dropped (the sender goes away).
                let _ = stop_rx.recv();
                runtime.shutdown_background();
            })
            .map_err(|e| StateError(format!("state `{location}`: cannot start the NATS thread: {e}")))?;
        let handle = handle_rx
            .recv()
            .map_err(|e| StateError(e.to_string()))?
            .map_err(|e| StateError(format!("state `{location}`: cannot start the NATS runtime: {e}")))?;
        let runtime = RuntimeThread { stop: Some(stop_tx) };

        let shared = Arc::new(Shared { view: Mutex::default(), applied: Condvar::new() });
        let setup = {
            let location = location.clone();
            let shared = shared.clone();
            async move { setup(&location, shared, max_lag, op_timeout).await }
        };
        let js = block_on(&handle, op_timeout * 2, setup)
            .map_err(|e| StateError(format!("state `{location}`: {e}")))?
            .map_err(|e| StateError(format!("state `{location}`: {e}")))?;
        let store = Nats { handle, _runtime: runtime, js, location: location.clone(), shared, max_lag, op_timeout };
        // Every revocation stored before this call is in the view before it returns.
        store.wait_fresh(op_timeout)?;
        Ok(store)
    }

    /// The bound on the view's age this store was opened with.
    pub fn max_lag(&self) -> Duration {
        self.max_lag
    }

    /// Wait until the view is fresh, for up to `timeout`.
    fn wait_fresh(&self, timeout: Duration) -> Result<(), StateError> {
        let (fresh, v) = self.wait_for(|v| v.fresh_at.is_some_and(|t| t.elapsed() <= self.max_lag), timeout);
        if fresh { Ok(()) } else { Err(self.stale(&v)) }
    }

    /// Wait until `ready` holds of the view, at most `timeout`: whether it did, and the view.
    /// Woken when the followers apply something or a probe answers.
    fn wait_for(&self, ready: impl Fn(&View) -> bool, timeout: Duration) -> (bool, MutexGuard<'_, View>) {
        let deadline = Instant::now() + timeout;
        let mut v = self.shared.lock();
        loop {
            if ready(&v) {
                return (true, v);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (false, v);
            }
            v = self
                .shared
                .applied
                .wait_timeout(v, left.min(Duration::from_millis(20)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Publish `payload` on `subject` and wait for JetStream's acknowledgement: the stream
    /// sequence number it was stored at.
    fn publish(&self, what: &str, subject: String, payload: Vec<u8>) -> Result<u64, StateError> {
        let js = self.js.clone();
        self.run(what, async move {
            let ack = js.publish(subject, payload.into()).await.map_err(|e| e.to_string())?;
            ack.await.map(|a| a.sequence).map_err(|e| e.to_string())
        })
    }

    fn stale(&self, v: &View) -> StateError {
        let age = match v.fresh_at {
            Some(t) => format!("is {} ms old", t.elapsed().as_millis()),
            None => "was never read".to_string(),
        };
        let cause = v.last_error.as_deref().map(|e| format!(" (last error: {e})")).unwrap_or_default();
        StateError(format!(
            "state `{}`: this replica's view of revocations {age}, more than the {} ms allowed{cause}",
            self.location,
            self.max_lag.as_millis()
        ))
    }

    /// The view, when fresh enough to answer for revocations.
    fn fresh_view(&self) -> Result<MutexGuard<'_, View>, StateError> {
        let v = self.shared.lock();
        if v.fresh_at.is_some_and(|t| t.elapsed() <= self.max_lag) { Ok(v) } else { Err(self.stale(&v)) }
    }

    fn run<T: Send + 'static>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, String>> + Send + 'static,
    ) -> Result<T, StateError> {
        let e = err(&self.location, what);
        block_on(&self.handle, self.op_timeout, fut).map_err(|x| e(&x))?.map_err(|x| e(&x))
    }

    fn revocation_subject(&self) -> String {
        format!("{}.revocations", self.location.prefix)
    }

    fn grant_subject(&self, key: &str) -> String {
        let digest = Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("{}.grants.{hex}", self.location.prefix)
    }
}

/// Run `fut` on the store's runtime and wait up to `timeout` for its answer.
fn block_on<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    timeout: Duration,
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let answer = tokio::time::timeout(timeout, fut).await;
        let _ = tx.send(answer);
    });
    match rx.recv() {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(format!("NATS did not answer within {} ms", timeout.as_millis())),
        Err(_) => Err("the NATS runtime stopped".into()),
    }
}

fn stream_names(prefix: &str) -> (String, String, String) {
    (format!("{prefix}_revocations"), format!("{prefix}_grants"), format!("{prefix}_keys"))
}

/// Connect, make the streams, start the followers (revocations, keys), the prober and
/// the purger.
async fn setup(
    location: &NatsLocation,
    shared: Arc<Shared>,
    max_lag: Duration,
    op_timeout: Duration,
) -> Result<jetstream::Context, String> {
    let client = async_nats::ConnectOptions::new()
        .name("writ")
        .connection_timeout(op_timeout)
        .request_timeout(Some(op_timeout))
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| Duration::from_millis((attempts as u64 * 100).min(1000)))
        .connect(location.server.as_str())
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let js = jetstream::new(client);
    let (revocations, grants, keys) = stream_names(&location.prefix);
    let revocation_stream = js
        .get_or_create_stream(stream::Config {
            name: revocations,
            subjects: vec![format!("{}.revocations", location.prefix)],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("the revocation stream: {e}"))?;
    js.get_or_create_stream(stream::Config {
        name: grants,
        subjects: vec![format!("{}.grants.*", location.prefix)],
        storage: stream::StorageType::File,
        max_age: GRANT_RETENTION,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("the grant stream: {e}"))?;
    // Issuer keys: a stream keeping the newest message per kid (the Debian server's JetStream
    // predates the key-value API this client speaks).
    let key_stream = js
        .get_or_create_stream(stream::Config {
            name: keys,
            subjects: vec![format!("{}.keys.*", location.prefix)],
            storage: stream::StorageType::File,
            max_messages_per_subject: 1,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("the key stream: {e}"))?;
    // Published keys, before the first credential is verified.
    let published = key_stream.get_info().await.map_err(|e| format!("the key stream: {e}"))?.state.last_sequence;
    tokio::spawn(follow(js.client(), key_stream, shared.clone(), |v| v.keys_seq, apply_key));
    let deadline = Instant::now() + op_timeout;
    while shared.lock().keys_seq < published {
        if Instant::now() > deadline {
            return Err("the key stream: not read in time".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    tokio::spawn(follow(js.client(), revocation_stream.clone(), shared.clone(), |v| v.last_seq, Shared::apply));
    tokio::spawn(probe(
        revocation_stream.clone(),
        shared.clone(),
        (max_lag / 4).clamp(Duration::from_millis(25), Duration::from_secs(1)),
    ));
    tokio::spawn(purge(revocation_stream, shared));
    Ok(js)
}

/// Apply an issuer key the key follower received (the newest message per kid).
fn apply_key(shared: &Shared, seq: u64, payload: &[u8]) {
    let mut v = shared.lock();
    v.keys_seq = v.keys_seq.max(seq);
    if let Ok(k) = serde_json::from_slice::<PublishedKey>(payload)
        && let Some(kid) = k.jwk.get("kid").and_then(|kid| kid.as_str())
    {
        v.keys.insert(kid.to_string(), (k.until, k.jwk.to_string()));
    }
    drop(v);
    shared.applied.notify_all();
}

/// Follow a stream from the view's position (`position`), in order, handing each message to
/// `apply`; start over from there whenever the consumer fails (NATS restarted, a connection
/// lost).
async fn follow(
    client: async_nats::Client,
    followed: stream::Stream,
    shared: Arc<Shared>,
    position: fn(&View) -> u64,
    apply: fn(&Shared, u64, &[u8]),
) {
    let name = followed.cached_info().config.name.clone();
    loop {
        let start = position(&shared.lock()) + 1;
        let consumer = followed
            .create_consumer(consumer::push::OrderedConfig {
                deliver_subject: client.new_inbox(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: start },
                ..Default::default()
            })
            .await;
        match consumer {
            Ok(c) => match c.messages().await {
                Ok(mut messages) => {
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(m) => match m.info() {
                                Ok(info) => apply(&shared, info.stream_sequence, &m.payload),
                                Err(e) => {
                                    shared.note_error(format!("{name}: a message without its sequence number: {e}"))
                                }
                            },
                            Err(e) => {
                                shared.note_error(format!("following {name}: {e}"));
                                break;
                            }
                        }
                    }
                }
                Err(e) => shared.note_error(format!("following {name}: {e}")),
            },
            Err(e) => shared.note_error(format!("following {name}: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ask the stream for its last sequence number, and mark the view fresh once it has it.
async fn probe(revocations: stream::Stream, shared: Arc<Shared>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = Instant::now();
        match revocations.get_info().await {
            Ok(info) => {
                let mut v = shared.lock();
                // Messages before the first are purged: nothing there to wait for.
                let floor = info.state.first_sequence.saturating_sub(1);
                if v.last_seq < floor && v.log.last().is_none_or(|(seq, _, _)| *seq < floor) {
                    v.last_seq = floor.min(info.state.last_sequence);
                }
                if v.last_seq >= info.state.last_sequence {
                    v.fresh_at = Some(started);
                    v.catching_up_to = None;
                } else {
                    v.catching_up_to = Some((info.state.last_sequence, started));
                }
                v.last_error = None;
                drop(v);
                shared.applied.notify_all();
            }
            Err(e) => shared.note_error(format!("reading the revocation stream: {e}")),
        }
    }
}

/// Drop the prefix of the revocation stream whose entries have all expired (by the real
/// clock), here and on the server; and expired issuer keys here.
async fn purge(revocations: stream::Stream, shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(PURGE_EVERY).await;
        let now = real_now();
        let below = {
            let mut v = shared.lock();
            let expired = v.log.iter().take_while(|(_, until, _)| *until <= now).count();
            let below = v.log.get(expired).map(|(seq, _, _)| *seq);
            v.log.drain(..expired);
            v.keys.retain(|_, (until, _)| *until > now);
            if expired == 0 { None } else { Some(below.unwrap_or(v.last_seq + 1)) }
        };
        if let Some(below) = below
            && let Err(e) = revocations.purge().sequence(below).await
        {
            shared.note_error(format!("purging expired revocations: {e}"));
        }
    }
}

/// The view's revocations after `seq`, in order.
fn entries_after(v: &View, seq: u64) -> Vec<(u64, String)> {
    let start = v.log.partition_point(|(n, _, _)| *n <= seq);
    v.log[start..].iter().map(|(n, _, d)| (*n, d.clone())).collect()
}

impl StateStore for Nats {
    fn append_revocation(&self, data: &str, until: u64) -> Result<(), StateError> {
        let payload =
            serde_json::to_vec(&Envelope { until, data: data.to_string() }).map_err(|e| StateError(e.to_string()))?;
        let seq = self.publish("storing a revocation", self.revocation_subject(), payload)?;
        // Stored. Wait (briefly) until this process's view has it, so every instance here
        // enforces it from now on; a view that lags stays refused by its age anyway.
        let _ = self.wait_for(|v| v.last_seq >= seq, self.max_lag);
        Ok(())
    }

    fn revocations_since(&self, seq: u64) -> Result<Vec<(u64, String)>, StateError> {
        Ok(entries_after(&*self.fresh_view()?, seq))
    }

    fn revocations_known_since(&self, seq: u64) -> Result<Vec<(u64, String)>, StateError> {
        Ok(entries_after(&self.shared.lock(), seq))
    }

    fn register_grant(&self, data: &str, until: u64, keys: &[String]) -> Result<(), StateError> {
        let payload: bytes::Bytes = serde_json::to_vec(&Envelope { until, data: data.to_string() })
            .map_err(|e| StateError(e.to_string()))?
            .into();
        let subjects: Vec<String> = keys.iter().map(|k| self.grant_subject(k)).collect();
        let js = self.js.clone();
        self.run("registering a grant", async move {
            let mut acks = Vec::with_capacity(subjects.len());
            for subject in subjects {
                acks.push(js.publish(subject, payload.clone()).await.map_err(|e| e.to_string())?);
            }
            for ack in acks {
                ack.await.map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }

    fn grants(&self, key: &str, now: u64) -> Result<Vec<String>, StateError> {
        let js = self.js.clone();
        let (_, grant_stream, _) = stream_names(&self.location.prefix);
        let subject = self.grant_subject(key);
        self.run("reading grants", async move {
            let stream = js.get_stream(grant_stream).await.map_err(|e| e.to_string())?;
            let mut found = Vec::new();
            let mut next = 1;
            loop {
                let message = stream.raw_message_builder().sequence(next).next_by_subject(subject.clone()).send().await;
                match message {
                    Ok(m) => {
                        next = m.sequence + 1;
                        match serde_json::from_slice::<Envelope>(&m.payload) {
                            Ok(e) if e.until > now => found.push(e.data),
                            Ok(_) => {}
                            // Kept as is: the component counts what it cannot read as live.
                            Err(_) => found.push(String::from_utf8_lossy(&m.payload).into_owned()),
                        }
                    }
                    Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => return Ok(found),
                    Err(e) => return Err(e.to_string()),
                }
            }
        })
    }

    fn last_seq(&self) -> Result<u64, StateError> {
        Ok(self.fresh_view()?.last_seq)
    }

    fn summary(&self) -> Result<Summary, StateError> {
        let js = self.js.clone();
        let (revocations, grants, _) = stream_names(&self.location.prefix);
        let (revocation_count, grant_count) = self.run("reading the streams", async move {
            let r = js.get_stream(revocations).await.map_err(|e| e.to_string())?;
            let g = js.get_stream(grants).await.map_err(|e| e.to_string())?;
            let r = r.get_info().await.map_err(|e| e.to_string())?;
            let g = g.get_info().await.map_err(|e| e.to_string())?;
            Ok((r.state.messages, g.state.messages))
        })?;
        Ok(Summary {
            location: self.location(),
            revocations: revocation_count,
            last_seq: self.last_seq()?,
            grants: grant_count,
        })
    }

    fn location(&self) -> String {
        self.location.to_string()
    }

    fn publish_key(&self, kid: &str, jwk: &serde_json::Value, until: u64) -> Result<(), StateError> {
        if kid.is_empty() || !kid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(StateError(format!("state `{}`: issuer key id `{kid}` is not a subject token", self.location)));
        }
        let value =
            serde_json::to_vec(&PublishedKey { until, jwk: jwk.clone() }).map_err(|e| StateError(e.to_string()))?;
        let seq = self.publish("publishing an issuer key", format!("{}.keys.{kid}", self.location.prefix), value)?;
        // Published; in this process's view once the follower has it.
        let _ = self.wait_for(|v| v.keys_seq >= seq, self.op_timeout);
        Ok(())
    }

    fn published_keys(&self, now: u64) -> Result<Vec<(String, String)>, StateError> {
        let v = self.shared.lock();
        Ok(v.keys
            .iter()
            .filter(|(_, (until, _))| *until > now)
            .map(|(kid, (_, jwk))| (kid.clone(), jwk.clone()))
            .collect())
    }

    fn view_age(&self) -> Option<Duration> {
        self.shared.lock().fresh_at.map(|t| t.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_with_a_default_prefix_and_reject_bad_ones() {
        let l = NatsLocation::parse("nats://127.0.0.1:4222").unwrap();
        assert_eq!((l.server.as_str(), l.prefix.as_str()), ("nats://127.0.0.1:4222", "writ"));
        let l = NatsLocation::parse("nats://h:1/team-a_1/").unwrap();
        assert_eq!(l.prefix, "team-a_1");
        assert_eq!(l.to_string(), "nats://h:1/team-a_1");
        for bad in ["nats://", "nats:///x", "nats://h:1/a.b", "nats://h:1/a*", "http://h:1"] {
            assert!(NatsLocation::parse(bad).is_err(), "{bad}");
        }
    }
}
