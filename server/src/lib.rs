#![doc = include_str!("../README.md")]

mod api;
mod authzen;
pub mod config;
mod exchange;
pub mod extauthz;
mod mcp;
pub use mcp::fetch_tools;
mod metrics;
mod tls;

pub use config::{Config, Route};

use api::{ApiError, RequestId};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;
use writ_host::{AuditSink, IssuerAlg, IssuerKey, Writ};

/// What every handler shares.
pub(crate) struct State {
    pub writ: Writ,
    pub config: Config,
    pub routes: writ_types::route::Routes,
    pub metrics: metrics::Metrics,
    pub ready: AtomicBool,
    /// Names this run of the server, so revocation pollers notice a restart.
    pub epoch: String,
    /// Permits for requests doing work in the component (`max_concurrent_calls`).
    pub calls: Arc<tokio::sync::Semaphore>,
    /// The bearer token AuthZEN callers must send (`authzen_token_file`), if any.
    pub authzen_token: Option<String>,
    /// The MCP gateway (`[[mcp.upstream]]`), if any.
    pub(crate) mcp: Option<mcp::Gateway>,
}

/// Run a request's work on the blocking pool, at most `max_concurrent_calls` at once: the
/// component's calls (up to its CPU budget each, whole batches) never occupy the async
/// workers, so accepting connections, `/healthz` and timeouts keep running while they work.
/// Requests beyond the bound wait here, holding no thread.
pub(crate) async fn offload(
    state: Arc<State>,
    work: impl FnOnce(Arc<State>) -> axum::response::Response + Send + 'static,
) -> axum::response::Response {
    blocking(state, work).await.unwrap_or_else(|refused| refused)
}

/// Run one decision's work on the async worker that received it, at most
/// `max_concurrent_calls` at once. One decision is microseconds to a few milliseconds of CPU,
/// bounded by the component's CPU budget; handing it to the blocking pool and back cost more
/// than the decision on varied traffic (futex wake-ups and the context switches they cause,
/// ~25 % of the server's CPU in stop 33's profile). Batches, loads, signing, revocation and
/// the MCP gateway stay on the pool ([`offload`]), so a flood of batches leaves the workers
/// free. A panic answers 500 here too.
pub(crate) async fn decide_inline(
    state: Arc<State>,
    work: impl FnOnce(Arc<State>) -> axum::response::Response,
) -> axum::response::Response {
    let Ok(_permit) = state.calls.clone().acquire_owned().await else {
        return shutting_down();
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(state))).unwrap_or_else(|_| work_failed())
}

/// The answer to a request that arrives while the server shuts down.
fn shutting_down() -> axum::response::Response {
    ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "unavailable", "shutting down")
        .respond(&RequestId::of(&axum::http::HeaderMap::new()))
}

/// The answer to a request whose work panicked.
fn work_failed() -> axum::response::Response {
    ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", "the request's work failed")
        .respond(&RequestId::of(&axum::http::HeaderMap::new()))
}

/// [`offload`] for work that answers something other than a response: its result, or the
/// response to give instead (shutting down, or the work failed).
pub(crate) async fn blocking<T: Send + 'static>(
    state: Arc<State>,
    work: impl FnOnce(Arc<State>) -> T + Send + 'static,
) -> Result<T, axum::response::Response> {
    let Ok(permit) = state.calls.clone().acquire_owned().await else {
        return Err(shutting_down());
    };
    let answered = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work(state)
    })
    .await;
    answered.map_err(|_| work_failed())
}

impl State {
    /// The policies, bundles and approver keys of the configuration, (re)loaded into the component. Each
    /// load is atomic: a bad file leaves the previous state in force.
    pub fn load(&self) -> Result<(), String> {
        for (td, path) in &self.config.bundles {
            let bytes =
                std::fs::read(path).map_err(|e| format!("bundle `{td}`: cannot read `{}`: {e}", path.display()))?;
            self.writ.set_bundle(td, &bytes).map_err(|e| format!("bundle `{td}` (`{}`): {e}", path.display()))?;
        }
        let endpoints =
            self.config.bundle_endpoints.iter().map(|(td, e)| e.endpoint(td)).collect::<Result<Vec<_>, _>>()?;
        for unfetched in self.writ.set_bundle_endpoints(endpoints).map_err(|e| format!("bundle endpoints: {e}"))? {
            tracing::warn!("{unfetched}; the trust domain keeps the bundle it had, and the fetch is tried again");
        }
        if let Some(path) = &self.config.approvers {
            let jwks = std::fs::read_to_string(path)
                .map_err(|e| format!("approvers: cannot read `{}`: {e}", path.display()))?;
            self.writ.set_approvers(&jwks).map_err(|e| format!("approvers (`{}`): {e}", path.display()))?;
        }
        if let Some(path) = &self.config.oidc {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("oidc: cannot read `{}`: {e}", path.display()))?;
            let dir = path.parent().unwrap_or(std::path::Path::new("."));
            let resolved =
                writ_host::oidc::resolve(&text, dir, None).map_err(|e| format!("oidc (`{}`): {e}", path.display()))?;
            let loaded = self.writ.load_oidc(resolved).map_err(|e| format!("oidc (`{}`): {e}", path.display()))?;
            for unfetched in loaded.unfetched {
                tracing::warn!("oidc: {unfetched}; its tokens are refused until a fetch succeeds");
            }
        }
        let paths: Vec<std::path::PathBuf> = self.config.policies.iter().cloned().collect();
        let pack = writ_host::pack::Pack::load(&paths, self.config.schema.as_deref(), self.config.entities.as_deref())?;
        self.writ
            .set_policies(&pack.policies, pack.schema.as_deref(), pack.entities.as_deref())
            .map_err(|e| format!("policies: {e}"))?;
        if let Some(gateway) = &self.mcp {
            gateway.pins.loaded(&pack);
        }
        Ok(())
    }
}

