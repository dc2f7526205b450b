#![doc = include_str!("../README.md")]

mod abi;
mod memory;
mod vm;
mod wasi;

pub use memory::{deserialize_map, serialize_map};
pub use vm::{FilterModule, Vm};

use std::collections::BTreeMap;

/// The filter built by this crate's build script.
pub const FILTER_WASM: &[u8] = include_bytes!(env!("WRIT_FILTER_PATH"));

/// Host functions of the proxy-wasm ABI 0.2.1 (module `env`), as proxy-wasm-cpp-host exports them.
pub const ABI_FUNCTIONS: [&str; 43] = [
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_status",
    "proxy_set_property",
    "proxy_get_property",
    "proxy_send_local_response",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_get_header_map_value",
    "proxy_add_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_size",
    "proxy_get_buffer_status",
    "proxy_get_buffer_bytes",
    "proxy_set_buffer_bytes",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_close",
    "proxy_grpc_cancel",
    "proxy_grpc_send",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_current_time_nanoseconds",
    "proxy_define_metric",
    "proxy_increment_metric",
    "proxy_record_metric",
    "proxy_get_metric",
    "proxy_set_effective_context",
    "proxy_done",
    "proxy_call_foreign_function",
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_get_configuration",
    "proxy_continue_request",
    "proxy_continue_response",
    "proxy_clear_route_cache",
];

/// The WASI preview-1 functions Envoy (proxy-wasm-cpp-host) provides; nothing else.
pub const ENVOY_WASI: [&str; 15] = [
    "fd_write",
    "fd_read",
    "fd_seek",
    "fd_close",
    "fd_fdstat_get",
    "environ_get",
    "environ_sizes_get",
    "args_get",
    "args_sizes_get",
    "clock_time_get",
    "random_get",
    "proc_exit",
    "path_open",
    "fd_prestat_get",
    "fd_prestat_dir_name",
];

/// A failure of the harness or of the module (a trap), with what happened.
#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub(crate) fn err(context: &str) -> impl Fn(wasmtime::Error) -> Error + '_ {
    move |e| Error(format!("{context}: {e:?}"))
}

/// One log line the filter wrote (`proxy_log`, or WASI `fd_write` to stdout/stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// proxy-wasm levels: 0 trace … 5 critical; WASI stdout is 2 (info), stderr 4 (error).
    pub level: i32,
    pub message: String,
}

/// A local reply the filter sent (`proxy_send_local_response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub details: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl LocalReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A downstream request: headers (pseudo-headers included) and the properties the proxy
/// exposes for it (`["connection", "uri_san_peer_certificate"]` → bytes).
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    pub headers: Vec<(String, Vec<u8>)>,
    pub properties: BTreeMap<Vec<String>, Vec<u8>>,
}

impl HttpRequest {
    pub fn new(method: &str, path: &str) -> HttpRequest {
        HttpRequest::default()
            .header(":method", method)
            .header(":path", path)
            .header(":authority", "upstream.local")
            .header(":scheme", "https")
    }

    pub fn header(mut self, name: &str, value: &str) -> HttpRequest {
        self.headers.push((name.to_ascii_lowercase(), value.as_bytes().to_vec()));
        self
    }

    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> HttpRequest {
        self.headers.push((name.to_ascii_lowercase(), value.to_vec()));
        self
    }

    pub fn property(mut self, path: &[&str], value: &[u8]) -> HttpRequest {
        self.properties.insert(path.iter().map(|s| s.to_string()).collect(), value.to_vec());
        self
    }

    /// The downstream connection as Envoy describes an mTLS peer it validated.
    pub fn mtls_peer(self, uri_san: &str, sha256_hex: &str) -> HttpRequest {
        self.property(&["connection", "mtls"], &[1])
            .property(&["connection", "uri_san_peer_certificate"], uri_san.as_bytes())
            .property(&["connection", "sha256_peer_certificate_digest"], sha256_hex.as_bytes())
    }
}

/// An HTTP callout the filter dispatched (`proxy_http_call`), waiting for an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: u32,
}

impl HttpCall {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// `proxy_on_request_headers`' answer: 0 continue, 1 pause.
    pub action: i32,
    pub local_reply: Option<LocalReply>,
    /// The request headers after the filter (what goes upstream when it continues).
    pub headers: Vec<(String, Vec<u8>)>,
}

impl HttpResponse {
    pub fn continued(&self) -> bool {
        self.action == 0 && self.local_reply.is_none()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// A header map: lower-case names, raw values, in order.
pub type Headers = Vec<(String, Vec<u8>)>;
