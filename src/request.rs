//! The typed requests every front end executes, and their responses.
//!
//! The CLI parses its arguments into a [`Request`], then either runs it here against a vault it
//! unlocked itself ([`Session::run`]) or, later, hands it to the agent, which runs the same
//! [`execute`] with the key it holds. Validation happens while building a request, so a bad
//! flag is refused before any I/O or KDF work.

pub use crate::entry::{Change, Charset, MAX_GENERATED_LEN, SecretInput, generate_secret};
use crate::entry::{Entry, Status, validate_new_name};
use crate::random::random_id;
use crate::secret::Passphrase;
use crate::store::{LockGuard, Previous, Store, rollback};
use crate::text::{check_line, check_note};
use crate::time::Time;
use crate::vault::{Vault, not_found};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `add`: a new entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewEntry {
    /// Validated name.
    pub name: String,
    /// The secret.
    pub secret: SecretInput,
    /// Scopes.
    pub scopes: Vec<String>,
    /// URL.
    pub url: Option<String>,
    /// Username.
    pub username: Option<String>,
    /// Issuer.
    pub issuer: Option<String>,
    /// Technical contact.
    pub contact: Option<String>,
    /// Integrations holding a copy.
    pub used_by: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Note.
    pub note: Option<String>,
    /// Expiry at the provider.
    pub expires_at: Option<Time>,
    /// Rotation schedule in seconds.
    pub rotate_every: Option<i64>,
}

impl NewEntry {
    /// An entry with a name and a secret and no metadata; set the rest with struct update
    /// syntax (`NewEntry { scopes, ..NewEntry::new(name, secret) }`).
    pub fn new(name: impl Into<String>, secret: SecretInput) -> NewEntry {
        NewEntry {
            name: name.into(),
            secret,
            scopes: vec![],
            url: None,
            username: None,
            issuer: None,
            contact: None,
            used_by: vec![],
            tags: vec![],
            note: None,
            expires_at: None,
            rotate_every: None,
        }
    }

    /// Checks the name and the metadata text ([`crate::text`]'s input rule), before any I/O.
    pub fn check(&self) -> Result<()> {
        validate_new_name(&self.name)?;
        check_metadata(
            [
                ("url", &self.url),
                ("username", &self.username),
                ("issuer", &self.issuer),
                ("contact", &self.contact),
            ],
            [
                ("scope", &self.scopes),
                ("used_by", &self.used_by),
                ("tag", &self.tags),
            ],
            self.note.as_deref(),
        )
    }

    /// For tests: [`NewEntry::new`] with a given secret.
    #[cfg(test)]
    pub(crate) fn bare(name: &str, secret: &str) -> NewEntry {
        NewEntry::new(
            name,
            SecretInput::Value(crate::secret::Token::new(secret.into())),
        )
    }
}

/// `edit`: metadata changes to one entry.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EntryEdit {
    /// Which entry.
    pub name: String,
    /// URL.
    pub url: Change<String>,
    /// Username.
    pub username: Change<String>,
    /// Issuer.
    pub issuer: Change<String>,
    /// Contact.
    pub contact: Change<String>,
    /// Note.
    pub note: Change<String>,
    /// Expiry.
    pub expires_at: Change<Time>,
    /// Rotation schedule.
    pub rotate_every: Change<i64>,
    /// Scopes to add.
    pub add_scopes: Vec<String>,
    /// Scopes to remove.
    pub rm_scopes: Vec<String>,
    /// Integrations to add.
    pub add_used_by: Vec<String>,
    /// Integrations to remove.
    pub rm_used_by: Vec<String>,
    /// Tags to add.
    pub add_tags: Vec<String>,
    /// Tags to remove.
    pub rm_tags: Vec<String>,
}

