//! Argon2id (RFC 9106, version 0x13) with block functions written for AVX-512 and AVX2.
//!
//! The `argon2` crate computes its block function G from portable Rust that the compiler
//! vectorises for AVX2 at best; at the default cost that function was two thirds of a cold
//! unlock (CHANGELOG.md, 2026-11-29), and once it was vectorised by hand most of what remained was
//! waiting for memory. Here a thread with more than one lane in a slice (4 lanes on 2 cores, the
//! default cost on a small machine) fills two of them in lockstep ([`lockstep`]): while it
//! computes a block of one lane, the random reference block the other lane needs next is
//! already on its way into the cache. With AVX-512 a whole 1 KiB block fits in 16 of the 32
//! vector registers, and the rotations and 32-bit multiplications are single instructions on
//! eight words at once ([`avx512`]); AVX2 does four words at once ([`avx2`]).
//! The layouts of the permutation follow the reference implementation's vector code
//! (phc-winner-argon2, `blamka-round-opt.h`).
//!
//! Everything else is RFC 9106 as written: H0 and H' over the `blake2` crate's BLAKE2b, the
//! indexing of §3.4, four slices per pass with the lanes of a slice filled in parallel, and the
//! final XOR of the lanes' last blocks. Only Argon2id, version 0x13 and 32-byte tags are
//! supported, which is all jeton derives; [`crate::kdf`] uses the `argon2` crate for everything
//! else and on processors with neither instruction set.
//!
//! The same loop also runs with a portable block function ([`Kernel::Portable`]), so the tests
//! check the indexing, the address blocks and the lockstep on every machine (on one, two and
//! three threads, so lanes are filled both in pairs and alone): each kernel against the
//! `argon2` crate for several shapes, against RFC 9106 §5.3's test vector, and block by block
//! against the portable one. A vector kernel is checked only where the processor has its
//! instructions (the machine of docs/PERFORMANCE.md has both); its prefetches are hints that
//! cannot change a result, and the portable kernel's do nothing.
//!
//! This module opts out of the crate's `deny(unsafe_code)`: the vector loads and stores take
//! raw pointers, functions compiled for an instruction set may only run where it exists, and
//! the lanes of a slice are written by several threads at once through one pointer to the
//! memory. Each `unsafe` block states why it holds.
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
    /// AVX-512 (`avx512f`).
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX2.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// Plain Rust: the reference the tests check the others against, on every machine.
    Portable,
}

impl Kernel {
    /// Every kernel, fastest first.
    pub const ALL: &[Kernel] = &[
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512,
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2,
        Kernel::Portable,
    ];

    /// The fastest vector kernel this processor can run, if any.
    pub fn fastest() -> Option<Kernel> {
        [
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2,
        ]
        .into_iter()
        .find(|kernel| kernel.available())
    }

    /// True when this processor can run the kernel.
    pub fn available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            Kernel::Portable => true,
        }
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
/// block count of `inputs`, see [`block_count`]) as the working memory, with one thread per
/// lane up to the number of cores.
pub fn hash_into(
    inputs: &Inputs<'_>,
    kernel: Kernel,
    blocks: &mut [Block],
    out: &mut [u8; TAG_LEN],
) -> Result<(), Refused> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    hash_into_threads(inputs, kernel, blocks, out, cores)
}

