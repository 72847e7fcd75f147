//! The child processes of a rotation: the recipes' commands at the issuer, and the
//! integrations. Every one is made by [`crate::process::command`] (no `JETON_*` credential
//! reaches it); a secret goes to a child on its stdin or in its own environment, never in argv.

use super::record::{Integration, IntegrationAction, Recipe};
use crate::entry::Entry;
use crate::secret::Token;
use crate::{Error, Result};
use std::io::Write;
use std::process::{Command, Stdio};
use zeroize::Zeroizing;

/// The most a child may print (a token, or `aws` JSON).
const MAX_OUTPUT: usize = 1 << 20;
/// How long a new AWS key may take to be accepted everywhere (IAM is eventually consistent).
const AWS_VERIFY_TRIES: u32 = 15;

/// A credential as a recipe sees it: the secret and, for a key pair, the key id.
#[derive(Clone)]
pub struct Credential<'a> {
    /// The secret.
    pub secret: &'a Token,
    /// The key id (AWS access key id), if any.
    pub key_id: Option<&'a str>,
}

/// What `create` made.
pub struct Created {
    /// The new secret.
    pub secret: Token,
    /// Its key id, for a key pair.
    pub key_id: Option<String>,
}

fn shell(cmd: &str) -> Command {
    let mut c = crate::process::command("sh");
    c.arg("-c").arg(cmd);
    c
}

/// Runs `c` with `input` on its stdin (or none), stdout captured, stderr shown to the user.
/// Fails naming `what` when it cannot start or exits non-zero.
fn run(mut c: Command, input: Option<&str>, what: &str) -> Result<Zeroizing<Vec<u8>>> {
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

/// The `aws` command authenticated as `cred` (unless the recipe uses the user's environment),
/// with the user's profile, region and endpoint otherwise as they are.
fn aws(recipe_env: bool, cred: &Credential<'_>) -> Command {
    let mut c = crate::process::command("aws");
    if !recipe_env {
        c.env("AWS_ACCESS_KEY_ID", cred.key_id.unwrap_or_default())
            .env("AWS_SECRET_ACCESS_KEY", cred.secret.expose_secret())
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_SECURITY_TOKEN")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_DEFAULT_PROFILE");
    }
    c.arg("--output").arg("json");
    c
}

fn need_key_id<'a>(cred: &Credential<'a>, what: &str) -> Result<&'a str> {
    cred.key_id.filter(|k| !k.is_empty()).ok_or_else(|| {
        Error::Usage(format!(
            "{what}: the entry has no access key id (set it as the username: \
             `jeton edit NAME --username AKIA...`)"
        ))
    })
}

/// `aws iam` with the user named by the recipe, if any.
fn iam(user: &Option<String>, env: bool, cred: &Credential<'_>, args: &[&str]) -> Command {
    let mut c = aws(env, cred);
    c.arg("iam").args(args);
    if let Some(u) = user {
        c.arg("--user-name").arg(u);
    }
    c
}

/// Makes a new credential at the issuer, authenticated with the current one.
pub fn create(recipe: &Recipe, current: &Credential<'_>) -> Result<Created> {
    match recipe {
        Recipe::Command { create, .. } => {
            let what = "create";
            let out = run(shell(create), Some(current.secret.expose_secret()), what)?;
            Ok(Created {
                secret: printed_secret(&out, what)?,
                key_id: None,
            })
        }
        Recipe::AwsIam {
            user,
            environment_credentials: env,
        } => {
            let what = "create (aws iam create-access-key)";
            need_key_id(current, what)?;
            let out = run(iam(user, *env, current, &["create-access-key"]), None, what)?;
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct Reply {
                access_key: Key,
            }
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct Key {
                access_key_id: String,
                #[serde(with = "crate::secret::serde_token")]
                secret_access_key: Token,
            }
            let reply: Reply = serde_json::from_slice(&out)
                .map_err(|_| Error::Other(format!("{what}: unexpected output from aws")))?;
            Ok(Created {
                secret: reply.access_key.secret_access_key,
                key_id: Some(reply.access_key.access_key_id),
            })
        }
    }
}

/// Before creating again after an interruption: deletes any key of the user other than
/// `keep`, since a key made by an interrupted create was never stored and nobody holds its
/// secret (AWS allows two keys per user, so it would also block the new one). Does nothing
/// for the `command` recipe.
pub fn clean_orphans(recipe: &Recipe, current: &Credential<'_>) -> Result<Vec<String>> {
    let Recipe::AwsIam {
        user,
        environment_credentials: env,
    } = recipe
    else {
        return Ok(vec![]);
    };
    let what = "create (aws iam list-access-keys)";
    let keep = need_key_id(current, what)?;
    let out = run(iam(user, *env, current, &["list-access-keys"]), None, what)?;
    let listed: serde_json::Value = serde_json::from_slice(&out)
        .map_err(|_| Error::Other(format!("{what}: unexpected output from aws")))?;
    let mut deleted = Vec::new();
    for k in listed["AccessKeyMetadata"].as_array().into_iter().flatten() {
        let Some(id) = k["AccessKeyId"].as_str() else {
            continue;
        };
        if id != keep {
            let what = "create (aws iam delete-access-key of an orphan key)";
            let args = ["delete-access-key", "--access-key-id", id];
            run(iam(user, *env, current, &args), None, what)?;
            deleted.push(id.to_owned());
        }
    }
    Ok(deleted)
}

/// Checks that `new` works at the issuer.
pub fn verify(recipe: &Recipe, new: &Credential<'_>) -> Result<()> {
    match recipe {
        Recipe::Command { verify, .. } => match verify {
            Some(cmd) => run(shell(cmd), Some(new.secret.expose_secret()), "verify").map(drop),
            None => Ok(()),
        },
        Recipe::AwsIam {
            environment_credentials: env,
            ..
        } => {
            let what = "verify (aws sts get-caller-identity with the new key)";
            // Always with the new key itself: that is what is being verified.
            let _ = env;
            let mut last = Ok(());
            for attempt in 0..AWS_VERIFY_TRIES {
                if attempt > 0 {
                    std::thread::sleep(std::time::Duration::from_secs(2));
                }
                let mut c = aws(false, new);
                c.arg("sts").arg("get-caller-identity");
                last = run(c, None, what).map(drop);
                if last.is_ok() {
                    break;
                }
            }
            last
        }
    }
}

/// Revokes `old` at the issuer, authenticated with `auth` (the new credential after a switch,
/// or `old` itself when there is no other). Already revoked counts as done.
pub fn revoke(recipe: &Recipe, old: &Credential<'_>, auth: &Credential<'_>) -> Result<bool> {
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
        } => {
            let what = "revoke (aws iam delete-access-key)";
            let id = need_key_id(old, what)?;
            // Listed first: a key already gone (an interrupted revoke) is done, not an error.
            let out = run(iam(user, *env, auth, &["list-access-keys"]), None, what)?;
            let listed: serde_json::Value = serde_json::from_slice(&out)
                .map_err(|_| Error::Other(format!("{what}: unexpected output from aws")))?;
            let present = listed["AccessKeyMetadata"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["AccessKeyId"].as_str() == Some(id));
            if present {
                let args = ["delete-access-key", "--access-key-id", id];
                run(iam(user, *env, auth, &args), None, what)?;
            }
            Ok(true)
        }
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
