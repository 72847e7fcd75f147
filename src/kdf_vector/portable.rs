//! The block function in plain Rust (RFC 9106 §3.5 and §3.6): the reference the vector kernels
//! are checked against, on every machine.

use super::WORDS;
use super::lockstep::Vector;

/// The portable kernel.
pub(super) struct Portable;

/// GB: BLAKE2b's G with the multiplication Argon2 adds.
#[inline(always)]
fn gb(v: &mut [u64; WORDS], a: usize, b: usize, c: usize, d: usize) {
    let mul = |x: u64, y: u64| 2u64.wrapping_mul((x & 0xFFFF_FFFF) * (y & 0xFFFF_FFFF));
    v[a] = v[a].wrapping_add(v[b]).wrapping_add(mul(v[a], v[b]));
    v[d] = (v[d] ^ v[a]).rotate_right(32);
    v[c] = v[c].wrapping_add(v[d]).wrapping_add(mul(v[c], v[d]));
    v[b] = (v[b] ^ v[c]).rotate_right(24);
    v[a] = v[a].wrapping_add(v[b]).wrapping_add(mul(v[a], v[b]));
    v[d] = (v[d] ^ v[a]).rotate_right(16);
    v[c] = v[c].wrapping_add(v[d]).wrapping_add(mul(v[c], v[d]));
    v[b] = (v[b] ^ v[c]).rotate_right(63);
}

/// P on the sixteen words at positions `at`.
#[inline(always)]
fn permute16(v: &mut [u64; WORDS], at: [usize; 16]) {
    gb(v, at[0], at[4], at[8], at[12]);
    gb(v, at[1], at[5], at[9], at[13]);
    gb(v, at[2], at[6], at[10], at[14]);
    gb(v, at[3], at[7], at[11], at[15]);
    gb(v, at[0], at[5], at[10], at[15]);
    gb(v, at[1], at[6], at[11], at[12]);
    gb(v, at[2], at[7], at[8], at[13]);
    gb(v, at[3], at[4], at[9], at[14]);
}

impl Vector for Portable {
    type State = [u64; WORDS];

    unsafe fn load(block: *const u64) -> Self::State {
        let mut state = [0; WORDS];
        // SAFETY: the caller's promise: 128 readable words nobody writes meanwhile.
        unsafe { std::ptr::copy_nonoverlapping(block, state.as_mut_ptr(), WORDS) };
        state
    }

    unsafe fn store(block: *mut u64, state: &Self::State) {
        // SAFETY: the caller's promise: 128 writable words nobody else touches meanwhile.
        unsafe { std::ptr::copy_nonoverlapping(state.as_ptr(), block, WORDS) };
    }

    unsafe fn xor(a: &Self::State, b: &Self::State) -> Self::State {
        std::array::from_fn(|i| a[i] ^ b[i])
    }

    unsafe fn permute(state: &mut Self::State) {
        // Row r: words 16r..16r+15. Column c: the word pairs 2c, 2c+1 of every row.
        for row in 0..8 {
            permute16(state, std::array::from_fn(|i| 16 * row + i));
        }
        for column in 0..8 {
            permute16(
                state,
                std::array::from_fn(|i| 2 * column + 16 * (i / 2) + i % 2),
            );
        }
    }

    unsafe fn first_word(state: &Self::State) -> u64 {
        state[0]
    }

    unsafe fn prefetch(_block: *const u64) {}
}
