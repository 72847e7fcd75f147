//! Argon2id (RFC 9106, version 0x13) with a block function written for AVX-512.
//!
//! The `argon2` crate computes its block function G from portable Rust that the compiler
//! vectorises for AVX2 at best; at the default cost that function was two thirds of a cold
//! unlock (docs/PERFORMANCE.md). On a processor with AVX-512 this module fills the memory instead:
//! a whole 1 KiB block fits in 16 of the 32 vector registers, so each new block is computed from
//! the previous one without reloading it, and the rotations and the 32-bit multiplications are
//! single instructions on eight words at once. The layout of the permutation follows the
//! reference implementation's AVX-512 code (phc-winner-argon2, `blamka-round-opt.h`).
//!
//! Everything else is RFC 9106 as written: H0 and H' over the `blake2` crate's BLAKE2b, the
//! indexing of §3.4, four slices per pass with the lanes of a slice filled in parallel, and the
//! final XOR of the lanes' last blocks. Only Argon2id, version 0x13 and 32-byte tags are
//! supported, which is all jeton derives; [`crate::kdf`] uses the `argon2` crate for everything
//! else and on processors without AVX-512.
//!
//! The same indexing also runs with a portable block function ([`Kernel::Portable`]), so the
//! tests check the fill itself on every machine: both kernels against the `argon2` crate for
//! several shapes, against RFC 9106 §5.3's test vector, and block by block against each other
//! (AVX-512 only where the processor has it).
//!
//! This module opts out of the crate's `deny(unsafe_code)`: the vector loads and stores take
//! raw pointers, and the lanes of a slice are written by several threads at once through one
//! pointer to the memory. Each `unsafe` block states why it holds.
#![allow(unsafe_code)]

use argon2::Block;
use blake2::{Blake2b256, Blake2b512, Digest};
use zeroize::Zeroize;

/// 64-bit words in a block.
const WORDS: usize = 128;
/// Slices per pass (RFC 9106 §3.4: four synchronisation points).
const SLICES: usize = 4;
/// Addresses one address block yields in data-independent indexing.
const ADDRESSES: usize = WORDS;
/// Argon2 version 0x13.
const VERSION: u32 = 0x13;
/// Argon2id's type code `y`.
const ARGON2ID: u32 = 2;
/// The only tag length this module computes.
pub const TAG_LEN: usize = 32;

// The pointer arithmetic below treats the memory as consecutive runs of 128 words.
const _: () = assert!(size_of::<Block>() == WORDS * 8 && align_of::<Block>() >= 64);

/// Which block function fills the memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// AVX-512 (`avx512f`); only constructed where the processor has it.
    Avx512,
    /// Plain Rust; checks the indexing on every machine, not used by jeton itself.
    #[cfg_attr(not(test), allow(dead_code, reason = "the tests' reference kernel"))]
    Portable,
}

impl Kernel {
    /// The AVX-512 kernel, when this processor can run it.
    pub fn fastest() -> Option<Kernel> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Some(Kernel::Avx512);
        }
        None
    }
}

/// Argon2id's cost parameters and optional inputs.
pub struct Inputs<'a> {
    /// Memory cost in KiB (`m`).
    pub memory_kib: u32,
    /// Passes (`t`).
    pub iterations: u32,
    /// Lanes (`p`).
    pub lanes: u32,
    /// The password (`P`).
    pub password: &'a [u8],
    /// The salt (`S`).
    pub salt: &'a [u8],
    /// The secret value (`K`), empty for none.
    pub secret: &'a [u8],
    /// The associated data (`X`), empty for none.
    pub associated: &'a [u8],
}

/// Why [`hash_into`] refused to run.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Parameters outside RFC 9106's ranges, or an input longer than 2^32 - 1 bytes.
    Parameters,
    /// Fewer blocks given than the memory cost needs.
    Memory,
    /// The kernel cannot run on this processor.
    Kernel,
}