/// [`hash_into`] on at most `threads` threads (at least one). With fewer threads than lanes a
/// thread fills two lanes in lockstep ([`lockstep`]).
fn hash_into_threads(
    inputs: &Inputs<'_>,
    kernel: Kernel,
    blocks: &mut [Block],
    out: &mut [u8; TAG_LEN],
    threads: usize,
) -> Result<(), Refused> {
    if !kernel.available() {
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
    let threads = threads.clamp(1, shape.lanes);
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
        .chain_update(bytes.as_slice())
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
        let next = Blake2b512::digest(link.as_slice());
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
/// Within a slice each thread writes only the current segments of its own lanes, and reads
/// any block of its own lanes, or blocks of other lanes outside the current slice (RFC 9106
/// §3.4.1.2 keeps the segment being filled out of other lanes' reference sets). So no block is
/// written by one thread while another reads or writes it, and the end of each slice is a join
/// of all threads, which orders the writes of one slice before the reads of the next.
struct Memory {
    words: *mut u64,
    shape: Shape,
}

// SAFETY: see the type's documentation: threads touch disjoint blocks within a slice, and
// slices are separated by joining every thread.
unsafe impl Sync for Memory {}

impl Memory {
    /// The first word of block `index`. Only an `index` below the block count (which
    /// [`Shape::reference`] and [`segment_start`] always give) points into the memory.
    fn block(&self, index: usize) -> *mut u64 {
        debug_assert!(index < self.shape.block_count());
        self.words.wrapping_add(index * WORDS)
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
        match kernel {
            // SAFETY (all three): `hash_into` checked that this processor can run the kernel.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { avx512::fill(memory, &mine) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { avx2::fill(memory, &mine) },
            Kernel::Portable => unsafe { lockstep::fill::<portable::Portable>(memory, &mine) },
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
    input: Block,
    block: Block,
}

impl Addresses {
    /// `None` where the segment indexes by the previous block's content instead.
    fn new(shape: &Shape, at: Segment) -> Option<Addresses> {
        if at.pass != 0 || at.slice >= SLICES / 2 {
            return None;
        }
        let mut input = Block::new();
        input.as_mut()[..6].copy_from_slice(&[
            at.pass as u64,
            at.lane as u64,
            at.slice as u64,
            shape.block_count() as u64,
            shape.passes as u64,
            u64::from(ARGON2ID),
        ]);
        Some(Addresses {
            input,
            block: Block::new(),
        })
    }

    /// The random bits for block `index` of the segment; `next` computes G(0, G(0, input)).
    /// Indices must not decrease from one call to the next (the same one twice is allowed): the
    /// address block for each run of 128 indices is computed once, as the counter in the input
    /// block requires.
    #[inline(always)]
    fn get(&mut self, index: usize, next: impl Fn(&Block) -> Block) -> u64 {
        while self.input.as_ref()[6] <= (index / ADDRESSES) as u64 {
            self.input.as_mut()[6] += 1;
            self.block = next(&self.input);
        }
        self.block.as_ref()[index % ADDRESSES]
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod lockstep;
mod portable;

/// RFC 9106's Argon2id test vector, for the tests here and in [`crate::kdf`].
#[cfg(test)]
pub(crate) mod rfc9106 {
    use super::Inputs;

    /// §5.3: m=32 KiB, t=3, p=4, with secret and associated data; the tag in hex.
    pub(crate) fn vector() -> (Inputs<'static>, &'static str) {
        let inputs = Inputs {
            memory_kib: 32,
            iterations: 3,
            lanes: 4,
            password: &[1; 32],
            salt: &[2; 16],
            secret: &[3; 8],
            associated: &[4; 12],
        };
        let tag = "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659";
        (inputs, tag)
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

    /// Every kernel this processor can run: always the portable one.
    fn kernels() -> Vec<Kernel> {
        Kernel::ALL
            .iter()
            .copied()
            .filter(|k| k.available())
            .collect()
    }

    fn ours(inputs: &Inputs<'_>, kernel: Kernel, threads: usize) -> [u8; TAG_LEN] {
        let mut blocks = vec![Block::new(); block_count(inputs).unwrap()];
        let mut out = [0u8; TAG_LEN];
        hash_into_threads(inputs, kernel, &mut blocks, &mut out, threads).unwrap();
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
        let (vector, expected) = rfc9106::vector();
        for kernel in kernels() {
            let tag = ours(&vector, kernel, 2);
            let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, expected, "{kernel:?}");
        }
    }

    #[test]
    fn every_kernel_matches_the_argon2_crate() {
        // Shapes with one and many lanes, lanes that do not divide the thread count, memory
        // that is not a multiple of 4p, and segments longer than one address block (128); on
        // one, two and three threads, so that lanes are filled in pairs and alone whatever the
        // number of cores.
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
                for threads in 1..=3 {
                    assert_eq!(
                        ours(&inputs, kernel, threads),
                        expected,
                        "{kernel:?} m={memory_kib} t={iterations} p={lanes}, {threads} threads"
                    );
                }
            }
        }
    }

    #[test]
    fn kernels_fill_the_same_memory() {
        let inputs = inputs(1024, 2, 2, b"secret");
        let count = block_count(&inputs).unwrap();
        let mut expected = vec![Block::new(); count];
        let mut expected_tag = [0u8; TAG_LEN];
        hash_into_threads(
            &inputs,
            Kernel::Portable,
            &mut expected,
            &mut expected_tag,
            1,
        )
        .unwrap();
        for kernel in kernels() {
            let mut blocks = vec![Block::new(); count];
            let mut tag = [0u8; TAG_LEN];
            hash_into(&inputs, kernel, &mut blocks, &mut tag).unwrap();
            for (i, (a, b)) in expected.iter().zip(&blocks).enumerate() {
                assert_eq!(a.as_ref(), b.as_ref(), "{kernel:?}, block {i}");
            }
            assert_eq!(tag, expected_tag, "{kernel:?}");
        }
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
        for &kernel in Kernel::ALL.iter().filter(|k| !k.available()) {
            assert_eq!(
                hash_into(&inputs(8, 1, 1, b"x"), kernel, &mut blocks, &mut out),
                Err(Refused::Kernel)
            );
        }
    }
}
