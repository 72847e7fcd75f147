//! The child processes of a rotation: the recipes' commands at the issuer, and the
//! integrations. Every one is made by [`crate::process::command`] (no `JETON_*` credential
//! reaches it); a secret goes to a child on its stdin or in its own environment, never in argv.

use super::record::{GitlabOwner, Integration, IntegrationAction, Recipe};
use crate::entry::Entry;
use crate::process::Builder;
use crate::secret::Token;
use crate::{Error, Result};
use std::io::Write;
use std::process::Stdio;
use zeroize::Zeroizing;

/// The most a child may print (a token, or `aws` JSON).
const MAX_OUTPUT: usize = 1 << 20;

/// A credential as a recipe sees it: the secret and, for a key pair, the key id.
#[derive(Clone)]
pub struct Credential<'a> {
    /// The secret.
    pub secret: &'a Token,
    /// The key id (AWS access key id), if any.
    pub key_id: Option<&'a str>,
    /// Where it is used: the issuer's instance URL for `gitlab-pat`, the registry for `npm`.
    pub url: Option<&'a str>,
}

/// The account login a recipe needs to make a token (npm's registry asks for the password).
pub struct Login {
    /// The account's password.
    pub password: Token,
    /// The current one-time code, when the account has a seed in jeton.
    pub otp: Option<Zeroizing<String>>,
}

/// Why `create` made nothing, or may have made something.
pub struct NotCreated {
    /// What went wrong.
    pub error: Error,
    /// True when the issuer answered with a refusal: nothing was made. False when it is not
    /// known (the call may have gone through before it failed).
    pub refused: bool,
}

impl From<Error> for NotCreated {
    fn from(error: Error) -> NotCreated {
        NotCreated {
            error,
            refused: false,
        }
    }
}

/// What a resumed run found at the issuer after a create call it never heard the end of.
#[derive(Default)]
pub struct Orphans {
    /// Keys deleted: absent before the call, made after the run began, and never stored.
    pub deleted: Vec<String>,
    /// Keys besides the current one that are not known to be jeton's: left in place.
    pub unknown: Vec<String>,
    /// False when the issuer's credentials cannot be listed (`command`, `npm`): one may exist.
    pub listed: bool,
}

/// What `create` made.
pub struct Created {
    /// The new secret.
    pub secret: Token,
    /// Its key id, for a key pair.
    pub key_id: Option<String>,
    /// Its expiry, when the issuer said.
    pub expires_at: Option<crate::time::Time>,
}

fn shell(cmd: &str) -> Builder {
    let mut c = crate::process::command("sh");
    c.arg("-c").arg(cmd);
    c
}

/// Runs `c` with `input` on its stdin (or none), stdout captured, stderr shown to the user.
/// Fails naming `what` when it cannot start or exits non-zero.
fn run(mut c: Builder, input: Option<&str>, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    c.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    let mut child = c
        .spawn()
        .map_err(|e| Error::Other(format!("{what}: cannot start: {e}")))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        // A child that does not read its stdin closes the pipe: not an error in itself.
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Other(format!("{what}: {e}")))?;
    let stdout = Zeroizing::new(out.stdout);
    if !out.status.success() {
        return Err(Error::Other(format!(
            "{what}: the command failed ({})",
            exit_text(out.status)
        )));
    }
    if stdout.len() > MAX_OUTPUT {
        return Err(Error::Other(format!(
            "{what}: the command printed too much"
        )));
    }
    Ok(stdout)
}

fn exit_text(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "no exit status".into(),
    }
}

/// The new secret a `create` command printed: all of stdout, one trailing newline removed.
fn printed_secret(out: &[u8], what: &str) -> Result<Token> {
    let text = std::str::from_utf8(out)
        .map_err(|_| Error::Other(format!("{what}: the new secret is not UTF-8")))?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.is_empty() {
        return Err(Error::Other(format!(
            "{what}: the command printed no secret"
        )));
    }
    if text.contains('\n') {
        return Err(Error::Other(format!(
            "{what}: the command printed more than one line"
        )));
    }
    Ok(Token::new(text.to_owned()))
}