/// Computes the 32-byte Argon2id tag of `inputs` into `out`, using `blocks` (at least the
/// block count of `inputs`, see [`block_count`]) as the working memory.
pub fn hash_into(
    inputs: &Inputs<'_>,
    kernel: Kernel,
    blocks: &mut [Block],
    out: &mut [u8; TAG_LEN],
) -> Result<(), Refused> {
    if kernel == Kernel::Avx512 && Kernel::fastest() != Some(Kernel::Avx512) {
        return Err(Refused::Kernel);
    }
    let shape = Shape::new(inputs)?;
    let blocks = blocks
        .get_mut(..shape.block_count())
        .ok_or(Refused::Memory)?;
    let mut h0 = initial_hash(inputs)?;
    for (lane, blocks) in blocks.chunks_exact_mut(shape.lane_length).enumerate() {
        for (index, block) in blocks[..2].iter_mut().enumerate() {
            let mut bytes = [0u8; WORDS * 8];
            let lane = lane as u32; // lanes <= 2^24 - 1, checked in `Shape::new`
            long_hash(
                &[&h0, &(index as u32).to_le_bytes(), &lane.to_le_bytes()],
                &mut bytes,
            );
            for (word, chunk) in block.as_mut().iter_mut().zip(bytes.chunks_exact(8)) {
                *word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            }
            bytes.zeroize();
        }
    }
    h0.zeroize();

    let memory = Memory {
        words: blocks.as_mut_ptr().cast::<u64>(),
        shape,
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(shape.lanes);
    for pass in 0..shape.passes {
        for slice in 0..SLICES {
            fill_slice(&memory, kernel, pass, slice, threads);
        }
    }

    let mut last = [0u64; WORDS];
    for lane in 0..shape.lanes {
        let block = &blocks[lane * shape.lane_length + shape.lane_length - 1];
        for (acc, word) in last.iter_mut().zip(block.as_ref()) {
            *acc ^= word;
        }
    }
    let mut bytes = [0u8; WORDS * 8];
    for (chunk, word) in bytes.chunks_exact_mut(8).zip(&last) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    let mut tag = Blake2b256::new()
        .chain_update((TAG_LEN as u32).to_le_bytes())
        .chain_update(bytes)
        .finalize();
    out.copy_from_slice(&tag);
    tag.as_mut_slice().zeroize();
    last.zeroize();
    bytes.zeroize();
    Ok(())
}

/// The number of blocks `inputs` fills: `4p * floor(m / 4p)`.
pub fn block_count(inputs: &Inputs<'_>) -> Result<usize, Refused> {
    Ok(Shape::new(inputs)?.block_count())
}

/// H0 (RFC 9106 §3.2, step 1).
fn initial_hash(inputs: &Inputs<'_>) -> Result<[u8; 64], Refused> {
    let len = |bytes: &[u8]| {
        u32::try_from(bytes.len())
            .map(u32::to_le_bytes)
            .map_err(|_| Refused::Parameters)
    };
    let mut hash = Blake2b512::new();
    for word in [
        inputs.lanes,
        TAG_LEN as u32,
        inputs.memory_kib,
        inputs.iterations,
        VERSION,
        ARGON2ID,
    ] {
        hash.update(word.to_le_bytes());
    }
    for part in [
        inputs.password,
        inputs.salt,
        inputs.secret,
        inputs.associated,
    ] {
        hash.update(len(part)?);
        hash.update(part);
    }
    let mut digest = hash.finalize();
    let mut h0 = [0u8; 64];
    h0.copy_from_slice(&digest);
    digest.as_mut_slice().zeroize();
    Ok(h0)
}

/// H' (RFC 9106 §3.3) for a 1024-byte output: BLAKE2b-512 chained, 32 bytes from each link and
/// the whole last one.
fn long_hash(parts: &[&[u8]], out: &mut [u8; WORDS * 8]) {
    let mut hash = Blake2b512::new().chain_update((out.len() as u32).to_le_bytes());
    for part in parts {
        hash.update(part);
    }
    let mut link = hash.finalize();
    let (mut rest, last) = out.split_at_mut(WORDS * 8 - 64);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at_mut(32);
        chunk.copy_from_slice(&link[..32]);
        let next = Blake2b512::digest(link);
        link.as_mut_slice().zeroize();
        link = next;
        rest = tail;
    }
    last.copy_from_slice(&link);
    link.as_mut_slice().zeroize();
}

