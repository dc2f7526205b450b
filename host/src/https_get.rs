//! One HTTPS GET, bounded: what the host fetches for the component (an OIDC issuer's discovery
//! document and keys, a SPIFFE bundle endpoint's bundle). HTTPS only, no redirects, no proxy
//! from the environment, a deadline on the whole exchange, a cap on the body; every failure is
//! an [`Error::Unavailable`] that says what failed. Blocking: called only from the refresher's
//! own thread, never from a request's.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use writ_types::Error;

/// The largest body read (a discovery document, a JWKS, a SPIFFE bundle).
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// Checks a server's certificate chain (leaf first, DER): why not, if it is not the one wanted.
pub(crate) type ChainCheck = Arc<dyn Fn(&[Vec<u8>]) -> Result<(), String> + Send + Sync>;

/// Whom the server must prove to be.
#[derive(Clone)]
pub(crate) enum Trust {
    /// A certificate for the URL's host name, chaining to the system's roots (`None`) or to
    /// the CA certificates of a PEM file.
    Web(Option<PathBuf>),
    /// SPIFFE authentication (`https_spiffe`): the server's certificate chain, checked by the
    /// closure (an X.509-SVID of one SPIFFE ID under the bundle in force); no host name check.
    Spiffe(ChainCheck),
}

/// A GET of `url`: its body, or why not. `bearer` is sent as `Authorization: Bearer`.
pub(crate) fn get(url: &str, trust: &Trust, bearer: Option<&str>, timeout: Duration) -> Result<Vec<u8>, Error> {
    let fail = |m: String| Error::Unavailable(format!("GET {}: {m}", clip(url)));
    if !url.starts_with("https://") {
        return Err(fail("only https:// URLs are fetched".into()));
    }
    let tls = client_config(trust).map_err(fail)?;
    let client = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| fail(format!("{e}")))?;
    let mut request = client.get(url).header("accept", "application/json");
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().map_err(|e| fail(error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(fail(format!("status {status}")));
    }
    if response.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(fail(format!("the body is over {MAX_BODY} bytes")));
    }
    let mut body = Vec::new();
    response.take(MAX_BODY as u64 + 1).read_to_end(&mut body).map_err(|e| fail(format!("reading the body: {e}")))?;
    if body.len() > MAX_BODY {
        return Err(fail(format!("the body is over {MAX_BODY} bytes")));
    }
    Ok(body)
}

/// An error and its causes, on one line (reqwest's own message says only "error sending request").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS client configuration that checks a server's certificate for its host name against
/// the system's roots, or the CA certificates of the PEM file `ca` (ring, TLS 1.2 and 1.3):
/// what the host's fetches use, and the MCP gateway's client of its upstreams.
pub fn web_tls_config(ca: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    client_config(&Trust::Web(ca.map(Path::to_path_buf)))
}

fn client_config(trust: &Trust) -> Result<rustls::ClientConfig, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = match trust {
        Trust::Web(ca) => builder.with_root_certificates(roots(ca.as_deref())?).with_no_client_auth(),
        Trust::Spiffe(check) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SpiffeServer { check: check.clone(), provider: provider() }))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// The system's roots, or those of a PEM file.
fn roots(ca: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    let mut store = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            use rustls::pki_types::pem::PemObject as _;
            let pem = std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| format!("`{}`: {e}", path.display()))?;
                store.add(cert).map_err(|e| format!("`{}`: {e}", path.display()))?;
            }
            if store.is_empty() {
                return Err(format!("`{}` holds no certificate", path.display()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err("the system has no root certificates (set `ca_file`)".into());
            }
        }
    }
    Ok(store)
}

/// The `https_spiffe` server check: the chain goes to the closure; the handshake's signatures
/// are checked as rustls always does.
struct SpiffeServer {
    check: ChainCheck,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl std::fmt::Debug for SpiffeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpiffeServer")
    }
}

impl ServerCertVerifier for SpiffeServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain: Vec<Vec<u8>> =
            std::iter::once(end_entity).chain(intermediates).map(|c| c.as_ref().to_vec()).collect();
        (self.check)(&chain).map_err(rustls::Error::General)?;
        Ok(ServerCertVerified::assertion())
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
