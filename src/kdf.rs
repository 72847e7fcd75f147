//! Argon2id (RFC 9106) key derivation with its costs checked before they are paid.
//!
//! A vault file names its own KDF cost, so a hostile file could ask for 64 GiB or an hour of
//! work. [`KdfParams::check`] refuses anything outside [`BOUNDS`] before any memory is
//! allocated (compare rage's `ExcessiveWork`).

pub use crate::kdf_vector::Kernel;
use crate::kdf_vector::{self, Inputs, TAG_LEN};
use crate::secret::{Key, Passphrase};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Limits on KDF parameters read from a file or given to `init` (SPEC §3).
pub struct Bounds {
    /// Smallest and largest memory cost, in KiB.
    pub memory_kib: (u32, u32),
    /// Smallest and largest number of passes.
    pub iterations: (u32, u32),
    /// Smallest and largest degree of parallelism.
    pub lanes: (u32, u32),
    /// Shortest and longest salt, in bytes.
    pub salt_len: (usize, usize),
}

/// SPEC §3: memory 8 MiB..4 GiB, iterations 1..16, lanes 1..16, salt 16..64 bytes.
pub const BOUNDS: Bounds = Bounds {
    memory_kib: (8 * 1024, 4 * 1024 * 1024),
    iterations: (1, 16),
    lanes: (1, 16),
    salt_len: (16, 64),
};

/// RFC 9106 §4, second recommended option: 64 MiB, t=3. Below this `check` reports the vault.
pub const RFC9106_SECOND_MEMORY_KIB: u32 = 64 * 1024;
/// See [`RFC9106_SECOND_MEMORY_KIB`].
pub const RFC9106_SECOND_ITERATIONS: u32 = 3;

/// Length of a freshly drawn salt.
pub const SALT_LEN: usize = 32;

/// Argon2id cost parameters, as stored in a key slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes over memory.
    pub iterations: u32,
    /// Degree of parallelism.
    pub lanes: u32,
}

impl Default for KdfParams {
    /// SPEC §3 defaults: 256 MiB, 3 iterations, 4 lanes.
    fn default() -> Self {
        KdfParams {
            memory_kib: 256 * 1024,
            iterations: 3,
            lanes: 4,
        }
    }
}

impl KdfParams {
    /// Refuses parameters outside [`BOUNDS`] or above half of this machine's memory.
    pub fn check(&self, salt_len: usize) -> Result<()> {
        let b = &BOUNDS;
        let out = |what: String| Err(Error::Integrity(format!("refusing KDF parameters: {what}")));
        if !(b.memory_kib.0..=b.memory_kib.1).contains(&self.memory_kib) {
            return out(format!(
                "memory {} KiB is outside 8 MiB..4 GiB",
                self.memory_kib
            ));
        }
        if !(b.iterations.0..=b.iterations.1).contains(&self.iterations) {
            return out(format!("{} iterations is outside 1..16", self.iterations));
        }
        if !(b.lanes.0..=b.lanes.1).contains(&self.lanes) {
            return out(format!("{} lanes is outside 1..16", self.lanes));
        }
        if !(b.salt_len.0..=b.salt_len.1).contains(&salt_len) {
            return out(format!("a {salt_len}-byte salt is outside 16..64 bytes"));
        }
        if let Some(total_kib) = crate::os::total_memory_kib()
            && u64::from(self.memory_kib) > total_kib / 2
        {
            return out(format!(
                "memory {} KiB is more than half of this machine's {} KiB",
                self.memory_kib, total_kib
            ));
        }
        Ok(())
    }

    /// Same bounds, phrased as a usage error for parameters the user typed.
    pub fn check_user(&self) -> Result<()> {
        self.check(SALT_LEN)
            .map_err(|e| Error::Usage(e.to_string()))
    }

    /// True when the cost is under RFC 9106's second recommendation.
    pub fn is_weak(&self) -> bool {
        self.memory_kib < RFC9106_SECOND_MEMORY_KIB || self.iterations < RFC9106_SECOND_ITERATIONS
    }
}

