// SPDX-License-Identifier: GPL-2.0

//! One GPU's VRAM as the misc device sees it: the BAR mapping (revoked when the GPU unbinds)
//! and a first-fit range allocator over the BAR that never hands out the descriptor page.

use core::ptr::NonNull;

use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::ffi::c_void;
use kernel::io::{Io, IoBackend, IoBase, MmioBackend};
use kernel::pci;
use kernel::prelude::*;
use kernel::sync::{aref::ARef, Arc, Mutex};

use crate::abi::VRAM_PAGE;
use crate::descriptor::DESCRIPTOR_PAGE_SIZE;
use crate::shim::hsa_p2p_zap_file_range;

/// The open file whose user mappings show a range, and where (its `mmap` offset).
///
/// # Invariants
///
/// `file` is a live `struct file`: the range is released (and this record dropped) when the
/// buffer goes, at the latest when the file is released.
struct UserMapping {
    file: NonNull<c_void>,
    mmap_offset: u64,
}

// SAFETY: a `struct file` pointer may be used from any thread; it is only passed to
// `unmap_mapping_range`, which takes its own locks.
unsafe impl Send for UserMapping {}

/// An allocated range of a BAR.
struct Range {
    offset: u64,
    size: u64,
    user: Option<UserMapping>,
}

/// The allocated ranges of one BAR, sorted by offset, disjoint, all inside
/// `[DESCRIPTOR_PAGE_SIZE, bar_size)`; `gone` once the GPU is unbound (no new user mapping).
struct Ranges {
    used: KVec<Range>,
    gone: bool,
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
                ranges <- kernel::new_mutex!(Ranges {
                    used: KVec::new(),
                    gone: false,
                }),
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

    /// Reserves `size` bytes (a multiple of [`VRAM_PAGE`]) first-fit after the descriptor page.
    pub(crate) fn allocate(&self, size: u64) -> Result<u64> {
        let mut ranges = self.ranges.lock();
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
        if end > self.size {
            return Err(ENOSPC);
        }
        ranges.used.reserve(1, GFP_KERNEL)?;
        ranges
            .used
            .insert_within_capacity(
                index,
                Range {
                    offset: start,
                    size,
                    user: None,
                },
            )
            .map_err(|_| ENOMEM)?;
        Ok(start)
    }

    /// Returns a range from [`Vram::allocate`].
    pub(crate) fn release(&self, offset: u64) {
        let mut ranges = self.ranges.lock();
        ranges.used.retain(|range| range.offset != offset);
    }

    /// Runs `map` (which maps the range at `offset` into user space through `file` at
    /// `mmap_offset`) unless the GPU is gone, and records the mapping so that
    /// [`Vram::revoke_user_mappings`] can remove it. `file` must stay open while the range is
    /// allocated (it owns the buffer).
    pub(crate) fn map_to_user(
        &self,
        offset: u64,
        file: NonNull<c_void>,
        mmap_offset: u64,
        map: impl FnOnce() -> Result,
    ) -> Result {
        let mut ranges = self.ranges.lock();
        if ranges.gone {
            return Err(ENODEV);
        }
        let range = ranges
            .used
            .iter_mut()
            .find(|range| range.offset == offset)
            .ok_or(ENOENT)?;
        map()?;
        // INVARIANT: the caller's file owns the buffer, so it outlives the range.
        range.user = Some(UserMapping { file, mmap_offset });
        Ok(())
    }

    /// The GPU is going: removes every user mapping of its buffers (later accesses fault with
    /// SIGBUS) and refuses new ones.
    pub(crate) fn revoke_user_mappings(&self) {
        let mut ranges = self.ranges.lock();
        ranges.gone = true;
        for range in ranges.used.iter() {
            if let Some(user) = &range.user {
                // SAFETY: `user.file` is live by the `UserMapping` invariant.
                unsafe { hsa_p2p_zap_file_range(user.file.as_ptr(), user.mmap_offset, range.size) };
            }
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
