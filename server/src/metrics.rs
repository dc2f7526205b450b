//! Operations: `/healthz` (the process answers), `/readyz` (policies loaded, the component
//! and the state store answering), `/metrics` (Prometheus text: decisions by endpoint and
//! result, latency histograms, reloads, the idle instance pool, the state store's errors and
//! newest revocation).

use crate::State;
use crate::api::{RequestId, ok};
use axum::extract;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub endpoint: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Endpoint {
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reload {
    pub result: &'static str,
}

/// A source the host fetches: `kind` `bundle` (name: the trust domain) or `oidc` (the issuer).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Source {
    pub kind: &'static str,
    pub name: String,
}

fn latency_histogram() -> Histogram {
    // 5 µs … ~160 ms.
    Histogram::new(exponential_buckets(0.000_005, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    decisions: Family<Outcome, Counter>,
    latency: Family<Endpoint, Histogram, fn() -> Histogram>,
    reloads: Family<Reload, Counter>,
    idle: Gauge,
    state_errors: HostCount,
    state_last_seq: Gauge,
    state_view_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    audit_failures: HostCount,
    source_age: Family<Source, Gauge<f64, std::sync::atomic::AtomicU64>>,
    source_failures: Family<Source, Counter>,
    /// The failure totals last reported, per source.
    source_failures_reported: std::sync::Mutex<std::collections::HashMap<Source, u64>>,
}

/// The totals the host counts that `/metrics` reports.
struct HostTotals {
    state_errors: u64,
    audit_failures: u64,
}

/// A counter that follows a total the host keeps (it counts; this reports the increase).
#[derive(Default)]
struct HostCount {
    counter: Counter,
    /// The total last reported.
    reported: std::sync::atomic::AtomicU64,
}

impl HostCount {
    fn follow(&self, total: u64) {
        let before = self.reported.swap(total, Ordering::Relaxed);
        self.counter.inc_by(total.saturating_sub(before));
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let decisions = Family::<Outcome, Counter>::default();
        registry.register("writ_decisions", "Decisions by endpoint and result (allow, deny, error)", decisions.clone());
        let latency = Family::<Endpoint, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register("writ_request_seconds", "Time to answer, by endpoint", latency.clone());
        let reloads = Family::<Reload, Counter>::default();
        registry.register("writ_reloads", "Policy and bundle reloads by result", reloads.clone());
        let idle = Gauge::default();
        registry.register("writ_idle_instances", "Component instances ready in the pool", idle.clone());
        let state_errors = HostCount::default();
        registry.register(
            "writ_state_errors",
            "Operations that failed because the state store could not be written or read",
            state_errors.counter.clone(),
        );
        let state_last_seq = Gauge::default();
        registry.register(
            "writ_state_last_seq",
            "The newest revocation sequence number in the state store (-1: the store did not answer)",
            state_last_seq.clone(),
        );
        let state_view_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "writ_state_view_age_seconds",
            "How old this replica's view of revocations on NATS is: the revocation lag bound (-1: never caught up; 0: a local store, read directly)",
            state_view_age.clone(),
        );
        let audit_failures = HostCount::default();
        registry.register(
            "writ_audit_failures",
            "Audit events that could not be written (a full disk, a closed pipe)",
            audit_failures.counter.clone(),
        );
        let source_age = Family::<Source, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "writ_source_age_seconds",
            "Since the last good fetch of a fetched source: a trust domain's bundle from its bundle endpoint (kind bundle), an OIDC issuer's keys (kind oidc); -1: never fetched",
            source_age.clone(),
        );
        let source_failures = Family::<Source, Counter>::default();
        registry.register(
            "writ_source_fetch_failures",
            "Fetches of a source that failed or whose content was refused (the last good content stays in force)",
            source_failures.clone(),
        );
        Metrics {
            registry,
            source_age,
            source_failures,
            source_failures_reported: Default::default(),
            decisions,
            latency,
            reloads,
            idle,
            state_errors,
            state_last_seq,
            state_view_age,
            audit_failures,
        }
    }

    /// One answered request.
    pub fn decided(&self, endpoint: &'static str, result: &'static str, started: std::time::Instant) {
        self.decisions.get_or_create(&Outcome { endpoint, result }).inc();
        self.latency.get_or_create(&Endpoint { endpoint }).observe(started.elapsed().as_secs_f64());
    }

    pub fn reloaded(&self, ok: bool) {
        self.reloads.get_or_create(&Reload { result: if ok { "ok" } else { "error" } }).inc();
    }

    /// Follow the host's fetched sources.
    fn sources(&self, sources: &[writ_host::remote::SourceStatus]) {
        let mut reported = self.source_failures_reported.lock().unwrap_or_else(|p| p.into_inner());
        for s in sources {
            let label = Source { kind: s.kind, name: s.name.clone() };
            self.source_age.get_or_create(&label).set(s.age.map_or(-1.0, |a| a.as_secs_f64()));
            let before = reported.insert(label.clone(), s.failures).unwrap_or(0);
            self.source_failures.get_or_create(&label).inc_by(s.failures.saturating_sub(before));
        }
    }

    fn text(&self, idle: usize, host: HostTotals, state_last_seq: Option<u64>, view_age: Option<f64>) -> String {
        self.state_view_age.set(view_age.unwrap_or(-1.0));
        self.idle.set(i64::try_from(idle).unwrap_or(i64::MAX));
        self.state_errors.follow(host.state_errors);
        self.audit_failures.follow(host.audit_failures);
        self.state_last_seq.set(state_last_seq.map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX)));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

pub async fn healthz(headers: HeaderMap) -> Response {
    ok(StatusCode::OK, json!({ "status": "ok" }), &RequestId::of(&headers))
}

pub async fn readyz(extract::State(state): extract::State<Arc<State>>, headers: HeaderMap) -> Response {
    crate::offload(state, move |state| readyz_now(state, headers)).await
}

fn readyz_now(state: Arc<State>, headers: HeaderMap) -> Response {
    let id = RequestId::of(&headers);
    // Ready once policies loaded, the component answers and the state store can be read.
    let answering = state.writ.jwks().is_ok();
    let location = state.writ.state_location();
    let (store, stored) = match state.writ.state_last_seq() {
        Ok(seq) => match state.writ.state_view_age() {
            Some(age) => {
                (json!({ "location": location, "last_seq": seq, "view_age_ms": age.as_millis() as u64 }), true)
            }
            None => (json!({ "location": location, "last_seq": seq }), true),
        },
        Err(e) => (json!({ "location": location, "error": e.message() }), false),
    };
    if state.ready.load(Ordering::Relaxed) && answering && stored {
        ok(StatusCode::OK, json!({ "status": "ready", "state": store }), &id)
    } else {
        ok(StatusCode::SERVICE_UNAVAILABLE, json!({ "status": "not ready", "state": store }), &id)
    }
}

pub async fn metrics(extract::State(state): extract::State<Arc<State>>) -> Response {
    crate::offload(state, metrics_now).await
}

fn metrics_now(state: Arc<State>) -> Response {
    let last_seq = state.writ.state_last_seq().ok();
    let view_age = match state.writ.state_view_age() {
        Some(age) => Some(age.as_secs_f64()),
        None if last_seq.is_some() => Some(0.0),
        None => None,
    };
    let host = HostTotals { state_errors: state.writ.state_errors(), audit_failures: state.writ.audit_failures() };
    state.metrics.sources(&state.writ.fetched_sources());
    let text = state.metrics.text(state.writ.idle_instances(), host, last_seq, view_age);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}
