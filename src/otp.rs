//! One-time codes (TOTP, RFC 6238): an entry whose secret is an `otpauth://totp/...` URI or a
//! bare base32 seed gives the code of the moment. The seed stays the entry's secret, so it is
//! kept, shared, rotated and wiped like any other; migrated seeds (KeePassXC `otp`, Bitwarden
//! `totp`) work as they come.

use crate::{Error, Result};
use hmac::{Hmac, KeyInit, Mac};
use zeroize::Zeroizing;

/// The hash under the HMAC (the URI's `algorithm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// SHA-1, the default and by far the most common.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

/// A TOTP generator. No Debug: it holds the seed.
pub struct Totp {
    seed: Zeroizing<Vec<u8>>,
    /// Hash.
    pub algorithm: Algorithm,
    /// Digits in a code (6 to 10).
    pub digits: u32,
    /// Seconds a code lives.
    pub period: u64,
}

/// What a seed that is not a TOTP seed is told.
fn not_totp(why: &str) -> Error {
    Error::Usage(format!(
        "not a one-time code seed ({why}): give an otpauth://totp/... URI or a base32 seed"
    ))
}

/// Base32 (RFC 4648) as authenticator apps write it: any case, spaces and dashes between
/// groups, padding optional, trailing bits not checked.
fn decode_base32(text: &str) -> Result<Zeroizing<Vec<u8>>> {
    let clean: Zeroizing<String> = Zeroizing::new(
        text.chars()
            .filter(|c| !matches!(c, ' ' | '-' | '='))
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    let mut spec = data_encoding::Specification::new();
    spec.symbols.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
    spec.check_trailing_bits = false;
    let base32 = spec
        .encoding()
        .map_err(|e| Error::Other(format!("base32: {e}")))?;
    let seed = base32
        .decode(clean.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| not_totp("the seed is not base32"))?;
    // RFC 4226 §4 asks for 128 bits; 80 (16 base32 characters) is the least apps issue.
    if seed.len() < 10 {
        return Err(not_totp("the seed is shorter than 16 base32 characters"));
    }
    Ok(seed)
}

impl Totp {
    /// The usual generator (SHA-1, 6 digits, 30 s) over raw seed bytes.
    pub fn new(seed: &[u8]) -> Totp {
        Totp {
            seed: Zeroizing::new(seed.to_vec()),
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }

    /// Reads an `otpauth://totp/LABEL?secret=...&algorithm=...&digits=...&period=...` URI, or a
    /// bare base32 seed (SHA-1, 6 digits, 30 s).
    pub fn parse(text: &str) -> Result<Totp> {
        let text = text.trim();
        if !is_uri(text) {
            return Ok(Totp {
                seed: decode_base32(text)?,
                ..Totp::new(&[])
            });
        }
        let rest = &text[10..];
        let (kind, after) = rest.split_once('/').unwrap_or((rest, ""));
        if !kind.eq_ignore_ascii_case("totp") {
            return Err(not_totp(&format!(
                "only time-based codes (totp) are supported, not '{}'",
                crate::entry::printable(kind)
            )));
        }
        let query = after.split_once('?').map_or("", |(_, q)| q);
        let query = query.split('#').next().unwrap_or_default();
        let mut totp = Totp::new(&[]);
        let mut seed = None;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = Zeroizing::new(value.into_owned());
            match key.to_ascii_lowercase().as_str() {
                "secret" => seed = Some(decode_base32(&value)?),
                "algorithm" => {
                    totp.algorithm = match value.to_ascii_uppercase().as_str() {
                        "SHA1" => Algorithm::Sha1,
                        "SHA256" => Algorithm::Sha256,
                        "SHA512" => Algorithm::Sha512,
                        _ => return Err(not_totp("algorithm must be SHA1, SHA256 or SHA512")),
                    }
                }
                "digits" => {
                    totp.digits = value
                        .parse()
                        .ok()
                        .filter(|d| (6..=10).contains(d))
                        .ok_or_else(|| not_totp("digits must be 6 to 10"))?;
                }
                "period" => {
                    totp.period = value
                        .parse()
                        .ok()
                        .filter(|p| (1..=86_400).contains(p))
                        .ok_or_else(|| not_totp("period must be 1 to 86400 seconds"))?;
                }
                _ => {}
            }
        }
        totp.seed = seed.ok_or_else(|| not_totp("the URI has no secret"))?;
        Ok(totp)
    }

    /// The code at `unix_time` (seconds), zero-padded to `digits`.
    pub fn code_at(&self, unix_time: u64) -> String {
        let counter = (unix_time / self.period).to_be_bytes();
        let mac: Zeroizing<Vec<u8>> = Zeroizing::new(match self.algorithm {
            Algorithm::Sha1 => hmac::<sha1::Sha1>(&self.seed, &counter),
            Algorithm::Sha256 => hmac::<sha2::Sha256>(&self.seed, &counter),
            Algorithm::Sha512 => hmac::<sha2::Sha512>(&self.seed, &counter),
        });
        // RFC 4226 §5.3, dynamic truncation.
        let offset = usize::from(mac[mac.len() - 1] & 0x0f);
        let word = u32::from_be_bytes([
            mac[offset] & 0x7f,
            mac[offset + 1],
            mac[offset + 2],
            mac[offset + 3],
        ]);
        let code = u64::from(word) % 10u64.pow(self.digits);
        format!("{code:0width$}", width = self.digits as usize)
    }

    /// Seconds until the code at `unix_time` changes.
    pub fn remaining_at(&self, unix_time: u64) -> u64 {
        self.period - unix_time % self.period
    }
}

/// The code of the moment for an entry, as `jeton otp` prints it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Code {
    /// The entry that holds the seed.
    pub name: String,
    /// The code.
    pub code: String,
    /// Seconds until it changes.
    pub remaining: u64,
    /// Seconds a code lives.
    pub period: u64,
}

