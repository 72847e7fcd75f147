//! Rendering responses: human text or stable JSON. Secrets appear only where the caller
//! passes `reveal`.
//!
//! Human text never carries vault or imported text raw: every field goes through
//! [`jeton::text::Shown`] (rows through [`Table`], which escapes each cell as it takes it), so
//! no escape sequence reaches a terminal and no newline forges a row. `get` prints the secret
//! raw for scripts; JSON is escaped by serde_json.

use jeton::entry::{Entry, Status};
use jeton::lifecycle::FindingKind;
use jeton::request::Summary;
use jeton::secret::{SecretText, Token};
use jeton::text::{Lines, Shown, escape};
use jeton::time::{rfc3339, show_span};
use serde::Serialize;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Output failures. A closed pipe is not an error (`jeton get x | head -c1`).
pub enum OutError {
    /// The reader went away.
    Closed,
    /// Any other write failure.
    Failed(std::io::Error),
}

/// Set once a command's output found its reader gone (`jeton list | head -1`): not an error.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Records that stdout's reader went away; the error stops the command.
pub fn closed_stdout() -> jeton::Error {
    STDOUT_CLOSED.store(true, Ordering::Relaxed);
    jeton::Error::Other("stdout was closed".into())
}

/// Whether a command's output found stdout closed.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Writes to stdout, mapping a closed pipe to [`OutError::Closed`]. Straight to the file
/// descriptor, after flushing anything printed before: `std::io::Stdout` would copy a short
/// text (a token) into its buffer, which lives as long as the process and is never wiped.
pub fn write_stdout(mut bytes: &[u8]) -> Result<(), OutError> {
    std::io::stdout().flush().map_err(classify)?;
    while !bytes.is_empty() {
        match rustix::io::write(rustix::stdio::stdout(), bytes) {
            Ok(0) => return Err(OutError::Failed(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(classify(e.into())),
        }
    }
    Ok(())
}

fn classify(e: std::io::Error) -> OutError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        OutError::Closed
    } else {
        OutError::Failed(e)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn time_opt(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

/// The JSON view of an entry. `reveal` adds the secret.
pub fn entry_json(e: &Entry, default_contact: Option<&str>, reveal: bool) -> Value {
    let status = match &e.status {
        Status::Active => json!({"state": "active"}),
        Status::Disabled { since } => json!({"state": "disabled", "since": rfc3339(*since)}),
        Status::Revoked { at, reason } => {
            json!({"state": "revoked", "at": rfc3339(*at), "reason": reason})
        }
    };
    let mut v = json!({
        "name": e.name,
        "id": hex(&e.id),
        "revision": e.revision,
        "status": status,
        "scopes": e.scopes,
        "url": e.url,
        "username": e.username,
        "issuer": e.issuer,
        "contact": e.contact,
        "effective_contact": e.contact.as_deref().or(default_contact),
        "used_by": e.used_by,
        "tags": e.tags,
        "note": e.note,
        "created_at": rfc3339(e.created_at),
        "updated_at": rfc3339(e.updated_at),
        "secret_set_at": rfc3339(e.secret_set_at),
        "expires_at": time_opt(e.expires_at),
        "rotate_every": e.rotate_every.map(show_span),
        "last_rotated_at": time_opt(e.last_rotated_at),
        "rotation_due_at": time_opt(e.rotation_due_at()),
        "history_count": e.history.len(),
        "shared_with": e.shared_with.iter().map(|s| json!({"contact": s.contact, "bundle_id": s.bundle_id, "at": rfc3339(s.at)})).collect::<Vec<_>>(),
        "received_from": e.received_from.as_ref().map(|r| json!({"from": r.from, "reference": r.reference, "at": rfc3339(r.at)})),
    });
    if reveal {
        v["secret"] = e
            .secret
            .as_ref()
            .map_or(Value::Null, |s| Value::String(s.expose_secret().to_owned()));
    }
    v
}

/// Human view of an entry, one `key: value` per line. With `reveal`, the secret is written
/// straight into the returned text and nowhere else.
pub fn entry_text(e: &Entry, default_contact: Option<&str>, reveal: bool) -> SecretText {
    let mut lines: Vec<(String, String)> = Vec::new();
    // Every value is escaped here; only a note keeps its lines (indented below).
    let mut put = |k: &str, v: String| {
        let shown = match k {
            "note" => Shown::lines(&v).to_string(),
            _ => Shown::line(&v).to_string(),
        };
        lines.push((k.to_owned(), shown));
    };
    put("name", e.name.clone());
    let status = match &e.status {
        Status::Active => "active".to_owned(),
        Status::Disabled { since } => format!("disabled since {}", rfc3339(*since)),
        Status::Revoked { at, reason } => {
            format!(
                "revoked at {}{}",
                rfc3339(*at),
                reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            )
        }
    };
    put("status", status);
    let secret = match &e.secret {
        None => "(wiped)".to_owned(),
        // Filled in below, when the text is written.
        Some(_) if reveal => String::new(),
        Some(s) => format!("******** ({} characters; --reveal to show)", s.char_len()),
    };
    put("secret", secret);
    let opt = |o: &Option<String>| o.clone();
    for (k, v) in [
        ("url", opt(&e.url)),
        ("username", opt(&e.username)),
        ("issuer", opt(&e.issuer)),
    ] {
        if let Some(v) = v {
            put(k, v);
        }
    }
    match (&e.contact, default_contact) {
        (Some(c), _) => put("contact", c.clone()),
        (None, Some(d)) => put("contact", format!("{d} (vault default)")),
        (None, None) => put("contact", "(none)".into()),
    }
    for (k, v) in [
        ("scopes", &e.scopes),
        ("used_by", &e.used_by),
        ("tags", &e.tags),
    ] {
        if !v.is_empty() {
            put(k, v.join(", "));
        }
    }
    if let Some(n) = &e.note {
        put("note", n.clone());
    }
    put("created", rfc3339(e.created_at));
    put("updated", rfc3339(e.updated_at));
    if let Some(t) = e.expires_at {
        put("expires", rfc3339(t));
    }
    if let Some(s) = e.rotate_every {
        put("rotate_every", show_span(s));
    }
    if let Some(t) = e.last_rotated_at {
        put("last_rotated", rfc3339(t));
    }
    if let Some(t) = e.rotation_due_at() {
        put("rotation_due", rfc3339(t));
    }
    if !e.history.is_empty() {
        put("history", format!("{} previous secrets", e.history.len()));
    }
    for s in &e.shared_with {
        put(
            "shared_with",
            format!("{} (bundle {}, {})", s.contact, s.bundle_id, rfc3339(s.at)),
        );
    }
    if let Some(r) = &e.received_from {
        put(
            "received_from",
            format!("{} ({}, {})", r.from, r.reference, rfc3339(r.at)),
        );
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let revealed = e.secret.as_ref().filter(|_| reveal);
    let indent = format!("\n{:width$}  ", "");
    let mut out = SecretText::default();
    for (k, v) in &lines {
        out.push_str(&format!("{k:<width$}  "));
        match revealed {
            Some(s) if k == "secret" => push_shown_secret(&mut out, s.expose_secret()),
            _ => out.push_str(&v.replace('\n', &indent)),
        }
        out.push_str("\n");
    }
    out
}

/// A revealed secret in human output (`show --reveal`, `history --reveal`), escaped like any
/// other field: a secret holding an escape sequence must not drive the terminal. `get` prints
/// it raw. The escaped copy is wiped.
pub fn push_shown_secret(out: &mut SecretText, secret: &str) {
    match escape(secret, Lines::One) {
        std::borrow::Cow::Borrowed(s) => out.push_str(s),
        std::borrow::Cow::Owned(s) => out.push_str(&zeroize::Zeroizing::new(s)),
    }
}

/// Rows of single-line cells in aligned columns. Each cell is escaped ([`Shown::line`]) as the
/// table takes it, so no field can break its row or reach the terminal as an escape sequence.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first row is `header` (none when empty).
    pub fn new(header: &[&str]) -> Table {
        let mut t = Table { rows: Vec::new() };
        if !header.is_empty() {
            t.row(header.iter().copied());
        }
        t
    }

    /// Adds a row.
    pub fn row<S: AsRef<str>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| Shown::line(c.as_ref()).to_string())
                .collect(),
        );
    }

    /// The rows, columns two spaces apart, no trailing spaces.
    pub fn render(&self) -> String {
        self.render_with(|_, _, cell| cell.to_owned())
    }

    /// [`Table::render`], each cell passed through `style(row, column, cell)` after the widths
    /// are measured: a style may add escape sequences (colour) but no visible characters.
    pub fn render_with(&self, style: impl Fn(usize, usize, &str) -> String) -> String {
        let mut widths: Vec<usize> = Vec::new();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                let w = c.chars().count();
                match widths.get_mut(i) {
                    Some(x) => *x = (*x).max(w),
                    None => widths.push(w),
                }
            }
        }
        self.rows
            .iter()
            .enumerate()
            .map(|(n, r)| {
                let last = r.len().saturating_sub(1);
                let mut line = String::new();
                for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
                    if i > 0 {
                        line.push_str("  ");
                    }
                    line.push_str(&style(n, i, c));
                    if i < last {
                        let pad = w.saturating_sub(c.chars().count());
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
                format!("{}\n", line.trim_end())
            })
            .collect()
    }
}

