//! WASI preview 1 as Envoy provides it (proxy-wasm-cpp-host's subset): stdout and stderr
//! become log lines, the clock is the proxy's, randomness is a fixed stream (reproducible
//! runs), and there are no files.

use crate::LogLine;
use crate::memory::{read, write, write_u32};
use crate::vm::Host;
use wasmtime::{Caller, Linker};

/// WASI errno values used here.
mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const INVAL: i32 = 28;
    pub const NOTSUP: i32 = 58;
}

pub(crate) fn add_wasi(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
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