impl EntryEdit {
    /// Checks the new metadata text ([`crate::text`]'s input rule), before any I/O.
    pub fn check(&self) -> Result<()> {
        let set = |c: &Change<String>| match c {
            Change::Set(v) => Some(v.clone()),
            _ => None,
        };
        let note = set(&self.note);
        check_metadata(
            [
                ("url", &set(&self.url)),
                ("username", &set(&self.username)),
                ("issuer", &set(&self.issuer)),
                ("contact", &set(&self.contact)),
            ],
            [
                ("scope", &self.add_scopes),
                ("used_by", &self.add_used_by),
                ("tag", &self.add_tags),
            ],
            note.as_deref(),
        )
    }
}

/// The input rule over an entry's metadata: single-line fields, lists of single-line items,
/// and the note.
fn check_metadata<const F: usize, const L: usize>(
    fields: [(&str, &Option<String>); F],
    lists: [(&str, &Vec<String>); L],
    note: Option<&str>,
) -> Result<()> {
    for (what, v) in fields {
        if let Some(v) = v {
            check_line(what, v)?;
        }
    }
    for (what, items) in lists {
        for v in items {
            check_line(what, v)?;
        }
    }
    note.map_or(Ok(()), |n| check_note("note", n))
}

/// `edit NAME` in the editor: a new secret and a metadata edit of one entry, made on the form of
/// its revision `revision`. Applied together, and only while the entry is still at that revision
/// ([`Error::Busy`] otherwise, nothing changed), so a change made meanwhile elsewhere (another
/// command, a sync) is never undone by a form that did not show it. The edit holds only the
/// fields whose line the user changed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FormEdit {
    /// Which entry.
    pub name: String,
    /// The revision the form showed.
    pub revision: u64,
    /// The new secret (a rotation), if the form changed it.
    pub secret: Option<SecretInput>,
    /// The metadata changes, if any; its name is the entry's.
    pub edit: Option<EntryEdit>,
}

/// Which statuses `list` shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusFilter {
    /// Active only.
    #[default]
    Active,
    /// Disabled only.
    Disabled,
    /// Revoked only.
    Revoked,
    /// Everything.
    All,
}

/// `list` filters.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ListFilter {
    /// Text the name must hold, anywhere, in any case.
    pub pattern: Option<String>,
    /// Must have this scope.
    pub scope: Option<String>,
    /// Must have this tag.
    pub tag: Option<String>,
    /// Status filter.
    pub status: StatusFilter,
    /// Only entries expired, expiring or due for rotation within this many seconds.
    pub due_within: Option<i64>,
}

/// One operation on an unlocked vault.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Request {
    /// Add an entry.
    Add(Box<NewEntry>),
    /// An entry for use: refused when disabled or revoked.
    Get {
        /// Name.
        name: String,
    },
    /// An entry for display, whatever its status.
    Show {
        /// Name.
        name: String,
    },
    /// Entries matching a filter.
    List(ListFilter),
    /// The one-time code of an entry holding a TOTP seed (or of `NAME/otp`, `NAME/totp`):
    /// only the code leaves the vault. Refused when the entry is disabled or revoked.
    Otp {
        /// Name.
        name: String,
    },
    /// Entries a term matches in name, url, username, tags, scopes or note, best first.
    Search {
        /// What to look for.
        term: String,
        /// Revoked tombstones too.
        include_revoked: bool,
    },
    /// Change metadata.
    Edit(Box<EntryEdit>),
    /// Apply what the editor's form changed, if the entry did not change meanwhile.
    FormEdit(Box<FormEdit>),
    /// Rename an entry.
    Rename {
        /// Current name.
        from: String,
        /// New name.
        to: String,
    },
    /// Delete an entry, leaving a deletion record.
    Remove {
        /// Name.
        name: String,
    },
    // == lifecycle: rotate, history, rollback, disable, enable, revoke, check, log, config ==
    /// Rotation, history, status changes, `check`, the audit log and settings.
    Lifecycle(crate::lifecycle::LifecycleRequest),
    // == sharing: identity, contact, share, import ==
    /// Identity, contacts, bundles (SPEC §6).
    Sharing(crate::share::SharingRequest),
    // == agent and integrations: unlock, lock, agent, exec, inject, credential helpers ==
    /// Read-only lookups for exec, inject and the credential helpers.
    Integration(crate::integrations::IntegrationRequest),
    // == migration, recovery, backup ==
    /// Entries read from another tool's store, added together.
    Migrate(Box<crate::migrate::MigrateRequest>),
    /// The recovery key slot.
    Recovery(crate::recovery::RecoveryRequest),
    /// Backup summaries and age-encrypted exports.
    Backup(crate::backup::BackupRequest),
    /// Sync rounds and their state (the front end moves the files).
    Sync(crate::sync::SyncRequest),
    /// Rotation at the issuer: recipes, integrations and the steps of a run.
    Issuer(crate::issuer::IssuerRequest),
    /// Team vaults: member lists, joining, rounds (the front end moves the files).
    Team(crate::team::TeamRequest),
    /// What `scan` looks for.
    Scan(crate::scan::ScanRequest),
}

