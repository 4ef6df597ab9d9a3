// SPDX-License-Identifier: GPL-2.0

//! One GPU's VRAM as the misc device sees it: the BAR mapping (revoked when the GPU unbinds)
//! and a first-fit range allocator over the BAR that never hands out the descriptor page.

use core::ptr::NonNull;

use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::bindings;
use kernel::ffi::c_void;
use kernel::io::{Io, IoBackend, IoBase, MmioBackend};
use kernel::pci;
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::sync::{aref::ARef, Arc, Mutex};
use kernel::time::{delay::fsleep, Delta};

use crate::abi::VRAM_PAGE;
use crate::buffer::Buffer;
use crate::descriptor::DESCRIPTOR_PAGE_SIZE;
use crate::fault_points;
use crate::limits::GFP_USER_TRIGGERED;
use crate::shim::hsa_p2p_fatal_signal_pending;

/// The largest piece of VRAM zeroed while the BAR mapping is held (an RCU read-side section).
const ZERO_CHUNK: u64 = 1 << 20;

/// An allocated range of a BAR and the buffer that holds it.
struct Range {
    offset: u64,
    size: u64,
    buffer: Arc<Buffer>,
}

/// The allocated ranges of one BAR, sorted by offset, disjoint, all inside
/// `[DESCRIPTOR_PAGE_SIZE, bar_size)`.
struct Ranges {
    used: KVec<Range>,
}

/// A GPU's VRAM BAR.
///
/// # Invariants
///
/// `bar` maps the whole BAR `bar_index` of `pdev`, which starts at CPU physical address `phys`
/// and is `size` bytes long; every range handed out by [`Vram::allocate`] lies inside it.
#[pin_data]
pub(crate) struct Vram {
    pdev: ARef<pci::Device>,
    bar: pci::DevresBar,
    phys: u64,
    size: u64,
    /// Set (under `ranges`' lock) when the GPU starts to unbind: no new buffer, no new peer
    /// mapping with this GPU as the accessor.
    unbound: Atomic<bool>,
    #[pin]
    ranges: Mutex<Ranges>,
}

impl Vram {
    /// Takes over the mapping `bar` of BAR `bar_index` of `pdev`.
    pub(crate) fn new(
        pdev: &pci::Device,
        bar: pci::DevresBar,
        bar_index: u32,
    ) -> Result<Arc<Self>> {
        let phys = pdev.resource_start(bar_index)?;
        let size = pdev.resource_len(bar_index)?;
        Arc::pin_init(
            try_pin_init!(Self {
                pdev: pdev.into(),
                bar,
                phys,
                size,
                unbound: Atomic::new(false),
                ranges <- kernel::new_mutex!(Ranges { used: KVec::new() }),
            }),
            GFP_KERNEL,
        )
    }

    /// The PCI device.
    pub(crate) fn pdev(&self) -> &pci::Device {
        &self.pdev
    }

    /// CPU physical address of `offset` in the BAR.
    pub(crate) fn phys(&self, offset: u64) -> u64 {
        self.phys + offset
    }

    /// Whether the GPU has started to unbind.
    pub(crate) fn is_unbound(&self) -> bool {
        self.unbound.load(Relaxed)
    }

    /// Allocates a buffer of `size` bytes (a multiple of [`VRAM_PAGE`]) first-fit after the
    /// descriptor page, for the open file `file` under `handle`, and zeroes it: VRAM is handed
    /// out cleared, as KFD does, never with a previous owner's data.
    pub(crate) fn allocate(
        vram: &Arc<Self>,
        size: u64,
        handle: u32,
        file: NonNull<c_void>,
    ) -> Result<Arc<Buffer>> {
        let buffer = Self::reserve(vram, size, handle, file)?;
        if let Err(error) = vram.zero(buffer.offset, size) {
            vram.free(&buffer);
            return Err(error);
        }
        Ok(buffer)
    }

