//! The entry map of an open vault, decoded on demand.
//!
//! Opening a vault walks every entry once, to check it decodes and to note where its bytes lie
//! in the decrypted payload, but builds nothing. An entry looked up by name is decoded then and
//! kept; a scan ([`Entries::scan`]) decodes each entry into a temporary. Saving copies the bytes
//! of every entry not kept decoded as they were read, and encodes the others. A `get` on a vault
//! of 100,000 entries thus builds one entry, not 100,000, and holds the payload once, not twice
//! (docs/PERFORMANCE.md, "Why is it fast?").
//!
//! The bytes are postcard's encoding of a `BTreeMap<String, Entry>`, unchanged: the length,
//! then each name and entry in ascending name order (docs/FORMAT.md). `Entries::decode` and
//! `Entries::encode_into` compose postcard's own encodings of the parts; the test suite checks
//! them byte for byte against postcard's encoding of the whole map.

use crate::entry::Entry;
use crate::{Error, Result};
use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
use serde::ser::{Error as _, SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::{Arc, OnceLock};
use zeroize::Zeroizing;

/// Entries by name, in ascending name order.
#[derive(Clone, Default)]
pub struct Entries {
    /// The decrypted payload that read entries lie in; wiped when the last clone is dropped.
    plain: Arc<Zeroizing<Vec<u8>>>,
    /// Sorted by name, names unique.
    slots: Vec<Slot>,
}

#[derive(Clone)]
enum Slot {
    /// An entry read from `plain`, decoded once it is asked for.
    Read {
        at: Span,
        entry: OnceLock<Box<Entry>>,
    },
    /// An entry inserted since the vault was opened.
    New(Box<Entry>),
}

/// What a slot holds now: its entry decoded (inserted, or read and kept), or only the place of
/// its bytes in `plain`.
enum Held<'a> {
    Decoded(&'a Entry),
    Bytes(Span),
}

impl Slot {
    fn held(&self) -> Held<'_> {
        match self {
            Slot::New(e) => Held::Decoded(e),
            Slot::Read { at, entry } => entry.get().map_or(Held::Bytes(*at), |e| Held::Decoded(e)),
        }
    }

    fn decoded_mut(&mut self) -> Option<&mut Entry> {
        match self {
            Slot::New(e) => Some(e),
            Slot::Read { entry, .. } => entry.get_mut().map(|e| &mut **e),
        }
    }
}

/// Where one name and entry pair lies in `plain`: `start..name_end` is the name with its
/// length prefix, `name_start..name_end` its text, `name_end..end` the entry.
#[derive(Clone, Copy)]
struct Span {
    start: u32,
    name_start: u32,
    name_end: u32,
    end: u32,
}

impl Span {
    fn pair(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
    fn name(self) -> std::ops::Range<usize> {
        self.name_start as usize..self.name_end as usize
    }
    fn entry(self) -> std::ops::Range<usize> {
        self.name_end as usize..self.end as usize
    }
}

/// An `Extend` that appends to a borrowed buffer, so a failed encoding leaves the bytes written
/// so far in the caller's (wiped) buffer rather than in a dropped one.
struct Sink<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Sink<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

/// Appends postcard's encoding of `value` to `out`.
pub(crate) fn encode_to<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    postcard::to_extend(value, Sink(out))
        .map(|_| ())
        .map_err(|e| Error::Other(format!("could not encode the vault: {e}")))
}

/// The length of postcard's encoding of `value`.
pub(crate) fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize> {
    postcard::serialize_with_flavor::<_, _, usize>(value, postcard::ser_flavors::Size::default())
        .map_err(|e| Error::Other(format!("could not encode the vault: {e}")))
}

/// The shape of an [`Entry`] on the wire, borrowed: decoding it walks the same bytes, checks the
/// same lengths, tags and text, and builds nothing. Field for field the entry's own; the test
/// suite checks that both read exactly the same bytes, and `lists_every_field` below stops the
/// build when a field is added to [`Entry`] and not here.
mod shape {
    use serde::Deserialize;
    use serde::de::{Deserializer, SeqAccess, Visitor};
    use std::fmt;
    use std::marker::PhantomData;

