//! Rotation at the issuer: `issuer set|show`, `integration add|list|rm`, and the flags
//! `rotate --at-issuer|--resume|--due` and `revoke --at-issuer`. The pipeline is
//! `jeton::issuer::pipeline`; this front end runs its requests (through the agent when it holds
//! the key, else here with the key unlocked once) and prints what happens.

use crate::ctx::unexpected;
use crate::ctx::{Ctx, Exit, emit, warn_all};
use crate::output::json_line;
use crate::prompt;
use clap::{Args, Subcommand, ValueEnum};
use jeton::agent::client::Via;
use jeton::entry::{Entry, printable, validate_name};
use jeton::issuer::pipeline::{self, Frontend, Options, Report};
use jeton::issuer::{
    GitlabOwner, Integration, IntegrationAction, IssuerRequest, IssuerResponse, Listed, Recipe,
    Record, Step,
};
use jeton::lifecycle::{FindingKind, LifecycleRequest, LifecycleResponse};
use jeton::request::{Request, Response};
use jeton::secret::{Key, Token};
use jeton::text::Shown;
use jeton::{Error, Result};
use serde_json::json;

/// Exit code of `rotate --due --at-issuer` when a rotation failed (as `check`'s findings).
const EXIT_FAILED: i32 = 8;

/// The built-in recipes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RecipeArg {
    /// Your own commands: --create (current secret on stdin, prints the new one), --revoke,
    /// --verify
    Command,
    /// An AWS IAM user's access key pair (key id as username) through the `aws` CLI
    AwsIam,
    /// A GitLab personal, project (--gitlab-project) or group (--gitlab-group) access token,
    /// through GitLab's API at the entry's url (with curl)
    GitlabPat,
    /// An npm registry token (the registry at the entry's url) through the `npm` CLI
    Npm,
}

/// `issuer` subcommands.
#[derive(Debug, Subcommand)]
pub enum IssuerCommand {
    /// Attach a rotation recipe to an entry
    Set(IssuerSetArgs),
    /// Show an entry's recipe, integrations and any rotation in progress
    Show {
        /// Entry name
        name: String,
    },
}

/// `issuer set`.
#[derive(Debug, Args)]
pub struct IssuerSetArgs {
    /// Entry name
    pub name: String,
    /// The recipe
    #[arg(value_enum)]
    pub recipe: RecipeArg,
    /// command: makes the new secret (reads the current one on stdin, prints the new one)
    #[arg(long, value_name = "CMD")]
    pub create: Option<String>,
    /// command: revokes the old secret (reads it on stdin)
    #[arg(long, value_name = "CMD")]
    pub revoke: Option<String>,
    /// command: exits 0 when the new secret (on stdin) works
    #[arg(long, value_name = "CMD")]
    pub verify: Option<String>,
    /// aws-iam: the IAM user [default: the key's own user]
    #[arg(long, value_name = "USER")]
    pub aws_user: Option<String>,
    /// aws-iam: authenticate with your AWS environment (profile) instead of the entry's key
    #[arg(long)]
    pub aws_environment_credentials: bool,
    /// gitlab-pat: the new token's lifetime, e.g. 90d [default: GitLab's]
    #[arg(long, value_name = "SPAN")]
    pub gitlab_expires_in: Option<String>,
    /// gitlab-pat: a project access token of this project (ID or full path)
    #[arg(long, value_name = "ID", conflicts_with = "gitlab_group")]
    pub gitlab_project: Option<String>,
    /// gitlab-pat: a group access token of this group (ID or full path)
    #[arg(long, value_name = "ID")]
    pub gitlab_group: Option<String>,
    /// npm: the entry whose secret is the npm account's password (NAME/otp gives the OTP)
    #[arg(long, value_name = "NAME")]
    pub npm_password_entry: Option<String>,
}

/// `integration` subcommands.
#[derive(Debug, Subcommand)]
pub enum IntegrationCommand {
    /// What to update with the new secret after a rotation at the issuer
    Add(IntegrationAddArgs),
    /// List an entry's integrations
    List {
        /// Entry name
        name: String,
    },
    /// Remove an integration
    Rm {
        /// Entry name
        name: String,
        /// Integration label (see `integration list`)
        label: String,
    },
}