/// Refuses, before a run begins, an entry the recipe cannot work with (no key id for
/// `aws-iam`, no usable URL for `gitlab-pat` or `npm`).
pub fn preflight(recipe: &Recipe, current: &Credential<'_>) -> Result<()> {
    match recipe {
        Recipe::Command { .. } => Ok(()),
        Recipe::AwsIam { .. } => aws::need_key_id(current, "aws-iam").map(drop),
        Recipe::GitlabPat { .. } => gitlab::base(current).map(drop),
        Recipe::Npm { .. } => npm::registry(current).map(drop),
    }
}

/// The entry's url as the base of an API: https, or http to this machine only, so that a
/// token never crosses a network in clear. Without a trailing `/`.
fn secure_base(url: Option<&str>) -> Option<&str> {
    let url = url.unwrap_or_default().trim().trim_end_matches('/');
    let loopback = url.strip_prefix("http://").is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        matches!(host, "127.0.0.1" | "localhost" | "[::1]")
    });
    (url.starts_with("https://") || loopback).then_some(url)
}

/// Makes a new credential at the issuer, authenticated with the current one (and `login`,
/// for a recipe that needs the account's password). `run_id` is the run's id, which the
/// `command` recipe's create command gets as `JETON_ROTATION_ID`.
pub fn create(
    recipe: &Recipe,
    current: &Credential<'_>,
    login: Option<&Login>,
    run_id: Option<&str>,
) -> std::result::Result<Created, NotCreated> {
    match recipe {
        Recipe::Command { create, .. } => {
            let what = "create";
            let mut c = shell(create);
            if let Some(id) = run_id {
                c.env("JETON_ROTATION_ID", id);
            }
            let out = run(c, Some(current.secret.expose_secret()), what)?;
            Ok(Created {
                secret: printed_secret(&out, what)?,
                key_id: None,
                expires_at: None,
            })
        }
        Recipe::AwsIam {
            user,
            environment_credentials: env,
        } => aws::create(user, *env, current),
        Recipe::GitlabPat {
            expires_in_days,
            owner,
        } => Ok(gitlab::rotate(current, *expires_in_days, owner.as_ref())?),
        Recipe::Npm { password_entry } => {
            let login = login.ok_or_else(|| {
                Error::Usage(format!(
                    "npm: the password entry '{}' has no secret",
                    crate::entry::printable(password_entry)
                ))
            })?;
            Ok(npm::create(current, login)?)
        }
    }
}

/// The ids of the credentials the issuer has now, for an issuer that lists them (`aws-iam`:
/// the user's access keys); `None` for the others.
pub fn keys(recipe: &Recipe, current: &Credential<'_>) -> Result<Option<Vec<String>>> {
    let Recipe::AwsIam {
        user,
        environment_credentials,
    } = recipe
    else {
        return Ok(None);
    };
    aws::keys(user, *environment_credentials, current).map(Some)
}

/// What to do after the issuer refused a create, when the refusal has a known cause: for
/// `aws-iam`, a user that already has the two access keys AWS allows, named (never their
/// secrets).
pub fn refusal_hint(
    recipe: &Recipe,
    keys_before: Option<&[String]>,
    current: Option<&str>,
) -> Option<String> {
    match (recipe, keys_before) {
        (Recipe::AwsIam { .. }, Some(keys)) => aws::refusal_hint(keys, current),
        _ => None,
    }
}

/// Before creating again after a create call whose end is unknown: deletes the keys of the user
/// that were not there before that call (`keys_before`) and were made after the run began
/// (`since`, by the issuer's clock) — made by that call and never stored, nobody holds their
/// secret. Every other key is left alone; the ones besides the current key that are not known
/// to be older than the call are named in [`Orphans::unknown`]. Without `keys_before` (a run
/// begun by an older version) nothing is deleted. For GitLab, checks that the current token
/// still works; `command` and `npm` list nothing.
pub fn clean_orphans(
    recipe: &Recipe,
    current: &Credential<'_>,
    keys_before: Option<&[String]>,
    since: crate::time::Time,
) -> Result<Orphans> {
    let (user, env) = match recipe {
        Recipe::AwsIam {
            user,
            environment_credentials,
        } => (user, *environment_credentials),
        Recipe::GitlabPat { .. } => {
            // GitLab revokes the old token in the call that makes the new one: if that call
            // went through and its answer was lost, the current token no longer works.
            return gitlab::check_self(current, "create (GitLab, after an interruption)")
                .map(|()| Orphans {
                    listed: true,
                    ..Orphans::default()
                })
                .map_err(|_| {
                    Error::Other(
                        "the current token no longer works at GitLab: an interrupted rotation \
                         replaced it and the new token was never stored; make a new token by \
                         hand and `jeton rotate NAME` with it"
                            .into(),
                    )
                });
        }
        // A token made by an interrupted create was never stored: nobody holds it, and it
        // cannot be told from the account's other tokens (npm lists no names for legacy
        // tokens), so it is left for the user to check.
        Recipe::Command { .. } | Recipe::Npm { .. } => return Ok(Orphans::default()),
    };
    aws::clean_orphans(user, env, current, keys_before, since)
}

