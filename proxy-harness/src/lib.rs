//! A proxy-wasm host on wasmtime: loads `writ-proxy.wasm` and drives it through the calls
//! Envoy makes, with the host functions of the proxy-wasm ABI 0.2.1 the filter imports, and
//! only the WASI preview-1 functions Envoy provides (proxy-wasm-cpp-host's list). A module
//! that imports anything else fails to load here, as it would in Envoy.
//!
//! Lifecycle (as proxy-wasm-cpp-host drives it): `_initialize`; root context
//! `proxy_on_context_create(root, 0)`, `proxy_on_vm_start`, `proxy_on_configure`; per HTTP
//! stream `proxy_on_context_create(id, root)`, `proxy_on_request_headers`, then
//! `proxy_on_done`, `proxy_on_log`, `proxy_on_delete`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wasmtime::{Caller, Engine, Extern, Instance, Linker, Memory, Module, Store, TypedFunc};

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

/// proxy-wasm `WasmResult` codes used here.
mod status {
    pub const OK: i32 = 0;
    pub const NOT_FOUND: i32 = 1;
    pub const BAD_ARGUMENT: i32 = 2;
    pub const INVALID_MEMORY_ACCESS: i32 = 6;
}

/// WASI errno values used here.
mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const INVAL: i32 = 28;
    pub const NOTSUP: i32 = 58;
}

const MAP_REQUEST_HEADERS: i32 = 0;
const MAP_HTTP_CALL_RESPONSE_HEADERS: i32 = 6;
const BUFFER_HTTP_CALL_RESPONSE_BODY: i32 = 4;
const BUFFER_VM_CONFIGURATION: i32 = 6;
const BUFFER_PLUGIN_CONFIGURATION: i32 = 7;

/// A failure of the harness or of the module (a trap), with what happened.
#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn err(context: &str) -> impl Fn(wasmtime::Error) -> Error + '_ {
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

/// The host's side of one VM.
#[derive(Default)]
struct Host {
    vm_configuration: Vec<u8>,
    plugin_configuration: Vec<u8>,
    now: Duration,
    log_level: i32,
    logs: Vec<LogLine>,
    tick_period_ms: u32,
    /// The stream being handled.
    headers: Vec<(String, Vec<u8>)>,
    properties: BTreeMap<Vec<String>, Vec<u8>>,
    local_reply: Option<LocalReply>,
    random: u64,
    /// The guest's memory and allocator, resolved once after instantiation (as
    /// proxy-wasm-cpp-host does), not looked up by name on every call.
    memory: Option<Memory>,
    allocate: Option<TypedFunc<i32, i32>>,
    /// Callouts dispatched and not yet answered; the answer being delivered.
    calls: Vec<HttpCall>,
    next_token: u32,
    call_response: Option<(Headers, Vec<u8>)>,
}

/// The compiled filter, shared by VMs (as Envoy shares it across worker threads).
#[derive(Clone)]
pub struct FilterModule {
    engine: Engine,
    module: Module,
}

impl FilterModule {
    pub fn new(wasm: &[u8]) -> Result<FilterModule, Error> {
        let engine = Engine::default();
        let module = Module::new(&engine, wasm).map_err(err("compiling the filter"))?;
        Ok(FilterModule { engine, module })
    }

    /// The built filter.
    pub fn built() -> Result<FilterModule, Error> {
        FilterModule::new(FILTER_WASM)
    }

    /// Every `(module, name)` the filter imports.
    pub fn imports(&self) -> Vec<(String, String)> {
        self.module.imports().map(|i| (i.module().to_string(), i.name().to_string())).collect()
    }

    /// Every name the filter exports.
    pub fn exports(&self) -> Vec<String> {
        self.module.exports().map(|e| e.name().to_string()).collect()
    }

    /// Imports a proxy-wasm host would not provide: anything but the ABI in `env` and Envoy's
    /// WASI subset.
    pub fn foreign_imports(&self) -> Vec<String> {
        self.imports()
            .into_iter()
            .filter(|(m, n)| match m.as_str() {
                "env" => !ABI_FUNCTIONS.contains(&n.as_str()),
                "wasi_snapshot_preview1" | "wasi_unstable" => !ENVOY_WASI.contains(&n.as_str()),
                _ => true,
            })
            .map(|(m, n)| format!("{m}::{n}"))
            .collect()
    }
}

