//! Backups (docs/GUIDE.md, "How do I back up the vault, and how do I know the backup works?").
//!
//! The default backup is a byte copy of the encrypted vault file, read under the writer lock
//! by the front end: it needs no key and opens with the passphrase (or recovery key) of the
//! moment it was taken. [`BackupRequest::Export`] is the other kind: the whole payload as JSON,
//! age-encrypted to an offline or escrow recipient, readable with the standard `age` tool.
//! [`BackupRequest::Summary`], run against a backup file, is what `backup verify` reports.

use crate::time::Time;
use crate::vault::{Payload, Vault};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use zeroize::Zeroizing;

/// The `format` field of an export (docs/FORMAT.md "Backup export").
pub const EXPORT_FORMAT: &str = "jeton-backup-export";
/// Version of the export document.
pub const EXPORT_VERSION: u32 = 1;
/// Largest export read back (the payload cap plus JSON overhead).
const MAX_EXPORT_LEN: u64 = 4 << 30;

/// A backup operation on an unlocked vault.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum BackupRequest {
    /// Generation, entry count and date of this vault.
    Summary,
    /// The payload as JSON, age-encrypted to these recipients (`age1...`, `ssh-ed25519 ...`,
    /// or the name of a contact).
    Export {
        /// Recipients.
        recipients: Vec<String>,
    },
}

impl BackupRequest {
    /// True when the request may change the vault (never: an export is not recorded).
    pub fn writes(&self) -> bool {
        false
    }
}

/// What `backup verify` reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Vault id (hex).
    pub vault_id: String,
    /// Save counter of the copy.
    pub generation: u64,
    /// Entries, tombstones included.
    pub entries: usize,
    /// Active entries.
    pub active: usize,
    /// Time of the last change recorded inside the copy.
    pub last_change: Option<Time>,
    /// True when a recovery key opens the copy (file backups only).
    pub recovery_slot: bool,
}

/// What a backup request produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum BackupResponse {
    /// A summary.
    Summary(Summary),
    /// An age file to write out.
    Export {
        /// The age file (binary).
        bytes: Vec<u8>,
        /// What it holds.
        summary: Summary,
    },
}

/// The document inside an export.
#[derive(Serialize, Deserialize)]
pub struct ExportDoc {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// Always [`EXPORT_VERSION`].
    pub version: u32,
    /// Vault id (hex).
    pub vault_id: String,
    /// Generation exported.
    pub generation: u64,
    /// When the export was made (RFC 3339).
    pub created_at: String,
    /// Everything inside the vault's encryption.
    pub payload: Payload,
}

fn summarise(
    vault_id: &[u8],
    generation: u64,
    payload: &Payload,
    recovery: bool,
) -> Result<Summary> {
    let (mut last_entry, mut active) = (None, 0);
    payload.entries.scan(|e| {
        last_entry = last_entry.max(Some(e.updated_at));
        active += usize::from(e.status == crate::entry::Status::Active);
        Ok(())
    })?;
    let last_audit = payload.audit.iter().map(|a| a.at).max();
    Ok(Summary {
        vault_id: crate::share::hex(vault_id),
        generation,
        entries: payload.entries.len(),
        active,
        last_change: last_entry.max(last_audit),
        recovery_slot: recovery,
    })
}

/// Runs one backup request.
pub fn execute(vault: &mut Vault, request: BackupRequest, now: Time) -> Result<BackupResponse> {
    let summary = summarise(
        vault.id(),
        vault.generation(),
        &vault.payload,
        crate::recovery::has_slot(vault),
    )?;
    match request {
        BackupRequest::Summary => Ok(BackupResponse::Summary(summary)),
        BackupRequest::Export { recipients } => {
            if recipients.is_empty() {
                return Err(Error::Usage(
                    "an export needs at least one recipient".into(),
                ));
            }
            if recipients.len() > crate::share::age_header::MAX_RECIPIENTS {
                return Err(Error::Usage(format!(
                    "an export goes to at most {} recipients",
                    crate::share::age_header::MAX_RECIPIENTS
                )));
            }
            let parsed = recipients
                .iter()
                .map(|r| recipient(vault, r))
                .collect::<Result<Vec<_>>>()?;
            let doc = ExportDoc {
                format: EXPORT_FORMAT.into(),
                version: EXPORT_VERSION,
                vault_id: summary.vault_id.clone(),
                generation: vault.generation(),
                created_at: crate::time::rfc3339(now),
                payload: vault.payload.clone(),
            };
            let json = Zeroizing::new(
                serde_json::to_vec_pretty(&doc)
                    .map_err(|e| Error::Other(format!("cannot encode the export: {e}")))?,
            );
            Ok(BackupResponse::Export {
                bytes: encrypt(&parsed, &json)?,
                summary: Summary {
                    recovery_slot: false,
                    ..summary
                },
            })
        }
    }
}