/// Derives a 256-bit key from a passphrase. Checks the bounds first.
pub fn derive(passphrase: &Passphrase, salt: &[u8], params: &KdfParams) -> Result<Key> {
    derive_bytes(passphrase.expose_secret().as_bytes(), salt, params)
}

/// Derives a 256-bit key from raw secret bytes (a passphrase or a recovery key).
pub fn derive_bytes(secret: &[u8], salt: &[u8], params: &KdfParams) -> Result<Key> {
    derive_bytes_with(secret, salt, params, Kernel::fastest())
}

/// [`derive_bytes`] with the block function chosen: one of this crate's [`Kernel`]s, or `None`
/// for the `argon2` crate's. Every choice gives the same key; benchmarks compare them.
pub fn derive_bytes_with(
    secret: &[u8],
    salt: &[u8],
    params: &KdfParams,
    kernel: Option<Kernel>,
) -> Result<Key> {
    params.check(salt.len())?;
    let inputs = Inputs {
        memory_kib: params.memory_kib,
        iterations: params.iterations,
        lanes: params.lanes,
        password: secret,
        salt,
        secret: &[],
        associated: &[],
    };
    let mut out = Zeroizing::new([0u8; TAG_LEN]);
    hash_into(&inputs, kernel, &mut out)?;
    Ok(Key::from_bytes(*out))
}

/// Runs Argon2id in memory backed by huge pages ([`crate::kdf_memory`]), or on the heap when
/// no such mapping can be made, filled by `kernel` ([`crate::kdf_vector`]) or, for `None`, by
/// the `argon2` crate. All of them give the same output, and the memory is wiped either way.
fn hash_into(inputs: &Inputs<'_>, kernel: Option<Kernel>, out: &mut [u8; TAG_LEN]) -> Result<()> {
    let count = kdf_vector::block_count(inputs).map_err(|e| refused(&format!("{e:?}")))?;
    let mut mapped = crate::kdf_memory::BlockMemory::new(count);
    let mut heap = Zeroizing::new(Vec::new());
    let blocks = match mapped.as_mut() {
        Some(mapped) => mapped.blocks(),
        None => {
            heap.try_reserve_exact(count)
                .map_err(|_| failed(&format_args!("out of memory ({count} KiB)")))?;
            heap.resize(count, argon2::Block::new());
            &mut heap[..]
        }
    };
    match kernel {
        Some(kernel) => kdf_vector::hash_into(inputs, kernel, blocks, out)
            .map_err(|e| failed(&format!("{e:?}"))),
        None => hash_with_crate(inputs, blocks, out),
    }
}

/// Runs the `argon2` crate in `blocks`.
fn hash_with_crate(
    inputs: &Inputs<'_>,
    blocks: &mut [argon2::Block],
    out: &mut [u8; TAG_LEN],
) -> Result<()> {
    let mut params = argon2::ParamsBuilder::new();
    params
        .m_cost(inputs.memory_kib)
        .t_cost(inputs.iterations)
        .p_cost(inputs.lanes)
        .output_len(TAG_LEN);
    if !inputs.associated.is_empty() {
        params.data(argon2::AssociatedData::new(inputs.associated).map_err(|e| refused(&e))?);
    }
    let params = params.build().map_err(|e| refused(&e))?;
    let argon = argon2::Argon2::new_with_secret(
        inputs.secret,
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    )
    .map_err(|e| refused(&e))?;
    argon
        .hash_password_into_with_memory(inputs.password, inputs.salt, &mut out[..], blocks)
        .map_err(|e| failed(&e))
}

fn refused(e: &dyn std::fmt::Display) -> Error {
    Error::Integrity(format!("refusing KDF parameters: {e}"))
}

fn failed(e: &dyn std::fmt::Display) -> Error {
    Error::Other(format!("key derivation failed: {e}"))
}