/// Typed exports the lifecycle calls.
struct Exports {
    memory: Memory,
    on_context_create: TypedFunc<(i32, i32), ()>,
    on_request_headers: TypedFunc<(i32, i32, i32), i32>,
    on_done: TypedFunc<i32, i32>,
    on_log: TypedFunc<i32, ()>,
    on_delete: TypedFunc<i32, ()>,
}

/// One VM running the filter: configured once, then any number of requests.
pub struct Vm {
    store: Store<Host>,
    instance: Instance,
    exports: Exports,
    root: i32,
    next_context: i32,
    configured: bool,
}

const ROOT_CONTEXT: i32 = 1;

impl Vm {
    /// Instantiate, start and configure the filter with `plugin_configuration` at `now`.
    /// A refused configuration is not an error: see [`Vm::configured`] and the logs.
    pub fn start(module: &FilterModule, plugin_configuration: &[u8], now: SystemTime) -> Result<Vm, Error> {
        let mut linker: Linker<Host> = Linker::new(&module.engine);
        add_abi(&mut linker).map_err(err("linking the proxy-wasm ABI"))?;
        add_wasi(&mut linker).map_err(err("linking WASI"))?;
        let foreign = module.foreign_imports();
        if !foreign.is_empty() {
            return Err(Error(format!(
                "the filter imports what a proxy-wasm host does not provide: {}",
                foreign.join(", ")
            )));
        }
        // ABI functions the filter imports but never calls in these flows (gRPC, queues…):
        // calling one traps, which a test would see.
        linker.define_unknown_imports_as_traps(&module.module).map_err(err("linking"))?;
        let host = Host {
            plugin_configuration: plugin_configuration.to_vec(),
            now: now.duration_since(UNIX_EPOCH).unwrap_or_default(),
            log_level: 0,
            random: 0x9e37_79b9_7f4a_7c15,
            ..Host::default()
        };
        let mut store = Store::new(&module.engine, host);
        let instance = linker.instantiate(&mut store, &module.module).map_err(err("instantiating the filter"))?;
        let exports = Exports::of(&instance, &mut store)?;
        let allocate = instance
            .get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate")
            .or_else(|_| instance.get_typed_func::<i32, i32>(&mut store, "malloc"))
            .map_err(err("the filter exports no `proxy_on_memory_allocate`"))?;
        store.data_mut().memory = Some(exports.memory);
        store.data_mut().allocate = Some(allocate);
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            init.call(&mut store, ()).map_err(err("_initialize"))?;
        }
        if instance.get_func(&mut store, "proxy_abi_version_0_2_1").is_none() {
            return Err(Error("the filter does not export `proxy_abi_version_0_2_1`".into()));
        }
        exports.on_context_create.call(&mut store, (ROOT_CONTEXT, 0)).map_err(err("proxy_on_context_create (root)"))?;
        let vm_start = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, "proxy_on_vm_start")
            .map_err(err("proxy_on_vm_start"))?;
        let vm_size = i32::try_from(store.data().vm_configuration.len()).unwrap_or(i32::MAX);
        let started = vm_start.call(&mut store, (ROOT_CONTEXT, vm_size)).map_err(err("proxy_on_vm_start"))?;
        let configure = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, "proxy_on_configure")
            .map_err(err("proxy_on_configure"))?;
        let size = i32::try_from(plugin_configuration.len()).unwrap_or(i32::MAX);
        let configured =
            started != 0 && configure.call(&mut store, (ROOT_CONTEXT, size)).map_err(err("proxy_on_configure"))? != 0;
        Ok(Vm { store, instance, exports, root: ROOT_CONTEXT, next_context: ROOT_CONTEXT + 1, configured })
    }

    /// Whether `proxy_on_configure` accepted the configuration.
    pub fn configured(&self) -> bool {
        self.configured
    }

    /// The proxy's clock, from now on.
    pub fn set_time(&mut self, now: SystemTime) {
        self.store.data_mut().now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    }

    /// Everything logged so far, and clear it.
    pub fn take_logs(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.store.data_mut().logs)
    }

    /// The tick period the filter asked for (0: none).
    pub fn tick_period_ms(&self) -> u32 {
        self.store.data().tick_period_ms
    }

    /// One timer tick of the root context (`proxy_on_tick`), as the proxy fires every period.
    pub fn tick(&mut self) -> Result<(), Error> {
        let f =
            self.instance.get_typed_func::<i32, ()>(&mut self.store, "proxy_on_tick").map_err(err("proxy_on_tick"))?;
        f.call(&mut self.store, self.root).map_err(err("proxy_on_tick"))
    }

    /// The callouts dispatched since the last call, and forget them here (answer each with
    /// [`Vm::respond`]).
    pub fn take_http_calls(&mut self) -> Vec<HttpCall> {
        std::mem::take(&mut self.store.data_mut().calls)
    }

    /// Deliver the answer to callout `token` (`proxy_on_http_call_response`); a timeout is an
    /// answer with no headers and no body.
    pub fn respond(&mut self, token: u32, headers: Headers, body: Vec<u8>) -> Result<(), Error> {
        let (n, size) =
            (i32::try_from(headers.len()).unwrap_or(i32::MAX), i32::try_from(body.len()).unwrap_or(i32::MAX));
        self.store.data_mut().call_response = Some((headers, body));
        let f = self
            .instance
            .get_typed_func::<(i32, i32, i32, i32, i32), ()>(&mut self.store, "proxy_on_http_call_response")
            .map_err(err("proxy_on_http_call_response"))?;
        let r =
            f.call(&mut self.store, (self.root, token as i32, n, size, 0)).map_err(err("proxy_on_http_call_response"));
        self.store.data_mut().call_response = None;
        r
    }

    /// One HTTP stream: request headers (end of stream), then done, log, delete.
    pub fn request(&mut self, req: &HttpRequest) -> Result<HttpResponse, Error> {
        let id = self.next_context;
        self.next_context = self.next_context.wrapping_add(1).max(ROOT_CONTEXT + 1);
        {
            let h = self.store.data_mut();
            h.headers.clone_from(&req.headers);
            h.properties.clone_from(&req.properties);
            h.local_reply = None;
        }
        let e = &self.exports;
        e.on_context_create.call(&mut self.store, (id, self.root)).map_err(err("proxy_on_context_create"))?;
        let n = i32::try_from(req.headers.len()).unwrap_or(i32::MAX);
        let action = e.on_request_headers.call(&mut self.store, (id, n, 1)).map_err(err("proxy_on_request_headers"))?;
        e.on_done.call(&mut self.store, id).map_err(err("proxy_on_done"))?;
        e.on_log.call(&mut self.store, id).map_err(err("proxy_on_log"))?;
        e.on_delete.call(&mut self.store, id).map_err(err("proxy_on_delete"))?;
        let h = self.store.data_mut();
        Ok(HttpResponse { action, local_reply: h.local_reply.take(), headers: std::mem::take(&mut h.headers) })
    }

    /// Bytes of linear memory the VM holds now.
    pub fn memory_bytes(&self) -> usize {
        self.exports.memory.data_size(&self.store)
    }
}

