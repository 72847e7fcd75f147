//! The vault file and its passphrase: `init` and `passwd`, with the KDF cost flags they share.

use crate::args::nonempty;
use crate::ctx::{Ctx, Exit, emit, forget_agent_key, warn_all};
use crate::{output, prompt};
use clap::Args;
use jeton::kdf::{self, KdfParams};
use jeton::time;
use jeton::vault::Vault;
use jeton::{Error, Result};

/// KDF cost flags shared by `init` and `passwd`.
#[derive(Debug, Args, Clone)]
pub struct KdfArgs {
    /// Argon2id memory, e.g. 256MiB or 1GiB [default: 256MiB]
    #[arg(long, value_name = "SIZE")]
    pub kdf_memory: Option<String>,
    /// Argon2id passes [default: 3]
    #[arg(long, value_name = "N")]
    pub kdf_iterations: Option<u32>,
    /// Argon2id lanes [default: 4]
    #[arg(long, value_name = "N")]
    pub kdf_lanes: Option<u32>,
    /// Calibrate memory and passes to this unlock time on this machine, e.g. 1s
    #[arg(long, value_name = "SPAN", conflicts_with_all = ["kdf_memory", "kdf_iterations"])]
    pub kdf_target: Option<String>,
}

/// `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub kdf: KdfArgs,
    /// Default technical contact for entries that name none
    #[arg(long, value_name = "TEXT")]
    pub contact: Option<String>,
    /// Your name, shown on your contact card
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Do not make a recovery key (make one later with `jeton recovery new`)
    #[arg(long)]
    pub no_recovery_key: bool,
}

/// `passwd`.
#[derive(Debug, Args)]
pub struct PasswdArgs {
    #[command(flatten)]
    pub kdf: KdfArgs,
    /// Read the new passphrase from this open file descriptor
    #[arg(long, value_name = "N")]
    pub new_passphrase_fd: Option<u32>,
    /// Keep the recovery key working: read it from this open file descriptor
    #[arg(long, value_name = "N")]
    pub recovery_key_fd: Option<u32>,
}

/// `init`.
pub fn init(ctx: &Ctx, a: InitArgs) -> Result<Exit> {
    let store = &ctx.session.store;
    let kdf = kdf_params(&a.kdf, KdfParams::default())?;
    for (what, v) in [("--contact", &a.contact), ("--name", &a.name)] {
        v.as_deref()
            .map_or(Ok(()), |v| jeton::text::check_line(what, v))?;
    }
    if store.exists() {
        return Err(Error::Exists(format!(
            "a vault already exists at {}; jeton never overwrites one",
            store.path().display()
        )));
    }
    let passphrase = prompt::new_passphrase(
        prompt::passphrase_source(ctx.passphrase_fd)?,
        "new vault passphrase",
    )?;
    if let Some(w) = prompt::weak_passphrase_warning(&passphrase) {
        eprintln!("jeton: warning: {w}");
    }
    if kdf.is_weak() {
        eprintln!(
            "jeton: warning: {} is below RFC 9106's recommendation (64 MiB, t=3); use it for tests only",
            describe_kdf(&kdf)
        );
    }
    let mut vault = Vault::create(&passphrase, kdf, time::now())?;
    drop(passphrase);
    vault.payload.identity = Some(jeton::share::identity::generate(time::now())?);
    vault.payload.settings.default_contact = nonempty(a.contact);
    vault.payload.settings.owner = nonempty(a.name);
    let recovery_key = if a.no_recovery_key {
        None
    } else {
        let key = jeton::recovery::RecoveryKey::generate()?;
        jeton::recovery::install(&mut vault, &key)?;
        Some(key.display())
    };
    let bytes = vault.seal(0)?;
    store.create_dir()?;
    let guard = store.lock()?;
    store.create(&bytes, &guard)?;
    let mut warnings = Vec::new();
    if std::fs::symlink_metadata(store.backup_path()).is_ok() {
        warnings.push(format!(
            "{} is the backup of an earlier vault; the next save replaces it: move it away now to keep it",
            store.backup_path().display()
        ));
    }
    ctx.session.remember(&vault, &mut warnings);
    warn_all(&warnings);
    let msg = format!(
        "created {} ({})",
        store.path().display(),
        describe_kdf(&kdf)
    );
    match recovery_key {
        Some(key) => emit(output::recovery_key(&key, &msg, ctx.json, ctx.quiet).as_bytes())?,
        None => ctx.say(&msg)?,
    }
    Ok(Exit::Ok)
}