impl Request {
    /// True when the request may change the vault (a writer lock is taken).
    pub fn writes(&self) -> bool {
        match self {
            Request::Get { .. }
            | Request::Show { .. }
            | Request::List(_)
            | Request::Search { .. }
            | Request::Otp { .. }
            | Request::Integration(_) => false,
            Request::Scan(s) => s.writes(),
            Request::Lifecycle(l) => l.writes(),
            Request::Sharing(s) => s.writes(),
            Request::Migrate(m) => !m.dry_run,
            Request::Recovery(r) => r.writes(),
            Request::Backup(b) => b.writes(),
            Request::Sync(s) => s.writes(),
            Request::Issuer(i) => i.writes(),
            Request::Team(t) => t.writes(),
            _ => true,
        }
    }
}

/// A line of `list`: never a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Name.
    pub name: String,
    /// `active`, `disabled` or `revoked`.
    pub status: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// URL of the service.
    pub url: Option<String>,
    /// Account name at the service.
    pub username: Option<String>,
    /// Expiry.
    pub expires_at: Option<Time>,
    /// Next rotation.
    pub rotation_due_at: Option<Time>,
}

/// What a request produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Response {
    /// One entry (with its secret: front ends decide what to print).
    Entry {
        /// The entry.
        entry: Box<Entry>,
        /// The vault's default contact, for entries that name none.
        default_contact: Option<String>,
        /// Values of its fields written on another device at the same time as the current
        /// ones, waiting for a choice (`show` only; empty for `get`).
        waiting: Vec<crate::sync::Choice>,
    },
    /// Entry summaries.
    List(Vec<Summary>),
    /// What a search found, best first.
    Found(Vec<crate::find::Hit>),
    /// A one-time code.
    Code(crate::otp::Code),
    /// A change was made.
    Done(String),
    /// What a [`FormEdit`] did: the rotation's result, and the metadata edit's message.
    FormEdited {
        /// The rotation, when the form changed the secret.
        rotated: Option<crate::lifecycle::LifecycleResponse>,
        /// The edit's message, when the form changed metadata.
        edited: Option<String>,
    },
    /// The result of a lifecycle request.
    Lifecycle(crate::lifecycle::LifecycleResponse),
    /// The result of a sharing request.
    Sharing(crate::share::SharingResponse),
    /// What a lookup for exec, inject or a credential helper found.
    Integration(crate::integrations::IntegrationResponse),
    /// What a migration did.
    Migrated(crate::migrate::MigrateReport),
    /// The result of a recovery request.
    Recovery(crate::recovery::RecoveryResponse),
    /// The result of a backup request.
    Backup(crate::backup::BackupResponse),
    /// The result of a sync request.
    Sync(Box<crate::sync::SyncResponse>),
    /// The result of an issuer request.
    Issuer(crate::issuer::IssuerResponse),
    /// The result of a team request.
    Team(Box<crate::team::TeamResponse>),
    /// The result of a scan request.
    Scan(crate::scan::ScanResponse),
}

