//! The text form of an entry that `edit` opens in the editor: how it is written, read back
//! (only the lines that changed count), and carried over onto new values when the entry changed
//! while the form was open.

use jeton::entry::Entry;
use jeton::request::{Change, EntryEdit};
use jeton::secret::Token;
use jeton::time::{self, Time};
use jeton::{Error, Result};
use zeroize::Zeroizing;

const NOTE_MARK: &str = "--- note (every line below) ---";
const SECRET_MARK: &str =
    "--- secret (every line below, up to the note; a change is a rotation) ---";
const SCALARS: [&str; 4] = ["url", "username", "issuer", "contact"];
const LISTS: [&str; 3] = ["scopes", "used_by", "tags"];

/// What the editor asked for: a metadata edit, a new secret, or both.
pub(super) struct Changes {
    pub(super) edit: Option<EntryEdit>,
    pub(super) secret: Option<Token>,
}

/// The form of `fresh`, with every line `saved` changed in the form of `old` carried over: a
/// scalar field's line as saved, a list's additions and removals applied to the new list, the
/// secret and the note as saved when they were changed.
pub(super) fn carried_over(
    old: &Entry,
    fresh: &Entry,
    saved: &str,
    with_secret: bool,
) -> Result<Zeroizing<String>> {
    let secret_of = |e| with_secret.then(|| editable_secret(e)).transpose();
    let shown = text_form(old, secret_of(old)?);
    let new = text_form(fresh, secret_of(fresh)?);
    let (shown_fields, shown_secret, shown_note) = split(&shown, with_secret)?;
    let (saved_fields, saved_secret, saved_note) = split(saved, with_secret)?;
    let (new_fields, new_secret, new_note) = split(&new, with_secret)?;
    let (was, now) = (field_values(shown_fields)?, field_values(saved_fields)?);
    let changed = |k: &str| {
        let v = now.iter().find(|(key, _)| *key == k).map(|(_, v)| *v)?;
        let before = was.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        (before != Some(v)).then_some((before.unwrap_or(""), v))
    };
    let mut fields = format!(
        "# '{}' changed while this form was open: these are its new values, with your changes.\n",
        fresh.name
    );
    for line in new_fields.lines() {
        let key = line.split_once(':').map(|(k, _)| k.trim());
        match key.and_then(|k| changed(k).map(|c| (k, c))) {
            Some((k, (before, after))) if LISTS.contains(&k) => {
                let (before, after) = (items(before), items(after));
                let mut list = items(line.split_once(':').map_or("", |(_, v)| v));
                list.retain(|i| !before.contains(i) || after.contains(i));
                list.extend(after.into_iter().filter(|i| !before.contains(i)));
                fields.push_str(&format!("{k}: {}\n", clean(list).join(", ")));
            }
            Some((k, (_, after))) => fields.push_str(&format!("{k}: {after}\n")),
            None => {
                fields.push_str(line);
                fields.push('\n');
            }
        }
    }
    let secret = if saved_secret != shown_secret {
        saved_secret
    } else {
        new_secret
    };
    let note = match saved_note {
        Some(n) if saved_note != shown_note => n,
        _ => new_note.unwrap_or(""),
    };
    let secret_len = secret.map_or(0, |s| SECRET_MARK.len() + s.len() + 2);
    // Reserved whole: growing the text would leave copies of the secret behind.
    let mut text = Zeroizing::new(String::with_capacity(
        fields.len() + secret_len + NOTE_MARK.len() + 1 + note.len(),
    ));
    text.push_str(&fields);
    if let Some(s) = secret {
        text.push_str(SECRET_MARK);
        text.push('\n');
        text.push_str(s);
        text.push('\n');
    }
    text.push_str(NOTE_MARK);
    text.push('\n');
    text.push_str(note);
    Ok(text)
}

