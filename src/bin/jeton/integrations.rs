//! `exec`, `inject`, and the git, cargo and docker credential helpers (SPEC §8).

use crate::ctx::{Ctx, Exit, emit, unexpected};
use crate::output::{OutError, write_stdout};
use crate::prompt::{raw_stdin, read_secret};
use clap::Args;
use jeton::entry::printable;
use jeton::integrations::exec::{self as jexec, EnvValue};
use jeton::integrations::{
    Credential, CredentialQuery, IntegrationRequest, IntegrationResponse, Reference, Resolved,
    cargo, docker, git_credential, inject as jinject,
};
use jeton::request::{Request, Response};
use jeton::secret::SecretLines;
use jeton::{Error, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Largest template or env file read.
const MAX_TEMPLATE: u64 = 16 << 20;
/// Largest input a credential helper reads from its tool.
const MAX_HELPER_INPUT: u64 = 1 << 20;

/// `exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Set VAR to an entry's secret, or to one field with NAME#field (repeatable)
    #[arg(long = "env", value_name = "VAR=NAME[#field]")]
    pub env: Vec<String>,
    /// Read VAR=jeton://NAME[#field] lines (other VAR=value lines pass through)
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// The command and its arguments, after --
    #[arg(last = true, required = true, value_name = "CMD", value_parser = clap::value_parser!(std::ffi::OsString))]
    pub command: Vec<std::ffi::OsString>,
}

/// `inject`.
#[derive(Debug, Args)]
pub struct InjectArgs {
    /// Template file [default: stdin]
    #[arg(short = 'i', long = "in", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Output file, written atomically with mode 0600 [default: stdout]
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Rewrites the ways other tools start jeton into ordinary subcommands: `jeton --cargo-plugin`
/// and the names `docker-credential-jeton` / `cargo-credential-jeton` (links to jeton).
pub fn invocation(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.collect();
    let name = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let insert = |args: &mut Vec<OsString>, sub: &str| {
        if args.is_empty() {
            args.push("jeton".into());
        }
        args.insert(1, sub.into());
    };
    if name == docker::HELPER {
        // The reference helpers take `--version`/`-v` as well as `version`.
        if let Some(a) = args.get_mut(1).filter(|a| *a == "--version" || *a == "-v") {
            *a = "version".into();
        }
        insert(&mut args, "docker-credential");
    } else if name == "cargo-credential-jeton" || args.get(1).is_some_and(|a| a == "--cargo-plugin")
    {
        insert(&mut args, "cargo-credential");
        if !args.iter().any(|a| a == "--cargo-plugin") {
            args.push("--cargo-plugin".into());
        }
    }
    args
}

fn lookup(ctx: &Ctx, request: IntegrationRequest) -> Result<IntegrationResponse> {
    match ctx.run(Request::Integration(request))? {
        Response::Integration(r) => Ok(r),
        _ => Err(unexpected()),
    }
}

fn resolve(ctx: &Ctx, refs: Vec<Reference>) -> Result<Vec<Resolved>> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    match lookup(ctx, IntegrationRequest::Resolve(refs))? {
        IntegrationResponse::Values(v) => {
            for r in &v {
                warn_if_expired(&r.reference.name, r.expires_at);
            }
            Ok(v)
        }
        _ => Err(unexpected()),
    }
}

fn find(ctx: &Ctx, query: CredentialQuery) -> Result<Credential> {
    match lookup(ctx, IntegrationRequest::FindCredential(query))? {
        IntegrationResponse::Credential(c) => Ok(c),
        _ => Err(unexpected()),
    }
}

fn read_file(path: &Path, what: &str) -> Result<Zeroizing<String>> {
    let bytes = jeton::store::read_input(path, MAX_TEMPLATE, what)?;
    std::str::from_utf8(&bytes)
        .map(|text| Zeroizing::new(text.to_owned()))
        .map_err(|_| Error::Usage(format!("the {what} is not valid UTF-8")))
}