impl Exports {
    fn of(instance: &Instance, store: &mut Store<Host>) -> Result<Exports, Error> {
        let memory =
            instance.get_memory(&mut *store, "memory").ok_or_else(|| Error("the filter exports no `memory`".into()))?;
        Ok(Exports {
            memory,
            on_context_create: instance
                .get_typed_func(&mut *store, "proxy_on_context_create")
                .map_err(err("proxy_on_context_create"))?,
            on_request_headers: instance
                .get_typed_func(&mut *store, "proxy_on_request_headers")
                .map_err(err("proxy_on_request_headers"))?,
            on_done: instance.get_typed_func(&mut *store, "proxy_on_done").map_err(err("proxy_on_done"))?,
            on_log: instance.get_typed_func(&mut *store, "proxy_on_log").map_err(err("proxy_on_log"))?,
            on_delete: instance.get_typed_func(&mut *store, "proxy_on_delete").map_err(err("proxy_on_delete"))?,
        })
    }
}

// ---- guest memory ----

fn memory(caller: &mut Caller<'_, Host>) -> Option<Memory> {
    match caller.data().memory {
        Some(m) => Some(m),
        None => match caller.get_export("memory") {
            Some(Extern::Memory(m)) => Some(m),
            _ => None,
        },
    }
}