/// Where else `name`'s seed may be: `NAME/otp` and `NAME/totp`, where migrations put the seed
/// of a login that also has a password.
pub fn companions(name: &str) -> [String; 2] {
    [format!("{name}/otp"), format!("{name}/totp")]
}

/// True when `secret` is a seed: an otpauth URI, or with `bare_too` also a bare base32 seed
/// (which an ordinary password may happen to look like).
pub fn holds_seed(secret: &str, bare_too: bool) -> bool {
    (bare_too || is_uri(secret)) && Totp::parse(secret).is_ok()
}

fn is_uri(text: &str) -> bool {
    text.trim()
        .get(..10)
        .is_some_and(|s| s.eq_ignore_ascii_case("otpauth://"))
}

/// The otpauth URI to keep for a seed given as a URI or as bare base32 (checked first): a
/// URI is kept as given, a bare seed becomes `otpauth://totp/LABEL?secret=SEED`.
pub fn to_uri(text: &str, label: &str) -> Result<Zeroizing<String>> {
    Totp::parse(text)?;
    let text = text.trim();
    if is_uri(text) {
        return Ok(Zeroizing::new(text.to_owned()));
    }
    let seed: Zeroizing<String> = Zeroizing::new(
        text.chars()
            .filter(|c| !matches!(c, ' ' | '-' | '='))
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    let label: String = form_urlencoded::byte_serialize(label.as_bytes()).collect();
    Ok(Zeroizing::new(format!(
        "otpauth://totp/{label}?secret={}",
        seed.as_str()
    )))
}

/// The code of `secret` (an entry's secret) at `now`.
pub fn code(name: &str, secret: &str, now: crate::time::Time) -> Result<Code> {
    let totp = Totp::parse(secret).map_err(|_| {
        Error::Usage(format!(
            "entry '{}' holds no one-time code seed (add one with `jeton add {}/otp --totp`)",
            crate::entry::printable(name),
            crate::entry::printable(name)
        ))
    })?;
    let now = u64::try_from(now).unwrap_or(0);
    Ok(Code {
        name: name.to_owned(),
        code: totp.code_at(now),
        remaining: totp.remaining_at(now),
        period: totp.period,
    })
}

fn hmac<D>(key: &[u8], message: &[u8]) -> Vec<u8>
where
    D: hmac::EagerHash,
    Hmac<D>: KeyInit + Mac,
{
    // HMAC takes a key of any length (RFC 2104 §2), so this cannot fail.
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: the seeds, the times, and the 8-digit codes for each hash.
    #[test]
    fn rfc_6238_test_vectors() {
        let seeds: [(Algorithm, &[u8]); 3] = [
            (Algorithm::Sha1, b"12345678901234567890"),
            (Algorithm::Sha256, b"12345678901234567890123456789012"),
            (
                Algorithm::Sha512,
                b"1234567890123456789012345678901234567890123456789012345678901234",
            ),
        ];
        let vectors: [(u64, [&str; 3]); 6] = [
            (59, ["94287082", "46119246", "90693936"]),
            (1_111_111_109, ["07081804", "68084774", "25091201"]),
            (1_111_111_111, ["14050471", "67062674", "99943326"]),
            (1_234_567_890, ["89005924", "91819424", "93441116"]),
            (2_000_000_000, ["69279037", "90698825", "38618901"]),
            (20_000_000_000, ["65353130", "77737706", "47863826"]),
        ];
        for (time, codes) in vectors {
            for ((algorithm, seed), code) in seeds.iter().zip(codes) {
                let totp = Totp {
                    algorithm: *algorithm,
                    digits: 8,
                    ..Totp::new(seed)
                };
                assert_eq!(totp.code_at(time), code, "{algorithm:?} at {time}");
            }
        }
    }

    fn bare_at_59(seed: &[u8]) -> String {
        Totp::new(seed).code_at(59)
    }

    #[test]
    fn uris_and_bare_seeds() {
        // base32("12345678901234567890") = GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
        let bare = Totp::parse("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap();
        assert_eq!(bare.code_at(59), "287082");
        assert_eq!(bare.remaining_at(59), 1);
        let uri = Totp::parse(
            "otpauth://totp/ACME%20Co:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=ACME%20Co&algorithm=SHA1&digits=8&period=30",
        )
        .unwrap();
        assert_eq!(uri.code_at(1_111_111_109), "07081804");
        let sha256 = Totp::parse(
            "OTPAUTH://TOTP/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA&algorithm=SHA256&digits=8&period=60",
        )
        .unwrap();
        assert_eq!((sha256.algorithm, sha256.period), (Algorithm::Sha256, 60));
        assert_eq!(sha256.code_at(59 * 2), "46119246");
        assert!(holds_seed(
            "otpauth://totp/x?secret=GEZDGNBVGEZDGNBV",
            false
        ));
        assert!(!holds_seed("abcdefghabcdefgh", false) && holds_seed("abcdefghabcdefgh", true));
        let uri = to_uri("gezd gnbv gezd gnbv", "github/ci deploy").unwrap();
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/github%2Fci+deploy?secret=GEZDGNBVGEZDGNBV"
        );
        assert_eq!(
            Totp::parse(&uri).unwrap().code_at(59),
            bare_at_59(b"1234512345")
        );
        for bad in [
            "otpauth://hotp/x?secret=GEZDGNBVGEZDGNBV&counter=1",
            "otpauth://totp/x?issuer=none",
            "otpauth://totp/x?secret=GEZDGNBVGEZDGNBV&digits=4",
            "otpauth://totp/x?secret=GEZDGNBVGEZDGNBV&algorithm=MD5",
            "GEZDGNBV",
            "pw",
            "not base32 at all!",
            "",
        ] {
            let e = Totp::parse(bad).err().expect(bad);
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.to_string().contains("not a one-time code seed"), "{e}");
        }
    }
}