    #[derive(Deserialize)]
    pub struct EntryShape<'a> {
        _id: [u8; 16],
        _revision: u64,
        pub name: &'a str,
        _secret: Option<&'a str>,
        _secret_set_at: i64,
        _scopes: Seq<&'a str>,
        _url: Option<&'a str>,
        _username: Option<&'a str>,
        _issuer: Option<&'a str>,
        _contact: Option<&'a str>,
        _used_by: Seq<&'a str>,
        _tags: Seq<&'a str>,
        _note: Option<&'a str>,
        _created_at: i64,
        _updated_at: i64,
        _expires_at: Option<i64>,
        _rotate_every: Option<i64>,
        _last_rotated_at: Option<i64>,
        _status: StatusShape<'a>,
        _history: Seq<(&'a str, i64, i64)>,
        _shared_with: Seq<(&'a str, &'a str, i64)>,
        _received_from: Option<(&'a str, &'a str, i64)>,
    }

    /// [`crate::entry::Status`], variant for variant.
    #[derive(Deserialize)]
    enum StatusShape<'a> {
        Active,
        Disabled {
            _since: i64,
        },
        Revoked {
            _at: i64,
            #[serde(borrow)]
            _reason: Option<&'a str>,
        },
    }

    /// A sequence whose elements are read and dropped one by one, never collected.
    pub struct Seq<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Seq<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Each<T>(PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for Each<T> {
                type Value = Seq<T>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a sequence")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Seq<T>, A::Error> {
                    while seq.next_element::<T>()?.is_some() {}
                    Ok(Seq(PhantomData))
                }
            }
            d.deserialize_seq(Each(PhantomData))
        }
    }

    /// Names every field of [`crate::entry::Entry`] without `..`: adding a field there fails to
    /// compile here, next to [`EntryShape`], which must gain it too.
    #[allow(dead_code)]
    fn lists_every_field(e: &crate::entry::Entry) {
        let crate::entry::Entry {
            id: _,
            revision: _,
            name: _,
            secret: _,
            secret_set_at: _,
            scopes: _,
            url: _,
            username: _,
            issuer: _,
            contact: _,
            used_by: _,
            tags: _,
            note: _,
            created_at: _,
            updated_at: _,
            expires_at: _,
            rotate_every: _,
            last_rotated_at: _,
            status: _,
            history: _,
            shared_with: _,
            received_from: _,
        } = e;
        if let Some(crate::entry::HistoryItem {
            secret: _,
            created_at: _,
            retired_at: _,
        }) = e.history.first()
        {}
        if let Some(crate::entry::ShareRecord {
            contact: _,
            bundle_id: _,
            at: _,
        }) = e.shared_with.first()
        {}
        if let Some(crate::entry::Provenance {
            from: _,
            reference: _,
            at: _,
        }) = &e.received_from
        {}
        match &e.status {
            crate::entry::Status::Active => {}
            crate::entry::Status::Disabled { since: _ } => {}
            crate::entry::Status::Revoked { at: _, reason: _ } => {}
        }
    }
}

/// Decodes one entry from exactly `bytes`.
fn decode_entry(bytes: &[u8]) -> Result<Entry> {
    match postcard::take_from_bytes::<Entry>(bytes) {
        Ok((entry, [])) => Ok(entry),
        _ => Err(Error::corrupt_vault()),
    }
}

impl Entries {
    /// Reads the entry map at the start of `plain[at..]`, checking that every entry decodes
    /// (walking its borrowed shape, which builds nothing), that names are strictly ascending
    /// (so a repeated or misplaced name, which no writer produces, is refused rather than
    /// merged) and that each entry carries its own name. Returns the map and the offset just
    /// past it; `plain` is kept, not copied.
    pub(crate) fn decode(plain: Zeroizing<Vec<u8>>, at: usize) -> Result<(Entries, usize)> {
        fn corrupt<E>(_: E) -> Error {
            Error::corrupt_vault()
        }
        let total = plain.len();
        let offset = |rest: &[u8]| u32::try_from(total - rest.len()).map_err(corrupt);
        let mut rest = plain.get(at..).ok_or_else(Error::corrupt_vault)?;
        let (count, after) = postcard::take_from_bytes::<usize>(rest).map_err(corrupt)?;
        rest = after;
        // A claimed count is only believed as far as the input could hold that many pairs, and
        // the reservation is capped: beyond that the vector grows as pairs are actually read.
        let mut slots = Vec::with_capacity(count.min(rest.len() / MIN_PAIR_LEN).min(MAX_RESERVE));
        let mut last: Option<&str> = None;
        for _ in 0..count {
            let start = offset(rest)?;
            let (name, after_name) = postcard::take_from_bytes::<&str>(rest).map_err(corrupt)?;
            let name_end = offset(after_name)?;
            let (entry, after_entry) =
                postcard::take_from_bytes::<shape::EntryShape>(after_name).map_err(corrupt)?;
            if entry.name != name || last.is_some_and(|l| l >= name) {
                return Err(Error::corrupt_vault());
            }
            rest = after_entry;
            let name_start = name_end - u32::try_from(name.len()).map_err(corrupt)?;
            slots.push(Slot::Read {
                at: Span {
                    start,
                    name_start,
                    name_end,
                    end: offset(rest)?,
                },
                entry: OnceLock::new(),
            });
            last = Some(name);
        }
        let end = total - rest.len();
        Ok((
            Entries {
                plain: Arc::new(plain),
                slots,
            },
            end,
        ))
    }

