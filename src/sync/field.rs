//! The scalar fields of an entry, each merged as its own register: two devices that change
//! different fields of one entry both keep their change, and the same field changed on both is
//! a conflict that keeps the other value beside the current one (a [`Sibling`]) until someone
//! chooses (`jeton sync resolve`).
//!
//! A field's register is the [`Write`] that last set it: the `counter`-th change by its device
//! to the entry (a dot in the entry's clock), and its stamp. A replica whose entry clock counts
//! that change has seen the write; of two different writes, one that the other side has seen
//! loses to the other side's, and two that neither has seen are concurrent: the larger stamp is
//! current, the other a sibling.

use super::{Clock, DeviceId, Stamp};
use crate::entry::{Entry, Provenance, Status};
use crate::time::Time;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// How many scalar fields an entry has.
pub const COUNT: usize = 11;

/// A scalar field of an entry (the lists are add-wins sets, see [`super::Items`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Field {
    /// `name` (without a collision suffix).
    Name,
    /// `url`.
    Url,
    /// `username`.
    Username,
    /// `issuer`.
    Issuer,
    /// `contact`.
    Contact,
    /// `note`.
    Note,
    /// `expires_at`.
    Expiry,
    /// `rotate_every`.
    Rotation,
    /// Disabled or not (a revocation is stronger than any write, see the merge).
    Disabled,
    /// The secret with when it was set and last rotated: never a sibling, the value that is not
    /// current goes to the history.
    Secret,
    /// `received_from`.
    Origin,
}

impl Field {
    /// Every field, in register order.
    pub const ALL: [Field; COUNT] = [
        Field::Name,
        Field::Url,
        Field::Username,
        Field::Issuer,
        Field::Contact,
        Field::Note,
        Field::Expiry,
        Field::Rotation,
        Field::Disabled,
        Field::Secret,
        Field::Origin,
    ];

    /// Its name, as `get --field` and `edit` call it.
    pub fn label(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Url => "url",
            Field::Username => "username",
            Field::Issuer => "issuer",
            Field::Contact => "contact",
            Field::Note => "note",
            Field::Expiry => "expires_at",
            Field::Rotation => "rotate_every",
            Field::Disabled => "disabled",
            Field::Secret => "secret",
            Field::Origin => "received_from",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One write of a field: the `counter`-th change by `stamp.device` to the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Write {
    /// When, and by which device.
    pub stamp: Stamp,
    /// That device's count in the entry's clock for this change.
    pub counter: u64,
}

impl Write {
    /// True when a replica whose entry clock is `clock` has seen this write.
    pub fn seen_by(&self, clock: &Clock) -> bool {
        clock.get(&self.stamp.device) >= self.counter
    }

    /// The device that made it.
    pub fn device(&self) -> DeviceId {
        self.stamp.device
    }
}

/// A short digest of a field's value (inside the encrypted vault): a different one on the
/// next sync is a local change of that field. `None` for an empty value.
pub type FieldDigest = Option<[u8; 8]>;

/// The registers of one entry's scalar fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fields {
    /// The write that set every field not in `writes` (the entry's creation).
    pub base: Write,
    /// Later writes, one per field at most, in field order.
    #[serde(deserialize_with = "super::sorted::pairs")]
    pub writes: Vec<(Field, Write)>,
    /// The digest of each field's value when last absorbed or merged.
    pub digests: Digests,
}

/// The digests of an entry's fields, written as one byte string: a 16-bit mask (bit `i` for
/// field `i`, little-endian) of the fields with a value, then the 8-byte digest of each of
/// them in field order.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Digests([FieldDigest; COUNT]);

/// Which fields have a value, not the digests (the secret's is derived from the secret).
impl std::fmt::Debug for Digests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set: Vec<&str> = (Field::ALL.iter())
            .filter(|g| self.0[g.index()].is_some())
            .map(|g| g.label())
            .collect();
        write!(f, "Digests({set:?})")
    }
}

impl Serialize for Digests {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut mask = 0u16;
        let mut out = Vec::with_capacity(2 + 8 * COUNT);
        out.extend_from_slice(&[0, 0]);
        for (i, d) in self.0.iter().enumerate() {
            if let Some(d) = d {
                mask |= 1 << i;
                out.extend_from_slice(d);
            }
        }
        out[..2].copy_from_slice(&mask.to_le_bytes());
        s.serialize_bytes(&out)
    }
}