/// `integration add`.
#[derive(Debug, Args)]
pub struct IntegrationAddArgs {
    /// Entry name
    pub name: String,
    /// Run this command (sh -c) with --env variables set from the new credential
    #[arg(long, value_name = "CMD", required_unless_present = "inject", conflicts_with_all = ["inject", "out"])]
    pub run: Option<String>,
    /// VAR=FIELD: set VAR to a field of the new credential (secret, username, url, ...)
    #[arg(long, value_name = "VAR=FIELD", requires = "run")]
    pub env: Vec<String>,
    /// Fill this template's {{ jeton://NAME[#field] }} references with the new credential
    #[arg(long, value_name = "TEMPLATE", requires = "out")]
    pub inject: Option<String>,
    /// Where --inject writes (atomically, mode 0600)
    #[arg(long, value_name = "FILE", requires = "inject")]
    pub out: Option<String>,
    /// A label for list and rm [default: the next free number]
    #[arg(long, value_name = "LABEL")]
    pub label: Option<String>,
}

/// The flags `rotate` takes for a rotation at the issuer.
#[derive(Debug, Args, Default)]
pub struct RotateFlags {
    /// Rotate at the issuer through the entry's recipe, then update its integrations
    #[arg(long, conflicts_with_all = ["generate", "expires"])]
    pub at_issuer: bool,
    /// With --at-issuer: print the plan and change nothing
    #[arg(long, requires = "at_issuer")]
    pub dry_run: bool,
    /// With --at-issuer: revoke the old credential as soon as the new one is stored
    #[arg(long, requires = "at_issuer")]
    pub leaked: bool,
    /// Continue an interrupted rotation at the issuer from the step it reached
    #[arg(long, conflicts_with_all = ["at_issuer", "due", "generate", "expires"])]
    pub resume: bool,
    /// With --at-issuer: every entry `check` reports due that has a recipe (exit 8 if any failed)
    #[arg(long, requires = "at_issuer")]
    pub due: bool,
}

impl RotateFlags {
    /// True when `rotate` must go through the issuer pipeline.
    pub fn wanted(&self) -> bool {
        self.at_issuer || self.resume
    }
}

/// Runs `issuer` subcommands.
pub fn issuer(ctx: &Ctx, cmd: IssuerCommand) -> Result<Exit> {
    match cmd {
        IssuerCommand::Set(a) => {
            validate_name(&a.name)?;
            let recipe = recipe_of(&a)?;
            let r = run(
                ctx,
                IssuerRequest::SetRecipe {
                    name: a.name,
                    recipe,
                },
            )?;
            done(ctx, r)
        }
        IssuerCommand::Show { name } => {
            validate_name(&name)?;
            let s = state(ctx, &name)?;
            if ctx.json {
                emit(json_line(&record_json(&s.entry, &s.record)).as_bytes())?;
            } else {
                emit(record_text(&s.entry, &s.record).as_bytes())?;
            }
            Ok(Exit::Ok)
        }
    }
}

