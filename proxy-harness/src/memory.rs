//! Guest memory as the host functions see it: reads and writes bounded by the memory's size,
//! buffers handed back through the guest's allocator, and the ABI's map encoding.

use crate::abi::status;
use crate::vm::Host;
use wasmtime::{Caller, Extern, Memory};

pub(crate) fn memory(caller: &mut Caller<'_, Host>) -> Option<Memory> {
    match caller.data().memory {
        Some(m) => Some(m),
        None => match caller.get_export("memory") {
            Some(Extern::Memory(m)) => Some(m),
            _ => None,
        },
    }
}

pub(crate) fn read(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let m = memory(caller)?;
    // Addresses and sizes are wasm32 words: unsigned.
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    m.data(&*caller).get(start..start.checked_add(len)?).map(<[u8]>::to_vec)
}

pub(crate) fn write(caller: &mut Caller<'_, Host>, ptr: i32, bytes: &[u8]) -> Option<()> {
    let m = memory(caller)?;
    let start = ptr as u32 as usize;
    m.data_mut(&mut *caller).get_mut(start..start.checked_add(bytes.len())?)?.copy_from_slice(bytes);
    Some(())
}

pub(crate) fn write_u32(caller: &mut Caller<'_, Host>, ptr: i32, v: u32) -> Option<()> {
    write(caller, ptr, &v.to_le_bytes())
}

/// Copy `bytes` into memory the guest allocates (`proxy_on_memory_allocate`, as the host
/// does for every returned buffer) and store its address and size at `ret_ptr`/`ret_size`.
pub(crate) fn give(caller: &mut Caller<'_, Host>, bytes: &[u8], ret_ptr: i32, ret_size: i32) -> wasmtime::Result<i32> {
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
pub fn serialize_map(pairs: &[(String, Vec<u8>)]) -> Vec<u8> {
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

/// A map in the proxy-wasm encoding; `None` when the bytes are not one.
pub fn deserialize_map(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
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

pub(crate) fn text(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> Option<String> {
    read(caller, ptr, len).and_then(|b| String::from_utf8(b).ok())
}
