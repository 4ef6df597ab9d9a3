// SPDX-License-Identifier: GPL-2.0

//! A VRAM buffer and the rule that keeps user space and peers from seeing VRAM it does not own.
//!
//! A [`Buffer`] is shared (reference counted) by the file that allocated it, the allocator of
//! its GPU (so that unbind can reach it) and every user mapping of it (each VMA holds a
//! reference, see [`crate::user_mapping`]). Whether it may still be used is one flag under the
//! buffer's lock, `live`:
//!
//! - page faults insert a PTE only while `live`, under the lock ([`Buffer::pfn_for_fault`]);
//! - peer mappings are added only while `live` and while the accessor is bound, under the lock;
//! - a copy registers every chunk as in flight under the lock while `live`
//!   ([`Buffer::copy_access`]), and unregisters it when the chunk is done.
//!
//! [`Buffer::revoke`] (FREE, close, unbind of the owner) clears `live`, waits until no copy
//! chunk is in flight, removes the peer mappings and zaps every PTE of the buffer; only then
//! does the caller return the range to the allocator. Since a fault that saw `live` inserted
//! its PTE before the flag was cleared, the zap that follows removes it: no process keeps a
//! view of VRAM that is freed, reused or unbound, whatever the interleaving of `mmap`, faults,
//! FREE and unbind. Chunks in flight are counted rather than run under the lock so that the
//! copy engines can move parts of one copy at the same time.

use core::ptr::NonNull;

use kernel::alloc::KVec;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex, MutexGuard};

use crate::abi;
use crate::shim::{hsa_p2p_unmap_peer, hsa_p2p_zap_file_range, raw_pci_dev};
use crate::vram::Vram;

/// A buffer's mapping for a peer GPU (a DMA mapping on the accessor, or a bus address).
pub(crate) struct PeerMapping {
    /// The accessor's VRAM, which keeps the accessor's device alive.
    pub(crate) accessor: Arc<Vram>,
    pub(crate) map_type: c_int,
    pub(crate) address: u64,
    pub(crate) size: u64,
}

impl Drop for PeerMapping {
    fn drop(&mut self) {
        // SAFETY: `address` and `size` are those `hsa_p2p_map_peer` returned for the accessor,
        // whose device is kept alive by `accessor`. Every mapping is dropped while the accessor
        // is still bound: unbind of the accessor removes all of them before it completes
        // (`Vram::drop_peer_mappings_of`), and none is added once it has started.
        unsafe {
            hsa_p2p_unmap_peer(
                raw_pci_dev(self.accessor.pdev()),
                self.map_type,
                self.address,
                self.size,
            )
        };
    }
}

/// What the buffer's lock protects.
pub(crate) struct BufferState {
    live: bool,
    /// Copy chunks in flight on the buffer ([`Buffer::copy_access`]).
    copies: u32,
    /// The peer mappings, at most one per accessor.
    pub(crate) peers: KVec<PeerMapping>,
}

impl BufferState {
    /// `Ok` while the buffer may be used, the ABI's "unknown GPU" error once it is revoked
    /// (its GPU unbound; a freed buffer has no handle any more).
    pub(crate) fn check_live(&self) -> Result {
        if self.live {
            Ok(())
        } else {
            Err(Error::from_errno(-abi::AbiError::UnknownGpu.errno()))
        }
    }
}

/// The open file through which a buffer is mapped into user space.
///
/// # Invariants
///
/// `file` is a live `struct file` while the buffer is live: the buffer is revoked before the
/// file that allocated it is released.
struct OwningFile(NonNull<c_void>);

// SAFETY: a `struct file` pointer may be used from any thread; it is only passed to
// `unmap_mapping_range`, which takes its own locks.
unsafe impl Send for OwningFile {}
// SAFETY: as above; `&OwningFile` only reads the pointer.
unsafe impl Sync for OwningFile {}