/// `exec`: resolve everything, then become the command.
pub fn exec(ctx: &Ctx, a: ExecArgs) -> Result<Exit> {
    let mut vars: Vec<(String, EnvValue)> = match &a.env_file {
        Some(p) => jexec::parse_env_file(&read_file(p, "env file")?)?,
        None => Vec::new(),
    };
    for spec in &a.env {
        let (var, r) = jexec::parse_env_flag(spec)?;
        vars.push((var, EnvValue::Reference(r)));
    }
    let Some((program, args)) = a.command.split_first() else {
        return Err(Error::Usage("exec needs a command after --".into()));
    };
    let mut refs: Vec<Reference> = Vec::new();
    for (_, v) in &vars {
        if let EnvValue::Reference(r) = v
            && !refs.contains(r)
        {
            refs.push(r.clone());
        }
    }
    let values = resolve(ctx, refs)?;
    let mut env: Vec<(String, Zeroizing<String>)> = Vec::with_capacity(vars.len());
    for (var, v) in vars {
        let value = match v {
            EnvValue::Literal(s) => Zeroizing::new(s),
            EnvValue::Reference(r) => values
                .iter()
                .find(|x| x.reference == r)
                .map(|x| Zeroizing::new(x.value.expose_secret().to_owned()))
                .ok_or_else(unexpected)?,
        };
        env.push((var, value));
    }
    drop(values);
    let failure = jexec::exec(program, args, &env);
    eprintln!(
        "jeton: error: {}",
        jeton::text::Shown::line(&failure.message)
    );
    Ok(Exit::Code(failure.code))
}

/// `inject`: fill a template; nothing is written unless every reference resolves.
pub fn inject(ctx: &Ctx, a: InjectArgs) -> Result<Exit> {
    let template = match &a.input {
        Some(p) => read_file(p, "template")?,
        None => read_secret(raw_stdin()?, MAX_TEMPLATE, "the template on stdin")?,
    };
    let pieces = jinject::parse(&template)?;
    let values = resolve(ctx, jinject::references(&pieces))?;
    let text = jinject::render(&pieces, &values)?;
    drop(values);
    match &a.output {
        None => emit(text.as_bytes())?,
        Some(out) => jeton::store::write_atomic(out, text.as_bytes())?,
    }
    Ok(Exit::Ok)
}

/// `git-credential get|store|erase`. Never fails git: with nothing to say it says nothing and
/// exits 0, so git falls back to its other helpers or its own prompt.
pub fn git_credential(ctx: &Ctx, operation: &str) -> Result<Exit> {
    let input = read_secret(raw_stdin()?, MAX_HELPER_INPUT, "git's request")?;
    if operation != "get" {
        return Ok(Exit::Ok);
    }
    let input = git_credential::parse_input(&input);
    let Some(query) = input.query() else {
        return Ok(Exit::Ok);
    };
    let found = find(ctx, query).and_then(|c| {
        let answer = git_credential::answer(&c, &input)?;
        // git drops a password past its password_expiry_utc and asks elsewhere: say why.
        warn_if_expired(&c.name, c.expires_at);
        Ok(answer)
    });
    match found {
        Ok(answer) => emit(answer.as_bytes())?,
        Err(Error::NotFound(_)) => {}
        Err(e) => eprintln!(
            "jeton: warning: git-credential answers nothing: {}",
            jeton::text::Shown::line(&e.to_string())
        ),
    }
    Ok(Exit::Ok)
}

/// `cargo-credential --cargo-plugin`: cargo's JSON-lines protocol until stdin closes.
pub fn cargo_credential(ctx: &Ctx, cargo_plugin: bool) -> Result<Exit> {
    if !cargo_plugin {
        return Err(Error::Usage(
            "this is cargo's credential provider; cargo runs it with --cargo-plugin \
             (configure: credential-provider = [\"jeton\", \"cargo-credential\"])"
                .into(),
        ));
    }
    // Straight to the file descriptor (`write_stdout`): a token must not linger in the buffer
    // of `std::io::Stdout`.
    let say = |line: &[u8]| {
        write_stdout(line)
            .and_then(|()| write_stdout(b"\n"))
            .map_err(|e| match e {
                OutError::Closed => Error::Other("cannot answer cargo: it closed the pipe".into()),
                OutError::Failed(e) => Error::Other(format!("cannot answer cargo: {e}")),
            })
    };
    say(cargo::HELLO.as_bytes())?;
    // A `login` line carries a token: read without a read-ahead copy, and wipe each line.
    let mut lines = SecretLines::new(raw_stdin()?, MAX_HELPER_INPUT as usize);
    while let Some(line) = lines
        .next_line()
        .map_err(|e| Error::Other(format!("cannot read cargo's request: {e}")))?
    {
        if line.trim_ascii().is_empty() {
            continue;
        }
        let request: cargo::CargoRequest = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => {
                say(
                    cargo::error("other", &format!("jeton cannot read this request: {e}"))
                        .as_bytes(),
                )?;
                continue;
            }
        };
        if request.v != cargo::VERSION {
            say(cargo::error("other", "jeton speaks version 1 of the protocol only").as_bytes())?;
            continue;
        }
        if request.kind != "get" {
            say(cargo::error(
                "operation-not-supported",
                "jeton is read-only for cargo: add the token with `jeton add NAME --url INDEX-URL`",
            )
            .as_bytes())?;
            continue;
        }
        match find(ctx, request.query()) {
            Ok(cred) => {
                // The protocol has no warning; cargo shows the provider's stderr.
                warn_if_expired(&cred.name, cred.expires_at);
                say(cargo::get_ok(&cred).as_bytes())?
            }
            Err(Error::NotFound(m)) => say(cargo::error("not-found", &m).as_bytes())?,
            Err(e) => say(cargo::error("other", &e.to_string()).as_bytes())?,
        }
    }
    Ok(Exit::Ok)
}