fn clean_list(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for i in items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
    {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn edit_list(list: &mut Vec<String>, add: Vec<String>, rm: &[String]) -> bool {
    let before = list.clone();
    list.retain(|s| !rm.contains(s));
    list.extend(add);
    *list = clean_list(std::mem::take(list));
    *list != before
}

/// Runs one request against an unlocked vault.
pub fn execute(vault: &mut Vault, request: Request, now: Time) -> Result<Response> {
    // A team vault (no key slot) has no identity of its own: its members use theirs.
    if request.writes() && !vault.header().slots.is_empty() {
        // Vaults made before sharing existed get their identity on their next write.
        crate::share::identity::ensure(vault, now)?;
    }
    match request {
        Request::Sharing(r) => crate::share::execute(vault, r, now).map(Response::Sharing),
        Request::Sync(r) => {
            crate::sync::execute(vault, r, now).map(|r| Response::Sync(Box::new(r)))
        }
        Request::Add(new) => add(vault, *new, now),
        Request::Get { name } => Ok(entry_response(vault, usable(vault, &name)?.clone())),
        Request::Otp { name } => {
            // The entry's own otpauth URI, else a companion's seed, else the entry's own
            // secret read as a bare seed (or the error saying it holds none).
            let seed = |n: &str, bare_too: bool| {
                let e = vault.payload.entries.get(n).ok().flatten();
                e.and_then(|e| e.secret.as_ref())
                    .is_some_and(|s| crate::otp::holds_seed(s.expose_secret(), bare_too))
            };
            let chosen = if seed(&name, false) {
                None
            } else {
                crate::otp::companions(&name)
                    .into_iter()
                    .find(|n| seed(n, true))
            };
            let e = usable(vault, chosen.as_deref().unwrap_or(&name))?;
            let secret = e.secret.as_ref().map_or("", |s| s.expose_secret());
            crate::otp::code(&e.name, secret, now).map(Response::Code)
        }
        Request::Show { name } => {
            let e = vault.entry(&name)?.clone();
            let waiting = crate::sync::round::choices_of(vault, &e.name)?;
            match entry_response(vault, e) {
                Response::Entry {
                    entry,
                    default_contact,
                    ..
                } => Ok(Response::Entry {
                    entry,
                    default_contact,
                    waiting,
                }),
                other => Ok(other),
            }
        }
        Request::List(f) => Ok(Response::List(list(vault, &f, now)?)),
        Request::Search {
            term,
            include_revoked,
        } => {
            crate::find::search(&vault.payload.entries, &term, include_revoked).map(Response::Found)
        }
        Request::Edit(edit) => self::edit(vault, *edit, now),
        Request::FormEdit(f) => form_edit(vault, *f, now),
        Request::Rename { from, to } => {
            validate_new_name(&to)?;
            vault.entry(&from)?;
            if vault.payload.entries.contains_key(&to) {
                return Err(Error::Exists(format!(
                    "an entry named '{to}' already exists"
                )));
            }
            let mut e = vault
                .payload
                .entries
                .remove(&from)?
                .ok_or_else(|| not_found(&from))?;
            e.name.clone_from(&to);
            e.revision += 1;
            e.updated_at = now;
            vault.payload.entries.insert(e);
            vault.audit(now, "rename", Some(&to), format!("renamed from {from}"));
            Ok(Response::Done(format!("renamed {from} to {to}")))
        }
        Request::Remove { name } => {
            vault.entry(&name)?;
            let e = vault
                .payload
                .entries
                .remove(&name)?
                .ok_or_else(|| not_found(&name))?;
            vault
                .payload
                .deletions
                .push(crate::vault::Deletion { id: e.id, at: now });
            // Deleted for good: the backup of the previous generation must not keep it.
            crate::issuer::record::remove(vault, &e.id, now)?;
            crate::lifecycle::ack::forget(vault, &e.id, now)?;
            crate::scan::leaks::forget(vault, &e.id, now)?;
            vault.forget_previous_on_save();
            vault.audit(now, "rm", Some(&name), "entry deleted");
            Ok(Response::Done(format!("removed {name}")))
        }
        Request::Lifecycle(r) => crate::lifecycle::execute(vault, r, now).map(Response::Lifecycle),
        Request::Integration(r) => {
            crate::integrations::execute(vault, r).map(Response::Integration)
        }
        Request::Migrate(r) => crate::migrate::execute(vault, *r, now).map(Response::Migrated),
        Request::Recovery(r) => crate::recovery::execute(vault, r, now).map(Response::Recovery),
        Request::Backup(r) => crate::backup::execute(vault, r, now).map(Response::Backup),
        Request::Issuer(r) => crate::issuer::execute(vault, r, now).map(Response::Issuer),
        Request::Team(r) => {
            crate::team::execute(vault, r, now).map(|r| Response::Team(Box::new(r)))
        }
        Request::Scan(r) => crate::scan::execute(vault, r, now).map(Response::Scan),
    }
}

/// The refusal to add `name` where an entry already is: a live one, or a revoked tombstone
/// (exit 9). Front ends that check a name before asking for a secret say the same.
pub fn name_taken(name: &str, revoked: bool) -> Error {
    let what = if revoked {
        "a revoked entry (tombstone) with that name exists; remove it first with `jeton rm`"
    } else {
        "an entry with that name already exists (use `jeton rotate` to change its secret)"
    };
    Error::Exists(format!("cannot add '{name}': {what}"))
}

/// The entry called `name`, for use: refused when disabled or revoked.
fn usable<'v>(vault: &'v Vault, name: &str) -> Result<&'v Entry> {
    let e = vault.entry(name)?;
    match &e.status {
        Status::Active => Ok(e),
        Status::Disabled { since } => Err(Error::Unavailable(format!(
            "entry '{name}' is disabled since {} (enable it with `jeton enable {name}`)",
            crate::time::rfc3339(*since)
        ))),
        Status::Revoked { at, .. } => Err(Error::Unavailable(format!(
            "entry '{name}' was revoked at {}; its secret is gone",
            crate::time::rfc3339(*at)
        ))),
    }
}