fn read(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let m = memory(caller)?;
    // Addresses and sizes are wasm32 words: unsigned.
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    m.data(&*caller).get(start..start.checked_add(len)?).map(<[u8]>::to_vec)
}

fn write(caller: &mut Caller<'_, Host>, ptr: i32, bytes: &[u8]) -> Option<()> {
    let m = memory(caller)?;
    let start = ptr as u32 as usize;
    m.data_mut(&mut *caller).get_mut(start..start.checked_add(bytes.len())?)?.copy_from_slice(bytes);
    Some(())
}

fn write_u32(caller: &mut Caller<'_, Host>, ptr: i32, v: u32) -> Option<()> {
    write(caller, ptr, &v.to_le_bytes())
}

/// Copy `bytes` into memory the guest allocates (`proxy_on_memory_allocate`, as the host
/// does for every returned buffer) and store its address and size at `ret_ptr`/`ret_size`.
fn give(caller: &mut Caller<'_, Host>, bytes: &[u8], ret_ptr: i32, ret_size: i32) -> wasmtime::Result<i32> {
    let size = i32::try_from(bytes.len())?;
    let Some(alloc) = caller.data().allocate.clone() else {
        wasmtime::bail!("the filter's allocator is not resolved yet")
    };
    let ptr = alloc.call(&mut *caller, size)?;
    if ptr == 0 && size != 0 {
        return Ok(status::INVALID_MEMORY_ACCESS);
    }
    let ok = write(caller, ptr, bytes)
        .and_then(|()| write_u32(caller, ret_ptr, ptr as u32))
        .and_then(|()| write_u32(caller, ret_size, size as u32));
    Ok(if ok.is_some() { status::OK } else { status::INVALID_MEMORY_ACCESS })
}