/// Audit a request refused before any decision (no client certificate, an unreadable
/// `x-forwarded-client-cert`, no route rule): event kind `refuse`, the reason, the detail.
pub(crate) fn refused(state: &State, reason: &str, detail: &str) {
    refused_by(state, None, reason, detail);
}

/// [`refused`], naming the caller when it is known.
pub(crate) fn refused_by(state: &State, spiffe_id: Option<&str>, reason: &str, detail: &str) {
    state.writ.audit(writ_host::AuditEvent {
        kind: "refuse".into(),
        time: state.writ.now(),
        spiffe_id: spiffe_id.map(str::to_string),
        task_id: None,
        action: None,
        resource: None,
        allow: false,
        reasons: vec![reason.to_string()],
        detail: Some(detail.chars().take(512).collect()),
        ..writ_host::AuditEvent::default()
    });
}

fn audit_sink(spec: &str) -> Result<AuditSink, String> {
    match spec {
        "off" | "" => Ok(AuditSink::Discard),
        "stdout" => Ok(AuditSink::Stdout),
        "stderr" => Ok(AuditSink::Stderr),
        path => AuditSink::file(std::path::Path::new(path)).map_err(|e| format!("audit log `{path}`: {e}")),
    }
}

/// The component, configured: issuer key, lifetime cap, audit sink, policies and bundles.
fn build(config: Config) -> Result<Arc<State>, String> {
    config.check()?;
    let alg = if config.issuer_alg == "es256" { IssuerAlg::Es256 } else { IssuerAlg::EdDsa };
    let mut builder = Writ::builder().audit(audit_sink(&config.audit)?).max_instances(64);
    if let Some(path) = &config.issuer_key {
        builder = builder.issuer(IssuerKey::load_or_create(path, alg)?);
    } else {
        builder = builder.issuer(IssuerKey::generate_for(alg)?);
    }
    let mut state = match &config.state {
        Some(spec) => writ_host::state::StateLocation::parse(spec)?,
        None => writ_host::state::StateLocation::Memory,
    };
    if let Some(ms) = config.state_max_lag_ms {
        state = state.with_max_lag(std::time::Duration::from_millis(ms));
    }
    let writ = builder.state(state).build().map_err(|e| e.to_string())?;
    writ.set_ttl_cap(config.ttl_cap).map_err(|e| e.to_string())?;
    writ.set_decision_memo(config.decision_memo).map_err(|e| e.to_string())?;
    let routes = writ_types::route::Routes::compile(&config.routes)?;
    let max_calls = config.max_concurrent_calls;
    let authzen_token = match &config.authzen_token_file {
        Some(path) => {
            let t = std::fs::read_to_string(path)
                .map_err(|e| format!("authzen_token_file: cannot read `{}`: {e}", path.display()))?;
            let t = t.trim().to_string();
            if t.len() < 16 {
                return Err(format!("authzen_token_file `{}` holds fewer than 16 characters", path.display()));
            }
            Some(t)
        }
        None => None,
    };
    let gateway = mcp::Gateway::new(&config.mcp)?;
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let epoch = format!("{:x}-{:x}", started.as_nanos(), std::process::id());
    let state = Arc::new(State {
        writ,
        config,
        routes,
        metrics: metrics::Metrics::new(),
        ready: AtomicBool::new(false),
        epoch,
        calls: Arc::new(tokio::sync::Semaphore::new(max_calls)),
        authzen_token,
        mcp: gateway,
    });
    state.load()?;
    state.ready.store(true, Ordering::Relaxed);
    Ok(state)
}

/// The largest body of every endpoint but the batch one.
const SMALL_BODY: usize = 64 * 1024;

