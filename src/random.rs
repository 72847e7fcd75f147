//! The operating system's CSPRNG, the only source of randomness jeton uses (keys, salts, nonces,
//! ids, generated secrets).

use crate::{Error, Result};

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf)
        .map_err(|e| Error::Other(format!("the system random generator failed: {e}")))
}