    /// The payload the entries were read from.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.plain
    }

    /// The length of [`Entries::encode_into`]'s output.
    pub(crate) fn encoded_len(&self) -> Result<usize> {
        let mut len = encoded_len(&self.slots.len())?;
        for slot in &self.slots {
            len += match slot.held() {
                Held::Decoded(e) => encoded_len(&(&e.name, e))?,
                Held::Bytes(at) => at.pair().len(),
            };
        }
        Ok(len)
    }

    /// Appends postcard's encoding of the map to `out`: the bytes of entries never decoded are
    /// copied as they were read.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        encode_to(&self.slots.len(), out)?;
        let mut last: Option<&[u8]> = None;
        for slot in &self.slots {
            let name = self.name(slot);
            if last.is_some_and(|l| l >= name) {
                return Err(Error::Other(
                    "internal error: entry names out of order".into(),
                ));
            }
            last = Some(name);
            match slot.held() {
                Held::Decoded(e) if e.name.as_bytes() != name => {
                    return Err(Error::Other(
                        "internal error: an entry was renamed in place".into(),
                    ));
                }
                Held::Decoded(e) => encode_to(&(&e.name, e), out)?,
                Held::Bytes(at) => out.extend_from_slice(self.read(at.pair())?),
            }
        }
        Ok(())
    }

    /// The bytes at `range` of the payload.
    fn read(&self, range: std::ops::Range<usize>) -> Result<&[u8]> {
        self.plain.get(range).ok_or_else(Error::corrupt_vault)
    }

    /// The name a slot is sorted by.
    fn name<'a>(&'a self, slot: &'a Slot) -> &'a [u8] {
        match slot {
            // A span always lies in `plain` (it was measured there); the fallback is never taken.
            Slot::Read { at, .. } => self.plain.get(at.name()).unwrap_or_default(),
            Slot::New(e) => e.name.as_bytes(),
        }
    }

    /// The slot of `name`, or where it would go.
    fn find(&self, name: &str) -> std::result::Result<usize, usize> {
        self.slots
            .binary_search_by(|s| self.name(s).cmp(name.as_bytes()))
    }

    /// The entry in `slot`, decoding and keeping it on first use.
    fn load<'a>(&'a self, slot: &'a Slot) -> Result<&'a Entry> {
        match slot {
            Slot::New(e) => Ok(e),
            Slot::Read { at, entry } => match entry.get() {
                Some(e) => Ok(e),
                None => {
                    let e = decode_entry(self.read(at.entry())?)?;
                    Ok(entry.get_or_init(|| Box::new(e)))
                }
            },
        }
    }

    /// Decodes every entry not yet decoded.
    fn load_all(&self) -> Result<()> {
        for slot in &self.slots {
            self.load(slot)?;
        }
        Ok(())
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when there is no entry.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// True when an entry is called `name` (decodes nothing).
    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// The entry called `name`, if any.
    pub fn get(&self, name: &str) -> Result<Option<&Entry>> {
        match self.find(name) {
            Ok(i) => self.load(&self.slots[i]).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// The entry called `name`, if any, for changing. Changing its name breaks the order:
    /// rename with [`Entries::remove`] and [`Entries::insert`].
    pub fn get_mut(&mut self, name: &str) -> Result<Option<&mut Entry>> {
        let Ok(i) = self.find(name) else {
            return Ok(None);
        };
        self.load(&self.slots[i])?;
        Ok(self.slots[i].decoded_mut())
    }

    /// Inserts `entry` under its name, replacing an entry of that name.
    pub fn insert(&mut self, entry: Box<Entry>) {
        match self.find(&entry.name) {
            Ok(i) => self.slots[i] = Slot::New(entry),
            Err(i) => self.slots.insert(i, Slot::New(entry)),
        }
    }

    /// Removes and returns the entry called `name`, if any.
    pub fn remove(&mut self, name: &str) -> Result<Option<Box<Entry>>> {
        let Ok(i) = self.find(name) else {
            return Ok(None);
        };
        self.load(&self.slots[i])?;
        Ok(match self.slots.remove(i) {
            Slot::New(e) => Some(e),
            Slot::Read { mut entry, .. } => entry.take(),
        })
    }

    /// Every entry, in name order (decodes them all first).
    pub fn values(&self) -> Result<impl Iterator<Item = &Entry>> {
        self.load_all()?;
        Ok(self.slots.iter().filter_map(|slot| match slot.held() {
            Held::Decoded(e) => Some(e),
            Held::Bytes(_) => None,
        }))
    }

    /// Calls `f` on every entry, in name order. An entry not decoded yet is decoded into a
    /// temporary and dropped after the call, so a scan of a large vault holds one entry at a
    /// time rather than all of them.
    pub fn scan(&self, f: impl FnMut(&Entry) -> Result<()>) -> Result<()> {
        self.scan_prefix("", f)
    }

    /// [`Entries::scan`] of the entries whose names start with `prefix` (visits only those).
    pub fn scan_prefix(&self, prefix: &str, mut f: impl FnMut(&Entry) -> Result<()>) -> Result<()> {
        let p = prefix.as_bytes();
        let from = self.slots.partition_point(|s| self.name(s) < p);
        let len = self.slots[from..].partition_point(|s| self.name(s).starts_with(p));
        for slot in &self.slots[from..from + len] {
            match slot.held() {
                Held::Decoded(e) => f(e)?,
                Held::Bytes(at) => f(&decode_entry(self.read(at.entry())?)?)?,
            }
        }
        Ok(())
    }

    /// Calls `f` on every entry whose name `keep` accepts, in name order, decoding only those.
    pub fn scan_where(
        &self,
        keep: impl Fn(&str) -> bool,
        mut f: impl FnMut(&Entry) -> Result<()>,
    ) -> Result<()> {
        for slot in &self.slots {
            if !std::str::from_utf8(self.name(slot)).is_ok_and(&keep) {
                continue;
            }
            match slot.held() {
                Held::Decoded(e) => f(e)?,
                Held::Bytes(at) => f(&decode_entry(self.read(at.entry())?)?)?,
            }
        }
        Ok(())
    }

    /// Calls `f` on every name, in order, decoding no entry.
    pub fn scan_names(&self, mut f: impl FnMut(&str)) -> Result<()> {
        for slot in &self.slots {
            let name = std::str::from_utf8(self.name(slot))
                .map_err(|_| Error::Integrity("an entry name is not UTF-8".into()))?;
            f(name);
        }
        Ok(())
    }

    /// Every entry, in name order, for changing (decodes them all first). Names must not change.
    pub fn values_mut(&mut self) -> Result<impl Iterator<Item = &mut Entry>> {
        self.load_all()?;
        Ok(self.slots.iter_mut().filter_map(Slot::decoded_mut))
    }
}

/// What sync needs to know of an entry without decoding it: its name, id and revision.
#[derive(Clone, Copy, Debug)]
pub struct Head<'a> {
    /// The entry's name.
    pub name: &'a str,
    /// Its id.
    pub id: crate::entry::EntryId,
    /// Its revision.
    pub revision: u64,
}

impl Entries {
    /// Every entry's [`Head`], in name order. An entry not decoded is not decoded for it: its
    /// id and revision are the first two fields of its encoding.
    pub fn heads(&self) -> Result<Vec<Head<'_>>> {
        let mut out = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            out.push(match slot.held() {
                Held::Decoded(e) => Head {
                    name: &e.name,
                    id: e.id,
                    revision: e.revision,
                },
                Held::Bytes(at) => {
                    let (id, revision) = postcard::take_from_bytes::<(crate::entry::EntryId, u64)>(
                        self.read(at.entry())?,
                    )
                    .map_err(|_| Error::corrupt_vault())?
                    .0;
                    let name = std::str::from_utf8(self.read(at.name())?)
                        .map_err(|_| Error::corrupt_vault())?;
                    Head { name, id, revision }
                }
            });
        }
        Ok(out)
    }

    /// A copy holding only the entries whose place `keep` marks (one flag per entry, in the
    /// order of [`Entries::heads`]), and `add` inserted (replacing an entry of the same name).
    /// Entries read and not decoded stay bytes: saving the copy copies them.
    pub fn patched(&self, keep: &[bool], add: Vec<Box<Entry>>) -> Entries {
        let slots = (self.slots.iter().zip(keep))
            .filter(|(_, keep)| **keep)
            .map(|(slot, _)| slot.clone())
            .collect();
        let mut out = Entries {
            plain: self.plain.clone(),
            slots,
        };
        for e in add {
            out.insert(e);
        }
        out
    }
}

