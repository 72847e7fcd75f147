//! The operating system's CSPRNG, the only source of randomness jeton uses (keys, salts, nonces,
//! ids, generated secrets).

use crate::{Error, Result};

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf)
        .map_err(|e| Error::Other(format!("the system random generator failed: {e}")))
}

/// Random bytes for ids (vault, entry, device, file names).
pub fn random_id<const N: usize>() -> Result<[u8; N]> {
    let mut id = [0u8; N];
    fill_random(&mut id)?;
    Ok(id)
}