/// The memory's dimensions, checked against RFC 9106 §3.1.
#[derive(Clone, Copy)]
struct Shape {
    lanes: usize,
    passes: usize,
    lane_length: usize,
    segment_length: usize,
}

impl Shape {
    fn new(inputs: &Inputs<'_>) -> Result<Shape, Refused> {
        let lanes = inputs.lanes;
        if !(1..(1 << 24)).contains(&lanes)
            || inputs.iterations == 0
            || u64::from(inputs.memory_kib) < 8 * u64::from(lanes)
        {
            return Err(Refused::Parameters);
        }
        let lanes = lanes as usize;
        let segment_length = inputs.memory_kib as usize / (SLICES * lanes);
        Ok(Shape {
            lanes,
            passes: inputs.iterations as usize,
            lane_length: segment_length * SLICES,
            segment_length,
        })
    }

    fn block_count(&self) -> usize {
        self.lane_length * self.lanes
    }

    /// The block that block `index` of a segment refers to (RFC 9106 §3.4.1.2), given the
    /// 64 pseudo-random bits `rand` for it.
    #[inline(always)]
    fn reference(&self, at: Segment, index: usize, rand: u64) -> usize {
        let ref_lane = if at.pass == 0 && at.slice == 0 {
            at.lane
        } else {
            (rand >> 32) as usize % self.lanes
        };
        let not_first = usize::from(index != 0);
        let area = match (at.pass == 0, ref_lane == at.lane) {
            (true, _) if at.slice == 0 => index - 1,
            (true, true) => at.slice * self.segment_length + index - 1,
            (true, false) => at.slice * self.segment_length + not_first - 1,
            (false, true) => self.lane_length - self.segment_length + index - 1,
            (false, false) => self.lane_length - self.segment_length + not_first - 1,
        };
        let low = rand & 0xFFFF_FFFF;
        let x = (low * low) >> 32;
        let relative = area - 1 - ((area as u64 * x) >> 32) as usize;
        let start = if at.pass != 0 && at.slice != SLICES - 1 {
            (at.slice + 1) * self.segment_length
        } else {
            0
        };
        ref_lane * self.lane_length + (start + relative) % self.lane_length
    }
}

/// One segment: a slice of one lane in one pass.
#[derive(Clone, Copy)]
struct Segment {
    pass: usize,
    slice: usize,
    lane: usize,
}

/// The working memory, shared by the threads that fill one slice.
///
/// Within a slice each thread writes only the segments of its own lanes, and reads blocks of
/// its own lane before the one it writes, or blocks of other lanes outside the current slice
/// (RFC 9106 §3.4.1.2 excludes the segment being filled from other lanes' reference sets). So
/// no block is written by one thread while another reads or writes it, and the end of each
/// slice is a join of all threads, which orders the writes of one slice before the reads of
/// the next.
struct Memory {
    words: *mut u64,
    shape: Shape,
}

// SAFETY: see the type's documentation: threads touch disjoint blocks within a slice, and
// slices are separated by joining every thread.
unsafe impl Sync for Memory {}

impl Memory {
    /// The first word of block `index`; `index` is below the block count.
    fn block(&self, index: usize) -> *mut u64 {
        debug_assert!(index < self.shape.block_count());
        // SAFETY: `index` is below the block count, so the offset stays inside the memory
        // handed to `hash_into`, which holds at least that many blocks.
        unsafe { self.words.add(index * WORDS) }
    }
}