/// Every route; `tls` adds the ones that need a client certificate.
fn router(state: Arc<State>, tls: bool) -> Router {
    let limit = state.config.max_body_bytes;
    let mut r = Router::new()
        .route("/access/v1/evaluation", post(authzen::evaluation))
        .route("/access/v1/evaluations", post(authzen::evaluations).layer(DefaultBodyLimit::max(limit)))
        .route("/.well-known/authzen-configuration", get(authzen::configuration))
        .route("/.well-known/jwks.json", get(exchange::jwks))
        .route("/ledger/revocations", get(exchange::revocations))
        .route("/ext_authz", any(extauthz::check))
        .route("/ext_authz/{*path}", any(extauthz::check))
        .route("/healthz", get(metrics::healthz))
        .route("/readyz", get(metrics::readyz))
        .route("/metrics", get(metrics::metrics))
        // Without a client certificate, a caller proves itself with a `client_assertion`.
        .route("/token", post(exchange::token))
        // The MCP gateway: an agent proves itself with its certificate or a bearer identity token.
        .route("/mcp", any(mcp::only).layer(DefaultBodyLimit::max(limit)))
        .route("/mcp/{name}", any(mcp::named).layer(DefaultBodyLimit::max(limit)));
    if tls {
        r = r
            .route("/task", post(exchange::open_task))
            .route("/task/{id}", get(exchange::show_task))
            .route("/task/{id}/end", post(exchange::end_task))
            .route("/agent/{*spiffe_id}", post(exchange::cut_off));
    }
    r.fallback(not_found).layer(DefaultBodyLimit::max(SMALL_BODY.min(limit))).with_state(state)
}

async fn not_found(headers: axum::http::HeaderMap, uri: axum::http::Uri) -> axum::response::Response {
    let id = RequestId::of(&headers);
    ApiError::new(axum::http::StatusCode::NOT_FOUND, "not-found", format!("no endpoint `{}`", uri.path())).respond(&id)
}

/// A running server: its bound addresses, reload and shutdown.
pub struct Running {
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    /// The Unix socket served, if any.
    pub unix: Option<std::path::PathBuf>,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Reload policies and bundles from the configuration's files (what SIGHUP does).
    /// Requests keep being served throughout; a bad file leaves the previous state in force.
    pub fn reload(&self) -> Result<(), String> {
        let r = self.state.load();
        self.state.metrics.reloaded(r.is_ok());
        r
    }

    /// The component handle the server decides with (for tests and embedding).
    pub fn writ(&self) -> &Writ {
        &self.state.writ
    }

    /// Stop accepting, finish the requests in flight, and return.
    pub fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Serve until SIGTERM or SIGINT (then drain and return); SIGHUP reloads policies and
/// bundles without dropping requests. `on_ready` sees the bound addresses first.
pub fn run(config: Config, on_ready: impl FnOnce(&Running)) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let running = start(config)?;
    tracing::info!(http = ?running.http, https = ?running.https, "serving");
    on_ready(&running);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => match running.reload() {
                    Ok(()) => tracing::info!("reloaded policies and bundles"),
                    Err(e) => tracing::warn!(error = %e, "reload failed; the previous policies and bundles stay in force"),
                },
            }
        }
        tracing::info!("shutting down: draining requests in flight");
        Ok::<(), String>(())
    })?;
    running.shutdown();
    Ok(())
}

/// Start serving on a runtime of its own (`workers` threads). Returns once the listeners
/// are bound.
pub fn start(config: Config) -> Result<Running, String> {
    let workers = config.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1);
    let state = build(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (stop, stopped) = watch::channel(false);
    let (http, https, unix, tasks) = runtime.block_on(async {
        let mut tasks = Vec::new();
        let mut http = None;
        if let Some(addr) = state.config.listen {
            let listener =
                tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            http = listener.local_addr().ok();
            let app = router(state.clone(), false);
            tasks.push(tokio::spawn(tls::serve_plain(listener, app, state.clone(), stopped.clone())));
        }
        let mut unix = None;
        if let Some(path) = state.config.listen_unix.clone() {
            let listener = unix_listener(&path)?;
            let app = router(state.clone(), false).layer(axum::Extension(tls::FromUnixSocket));
            tasks.push(tokio::spawn(tls::serve_plain(listener, app, state.clone(), stopped.clone())));
            unix = Some(path);
        }
        let mut https = None;
        if let Some(addr) = state.config.tls_listen {
            let acceptor = tls::acceptor(&state.config)?;
            let listener =
                tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            https = listener.local_addr().ok();
            let app = router(state.clone(), true);
            tasks.push(tokio::spawn(tls::serve_tls(listener, acceptor, app, state.clone(), stopped.clone())));
        }
        Ok::<_, String>((http, https, unix, tasks))
    })?;
    let thread = std::thread::Builder::new()
        .name("writ-serve".into())
        .spawn(move || {
            runtime.block_on(async {
                for t in tasks {
                    let _ = t.await;
                }
            });
        })
        .map_err(|e| e.to_string())?;
    Ok(Running { http, https, unix, state, stop, thread: Some(thread) })
}

/// Bind the Unix socket at `path` (replacing a stale socket file, never another file), mode
/// 0660: only its owner and group may connect.
fn unix_listener(path: &std::path::Path) -> Result<tokio::net::UnixListener, String> {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(format!("`{}` exists and is not a socket", path.display()));
        }
        std::fs::remove_file(path).map_err(|e| format!("cannot replace `{}`: {e}", path.display()))?;
    }
    let listener =
        tokio::net::UnixListener::bind(path).map_err(|e| format!("cannot listen on `{}`: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("cannot set the mode of `{}`: {e}", path.display()))?;
    Ok(listener)
}
