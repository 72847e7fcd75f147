//! Generated secrets from a recipe: random characters from an alphabet (some characters left
//! out if asked), or random words from EFF's long list (`src/words/`, CC BY 3.0 US, credited
//! in the file and the README). Every draw is uniform: rejection sampling over the OS CSPRNG,
//! no modulo bias. Also how much a recipe's output is worth, in bits.

use crate::random::fill_random;
use crate::secret::Token;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// EFF's long word list, with its credit header (`#` lines) and dice numbers.
const EFF_LONG: &str = include_str!("words/eff_large_wordlist.txt");

/// Fewest and most words in a generated passphrase.
pub const WORDS: std::ops::RangeInclusive<usize> = 3..=64;

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Recipe {
    /// `length` characters drawn from `alphabet` (distinct ASCII characters).
    Chars {
        /// Number of characters.
        length: usize,
        /// The characters to draw from.
        alphabet: String,
    },
    /// `count` words from EFF's long list, joined by `separator`.
    Words {
        /// Number of words.
        count: usize,
        /// Between words.
        separator: String,
    },
}

/// The words of EFF's long list, in order.
pub fn eff_words() -> &'static [&'static str] {
    static WORDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    WORDS.get_or_init(|| {
        EFF_LONG
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| l.split('\t').nth(1))
            .map(str::trim)
            .collect()
    })
}

impl Recipe {
    /// Characters: `length` from `alphabet` less the characters in `exclude`.
    pub fn chars(length: usize, alphabet: &str, exclude: &str) -> Result<Recipe> {
        let mut kept = String::new();
        for c in alphabet.chars().filter(|c| !exclude.contains(*c)) {
            if !kept.contains(c) {
                kept.push(c);
            }
        }
        if kept.chars().count() < 2 {
            return Err(Error::Usage(
                "--exclude leaves fewer than two characters to draw from".into(),
            ));
        }
        let recipe = Recipe::Chars {
            length,
            alphabet: kept,
        };
        recipe.check()?;
        Ok(recipe)
    }

    /// Words: `count` words joined by `separator`.
    pub fn words(count: usize, separator: &str) -> Result<Recipe> {
        let recipe = Recipe::Words {
            count,
            separator: separator.to_owned(),
        };
        recipe.check()?;
        Ok(recipe)
    }

    /// Refuses a recipe out of bounds (also when one arrives from elsewhere, such as the agent).
    pub fn check(&self) -> Result<()> {
        match self {
            Recipe::Chars { length, alphabet } => {
                if !(8..=crate::entry::MAX_GENERATED_LEN).contains(length) {
                    return Err(Error::Usage(format!(
                        "--length must be between 8 and {}",
                        crate::entry::MAX_GENERATED_LEN
                    )));
                }
                if alphabet.chars().count() < 2 || !alphabet.is_ascii() {
                    return Err(Error::Usage(
                        "the alphabet must hold at least two ASCII characters".into(),
                    ));
                }
            }
            Recipe::Words { count, separator } => {
                if !WORDS.contains(count) {
                    return Err(Error::Usage(format!(
                        "--words must be between {} and {}",
                        WORDS.start(),
                        WORDS.end()
                    )));
                }
                crate::text::check_line("--separator", separator)?;
                if separator.chars().count() > 8 {
                    return Err(Error::Usage("--separator is at most 8 characters".into()));
                }
            }
        }
        Ok(())
    }

    /// How many bits of entropy an output carries: length x log2(alphabet), or
    /// words x log2(7776).
    pub fn entropy_bits(&self) -> f64 {
        match self {
            Recipe::Chars { length, alphabet } => {
                *length as f64 * (alphabet.chars().count() as f64).log2()
            }
            Recipe::Words { count, .. } => *count as f64 * (eff_words().len() as f64).log2(),
        }
    }

