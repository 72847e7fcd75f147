//! Generated secrets from a recipe: random characters from an alphabet (some characters left
//! out if asked), or random words from EFF's long list (`src/words/`, CC BY 3.0 US, credited
//! in the file and the README). Every draw is uniform: rejection sampling over the OS CSPRNG,
//! no modulo bias. Required character classes are met the same way: a whole secret missing one
//! is thrown away and drawn again, so no position is biased. Also how much a recipe's output is
//! worth, in bits.

use crate::random::fill_random;
use crate::secret::Token;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// EFF's long word list, with its credit header (`#` lines) and dice numbers.
const EFF_LONG: &str = include_str!("words/eff_large_wordlist.txt");

/// Fewest and most words in a generated passphrase.
pub const WORDS: std::ops::RangeInclusive<usize> = 3..=64;

/// Whole secrets drawn before giving up on required classes. Even the least likely recipe
/// (8 characters, three classes of one character each in an alphabet of 35) meets them about
/// once in 112 draws, so this many misses has a chance under 1e-38.
const MAX_DRAWS: usize = 10_000;

/// A class of characters a generated secret can be required to hold (at least one of each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Class {
    /// A-Z.
    Upper,
    /// a-z.
    Lower,
    /// 0-9.
    Digit,
    /// Any other printable ASCII character.
    Symbol,
}

