//! The clock and randomness of the Worker runtime, handed to the pure core as values.

use crate::http::AppError;

/// Milliseconds since the Unix epoch (`Date.now()`; `SystemTime` panics on wasm).
pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

/// `N` bytes from the runtime's CSPRNG (`crypto.getRandomValues`).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], AppError> {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf).map_err(|e| AppError::platform("random", e))?;
    Ok(buf)
}

/// Size of this isolate's wasm linear memory, in KiB.
pub fn wasm_memory_kib() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        (core::arch::wasm32::memory_size(0) as u64) * 64
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}
