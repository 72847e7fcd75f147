//! jeton: an encrypted local vault for API access tokens.
//!
//! The data flows one way, and the modules follow it:
//!
//! ```text
//! passphrase -> kdf -> key -> format + aead -> vault file -> entries -> requests -> output
//! ```
//!
//! * [`kdf`] turns a passphrase into a key-encryption key (Argon2id), refusing costs out of bounds
//!   before paying them.
//! * [`aead`] seals and opens with AES-256-GCM and derives the per-purpose subkeys.
//! * [`format`](mod@format) is the on-disk layout: a strict parser and a canonical writer.
//! * [`store`] reads and writes the file: lock, temp file, fsync, rename, directory fsync, backup.
//! * [`entry`] is the token model; [`vault`] is the unlocked vault and its operations.
//! * [`otp`] turns a TOTP seed held as an entry's secret into the code of the moment.
//! * [`find`] ranks entries for `search` and suggests names for a name not found.
//! * [`lifecycle`] looks after tokens over time: rotation, history, revocation, `check`, the log.
//! * [`share`] is sharing: identity, contacts, signed age bundles.
//! * [`text`] is the rule for metadata text coming in and the escaping of text going out.
//! * [`sync`] merges two replicas of one vault made on different devices: a pure function over
//!   version vectors, so that no edit is lost and every device ends with the same content.
//! * [`request`] holds the typed requests every front end executes (the CLI locally, or the agent).
//! * [`runtime`] is the private runtime directory (`$XDG_RUNTIME_DIR/jeton`), checked whole, and
//!   the self-wiping directories in it for files that hold a secret (the editor's form, `npmrc`).
//! * [`agent`] keeps the vault key in a background process and runs the same requests for the CLI:
//!   `cli -> agent client -> unix socket -> agent server (holds the key, runs the same requests)`.
//! * [`integrations`] are the scripted front ends: exec, inject, and the git, cargo and docker
//!   credential helpers.
//! * [`issuer`] rotates a token where it was issued and updates every integration that uses
//!   it, as a resumable pipeline whose state is saved in the vault after every step.
//! * [`scan`] finds the vault's own secrets where they leaked (files, standard input, git
//!   history, staged changes), exactly: every form of every secret, and nothing else.
//! * [`migrate`] reads other tools' stores; [`recovery`] is the recovery key slot; [`backup`]
//!   writes and checks backups.
//!
//! The crate denies `unsafe` everywhere but in three places that say in their docs why each use
//! holds: `kdf_memory`, which maps the Argon2 working memory on huge pages (`mmap`/`madvise` have
//! no safe wrapper); `kdf_vector`, Argon2id's block function in AVX-512 vector loads and stores,
//! checked bit for bit against the `argon2` crate and RFC 9106 on every test run; and `os`, the
//! one module for the calls only Linux has (peer credentials, CLOCK_BOOTTIME, `prctl`, `mlock`,
//! `madvise`...), whose docs say what each would need on another Unix.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod aead;
pub mod agent;
pub mod backup;
pub mod entries;
pub mod entry;
pub mod error;
pub mod find;
pub mod format;
pub mod generate;
pub mod harden;
pub mod integrations;
pub mod issuer;
pub mod kdf;
mod kdf_memory;
mod kdf_vector;
pub mod lifecycle;
pub mod migrate;
mod os;
pub mod otp;
pub mod paths;
pub mod process;
pub mod random;
pub mod recovery;
pub mod request;
pub mod runtime;
pub mod scan;
pub mod secret;
pub mod share;
pub mod store;
pub mod sync;
pub mod team;
pub mod text;
pub mod time;
pub mod vault;

pub use error::{Error, Result};

#[cfg(test)]
mod tests {
    /// `build.rs` links GCC's unwinder into every program built on this crate, these tests
    /// included, instead of loading `libgcc_s`: a panic must still unwind to `catch_unwind`, on
    /// this thread and on another (a broken unwinder aborts the whole test program).
    #[test]
    fn panics_still_unwind() {
        let here = std::panic::catch_unwind(|| panic!("deliberate panic"));
        assert!(here.is_err());
        let there = std::thread::spawn(|| panic!("deliberate panic")).join();
        assert!(there.is_err());
    }
}
