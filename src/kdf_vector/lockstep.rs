//! The segment loop every kernel runs: two lanes in lockstep, each one's next reference block
//! prefetched while the other computes.
//!
//! In the data-dependent part of Argon2id the block a new block refers to is known only once the
//! block before it is computed, and it is a random one of the whole memory, so it is almost
//! never in the cache. One lane alone would wait for it at every block. Two lanes of the same
//! slice do not refer to each other's current segment (RFC 9106 §3.4.1.2), so a thread that
//! fills both can ask for one lane's next reference block and compute the other lane's block
//! while it arrives.

use super::{Addresses, Memory, Segment, segment_start};
use argon2::Block;

/// A block held in vector registers, and what the loop does with it. Every method may only be
/// called where the processor has the kernel's instruction set, hence `unsafe`.
pub(super) trait Vector {
    /// One block: 128 words.
    type State: Copy;

    /// Loads the block at `block`.
    ///
    /// # Safety
    /// The instruction set is present; `block` points to 128 readable words, 64-byte aligned,
    /// that no thread writes meanwhile.
    unsafe fn load(block: *const u64) -> Self::State;

    /// Stores `state` at `block`.
    ///
    /// # Safety
    /// The instruction set is present; `block` points to 128 writable words, 64-byte aligned,
    /// that no other thread reads or writes meanwhile.
    unsafe fn store(block: *mut u64, state: &Self::State);

    /// Word by word `a XOR b`.
    ///
    /// # Safety
    /// The instruction set is present.
    unsafe fn xor(a: &Self::State, b: &Self::State) -> Self::State;

    /// Argon2's permutation P over the eight rows, then over the eight columns (RFC 9106 §3.6).
    ///
    /// # Safety
    /// The instruction set is present.
    unsafe fn permute(state: &mut Self::State);

    /// The block's first word.
    ///
    /// # Safety
    /// The instruction set is present.
    unsafe fn first_word(state: &Self::State) -> u64;

    /// Asks for the block at `block` to be brought into the cache. A hint: it never faults.
    ///
    /// # Safety
    /// The instruction set is present.
    unsafe fn prefetch(block: *const u64);
}

/// G(0, y) = P(y) XOR y, for the address blocks.
///
/// # Safety
/// The instruction set of `V` is present.
#[inline(always)]
unsafe fn compress_zero<V: Vector>(y: &Block) -> Block {
    let mut out = Block::new();
    // SAFETY: `Block` is 128 words aligned to 64 bytes, and both blocks are this thread's own;
    // the caller vouches for the instruction set.
    unsafe {
        let r = V::load(y.as_ref().as_ptr());
        let mut q = r;
        V::permute(&mut q);
        V::store(out.as_mut().as_mut_ptr(), &V::xor(&q, &r));
    }
    out
}

/// Fills the segments `at`, all of one slice and in different lanes, two at a time.
///
/// # Safety
/// The instruction set of `V` is present; `memory` and `at` follow the rules of [`Memory`].
#[inline(always)]
pub(super) unsafe fn fill<V: Vector>(memory: &Memory, at: &[Segment]) {
    for pair in at.chunks(2) {
        match *pair {
            // SAFETY: passed on from the caller.
            [a, b] => unsafe { fill_segments::<V, 2>(memory, [a, b]) },
            _ => {
                for &a in pair {
                    // SAFETY: passed on from the caller.
                    unsafe { fill_segments::<V, 1>(memory, [a]) }
                }
            }
        }
    }
}

/// Fills the segments `at` in lockstep, keeping each lane's previous block in registers.
///
/// # Safety
/// As for [`fill`].
#[inline(always)]
unsafe fn fill_segments<V: Vector, const N: usize>(memory: &Memory, at: [Segment; N]) {
    let shape = &memory.shape;
    let mut first = 0;
    let mut current = [0; N];
    let mut previous = [0; N];
    for k in 0..N {
        (first, current[k], previous[k]) = segment_start(shape, at[k]);
    }
    // SAFETY: each `previous` is a block of its own lane, which no other thread writes during
    // this slice (see `Memory`); blocks are 64-byte aligned (`Block` is `align(64)`).
    let mut states = previous.map(|block| unsafe { V::load(memory.block(block)) });
    let mut addresses = at.map(|at| Addresses::new(shape, at));
    let mut references = [std::ptr::null(); N];
    for k in 0..N {
        // SAFETY (this and every block below): passed on from the caller.
        references[k] =
            unsafe { reference::<V>(memory, at[k], first, &states[k], &mut addresses[k]) };
        unsafe { V::prefetch(references[k]) };
    }
    for index in first..shape.segment_length {
        for k in 0..N {
            let target = memory.block(current[k]);
            // SAFETY: the reference block is outside what other threads write in this slice,
            // and the target is this lane's own block in this segment (see `Memory`); both are
            // aligned like every block.
            unsafe {
                let r = V::xor(&states[k], &V::load(references[k]));
                // Version 0x13: from the second pass on, the new block is XORed into the old.
                let mut keep = r;
                if at[k].pass != 0 {
                    keep = V::xor(&keep, &V::load(target));
                }
                let mut q = r;
                V::permute(&mut q);
                states[k] = V::xor(&q, &keep);
                V::store(target, &states[k]);
            }
            current[k] += 1;
            if index + 1 < shape.segment_length {
                references[k] = unsafe {
                    reference::<V>(memory, at[k], index + 1, &states[k], &mut addresses[k])
                };
                unsafe { V::prefetch(references[k]) };
            }
        }
    }
    // Each state is the last block of its segment; after the last pass it is part of the key's
    // preimage. Copies the compiler spilled to the stack are not reached (neither the reference
    // implementation nor the `argon2` crate wipes those).
    for state in &mut states {
        // SAFETY: `state` is a valid, aligned place; XOR with itself gives an all-zero state.
        unsafe { std::ptr::write_volatile(state, V::xor(state, state)) };
    }
}

/// The block that block `index` of segment `at` refers to: chosen by the first word of the
/// block before it (`state`), or by the address block in data-independent segments.
///
/// # Safety
/// The instruction set of `V` is present.
#[inline(always)]
unsafe fn reference<V: Vector>(
    memory: &Memory,
    at: Segment,
    index: usize,
    state: &V::State,
    addresses: &mut Option<Addresses>,
) -> *const u64 {
    let rand = match addresses {
        // SAFETY (both): passed on from the caller.
        Some(addresses) => addresses.get(index, |input| unsafe {
            compress_zero::<V>(&compress_zero::<V>(input))
        }),
        None => unsafe { V::first_word(state) },
    };
    memory
        .block(memory.shape.reference(at, index, rand))
        .cast_const()
}