/// The recipe `issuer set` describes; a flag of another recipe is refused.
fn recipe_of(a: &IssuerSetArgs) -> Result<Recipe> {
    let given = |flags: &[(&'static str, bool)]| -> Vec<&'static str> {
        flags.iter().filter(|f| f.1).map(|f| f.0).collect()
    };
    let foreign = given(&[
        (
            "--create, --revoke, --verify",
            !matches!(a.recipe, RecipeArg::Command)
                && (a.create.is_some() || a.revoke.is_some() || a.verify.is_some()),
        ),
        (
            "--aws-user, --aws-environment-credentials",
            !matches!(a.recipe, RecipeArg::AwsIam)
                && (a.aws_user.is_some() || a.aws_environment_credentials),
        ),
        (
            "--gitlab-expires-in, --gitlab-project, --gitlab-group",
            !matches!(a.recipe, RecipeArg::GitlabPat)
                && (a.gitlab_expires_in.is_some()
                    || a.gitlab_project.is_some()
                    || a.gitlab_group.is_some()),
        ),
        (
            "--npm-password-entry",
            !matches!(a.recipe, RecipeArg::Npm) && a.npm_password_entry.is_some(),
        ),
    ]);
    if !foreign.is_empty() {
        return Err(Error::Usage(format!(
            "{} {} not for the {} recipe",
            foreign.join("; "),
            if foreign.len() == 1 && !foreign[0].contains(',') {
                "is"
            } else {
                "are"
            },
            a.recipe
                .to_possible_value()
                .map_or(String::new(), |v| v.get_name().to_owned())
        )));
    }
    let nonempty = |v: &Option<String>| v.clone().filter(|c| !c.trim().is_empty());
    Ok(match a.recipe {
        RecipeArg::Command => Recipe::Command {
            create: nonempty(&a.create)
                .ok_or_else(|| Error::Usage("the command recipe needs --create CMD".into()))?,
            revoke: nonempty(&a.revoke),
            verify: nonempty(&a.verify),
        },
        RecipeArg::AwsIam => {
            if let Some(u) = &a.aws_user {
                jeton::text::check_line("--aws-user", u)?;
            }
            Recipe::AwsIam {
                user: a.aws_user.clone(),
                environment_credentials: a.aws_environment_credentials,
            }
        }
        RecipeArg::GitlabPat => {
            let expires_in_days = match a.gitlab_expires_in.as_deref() {
                None => None,
                Some(s) => {
                    let secs = jeton::time::parse_span(s, jeton::time::now())?;
                    let days = u32::try_from(secs / 86_400).unwrap_or(0);
                    if !(1..=400).contains(&days) {
                        return Err(Error::Usage(
                            "--gitlab-expires-in must be 1 to 400 days".into(),
                        ));
                    }
                    Some(days)
                }
            };
            let owner = match (&a.gitlab_project, &a.gitlab_group) {
                (Some(p), _) => Some(GitlabOwner::Project(gitlab_owner("--gitlab-project", p)?)),
                (None, Some(g)) => Some(GitlabOwner::Group(gitlab_owner("--gitlab-group", g)?)),
                (None, None) => None,
            };
            Recipe::GitlabPat {
                expires_in_days,
                owner,
            }
        }
        RecipeArg::Npm => {
            let password_entry = a.npm_password_entry.clone().ok_or_else(|| {
                Error::Usage(
                    "the npm recipe needs --npm-password-entry NAME: the registry asks for the \
                     account's password to make a token"
                        .into(),
                )
            })?;
            validate_name(&password_entry)?;
            if password_entry == a.name {
                return Err(Error::Usage(
                    "--npm-password-entry names the account's password, not the token".into(),
                ));
            }
            Recipe::Npm { password_entry }
        }
    })
}

/// A GitLab project or group: its numeric ID or full path (`group/subgroup/project`).
fn gitlab_owner(flag: &str, v: &str) -> Result<String> {
    let v = v.trim().trim_matches('/');
    if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::Usage(format!(
            "{flag}: expected a numeric ID or a full path such as group/project"
        )));
    }
    Ok(v.to_owned())
}

/// Runs `integration` subcommands.
pub fn integration(ctx: &Ctx, cmd: IntegrationCommand) -> Result<Exit> {
    match cmd {
        IntegrationCommand::Add(a) => {
            validate_name(&a.name)?;
            let action = match (a.run, a.inject, a.out) {
                (Some(command), None, None) => {
                    let mut env = Vec::new();
                    for e in &a.env {
                        let (var, field) = e.split_once('=').ok_or_else(|| {
                            Error::Usage(format!("--env '{e}': expected VAR=FIELD"))
                        })?;
                        jeton::integrations::exec::check_var(var)?;
                        Entry::check_field(field)?;
                        env.push((var.to_owned(), field.to_owned()));
                    }
                    IntegrationAction::Run { command, env }
                }
                (None, Some(template), Some(out)) => IntegrationAction::Inject {
                    template: absolute(&template)?,
                    out: absolute(&out)?,
                },
                _ => {
                    return Err(Error::Usage(
                        "give either --run CMD [--env VAR=FIELD]... or --inject TEMPLATE --out FILE"
                            .into(),
                    ));
                }
            };
            let label = match a.label {
                Some(l) => {
                    jeton::text::check_line("--label", &l)?;
                    l
                }
                None => {
                    let s = state(ctx, &a.name)?;
                    (1..)
                        .map(|n: u32| n.to_string())
                        .find(|n| s.record.integrations.iter().all(|i| &i.name != n))
                        .unwrap_or_default()
                }
            };
            let r = run(
                ctx,
                IssuerRequest::AddIntegration {
                    name: a.name,
                    integration: Integration {
                        name: label,
                        action,
                    },
                },
            )?;
            done(ctx, r)
        }
        IntegrationCommand::List { name } => {
            validate_name(&name)?;
            let s = state(ctx, &name)?;
            if ctx.json {
                let items: Vec<_> = s.record.integrations.iter().map(integration_json).collect();
                emit(json_line(&items).as_bytes())?;
            } else {
                let mut out = String::new();
                for i in &s.record.integrations {
                    out.push_str(&format!("{}\n", integration_line(i)));
                }
                if out.is_empty() && !ctx.quiet {
                    eprintln!("jeton: '{}' has no integrations", printable(&name));
                }
                emit(out.as_bytes())?;
            }
            Ok(Exit::Ok)
        }
        IntegrationCommand::Rm { name, label } => {
            validate_name(&name)?;
            let r = run(
                ctx,
                IssuerRequest::RemoveIntegration {
                    name,
                    integration: label,
                },
            )?;
            done(ctx, r)
        }
    }
}

