//! Rotation at the issuer: a new credential is made where the token was issued, handed to every
//! integration that uses it, verified, made current, and only then is the old one revoked.
//!
//! The pipeline is a state machine whose state lives inside the encrypted vault, saved through
//! the normal save path after every step, so that a crash or a failure at any step leaves the
//! old credential current and working, and `rotate --resume` continues from the step reached.
//! The new credential is stored as pending before anything else uses it: it is never only in
//! memory. The front end runs the child processes ([`pipeline`]); every change to the vault is an
//! [`IssuerRequest`], which the agent can run like any other request.
//!
//! The state of one entry is its *issuer record* ([`record`]): an internal entry named
//! `.issuer/<entry id in hex>` whose note holds the recipe, the integrations and the run (as
//! JSON, no secret), whose secret holds the pending new credential and whose history holds the
//! retired credential awaiting revocation. Keyed by the entry's stable id, it follows renames;
//! `list` and `check` do not show it; `revoke` wipes its secrets and `rm` removes it.

use crate::entry::Entry;
use crate::secret::Token;
use crate::time::Time;
use crate::vault::Vault;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

pub mod pipeline;
pub mod recipe;
pub mod record;
mod steps;

pub use record::{
    CallEnd, CreateCall, GitlabOwner, Integration, IntegrationAction, Recipe, Record, Run, Step,
};

/// One change to, or read of, the issuer state of an entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum IssuerRequest {
    /// Attach (replace) the rotation recipe.
    SetRecipe {
        /// Entry name.
        name: String,
        /// The recipe.
        recipe: Recipe,
    },
    /// Add (or replace, by name) an integration.
    AddIntegration {
        /// Entry name.
        name: String,
        /// The integration.
        integration: Integration,
    },
    /// Remove an integration by name.
    RemoveIntegration {
        /// Entry name.
        name: String,
        /// Integration name.
        integration: String,
    },
    /// The entry with its issuer record and in-flight secrets, for the pipeline (secrets
    /// included, as `get` gives them).
    State {
        /// Entry name.
        name: String,
    },
    /// Every entry with an issuer record: names, recipes and runs, never secrets.
    List,
    /// Starts a run with this plan.
    Begin {
        /// Entry name.
        name: String,
        /// Steps, in order.
        plan: Vec<Step>,
        /// The leak order (revoke as soon as the new credential is stored).
        leaked: bool,
    },
    /// Records, before the create step calls the issuer, that it is about to, with the key ids
    /// the issuer lists now; gives the run its id if it has none.
    CreateCalled {
        /// Entry name.
        name: String,
        /// The issuer's key ids before the call (`aws-iam`), if it lists them.
        keys_before: Option<Vec<String>>,
    },
    /// Records that the issuer refused the create step's call: nothing was made.
    CreateRefused {
        /// Entry name.
        name: String,
    },
    /// Records step `index` of the run as done.
    Done {
        /// Entry name.
        name: String,
        /// Which step (must be the run's next one).
        index: usize,
        /// What the step produced.
        outcome: Outcome,
    },
    /// Wipes the in-flight secrets and the run (after `revoke --at-issuer`).
    Forget {
        /// Entry name.
        name: String,
    },
}

impl IssuerRequest {
    /// True when the request may change the vault.
    pub fn writes(&self) -> bool {
        !matches!(self, IssuerRequest::State { .. } | IssuerRequest::List)
    }
}

/// What a step produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Outcome {
    /// The step changed nothing but the state.
    Nothing,
    /// `revoke-old`: jeton could not revoke the old credential (no recipe, or one without a
    /// revoke command); the user was told to.
    LeftToUser,
    /// `create`: the new credential and, for a key pair, its id.
    Created {
        /// The new secret.
        #[serde(with = "crate::secret::serde_token")]
        secret: Token,
        /// The new key id (the entry's username after the switch).
        key_id: Option<String>,
        /// The new credential's expiry, when the issuer said.
        expires_at: Option<Time>,
    },
}

/// An entry's issuer state, for the pipeline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    /// The entry (with its current secret).
    pub entry: Box<Entry>,
    /// Its issuer record (empty when none).
    pub record: Record,
    /// The new credential of a run, stored before the switch.
    #[serde(with = "crate::secret::serde_opt_token")]
    pub pending: Option<Token>,
    /// The old credential after the switch, until it is revoked.
    #[serde(with = "crate::secret::serde_opt_token")]
    pub retired: Option<Token>,
}

/// One line of [`IssuerRequest::List`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Listed {
    /// Entry name.
    pub name: String,
    /// The recipe, if one is set.
    pub recipe: Option<Recipe>,
    /// The run in progress, if any.
    pub run: Option<Run>,
}

/// What an issuer request produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum IssuerResponse {
    /// A change was made.
    Done(String),
    /// See [`IssuerRequest::State`].
    State(Box<State>),
    /// See [`IssuerRequest::List`].
    List(Vec<Listed>),
}

/// Runs one issuer request against an unlocked vault.
pub fn execute(vault: &mut Vault, request: IssuerRequest, now: Time) -> Result<IssuerResponse> {
    steps::execute(vault, request, now)
}

/// The error for a run that is not where a request expects it.
fn out_of_step(name: &str, what: &str) -> Error {
    Error::Other(format!(
        "the rotation of '{}' {what} (another jeton changed it?); see `jeton issuer show {}`",
        crate::entry::printable(name),
        crate::entry::printable(name)
    ))
}