fn recipient(vault: &Vault, text: &str) -> Result<Box<dyn age::Recipient + Send>> {
    let t = text.trim();
    if let Some(hint) = crate::share::identity::secret_key_hint(t) {
        return Err(Error::Usage(format!("--to: {hint}")));
    }
    let bad = || {
        Error::Usage(format!(
            "'{}' is neither an age recipient, an ssh-ed25519 key nor a contact",
            crate::entry::printable(t)
        ))
    };
    if t.starts_with("age1") {
        let r: age::x25519::Recipient = t.parse().map_err(|_| bad())?;
        return Ok(Box::new(r));
    }
    if t.starts_with("ssh-ed25519 ") {
        let r: age::ssh::Recipient = t.parse().map_err(|_| bad())?;
        return Ok(Box::new(r));
    }
    let c = crate::share::contact::find(vault, t)?;
    if let Some(a) = &c.age_recipient {
        let r: age::x25519::Recipient = a.parse().map_err(|_| Error::corrupt_vault())?;
        return Ok(Box::new(r));
    }
    if let Some(s) = &c.ssh_recipient {
        let r: age::ssh::Recipient = s.parse().map_err(|_| Error::corrupt_vault())?;
        return Ok(Box::new(r));
    }
    Err(Error::Usage(format!(
        "contact '{}' has no key to encrypt to",
        c.name
    )))
}

fn encrypt(recipients: &[Box<dyn age::Recipient + Send>], plain: &[u8]) -> Result<Vec<u8>> {
    let fail = |_| Error::Other("age encryption failed".into());
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_ref() as _))
        .map_err(|_| Error::Usage("age refused the recipients".into()))?;
    let mut out = Vec::with_capacity(plain.len() + 512);
    let mut w = encryptor.wrap_output(&mut out).map_err(fail)?;
    w.write_all(plain).map_err(fail)?;
    w.finish().map_err(fail)?;
    Ok(out)
}

/// Most bytes age may read for an export's header (one stanza per recipient).
const MAX_EXPORT_HEADER: u64 = 64 << 10;
/// Raw bytes read to check the header before age sees it: the longest header
/// `age_header::check` accepts, armored (base64 and line breaks), fits in it.
const EXPORT_HEADER_PREFIX: u64 = 32 << 10;

/// Gives out at most `left` bytes until the caller lifts the bound. age reads its header up to
/// each newline, so an endless line (a file of zeros) would otherwise be read whole.
struct HeaderBound<R> {
    inner: R,
    left: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: std::io::BufRead> Read for HeaderBound<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::BufRead;
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: std::io::BufRead> std::io::BufRead for HeaderBound<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        let left = usize::try_from(self.left.get()).unwrap_or(usize::MAX);
        let buf = self.inner.fill_buf()?;
        Ok(&buf[..buf.len().min(left)])
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.left.set(self.left.get().saturating_sub(n as u64));
    }
}

/// Decrypts an export with an age identity file's contents and summarises it (no vault
/// needed: this is `backup verify --identity`). The export is streamed from `input`, never held
/// whole; at most 4 GiB of plaintext is read.
pub fn verify_export(input: impl std::io::BufRead, identity_file: &str) -> Result<Summary> {
    let bad_identity = || Error::Usage("cannot read the age identity file".into());
    let identities =
        age::IdentityFile::from_buffer(std::io::BufReader::new(identity_file.as_bytes()))
            .map_err(|_| bad_identity())?
            .into_identities()
            .map_err(|_| bad_identity())?;
    let damaged = || Error::Integrity("the export is corrupt or has been tampered with".into());
    // The header's size and stanza count are checked on a prefix before age parses it (see
    // share::age_header); the prefix then goes back in front of the rest of the stream.
    let mut input = input;
    let mut head = Vec::with_capacity(EXPORT_HEADER_PREFIX as usize);
    (&mut input)
        .take(EXPORT_HEADER_PREFIX)
        .read_to_end(&mut head)
        .map_err(|_| damaged())?;
    crate::share::age_header::check(&head)
        .map_err(|why| Error::Integrity(format!("the export is refused: {why}")))?;
    let left = std::rc::Rc::new(std::cell::Cell::new(MAX_EXPORT_HEADER));
    let bounded = HeaderBound {
        inner: age::armor::ArmoredReader::new(std::io::Cursor::new(head).chain(input)),
        left: left.clone(),
    };
    let decryptor = age::Decryptor::new_buffered(bounded).map_err(|_| damaged())?;
    let mut stream = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => {
                Error::Unlock("this export is not encrypted to that identity".into())
            }
            _ => damaged(),
        })?;
    left.set(u64::MAX);
    // One zeroizing buffer, no copy left behind as it grows: the plaintext holds secrets.
    let plain =
        crate::secret::read_capped(&mut stream, MAX_EXPORT_LEN as usize).map_err(|_| damaged())?;
    let doc: ExportDoc = serde_json::from_slice(&plain).map_err(|_| damaged())?;
    if doc.format != EXPORT_FORMAT || doc.version != EXPORT_VERSION {
        return Err(Error::Integrity(
            "this age file is not a jeton backup export (version 1)".into(),
        ));
    }
    let id = crate::share::unhex::<16>(&doc.vault_id).ok_or_else(damaged)?;
    summarise(&id, doc.generation, &doc.payload, false)
}
