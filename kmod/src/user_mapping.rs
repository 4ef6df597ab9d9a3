// SPDX-License-Identifier: GPL-2.0

//! User mappings of buffers: PTEs are inserted at fault time, never at `mmap`.
//!
//! Filling the PTEs in `mmap` (`io_remap_pfn_range`) races with FREE and unbind: the VMA is
//! linked into the file's address space only after `f_op->mmap` returns, so a zap in between
//! misses it and the VMA keeps pointing at VRAM that is then reused. Here `mmap` only records
//! the buffer in the VMA (holding a reference, so a fault always finds it); the fault handler
//! inserts the page frame under the buffer's lock and only while the buffer is live
//! ([`Buffer::pfn_for_fault`]). A VMA is linked before any fault can happen, so the zap of
//! [`Buffer::revoke`] sees every PTE a fault inserted, and later faults get SIGBUS.
//!
//! The VMA operations are written against the C `vm_operations_struct` (the 7.3 `kernel` crate
//! has no abstraction for them); the only C shim is `hsa_p2p_vma_pfnmap_wc` (static inlines).

use kernel::bindings;
use kernel::ffi::c_void;
use kernel::mm::virt::VmaNew;
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow};

use crate::abi;
use crate::buffer::Buffer;
use crate::shim::hsa_p2p_vma_pfnmap_wc;

/// The VMA operations of every buffer mapping.
struct VmOps(bindings::vm_operations_struct);

// SAFETY: the table is immutable; it holds function pointers only.
unsafe impl Sync for VmOps {}

static VM_OPS: VmOps = VmOps(bindings::vm_operations_struct {
    open: Some(vma_open),
    close: Some(vma_close),
    fault: Some(vma_fault),
    // SAFETY: every other member is an optional callback, for which all-zero means none.
    ..unsafe { core::mem::zeroed() }
});

/// The buffer a VMA of ours maps.
///
/// # Safety
///
/// `vma` uses [`VM_OPS`], so its `vm_private_data` is a reference of an `Arc<Buffer>` that the
/// VMA owns until its `close`.
unsafe fn buffer_of<'a>(vma: *mut bindings::vm_area_struct) -> &'a Buffer {
    // SAFETY: per the function's safety requirement, the pointer comes from `Arc::into_raw`
    // and the reference it stands for is alive while the VMA is.
    unsafe { &*(*vma).vm_private_data.cast::<Buffer>() }
}

/// A VMA is copied (split, `mremap`): the copy holds its own reference.
///
/// # Safety
///
/// Called by the memory-management core only, on a VMA using [`VM_OPS`].
unsafe extern "C" fn vma_open(vma: *mut bindings::vm_area_struct) {
    // SAFETY: the core calls `open` on a VMA of ours (a copy of one, sharing its private data,
    // a reference from `Arc::into_raw` that the original VMA keeps alive during the call).
    let shared = unsafe { ArcBorrow::<Buffer>::from_raw((*vma).vm_private_data.cast()) };
    // The copy owns a new reference, dropped by its `close`.
    let _ = Arc::into_raw(Arc::from(shared));
}

/// A VMA goes: drops its reference.
///
/// # Safety
///
/// Called by the memory-management core only, once per VMA using [`VM_OPS`].
unsafe extern "C" fn vma_close(vma: *mut bindings::vm_area_struct) {
    // SAFETY: the core calls `close` once per VMA of ours, which owns one reference.
    drop(unsafe { Arc::from_raw((*vma).vm_private_data.cast::<Buffer>().cast_const()) });
}

/// Inserts the page frame of the faulting page, while the buffer is live.
///
/// # Safety
///
/// Called by the memory-management core only, for a fault in a VMA using [`VM_OPS`].
unsafe extern "C" fn vma_fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // SAFETY: the core passes a valid fault descriptor for a VMA of ours.
    let (vma, pgoff, address) = unsafe {
        let fault = &(*vmf).__bindgen_anon_1;
        (fault.vma, fault.pgoff as u64, fault.address)
    };
    // SAFETY: `vma` is ours and live during the fault.
    let buffer = unsafe { buffer_of(vma) };
    let first = abi::mmap_offset(buffer.handle) / abi::VRAM_PAGE;
    let page = pgoff.wrapping_sub(first);
    buffer
        .pfn_for_fault(page, |pfn| {
            // SAFETY: `vma` is a `VM_PFNMAP` VMA (set by `prepare`) and `address` lies in it;
            // the page frame is the buffer's, which stays reserved while its lock is held live.
            unsafe { bindings::vmf_insert_pfn(vma, address, pfn as usize) }
        })
        .unwrap_or(bindings::vm_fault_reason_VM_FAULT_SIGBUS as bindings::vm_fault_t)
}

/// Makes `vma` (being set up by `mmap`, already checked to lie inside `buffer`) a fault-time
/// mapping of `buffer`: I/O, page-frame mapped, write-combined, not expandable, not dumped, not
/// executable, not inherited across fork.
pub(crate) fn prepare(vma: &VmaNew, buffer: Arc<Buffer>) -> Result {
    vma.try_clear_mayexec()?;
    vma.set_io();
    vma.set_dontexpand();
    vma.set_dontdump();
    vma.set_dontcopy();
    // SAFETY: `vma` is being set up by this mmap call.
    unsafe { hsa_p2p_vma_pfnmap_wc(vma.as_ptr().cast::<c_void>()) };
    // SAFETY: `vma` is being set up by this mmap call; from here on it owns the reference
    // (released by `vma_close`), and its operations are ours. Nothing below can fail.
    unsafe {
        let raw = vma.as_ptr();
        (*raw).vm_private_data = Arc::into_raw(buffer).cast_mut().cast::<c_void>();
        (*raw).vm_ops = &VM_OPS.0;
    }
    Ok(())
}
