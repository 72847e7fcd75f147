//! The `aws-iam` recipe, through the `aws` CLI: `iam create-access-key`, `iam list-access-keys`,
//! `iam delete-access-key` and `sts get-caller-identity`. The key id and secret go to the CLI in
//! its environment, never in its arguments.

use super::{Created, Credential, NotCreated, Orphans, exit_text, run};
use crate::process::Builder;
use crate::secret::Token;
use crate::time::Time;
use crate::{Error, Result};
use std::io::Write;
use std::process::Stdio;
use zeroize::Zeroizing;

/// How long a new AWS key may take to be accepted everywhere (IAM is eventually consistent).
const VERIFY_TRIES: u32 = 15;

/// AWS error codes that do not say whether the request was carried out (a server-side
/// failure or a timeout): any other error the service answers with is a refusal.
const UNSURE: &[&str] = &[
    "InternalFailure",
    "InternalError",
    "ServiceFailure",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// The `aws` command authenticated as `cred` (unless the recipe uses the user's environment),
/// with the user's profile, region and endpoint otherwise as they are.
fn aws(recipe_env: bool, cred: &Credential<'_>) -> Builder {
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

pub(super) fn need_key_id<'a>(cred: &Credential<'a>, what: &str) -> Result<&'a str> {
    cred.key_id.filter(|k| !k.is_empty()).ok_or_else(|| {
        Error::Usage(format!(
            "{what}: the entry has no access key id (set it as the username: \
             `jeton edit NAME --username AKIA...`)"
        ))
    })
}

/// `aws iam` with the user named by the recipe, if any.
fn iam(user: &Option<String>, env: bool, cred: &Credential<'_>, args: &[&str]) -> Builder {
    let mut c = aws(env, cred);
    c.arg("iam").args(args);
    if let Some(u) = user {
        c.arg("--user-name").arg(u);
    }
    c
}

/// `aws iam create-access-key`. Its stderr is passed on to the user; an answer `An error
/// occurred (CODE)` from the service is a refusal unless CODE is one of [`UNSURE`]; any other
/// failure (the CLI could not reach AWS, was killed, ...) may have made a key.
pub(super) fn create(
    user: &Option<String>,
    env: bool,
    current: &Credential<'_>,
) -> std::result::Result<Created, NotCreated> {
    let what = "create (aws iam create-access-key)";
    need_key_id(current, what)?;
    let mut c = iam(user, env, current, &["create-access-key"]);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c
        .spawn()
        .map_err(|e| Error::Other(format!("{what}: cannot start: {e}")))?;
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Other(format!("{what}: {e}")))?;
    let stdout = Zeroizing::new(out.stdout);
    let _ = std::io::stderr().write_all(&out.stderr);
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let code = text.lines().find_map(|l| {
            let rest = l.split_once("An error occurred (")?.1;
            Some(rest.split_once(')')?.0.to_owned())
        });
        return Err(match code {
            Some(code) if !UNSURE.contains(&code.as_str()) => NotCreated {
                error: Error::Other(format!("{what}: AWS refused ({code}); nothing was made")),
                refused: true,
            },
            _ => NotCreated {
                error: Error::Other(format!(
                    "{what}: the command failed ({}); AWS may have made a key",
                    exit_text(out.status)
                )),
                refused: false,
            },
        });
    }
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
    let reply: Reply = serde_json::from_slice(&stdout)
        .map_err(|_| Error::Other(format!("{what}: unexpected output from aws")))?;
    Ok(Created {
        secret: reply.access_key.secret_access_key,
        key_id: Some(reply.access_key.access_key_id),
        expires_at: None,
    })
}

/// One access key of an IAM user, as `list-access-keys` gives it.
struct ListedKey {
    id: String,
    created: Option<Time>,
}

