//! The proxy-wasm ABI 0.2.1 host functions (module `env`) the filter calls, by family:
//! logging and time, buffers, header maps, properties, HTTP callouts, local replies. The
//! rest of the ABI is linked as traps (see `Vm::start`).

use crate::memory::{deserialize_map, give, read, serialize_map, text, write, write_u32};
use crate::vm::Host;
use crate::{HttpCall, LocalReply, LogLine};
use wasmtime::{Caller, Linker};

/// proxy-wasm `WasmResult` codes used here.
pub(crate) mod status {
    pub const OK: i32 = 0;
    pub const NOT_FOUND: i32 = 1;
    pub const BAD_ARGUMENT: i32 = 2;
    pub const INVALID_MEMORY_ACCESS: i32 = 6;
}

const MAP_REQUEST_HEADERS: i32 = 0;
const MAP_HTTP_CALL_RESPONSE_HEADERS: i32 = 6;
const BUFFER_HTTP_CALL_RESPONSE_BODY: i32 = 4;
const BUFFER_VM_CONFIGURATION: i32 = 6;
const BUFFER_PLUGIN_CONFIGURATION: i32 = 7;

/// The header map `map` of the current stream or callout answer.
fn header_map(host: &Host, map: i32) -> Option<&[(String, Vec<u8>)]> {
    match map {
        MAP_REQUEST_HEADERS => Some(&host.headers),
        MAP_HTTP_CALL_RESPONSE_HEADERS => host.call_response.as_ref().map(|(h, _)| h.as_slice()),
        _ => None,
    }
}

pub(crate) fn add_abi(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    add_logging_time_and_context(linker)?;
    add_buffers(linker)?;
    add_header_maps(linker)?;
    add_properties(linker)?;
    add_http_callouts(linker)?;
    add_local_replies(linker)?;
    Ok(())
}

/// Logging, the proxy's clock, tick periods, and context bookkeeping.
fn add_logging_time_and_context(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
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
    Ok(())
}

/// Buffers: the VM and plugin configuration, a callout answer's body.
fn add_buffers(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
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
    Ok(())
}

/// Header maps: the request's headers (read, set, add, replace, remove) and a callout answer's.
fn add_header_maps(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
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
    Ok(())
}

/// Properties: NUL-separated paths to what the proxy knows of the stream (the mTLS peer…).
fn add_properties(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
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
    Ok(())
}

/// HTTP callouts (`proxy_http_call`), answered later by `Vm::respond`.
fn add_http_callouts(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
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
    Ok(())
}

/// Local replies: the filter answers the request itself.
fn add_local_replies(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
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