/// A VRAM buffer.
///
/// # Invariants
///
/// `[offset, offset + size)` lies inside `vram`'s BAR and stays reserved for this buffer while
/// it is live (the allocator releases it only after [`Buffer::revoke`]).
#[pin_data]
pub(crate) struct Buffer {
    pub(crate) handle: u32,
    pub(crate) vram: Arc<Vram>,
    pub(crate) offset: u64,
    pub(crate) size: u64,
    file: OwningFile,
    #[pin]
    state: Mutex<BufferState>,
    /// Notified when the last copy chunk in flight ends.
    #[pin]
    copies_done: CondVar,
}

impl Buffer {
    /// A live buffer over the range `[offset, offset + size)` of `vram`, just reserved for it,
    /// owned by the open file `file`.
    pub(crate) fn new(
        vram: Arc<Vram>,
        offset: u64,
        size: u64,
        handle: u32,
        file: NonNull<c_void>,
    ) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                handle,
                vram,
                offset,
                size,
                file: OwningFile(file),
                state <- kernel::new_mutex!(BufferState {
                    live: true,
                    copies: 0,
                    peers: KVec::new(),
                }),
                copies_done <- kernel::new_condvar!(),
            }),
            crate::limits::GFP_USER_TRIGGERED,
        )
    }

    /// Locks the buffer's state.
    pub(crate) fn lock(&self) -> MutexGuard<'_, BufferState> {
        self.state.lock()
    }

    /// The page frame that backs page `page` of the buffer, for a fault that inserts it while
    /// the lock is held by `insert`; `None` (SIGBUS) once the buffer is revoked or when `page`
    /// lies outside it.
    pub(crate) fn pfn_for_fault<R>(&self, page: u64, insert: impl FnOnce(u64) -> R) -> Option<R> {
        let state = self.state.lock();
        if !state.live || page >= self.size / abi::VRAM_PAGE {
            return None;
        }
        let pfn = self.vram.phys(self.offset + page * abi::VRAM_PAGE) >> kernel::page::PAGE_SHIFT;
        Some(insert(pfn))
    }

    /// Registers a copy chunk on the buffer while it is live: the buffer is not revoked (its
    /// range neither released nor unbound) until the returned guard is dropped. Chunks are
    /// short (at most `COPY_CHUNK` bytes), so revoke waits for at most one.
    pub(crate) fn copy_access(&self) -> Result<CopyAccess<'_>> {
        let mut state = self.state.lock();
        state.check_live()?;
        state.copies += 1;
        Ok(CopyAccess(self))
    }

    /// Ends the buffer's use: no new fault, peer mapping or copy chunk; waits for the copy
    /// chunks in flight, removes its peer mappings and every user PTE. Idempotent (a second
    /// caller also waits for the chunks). The range may be released after this returns.
    pub(crate) fn revoke(&self) {
        let peers = {
            let mut state = self.state.lock();
            let was_live = core::mem::replace(&mut state.live, false);
            while state.copies > 0 {
                self.copies_done.wait(&mut state);
            }
            if !was_live {
                return;
            }
            core::mem::take(&mut state.peers)
        };
        drop(peers);
        // SAFETY: the buffer was live until just now, so its file is live (invariant of
        // `OwningFile`): the callers revoke before the file is released.
        unsafe {
            hsa_p2p_zap_file_range(
                self.file.0.as_ptr(),
                abi::mmap_offset(self.handle),
                self.size,
            )
        };
    }

    /// Removes the peer mapping for `accessor`'s GPU, if any.
    pub(crate) fn drop_peer_mapping_of(&self, accessor: &Vram) {
        let gone = {
            let mut state = self.state.lock();
            let position = state
                .peers
                .iter()
                .position(|mapping| core::ptr::eq(&*mapping.accessor, accessor));
            position.and_then(|index| state.peers.remove(index).ok())
        };
        drop(gone);
    }
}

/// A copy chunk in flight on a buffer ([`Buffer::copy_access`]); unregisters it on drop.
pub(crate) struct CopyAccess<'a>(&'a Buffer);

impl Drop for CopyAccess<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.copies -= 1;
        if state.copies == 0 {
            self.0.copies_done.notify_all();
        }
    }
}