impl FromIterator<Entry> for Entries {
    /// Entries keyed by their names; a later entry replaces an earlier one of the same name.
    fn from_iter<I: IntoIterator<Item = Entry>>(iter: I) -> Self {
        let mut entries = Entries::default();
        for e in iter {
            entries.insert(Box::new(e));
        }
        entries
    }
}

/// Never prints an entry: only how many there are.
impl fmt::Debug for Entries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entries")
            .field("len", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// A map from name to entry, in ascending name order (the export's JSON; postcard in tests).
impl Serialize for Entries {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.slots.len()))?;
        for slot in &self.slots {
            let e = self.load(slot).map_err(S::Error::custom)?;
            map.serialize_entry(&e.name, e)?;
        }
        map.end()
    }
}

/// Largest number of entries reserved up front when decoding, whatever count the input claims
/// (a million index slots are 40 MB); above this the vector grows by doubling.
const MAX_RESERVE: usize = 1 << 20;

/// The fewest bytes a name and entry pair can take: the 16-byte id, one byte for each of the
/// entry's 21 other fields at their emptiest, and a one-byte name length (checked by a test).
const MIN_PAIR_LEN: usize = 38;

/// A map from name to entry, strictly ascending, each entry carrying its own name (the
/// export's JSON). The vault file itself goes through `Entries::decode`.
impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_map(SortedVisitor)
    }
}