/// The proxy-wasm map encoding: count, (key length, value length)…, then each key and value
/// NUL-terminated.
fn serialize_map(pairs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

fn deserialize_map(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let word = |at: usize| -> Option<usize> {
        bytes.get(at..at + 4).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(|b| u32::from_le_bytes(b) as usize)
    };
    let n = word(0)?;
    let mut p = 4usize.checked_add(n.checked_mul(8)?)?;
    let mut out = Vec::with_capacity(n.min(1024));
    for i in 0..n {
        let (kl, vl) = (word(4 + i * 8)?, word(8 + i * 8)?);
        let k = bytes.get(p..p.checked_add(kl)?)?;
        p += kl + 1;
        let v = bytes.get(p..p.checked_add(vl)?)?;
        p += vl + 1;
        out.push((String::from_utf8(k.to_vec()).ok()?, v.to_vec()));
    }
    Some(out)
}

fn text(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> Option<String> {
    read(caller, ptr, len).and_then(|b| String::from_utf8(b).ok())
}

/// The header map `map` of the current stream or callout answer.
fn header_map(host: &Host, map: i32) -> Option<&[(String, Vec<u8>)]> {
    match map {
        MAP_REQUEST_HEADERS => Some(&host.headers),
        MAP_HTTP_CALL_RESPONSE_HEADERS => host.call_response.as_ref().map(|(h, _)| h.as_slice()),
        _ => None,
    }
}

// ---- the ABI (module `env`) ----

fn add_abi(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_log", |mut c: Caller<'_, Host>, level: i32, ptr: i32, len: i32| -> i32 {
        match text(&mut c, ptr, len) {
            Some(message) => {
                c.data_mut().logs.push(LogLine { level, message });
                status::OK
            }
            None => status::INVALID_MEMORY_ACCESS,
        }
    })?;
    linker.func_wrap("env", "proxy_get_log_level", |mut c: Caller<'_, Host>, ret: i32| -> i32 {
        let level = c.data().log_level as u32;
        write_u32(&mut c, ret, level).map_or(status::INVALID_MEMORY_ACCESS, |()| status::OK)
    })?;
    linker.func_wrap("env", "proxy_get_current_time_nanoseconds", |mut c: Caller<'_, Host>, ret: i32| -> i32 {
        let nanos = u64::try_from(c.data().now.as_nanos()).unwrap_or(u64::MAX);
        write(&mut c, ret, &nanos.to_le_bytes()).map_or(status::INVALID_MEMORY_ACCESS, |()| status::OK)
    })?;
    linker.func_wrap("env", "proxy_set_tick_period_milliseconds", |mut c: Caller<'_, Host>, period: i32| -> i32 {
        c.data_mut().tick_period_ms = period as u32;
        status::OK
    })?;
    linker
        .func_wrap("env", "proxy_set_effective_context", |_c: Caller<'_, Host>, _context: i32| -> i32 { status::OK })?;
    linker.func_wrap("env", "proxy_done", |_c: Caller<'_, Host>| -> i32 { status::OK })?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Caller<'_, Host>,
         kind: i32,
         start: i32,
         max: i32,
         ret_ptr: i32,
         ret_size: i32|
         -> wasmtime::Result<i32> {
            let buffer = match kind {
                BUFFER_HTTP_CALL_RESPONSE_BODY => match &c.data().call_response {
                    Some((_, body)) => body.clone(),
                    None => return Ok(status::NOT_FOUND),
                },
                BUFFER_VM_CONFIGURATION => c.data().vm_configuration.clone(),
                BUFFER_PLUGIN_CONFIGURATION => c.data().plugin_configuration.clone(),
                _ => return Ok(status::NOT_FOUND),
            };
            // Words are unsigned: the SDK asks for `usize::MAX` bytes to mean "all".
            let (start, max) = (start as u32 as usize, max as u32 as usize);
            if start > buffer.len() {
                return Ok(status::BAD_ARGUMENT);
            }
            let end = start.saturating_add(max).min(buffer.len());
            if start == end {
                return Ok(status::NOT_FOUND);
            }
            give(&mut c, &buffer[start..end], ret_ptr, ret_size)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: Caller<'_, Host>, map: i32, ret_ptr: i32, ret_size: i32| -> wasmtime::Result<i32> {
            let Some(pairs) = header_map(c.data(), map) else { return Ok(status::NOT_FOUND) };
            let bytes = serialize_map(pairs);
            give(&mut c, &bytes, ret_ptr, ret_size)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: Caller<'_, Host>, map: i32, ptr: i32, len: i32| -> i32 {
            if map != MAP_REQUEST_HEADERS {
                return status::NOT_FOUND;
            }
            match read(&mut c, ptr, len).and_then(|b| deserialize_map(&b)) {
                Some(pairs) => {
                    c.data_mut().headers = pairs;
                    status::OK
                }
                None => status::BAD_ARGUMENT,
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: Caller<'_, Host>,
         map: i32,
         key_ptr: i32,
         key_len: i32,
         ret_ptr: i32,
         ret_size: i32|
         -> wasmtime::Result<i32> {
            let Some(key) = text(&mut c, key_ptr, key_len) else { return Ok(status::INVALID_MEMORY_ACCESS) };
            let Some(pairs) = header_map(c.data(), map) else { return Ok(status::NOT_FOUND) };
            // Envoy's header maps are case-insensitive; the first value is returned.
            let value = pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(&key)).map(|(_, v)| v.clone());
            match value {
                Some(v) => give(&mut c, &v, ret_ptr, ret_size),
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    // Replace drops the key's other values first; add appends another value.
    for (name, replace) in [("proxy_replace_header_map_value", true), ("proxy_add_header_map_value", false)] {
        linker.func_wrap(
            "env",
            name,
            move |mut c: Caller<'_, Host>, map: i32, key_ptr: i32, key_len: i32, val_ptr: i32, val_len: i32| -> i32 {
                let (Some(key), Some(value)) = (text(&mut c, key_ptr, key_len), read(&mut c, val_ptr, val_len)) else {
                    return status::INVALID_MEMORY_ACCESS;
                };
                if map != MAP_REQUEST_HEADERS {
                    return status::NOT_FOUND;
                }
                let key = key.to_ascii_lowercase();
                let headers = &mut c.data_mut().headers;
                if replace {
                    headers.retain(|(k, _)| *k != key);
                }
                headers.push((key, value));
                status::OK
            },
        )?;
    }
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: Caller<'_, Host>, map: i32, key_ptr: i32, key_len: i32| -> i32 {
            let Some(key) = text(&mut c, key_ptr, key_len) else { return status::INVALID_MEMORY_ACCESS };
            if map != MAP_REQUEST_HEADERS {
                return status::NOT_FOUND;
            }
            c.data_mut().headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
            status::OK
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: Caller<'_, Host>, path_ptr: i32, path_len: i32, ret_ptr: i32, ret_size: i32| -> wasmtime::Result<i32> {
            let Some(path) = read(&mut c, path_ptr, path_len) else { return Ok(status::INVALID_MEMORY_ACCESS) };
            // Segments are NUL-separated.
            let Ok(path) =
                path.split(|b| *b == 0).map(|s| String::from_utf8(s.to_vec())).collect::<Result<Vec<_>, _>>()
            else {
                return Ok(status::BAD_ARGUMENT);
            };
            match c.data().properties.get(&path).cloned() {
                Some(v) => give(&mut c, &v, ret_ptr, ret_size),
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: Caller<'_, Host>,
         upstream_ptr: i32,
         upstream_len: i32,
         headers_ptr: i32,
         headers_len: i32,
         body_ptr: i32,
         body_len: i32,
         trailers_ptr: i32,
         trailers_len: i32,
         timeout_ms: i32,
         ret_token: i32|
         -> i32 {
            let Some(cluster) = text(&mut c, upstream_ptr, upstream_len) else { return status::INVALID_MEMORY_ACCESS };
            let Some(headers) = read(&mut c, headers_ptr, headers_len).and_then(|b| deserialize_map(&b)) else {
                return status::BAD_ARGUMENT;
            };
            let Some(body) = read(&mut c, body_ptr, body_len) else { return status::INVALID_MEMORY_ACCESS };
            if read(&mut c, trailers_ptr, trailers_len).and_then(|b| deserialize_map(&b)).is_none() {
                return status::BAD_ARGUMENT;
            }
            // Envoy refuses a callout without the required pseudo-headers.
            if ![":method", ":path", ":authority"].iter().all(|h| headers.iter().any(|(k, _)| k == h)) {
                return status::BAD_ARGUMENT;
            }
            let headers = headers.into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned())).collect();
            let token = {
                let h = c.data_mut();
                h.next_token += 1;
                h.next_token
            };
            if write_u32(&mut c, ret_token, token).is_none() {
                return status::INVALID_MEMORY_ACCESS;
            }
            c.data_mut().calls.push(HttpCall { token, cluster, headers, body, timeout_ms: timeout_ms as u32 });
            status::OK
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: Caller<'_, Host>,
         code: i32,
         details_ptr: i32,
         details_len: i32,
         body_ptr: i32,
         body_len: i32,
         headers_ptr: i32,
         headers_len: i32,
         _grpc_status: i32|
         -> i32 {
            let details = text(&mut c, details_ptr, details_len).unwrap_or_default();
            let Some(body) = read(&mut c, body_ptr, body_len) else { return status::INVALID_MEMORY_ACCESS };
            let Some(headers) = read(&mut c, headers_ptr, headers_len).and_then(|b| deserialize_map(&b)) else {
                return status::BAD_ARGUMENT;
            };
            let headers = headers.into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned())).collect();
            c.data_mut().local_reply = Some(LocalReply { status: code as u32, details, headers, body });
            status::OK
        },
    )?;
    Ok(())
}