/// Whether stdout takes colour: a terminal that is not `dumb`, and `NO_COLOR` unset or empty
/// (<https://no-color.org>).
pub fn colour() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    !no_color && !dumb && std::io::stdout().is_terminal()
}

const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// `text` in bold, when `on`.
fn bold(text: &str, on: bool) -> String {
    if on && !text.is_empty() {
        format!("{BOLD}{text}{RESET}")
    } else {
        text.to_owned()
    }
}

/// `text` dimmed, when `on`.
fn dim(text: &str, on: bool) -> String {
    if on && !text.is_empty() {
        format!("{DIM}{text}{RESET}")
    } else {
        text.to_owned()
    }
}

/// The host (and port) of a URL: no scheme, user, path, query or fragment.
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

/// JSON for a list.
/// When `list` looks: now, and how far ahead an expiry or a rotation counts as due.
#[derive(Clone, Copy)]
pub struct Horizon {
    /// Now.
    pub now: i64,
    /// The look-ahead (`--due SPAN`, else `check`'s default).
    pub within: i64,
}

impl Horizon {
    /// Which of `check`'s date findings apply to an active listed entry: `expired` or
    /// `expiring`, then `rotation_overdue` or `rotation_due`.
    pub fn due(self, s: &Summary) -> Vec<FindingKind> {
        let ahead = self.now.saturating_add(self.within);
        let when = |t: Option<i64>, past, soon| match t {
            Some(t) if t <= self.now => Some(past),
            Some(t) if t <= ahead => Some(soon),
            _ => None,
        };
        if s.status != "active" {
            return Vec::new();
        }
        [
            when(s.expires_at, FindingKind::Expired, FindingKind::Expiring),
            when(
                s.rotation_due_at,
                FindingKind::RotationOverdue,
                FindingKind::RotationDue,
            ),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

pub fn list_json(items: &[Summary], at: Horizon) -> Value {
    Value::Array(
        items
            .iter()
            .map(|s| {
                let due: Vec<&str> = at.due(s).into_iter().map(FindingKind::label).collect();
                json!({
                    "name": s.name,
                    "status": s.status,
                    "scopes": s.scopes,
                    "tags": s.tags,
                    "url": s.url,
                    "username": s.username,
                    "expires_at": time_opt(s.expires_at),
                    "rotation_due_at": time_opt(s.rotation_due_at),
                    "due": due,
                })
            })
            .collect(),
    )
}

/// A date cell of `list`, marked when `check` would report it (`expired`, `overdue`, ...).
fn marked_date(t: Option<i64>, due: &[FindingKind]) -> String {
    let Some(t) = t else {
        return "-".into();
    };
    let mark = due.iter().find_map(|k| match k {
        FindingKind::Expired => Some("expired"),
        FindingKind::Expiring => Some("expiring"),
        FindingKind::RotationOverdue => Some("overdue"),
        FindingKind::RotationDue => Some("due"),
        _ => None,
    });
    match mark {
        Some(m) => format!("{} ({m})", jeton::time::date(t)),
        None => jeton::time::date(t),
    }
}

/// Aligned columns for a list; with `colour`, the folder part of a name is dimmed and the rest
/// is bold. An expiry or a rotation date `check` would report is marked.
pub fn list_text(items: &[Summary], colour: bool, at: Horizon) -> String {
    let joined = |v: &[String]| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.join(",")
        }
    };
    let mut table = Table::new(&[
        "NAME",
        "STATUS",
        "HOST",
        "TAGS",
        "SCOPES",
        "EXPIRES",
        "ROTATE-BY",
    ]);
    for s in items {
        let host = s
            .url
            .as_deref()
            .map(url_host)
            .filter(|h| !h.is_empty())
            .unwrap_or("-");
        let due = at.due(s);
        let (expiry, rotation): (Vec<FindingKind>, Vec<FindingKind>) = due
            .into_iter()
            .partition(|k| matches!(k, FindingKind::Expired | FindingKind::Expiring));
        table.row([
            s.name.clone(),
            s.status.clone(),
            host.to_owned(),
            joined(&s.tags),
            joined(&s.scopes),
            marked_date(s.expires_at, &expiry),
            marked_date(s.rotation_due_at, &rotation),
        ]);
    }
    table.render_with(|row, col, cell| match (row, col) {
        (0, _) => dim(cell, colour),
        (_, 0) => {
            let (folder, leaf) = cell.rsplit_once('/').map_or(("", cell), |(f, l)| (f, l));
            let folder = if folder.is_empty() {
                String::new()
            } else {
                format!("{folder}/")
            };
            format!("{}{}", dim(&folder, colour), bold(leaf, colour))
        }
        (_, 5 | 6) => match cell.split_once(' ') {
            Some((date, mark)) => format!("{date} {}", bold(mark, colour)),
            None => cell.to_owned(),
        },
        _ => cell.to_owned(),
    })
}

/// A folder of the tree: its entries and sub-folders by name; `entry` holds the status when the
/// path is also an entry.
#[derive(Default)]
struct Node {
    entry: Option<String>,
    children: std::collections::BTreeMap<String, Node>,
}

/// Names as a tree of folders (split on `/`), drawn like `tree` and `pass`; with `colour`,
/// folders are bold and the branches dimmed. A status other than active follows the name, and
/// so does "also an entry" for a folder that is an entry's name too.
pub fn list_tree(items: &[Summary], colour: bool) -> String {
    let mut root = Node::default();
    for s in items {
        let mut node = &mut root;
        for part in s.name.split('/') {
            node = node.children.entry(part.to_owned()).or_default();
        }
        node.entry = Some(s.status.clone());
    }
    let mut out = String::new();
    draw(&root, "", colour, &mut out);
    out
}

fn draw(node: &Node, prefix: &str, colour: bool, out: &mut String) {
    let count = node.children.len();
    for (i, (name, child)) in node.children.iter().enumerate() {
        let last = i + 1 == count;
        let shown = Shown::line(name).to_string();
        let folder = !child.children.is_empty();
        out.push_str(&dim(
            &format!("{prefix}{}", if last { "└── " } else { "├── " }),
            colour,
        ));
        if folder {
            out.push_str(&bold(&format!("{shown}/"), colour));
        } else {
            out.push_str(&shown);
        }
        let mut notes = Vec::new();
        if folder && child.entry.is_some() {
            notes.push("also an entry");
        }
        notes.extend(child.entry.as_deref().filter(|s| *s != "active"));
        if !notes.is_empty() {
            out.push_str(&dim(&format!(" ({})", notes.join(", ")), colour));
        }
        out.push('\n');
        let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
        draw(child, &deeper, colour, out);
    }
}

/// [`json_line`] for a value that holds secrets: the text goes into a [`SecretText`], and every
/// string in `v` is wiped once written.
pub fn secret_json_line(v: Value) -> SecretText {
    let mut out = SecretText::json(v, true);
    out.push_str("\n");
    out
}

/// Pretty JSON plus a newline.
pub fn json_line<T: Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s
}