/// Fills one slice of every lane, the lanes spread over `threads` threads.
fn fill_slice(memory: &Memory, kernel: Kernel, pass: usize, slice: usize, threads: usize) {
    let lanes = memory.shape.lanes;
    let work = |first: usize| {
        let mine: Vec<Segment> = (first..lanes)
            .step_by(threads)
            .map(|lane| Segment { pass, slice, lane })
            .collect();
        for at in mine.chunks(2) {
            match (kernel, at) {
                // SAFETY (both): `hash_into` checked that this processor has AVX-512F.
                #[cfg(target_arch = "x86_64")]
                (Kernel::Avx512, &[a, b]) => unsafe { avx512::fill_segments(memory, [a, b]) },
                #[cfg(target_arch = "x86_64")]
                (Kernel::Avx512, &[a]) => unsafe { avx512::fill_segments(memory, [a]) },
                (Kernel::Portable, at) => {
                    at.iter().for_each(|&at| fill_segment_portable(memory, at))
                }
                _ => unreachable!("hash_into refuses AVX-512 where it is missing"),
            }
        }
    };
    std::thread::scope(|scope| {
        for first in 1..threads {
            let spawned = std::thread::Builder::new().spawn_scoped(scope, move || work(first));
            if spawned.is_err() {
                // No thread to be had: fill those lanes here, one after the other.
                work(first);
            }
        }
        work(0);
    });
}

/// Where a segment starts: its first block to compute and the block before it.
#[inline(always)]
fn segment_start(shape: &Shape, at: Segment) -> (usize, usize, usize) {
    let first = if at.pass == 0 && at.slice == 0 { 2 } else { 0 };
    let current = at.lane * shape.lane_length + at.slice * shape.segment_length + first;
    let previous = if at.slice == 0 && first == 0 {
        current + shape.lane_length - 1
    } else {
        current - 1
    };
    (first, current, previous)
}

/// Pseudo-random numbers for data-independent indexing (Argon2id's first half pass).
struct Addresses {
    input: [u64; WORDS],
    block: [u64; WORDS],
}

impl Addresses {
    /// `None` where the segment indexes by the previous block's content instead.
    fn new(shape: &Shape, at: Segment) -> Option<Addresses> {
        if at.pass != 0 || at.slice >= SLICES / 2 {
            return None;
        }
        let mut input = [0u64; WORDS];
        input[..6].copy_from_slice(&[
            at.pass as u64,
            at.lane as u64,
            at.slice as u64,
            shape.block_count() as u64,
            shape.passes as u64,
            u64::from(ARGON2ID),
        ]);
        Some(Addresses {
            input,
            block: [0; WORDS],
        })
    }

    /// The random bits for block `index` of the segment; `next` computes G(0, G(0, input)).
    /// Asking again for the same index, or for the next one, is allowed: the address block
    /// for a run of 128 indices is computed once, as the counter in the input block requires.
    #[inline(always)]
    fn get(&mut self, index: usize, next: impl Fn(&[u64; WORDS]) -> [u64; WORDS]) -> u64 {
        while self.input[6] <= (index / ADDRESSES) as u64 {
            self.input[6] += 1;
            self.block = next(&self.input);
        }
        self.block[index % ADDRESSES]
    }
}

/// Fills a segment with the portable block function.
fn fill_segment_portable(memory: &Memory, at: Segment) {
    let shape = &memory.shape;
    let (first, mut current, previous) = segment_start(shape, at);
    let mut addresses = Addresses::new(shape, at);
    let mut state = [0u64; WORDS];
    // SAFETY: `previous` is a block of this lane that no other thread writes during this
    // slice (see `Memory`).
    unsafe { std::ptr::copy_nonoverlapping(memory.block(previous), state.as_mut_ptr(), WORDS) };
    for index in first..shape.segment_length {
        let rand = match &mut addresses {
            Some(addresses) => addresses.get(index, |input| {
                let once = portable::compress(&[0; WORDS], input);
                portable::compress(&[0; WORDS], &once)
            }),
            None => state[0],
        };
        let reference = memory.block(shape.reference(at, index, rand));
        let target = memory.block(current);
        let mut other = [0u64; WORDS];
        // SAFETY: the reference block is outside what other threads write in this slice, and
        // the target is this lane's own block in this segment (see `Memory`).
        unsafe { std::ptr::copy_nonoverlapping(reference, other.as_mut_ptr(), WORDS) };
        let mut next = portable::compress(&state, &other);
        if at.pass != 0 {
            // SAFETY: as above.
            unsafe { std::ptr::copy_nonoverlapping(target, other.as_mut_ptr(), WORDS) };
            for (word, old) in next.iter_mut().zip(&other) {
                *word ^= old;
            }
        }
        // SAFETY: as above.
        unsafe { std::ptr::copy_nonoverlapping(next.as_ptr(), target, WORDS) };
        state = next;
        current += 1;
    }
    state.zeroize();
}