impl<'de> Deserialize<'de> for Digests {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Digests, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Digests;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("field digests")
            }
            fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> std::result::Result<Digests, E> {
                let bad = || E::custom("bad field digests");
                let (mask, mut rest) = b.split_first_chunk::<2>().ok_or_else(bad)?;
                let mask = u16::from_le_bytes(*mask);
                if mask >> COUNT != 0 {
                    return Err(bad());
                }
                let mut out = [None; COUNT];
                for (i, slot) in out.iter_mut().enumerate() {
                    if mask & (1 << i) != 0 {
                        let (d, tail) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
                        *slot = Some(*d);
                        rest = tail;
                    }
                }
                if !rest.is_empty() {
                    return Err(bad());
                }
                Ok(Digests(out))
            }
        }
        d.deserialize_bytes(V)
    }
}

impl Fields {
    /// Every field of `e` set by `write`.
    pub fn new(e: &Entry, write: Write) -> Result<Fields> {
        let mut f = Fields {
            base: write,
            writes: Vec::new(),
            digests: Digests::default(),
        };
        f.redigest(e)?;
        Ok(f)
    }

    /// Registers set by `write` whose digests match no value: the next absorb counts every
    /// field as changed (no value's digest is all zero bytes but with probability 2^-64).
    pub fn unknown(write: Write) -> Fields {
        Fields {
            base: write,
            writes: Vec::new(),
            digests: Digests([Some([0; 8]); COUNT]),
        }
    }

    /// The write that last set `f`.
    pub fn write(&self, f: Field) -> Write {
        (self.writes.iter())
            .find(|(g, _)| *g == f)
            .map_or(self.base, |(_, w)| *w)
    }

    fn set_write(&mut self, f: Field, w: Write) {
        match self.writes.binary_search_by_key(&f, |(g, _)| *g) {
            Ok(i) => self.writes[i].1 = w,
            Err(i) => self.writes.insert(i, (f, w)),
        }
    }

    /// The digest of `f` when last seen.
    pub fn digest(&self, f: Field) -> FieldDigest {
        self.digests.0[f.index()]
    }

    /// Records `write` as the last write of the fields of `e` whose digest changed; returns them.
    pub fn absorb(&mut self, e: &Entry, write: Write) -> Result<Vec<Field>> {
        let mut changed = Vec::new();
        for f in Field::ALL {
            let d = digest(&value(e, f)?);
            if d != self.digests.0[f.index()] {
                self.digests.0[f.index()] = d;
                self.set_write(f, write);
                changed.push(f);
            }
        }
        Ok(changed)
    }

    /// Takes the digests of `e`'s values as they are now (after a merge changed them).
    pub fn redigest(&mut self, e: &Entry) -> Result<()> {
        for f in Field::ALL {
            self.digests.0[f.index()] = digest(&value(e, f)?);
        }
        Ok(())
    }

    /// Registers from one write per field and the digests of the values they hold: the
    /// smallest write is the base. Depends only on what is given, not on where it came from.
    fn from_writes(writes: [Write; COUNT], digests: [FieldDigest; COUNT]) -> Fields {
        let base = writes.iter().min().copied().unwrap_or(writes[0]);
        Fields {
            base,
            writes: (Field::ALL.into_iter().zip(writes))
                .filter(|(_, w)| *w != base)
                .collect(),
            digests: Digests(digests),
        }
    }
}

/// A value of a field written on another device at the same time as the current one: kept
/// until someone chooses between them. Never a secret.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Sibling {
    /// Which field.
    pub field: Field,
    /// The write that set it.
    pub write: Write,
    /// The value, as [`value`] encodes it.
    pub value: Vec<u8>,
}

impl Sibling {
    /// The value for people to read.
    pub fn display(&self) -> String {
        display(self.field, &self.value)
    }
}

/// The postcard encoding of field `f` of `e`, in a buffer wiped on drop (the secret's holds it).
pub fn value(e: &Entry, f: Field) -> Result<Zeroizing<Vec<u8>>> {
    let encoded = match f {
        Field::Name => encode(&super::join::base_name(&e.name, &e.id)),
        Field::Url => encode(&e.url),
        Field::Username => encode(&e.username),
        Field::Issuer => encode(&e.issuer),
        Field::Contact => encode(&e.contact),
        Field::Note => encode(&e.note),
        Field::Expiry => encode(&e.expires_at),
        Field::Rotation => encode(&e.rotate_every),
        Field::Disabled => encode(&disabled_since(e)),
        Field::Secret => encode(&(
            e.secret.as_ref().map(|s| s.expose_secret()),
            e.secret_set_at,
            e.last_rotated_at,
        )),
        Field::Origin => encode(&e.received_from),
    };
    encoded.map(Zeroizing::new)
}