fn list(
    user: &Option<String>,
    env: bool,
    cred: &Credential<'_>,
    what: &str,
) -> Result<Vec<ListedKey>> {
    let out = run(iam(user, env, cred, &["list-access-keys"]), None, what)?;
    let listed: serde_json::Value = serde_json::from_slice(&out)
        .map_err(|_| Error::Other(format!("{what}: unexpected output from aws")))?;
    Ok(listed["AccessKeyMetadata"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| {
            Some(ListedKey {
                id: k["AccessKeyId"].as_str()?.to_owned(),
                created: k["CreateDate"]
                    .as_str()
                    .and_then(|d| d.parse::<jiff::Timestamp>().ok())
                    .map(|t| t.as_second()),
            })
        })
        .collect())
}

/// The ids of the user's access keys now.
pub(super) fn keys(
    user: &Option<String>,
    env: bool,
    current: &Credential<'_>,
) -> Result<Vec<String>> {
    let what = "create (aws iam list-access-keys)";
    need_key_id(current, what)?;
    Ok(list(user, env, current, what)?
        .into_iter()
        .map(|k| k.id)
        .collect())
}

/// After a refused create with `keys` at the user: when they are the two AWS allows, names
/// them and says what to do.
pub(super) fn refusal_hint(keys: &[String], current: Option<&str>) -> Option<String> {
    let others: Vec<&str> = keys
        .iter()
        .map(String::as_str)
        .filter(|k| Some(*k) != current)
        .collect();
    if keys.len() < 2 || others.is_empty() {
        return None;
    }
    let mut named: Vec<String> = keys
        .iter()
        .map(|k| match Some(k.as_str()) == current {
            true => format!("{k} (this entry's)"),
            false => k.clone(),
        })
        .collect();
    let last = named.pop().unwrap_or_default();
    let one = if others.len() == 1 { others[0] } else { "KEY" };
    Some(format!(
        "the IAM user already has {} access keys, {} and {last}, the most AWS allows; jeton \
         deleted none: if nothing uses {}, delete it (`aws iam delete-access-key \
         --access-key-id {one}`)",
        keys.len(),
        named.join(", "),
        others.join(" or "),
    ))
}

/// See [`super::clean_orphans`]: deletes the keys absent from `keys_before` and made since
/// `since`; names the others besides the current one that are not in `keys_before`.
pub(super) fn clean_orphans(
    user: &Option<String>,
    env: bool,
    current: &Credential<'_>,
    keys_before: Option<&[String]>,
    since: Time,
) -> Result<Orphans> {
    let what = "create (aws iam list-access-keys)";
    let keep = need_key_id(current, what)?;
    let mut found = Orphans {
        listed: true,
        ..Orphans::default()
    };
    for k in list(user, env, current, what)? {
        if k.id == keep {
            continue;
        }
        let before = keys_before.map(|b| b.contains(&k.id));
        let made_since = k.created.is_some_and(|t| t >= since);
        match before {
            Some(false) if made_since => {
                let what =
                    "create (aws iam delete-access-key of a key the interrupted create made)";
                let args = ["delete-access-key", "--access-key-id", &k.id];
                run(iam(user, env, current, &args), None, what)?;
                found.deleted.push(k.id);
            }
            Some(true) => {}
            _ => found.unknown.push(k.id),
        }
    }
    Ok(found)
}

/// Checks the new key works: always with the key itself, whatever the recipe authenticates
/// with, since that key is what is being verified.
pub(super) fn verify(new: &Credential<'_>) -> Result<()> {
    let what = "verify (aws sts get-caller-identity with the new key)";
    let mut last = Ok(());
    for attempt in 0..VERIFY_TRIES {
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

/// Deletes the key `old`, authenticated with `auth`. Listed first: a key already gone (an
/// interrupted revoke) is done, not an error.
pub(super) fn revoke(
    user: &Option<String>,
    env: bool,
    old: &Credential<'_>,
    auth: &Credential<'_>,
) -> Result<()> {
    let what = "revoke (aws iam delete-access-key)";
    let id = need_key_id(old, what)?;
    if list(user, env, auth, what)?.iter().any(|k| k.id == id) {
        let args = ["delete-access-key", "--access-key-id", id];
        run(iam(user, env, auth, &args), None, what)?;
    }
    Ok(())
}