/// Checks that `new` works at the issuer.
pub fn verify(recipe: &Recipe, new: &Credential<'_>) -> Result<()> {
    match recipe {
        Recipe::Command { verify, .. } => match verify {
            Some(cmd) => run(shell(cmd), Some(new.secret.expose_secret()), "verify").map(drop),
            None => Ok(()),
        },
        Recipe::AwsIam { .. } => aws::verify(new),
        Recipe::GitlabPat { .. } => gitlab::check_self(
            new,
            "verify (GET personal_access_tokens/self with the new token)",
        ),
        Recipe::Npm { .. } => npm::verify(new),
    }
}

/// Revokes `old` at the issuer, authenticated with `auth` (the new credential after a switch,
/// or `old` itself when there is no other). Already revoked counts as done. `after_rotation`:
/// `old` was just replaced by a run (an issuer that revokes on create already did it).
pub fn revoke(
    recipe: &Recipe,
    old: &Credential<'_>,
    auth: &Credential<'_>,
    after_rotation: bool,
) -> Result<bool> {
    match recipe {
        Recipe::Command { revoke, .. } => match revoke {
            Some(cmd) => {
                run(shell(cmd), Some(old.secret.expose_secret()), "revoke")?;
                Ok(true)
            }
            None => Ok(false),
        },
        Recipe::AwsIam {
            user,
            environment_credentials: env,
        } => aws::revoke(user, *env, old, auth).map(|()| true),
        Recipe::GitlabPat { .. } if after_rotation => Ok(true),
        Recipe::GitlabPat { owner, .. } => gitlab::revoke(old, owner.as_ref()).map(|()| true),
        Recipe::Npm { .. } => npm::revoke(old, auth).map(|()| true),
    }
}

mod aws;

/// GitLab's personal access tokens API (docs.gitlab.com/ee/api/personal_access_tokens.html), and
/// for a project or group access token the project and group access tokens APIs
/// (docs.gitlab.com/ee/api/project_access_tokens.html, group_access_tokens.html), through
/// `curl`: the token goes in the `PRIVATE-TOKEN` header, which curl reads from its stdin
/// (`-H @-`), never from its arguments.
mod gitlab {
    use super::{Created, Credential, GitlabOwner, MAX_OUTPUT, run};
    use crate::process::Builder;
    use crate::secret::Token;
    use crate::{Error, Result};
    use zeroize::Zeroizing;

    fn curl(method: &str, url: &str) -> Builder {
        let mut c = crate::process::command("curl");
        c.args([
            "--silent",
            "--show-error",
            "--fail-with-body",
            "--proto",
            "=https,http",
        ])
        .args(["--max-time", "60", "--max-filesize"])
        .arg(MAX_OUTPUT.to_string())
        .args(["--request", method, "--header", "@-", "--url", url]);
        c
    }

    fn header(token: &Token) -> Zeroizing<String> {
        Zeroizing::new(format!("PRIVATE-TOKEN: {}\n", token.expose_secret()))
    }

    fn call(
        method: &str,
        path: &str,
        cred: &Credential<'_>,
        form: &[String],
        what: &str,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let url = format!("{}/api/v4/{path}", base(cred)?);
        let mut c = curl(method, &url);
        for f in form {
            c.arg("--data-urlencode").arg(f);
        }
        run(c, Some(&header(cred.secret)), what)
    }