/// The items of a list line's value.
fn items(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `list` without repeats, in order.
fn clean(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for i in list {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// The text form of `e`'s metadata, and of its secret when `with_secret`.
pub(super) fn text_form(e: &Entry, with_secret: Option<&Token>) -> Zeroizing<String> {
    let one = |v: &Option<String>| v.clone().unwrap_or_default();
    let first = match with_secret {
        None => format!(
            "# Metadata of {name}; the secret is not here (`jeton rotate {name}` changes it).\n",
            name = e.name
        ),
        Some(_) => format!(
            "# Metadata and secret of {}; a changed secret is a rotation (the old one goes to the history).\n",
            e.name
        ),
    };
    let mut t = Zeroizing::new(format!(
        "{first}# One field a line; an empty value clears it; lists are comma-separated.\n\
         # expires: a date, an RFC 3339 time or a span from now; rotate_every: a span (90d, 6mo).\n"
    ));
    for (k, v) in SCALARS
        .iter()
        .zip([&e.url, &e.username, &e.issuer, &e.contact])
    {
        t.push_str(&format!("{k}: {}\n", one(v)));
    }
    for (k, v) in LISTS.iter().zip([&e.scopes, &e.used_by, &e.tags]) {
        t.push_str(&format!("{k}: {}\n", v.join(", ")));
    }
    t.push_str(&format!(
        "expires: {}\n",
        e.expires_at.map(time::rfc3339).unwrap_or_default()
    ));
    t.push_str(&format!(
        "rotate_every: {}\n",
        e.rotate_every.map(time::show_span).unwrap_or_default()
    ));
    if let Some(secret) = with_secret {
        // Reserved whole: growing the text would leave copies of the secret behind.
        let note = e.note.as_ref().map_or(0, |n| n.len() + 1);
        t.reserve(SECRET_MARK.len() + secret.expose_secret().len() + NOTE_MARK.len() + 3 + note);
        t.push_str(SECRET_MARK);
        t.push('\n');
        t.push_str(secret.expose_secret());
        t.push('\n');
    }
    t.push_str(NOTE_MARK);
    t.push('\n');
    if let Some(n) = &e.note {
        t.push_str(n);
        t.push('\n');
    }
    t
}

/// The secret `e` shows in the editor, refused when it has none or holds a line the form uses
/// as a marker.
pub(super) fn editable_secret(e: &Entry) -> Result<&Token> {
    let secret = e
        .secret
        .as_ref()
        .ok_or_else(|| Error::Unavailable(format!("entry '{}' has no secret (revoked)", e.name)))?;
    if secret
        .expose_secret()
        .lines()
        .any(|l| l == NOTE_MARK || l == SECRET_MARK)
    {
        return Err(Error::Usage(format!(
            "the secret of '{}' holds a line the editor form uses as a marker; change it with `jeton rotate`",
            e.name
        )));
    }
    Ok(secret)
}

/// The parts of a form: field lines, the secret section (with `with_secret`), the note.
type Parts<'t> = (&'t str, Option<&'t str>, Option<&'t str>);

fn split(text: &str, with_secret: bool) -> Result<Parts<'_>> {
    let (before, note) = match text.split_once(&format!("{NOTE_MARK}\n")) {
        Some((f, n)) => (f, Some(n)),
        None => (text, None),
    };
    if !with_secret {
        return Ok((before, None, note));
    }
    let (fields, secret) = before
        .split_once(&format!("{SECRET_MARK}\n"))
        .ok_or_else(|| {
            Error::Usage(format!(
                "the line '{SECRET_MARK}' is gone; nothing was changed"
            ))
        })?;
    // The secret's last newline is the form's.
    Ok((
        fields,
        Some(secret.strip_suffix('\n').unwrap_or(secret)),
        note,
    ))
}

/// What `text` asks for, against `e`; `None` when it says what `e` holds.
pub(super) fn parse_form(
    e: &Entry,
    text: &str,
    with_secret: bool,
    now: Time,
) -> Result<Option<Changes>> {
    let current = with_secret.then(|| editable_secret(e)).transpose()?;
    let shown = text_form(e, current);
    if *text == *shown {
        return Ok(None);
    }
    let (fields, secret, note) = split(text, with_secret)?;
    let (shown_fields, _, shown_note) = split(&shown, with_secret)?;
    let secret = match (secret, current) {
        (Some(""), _) => {
            return Err(Error::Usage(
                "the secret is empty; nothing was changed (`jeton revoke` or `jeton rm` retire a token)"
                    .into(),
            ));
        }
        (Some(new), Some(old)) if new != old.expose_secret() => Some(Token::new(new.to_owned())),
        _ => None,
    };
    let edit = parse_fields(e, (fields, note), (shown_fields, shown_note), now)?;
    if edit.is_none() && secret.is_none() {
        return Ok(None);
    }
    Ok(Some(Changes { edit, secret }))
}

/// The edit that turns `e` into what `text` says; `None` when it says what `e` holds.
#[cfg(test)]
fn parse(e: &Entry, text: &str, now: Time) -> Result<Option<EntryEdit>> {
    Ok(parse_form(e, text, false, now)?.and_then(|c| c.edit))
}

/// The `field: value` lines of a form's field part (comments and blank lines skipped), refused
/// when a line is not one or names a field twice or a field the form does not have.
fn field_values(fields: &str) -> Result<Vec<(&str, &str)>> {
    let mut values: Vec<(&str, &str)> = Vec::new();
    for (n, line) in fields.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: String| Error::Usage(format!("line {}: {why}", n + 1));
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("'{line}' is not `field: value`")))?;
        let key = key.trim();
        let known = SCALARS.contains(&key)
            || LISTS.contains(&key)
            || ["expires", "rotate_every"].contains(&key);
        if !known {
            return Err(bad(format!("unknown field '{key}'")));
        }
        if values.iter().any(|(k, _)| *k == key) {
            return Err(bad(format!("'{key}' is given twice")));
        }
        values.push((key, value.trim()));
    }
    Ok(values)
}

