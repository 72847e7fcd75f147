//! The Argon2 working memory, mapped so that touching it for the first time costs less.
//!
//! At the default cost the KDF fills 256 MiB that a fresh process has never touched. With 4 KiB
//! pages the kernel takes 65,536 page faults to hand that memory over, which measured about as
//! long as a third of the hashing itself (CHANGELOG.md, 2026-11-29). Here the memory is an anonymous
//! mapping aligned to 2 MiB and advised `MADV_HUGEPAGE`, so the kernel backs it with 128
//! transparent huge pages instead. The advice is a hint: where the kernel has no transparent
//! huge pages the mapping still works, with small pages. The blocks are the same either way, so
//! the derived key is bit-identical to the plain `argon2` path (checked by the tests in
//! [`crate::kdf`] against RFC 9106 §5.3 and against `Argon2::hash_password_into`).
//!
//! This module is one of the crate's three exceptions to `deny(unsafe_code)`: `mmap` and `munmap`
//! have no safe wrapper, the huge-page advice (in `os`) takes a raw pointer, and turning the
//! mapping into a `&mut [Block]` needs `from_raw_parts_mut`. Each `unsafe` block states why it holds.
#![allow(unsafe_code)]

use argon2::Block;
use rustix::mm::{self, MapFlags, ProtFlags};
use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::{Mutex, PoisonError};
use zeroize::Zeroize;

/// Size of a transparent huge page on x86-64 and most aarch64 kernels.
const HUGE_PAGE: usize = 2 << 20;

/// Below this many blocks (16 MiB) starting a thread to share the wipe costs more than it saves.
const WIPE_ALONE_BLOCKS: usize = 16 * 1024;

/// Argon2 blocks in a private anonymous mapping, wiped and unmapped on drop.
pub struct BlockMemory {
    /// Start of the whole mapping, as returned by `mmap`.
    map: NonNull<c_void>,
    /// Length of the whole mapping.
    map_len: usize,
    /// First block: the mapping's first 2 MiB boundary.
    blocks: NonNull<Block>,
    /// Number of blocks.
    count: usize,
}

impl BlockMemory {
    /// Maps `count` zeroed blocks. `None` if the mapping cannot be made (the caller then falls
    /// back to the heap).
    pub fn new(count: usize) -> Option<BlockMemory> {
        let len = count.checked_mul(size_of::<Block>())?;
        if len == 0 {
            return None;
        }
        let map_len = len.checked_add(HUGE_PAGE)?;
        // SAFETY: a new private anonymous mapping at an address the kernel picks aliases
        // nothing; the result is checked before use.
        let map = unsafe {
            mm::mmap_anonymous(
                std::ptr::null_mut(),
                map_len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }
        .ok()?;
        let map = NonNull::new(map)?;
        let offset = map.as_ptr().align_offset(HUGE_PAGE);
        if offset + len > map_len {
            // Cannot happen (mmap returns page-aligned addresses), but never step outside.
            // SAFETY: `map`/`map_len` is the mapping just made, and nothing refers to it.
            let _ = unsafe { mm::munmap(map.as_ptr(), map_len) };
            return None;
        }
        // SAFETY: `offset + len <= map_len`, so the pointer stays inside the mapping.
        let start = unsafe { map.as_ptr().cast::<u8>().add(offset) };
        // SAFETY: `start..start+len` is inside the mapping just made (checked above).
        unsafe { crate::os::advise_huge_pages(start.cast(), len) };
        Some(BlockMemory {
            map,
            map_len,
            blocks: NonNull::new(start.cast::<Block>())?,
            count,
        })
    }

    /// The blocks, for `Argon2::hash_password_into_with_memory`.
    pub fn blocks(&mut self) -> &mut [Block] {
        // SAFETY: `blocks` is 2 MiB-aligned (so aligned for `Block`), inside our mapping for
        // `count` blocks, readable and writable, and zero-filled by the kernel, which is a valid
        // `Block` (plain `u64`s). The mapping lives as long as `self`, and `&mut self` makes this
        // borrow the only one.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_ptr(), self.count) }
    }
}

impl Drop for BlockMemory {
    fn drop(&mut self) {
        // The blocks of the last pass determine the derived key: wipe them, as the reference
        // implementation does, before the pages go back to the kernel.
        wipe(self.blocks());
        // SAFETY: `map`/`map_len` is exactly the mapping made in `new`, and the borrow above has
        // ended, so no reference into it remains.
        let _ = unsafe { mm::munmap(self.map.as_ptr(), self.map_len) };
    }
}

/// Zeroizes `blocks`. At the default cost that is 256 MiB, so a second thread takes half of a
/// large memory where it can be started.
fn wipe(blocks: &mut [Block]) {
    let zeroize = |blocks: &mut [Block]| blocks.iter_mut().for_each(Zeroize::zeroize);
    let (first, second) = blocks.split_at_mut(blocks.len() / 2);
    let share = second.len() >= WIPE_ALONE_BLOCKS;
    // Whoever takes the second half wipes it: the helper thread, or this thread when the helper
    // could not start or has not started by the time the first half is done.
    let second = Mutex::new(Some(second));
    let take = || second.lock().unwrap_or_else(PoisonError::into_inner).take();
    std::thread::scope(|scope| {
        if share {
            let helper = || {
                if let Some(half) = take() {
                    zeroize(half);
                }
            };
            let _ = std::thread::Builder::new().spawn_scoped(scope, helper);
        }
        zeroize(first);
        if let Some(half) = take() {
            zeroize(half);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_zeroed_aligned_and_writable() {
        let mut m = BlockMemory::new(3 * 1024 + 5).expect("mapping");
        let blocks = m.blocks();
        assert_eq!(blocks.len(), 3 * 1024 + 5);
        assert_eq!(blocks.as_ptr() as usize % HUGE_PAGE, 0);
        assert!(blocks.iter().all(|b| b.as_ref().iter().all(|&w| w == 0)));
        blocks[3 * 1024 + 4].as_mut()[127] = 7;
        assert_eq!(blocks[3 * 1024 + 4].as_ref()[127], 7);
    }

    #[test]
    fn wipe_clears_every_block_small_or_shared() {
        for count in [1, 3, WIPE_ALONE_BLOCKS * 2 - 1, WIPE_ALONE_BLOCKS * 2 + 1] {
            let mut blocks = vec![Block::new(); count];
            for block in &mut blocks {
                block.as_mut().fill(u64::MAX);
            }
            wipe(&mut blocks);
            assert!(
                blocks.iter().all(|b| b.as_ref().iter().all(|&w| w == 0)),
                "{count} blocks"
            );
        }
    }

    #[test]
    fn zero_blocks_is_refused() {
        assert!(BlockMemory::new(0).is_none());
        assert!(BlockMemory::new(usize::MAX / 2).is_none());
    }
}
