//! Files and folders, and standard input.
//!
//! Folders are walked the way ripgrep walks them (the `ignore` crate, ripgrep's own): inside a
//! git work tree what git ignores is skipped, unless `all`; hidden files are read (a `.env` is
//! where tokens are); `.git/` is left to the history scan. Nothing can make a scan hang or
//! fill memory:
//!
//! * symbolic links are not followed unless asked (a link may lead out of the tree, or in a
//!   circle);
//! * only regular files are read: FIFOs, sockets and devices (`/dev/zero`) are reported and
//!   skipped, and a file is opened with `O_NONBLOCK` and checked after opening, so a FIFO put
//!   in a file's place between the two does not block;
//! * a file is read up to the size it had when opened (one that grows while read, such as
//!   the scan's own output, ends there);
//! * the holes of a sparse file are skipped, not read as zeros (a 10 GiB sparse file with a
//!   few stored blocks costs the blocks);
//! * the read buffer is bounded ([`super::matcher::CHUNK`]), whatever the file's size.

use super::matcher::{Got, Reader, Source};
use super::report::{Place, Sink, Skipped};
use super::{Hit, Search};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// How to walk.
#[derive(Clone, Copy, Debug, Default)]
pub struct WalkOptions {
    /// Read what git ignores too.
    pub all: bool,
    /// Follow symbolic links.
    pub follow: bool,
    /// Read the files inside `.git/` too.
    pub git_dir: bool,
}

/// Scans every file under `paths` (files or folders).
pub fn scan_paths(search: &Search, paths: &[PathBuf], opts: WalkOptions, sink: &mut dyn Sink) {
    let Some((first, rest)) = paths.split_first() else {
        return;
    };
    let mut walk = ignore::WalkBuilder::new(first);
    for p in rest {
        walk.add(p);
    }
    let git_dir = opts.git_dir;
    walk.standard_filters(false)
        .git_ignore(!opts.all)
        .git_global(!opts.all)
        .git_exclude(!opts.all)
        .parents(!opts.all)
        .require_git(true)
        .follow_links(opts.follow)
        .skip_stdout(true)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |e| git_dir || e.depth() == 0 || e.file_name() != ".git");
    let mut buffer = search.buffer();
    for entry in walk.build() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let (path, error) = walk_error(e);
                sink.unreadable(&path, &error);
                continue;
            }
        };
        let Some(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            continue;
        }
        if kind.is_symlink() {
            sink.skipped(path, Skipped::Symlink);
            continue;
        }
        if !kind.is_file() {
            sink.skipped(path, Skipped::NotRegular(kind_name(&kind)));
            continue;
        }
        let no_follow = !opts.follow && !entry.path_is_symlink();
        scan_file(search, path, no_follow, &mut buffer, sink);
    }
}

/// Scans standard input to its end.
pub fn scan_stdin(search: &Search, sink: &mut dyn Sink) {
    let mut buffer = search.buffer();
    let stdin = io::stdin();
    let mut source = Reader(stdin.lock());
    let place = |line, column| Place::Stdin { line, column };
    let mut hits = |h: Hit| sink.hit(h);
    let result = search.scan(&mut source, &mut buffer, &place, &mut hits);
    match result {
        Ok(bytes) => sink.scanned(bytes),
        Err(e) => sink.unreadable(Path::new("-"), &e),
    }
}

fn scan_file(
    search: &Search,
    path: &Path,
    no_follow: bool,
    buffer: &mut super::matcher::Buffer,
    sink: &mut dyn Sink,
) {
    let mut flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
    if no_follow {
        flags |= rustix::fs::OFlags::NOFOLLOW;
    }
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        // O_NOFOLLOW on a link put there since the walk saw the entry.
        Err(e) if no_follow && e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return sink.skipped(path, Skipped::Symlink);
        }
        Err(e) => return sink.unreadable(path, &e),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return sink.unreadable(path, &e),
    };
    if !meta.is_file() {
        return sink.skipped(path, Skipped::NotRegular(kind_name(&meta.file_type())));
    }
    let size = meta.len();
    // Fewer blocks stored than the size needs: there are holes to skip.
    let sparse = meta.blocks().saturating_mul(512) < size;
    let mut source = FileSource {
        file,
        pos: 0,
        size,
        sparse,
    };
    let shown = shown_path(search, path);
    let place = |line, column| Place::File {
        path: shown.clone(),
        line,
        column,
    };
    let mut hits = |h: Hit| sink.hit(h);
    let result = search.scan(&mut source, buffer, &place, &mut hits);
    match result {
        Ok(bytes) => sink.scanned(bytes),
        Err(e) => sink.unreadable(path, &e),
    }
}

/// The path as shown: without a leading `./`, and with any secret it holds masked.
pub fn shown_path(search: &Search, path: &Path) -> String {
    let text = path.to_string_lossy();
    let text = text.strip_prefix("./").unwrap_or(&text);
    search.redact(text)
}

/// A regular file, read up to the size it had when opened, its holes skipped.
struct FileSource {
    file: File,
    pos: u64,
    size: u64,
    sparse: bool,
}

impl Source for FileSource {
    fn next(&mut self, buf: &mut [u8]) -> io::Result<Got> {
        if self.pos >= self.size {
            return Ok(Got::End);
        }
        if self.sparse {
            match crate::os::next_data(&self.file, self.pos)? {
                None => return Ok(Got::End),
                Some(at) if at > self.pos => {
                    let at = at.min(self.size);
                    let gap = at - self.pos;
                    self.pos = at;
                    return Ok(Got::Gap(gap));
                }
                Some(_) => {}
            }
        }
        let left = usize::try_from(self.size - self.pos).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        match self.file.read(&mut buf[..want])? {
            0 => Ok(Got::End),
            n => {
                self.pos += n as u64;
                Ok(Got::Data(n))
            }
        }
    }
}

fn kind_name(kind: &std::fs::FileType) -> &'static str {
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a file"
    }
}

/// The path and the system's error in a walk error.
fn walk_error(e: ignore::Error) -> (PathBuf, io::Error) {
    fn unwrap(e: ignore::Error, path: Option<PathBuf>) -> (PathBuf, io::Error) {
        match e {
            ignore::Error::WithPath { path, err } => unwrap(*err, Some(path)),
            ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
                unwrap(*err, path)
            }
            ignore::Error::Io(io) => (path.unwrap_or_default(), io),
            ignore::Error::Loop { child, .. } => (
                path.unwrap_or(child),
                io::Error::other("a symbolic link loop"),
            ),
            other => (
                path.unwrap_or_default(),
                io::Error::other(other.to_string()),
            ),
        }
    }
    unwrap(e, None)
}