/// The metadata edit the field lines and the note (`saved`) ask for against the form of `e`
/// (`shown`): only what differs from the form is in it, so the rest of the entry is left as it
/// is in the vault. `None` when nothing differs.
fn parse_fields(
    e: &Entry,
    saved: (&str, Option<&str>),
    shown: (&str, Option<&str>),
    now: Time,
) -> Result<Option<EntryEdit>> {
    let values = field_values(saved.0)?;
    let shown_values = field_values(shown.0)?;
    // A field's new value, when its line differs from the form's (a line taken out keeps it).
    let changed = |k: &str| {
        let v = values.iter().find(|(key, _)| *key == k).map(|(_, v)| *v)?;
        let before = shown_values
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| *v);
        (before != Some(v)).then_some(v)
    };
    let scalar = |k: &str| match changed(k) {
        None => Change::Keep,
        Some("") => Change::Clear,
        Some(v) => Change::Set(v.to_owned()),
    };
    let list = |k: &str, old: &[String]| -> (Vec<String>, Vec<String>) {
        let Some(v) = changed(k) else {
            return (vec![], vec![]);
        };
        let new = items(v);
        let add = new.iter().filter(|n| !old.contains(n)).cloned().collect();
        let rm = old.iter().filter(|o| !new.contains(o)).cloned().collect();
        (add, rm)
    };
    let when = |k: &str, parse: fn(&str, Time) -> Result<i64>| match changed(k) {
        None => Ok(Change::Keep),
        Some("" | "never" | "none") => Ok(Change::Clear),
        Some(v) => parse(v, now).map(Change::Set),
    };
    let (add_scopes, rm_scopes) = list("scopes", &e.scopes);
    let (add_used_by, rm_used_by) = list("used_by", &e.used_by);
    let (add_tags, rm_tags) = list("tags", &e.tags);
    let note = match saved.1.map(|n| n.trim_end_matches('\n')) {
        None => Change::Keep,
        Some(n) if Some(n) == shown.1.map(|n| n.trim_end_matches('\n')) => Change::Keep,
        Some("") => Change::Clear,
        Some(n) => Change::Set(n.to_owned()),
    };
    let edit = EntryEdit {
        name: e.name.clone(),
        url: scalar("url"),
        username: scalar("username"),
        issuer: scalar("issuer"),
        contact: scalar("contact"),
        note,
        expires_at: when("expires", time::parse_when)?,
        rotate_every: when("rotate_every", time::parse_span)?,
        add_scopes,
        rm_scopes,
        add_used_by,
        rm_used_by,
        add_tags,
        rm_tags,
    };
    let keep = |c: &Change<String>| *c == Change::Keep;
    let nothing = [
        &edit.url,
        &edit.username,
        &edit.issuer,
        &edit.contact,
        &edit.note,
    ]
    .into_iter()
    .all(keep)
        && edit.expires_at == Change::Keep
        && edit.rotate_every == Change::Keep
        && [
            &edit.add_scopes,
            &edit.rm_scopes,
            &edit.add_used_by,
            &edit.rm_used_by,
            &edit.add_tags,
            &edit.rm_tags,
        ]
        .iter()
        .all(|l| l.is_empty());
    if nothing {
        return Ok(None);
    }
    edit.check()?;
    let set = |c: &Change<i64>| match c {
        Change::Set(v) => Some(*v),
        _ => None,
    };
    crate::ctx::warn_short_spans(set(&edit.expires_at), set(&edit.rotate_every), now);
    Ok(Some(edit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        let id = vec![0u8; 16];
        let json = serde_json::json!({
            "id": id, "revision": 1, "name": "svc/a", "secret": null, "secret_set_at": 0,
            "scopes": ["read", "write"], "url": "https://x.example", "username": null,
            "issuer": null, "contact": null, "used_by": [], "tags": ["ci"],
            "note": "two\nlines", "created_at": 0, "updated_at": 0,
            "expires_at": 1_800_000_000, "rotate_every": 7_776_000, "last_rotated_at": null,
            "status": "Active", "history": [], "shared_with": [], "received_from": null,
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_text_form_round_trips_to_no_change() {
        let e = entry();
        let text = text_form(&e, None);
        assert!(
            text.contains("url: https://x.example\n"),
            "{}",
            text.as_str()
        );
        assert!(text.contains("rotate_every: 90d\n"), "{}", text.as_str());
        assert!(parse(&e, &text, 0).unwrap().is_none());
        // The same values written differently are still no change.
        let spaced = text
            .replace("scopes: read, write", "scopes:  read ,write ")
            .replace("url: https://x.example", "url:   https://x.example  ");
        assert!(parse(&e, &spaced, 0).unwrap().is_none());
    }

    #[test]
    fn only_the_lines_that_changed_are_sent() {
        let e = entry();
        let text = text_form(&e, None).replace("tags: ci", "tags: ci, prod");
        let edit = parse(&e, &text, 0).unwrap().unwrap();
        assert_eq!((edit.add_tags, edit.rm_tags), (vec!["prod".into()], vec![]));
        for c in [
            &edit.url,
            &edit.username,
            &edit.issuer,
            &edit.contact,
            &edit.note,
        ] {
            assert_eq!(*c, Change::Keep);
        }
        assert!(edit.add_scopes.is_empty() && edit.rm_scopes.is_empty());
        assert_eq!(
            (edit.expires_at, edit.rotate_every),
            (Change::Keep, Change::Keep)
        );
        // A line taken out keeps its field.
        let text = text_form(&e, None).replace("url: https://x.example\n", "");
        assert!(parse(&e, &text, 0).unwrap().is_none());
    }

    #[test]
    fn a_form_reopened_on_new_values_carries_the_changes_over() {
        let mut old = entry();
        old.secret = Some(Token::new("s1".into()));
        // Saved: a tag added, the secret changed; the url line left as shown.
        let saved = text_form(&old, old.secret.as_ref())
            .replace("tags: ci", "tags: ci, prod")
            .replace("\ns1\n", "\ns2\n");
        // Meanwhile: another tag added, the url changed, elsewhere.
        let mut fresh = old.clone();
        fresh.revision = 2;
        fresh.tags.push("ops".into());
        fresh.url = Some("https://y.example".into());
        let text = carried_over(&old, &fresh, &saved, true).unwrap();
        assert!(
            text.contains("\nurl: https://y.example\n"),
            "{}",
            text.as_str()
        );
        assert!(
            text.contains("\ntags: ci, ops, prod\n"),
            "{}",
            text.as_str()
        );
        assert!(text.contains("\ns2\n--- note"), "{}", text.as_str());
        let c = parse_form(&fresh, &text, true, 0).unwrap().unwrap();
        assert_eq!(c.secret.unwrap().expose_secret(), "s2");
        let edit = c.edit.unwrap();
        assert_eq!((edit.add_tags, edit.rm_tags), (vec!["prod".into()], vec![]));
        assert_eq!(edit.url, Change::Keep);
        // Nothing saved differently from the form: the new values, unchanged.
        let same = text_form(&old, old.secret.as_ref());
        let text = carried_over(&old, &fresh, &same, true).unwrap();
        assert!(parse_form(&fresh, &text, true, 0).unwrap().is_none());
    }

    #[test]
    fn the_secret_form_round_trips_and_refuses_marker_lines() {
        let mut e = entry();
        e.secret = Some(Token::new("one\ntwo".into()));
        let text = text_form(&e, e.secret.as_ref());
        assert!(parse_form(&e, &text, true, 0).unwrap().is_none());
        let changed = text.replace("one\ntwo\n", "three\n");
        let c = parse_form(&e, &changed, true, 0).unwrap().unwrap();
        assert_eq!(c.secret.unwrap().expose_secret(), "three");
        assert!(c.edit.is_none());
        e.secret = Some(Token::new(format!("x\n{NOTE_MARK}")));
        assert_eq!(editable_secret(&e).unwrap_err().exit_code(), 2);
        e.secret = None;
        assert_eq!(editable_secret(&e).unwrap_err().exit_code(), 5);
    }

    #[test]
    fn changes_and_mistakes() {
        let e = entry();
        let text = text_form(&e, None)
            .replace("scopes: read, write", "scopes: read, admin")
            .replace("url: https://x.example", "url:")
            .replace("two\nlines", "one line");
        let edit = parse(&e, &text, 0).unwrap().unwrap();
        assert_eq!(
            (edit.add_scopes, edit.rm_scopes),
            (vec!["admin".into()], vec!["write".into()])
        );
        assert_eq!(edit.url, Change::Clear);
        assert_eq!(edit.note, Change::Set("one line".into()));
        for bad in [
            "colour: red\n",
            "url: a\nurl: b\n",
            "just words\n",
            "rotate_every: 6m\n",
        ] {
            let text = format!("{bad}{NOTE_MARK}\n");
            assert_eq!(parse(&e, &text, 0).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    /// A field as the form's three parties may leave it: as it was, or set to one of a few
    /// values (an empty one clears it).
    fn field() -> impl proptest::strategy::Strategy<Value = Option<Option<String>>> {
        proptest::option::of(proptest::option::of(proptest::sample::select(vec![
            "a".to_owned(),
            "b".to_owned(),
        ])))
    }

    fn tags() -> impl proptest::strategy::Strategy<Value = Option<Vec<String>>> {
        proptest::option::of(proptest::sample::subsequence(
            vec!["x".to_owned(), "y".to_owned(), "z".to_owned()],
            0..=3,
        ))
    }

    type Changed = (
        Option<Option<String>>,
        Option<Option<String>>,
        Option<Vec<String>>,
    );

    fn changed(base: &Entry, (url, note, tags): &Changed) -> Entry {
        let mut e = base.clone();
        if let Some(v) = url {
            e.url.clone_from(v);
        }
        if let Some(v) = note {
            e.note.clone_from(v);
        }
        if let Some(v) = tags {
            e.tags.clone_from(v);
        }
        e
    }

    fn applied(mut e: Entry, edit: Option<EntryEdit>) -> Entry {
        let Some(edit) = edit else { return e };
        let set = |c: Change<String>, f: &mut Option<String>| match c {
            Change::Keep => {}
            Change::Clear => *f = None,
            Change::Set(v) => *f = Some(v),
        };
        set(edit.url, &mut e.url);
        set(edit.note, &mut e.note);
        e.tags.retain(|t| !edit.rm_tags.contains(t));
        e.tags.extend(edit.add_tags);
        e
    }

    proptest::proptest! {
        /// Whatever the user and, meanwhile, someone else change, the form reopened on the new
        /// values and saved as it is gives: the user's value for each field the user changed,
        /// the new value for every other, and for a list the new one with the user's additions
        /// and removals.
        #[test]
        fn a_reopened_form_keeps_both_sides_changes(
            start in (field(), field(), tags()),
            mine in (field(), field(), tags()),
            theirs in (field(), field(), tags()),
        ) {
            let mut old = changed(&entry(), &start);
            old.note = old.note.filter(|n| !n.is_empty());
            let user = changed(&old, &mine);
            let mut fresh = changed(&old, &theirs);
            fresh.revision += 1;
            let saved = text_form(&user, None);
            let text = carried_over(&old, &fresh, &saved, false).unwrap();
            let edit = parse_form(&fresh, &text, false, 0).unwrap().and_then(|c| c.edit);
            let got = applied(fresh.clone(), edit);
            let pick = |u: &Option<String>, o: &Option<String>, f: &Option<String>| {
                if u != o { u.clone() } else { f.clone() }
            };
            proptest::prop_assert_eq!(&got.url, &pick(&user.url, &old.url, &fresh.url));
            proptest::prop_assert_eq!(&got.note, &pick(&user.note, &old.note, &fresh.note));
            let mut want: Vec<String> = fresh.tags.iter()
                .filter(|t| user.tags.contains(t) || !old.tags.contains(t))
                .cloned()
                .collect();
            want.extend(user.tags.iter().filter(|t| !old.tags.contains(t)).cloned());
            let sorted = |mut v: Vec<String>| { v.sort(); v.dedup(); v };
            proptest::prop_assert_eq!(sorted(got.tags), sorted(want));
        }
    }
}