    /// A fresh secret.
    pub fn generate(&self) -> Result<Token> {
        self.check()?;
        let mut out = String::new();
        match self {
            Recipe::Chars { length, alphabet } => {
                let chars: Vec<char> = alphabet.chars().collect();
                out.reserve(*length);
                for &i in uniform_indices(chars.len(), *length)?.iter() {
                    out.push(chars[i]);
                }
            }
            Recipe::Words { count, separator } => {
                let words = eff_words();
                // Reserved whole, so no partial copy is left behind by a reallocation.
                out.reserve(count * (9 + separator.len()));
                for (n, &i) in uniform_indices(words.len(), *count)?.iter().enumerate() {
                    if n > 0 {
                        out.push_str(separator);
                    }
                    out.push_str(words[i]);
                }
            }
        }
        Ok(Token::new(out))
    }
}

/// `count` independent uniform draws from `0..n` (n <= 65536): two random bytes each, those at
/// or above the largest multiple of n thrown away.
fn uniform_indices(n: usize, count: usize) -> Result<zeroize::Zeroizing<Vec<usize>>> {
    let n = u32::try_from(n)
        .ok()
        .filter(|n| (2..=65_536).contains(n))
        .ok_or_else(|| Error::Other("internal error: alphabet size out of range".into()))?;
    let limit = 65_536 - 65_536 % n;
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(count));
    let mut buf = zeroize::Zeroizing::new([0u8; 128]);
    while out.len() < count {
        fill_random(&mut buf[..])?;
        for pair in buf.chunks_exact(2) {
            let v = u32::from(u16::from_be_bytes([pair[0], pair[1]]));
            if v < limit && out.len() < count {
                out.push((v % n) as usize);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_list_is_eff_long_list_whole() {
        let words = eff_words();
        assert_eq!(words.len(), 7_776);
        assert_eq!((words[0], words[7_775]), ("abacus", "zoom"));
        let mut unique = words.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 7_776);
        assert!(
            words
                .iter()
                .all(|w| w.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
        );
        // One word for each roll of five dice, in order.
        let rolls: Vec<&str> = EFF_LONG
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split('\t').next())
            .collect();
        assert_eq!(rolls.len(), 7_776);
        assert_eq!((rolls[0], rolls[7_775]), ("11111", "66666"));
        assert!(EFF_LONG.starts_with("# EFF's long word list") && EFF_LONG.contains("CC BY 3.0"));
    }

    #[test]
    fn words_and_characters_follow_the_recipe() {
        let p = Recipe::words(6, "-").unwrap().generate().unwrap();
        let parts: Vec<&str> = p.expose_secret().split('-').collect();
        assert!(parts.len() >= 6, "{parts:?}");
        let p = Recipe::words(5, " ").unwrap().generate().unwrap();
        let parts: Vec<&str> = p.expose_secret().split(' ').collect();
        assert_eq!(parts.len(), 5);
        assert!(parts.iter().all(|w| eff_words().contains(w)));
        let r = Recipe::chars(64, "abcdef0123", "0a").unwrap();
        let s = r.generate().unwrap();
        assert_eq!(s.expose_secret().len(), 64);
        assert!(s.expose_secret().chars().all(|c| "bcdef123".contains(c)));
        assert!(Recipe::chars(16, "ab", "a").is_err());
        assert!(Recipe::chars(4, "abc", "").is_err());
        assert!(Recipe::words(2, "-").is_err());
        assert!(Recipe::words(65, "-").is_err());
        assert!(Recipe::words(6, "\n").is_err());
    }

    #[test]
    fn entropy_is_counted_in_bits() {
        let bits = Recipe::words(6, "-").unwrap().entropy_bits();
        assert!((bits - 77.55).abs() < 0.01, "{bits}");
        let bits = Recipe::chars(32, "0123456789abcdef", "")
            .unwrap()
            .entropy_bits();
        assert!((bits - 128.0).abs() < 1e-9, "{bits}");
    }

    #[test]
    fn draws_are_uniform_enough() {
        // 7 symbols (65536 is not a multiple of 7): each count within 10% of the mean.
        let draws = uniform_indices(7, 70_000).unwrap();
        let mut counts = [0usize; 7];
        for &d in draws.iter() {
            counts[d] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }
}
