//! The issuer record of an entry: an internal entry that holds the recipe, the integrations,
//! the run in progress (JSON in its note, no secret), the pending new credential (its secret)
//! and the retired credential awaiting revocation (its history). See the module docs above.

use crate::entry::{Entry, EntryId, HistoryItem, ISSUER_PREFIX};
use crate::random::random_id;
use crate::secret::Token;
use crate::time::Time;
use crate::vault::Vault;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// How a credential is made and revoked at its issuer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "recipe", rename_all = "kebab-case")]
pub enum Recipe {
    /// Any issuer, through the user's own commands (`sh -c`).
    Command {
        /// Reads the current secret on stdin, prints the new one.
        create: String,
        /// Reads the old secret on stdin and revokes it.
        revoke: Option<String>,
        /// Reads the new secret on stdin; exit 0 when it works.
        verify: Option<String>,
    },
    /// An AWS IAM user's access key pair (key id = username, secret access key = secret),
    /// through the `aws` CLI.
    AwsIam {
        /// The IAM user; by default the one the key belongs to.
        user: Option<String>,
        /// Authenticate with the user's AWS environment (profile) instead of the entry's key.
        environment_credentials: bool,
    },
    /// A GitLab personal, project or group access token, through GitLab's REST API (`curl`) at
    /// the entry's url: one call makes the new token and revokes the old one.
    GitlabPat {
        /// The new token's lifetime in days (GitLab's default when unset).
        expires_in_days: Option<u32>,
        /// A project or group access token: the project or group (ID or full path); none for
        /// a personal access token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<GitlabOwner>,
    },
    /// An npm registry token, through the `npm` CLI (`npm token create` / `npm token revoke`)
    /// against the registry at the entry's url.
    Npm {
        /// The entry whose secret is the npm account's password (the registry asks for it to
        /// make a token); a seed in `NAME/otp` or `NAME/totp` gives the one-time code.
        password_entry: String,
    },
}

/// What a GitLab project or group access token belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GitlabOwner {
    /// A project access token of this project (ID or full path).
    Project(String),
    /// A group access token of this group (ID or full path).
    Group(String),
}

impl Recipe {
    /// `command`, `aws-iam`, `gitlab-pat` or `npm`.
    pub fn label(&self) -> &'static str {
        match self {
            Recipe::Command { .. } => "command",
            Recipe::AwsIam { .. } => "aws-iam",
            Recipe::GitlabPat { .. } => "gitlab-pat",
            Recipe::Npm { .. } => "npm",
        }
    }

    /// True when the recipe checks a new credential works (a `command` recipe only with
    /// `--verify`).
    pub fn verifies(&self) -> bool {
        !matches!(self, Recipe::Command { verify: None, .. })
    }

    /// True when the recipe revokes the old credential (a `command` recipe only with
    /// `--revoke`).
    pub fn revokes(&self) -> bool {
        !matches!(self, Recipe::Command { revoke: None, .. })
    }

    /// True when the issuer revokes the old credential in the same call that makes the new
    /// one: the run then makes the new one current right after storing it.
    pub fn revokes_on_create(&self) -> bool {
        matches!(self, Recipe::GitlabPat { .. })
    }
}

/// Something that holds a copy of the token and must get the new one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integration {
    /// A short name (`ci`, `deploy-config`), unique per entry.
    pub name: String,
    /// What updates it.
    pub action: IntegrationAction,
}

/// How an integration is updated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntegrationAction {
    /// `sh -c CMD` with variables set to fields of the new credential.
    Run {
        /// The command.
        command: String,
        /// `(VAR, field)`: `secret`, `username`, or any `get --field` name.
        env: Vec<(String, String)>,
    },
    /// A template whose `{{ jeton://NAME[#field] }}` references to this entry are filled with
    /// the new credential, written atomically (mode 0600) to `out`.
    Inject {
        /// Template path.
        template: String,
        /// Output path.
        out: String,
    },
}

/// One step of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Make the new credential at the issuer and store it as pending.
    Create,
    /// Update one integration with the new credential.
    Integration(String),
    /// Check the new credential works.
    Verify,
    /// Make the new credential current; the old one waits for revocation.
    Switch,
    /// Revoke the old credential at the issuer.
    RevokeOld,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Create => f.write_str("create the new credential at the issuer"),
            Step::Integration(n) => write!(f, "update integration '{n}'"),
            Step::Verify => f.write_str("verify the new credential"),
            Step::Switch => f.write_str("make the new credential current"),
            Step::RevokeOld => f.write_str("revoke the old credential at the issuer"),
        }
    }
}

/// A rotation in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// The steps, fixed when the run began.
    pub plan: Vec<Step>,
    /// The first step not done yet.
    pub next: usize,
    /// The leak order.
    pub leaked: bool,
    /// When it began.
    pub started_at: Time,
    /// The new credential's key id, once created.
    pub new_key_id: Option<String>,
    /// The old credential's key id (before the switch, the entry's username).
    pub old_key_id: Option<String>,
    /// The new credential's expiry, when the issuer said.
    #[serde(default)]
    pub new_expires_at: Option<Time>,
    /// The run's own id (random, hex), given to the `command` recipe's create command as
    /// `JETON_ROTATION_ID`, so that a script can find or reuse what it made for this run. A
    /// run begun by an older version gets one at its next create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What is known of the create step's call at the issuer.
    #[serde(default = "CreateCall::unrecorded")]
    pub create: CreateCall,
}