/// A new recovery key, with `message` before it: the only time it is ever printed.
pub fn recovery_key(key: &Token, message: &str, json: bool, quiet: bool) -> SecretText {
    if json {
        return secret_json_line(json!({
            "ok": true,
            "message": message,
            "recovery_key": key.expose_secret(),
        }));
    }
    let mut text = SecretText::default();
    if !quiet {
        text.push_str(&format!(
            "{message}\n\nRecovery key (shown only this once; write it down and keep it apart \
             from the vault):\n\n    "
        ));
    }
    text.push_str(key.expose_secret());
    if !quiet {
        text.push_str("\n\nIt opens this vault if the passphrase is lost: `jeton recover`.");
    }
    text.push_str("\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_of_a_url() {
        for (url, host) in [
            ("https://api.github.com/repos", "api.github.com"),
            ("https://user:pw@h.example:8443/x?y#z", "h.example:8443"),
            ("registry.npmjs.org/", "registry.npmjs.org"),
            ("h.example?q", "h.example"),
            ("", ""),
        ] {
            assert_eq!(url_host(url), host, "{url}");
        }
    }

    #[test]
    fn styled_cells_keep_the_columns() {
        let mut t = Table::new(&["A", "B"]);
        t.row(["long-name", "x"]);
        let plain = t.render();
        assert_eq!(plain, "A          B\nlong-name  x\n");
        let styled = t.render_with(|_, c, cell| {
            if c == 0 {
                bold(cell, true)
            } else {
                cell.into()
            }
        });
        assert_eq!(styled.replace(BOLD, "").replace(RESET, ""), plain);
    }
}