    /// The instance URL (the entry's url, without a trailing `/api/v4`): https, or http to this
    /// machine only, so that a token never crosses a network in clear.
    pub(super) fn base(cred: &Credential<'_>) -> Result<String> {
        let url = super::secure_base(cred.url).ok_or_else(|| {
            Error::Usage(
                "gitlab-pat needs the instance URL as the entry's url (https://gitlab.example.com; \
                 http only on this machine)"
                    .into(),
            )
        })?;
        Ok(url.strip_suffix("/api/v4").unwrap_or(url).to_owned())
    }

    /// The API path of a project's or group's access token `id` (the owner URL-encoded, as
    /// the API takes a full path: `group%2Fproject`).
    fn owned_token(owner: &GitlabOwner, id: u64) -> String {
        let (kind, owner) = match owner {
            GitlabOwner::Project(p) => ("projects", p),
            GitlabOwner::Group(g) => ("groups", g),
        };
        let encoded: String = owner
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        format!("{kind}/{encoded}/access_tokens/{id}")
    }

    /// The id of the token `cred` (a project or group access token is a personal access
    /// token of the project's or group's bot user, so `personal_access_tokens/self` knows it).
    fn self_id(cred: &Credential<'_>, what: &str) -> Result<u64> {
        let out = call("GET", "personal_access_tokens/self", cred, &[], what)?;
        let info: serde_json::Value = serde_json::from_slice(&out)
            .map_err(|_| Error::Other(format!("{what}: unexpected answer from GitLab")))?;
        info["id"]
            .as_u64()
            .ok_or_else(|| Error::Other(format!("{what}: GitLab gave no token id")))
    }

    pub(super) fn rotate(
        current: &Credential<'_>,
        days: Option<u32>,
        owner: Option<&GitlabOwner>,
    ) -> Result<Created> {
        let path = match owner {
            None => "personal_access_tokens/self/rotate".to_owned(),
            Some(o) => {
                let id = self_id(current, "create (GET personal_access_tokens/self)")?;
                format!("{}/rotate", owned_token(o, id))
            }
        };
        let what = &format!("create (POST {path})");
        let form: Vec<String> = days
            .map(|d| {
                let at = crate::time::now().saturating_add(i64::from(d) * 86_400);
                format!("expires_at={}", crate::time::date(at))
            })
            .into_iter()
            .collect();
        let out = call("POST", &path, current, &form, what)?;
        #[derive(serde::Deserialize)]
        struct Reply {
            #[serde(with = "crate::secret::serde_token")]
            token: Token,
            expires_at: Option<String>,
        }
        let reply: Reply = serde_json::from_slice(&out)
            .map_err(|_| Error::Other(format!("{what}: unexpected answer from GitLab")))?;
        let expires_at = reply
            .expires_at
            .as_deref()
            .and_then(|d| crate::time::parse_when(d, crate::time::now()).ok());
        Ok(Created {
            secret: reply.token,
            key_id: None,
            expires_at,
        })
    }

    pub(super) fn check_self(cred: &Credential<'_>, what: &str) -> Result<()> {
        let out = call("GET", "personal_access_tokens/self", cred, &[], what)?;
        let info: serde_json::Value = serde_json::from_slice(&out)
            .map_err(|_| Error::Other(format!("{what}: unexpected answer from GitLab")))?;
        if info["active"] == serde_json::Value::Bool(true) {
            Ok(())
        } else {
            Err(Error::Other(format!(
                "{what}: GitLab says the token is not active"
            )))
        }
    }

    pub(super) fn revoke(cred: &Credential<'_>, owner: Option<&GitlabOwner>) -> Result<()> {
        let path = match owner {
            None => "personal_access_tokens/self".to_owned(),
            Some(o) => owned_token(
                o,
                self_id(cred, "revoke (GET personal_access_tokens/self)")?,
            ),
        };
        call(
            "DELETE",
            &path,
            cred,
            &[],
            &format!("revoke (DELETE {path})"),
        )
        .map(drop)
    }
}