/// The block function in plain Rust (RFC 9106 §3.5 and §3.6).
mod portable {
    use super::WORDS;

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
    fn permute(v: &mut [u64; WORDS], at: [usize; 16]) {
        gb(v, at[0], at[4], at[8], at[12]);
        gb(v, at[1], at[5], at[9], at[13]);
        gb(v, at[2], at[6], at[10], at[14]);
        gb(v, at[3], at[7], at[11], at[15]);
        gb(v, at[0], at[5], at[10], at[15]);
        gb(v, at[1], at[6], at[11], at[12]);
        gb(v, at[2], at[7], at[8], at[13]);
        gb(v, at[3], at[4], at[9], at[14]);
    }

    /// G(x, y) = P(P(R) by rows, then by columns) XOR R, where R = x XOR y.
    pub fn compress(x: &[u64; WORDS], y: &[u64; WORDS]) -> [u64; WORDS] {
        let mut r = [0u64; WORDS];
        for ((r, x), y) in r.iter_mut().zip(x).zip(y) {
            *r = x ^ y;
        }
        let mut q = r;
        for row in 0..8 {
            permute(&mut q, std::array::from_fn(|i| 16 * row + i));
        }
        for column in 0..8 {
            permute(
                &mut q,
                std::array::from_fn(|i| 2 * column + 16 * (i / 2) + i % 2),
            );
        }
        for (q, r) in q.iter_mut().zip(&r) {
            *q ^= r;
        }
        q
    }
}

