//! Who wrote each line of a team vault's log. Every audit event a member's command writes to a
//! team vault is followed by an `author` event that carries the member's Ed25519 signature
//! over it (docs/FORMAT.md, "Team vaults"). Both travel in the audit log like any event, so a
//! member who relays another's changes relays their signatures too, and nobody can sign in
//! another member's name. Events without a valid signature (those the merge itself writes, or
//! those of an older version) have no author.

use crate::share::{hex, unhex};
use crate::vault::{AuditEvent, Vault};
use crate::{Error, Result};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The action of the event that signs the event before it.
pub const AUTHOR: &str = "author";
/// Signature label of a team audit event.
pub const LABEL_TEAM_EVENT: &[u8] = b"jeton/v1/team-event";

/// A member's signing key for one team's events.
pub struct Signer {
    /// The team id.
    pub team: [u8; 16],
    /// The member's identity signing key.
    pub key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("team", &hex(&self.team))
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// The `author` events for `events` (`author` events among them are skipped), in order.
    pub fn sign(&self, events: &[AuditEvent]) -> Result<Vec<AuditEvent>> {
        let public = hex(&self.key.verifying_key().to_bytes());
        events
            .iter()
            .filter(|e| e.action != AUTHOR)
            .map(|e| {
                let m = message(&self.team, e)?;
                let sig = self.key.sign(&m);
                Ok(AuditEvent {
                    at: e.at,
                    action: AUTHOR.into(),
                    subject: e.subject.clone(),
                    detail: format!("{public} {} {}", hex(&event_id(&m)), hex(&sig.to_bytes())),
                })
            })
            .collect()
    }
}

/// Signs the events appended to `vault` since `mark` ([`Vault::audit_written`]) but those
/// `skip` names by action: each gets its `author` event.
pub fn sign_written(vault: &mut Vault, mark: u64, signer: &Signer, skip: &[&str]) -> Result<()> {
    let written: Vec<AuditEvent> = (vault.audit_since(mark).iter())
        .filter(|e| !skip.contains(&e.action.as_str()))
        .cloned()
        .collect();
    for e in signer.sign(&written)? {
        vault.audit_event(e);
    }
    Ok(())
}

/// What a signature covers: the label, the team id, and the event's postcard encoding.
fn message(team: &[u8; 16], e: &AuditEvent) -> Result<Vec<u8>> {
    let body = postcard::to_stdvec(e)
        .map_err(|e| Error::Other(format!("could not encode an audit event: {e}")))?;
    let mut m = Vec::with_capacity(LABEL_TEAM_EVENT.len() + 16 + body.len());
    m.extend_from_slice(LABEL_TEAM_EVENT);
    m.extend_from_slice(team);
    m.extend_from_slice(&body);
    Ok(m)
}

