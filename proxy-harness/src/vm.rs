//! The compiled filter, and one VM running it through the lifecycle proxy-wasm-cpp-host
//! drives: `_initialize`, the root context's start and configuration, then per HTTP stream
//! context creation, request headers, done, log and delete; ticks and callout answers.

use crate::abi::add_abi;
use crate::wasi::add_wasi;
use crate::{
    ABI_FUNCTIONS, ENVOY_WASI, Error, FILTER_WASM, Headers, HttpCall, HttpRequest, HttpResponse, LocalReply, LogLine,
    err,
};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wasmtime::{Engine, Instance, Linker, Memory, Module, Store, TypedFunc};

/// The host's side of one VM.
#[derive(Default)]
pub(crate) struct Host {
    pub(crate) vm_configuration: Vec<u8>,
    pub(crate) plugin_configuration: Vec<u8>,
    pub(crate) now: Duration,
    pub(crate) log_level: i32,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) tick_period_ms: u32,
    /// The stream being handled.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) properties: BTreeMap<Vec<String>, Vec<u8>>,
    pub(crate) local_reply: Option<LocalReply>,
    pub(crate) random: u64,
    /// The guest's memory and allocator, resolved once after instantiation (as
    /// proxy-wasm-cpp-host does), not looked up by name on every call.
    pub(crate) memory: Option<Memory>,
    pub(crate) allocate: Option<TypedFunc<i32, i32>>,
    /// Callouts dispatched and not yet answered; the answer being delivered.
    pub(crate) calls: Vec<HttpCall>,
    pub(crate) next_token: u32,
    pub(crate) call_response: Option<(Headers, Vec<u8>)>,
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