/// Picks parameters whose derivation takes about `target` on this machine: memory first
/// (t=3, up to `memory_cap_kib`), then more iterations once memory is at its cap.
///
/// A small probe (32 MiB, one pass) gives a first guess. It misjudges the cost of each KiB and
/// pass at the real size: its fixed costs and first-touch page faults weigh more in a short run,
/// later passes touch no new memory, and 32 MiB may largely fit in the processor's caches. So
/// the guess is derived twice more, and the faster time scaled to the target: the first of the
/// two may be slowed by memory the system has to find first (on a virtual machine, memory the
/// host took back), the second reuses it.
pub fn calibrate(target: Duration, memory_cap_kib: u32, lanes: u32) -> Result<KdfParams> {
    let salt = [0u8; SALT_LEN];
    let seconds = |p: &KdfParams| -> Result<f64> {
        let started = Instant::now();
        derive_bytes(b"calibration", &salt, p)?;
        Ok(started.elapsed().as_secs_f64().max(1e-6))
    };
    let work = |p: &KdfParams| f64::from(p.memory_kib) * f64::from(p.iterations);
    let target = target.as_secs_f64();
    let probe = KdfParams {
        memory_kib: 32 * 1024,
        iterations: 1,
        lanes,
    };
    let guess = fit(
        work(&probe) * target / seconds(&probe)?,
        memory_cap_kib,
        lanes,
    );
    let took = seconds(&guess)?.min(seconds(&guess)?);
    let params = fit(work(&guess) * target / took, memory_cap_kib, lanes);
    params.check_user()?;
    Ok(params)
}