fn absolute(p: &str) -> Result<String> {
    let path =
        std::path::absolute(p).map_err(|e| Error::Usage(format!("'{}': {e}", printable(p))))?;
    path.into_os_string()
        .into_string()
        .map_err(|_| Error::Usage(format!("'{}': the path is not UTF-8", printable(p))))
}

/// `rotate NAME --at-issuer|--resume` and `rotate --due --at-issuer`.
pub fn rotate(ctx: &Ctx, name: Option<String>, flags: RotateFlags) -> Result<Exit> {
    let mut fe = Cli::new(ctx);
    if flags.due {
        if name.is_some() {
            return Err(Error::Usage("give NAME or --due, not both".into()));
        }
        return due(&mut fe, flags);
    }
    let name = name.ok_or_else(|| Error::Usage("rotate needs NAME (or --due)".into()))?;
    validate_name(&name)?;
    let opts = Options {
        leaked: flags.leaked,
        resume: flags.resume,
        dry_run: flags.dry_run,
    };
    let report = pipeline::rotate(&mut fe, &name, opts)?;
    finished(ctx, &name, &report, opts)?;
    Ok(Exit::Ok)
}

fn due(fe: &mut Cli<'_>, flags: RotateFlags) -> Result<Exit> {
    let ctx = fe.ctx;
    let findings = match ctx.run(Request::Lifecycle(LifecycleRequest::Check {
        within: jeton::lifecycle::DEFAULT_CHECK_WITHIN,
    }))? {
        Response::Lifecycle(LifecycleResponse::Findings { findings, .. }) => findings,
        _ => return Err(unexpected()),
    };
    let mut due: Vec<String> = findings
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                FindingKind::RotationOverdue
                    | FindingKind::RotationDue
                    | FindingKind::Expired
                    | FindingKind::Expiring
            )
        })
        .filter_map(|f| f.entry.clone())
        .collect();
    due.dedup();
    let listed = match fe.issuer(IssuerRequest::List)? {
        IssuerResponse::List(l) => l,
        _ => return Err(unexpected()),
    };
    let mut failed = 0;
    for name in &due {
        let Some(Listed { recipe, run, .. }) = listed.iter().find(|l| &l.name == name) else {
            if !ctx.quiet {
                eprintln!(
                    "jeton: {}: due, but it has no recipe (see `jeton issuer set`)",
                    Shown::line(name)
                );
            }
            continue;
        };
        if recipe.is_none() {
            continue;
        }
        let opts = Options {
            leaked: false,
            resume: run.is_some(),
            dry_run: flags.dry_run,
        };
        match pipeline::rotate(fe, name, opts) {
            Ok(report) => finished(ctx, name, &report, opts)?,
            Err(e) => {
                failed += 1;
                eprintln!("jeton: error: {}", Shown::line(&e.to_string()));
            }
        }
    }
    Ok(if failed > 0 {
        Exit::Code(EXIT_FAILED)
    } else {
        Exit::Ok
    })
}

