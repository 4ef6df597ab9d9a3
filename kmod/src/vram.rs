// SPDX-License-Identifier: GPL-2.0

//! One GPU's VRAM as the misc device sees it: the BAR mapping (revoked when the GPU unbinds)
//! and a first-fit range allocator over the BAR that never hands out the descriptor page.

use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::io::{Io, IoBackend, IoBase, MmioBackend};
use kernel::pci;
use kernel::prelude::*;
use kernel::sync::{aref::ARef, Arc, Mutex};

use crate::abi::VRAM_PAGE;
use crate::descriptor::DESCRIPTOR_PAGE_SIZE;

/// An allocated range of a BAR.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) offset: u64,
    pub(crate) size: u64,
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
