//! The private runtime directory, `$XDG_RUNTIME_DIR/jeton` (else `/tmp/jeton-$UID`): the agent's
//! socket, the editor's forms and the npm recipe's configuration live in it, so it must be a
//! directory no other user can reach into.
//!
//! In `/tmp` anyone can create `/tmp/jeton-$UID` first, and a directory on the way that another
//! user may write to lets that user swap what comes after it. [`secure`] is the one check for all
//! three uses: every directory leading to it is owned by root or this user and writable by no one
//! else unless sticky (like `/tmp`), every symbolic link on the way belongs to root or this user,
//! and the directory itself is a real directory (not a link) of this user that group and others
//! cannot write to. [`scratch`] makes the private, self-wiping directories for files that hold a
//! secret; [`signals`] wipes them when jeton is told to stop.

pub mod scratch;
pub mod signals;

use crate::{Error, Result};
use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

pub use scratch::{Purpose, Scratch};

/// How many symbolic links a path may go through (Linux's own limit).
const MAX_LINKS: u32 = 40;

/// `$XDG_RUNTIME_DIR/jeton`, else `/tmp/jeton-$UID`.
pub fn dir() -> PathBuf {
    dir_for(std::env::var_os("XDG_RUNTIME_DIR"), uid())
}

fn dir_for(runtime_dir: Option<OsString>, uid: u32) -> PathBuf {
    runtime_dir
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .map_or_else(
            || PathBuf::from(format!("/tmp/jeton-{uid}")),
            |d| d.join("jeton"),
        )
}

/// This process's real uid.
pub fn uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Creates `dir` (0700, and any missing directory above it) if needed, then checks it with
/// [`secure`].
pub fn prepare(dir: &Path) -> Result<()> {
    if std::fs::symlink_metadata(dir).is_err() {
        if let Some(parent) = dir.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| Error::io("cannot create the runtime directory", parent, e))?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("cannot create the runtime directory", dir, e)),
        }
    }
    secure(dir)
}

/// Refuses a private directory that someone else could have planted, could write to, or could
/// swap: see the module docs. A directory of ours that group or others may only read is
/// tightened to 0700.
pub fn secure(dir: &Path) -> Result<()> {
    let mode = check_dir_as(dir, uid())?;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("cannot chmod the runtime directory", dir, e))?;
    }
    Ok(())
}

/// The checks of [`secure`] for user `uid`; returns the directory's mode.
fn check_dir_as(dir: &Path, uid: u32) -> Result<u32> {
    let refuse = |why: &str| {
        Err(Error::Other(format!(
            "refusing the runtime directory {}: {why}",
            dir.display()
        )))
    };
    let meta = match check_path(dir, uid, false) {
        Ok((_, meta)) => meta,
        Err(Refusal::Io(path, e)) => {
            return Err(Error::io("cannot inspect the runtime directory", path, e));
        }
        Err(Refusal::Unsafe(why)) => return refuse(&why),
    };
    if meta.file_type().is_symlink() {
        return refuse("it is a symbolic link");
    }
    if !meta.is_dir() {
        return refuse("it is not a directory");
    }
    if meta.uid() != uid {
        return refuse(&format!("it is owned by uid {}, not {uid}", meta.uid()));
    }
    // Someone else may have planted files in it while it was writable: fixing the mode would
    // not remove them.
    if meta.mode() & 0o022 != 0 {
        return refuse(&format!(
            "group or others may write to it (mode {:o}); remove it",
            meta.mode() & 0o777
        ));
    }
    Ok(meta.mode())
}

/// Why a path is not trusted.
#[derive(Debug)]
pub enum Refusal {
    /// It could not be inspected (missing, unreadable): the path and the error.
    Io(PathBuf, std::io::Error),
    /// Another user could change what it leads to: why, naming the culprit.
    Unsafe(String),
}