fn finished(ctx: &Ctx, name: &str, report: &Report, opts: Options) -> Result<()> {
    let recipe = report.recipe.as_ref().map_or("manual", Recipe::label);
    let steps: Vec<String> = report
        .plan
        .iter()
        .map(|s| pipeline::step_text(s, report.recipe.as_ref()))
        .collect();
    if ctx.json {
        let plan = &steps;
        let v = json!({
            "name": name,
            "recipe": recipe,
            "dry_run": opts.dry_run,
            "plan": plan,
            "revoked_at_issuer": report.revoked_at_issuer,
        });
        return emit(json_line(&v).as_bytes());
    }
    if opts.dry_run {
        let mut out = format!(
            "plan for {} (recipe {recipe}{}):\n",
            Shown::line(name),
            if opts.leaked { ", leaked" } else { "" }
        );
        for (i, s) in steps.iter().enumerate() {
            out.push_str(&format!("  {}. {}\n", i + 1, Shown::line(s)));
        }
        return emit(out.as_bytes());
    }
    // A run with a recipe that revokes ends only once the revocation went through (in this
    // run or the one it resumed).
    let how = match &report.recipe {
        Some(r) if r.revokes() => "at its issuer; the old credential is revoked at the issuer",
        Some(_) => "at its issuer; jeton did not revoke the old credential: revoke it there",
        None => {
            "with the token you made; jeton did not revoke the old one: revoke it at its issuer"
        }
    };
    ctx.say(&format!("rotated {name} {how}"))
}

/// `revoke NAME --at-issuer`: the issuer first; the caller then wipes locally.
pub fn revoke_at_issuer(ctx: &Ctx, name: &str) -> Result<()> {
    let mut fe = Cli::new(ctx);
    let n = pipeline::revoke_at_issuer(&mut fe, name)?;
    if n == 0 && !ctx.quiet {
        eprintln!(
            "jeton: warning: '{}' has no recipe that revokes: revoke it at its issuer by hand",
            printable(name)
        );
    }
    Ok(())
}

fn done(ctx: &Ctx, r: IssuerResponse) -> Result<Exit> {
    match r {
        IssuerResponse::Done(msg) => ctx.done(Response::Done(msg)),
        _ => Err(unexpected()),
    }
}

fn run(ctx: &Ctx, r: IssuerRequest) -> Result<IssuerResponse> {
    Cli::new(ctx).issuer(r)
}

fn state(ctx: &Ctx, name: &str) -> Result<jeton::issuer::State> {
    match run(ctx, IssuerRequest::State { name: name.into() })? {
        IssuerResponse::State(s) => Ok(*s),
        _ => Err(unexpected()),
    }
}

fn recipe_json(r: &Recipe) -> serde_json::Value {
    serde_json::to_value(r).unwrap_or_default()
}

fn integration_json(i: &Integration) -> serde_json::Value {
    match &i.action {
        IntegrationAction::Run { command, env } => json!({
            "label": i.name, "run": command,
            "env": env.iter().map(|(v, f)| format!("{v}={f}")).collect::<Vec<_>>(),
        }),
        IntegrationAction::Inject { template, out } => {
            json!({"label": i.name, "inject": template, "out": out})
        }
    }
}

fn integration_line(i: &Integration) -> String {
    let what = match &i.action {
        IntegrationAction::Run { command, env } => {
            let env: Vec<String> = env.iter().map(|(v, f)| format!(" {v}={f}")).collect();
            format!("run {command}{}", env.concat())
        }
        IntegrationAction::Inject { template, out } => format!("inject {template} -> {out}"),
    };
    format!("{}  {}", Shown::line(&i.name), Shown::line(&what))
}

fn record_json(e: &Entry, r: &Record) -> serde_json::Value {
    json!({
        "name": e.name,
        "recipe": r.recipe.as_ref().map(recipe_json),
        "integrations": r.integrations.iter().map(integration_json).collect::<Vec<_>>(),
        "run": r.run.as_ref().map(|run| json!({
            "plan": run.plan.iter().map(Step::to_string).collect::<Vec<_>>(),
            "next": run.next,
            "leaked": run.leaked,
            "started_at": jeton::time::rfc3339(run.started_at),
            "id": run.id,
        })),
    })
}