/// The block function and the segment loop for AVX-512F.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Addresses, Memory, Segment, WORDS, segment_start};
    use std::arch::x86_64::*;

    /// A block in sixteen registers of eight words: register i holds words 8i..8i+7.
    type State = [__m512i; 16];

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

    /// P on two independent sets of sixteen words: each 256-bit half of `a`, `b`, `c`, `d`
    /// holds words 0-3, 4-7, 8-11 and 12-15 of one set.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn permute(a: &mut __m512i, b: &mut __m512i, c: &mut __m512i, d: &mut __m512i) {
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

    /// P over the eight rows, then over the eight columns, of the block in `s`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn permute_block(s: &mut State) {
        // Rows 2k and 2k+1 (words 32k..32k+31, registers 4k..4k+3) side by side.
        for k in 0..4 {
            let (r0, r1, r2, r3) = (s[4 * k], s[4 * k + 1], s[4 * k + 2], s[4 * k + 3]);
            let mut a = _mm512_shuffle_i64x2::<0b01_00_01_00>(r0, r2);
            let mut b = _mm512_shuffle_i64x2::<0b11_10_11_10>(r0, r2);
            let mut c = _mm512_shuffle_i64x2::<0b01_00_01_00>(r1, r3);
            let mut d = _mm512_shuffle_i64x2::<0b11_10_11_10>(r1, r3);
            permute(&mut a, &mut b, &mut c, &mut d);
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
            permute(l0, l1, l2, l3);
            let [h0, h1, h2, h3] = &mut high;
            permute(h0, h1, h2, h3);
            for i in 0..4 {
                s[4 * i + h] = _mm512_permutex2var_epi64(low[i], scatter_even, high[i]);
                s[4 * i + 2 + h] = _mm512_permutex2var_epi64(low[i], scatter_odd, high[i]);
            }
        }
    }

    /// Loads a block.
    ///
    /// # Safety
    /// `block` points to 128 readable words, 64-byte aligned, that no thread writes meanwhile.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load(block: *const u64) -> State {
        // SAFETY: the caller's promise covers all sixteen 64-byte loads.
        std::array::from_fn(|i| unsafe { _mm512_load_si512(block.add(8 * i).cast()) })
    }

    /// G(0, y) for the address blocks.
    #[target_feature(enable = "avx512f")]
    fn compress_zero(y: &[u64; WORDS]) -> [u64; WORDS] {
        // SAFETY: `y` is 128 words; an unaligned load reads them without any alignment need.
        let r: State =
            std::array::from_fn(|i| unsafe { _mm512_loadu_si512(y.as_ptr().add(8 * i).cast()) });
        let mut q = r;
        permute_block(&mut q);
        let mut out = [0u64; WORDS];
        for i in 0..16 {
            // SAFETY: `out` is 128 words, written without any alignment need.
            unsafe {
                _mm512_storeu_si512(
                    out.as_mut_ptr().add(8 * i).cast(),
                    _mm512_xor_si512(q[i], r[i]),
                )
            };
        }
        out
    }

    /// Prefetches a block into the caches.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn prefetch(block: *const u64) {
        for line in 0..16 {
            // A prefetch never faults, whatever the address; this one is inside the memory.
            _mm_prefetch::<_MM_HINT_T0>(block.wrapping_add(8 * line).cast());
        }
    }

    /// Fills the segments `at` (of one slice, in different lanes) in lockstep, keeping each
    /// previous block in registers. Each lane's next reference block, a random one of the
    /// whole memory, is prefetched as soon as it is known, and fetched while the other lanes
    /// compute their blocks.
    ///
    /// # Safety
    /// The processor has AVX-512F; `memory` and `at` follow the rules of [`Memory`].
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fill_segments<const N: usize>(memory: &Memory, at: [Segment; N]) {
        let shape = &memory.shape;
        let mut first = 0;
        let mut current = [0; N];
        let mut addresses = at.map(|at| Addresses::new(shape, at));
        let mut states = [[_mm512_setzero_si512(); 16]; N];
        let mut references = [std::ptr::null(); N];
        let next_address = |input: &[u64; WORDS]| compress_zero(&compress_zero(input));
        for k in 0..N {
            let previous;
            (first, current[k], previous) = segment_start(shape, at[k]);
            // SAFETY: `previous` is this lane's own block, not written by others in this
            // slice; blocks are 64-byte aligned (`Block` is `align(64)`).
            states[k] = unsafe { load(memory.block(previous)) };
        }
        let rand = |index: usize, state: &State, addresses: &mut Option<Addresses>| match addresses
        {
            Some(addresses) => addresses.get(index, next_address),
            None => _mm_cvtsi128_si64(_mm512_castsi512_si128(state[0])) as u64,
        };
        for k in 0..N {
            let rand = rand(first, &states[k], &mut addresses[k]);
            references[k] = memory.block(shape.reference(at[k], first, rand));
            prefetch(references[k]);
        }
        for index in first..shape.segment_length {
            for k in 0..N {
                let state = &mut states[k];
                let target = memory.block(current[k]);
                // SAFETY: the reference block is outside what other threads write in this
                // slice (see `Memory`); it is aligned like every block.
                let other = unsafe { load(references[k]) };
                let mut xored = *state;
                for i in 0..16 {
                    state[i] = _mm512_xor_si512(state[i], other[i]);
                    xored[i] = state[i];
                }
                if at[k].pass != 0 {
                    // SAFETY: the target is this lane's own block in this segment.
                    let old = unsafe { load(target) };
                    for i in 0..16 {
                        xored[i] = _mm512_xor_si512(xored[i], old[i]);
                    }
                }
                permute_block(state);
                for i in 0..16 {
                    state[i] = _mm512_xor_si512(state[i], xored[i]);
                    // SAFETY: the target is this lane's own block in this segment, aligned.
                    unsafe { _mm512_store_si512(target.add(8 * i).cast(), state[i]) };
                }
                current[k] += 1;
                if index + 1 < shape.segment_length {
                    let rand = rand(index + 1, state, &mut addresses[k]);
                    references[k] = memory.block(shape.reference(at[k], index + 1, rand));
                    prefetch(references[k]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(memory_kib: u32, iterations: u32, lanes: u32, password: &'a [u8]) -> Inputs<'a> {
        Inputs {
            memory_kib,
            iterations,
            lanes,
            password,
            salt: b"saltsaltsaltsalt",
            secret: &[],
            associated: &[],
        }
    }

    fn kernels() -> Vec<Kernel> {
        let mut kernels = vec![Kernel::Portable];
        kernels.extend(Kernel::fastest());
        kernels
    }

    fn ours(inputs: &Inputs<'_>, kernel: Kernel) -> [u8; TAG_LEN] {
        let mut blocks = vec![Block::new(); block_count(inputs).unwrap()];
        let mut out = [0u8; TAG_LEN];
        hash_into(inputs, kernel, &mut blocks, &mut out).unwrap();
        out
    }

    fn crate_tag(inputs: &Inputs<'_>) -> [u8; TAG_LEN] {
        let params = argon2::ParamsBuilder::new()
            .m_cost(inputs.memory_kib)
            .t_cost(inputs.iterations)
            .p_cost(inputs.lanes)
            .output_len(TAG_LEN)
            .build()
            .unwrap();
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = [0u8; TAG_LEN];
        argon
            .hash_password_into(inputs.password, inputs.salt, &mut out)
            .unwrap();
        out
    }

    #[test]
    fn rfc9106_argon2id_vector() {
        // RFC 9106 §5.3: m=32 KiB, t=3, p=4, with secret and associated data.
        let vector = Inputs {
            memory_kib: 32,
            iterations: 3,
            lanes: 4,
            password: &[1; 32],
            salt: &[2; 16],
            secret: &[3; 8],
            associated: &[4; 12],
        };
        for kernel in kernels() {
            let tag = ours(&vector, kernel);
            let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(
                hex, "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659",
                "{kernel:?}"
            );
        }
    }

    #[test]
    fn every_kernel_matches_the_argon2_crate() {
        // Shapes with one and many lanes, lanes that do not divide the thread count, memory
        // that is not a multiple of 4p, and segments longer than one address block (128).
        for (memory_kib, iterations, lanes) in [
            (8, 1, 1),
            (64, 2, 1),
            (100, 3, 3),
            (1024, 1, 4),
            (2048, 3, 4),
            (4099, 2, 5),
            (8192, 1, 16),
        ] {
            let inputs = inputs(memory_kib, iterations, lanes, b"pass phrase");
            let expected = crate_tag(&inputs);
            for kernel in kernels() {
                assert_eq!(
                    ours(&inputs, kernel),
                    expected,
                    "{kernel:?} m={memory_kib} t={iterations} p={lanes}"
                );
            }
        }
    }

    #[test]
    fn kernels_fill_the_same_memory() {
        let Some(fast) = Kernel::fastest() else {
            // Nothing to compare on this processor; the portable kernel is checked above.
            return;
        };
        let inputs = inputs(1024, 2, 2, b"secret");
        let count = block_count(&inputs).unwrap();
        let mut a = vec![Block::new(); count];
        let mut b = vec![Block::new(); count];
        let (mut x, mut y) = ([0u8; TAG_LEN], [0u8; TAG_LEN]);
        hash_into(&inputs, Kernel::Portable, &mut a, &mut x).unwrap();
        hash_into(&inputs, fast, &mut b, &mut y).unwrap();
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            assert_eq!(a.as_ref(), b.as_ref(), "block {i}");
        }
        assert_eq!(x, y);
    }

    #[test]
    fn bad_shapes_are_refused() {
        let mut blocks = vec![Block::new(); 64];
        let mut out = [0u8; TAG_LEN];
        for (m, t, p) in [
            (7, 1, 1),
            (8, 0, 1),
            (8, 1, 0),
            (31, 1, 4),
            (1 << 30, 1, 1 << 24),
        ] {
            assert_eq!(
                hash_into(
                    &inputs(m, t, p, b"x"),
                    Kernel::Portable,
                    &mut blocks,
                    &mut out
                ),
                Err(Refused::Parameters),
                "m={m} t={t} p={p}"
            );
        }
        assert_eq!(
            hash_into(
                &inputs(128, 1, 1, b"x"),
                Kernel::Portable,
                &mut blocks,
                &mut out
            ),
            Err(Refused::Memory)
        );
        if Kernel::fastest().is_none() {
            assert_eq!(
                hash_into(
                    &inputs(8, 1, 1, b"x"),
                    Kernel::Avx512,
                    &mut blocks,
                    &mut out
                ),
                Err(Refused::Kernel)
            );
        }
    }
}