/// Which event an `author` event signs: the first 16 bytes of SHA-256 of the signed message,
/// so that verifying a log costs one signature check per `author` event, whatever it holds.
fn event_id(message: &[u8]) -> [u8; 16] {
    let digest = Sha256::digest(message);
    let mut id = [0; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

/// The signing key, event id and signature an `author` event carries, if it is well formed.
fn parse(e: &AuditEvent) -> Option<(VerifyingKey, [u8; 32], [u8; 16], Signature)> {
    let mut parts = e.detail.split(' ');
    let key = unhex::<32>(parts.next()?)?;
    let id = unhex::<16>(parts.next()?)?;
    let sig = Signature::from_bytes(&unhex::<64>(parts.next()?)?);
    if parts.next().is_some() {
        return None;
    }
    Some((VerifyingKey::from_bytes(&key).ok()?, key, id, sig))
}

/// Every event of `events` but the `author` ones, each with the keys whose signature over it
/// holds (sorted, each once; empty when none does).
pub fn attribute(team: &[u8; 16], events: &[AuditEvent]) -> Vec<(AuditEvent, Vec<[u8; 32]>)> {
    // Each event with its signed message, and the events by id.
    let mut out: Vec<(AuditEvent, Vec<[u8; 32]>)> = Vec::new();
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut by_id: HashMap<[u8; 16], Vec<usize>> = HashMap::new();
    for e in events.iter().filter(|e| e.action != AUTHOR) {
        let m = message(team, e).ok();
        if let Some(m) = &m {
            by_id.entry(event_id(m)).or_default().push(out.len());
        }
        out.push((e.clone(), Vec::new()));
        messages.push(m.unwrap_or_default());
    }
    for a in events.iter().filter(|e| e.action == AUTHOR) {
        let Some((public, key, id, sig)) = parse(a) else {
            continue;
        };
        // Equal events (one line written twice) share a message: one check serves them all.
        let mut checked: Vec<(&[u8], bool)> = Vec::new();
        for &i in by_id.get(&id).map(Vec::as_slice).unwrap_or_default() {
            if out[i].1.contains(&key) {
                continue;
            }
            let m = messages[i].as_slice();
            let holds = match checked.iter().find(|(c, _)| *c == m) {
                Some(&(_, holds)) => holds,
                None => {
                    let holds = public.verify_strict(m, &sig).is_ok();
                    checked.push((m, holds));
                    holds
                }
            };
            if holds {
                let keys = &mut out[i].1;
                keys.push(key);
                keys.sort_unstable();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: i64, action: &str, subject: &str) -> AuditEvent {
        AuditEvent {
            at,
            action: action.into(),
            subject: Some(subject.into()),
            detail: String::new(),
        }
    }

    fn signer(seed: u8) -> Signer {
        Signer {
            team: [7; 16],
            key: SigningKey::from_bytes(&[seed; 32]),
        }
    }

    #[test]
    fn each_event_gets_the_signers_that_signed_it_and_nothing_else() {
        let (ann, bob) = (signer(1), signer(2));
        let ann_key = ann.key.verifying_key().to_bytes();
        let bob_key = bob.key.verifying_key().to_bytes();
        let rotate = event(10, "rotate", "db");
        let add = event(10, "add", "web");
        let mut log = vec![rotate.clone(), add.clone()];
        log.extend(ann.sign(std::slice::from_ref(&rotate)).unwrap());
        log.extend(bob.sign(std::slice::from_ref(&add)).unwrap());
        let got = attribute(&[7; 16], &log);
        assert_eq!(got.len(), 2, "author events are not lines of their own");
        assert_eq!(got[0], (rotate.clone(), vec![ann_key]));
        assert_eq!(got[1], (add.clone(), vec![bob_key]));

        // Another team's signature, a changed event, a changed signature: no author.
        let other_team = Signer {
            team: [8; 16],
            key: SigningKey::from_bytes(&[1; 32]),
        };
        let mut forged = other_team.sign(std::slice::from_ref(&rotate)).unwrap();
        let mut edited = rotate.clone();
        edited.detail = "to a value of mine".into();
        forged.extend(ann.sign(std::slice::from_ref(&edited)).unwrap());
        let mut flipped = ann.sign(std::slice::from_ref(&add)).unwrap();
        let last = flipped[0].detail.pop().unwrap();
        flipped[0].detail.push(if last == '0' { '1' } else { '0' });
        forged.extend(flipped);
        let mut log = vec![rotate.clone(), add.clone()];
        log.extend(forged);
        log.push(AuditEvent {
            detail: "not a signature at all".into(),
            ..event(10, AUTHOR, "db")
        });
        let got = attribute(&[7; 16], &log);
        assert!(got.iter().all(|(_, keys)| keys.is_empty()), "{got:?}");
    }

    #[test]
    fn two_signers_of_one_event_are_both_named_once() {
        let (ann, bob) = (signer(1), signer(2));
        let e = event(5, "edit", "db");
        // The same line twice (written here and merged in) is signed as one.
        let mut log = vec![e.clone(), e.clone()];
        log.extend(bob.sign(std::slice::from_ref(&e)).unwrap());
        log.extend(ann.sign(std::slice::from_ref(&e)).unwrap());
        log.extend(ann.sign(std::slice::from_ref(&e)).unwrap());
        let got = attribute(&[7; 16], &log);
        let mut want = vec![
            ann.key.verifying_key().to_bytes(),
            bob.key.verifying_key().to_bytes(),
        ];
        want.sort_unstable();
        assert_eq!(got, vec![(e.clone(), want.clone()), (e, want)]);
    }
}