/// When `e` was disabled, if it is (a revoked entry is not).
fn disabled_since(e: &Entry) -> Option<Time> {
    match e.status {
        Status::Disabled { since } => Some(since),
        _ => None,
    }
}

fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(v).map_err(|e| Error::Other(format!("could not encode for sync: {e}")))
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|_| Error::corrupt_vault())
}

/// The digest of a field's encoded value.
pub fn digest(value: &[u8]) -> FieldDigest {
    // Every empty value (`None`, a revoked entry's status) encodes as one zero byte.
    if value == [0] {
        return None;
    }
    let d = Sha256::digest(value);
    let mut out = [0; 8];
    out.copy_from_slice(&d[..8]);
    Some(out)
}

/// Copies field `f` from `from` to `to`.
pub fn copy(f: Field, from: &Entry, to: &mut Entry) {
    match f {
        Field::Name => to.name = super::join::base_name(&from.name, &from.id).to_owned(),
        Field::Url => to.url.clone_from(&from.url),
        Field::Username => to.username.clone_from(&from.username),
        Field::Issuer => to.issuer.clone_from(&from.issuer),
        Field::Contact => to.contact.clone_from(&from.contact),
        Field::Note => to.note.clone_from(&from.note),
        Field::Expiry => to.expires_at = from.expires_at,
        Field::Rotation => to.rotate_every = from.rotate_every,
        Field::Disabled => set_disabled(to, disabled_since(from)),
        Field::Secret => {
            to.secret.clone_from(&from.secret);
            to.secret_set_at = from.secret_set_at;
            to.last_rotated_at = from.last_rotated_at;
        }
        Field::Origin => to.received_from.clone_from(&from.received_from),
    }
}

fn set_disabled(e: &mut Entry, since: Option<Time>) {
    if matches!(e.status, Status::Revoked { .. }) {
        return;
    }
    e.status = match since {
        Some(since) => Status::Disabled { since },
        None => Status::Active,
    };
}

/// Sets field `f` of `e` to a sibling's value (never the secret).
pub fn set(e: &mut Entry, f: Field, value: &[u8]) -> Result<()> {
    match f {
        Field::Name => {
            let name: String = decode(value)?;
            crate::entry::validate_name(&name)?;
            e.name = name;
        }
        Field::Url => e.url = decode(value)?,
        Field::Username => e.username = decode(value)?,
        Field::Issuer => e.issuer = decode(value)?,
        Field::Contact => e.contact = decode(value)?,
        Field::Note => e.note = decode(value)?,
        Field::Expiry => e.expires_at = decode(value)?,
        Field::Rotation => e.rotate_every = decode(value)?,
        Field::Disabled => set_disabled(e, decode(value)?),
        Field::Origin => e.received_from = decode::<Option<Provenance>>(value)?,
        Field::Secret => {
            return Err(Error::Other(
                "internal error: a secret is never a sync conflict value".into(),
            ));
        }
    }
    Ok(())
}

/// A field value for people to read (terminal escapes made visible).
pub fn display(f: Field, value: &[u8]) -> String {
    let text = |v: Option<String>| v.unwrap_or_else(|| "(none)".to_owned());
    let time = |t: Option<Time>| t.map_or_else(|| "(none)".to_owned(), crate::time::rfc3339);
    let shown = match f {
        Field::Name => decode::<String>(value).ok(),
        Field::Url | Field::Username | Field::Issuer | Field::Contact | Field::Note => {
            decode::<Option<String>>(value).ok().map(text)
        }
        Field::Expiry => decode::<Option<Time>>(value).ok().map(time),
        Field::Rotation => decode::<Option<i64>>(value)
            .ok()
            .map(|r| r.map_or_else(|| "(none)".to_owned(), |s| format!("{s}s"))),
        Field::Disabled => decode::<Option<Time>>(value).ok().map(|t| {
            t.map_or_else(
                || "active".to_owned(),
                |t| format!("disabled since {}", crate::time::rfc3339(t)),
            )
        }),
        Field::Origin => decode::<Option<Provenance>>(value).ok().map(|p| {
            p.map_or_else(
                || "(none)".to_owned(),
                |p| format!("{} ({})", p.from, p.reference),
            )
        }),
        Field::Secret => None,
    };
    crate::entry::printable(&shown.unwrap_or_else(|| "(unreadable)".to_owned()))
}