/// `passwd`. The recovery key, when given, keeps working (it wraps the new vault key too);
/// else the recovery slot is dropped, with a warning.
pub fn passwd(ctx: &Ctx, a: PasswdArgs) -> Result<Exit> {
    let source = prompt::new_passphrase_source(a.new_passphrase_fd)?;
    let outcome = ctx.session.with_vault(true, ctx.ask(), |vault| {
        let current = jeton::recovery::passphrase_kdf(vault);
        let kdf = kdf_params(&a.kdf, current)?;
        let keep = match jeton::recovery::has_slot(vault) || a.recovery_key_fd.is_some() {
            true => prompt::recovery_key_to_keep(a.recovery_key_fd)?,
            false => None,
        };
        let new = prompt::new_passphrase(source, "new passphrase")?;
        if let Some(w) = prompt::weak_passphrase_warning(&new) {
            eprintln!("jeton: warning: {w}");
        }
        let dropped = match &keep {
            Some(key) => {
                jeton::recovery::passwd_keeping(vault, key, &new, kdf, time::now())?;
                0
            }
            None => vault.change_passphrase(&new, kdf, time::now())?,
        };
        Ok((kdf, dropped, keep.is_some()))
    })?;
    warn_all(&outcome.warnings);
    let (kdf, dropped, kept) = outcome.value;
    if dropped > 0 {
        eprintln!(
            "jeton: warning: the recovery key no longer opens this vault (it wrapped the old vault key); give it to `passwd --recovery-key-fd N` to keep it, or make a new one with `jeton recovery new`"
        );
    }
    let also = if kept {
        "; the recovery key still opens it"
    } else {
        ""
    };
    ctx.say(&format!(
        "passphrase changed; vault re-keyed ({}){also}",
        describe_kdf(&kdf)
    ))?;
    forget_agent_key(ctx)?;
    Ok(Exit::Ok)
}

/// Parses a memory size: `8MiB`, `256M`, `1GiB`, `65536KiB`; a bare number is MiB.
fn parse_memory_kib(s: &str) -> Result<u32> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| Error::Usage(format!("'{s}' is not a memory size (e.g. 256MiB)")))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "k" | "kib" | "kb" => 1,
        "" | "m" | "mib" | "mb" => 1024,
        "g" | "gib" | "gb" => 1024 * 1024,
        _ => {
            return Err(Error::Usage(format!(
                "'{s}': unknown unit (use KiB, MiB or GiB)"
            )));
        }
    };
    u32::try_from(n.saturating_mul(mult))
        .map_err(|_| Error::Usage(format!("memory size '{s}' is out of range (8MiB..4GiB)")))
}

fn kdf_params(a: &KdfArgs, base: KdfParams) -> Result<KdfParams> {
    let lanes = a.kdf_lanes.unwrap_or(base.lanes);
    if let Some(target) = &a.kdf_target {
        let d = time::parse_duration(target)?;
        if d.as_millis() < 10 || d.as_secs() > 60 {
            return Err(Error::Usage(
                "--kdf-target must be between 10ms and 60s".into(),
            ));
        }
        KdfParams { lanes, ..base }.check_user()?;
        return kdf::calibrate(d, 1024 * 1024, lanes);
    }
    let p = KdfParams {
        memory_kib: a
            .kdf_memory
            .as_deref()
            .map(parse_memory_kib)
            .transpose()?
            .unwrap_or(base.memory_kib),
        iterations: a.kdf_iterations.unwrap_or(base.iterations),
        lanes,
    };
    p.check_user()?;
    Ok(p)
}

fn describe_kdf(p: &KdfParams) -> String {
    format!(
        "Argon2id m={}MiB t={} p={}",
        p.memory_kib / 1024,
        p.iterations,
        p.lanes
    )
}
