//! The round loop, once for every remote: pull, verify and merge (the caller's `run`, which
//! also saves), publish, and again when someone else published in between. A [`Transport`]
//! knows files, not vaults or teams: the git branch and the shared folder
//! ([`super::remote::Workspace`]), and [`Memory`] for tests.

use super::remote::{Published, Pulled};
use super::round::{Incoming, Round};
use crate::{Error, Result};
use std::collections::BTreeMap;

/// How many times a round runs when the remote keeps moving under it.
pub const ATTEMPTS: usize = 5;

/// Where the replicas of one vault live.
pub trait Transport {
    /// Reads the remote: its descriptor and files, bounded before they are read.
    fn pull(&mut self) -> Result<Pulled>;

    /// Refuses a remote that holds something other than this vault.
    fn check(&self, pulled: &Pulled) -> Result<()>;

    /// Writes each `(folder, file)` and removes the `replicas/` files named in `remove`, if the
    /// remote is still at `base` (what [`Transport::pull`] read); [`Published::Raced`] if not.
    fn publish(
        &mut self,
        files: &[(String, Incoming)],
        remove: &[String],
        base: Option<&str>,
    ) -> Result<Published>;
}

/// What one run of a round produced: what happened, and the files to publish.
pub struct Ran {
    /// What the round did.
    pub round: Round,
    /// The files to write, each `(folder, file)`.
    pub publish: Vec<(String, Incoming)>,
}

/// Runs rounds until one publishes: each pulls, checks the remote, runs `run` on what was
/// pulled (it merges and saves), then publishes what it returned (nothing when `read_only`).
/// `None` when someone else published in between every time (the vault is merged and saved;
/// the next sync publishes).
pub fn drive(
    transport: &mut dyn Transport,
    read_only: bool,
    mut run: impl FnMut(Pulled) -> Result<Ran>,
) -> Result<Option<Round>> {
    let mut done = Round::default();
    for _ in 0..ATTEMPTS {
        let pulled = transport.pull()?;
        transport.check(&pulled)?;
        let head = pulled.head.clone();
        let ran = run(pulled)?;
        done = done.then(ran.round);
        if read_only {
            done.replica = None;
            done.merged_copies.clear();
            done.forgotten.clear();
            done.superseded.clear();
            return Ok(Some(done));
        }
        let remove = done.to_remove();
        if ran.publish.is_empty() && remove.is_empty() {
            return Ok(Some(done));
        }
        if transport.publish(&ran.publish, &remove, head.as_deref())? == Published::Done {
            return Ok(Some(done));
        }
    }
    Ok(None)
}

/// A remote in memory, for tests: a tree of files and a version that every publish moves, so a
/// publish from an old pull is [`Published::Raced`], as a rejected git push is.
#[derive(Clone, Debug, Default)]
pub struct Memory {
    /// Files by path (`replicas/NAME`, `members/NAME`).
    pub files: BTreeMap<String, Vec<u8>>,
    /// Moves on every publish.
    pub version: u64,
}

impl Memory {
    fn folder(&self, folder: &str) -> Vec<Incoming> {
        let prefix = format!("{folder}/");
        (self.files.iter())
            .filter_map(|(path, bytes)| {
                let name = path.strip_prefix(&prefix)?;
                Some(Incoming {
                    name: name.to_owned(),
                    bytes: bytes.clone(),
                })
            })
            .collect()
    }
}

impl Transport for Memory {
    fn pull(&mut self) -> Result<Pulled> {
        Ok(Pulled {
            descriptor: None,
            files: self.folder(super::remote::REPLICAS),
            members: self.folder(crate::team::MEMBERS_DIR),
            head: Some(self.version.to_string()),
        })
    }

    fn check(&self, _: &Pulled) -> Result<()> {
        Ok(())
    }

    fn publish(
        &mut self,
        files: &[(String, Incoming)],
        remove: &[String],
        base: Option<&str>,
    ) -> Result<Published> {
        if base != Some(self.version.to_string().as_str()) {
            return Ok(Published::Raced);
        }
        for (folder, f) in files {
            if f.name.contains('/') {
                return Err(Error::Other(format!("bad remote file name {}", f.name)));
            }
            self.files
                .insert(format!("{folder}/{}", f.name), f.bytes.clone());
        }
        for name in remove {
            self.files
                .remove(&format!("{}/{name}", super::remote::REPLICAS));
        }
        self.version += 1;
        Ok(Published::Done)
    }
}
