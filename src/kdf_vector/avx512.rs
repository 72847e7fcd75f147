//! The block function for AVX-512F: a block in sixteen registers of eight words, two of
//! Argon2's sixteen-word permutations at once, one in each 256-bit half.

use super::Memory;
use super::Segment;
use super::lockstep::{self, Vector};
use std::arch::x86_64::*;

/// The AVX-512 kernel.
pub(super) struct Avx512;

/// Fills the segments `at` with this kernel.
///
/// # Safety
/// The processor has AVX-512F; `memory` and `at` follow the rules of [`Memory`].
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn fill(memory: &Memory, at: &[Segment]) {
    // SAFETY: passed on from the caller.
    unsafe { lockstep::fill::<Avx512>(memory, at) }
}

/// x + y + 2 * lo32(x) * lo32(y), on each 64-bit lane.
#[inline]
#[target_feature(enable = "avx512f")]
fn muladd(x: __m512i, y: __m512i) -> __m512i {
    let product = _mm512_mul_epu32(x, y);
    _mm512_add_epi64(_mm512_add_epi64(x, y), _mm512_add_epi64(product, product))
}

/// GB on four lanes of each half at once.
#[inline]
#[target_feature(enable = "avx512f")]
fn gb(a: &mut __m512i, b: &mut __m512i, c: &mut __m512i, d: &mut __m512i) {
    *a = muladd(*a, *b);
    *d = _mm512_ror_epi64::<32>(_mm512_xor_si512(*d, *a));
    *c = muladd(*c, *d);
    *b = _mm512_ror_epi64::<24>(_mm512_xor_si512(*b, *c));
    *a = muladd(*a, *b);
    *d = _mm512_ror_epi64::<16>(_mm512_xor_si512(*d, *a));
    *c = muladd(*c, *d);
    *b = _mm512_ror_epi64::<63>(_mm512_xor_si512(*b, *c));
}

/// P on two independent sets of sixteen words: each 256-bit half of `a`, `b`, `c`, `d` holds
/// words 0-3, 4-7, 8-11 and 12-15 of one set.
#[inline]
#[target_feature(enable = "avx512f")]
fn permute16(a: &mut __m512i, b: &mut __m512i, c: &mut __m512i, d: &mut __m512i) {
    gb(a, b, c, d);
    // Diagonals: rotate b, c, d left by one, two and three words within each half.
    *b = _mm512_permutex_epi64::<0b00_11_10_01>(*b);
    *c = _mm512_permutex_epi64::<0b01_00_11_10>(*c);
    *d = _mm512_permutex_epi64::<0b10_01_00_11>(*d);
    gb(a, b, c, d);
    *b = _mm512_permutex_epi64::<0b10_01_00_11>(*b);
    *c = _mm512_permutex_epi64::<0b01_00_11_10>(*c);
    *d = _mm512_permutex_epi64::<0b00_11_10_01>(*d);
}

impl Vector for Avx512 {
    /// Register i holds words 8i..8i+7.
    type State = [__m512i; 16];

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load(block: *const u64) -> Self::State {
        // SAFETY: the caller's promise covers all sixteen aligned 64-byte loads.
        std::array::from_fn(|i| unsafe { _mm512_load_si512(block.add(8 * i).cast()) })
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store(block: *mut u64, state: &Self::State) {
        for (i, &v) in state.iter().enumerate() {
            // SAFETY: the caller's promise covers all sixteen aligned 64-byte stores.
            unsafe { _mm512_store_si512(block.add(8 * i).cast(), v) };
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn xor(a: &Self::State, b: &Self::State) -> Self::State {
        std::array::from_fn(|i| _mm512_xor_si512(a[i], b[i]))
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn permute(s: &mut Self::State) {
        // Rows 2k and 2k+1 (words 32k..32k+31, registers 4k..4k+3) side by side.
        for k in 0..4 {
            let (r0, r1, r2, r3) = (s[4 * k], s[4 * k + 1], s[4 * k + 2], s[4 * k + 3]);
            let mut a = _mm512_shuffle_i64x2::<0b01_00_01_00>(r0, r2);
            let mut b = _mm512_shuffle_i64x2::<0b11_10_11_10>(r0, r2);
            let mut c = _mm512_shuffle_i64x2::<0b01_00_01_00>(r1, r3);
            let mut d = _mm512_shuffle_i64x2::<0b11_10_11_10>(r1, r3);
            permute16(&mut a, &mut b, &mut c, &mut d);
            s[4 * k] = _mm512_shuffle_i64x2::<0b01_00_01_00>(a, b);
            s[4 * k + 2] = _mm512_shuffle_i64x2::<0b11_10_11_10>(a, b);
            s[4 * k + 1] = _mm512_shuffle_i64x2::<0b01_00_01_00>(c, d);
            s[4 * k + 3] = _mm512_shuffle_i64x2::<0b11_10_11_10>(c, d);
        }
        // Columns: column j is the word pair 2j, 2j+1 of every row; row r's pairs for
        // columns 4h..4h+3 are the four 128-bit lanes of register 2r + h.
        let gather_low = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
        let gather_high = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
        let scatter_even = _mm512_setr_epi64(0, 1, 4, 5, 8, 9, 12, 13);
        let scatter_odd = _mm512_setr_epi64(2, 3, 6, 7, 10, 11, 14, 15);
        for h in 0..2 {
            // For rows 2i and 2i+1: columns 4h, 4h+1 in `low[i]`, 4h+2, 4h+3 in `high[i]`.
            let mut low = [_mm512_setzero_si512(); 4];
            let mut high = [_mm512_setzero_si512(); 4];
            for i in 0..4 {
                let (even, odd) = (s[4 * i + h], s[4 * i + 2 + h]);
                low[i] = _mm512_permutex2var_epi64(even, gather_low, odd);
                high[i] = _mm512_permutex2var_epi64(even, gather_high, odd);
            }
            let [l0, l1, l2, l3] = &mut low;
            permute16(l0, l1, l2, l3);
            let [h0, h1, h2, h3] = &mut high;
            permute16(h0, h1, h2, h3);
            for i in 0..4 {
                s[4 * i + h] = _mm512_permutex2var_epi64(low[i], scatter_even, high[i]);
                s[4 * i + 2 + h] = _mm512_permutex2var_epi64(low[i], scatter_odd, high[i]);
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn first_word(state: &Self::State) -> u64 {
        _mm_cvtsi128_si64(_mm512_castsi512_si128(state[0])) as u64
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn prefetch(block: *const u64) {
        for line in 0..16 {
            _mm_prefetch::<_MM_HINT_T0>(block.wrapping_add(8 * line).cast());
        }
    }
}