// ---- WASI preview 1, Envoy's subset ----

fn add_wasi(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    const W: &str = "wasi_snapshot_preview1";
    linker.func_wrap(W, "fd_write", |mut c: Caller<'_, Host>, fd: i32, iovs: i32, n: i32, ret: i32| -> i32 {
        if fd != 1 && fd != 2 {
            return errno::BADF;
        }
        let mut bytes = Vec::new();
        for i in 0..n {
            let Some(iov) = read(&mut c, iovs.wrapping_add(i * 8), 8) else { return errno::INVAL };
            let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
            let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
            let Some(chunk) = read(&mut c, ptr, len) else { return errno::INVAL };
            bytes.extend_from_slice(&chunk);
        }
        let written = bytes.len() as u32;
        let level = if fd == 1 { 2 } else { 4 };
        c.data_mut().logs.push(LogLine { level, message: String::from_utf8_lossy(&bytes).trim_end().to_string() });
        write_u32(&mut c, ret, written).map_or(errno::INVAL, |()| errno::SUCCESS)
    })?;
    linker.func_wrap(
        W,
        "clock_time_get",
        |mut c: Caller<'_, Host>, _clock: i32, _precision: i64, ret: i32| -> i32 {
            let nanos = u64::try_from(c.data().now.as_nanos()).unwrap_or(u64::MAX);
            write(&mut c, ret, &nanos.to_le_bytes()).map_or(errno::INVAL, |()| errno::SUCCESS)
        },
    )?;
    linker.func_wrap(W, "random_get", |mut c: Caller<'_, Host>, buf: i32, len: i32| -> i32 {
        // A fixed xorshift stream: reproducible runs (Envoy gives real entropy).
        let mut bytes = vec![0u8; (len as u32 as usize).min(1 << 20)];
        let mut x = c.data().random;
        for b in &mut bytes {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        c.data_mut().random = x;
        write(&mut c, buf, &bytes).map_or(errno::INVAL, |()| errno::SUCCESS)
    })?;
    for name in ["environ_sizes_get", "args_sizes_get"] {
        linker.func_wrap(W, name, |mut c: Caller<'_, Host>, count: i32, size: i32| -> i32 {
            write_u32(&mut c, count, 0)
                .and_then(|()| write_u32(&mut c, size, 0))
                .map_or(errno::INVAL, |()| errno::SUCCESS)
        })?;
    }
    for name in ["environ_get", "args_get"] {
        linker.func_wrap(W, name, |_c: Caller<'_, Host>, _a: i32, _b: i32| -> i32 { errno::SUCCESS })?;
    }
    linker.func_wrap(W, "proc_exit", |_c: Caller<'_, Host>, code: i32| -> wasmtime::Result<()> {
        wasmtime::bail!("the filter called proc_exit({code})")
    })?;
    // No files: what Envoy answers too.
    linker.func_wrap(W, "fd_close", |_c: Caller<'_, Host>, _fd: i32| -> i32 { errno::BADF })?;
    linker.func_wrap(W, "fd_fdstat_get", |_c: Caller<'_, Host>, _fd: i32, _ret: i32| -> i32 { errno::BADF })?;
    linker.func_wrap(W, "fd_prestat_get", |_c: Caller<'_, Host>, _fd: i32, _ret: i32| -> i32 { errno::BADF })?;
    linker.func_wrap(W, "fd_prestat_dir_name", |_c: Caller<'_, Host>, _fd: i32, _p: i32, _l: i32| -> i32 {
        errno::NOTSUP
    })?;
    linker.func_wrap(W, "fd_read", |_c: Caller<'_, Host>, _fd: i32, _iovs: i32, _n: i32, _ret: i32| -> i32 {
        errno::BADF
    })?;
    linker.func_wrap(W, "fd_seek", |_c: Caller<'_, Host>, _fd: i32, _off: i64, _whence: i32, _ret: i32| -> i32 {
        errno::BADF
    })?;
    linker.func_wrap(
        W,
        "path_open",
        |_c: Caller<'_, Host>,
         _fd: i32,
         _flags: i32,
         _p: i32,
         _l: i32,
         _o: i32,
         _rb: i64,
         _ri: i64,
         _fl: i32,
         _ret: i32|
         -> i32 { errno::NOTSUP },
    )?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn maps_round_trip_in_the_abi_encoding() {
        let pairs = vec![(":path".to_string(), b"/a".to_vec()), ("x".to_string(), Vec::new())];
        let bytes = serialize_map(&pairs);
        assert_eq!(&bytes[..4], &2u32.to_le_bytes());
        assert_eq!(deserialize_map(&bytes).unwrap(), pairs);
        assert!(deserialize_map(&bytes[..bytes.len() - 3]).is_none());
        assert!(deserialize_map(&[9, 0, 0, 0]).is_none());
    }
}