/// What joining the registers of two concurrent versions decided.
pub(super) struct Decided {
    /// For each field: take it from `x` (else from `y`).
    pub from_x: [bool; COUNT],
    /// The registers of the result.
    pub fields: Fields,
    /// The siblings of the result, sorted.
    pub siblings: Vec<Sibling>,
    /// Fields written on both sides at once with different values (a sibling each, or for the
    /// secret, the other value in the history).
    pub conflicts: Vec<Field>,
}

/// One side of a field join: its entry, clock, registers and siblings.
pub(super) struct Side<'a> {
    pub entry: &'a Entry,
    pub clock: &'a Clock,
    pub fields: &'a Fields,
    pub siblings: &'a [Sibling],
}

/// Joins the registers of two versions field by field. A write the other side has seen loses
/// to that side's; of two writes neither side has seen, the larger (stamp, value) is current
/// and the other is a conflict. Siblings survive unless the other side had seen them and
/// dropped them (chosen or overwritten: it holds them neither as a sibling nor as the field's
/// current write), or the current value is theirs.
pub(super) fn join(x: &Side, y: &Side) -> Result<Decided> {
    let mut from_x = [true; COUNT];
    let mut writes = [x.fields.base; COUNT];
    let mut digests = [None; COUNT];
    let mut conflicts = Vec::new();
    let mut losers = Vec::new();
    for f in Field::ALL {
        let (wx, wy) = (x.fields.write(f), y.fields.write(f));
        let (vx, vy) = (value(x.entry, f)?, value(y.entry, f)?);
        let take_x = if wx == wy {
            // One write: one value (a copy that differs is not ours to trust; pick by bytes).
            vx[..] >= vy[..]
        } else {
            match (wx.seen_by(y.clock), wy.seen_by(x.clock)) {
                (true, false) => false,
                (false, true) => true,
                _ => {
                    let take_x = (wx.stamp, &vx[..], wx.counter) > (wy.stamp, &vy[..], wy.counter);
                    if vx != vy {
                        conflicts.push(f);
                        let (lw, lv) = if take_x { (wy, &vy) } else { (wx, &vx) };
                        if f != Field::Secret {
                            losers.push(Sibling {
                                field: f,
                                write: lw,
                                value: lv.to_vec(),
                            });
                        }
                    }
                    take_x
                }
            }
        };
        from_x[f.index()] = take_x;
        writes[f.index()] = if take_x { wx } else { wy };
        digests[f.index()] = digest(if take_x { &vx } else { &vy });
    }
    let fields = Fields::from_writes(writes, digests);
    // The other side dropped a sibling if it saw its write and holds it neither as a sibling
    // nor as the field's current write.
    let held = |side: &Side, s: &Sibling| {
        side.siblings.contains(s)
            || side.fields.write(s.field) == s.write
            || !s.write.seen_by(side.clock)
    };
    let kept_x = (x.siblings.iter()).filter(|s| held(y, s));
    let kept_y = (y.siblings.iter()).filter(|s| held(x, s));
    let mut siblings: Vec<Sibling> = kept_x.chain(kept_y).cloned().chain(losers).collect();
    siblings.retain(|s| {
        s.field != Field::Secret
            && s.write != fields.write(s.field)
            && digest(&s.value) != fields.digest(s.field)
    });
    siblings.sort();
    siblings.dedup_by(|a, b| a.field == b.field && a.write == b.write);
    Ok(Decided {
        from_x,
        fields,
        siblings,
        conflicts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_round_trip_and_their_debug_shows_no_digest() {
        let mut d = Digests::default();
        d.0[Field::Secret.index()] = Some([0xab; 8]);
        d.0[Field::Note.index()] = Some([1; 8]);
        let bytes = postcard::to_stdvec(&d).unwrap();
        // A length, the mask, then two digests in field order.
        assert_eq!(bytes.len(), 1 + 2 + 16);
        assert_eq!(postcard::from_bytes::<Digests>(&bytes).unwrap(), d);
        let shown = format!("{d:?}");
        assert!(
            shown.contains("secret") && shown.contains("note"),
            "{shown}"
        );
        assert!(!shown.contains("171") && !shown.contains("ab"), "{shown}");
        // A mask naming a field past the last, or bytes left over, are refused.
        assert!(postcard::from_bytes::<Digests>(&[2, 0, 0x80]).is_err());
        assert!(postcard::from_bytes::<Digests>(&[3, 0, 0, 9]).is_err());
    }
}