/// Checks every directory and symbolic link on the way to `path`, following links as the kernel
/// would; returns the path with every link resolved and the metadata of its last component
/// (`follow_last`: of what a link there points to, itself checked like the others; else the
/// link itself). The last component is not checked: what it must be is the caller's rule.
pub fn check_path(
    path: &Path,
    uid: u32,
    follow_last: bool,
) -> std::result::Result<(PathBuf, Metadata), Refusal> {
    if !path.is_absolute() {
        return Err(Refusal::Unsafe(format!(
            "{} is not an absolute path",
            path.display()
        )));
    }
    let trusted_owner = |m: &Metadata| m.uid() == 0 || m.uid() == uid;
    let lstat = |p: &Path| std::fs::symlink_metadata(p).map_err(|e| Refusal::Io(p.to_owned(), e));
    let check_dir = |p: &Path, m: &Metadata| {
        if !m.is_dir() {
            return Err(Refusal::Unsafe(format!(
                "{} is not a directory",
                p.display()
            )));
        }
        if !trusted_owner(m) {
            return Err(Refusal::Unsafe(format!(
                "{} is owned by uid {}, neither root nor {uid}",
                p.display(),
                m.uid()
            )));
        }
        if m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0 {
            return Err(Refusal::Unsafe(format!(
                "{} may be written to by group or others (mode {:o}, no sticky bit)",
                p.display(),
                m.mode() & 0o7777
            )));
        }
        Ok(())
    };
    let mut at = PathBuf::from("/");
    check_dir(&at, &lstat(&at)?)?;
    // Components still to walk, the next one last.
    let mut todo: Vec<OsString> = Vec::new();
    push_components(&mut todo, path);
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == ".." {
            at.pop();
            continue;
        }
        let next = at.join(&name);
        let meta = lstat(&next)?;
        let last = todo.is_empty();
        if meta.file_type().is_symlink() && (follow_last || !last) {
            if !trusted_owner(&meta) {
                return Err(Refusal::Unsafe(format!(
                    "the symbolic link {} is owned by uid {}, neither root nor {uid}",
                    next.display(),
                    meta.uid()
                )));
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(Refusal::Unsafe(format!(
                    "{} goes through too many symbolic links",
                    path.display()
                )));
            }
            let target = std::fs::read_link(&next).map_err(|e| Refusal::Io(next.clone(), e))?;
            if target.is_absolute() {
                at = PathBuf::from("/");
            }
            push_components(&mut todo, &target);
            continue;
        }
        if last {
            return Ok((next, meta));
        }
        check_dir(&next, &meta)?;
        at = next;
    }
    // `path` named `/` itself (or ended in `..`).
    let meta = lstat(&at)?;
    Ok((at, meta))
}

/// Pushes the names `path` goes through onto `todo`, last first, so the next one pops first.
fn push_components(todo: &mut Vec<OsString>, path: &Path) {
    for c in path.components().rev() {
        match c {
            Component::Normal(n) => todo.push(n.to_owned()),
            Component::ParentDir => todo.push("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_runtime_dir_the_directory_is_under_tmp_per_uid() {
        assert_eq!(dir_for(None, 1000), Path::new("/tmp/jeton-1000"));
        assert_eq!(dir_for(Some("".into()), 7), Path::new("/tmp/jeton-7"));
        assert_eq!(
            dir_for(Some("relative".into()), 7),
            Path::new("/tmp/jeton-7")
        );
        assert_eq!(
            dir_for(Some("/run/user/7".into()), 7),
            Path::new("/run/user/7/jeton")
        );
    }

    fn private_tempdir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        d
    }

    #[test]
    fn a_directory_someone_else_owns_is_refused() {
        let d = private_tempdir();
        assert!(check_dir_as(d.path(), uid()).is_ok());
        // As another user, the test's own directories are someone else's.
        let err = check_dir_as(d.path(), uid() + 1).unwrap_err().to_string();
        assert!(err.contains(&format!("owned by uid {}", uid())), "{err}");
    }

    #[test]
    fn unsafe_directories_are_refused_and_readable_ones_tightened() {
        let d = private_tempdir();
        let dir = d.path().join("jeton");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        secure(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(secure(&dir).unwrap_err().to_string().contains("may write"));
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(
            secure(&link)
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );
        let file = d.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(
            secure(&file)
                .unwrap_err()
                .to_string()
                .contains("not a directory")
        );
    }

    #[test]
    fn every_directory_on_the_way_is_checked() {
        let d = private_tempdir();
        let open = d.path().join("open");
        let dir = open.join("jeton");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        secure(&dir).unwrap();
        // A directory above that others may write to (no sticky bit) lets them swap `jeton`.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = secure(&dir).unwrap_err().to_string();
        assert!(
            err.contains(&format!("{} may be written to", open.display())),
            "{err}"
        );
        // With the sticky bit (as /tmp), others cannot move what they do not own.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        secure(&dir).unwrap();
        // A link on the way is followed, and what it leads to is checked.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let via = d.path().join("via");
        std::os::unix::fs::symlink("open", &via).unwrap();
        let err = secure(&via.join("jeton")).unwrap_err().to_string();
        assert!(err.contains("may be written to"), "{err}");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o700)).unwrap();
        secure(&via.join("jeton")).unwrap();
        let (resolved, _) = check_path(&via.join("jeton"), uid(), true).unwrap();
        assert_eq!(resolved, std::fs::canonicalize(&dir).unwrap());
        // A directory on the way that belongs to someone else (as root: chowned to another
        // user; else: the test's own, seen as another user).
        let as_uid = if uid() == 0 {
            std::os::unix::fs::chown(&open, Some(65534), None).unwrap();
            0
        } else {
            uid() + 1
        };
        let err = match check_path(&dir, as_uid, false) {
            Err(Refusal::Unsafe(why)) => why,
            other => panic!("{other:?}"),
        };
        assert!(err.contains(&format!("neither root nor {as_uid}")), "{err}");
    }
}