fn entry_response(vault: &Vault, e: Entry) -> Response {
    Response::Entry {
        entry: Box::new(e),
        default_contact: vault.payload.settings.default_contact.clone(),
        waiting: Vec::new(),
    }
}

fn add(vault: &mut Vault, new: NewEntry, now: Time) -> Result<Response> {
    new.check()?;
    if let Some(existing) = vault.payload.entries.get(&new.name)? {
        let revoked = matches!(existing.status, Status::Revoked { .. });
        return Err(name_taken(&new.name, revoked));
    }
    let secret = new.secret.resolve()?;
    let name = new.name.clone();
    let entry = Entry {
        id: random_id()?,
        revision: 1,
        name: new.name,
        secret: Some(secret),
        secret_set_at: now,
        scopes: clean_list(new.scopes),
        url: new.url,
        username: new.username,
        issuer: new.issuer,
        contact: new.contact,
        used_by: clean_list(new.used_by),
        tags: clean_list(new.tags),
        note: new.note,
        created_at: now,
        updated_at: now,
        expires_at: new.expires_at,
        rotate_every: new.rotate_every,
        last_rotated_at: None,
        status: Status::Active,
        history: Vec::new(),
        shared_with: Vec::new(),
        received_from: None,
    };
    vault.payload.entries.insert(Box::new(entry));
    vault.audit(now, "add", Some(&name), "entry added");
    Ok(Response::Done(format!("added {name}")))
}

fn edit(vault: &mut Vault, ed: EntryEdit, now: Time) -> Result<Response> {
    ed.check()?;
    let name = ed.name.clone();
    // Changed on a copy: a change that changes nothing must not mark the vault for saving.
    let mut copy = vault.entry(&name)?.clone();
    let e = &mut copy;
    let mut changed = Vec::new();
    let mut note = |did: bool, what: &str| {
        if did {
            changed.push(what.to_owned());
        }
    };
    note(ed.url.apply(&mut e.url), "url");
    note(ed.username.apply(&mut e.username), "username");
    note(ed.issuer.apply(&mut e.issuer), "issuer");
    note(ed.contact.apply(&mut e.contact), "contact");
    note(ed.note.apply(&mut e.note), "note");
    note(ed.expires_at.apply(&mut e.expires_at), "expires_at");
    note(ed.rotate_every.apply(&mut e.rotate_every), "rotate_every");
    note(
        edit_list(&mut e.scopes, ed.add_scopes, &ed.rm_scopes),
        "scopes",
    );
    note(
        edit_list(&mut e.used_by, ed.add_used_by, &ed.rm_used_by),
        "used_by",
    );
    note(edit_list(&mut e.tags, ed.add_tags, &ed.rm_tags), "tags");
    if changed.is_empty() {
        return Ok(Response::Done(format!("{name}: nothing to change")));
    }
    e.revision += 1;
    e.updated_at = now;
    *vault.entry_mut(&name)? = copy;
    let detail = format!("changed {}", changed.join(", "));
    vault.audit(now, "edit", Some(&name), detail.clone());
    Ok(Response::Done(format!("{name}: {detail}")))
}