/// An npm registry's token API (the npm registry's "User Authentication" API document,
/// github.com/npm/registry docs/user/authentication.md: `GET`/`POST /-/npm/v1/tokens`,
/// `DELETE /-/npm/v1/tokens/token/:key`), through the `npm` CLI itself. Each call gets its own
/// configuration: a 0600 `npmrc` in a fresh private directory of the runtime directory holding
/// the registry, the token (`//host/path/:_authToken`) and a cache of its own, named by
/// `--userconfig`; `npm token create` reads the account's password on its stdin (at its
/// prompt, as npm 10 and 11 both ask), and a one-time code in that child's environment
/// (`npm_config_otp`). The file is overwritten and the directory removed when the call ends,
/// or when jeton is stopped by a signal. A token is named to `npm token
/// revoke` by its key, the hex SHA-512 of the token, never by itself.
mod npm {
    use super::{Created, Credential, Login, run};
    use crate::process::Builder;
    use crate::runtime::{Purpose, Scratch};
    use crate::secret::Token;
    use crate::{Error, Result};
    use std::path::PathBuf;
    use zeroize::Zeroizing;

    /// The registry URL (the entry's url), ending in `/`.
    pub(super) fn registry(cred: &Credential<'_>) -> Result<String> {
        let url = super::secure_base(cred.url).ok_or_else(|| {
            Error::Usage(
                "npm needs the registry URL as the entry's url (https://registry.npmjs.org; \
                 http only on this machine)"
                    .into(),
            )
        })?;
        if url.contains(['?', '#', '@']) || url.chars().any(|c| c.is_whitespace()) {
            return Err(Error::Usage(
                "npm: the entry's url must be a plain registry URL".into(),
            ));
        }
        Ok(format!("{url}/"))
    }

    /// The token's key in the registry's token list: the hex SHA-512 of the token.
    pub(super) fn key(token: &Token) -> String {
        use sha2::Digest;
        data_encoding::HEXLOWER.encode(&sha2::Sha512::digest(token.expose_secret().as_bytes()))
    }

    /// One npm configuration: a private directory in the runtime directory (never `$TMPDIR`),
    /// wiped and removed on drop, on SIGHUP, SIGTERM and SIGINT, or by the next jeton if this
    /// one is killed ([`crate::runtime::Scratch`]).
    struct Session {
        scratch: Scratch,
        rc: PathBuf,
    }

    impl Session {
        fn new(cred: &Credential<'_>) -> Result<Session> {
            let registry = registry(cred)?;
            let token = cred.secret.expose_secret();
            // npmrc is an ini file: a token is one plain word in it.
            if token.is_empty()
                || !token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=:".contains(&b))
            {
                return Err(Error::Usage(
                    "npm: the token holds characters an npm configuration cannot carry".into(),
                ));
            }
            let nerf = registry
                .split_once("://")
                .map_or(registry.as_str(), |(_, rest)| rest);
            let scratch = Scratch::new(Purpose::Npm)?;
            let text = Zeroizing::new(format!(
                "registry={registry}\n//{nerf}:_authToken={token}\ncache={}\nlogs-max=0\n\
                 update-notifier=false\nfund=false\naudit=false\n",
                scratch.path().join("cache").display()
            ));
            let rc = scratch
                .create("npmrc", text.as_bytes())
                .map_err(|e| Error::Other(format!("npm: cannot write its configuration: {e}")))?;
            Ok(Session { scratch, rc })
        }

        /// `npm ARGS` with this configuration only: the user's `npm_config_*` variables and
        /// any project `.npmrc` would override it, so neither reaches npm.
        fn npm(&self, args: &[&str]) -> Builder {
            let mut c = crate::process::command("npm");
            for (name, _) in std::env::vars_os() {
                let lower = name.to_string_lossy().to_ascii_lowercase();
                if lower.starts_with("npm_config_") {
                    c.env_remove(name);
                }
            }
            c.current_dir(self.scratch.path())
                .args(args)
                .arg("--userconfig")
                .arg(&self.rc);
            c
        }

