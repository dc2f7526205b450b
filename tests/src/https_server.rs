//! A small real HTTPS server for the host's fetches (OIDC discovery and keys, SPIFFE bundle
//! endpoints): rustls on a free loopback port, one thread per connection, replies set per path
//! while it runs (so a test can rotate keys or bundles), requests counted per path, and the
//! hostile replies a fetcher must survive (a hang, garbage, an error status, an oversized body).

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a path answers.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this body (`application/json`).
    Body(String),
    /// This status, empty body.
    Status(u16),
    /// Nothing: the connection is held open, unanswered, until the server stops (or 30 s).
    Hang,
}

#[derive(Default)]
struct Routes {
    replies: HashMap<String, Reply>,
    hits: HashMap<String, usize>,
    authorization: Option<String>,
}

pub struct HttpsServer {
    addr: SocketAddr,
    routes: Arc<Mutex<Routes>>,
    stop: Arc<AtomicBool>,
}

impl HttpsServer {
    /// Serve with this certificate chain (leaf first, DER) and its key (PKCS#8 PEM).
    pub fn start(chain: Vec<Vec<u8>>, key_pem: &str) -> HttpsServer {
        use rustls::pki_types::pem::PemObject as _;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let chain = chain.into_iter().map(rustls::pki_types::CertificateDer::from).collect();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let routes = Arc::new(Mutex::new(Routes::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (routes.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (config, r, s) = (config.clone(), r.clone(), s.clone());
                std::thread::spawn(move || serve(conn, config, &r, &s));
            }
        });
        HttpsServer { addr, routes, stop }
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().replies.insert(path.to_string(), reply);
    }

    /// Requests `path` has had.
    pub fn hits(&self, path: &str) -> usize {
        self.routes.lock().unwrap().hits.get(path).copied().unwrap_or(0)
    }

    /// The `Authorization` header of the last request.
    pub fn last_authorization(&self) -> Option<String> {
        self.routes.lock().unwrap().authorization.clone()
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, config: Arc<rustls::ServerConfig>, routes: &Mutex<Routes>, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(tls) = rustls::ServerConnection::new(config) else { return };
    let mut stream = rustls::StreamOwned::new(tls, conn);
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) if head.len() < 16 * 1024 => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let authorization = head
        .lines()
        .find_map(|l| l.strip_prefix("authorization: ").or_else(|| l.strip_prefix("Authorization: ")))
        .map(str::to_string);
    let reply = {
        let mut r = routes.lock().unwrap();
        *r.hits.entry(path.clone()).or_default() += 1;
        r.authorization = authorization;
        r.replies.get(&path).cloned().unwrap_or(Reply::Status(404))
    };
    let (status, body) = match reply {
        Reply::Body(b) => (200, b),
        Reply::Status(s) => (s, String::new()),
        Reply::Hang => {
            for _ in 0..300 {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            return;
        }
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    stream.conn.send_close_notify();
    let _ = stream.flush();
}

/// A Web PKI for a loopback server: a CA (its PEM, for `ca_file`) and a certificate for
/// `127.0.0.1` and `localhost` valid around the real time (rustls checks it against the clock).
pub fn loopback_web_pki() -> (String, Vec<Vec<u8>>, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType};
    let now = time::OffsetDateTime::now_utc();
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "loopback test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.not_before = now - time::Duration::hours(1);
    ca.not_after = now + time::Duration::days(2);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let ca_pem = ca_cert.pem();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    leaf.subject_alt_names =
        vec![SanType::DnsName("localhost".try_into().unwrap()), SanType::IpAddress([127, 0, 0, 1].into())];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = now - time::Duration::hours(1);
    leaf.not_after = now + time::Duration::days(1);
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (ca_pem, vec![cert.der().to_vec()], key.serialize_pem())
}