fn form_edit(vault: &mut Vault, f: FormEdit, now: Time) -> Result<Response> {
    let revision = vault.entry(&f.name)?.revision;
    if revision != f.revision {
        return Err(Error::Busy(format!(
            "'{}' changed while the editor was open (revision {} when shown, {revision} now); nothing was changed",
            f.name, f.revision
        )));
    }
    // Both or neither: a failure below leaves the vault unsaved.
    let rotated = match f.secret {
        Some(secret) => {
            let rotate = crate::lifecycle::LifecycleRequest::Rotate {
                name: f.name.clone(),
                secret,
                expires_at: Change::Keep,
            };
            Some(crate::lifecycle::execute(vault, rotate, now)?)
        }
        None => None,
    };
    let edited = match f.edit {
        Some(mut e) => {
            e.name.clone_from(&f.name);
            match edit(vault, e, now)? {
                Response::Done(msg) => Some(msg),
                _ => None,
            }
        }
        None => None,
    };
    Ok(Response::FormEdited { rotated, edited })
}

fn list(vault: &Vault, f: &ListFilter, now: Time) -> Result<Vec<Summary>> {
    let wanted = |e: &Entry| {
        f.scope.as_ref().is_none_or(|s| e.scopes.contains(s))
            && f.tag.as_ref().is_none_or(|t| e.tags.contains(t))
            && match f.status {
                StatusFilter::All => true,
                StatusFilter::Active => e.status == Status::Active,
                StatusFilter::Disabled => matches!(e.status, Status::Disabled { .. }),
                StatusFilter::Revoked => matches!(e.status, Status::Revoked { .. }),
            }
            && f.due_within.is_none_or(|w| {
                let horizon = now.saturating_add(w);
                e.expires_at.is_some_and(|t| t <= horizon)
                    || e.rotation_due_at().is_some_and(|t| t <= horizon)
            })
    };
    let mut out = Vec::new();
    let pattern = f.pattern.as_deref().unwrap_or("").to_lowercase();
    let named = |name: &str| pattern.is_empty() || name.to_lowercase().contains(&pattern);
    vault.payload.entries.scan_where(named, |e| {
        if wanted(e) && !crate::entry::is_internal(&e.name) {
            out.push(Summary {
                name: e.name.clone(),
                status: e.status.label().into(),
                scopes: e.scopes.clone(),
                tags: e.tags.clone(),
                url: e.url.clone(),
                username: e.username.clone(),
                expires_at: e.expires_at,
                rotation_due_at: e.rotation_due_at(),
            });
        }
        Ok(())
    })?;
    Ok(out)
}

/// How a front end that unlocks the vault itself runs requests: read, unlock, check for a
/// rollback, execute, and save under the writer lock when something changed.
#[derive(Clone, Debug)]
pub struct Session {
    /// The vault file.
    pub store: Store,
    /// Where the rollback memory lives (`None` disables it).
    pub state_dir: Option<PathBuf>,
    /// Write even though the file is older than the last generation written.
    pub accept_rollback: bool,
}

/// A response and the warnings to print beside it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Outcome<T> {
    /// The result.
    pub value: T,
    /// Diagnostics for stderr.
    pub warnings: Vec<String>,
}