struct SortedVisitor;

impl<'de> Visitor<'de> for SortedVisitor {
    type Value = Entries;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("entries in ascending name order")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Entries, A::Error> {
        let mut slots: Vec<Slot> =
            Vec::with_capacity(map.size_hint().unwrap_or(0).min(MAX_RESERVE));
        let mut last: Option<String> = None;
        while let Some((name, entry)) = map.next_entry::<String, Box<Entry>>()? {
            if entry.name != name {
                return Err(A::Error::custom("an entry is filed under another name"));
            }
            if last.as_ref().is_some_and(|l| *l >= name) {
                return Err(A::Error::custom("entries out of order"));
            }
            slots.push(Slot::New(entry));
            last = Some(name);
        }
        Ok(Entries {
            plain: Arc::default(),
            slots,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_pair_is_shorter_than_min_pair_len() {
        let e = Entry {
            id: [0; 16],
            revision: 0,
            name: String::new(),
            secret: None,
            secret_set_at: 0,
            scopes: vec![],
            url: None,
            username: None,
            issuer: None,
            contact: None,
            used_by: vec![],
            tags: vec![],
            note: None,
            created_at: 0,
            updated_at: 0,
            expires_at: None,
            rotate_every: None,
            last_rotated_at: None,
            status: crate::entry::Status::Active,
            history: vec![],
            shared_with: vec![],
            received_from: None,
        };
        let pair = postcard::to_stdvec(&(&e.name, &e)).unwrap();
        assert_eq!(pair.len(), MIN_PAIR_LEN);
    }

    #[test]
    fn an_index_slot_stays_small() {
        // docs/PERFORMANCE.md counts 40 bytes of index per entry.
        assert!(size_of::<Slot>() <= 40, "{}", size_of::<Slot>());
    }
}