/// What is known of the create step's call at the issuer: recorded (and saved) before the call
/// is made, so that after an interruption the resumed run knows whether a credential may have
/// been made, and which of the issuer's keys were there before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum CreateCall {
    /// A run begun by a version of jeton that recorded none of this: a create may have run.
    Unrecorded,
    /// Not made yet.
    NotMade,
    /// Made at `at`.
    Made {
        /// When (jeton's clock), just before the call.
        at: Time,
        /// The key ids the issuer listed just before the call (`aws-iam`); `None` for an issuer
        /// whose credentials are not listed.
        keys_before: Option<Vec<String>>,
        /// How it ended.
        ended: CallEnd,
    },
}

impl CreateCall {
    fn unrecorded() -> CreateCall {
        CreateCall::Unrecorded
    }

    /// True when a credential may exist at the issuer that no run stored: the call was made and
    /// its end is unknown, or nothing was recorded.
    pub fn may_have_made(&self) -> bool {
        matches!(
            self,
            CreateCall::Unrecorded
                | CreateCall::Made {
                    ended: CallEnd::Unknown,
                    ..
                }
        )
    }
}

/// How a create call at the issuer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallEnd {
    /// Not known: jeton was stopped before it heard, or the call failed in a way that does not
    /// say whether the issuer made anything.
    Unknown,
    /// The issuer refused: nothing was made.
    Refused,
    /// The new credential was made and stored as pending.
    Succeeded,
}

/// The non-secret part of an issuer record, as stored in its note.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The recipe, if set.
    pub recipe: Option<Recipe>,
    /// Integrations, updated in this order.
    pub integrations: Vec<Integration>,
    /// The run in progress.
    pub run: Option<Run>,
}

/// The name of the issuer record of the entry with id `id`.
pub fn record_name(id: &EntryId) -> String {
    format!("{ISSUER_PREFIX}{}", data_encoding::HEXLOWER.encode(id))
}

/// The issuer record of `e` and its in-flight secrets (pending, retired), or empty ones.
pub fn load(vault: &Vault, e: &Entry) -> Result<(Record, Option<Token>, Option<Token>)> {
    let Some(r) = vault.payload.entries.get(&record_name(&e.id))? else {
        return Ok((Record::default(), None, None));
    };
    let record = serde_json::from_str(r.note.as_deref().unwrap_or("{}")).map_err(|_| {
        Error::Integrity(format!(
            "the issuer record of '{}' does not parse",
            crate::entry::printable(&e.name)
        ))
    })?;
    let retired = r.history.first().map(|h| h.secret.clone());
    Ok((record, r.secret.clone(), retired))
}

/// Writes the issuer record of the entry with id `id` (created when missing).
pub fn store(
    vault: &mut Vault,
    id: &EntryId,
    record: &Record,
    pending: Option<Token>,
    retired: Option<Token>,
    now: Time,
) -> Result<()> {
    let name = record_name(id);
    let note = serde_json::to_string(record)
        .map_err(|e| Error::Other(format!("cannot encode the issuer record: {e}")))?;
    let history = retired
        .map(|secret| HistoryItem {
            secret,
            created_at: now,
            retired_at: now,
        })
        .into_iter()
        .collect();
    if !vault.payload.entries.contains_key(&name) {
        vault
            .payload
            .entries
            .insert(Box::new(blank(name.clone(), now)?));
    }
    let r = vault.entry_mut(&name)?;
    r.note = Some(note);
    r.secret = pending;
    r.history = history;
    r.revision += 1;
    r.updated_at = now;
    Ok(())
}

fn blank(name: String, now: Time) -> Result<Entry> {
    Ok(Entry::blank(random_id()?, name, now))
}

/// Wipes the in-flight secrets and the run of the entry with id `id` (it was revoked), keeping
/// the recipe and integrations. Returns how many secrets were wiped.
pub fn wipe(vault: &mut Vault, id: &EntryId, now: Time) -> Result<usize> {
    let name = record_name(id);
    let Some(r) = vault.payload.entries.get(&name)? else {
        return Ok(0);
    };
    let mut record: Record =
        serde_json::from_str(r.note.as_deref().unwrap_or("{}")).unwrap_or_default();
    let wiped = usize::from(r.secret.is_some()) + r.history.len();
    if wiped == 0 && record.run.is_none() {
        return Ok(0);
    }
    record.run = None;
    store(vault, id, &record, None, None, now)?;
    // Wiped for good: the previous generation's backup must not keep them either.
    vault.forget_previous_on_save();
    Ok(wiped)
}

/// Removes the issuer record of the entry with id `id` (the entry was removed).
pub fn remove(vault: &mut Vault, id: &EntryId, now: Time) -> Result<()> {
    if let Some(r) = vault.payload.entries.remove(&record_name(id))? {
        vault
            .payload
            .deletions
            .push(crate::vault::Deletion { id: r.id, at: now });
        vault.forget_previous_on_save();
    }
    Ok(())
}