fn record_text(e: &Entry, r: &Record) -> String {
    let mut out = format!("name          {}\n", Shown::line(&e.name));
    let recipe = match &r.recipe {
        None => "none (rotate --at-issuer guides the manual step)".to_owned(),
        Some(Recipe::Command {
            create,
            revoke,
            verify,
        }) => {
            let mut s = format!("command\n  create      {create}");
            if let Some(v) = verify {
                s.push_str(&format!("\n  verify      {v}"));
            }
            if let Some(v) = revoke {
                s.push_str(&format!("\n  revoke      {v}"));
            }
            s
        }
        Some(Recipe::GitlabPat {
            expires_in_days,
            owner,
        }) => {
            let mut s = match owner {
                None => "gitlab-pat (personal access token)".to_owned(),
                Some(GitlabOwner::Project(p)) => {
                    format!("gitlab-pat (access token of project {p})")
                }
                Some(GitlabOwner::Group(g)) => format!("gitlab-pat (access token of group {g})"),
            };
            if let Some(d) = expires_in_days {
                s.push_str(&format!(", new tokens expire after {d} days"));
            }
            s
        }
        Some(Recipe::Npm { password_entry }) => {
            format!(
                "npm (account password from '{}')",
                printable(password_entry)
            )
        }
        Some(Recipe::AwsIam {
            user,
            environment_credentials,
        }) => format!(
            "aws-iam (user {}, authenticated with {})",
            user.as_deref().unwrap_or("of the key"),
            if *environment_credentials {
                "the AWS environment"
            } else {
                "the entry's key"
            }
        ),
    };
    out.push_str(&format!("recipe        {}\n", Shown::lines(&recipe)));
    for i in &r.integrations {
        out.push_str(&format!("integration   {}\n", integration_line(i)));
    }
    if let Some(run) = &r.run {
        let next = run.plan.get(run.next).map_or("finish".to_owned(), |s| {
            pipeline::step_text(s, r.recipe.as_ref())
        });
        out.push_str(&format!(
            "in progress   step {}/{}: {next} (continue with `jeton rotate {} --resume`)\n",
            run.next + 1,
            run.plan.len(),
            Shown::line(&e.name)
        ));
    }
    out
}

/// The pipeline's front end: requests through the agent when it holds the key, else here with
/// the vault key unlocked once for the whole run.
struct Cli<'a> {
    ctx: &'a Ctx,
    key: Option<Key>,
}

impl<'a> Cli<'a> {
    fn new(ctx: &'a Ctx) -> Self {
        Cli { ctx, key: None }
    }
}

impl Frontend for Cli<'_> {
    fn issuer(&mut self, r: IssuerRequest) -> Result<IssuerResponse> {
        let request = Request::Issuer(r);
        let session = &self.ctx.session;
        let outcome = match jeton::agent::client::run(session, &request)? {
            Via::Agent(outcome) => *outcome,
            Via::Local(dropped) => {
                if let Some(note) = dropped {
                    eprintln!("jeton: warning: {note}");
                }
                let writes = request.writes();
                let cached = &mut self.key;
                let fd = self.ctx.passphrase_fd;
                let unlock = |file: &jeton::format::VaultFile| {
                    if let Some(k) = cached {
                        return Ok(k.clone());
                    }
                    let k = jeton::vault::Vault::unlock(file, &prompt::passphrase(fd)?)?;
                    *cached = Some(k.clone());
                    Ok(k)
                };
                session.with_vault_key(writes, unlock, |v| {
                    jeton::request::execute(v, request, jeton::time::now())
                })?
            }
        };
        warn_all(&outcome.warnings);
        match outcome.value {
            Response::Issuer(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }

    fn progress(&mut self, line: &str) {
        if !self.ctx.quiet {
            eprintln!("jeton: {}", Shown::line(line));
        }
    }

    fn warn(&mut self, line: &str) {
        eprintln!("jeton: warning: {}", Shown::line(line));
    }

    fn manual_create(&mut self, e: &Entry) -> Result<Token> {
        let at = e
            .url
            .as_deref()
            .or(e.issuer.as_deref())
            .map(|u| format!(" ({})", printable(u)))
            .unwrap_or_default();
        eprintln!(
            "jeton: '{}' has no recipe: make a new token at its issuer{at} by hand, keeping the \
             old one, then enter the new token",
            printable(&e.name)
        );
        prompt::secret_input()
    }
}