        /// The keys of the account's tokens (`npm token list`).
        fn keys(&self, what: &str) -> Result<Vec<String>> {
            let out = run(self.npm(&["token", "list", "--json"]), None, what)?;
            let list: serde_json::Value = serde_json::from_slice(&out)
                .map_err(|_| Error::Other(format!("{what}: unexpected output from npm")))?;
            Ok(list
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["key"].as_str().map(str::to_owned))
                .collect())
        }
    }

    pub(super) fn create(current: &Credential<'_>, login: &Login) -> Result<Created> {
        let what = "create (npm token create)";
        let password = login.password.expose_secret();
        if password.contains(['\n', '\r']) {
            return Err(Error::Usage(format!(
                "{what}: the password holds a line break, which npm's prompt cannot take"
            )));
        }
        let session = Session::new(current)?;
        // Not --json: npm 11 prints the new token as `***` in JSON; only its
        // `Created token TOKEN` line (npm 10: `Created publish token TOKEN`) shows it.
        let mut c = session.npm(&["token", "create"]);
        if let Some(otp) = &login.otp {
            c.env("npm_config_otp", otp.as_str());
        }
        let line = Zeroizing::new(format!("{password}\n"));
        let out = run(c, Some(line.as_str()), what)?;
        let text = std::str::from_utf8(&out)
            .map_err(|_| Error::Other(format!("{what}: unexpected output from npm")))?;
        let token = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Created "))
            .filter(|l| l.contains("token "))
            .find_map(|l| l.split_whitespace().last())
            .filter(|t| !t.is_empty() && !t.contains('*'))
            .ok_or_else(|| Error::Other(format!("{what}: npm printed no new token")))?;
        let expires_at = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("expires: "))
            .and_then(|d| crate::time::parse_when(d.trim(), crate::time::now()).ok());
        Ok(Created {
            secret: Token::new(token.to_owned()),
            key_id: None,
            expires_at,
        })
    }

    pub(super) fn verify(new: &Credential<'_>) -> Result<()> {
        let what = "verify (npm token list with the new token)";
        let keys = Session::new(new)?.keys(what)?;
        if keys.contains(&key(new.secret)) {
            Ok(())
        } else {
            Err(Error::Other(format!(
                "{what}: the registry does not list the new token"
            )))
        }
    }

    /// Revokes `old`, authenticated with `auth`. A token the registry no longer lists (an
    /// interrupted revoke) is done.
    pub(super) fn revoke(old: &Credential<'_>, auth: &Credential<'_>) -> Result<()> {
        let what = "revoke (npm token revoke)";
        let session = Session::new(auth)?;
        let key = key(old.secret);
        if session.keys(what)?.contains(&key) {
            run(
                session.npm(&["token", "revoke", "--json", &key]),
                None,
                what,
            )?;
        }
        Ok(())
    }
}

/// Updates one integration with the new credential `new` of `entry` (whose other fields are
/// as stored).
pub fn integrate(i: &Integration, entry: &Entry, new: &Credential<'_>) -> Result<()> {
    let what = format!("integration '{}'", i.name);
    let field = |f: &str| -> Result<Option<Zeroizing<String>>> {
        Ok(match f {
            "secret" | "password" => Some(Zeroizing::new(new.secret.expose_secret().to_owned())),
            "username" | "user" if new.key_id.is_some() => {
                new.key_id.map(|k| Zeroizing::new(k.to_owned()))
            }
            _ => entry.field(f)?.map(Zeroizing::new),
        })
    };
    match &i.action {
        IntegrationAction::Run { command, env } => {
            let mut c = shell(command);
            for (var, f) in env {
                let value = field(f)?.ok_or_else(|| {
                    Error::Other(format!("{what}: the field '{f}' of the entry is empty"))
                })?;
                c.env(var, value.as_str());
            }
            run(c, None, &what).map(drop)
        }
        IntegrationAction::Inject { template, out } => {
            use crate::integrations::{Resolved, inject};
            let bytes = crate::store::read_input(
                std::path::Path::new(template),
                MAX_OUTPUT as u64,
                "template",
            )?;
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| Error::Usage(format!("{what}: the template is not UTF-8")))?;
            let pieces = inject::parse(text)?;
            let mut values = Vec::new();
            for r in inject::references(&pieces) {
                if r.name != entry.name {
                    return Err(Error::Usage(format!(
                        "{what}: the template refers to '{}'; an integration fills only the \
                         rotated entry's references",
                        crate::entry::printable(&r.name)
                    )));
                }
                let value = field(r.field.as_deref().unwrap_or("secret"))?
                    .ok_or_else(|| Error::Other(format!("{what}: the field of {r} is empty")))?;
                values.push(Resolved {
                    reference: r,
                    value: Token::new(value.to_string()),
                    expires_at: None,
                });
            }
            let rendered = inject::render(&pieces, &values)?;
            crate::store::write_atomic(std::path::Path::new(out), rendered.as_bytes())
        }
    }
}