impl Session {
    /// Takes the writer lock when the operation writes; readers take none.
    pub fn lock_for(&self, writes: bool) -> Result<Option<LockGuard>> {
        writes.then(|| self.store.lock()).transpose()
    }

    /// Opens the vault with a passphrase from `ask` (called only once the file parsed), runs
    /// `op`, and saves if the vault changed.
    pub fn with_vault<T>(
        &self,
        writes: bool,
        ask: impl FnOnce() -> Result<Passphrase>,
        op: impl FnOnce(&mut Vault) -> Result<T>,
    ) -> Result<Outcome<T>> {
        let unlock = |file: &crate::format::VaultFile| {
            let passphrase = ask()?;
            Vault::unlock(file, &passphrase)
        };
        self.with_vault_key(writes, unlock, op)
    }

    /// Like [`Session::with_vault`], with the vault key found by `unlock` from the parsed file
    /// (a recovery key opens its own slot this way).
    pub fn with_vault_key<T>(
        &self,
        writes: bool,
        unlock: impl FnOnce(&crate::format::VaultFile) -> Result<crate::secret::Key>,
        op: impl FnOnce(&mut Vault) -> Result<T>,
    ) -> Result<Outcome<T>> {
        let guard = self.lock_for(writes)?;
        let file = self.store.read()?;
        let key = unlock(&file)?;
        let mut vault = Vault::open_owned(file, key)?;
        self.transact(guard.as_ref(), &mut vault, op)
    }

    /// What every front end does once it holds an open vault (read under `guard` when the
    /// operation writes): check for a rollback, run `op`, and when the vault changed, seal it
    /// with a fresh nonce, replace the file and remember the generation written. The local
    /// path and the agent share this, so a save means the same thing whoever runs it.
    pub fn transact<T>(
        &self,
        guard: Option<&LockGuard>,
        vault: &mut Vault,
        op: impl FnOnce(&mut Vault) -> Result<T>,
    ) -> Result<Outcome<T>> {
        let mut warnings: Vec<String> = self.store.permission_warning().into_iter().collect();
        let remembered = self.remembered(vault);
        let rolled_back = remembered.is_some_and(|g| vault.generation() < g);
        if rolled_back {
            warnings.push(format!(
                "rollback: this vault is generation {} but generation {} was written here before; \
                 an older copy was restored (revoked tokens may be back). Writes are refused until you pass --accept-rollback",
                vault.generation(),
                remembered.unwrap_or_default()
            ));
        }
        let value = op(vault)?;
        if vault.is_dirty() {
            let Some(guard) = guard else {
                return Err(Error::Other(
                    "internal error: a read-only request changed the vault".into(),
                ));
            };
            if rolled_back && !self.accept_rollback {
                return Err(Error::Integrity(
                    "refusing to write over a rolled-back vault; check it, then rerun with --accept-rollback".into(),
                ));
            }
            let bytes = vault.seal(remembered.unwrap_or(0))?;
            let previous = if vault.forgets_previous() {
                Previous::Forget
            } else {
                Previous::Keep
            };
            self.store.replace(&bytes, guard, previous)?;
            vault.saved();
            self.remember(vault, &mut warnings);
        }
        Ok(Outcome { value, warnings })
    }

    /// Runs one request.
    pub fn run(
        &self,
        request: Request,
        ask: impl FnOnce() -> Result<Passphrase>,
    ) -> Result<Outcome<Response>> {
        let writes = request.writes();
        self.with_vault(writes, ask, |v| execute(v, request, crate::time::now()))
    }

    fn remembered(&self, vault: &Vault) -> Option<u64> {
        rollback::remembered(self.state_dir.as_deref()?, self.store.path(), vault.id())
    }

    /// Records the generation just written; a failure here is a warning, not an error.
    pub fn remember(&self, vault: &Vault, warnings: &mut Vec<String>) {
        if let Some(dir) = &self.state_dir
            && let Err(e) =
                rollback::remember(dir, self.store.path(), vault.id(), vault.generation())
        {
            warnings.push(format!(
                "could not record the vault generation for rollback detection: {e}"
            ));
        }
    }
}
