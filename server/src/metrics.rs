//! Operations: `/healthz` (the process answers), `/readyz` (policies loaded, the component
//! answering), `/metrics` (Prometheus text: decisions by endpoint and result, latency
//! histograms, reloads, the idle instance pool).

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
        Metrics { registry, decisions, latency, reloads, idle }
    }

    /// One answered request.
    pub fn decided(&self, endpoint: &'static str, result: &'static str, started: std::time::Instant) {
        self.decisions.get_or_create(&Outcome { endpoint, result }).inc();
        self.latency.get_or_create(&Endpoint { endpoint }).observe(started.elapsed().as_secs_f64());
    }

    pub fn reloaded(&self, ok: bool) {
        self.reloads.get_or_create(&Reload { result: if ok { "ok" } else { "error" } }).inc();
    }

    fn text(&self, idle: usize) -> String {
        self.idle.set(i64::try_from(idle).unwrap_or(i64::MAX));
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
    let id = RequestId::of(&headers);
    // Ready once policies loaded and the component answers.
    let answering = state.writ.jwks().is_ok();
    if state.ready.load(Ordering::Relaxed) && answering {
        ok(StatusCode::OK, json!({ "status": "ready" }), &id)
    } else {
        ok(StatusCode::SERVICE_UNAVAILABLE, json!({ "status": "not ready" }), &id)
    }
}

pub async fn metrics(extract::State(state): extract::State<Arc<State>>) -> Response {
    let text = state.metrics.text(state.writ.idle_instances());
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}
