//! The block function for AVX2: a block in thirty-two registers of four words, one of Argon2's
//! sixteen-word permutations at a time.

use super::Memory;
use super::Segment;
use super::lockstep::{self, Vector};
use std::arch::x86_64::*;

/// The AVX2 kernel.
pub(super) struct Avx2;

/// Fills the segments `at` with this kernel.
///
/// # Safety
/// The processor has AVX2; `memory` and `at` follow the rules of [`Memory`].
#[target_feature(enable = "avx2")]
pub(super) unsafe fn fill(memory: &Memory, at: &[Segment]) {
    // SAFETY: passed on from the caller.
    unsafe { lockstep::fill::<Avx2>(memory, at) }
}

/// x + y + 2 * lo32(x) * lo32(y), on each 64-bit lane.
#[inline]
#[target_feature(enable = "avx2")]
fn muladd(x: __m256i, y: __m256i) -> __m256i {
    let product = _mm256_mul_epu32(x, y);
    _mm256_add_epi64(_mm256_add_epi64(x, y), _mm256_add_epi64(product, product))
}

/// Rotations right by 24 and 16 bits, as byte shuffles within each 64-bit lane.
#[inline]
#[target_feature(enable = "avx2")]
fn rotate_bytes() -> (__m256i, __m256i) {
    #[rustfmt::skip]
    let by24 = _mm256_setr_epi8(
        3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10,
        3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10,
    );
    #[rustfmt::skip]
    let by16 = _mm256_setr_epi8(
        2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9,
        2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9,
    );
    (by24, by16)
}

/// GB on four lanes at once.
#[inline]
#[target_feature(enable = "avx2")]
fn gb(a: &mut __m256i, b: &mut __m256i, c: &mut __m256i, d: &mut __m256i) {
    let (by24, by16) = rotate_bytes();
    *a = muladd(*a, *b);
    *d = _mm256_shuffle_epi32::<0b10_11_00_01>(_mm256_xor_si256(*d, *a));
    *c = muladd(*c, *d);
    *b = _mm256_shuffle_epi8(_mm256_xor_si256(*b, *c), by24);
    *a = muladd(*a, *b);
    *d = _mm256_shuffle_epi8(_mm256_xor_si256(*d, *a), by16);
    *c = muladd(*c, *d);
    let x = _mm256_xor_si256(*b, *c);
    *b = _mm256_xor_si256(_mm256_srli_epi64::<63>(x), _mm256_add_epi64(x, x));
}

/// P on sixteen words: `a`, `b`, `c`, `d` hold words 0-3, 4-7, 8-11 and 12-15.
#[inline]
#[target_feature(enable = "avx2")]
fn permute16(a: &mut __m256i, b: &mut __m256i, c: &mut __m256i, d: &mut __m256i) {
    gb(a, b, c, d);
    // Diagonals: rotate b, c, d left by one, two and three words.
    *b = _mm256_permute4x64_epi64::<0b00_11_10_01>(*b);
    *c = _mm256_permute4x64_epi64::<0b01_00_11_10>(*c);
    *d = _mm256_permute4x64_epi64::<0b10_01_00_11>(*d);
    gb(a, b, c, d);
    *b = _mm256_permute4x64_epi64::<0b10_01_00_11>(*b);
    *c = _mm256_permute4x64_epi64::<0b01_00_11_10>(*c);
    *d = _mm256_permute4x64_epi64::<0b00_11_10_01>(*d);
}

impl Vector for Avx2 {
    /// Register i holds words 4i..4i+3.
    type State = [__m256i; 32];

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load(block: *const u64) -> Self::State {
        // SAFETY: the caller's promise covers all thirty-two aligned 32-byte loads.
        std::array::from_fn(|i| unsafe { _mm256_load_si256(block.add(4 * i).cast()) })
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn store(block: *mut u64, state: &Self::State) {
        for (i, &v) in state.iter().enumerate() {
            // SAFETY: the caller's promise covers all thirty-two aligned 32-byte stores.
            unsafe { _mm256_store_si256(block.add(4 * i).cast(), v) };
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn xor(a: &Self::State, b: &Self::State) -> Self::State {
        std::array::from_fn(|i| _mm256_xor_si256(a[i], b[i]))
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn permute(s: &mut Self::State) {
        // Row r: words 16r..16r+15, registers 4r..4r+3, already laid out as P wants.
        for r in 0..8 {
            let [a, b, c, d] = s
                .get_disjoint_mut([4 * r, 4 * r + 1, 4 * r + 2, 4 * r + 3])
                .expect("distinct registers");
            permute16(a, b, c, d);
        }
        // Columns: column j is the word pair 2j, 2j+1 of every row; row r's pairs for columns
        // 2j and 2j+1 are the two 128-bit halves of register 4r + j.
        for j in 0..4 {
            // For rows 2i and 2i+1: column 2j in `even[i]`, column 2j+1 in `odd[i]`.
            let mut even = [_mm256_setzero_si256(); 4];
            let mut odd = [_mm256_setzero_si256(); 4];
            for i in 0..4 {
                let (upper, lower) = (s[8 * i + j], s[8 * i + 4 + j]);
                even[i] = _mm256_permute2x128_si256::<0x20>(upper, lower);
                odd[i] = _mm256_permute2x128_si256::<0x31>(upper, lower);
            }
            let [e0, e1, e2, e3] = &mut even;
            permute16(e0, e1, e2, e3);
            let [o0, o1, o2, o3] = &mut odd;
            permute16(o0, o1, o2, o3);
            for i in 0..4 {
                s[8 * i + j] = _mm256_permute2x128_si256::<0x20>(even[i], odd[i]);
                s[8 * i + 4 + j] = _mm256_permute2x128_si256::<0x31>(even[i], odd[i]);
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn first_word(state: &Self::State) -> u64 {
        _mm_cvtsi128_si64(_mm256_castsi256_si128(state[0])) as u64
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn prefetch(block: *const u64) {
        for line in 0..16 {
            _mm_prefetch::<_MM_HINT_T0>(block.wrapping_add(8 * line).cast());
        }
    }
}