/// Parameters for `budget` KiB-passes of work: t=3 and as much memory as that allows, up to
/// `memory_cap_kib` (and within [`BOUNDS`]); beyond the cap, more passes (up to 16).
fn fit(budget: f64, memory_cap_kib: u32, lanes: u32) -> KdfParams {
    let cap = memory_cap_kib.clamp(BOUNDS.memory_kib.0, BOUNDS.memory_kib.1);
    let memory = (budget / 3.0).clamp(f64::from(BOUNDS.memory_kib.0), f64::from(cap));
    let memory_kib = (memory as u32 / 1024).max(8) * 1024;
    let iterations = (budget / f64::from(memory_kib)).round().clamp(1.0, 16.0) as u32;
    KdfParams {
        memory_kib,
        iterations,
        lanes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc9106_argon2id_vector_on_every_path() {
        // RFC 9106 §5.3, through whichever path `derive_bytes` takes on this machine.
        let (inputs, expected) = kdf_vector::rfc9106::vector();
        let mut out = [0u8; TAG_LEN];
        hash_into(&inputs, Kernel::fastest(), &mut out).unwrap();
        assert_eq!(hex(&out), expected);
        // The `argon2` crate's block function, taken on processors with neither AVX-512 nor
        // AVX2, in mapped memory and on the heap (where no mapping can be made).
        let count = kdf_vector::block_count(&inputs).unwrap();
        let mut mapped = crate::kdf_memory::BlockMemory::new(count).unwrap();
        let mut heap = vec![argon2::Block::new(); count];
        for blocks in [mapped.blocks(), &mut heap[..]] {
            let mut out = [0u8; TAG_LEN];
            hash_with_crate(&inputs, blocks, &mut out).unwrap();
            assert_eq!(hex(&out), expected);
        }
    }

    #[test]
    fn mapped_memory_matches_the_plain_argon2_path() {
        for (memory_kib, iterations, lanes) in [(8192, 1, 1), (8192, 2, 4), (9216, 1, 3)] {
            let p = KdfParams {
                memory_kib,
                iterations,
                lanes,
            };
            let salt = [0x5a; SALT_LEN];
            let ours = derive_bytes(b"pass phrase", &salt, &p).unwrap();
            let plain = argon2::Argon2::new(
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                argon2::Params::new(memory_kib, iterations, lanes, Some(32)).unwrap(),
            );
            let mut expected = [0u8; 32];
            plain
                .hash_password_into(b"pass phrase", &salt, &mut expected)
                .unwrap();
            assert_eq!(ours.expose_secret(), &expected, "{p:?}");
        }
    }

    #[test]
    fn argon2id_reference_vector() {
        // The reference implementation's Argon2id v1.3 vector: password/somesalt, m=64 MiB, t=2, p=1.
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(65536, 2, 1, Some(32)).unwrap(),
        );
        let mut out = [0u8; 32];
        argon
            .hash_password_into(b"password", b"somesalt", &mut out)
            .unwrap();
        assert_eq!(
            hex(&out),
            "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7"
        );
    }

    #[test]
    fn bounds_are_enforced_before_work() {
        let salt = [0u8; 32];
        for p in [
            KdfParams {
                memory_kib: 64 * 1024 * 1024,
                iterations: 1,
                lanes: 1,
            },
            KdfParams {
                memory_kib: 8192,
                iterations: u32::MAX,
                lanes: 1,
            },
            KdfParams {
                memory_kib: 8192,
                iterations: 1,
                lanes: 0,
            },
            KdfParams {
                memory_kib: 8192,
                iterations: 1,
                lanes: 1 << 24,
            },
            KdfParams {
                memory_kib: 1024,
                iterations: 1,
                lanes: 1,
            },
        ] {
            // Refused by the bounds check, which runs before any memory is allocated (not by
            // a failed allocation or a KDF error after the work).
            match derive_bytes(b"x", &salt, &p) {
                Err(Error::Integrity(why)) => {
                    assert!(why.starts_with("refusing KDF parameters: "), "{why}");
                    assert!(why.contains("outside"), "{p:?}: {why}");
                }
                other => panic!("{p:?}: {:?}", other.map(|_| "a key")),
            }
        }
        let ok = KdfParams {
            memory_kib: 8192,
            iterations: 1,
            lanes: 1,
        };
        assert!(derive_bytes(b"x", &salt[..15], &ok).is_err());
        assert!(derive_bytes(b"x", &[0u8; 65], &ok).is_err());
        assert!(derive_bytes(b"x", &salt, &ok).is_ok());
    }

    #[test]
    fn calibration_spends_memory_first_then_passes() {
        const MIB: u32 = 1024;
        let fitted = |budget_mib_passes: f64| {
            let p = fit(budget_mib_passes * f64::from(MIB), 1024 * MIB, 4);
            (p.memory_kib / MIB, p.iterations, p.lanes)
        };
        // Under the cap: three passes over as much memory as the budget buys.
        assert_eq!(fitted(768.0), (256, 3, 4));
        assert_eq!(fitted(3000.0), (1000, 3, 4));
        // At the cap: more passes, rounded, at most 16.
        assert_eq!(fitted(4096.0), (1024, 4, 4));
        assert_eq!(fitted(6000.0), (1024, 6, 4));
        assert_eq!(fitted(1e9), (1024, 16, 4));
        // A tiny budget still gives the smallest allowed cost.
        assert_eq!(fitted(1.0), (8, 1, 4));
        // A cap outside the bounds is brought inside them.
        assert_eq!(fit(1e12, u32::MAX, 1).memory_kib, BOUNDS.memory_kib.1);
    }

    #[test]
    fn calibration_returns_usable_parameters() {
        // Timing is not asserted (that is the benchmarks' business): only that a short target
        // gives parameters `init` accepts.
        let p = calibrate(Duration::from_millis(20), 64 * 1024, 1).unwrap();
        p.check_user().unwrap();
        assert!(p.memory_kib <= 64 * 1024, "{p:?}");
        assert_eq!(p.lanes, 1);
    }

    #[test]
    fn weak_parameters_are_flagged() {
        assert!(!KdfParams::default().is_weak());
        assert!(
            KdfParams {
                memory_kib: 8192,
                iterations: 1,
                lanes: 1
            }
            .is_weak()
        );
    }
}