impl Class {
    /// The class of `c`.
    pub fn of(c: char) -> Class {
        if c.is_ascii_uppercase() {
            Class::Upper
        } else if c.is_ascii_lowercase() {
            Class::Lower
        } else if c.is_ascii_digit() {
            Class::Digit
        } else {
            Class::Symbol
        }
    }

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Class::Upper => "upper",
            Class::Lower => "lower",
            Class::Digit => "digit",
            Class::Symbol => "symbol",
        }
    }
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Recipe {
    /// `length` characters drawn from `alphabet` (distinct ASCII characters), holding at least
    /// one character of each class in `require`.
    Chars {
        /// Number of characters.
        length: usize,
        /// The characters to draw from.
        alphabet: String,
        /// Classes the secret must hold (sorted, no repeats).
        #[serde(default)]
        require: Vec<Class>,
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
    /// Characters: `length` from `alphabet` less the characters in `exclude`, with at least one
    /// of each class in `require`.
    pub fn chars(
        length: usize,
        alphabet: &str,
        exclude: &str,
        require: &[Class],
    ) -> Result<Recipe> {
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
        let mut require = require.to_vec();
        require.sort_unstable();
        require.dedup();
        let recipe = Recipe::Chars {
            length,
            alphabet: kept,
            require,
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
            Recipe::Chars {
                length,
                alphabet,
                require,
            } => {
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
                if require.len() > *length {
                    return Err(Error::Usage(format!(
                        "--require names {} classes, more than the {length} characters",
                        require.len()
                    )));
                }
                if let Some(c) = require
                    .iter()
                    .find(|c| !alphabet.chars().any(|a| Class::of(a) == **c))
                {
                    return Err(Error::Usage(format!(
                        "--require {}: the alphabet (after --exclude) has no such character",
                        c.name()
                    )));
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
    /// words x log2(7776). Required classes take away the secrets that miss one: log2 of the
    /// number left, counted by inclusion-exclusion over the classes.
    pub fn entropy_bits(&self) -> f64 {
        match self {
            Recipe::Chars {
                length,
                alphabet,
                require,
            } => {
                let size = alphabet.chars().count() as f64;
                let in_class = |c: &Class| alphabet.chars().filter(|a| Class::of(*a) == *c).count();
                // The share of all secrets that hold every required class.
                let mut share = 0.0;
                for subset in 0..1u32 << require.len() {
                    let missing: usize = require
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| subset & (1 << i) != 0)
                        .map(|(_, c)| in_class(c))
                        .sum();
                    let term = ((size - missing as f64) / size).powi(*length as i32);
                    share += if subset.count_ones() % 2 == 0 {
                        term
                    } else {
                        -term
                    };
                }
                *length as f64 * size.log2() + share.log2()
            }
            Recipe::Words { count, .. } => *count as f64 * (eff_words().len() as f64).log2(),
        }
    }

    /// A fresh secret.
    pub fn generate(&self) -> Result<Token> {
        self.check()?;
        let mut out = String::new();
        match self {
            Recipe::Chars {
                length,
                alphabet,
                require,
            } => {
                let chars: Vec<char> = alphabet.chars().collect();
                out.reserve(*length);
                for _ in 0..MAX_DRAWS {
                    // The indices wipe themselves; a rejected secret is overwritten in place.
                    out.clear();
                    out.extend(
                        uniform_indices(chars.len(), *length)?
                            .iter()
                            .map(|&i| chars[i]),
                    );
                    if require
                        .iter()
                        .all(|c| out.chars().any(|o| Class::of(o) == *c))
                    {
                        return Ok(Token::new(out));
                    }
                }
                zeroize::Zeroize::zeroize(&mut out);
                return Err(Error::Other(
                    "could not meet --require; try a longer secret or fewer exclusions".into(),
                ));
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
        let r = Recipe::chars(64, "abcdef0123", "0a", &[]).unwrap();
        let s = r.generate().unwrap();
        assert_eq!(s.expose_secret().len(), 64);
        assert!(s.expose_secret().chars().all(|c| "bcdef123".contains(c)));
        assert!(Recipe::chars(16, "ab", "a", &[]).is_err());
        assert!(Recipe::chars(4, "abc", "", &[]).is_err());
        assert!(Recipe::words(2, "-").is_err());
        assert!(Recipe::words(65, "-").is_err());
        assert!(Recipe::words(6, "\n").is_err());
    }

    #[test]
    fn entropy_is_counted_in_bits() {
        let bits = Recipe::words(6, "-").unwrap().entropy_bits();
        assert!((bits - 77.55).abs() < 0.01, "{bits}");
        let bits = Recipe::chars(32, "0123456789abcdef", "", &[])
            .unwrap()
            .entropy_bits();
        assert!((bits - 128.0).abs() < 1e-9, "{bits}");
        // 8 characters from "ab1" with a digit and a letter: 3^8 secrets less 2^8 with no
        // digit, less 1 with no letter.
        let r = Recipe::chars(8, "ab1", "", &[Class::Digit, Class::Lower]).unwrap();
        let exact = (3f64.powi(8) - 2f64.powi(8) - 1.0).log2();
        assert!(
            (r.entropy_bits() - exact).abs() < 1e-9,
            "{}",
            r.entropy_bits()
        );
    }

    #[test]
    fn required_classes_always_appear_and_impossible_ones_are_refused() {
        let all = [Class::Upper, Class::Lower, Class::Digit, Class::Symbol];
        let alphabet: String = (b'!'..=b'~').map(char::from).collect();
        // One character of each class but lowercase: each secret still has all four.
        let r = Recipe::chars(8, &alphabet, "BCDEFGHIJKLMNOPQRSTUVWXYZ123456789#$%", &all).unwrap();
        for _ in 0..200 {
            let s = r.generate().unwrap();
            for c in all {
                assert!(
                    s.expose_secret().chars().any(|x| Class::of(x) == c),
                    "{c:?}"
                );
            }
        }
        assert!(Recipe::chars(8, "abc123", "", &[Class::Upper]).is_err());
        assert!(Recipe::chars(8, &alphabet, "0123456789", &[Class::Digit]).is_err());
        let forged = Recipe::Chars {
            length: 8,
            alphabet: "abcdefgh".into(),
            require: vec![Class::Digit],
        };
        assert_eq!(forged.generate().unwrap_err().exit_code(), 2);
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
