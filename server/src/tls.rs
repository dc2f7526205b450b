//! Listeners: plain HTTP/1.1 on TCP or a Unix socket, and TLS that requires a client
//! certificate. The TLS layer only
//! proves the client holds the key of the certificate it sent; the chain itself is attested by
//! the component (every SPIFFE rule, against the trust bundles), per request, so an unknown
//! trust domain gets a JSON answer saying so rather than a bare handshake alert.

use crate::State;
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;

/// The client's certificate chain (leaf first, DER), from the TLS handshake.
#[derive(Debug, Clone)]
pub struct PeerChain(pub Vec<Vec<u8>>);

/// Marks a request that came over the Unix socket (whose file permissions decide who may
/// connect).
#[derive(Debug, Clone, Copy)]
pub struct FromUnixSocket;

/// A listener the accept loop takes connections from.
pub(crate) trait Accept: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn next(&self) -> impl std::future::Future<Output = std::io::Result<Self::Stream>> + Send;
}

impl Accept for TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn next(&self) -> std::io::Result<Self::Stream> {
        let (stream, _) = self.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

impl Accept for UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn next(&self) -> std::io::Result<Self::Stream> {
        self.accept().await.map(|(s, _)| s)
    }
}

/// Requires a client certificate and checks the handshake signature with its key; leaves the
/// chain to the component.
#[derive(Debug)]
struct AttestLater {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ClientCertVerifier for AttestLater {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS acceptor of the configuration's certificate and key, client certificates required.
pub fn acceptor(config: &crate::Config) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject as _;
    let (cert, key) = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => (c, k),
        _ => return Err("`tls_listen` needs `tls_cert` and `tls_key`".into()),
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls_cert `{}`: {e:?}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("tls_cert `{}` holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("tls_key `{}`: {e:?}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AttestLater { provider: provider.clone() });
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// How long in-flight requests may take to finish after shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);

/// The HTTP/1.1 connection settings: a timer, so a client that does not send a complete
/// request head in time (slowloris, or idle between requests) is disconnected.
fn http1(state: &State) -> hyper::server::conn::http1::Builder {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_millis(state.config.header_read_timeout_ms));
    http
}

/// The next connection, once fewer than `max_connections` are open (its permit travels with
/// it); `None` when the server stops. Accept errors (out of file descriptors, …) back off
/// instead of spinning.
async fn next_connection<L: Accept>(
    listener: &L,
    open: &Arc<Semaphore>,
    stop: &mut watch::Receiver<bool>,
) -> Option<(L::Stream, OwnedSemaphorePermit)> {
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            p = open.clone().acquire_owned() => p.ok()?,
            _ = stop.changed() => return None,
        };
        tokio::select! {
            accepted = listener.next() => match accepted {
                Ok(stream) => return Some((stream, permit)),
                Err(e) => {
                    tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed");
                    drop(permit);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            },
            _ = stop.changed() => return None,
        }
    }
}

/// Plain HTTP/1.1 on `listener` (TCP, or the Unix socket with `app` marking its requests).
pub async fn serve_plain<L: Accept>(listener: L, app: Router, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    let http = http1(&state);
    let open = Arc::new(Semaphore::new(state.config.max_connections));
    while let Some((stream, permit)) = next_connection(&listener, &open, &mut stop).await {
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

pub async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let http = http1(&state);
    let open = Arc::new(Semaphore::new(state.config.max_connections));
    let handshake = Duration::from_millis(state.config.header_read_timeout_ms);
    while let Some((stream, permit)) = next_connection(&listener, &open, &mut stop).await {
        let (acceptor, app, http, state) = (acceptor.clone(), app.clone(), http.clone(), state.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // A failed handshake (no client certificate, bad signature) ends here, audited.
            let tls = match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake refused");
                    crate::refused(&state, "tls-handshake", &e.to_string());
                    return;
                }
                Err(_) => {
                    crate::refused(&state, "tls-handshake", "the handshake did not finish in time");
                    return;
                }
            };
            let chain: Vec<Vec<u8>> =
                tls.get_ref().1.peer_certificates().map(|c| c.iter().map(|c| c.to_vec()).collect()).unwrap_or_default();
            let app = app.layer(axum::Extension(PeerChain(chain)));
            let conn = http.serve_connection(TokioIo::new(tls), TowerToHyperService::new(app));
            let _ = watcher.watch(conn).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}