    fn reserve(
        vram: &Arc<Self>,
        size: u64,
        handle: u32,
        file: NonNull<c_void>,
    ) -> Result<Arc<Buffer>> {
        let mut ranges = vram.ranges.lock();
        if vram.is_unbound() {
            return Err(ENODEV);
        }
        let mut start = DESCRIPTOR_PAGE_SIZE.max(VRAM_PAGE);
        let mut index = 0;
        for used in ranges.used.iter() {
            if used
                .offset
                .checked_sub(start)
                .is_some_and(|gap| gap >= size)
            {
                break;
            }
            start = used.offset + used.size;
            index += 1;
        }
        let end = start.checked_add(size).ok_or(ENOSPC)?;
        if end > vram.size {
            return Err(ENOSPC);
        }
        ranges.used.reserve(1, GFP_USER_TRIGGERED)?;
        // INVARIANT: `[start, end)` lies in the BAR and overlaps no other range.
        let buffer = Buffer::new(vram.clone(), start, size, handle, file)?;
        ranges
            .used
            .insert_within_capacity(
                index,
                Range {
                    offset: start,
                    size,
                    buffer: buffer.clone(),
                },
            )
            .map_err(|_| ENOMEM)?;
        Ok(buffer)
    }

    /// Zeroes `[offset, offset + size)` chunk by chunk, stopping on a fatal signal.
    fn zero(&self, offset: u64, size: u64) -> Result {
        let mut done = 0;
        while done < size {
            let chunk = (size - done).min(ZERO_CHUNK);
            let at = offset + done;
            self.with_mapping(|base, len| {
                if at.checked_add(chunk).is_none_or(|end| end > len) {
                    return Err(ERANGE);
                }
                // SAFETY: `[at, at + chunk)` lies inside the live BAR mapping (checked above).
                unsafe {
                    bindings::memset_io(base.wrapping_add(at as usize).cast(), 0, chunk as usize)
                };
                Ok(())
            })??;
            done += chunk;
            let pause = fault_points::zero_chunk_delay_ms();
            if pause > 0 {
                fsleep(Delta::from_millis(i64::from(pause)));
            }
            // SAFETY: no arguments; reads the current task's signal state.
            if unsafe { hsa_p2p_fatal_signal_pending() } {
                return Err(EINTR);
            }
        }
        Ok(())
    }

    /// Ends `buffer` (see [`Buffer::revoke`]) and returns its range.
    pub(crate) fn free(&self, buffer: &Buffer) {
        buffer.revoke();
        let gone = {
            let mut ranges = self.ranges.lock();
            let position = ranges
                .used
                .iter()
                .position(|range| core::ptr::eq(&*range.buffer, buffer));
            position.and_then(|index| ranges.used.remove(index).ok())
        };
        drop(gone);
    }

    /// The GPU is unbinding: refuses new buffers and peer mappings through it, and revokes
    /// every buffer on it (user mappings and peer mappings gone before unbind completes).
    pub(crate) fn revoke_all(&self) {
        let ranges = self.ranges.lock();
        self.unbound.store(true, Relaxed);
        for range in ranges.used.iter() {
            range.buffer.revoke();
        }
    }

    /// The GPU `accessor` is unbinding: removes the peer mappings it holds of this GPU's
    /// buffers.
    pub(crate) fn drop_peer_mappings_of(&self, accessor: &Vram) {
        let ranges = self.ranges.lock();
        for range in ranges.used.iter() {
            range.buffer.drop_peer_mapping_of(accessor);
        }
    }

    /// Runs `f` on the BAR's kernel mapping as a raw I/O pointer and its length, or fails with
    /// `ENODEV` once the GPU is unbound. `f` runs in an RCU read-side section: it must not sleep.
    pub(crate) fn with_mapping<R>(&self, f: impl FnOnce(*mut u8, u64) -> R) -> Result<R> {
        let bar = self.bar.try_access().ok_or(ENODEV)?;
        let view = (&*bar).as_view();
        let len = (&*bar).size() as u64;
        let base = MmioBackend::as_ptr(view).cast::<u8>();
        Ok(f(base, len.min(self.size)))
    }
}