/// `docker-credential get|store|erase|list|version`, as the reference helpers answer: a failure
/// is one message on stdout and exit 1. `store` and `erase` change nothing, and say so on stderr
/// (which docker shows), since `docker login` prints "Login Succeeded" either way.
pub fn docker_credential(ctx: &Ctx, action: Option<&str>) -> Result<Exit> {
    match docker_answer(ctx, action) {
        Ok(()) => Ok(Exit::Ok),
        Err(message) => {
            emit(format!("{message}\n").as_bytes())?;
            Ok(Exit::Code(1))
        }
    }
}

fn docker_answer(ctx: &Ctx, action: Option<&str>) -> std::result::Result<(), String> {
    let server_url = || -> std::result::Result<Zeroizing<String>, String> {
        let input = read_secret(
            raw_stdin().map_err(|e| e.to_string())?,
            MAX_HELPER_INPUT,
            "docker's request",
        )
        .map_err(|e| e.to_string())?;
        if input.trim().is_empty() {
            return Err(docker::MISSING_SERVER_URL.into());
        }
        Ok(input)
    };
    let say = |bytes: &[u8]| emit(bytes).map_err(|e| e.to_string());
    match action {
        None => Err(docker::usage()),
        Some("version") => say(format!("{}\n", docker::version()).as_bytes()),
        Some("get") => {
            let input = server_url()?;
            let server = input.trim();
            match find(ctx, docker::query(server)) {
                Ok(cred) => {
                    warn_if_expired(&cred.name, cred.expires_at);
                    say(docker::get_ok(server, &cred).as_bytes())
                }
                Err(Error::NotFound(_)) => Err(docker::NOT_FOUND.into()),
                Err(e) => Err(e.to_string()),
            }
        }
        Some("list") => match lookup(ctx, IntegrationRequest::ListCredentials) {
            Ok(IntegrationResponse::Credentials(c)) => say(docker::list(&c).as_bytes()),
            Ok(_) => Err(unexpected().to_string()),
            Err(e) => Err(e.to_string()),
        },
        Some("store") => {
            let input = read_secret(
                raw_stdin().map_err(|e| e.to_string())?,
                MAX_HELPER_INPUT,
                "docker's credentials",
            )
            .map_err(|e| e.to_string())?;
            let request = docker::parse_store(&input)?;
            let server = printable(request.server_url.trim());
            eprintln!(
                "jeton: warning: {} is read-only: the token for {server} was NOT stored, \
                 whatever docker prints next; keep it in jeton with \
                 `jeton add NAME --url {server} --username {}` (token on stdin)",
                docker::HELPER,
                printable(&request.username),
            );
            Ok(())
        }
        Some("erase") => {
            let input = server_url()?;
            eprintln!(
                "jeton: warning: {} is read-only: nothing was erased for {}; \
                 the entry stays in jeton (`jeton rm NAME` removes it)",
                docker::HELPER,
                printable(input.trim()),
            );
            Ok(())
        }
        Some(other) => Err(docker::unknown_action(other)),
    }
}

/// Warns on stderr when a helper hands out a token past its expiry at its provider.
fn warn_if_expired(name: &str, expires_at: Option<jeton::time::Time>) {
    if let Some(t) = expires_at.filter(|t| *t <= jeton::time::now()) {
        eprintln!(
            "jeton: warning: '{name}' expired at {}; rotate it with `jeton rotate {name}`",
            jeton::time::rfc3339(t)
        );
    }
}
