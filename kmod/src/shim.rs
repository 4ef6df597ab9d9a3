// SPDX-License-Identifier: GPL-2.0

//! Rust declarations of the C shims (`shim.h`), and the one cast that reaches a device's C
//! struct. Everything unsafe about the shims is confined to their callers' `// SAFETY:` blocks.

use kernel::ffi::{c_char, c_int, c_uint, c_void};
use kernel::pci;

/// The C side's `struct hsa_p2p_sysfs_dir`, only ever handled by pointer.
#[repr(C)]
pub(crate) struct RawSysfsDir {
    _opaque: [u8; 0],
}

/// The C side's `struct hsa_p2p_sysfs_generation`, only ever handled by pointer.
#[repr(C)]
pub(crate) struct RawSysfsGeneration {
    _opaque: [u8; 0],
}

extern "C" {
    pub(crate) fn hsa_p2p_sysfs_dir_create(
        parent: *mut RawSysfsDir,
        name: *const c_char,
    ) -> *mut RawSysfsDir;
    pub(crate) fn hsa_p2p_sysfs_file_create(
        dir: *mut RawSysfsDir,
        name: *const c_char,
        content: *const c_char,
        len: usize,
    ) -> c_int;
    pub(crate) fn hsa_p2p_sysfs_dir_clear(dir: *mut RawSysfsDir);
    pub(crate) fn hsa_p2p_sysfs_dir_destroy(dir: *mut RawSysfsDir);
    pub(crate) fn hsa_p2p_sysfs_generation_create(
        dir: *mut RawSysfsDir,
        value: u64,
    ) -> *mut RawSysfsGeneration;
    pub(crate) fn hsa_p2p_sysfs_update_begin(generation: *mut RawSysfsGeneration);
    pub(crate) fn hsa_p2p_sysfs_update_end(generation: *mut RawSysfsGeneration, value: u64);
    pub(crate) fn hsa_p2p_sysfs_generation_destroy(generation: *mut RawSysfsGeneration);

    pub(crate) fn hsa_p2p_numa_node_count() -> c_uint;
    pub(crate) fn hsa_p2p_numa_node_cpus(node: c_int) -> c_uint;
    pub(crate) fn hsa_p2p_numa_node_memory(node: c_int) -> u64;
    pub(crate) fn hsa_p2p_numa_distance(from: c_int, to: c_int) -> c_uint;
    pub(crate) fn hsa_p2p_iommu_mode(pdev: *mut c_void) -> c_int;
    pub(crate) fn hsa_p2p_pci_domain(pdev: *mut c_void) -> u32;
    pub(crate) fn hsa_p2p_p2pdma_distance(provider: *mut c_void, client: *mut c_void) -> c_int;
    pub(crate) fn hsa_p2p_p2pdma_init(pdev: *mut c_void) -> c_int;
    pub(crate) fn hsa_p2p_next_online_node(node: c_int) -> c_int;

    pub(crate) fn hsa_p2p_upstream_bridge(pdev: *mut c_void) -> *mut c_void;
    pub(crate) fn hsa_p2p_bridge_has_acs_redir(pdev: *mut c_void) -> bool;
    pub(crate) fn hsa_p2p_map_peer(
        owner: *mut c_void,
        accessor: *mut c_void,
        bar: c_int,
        offset: u64,
        size: u64,
        map_type: c_int,
        hold_ms: c_uint,
        address: *mut u64,
    ) -> c_int;
    pub(crate) fn hsa_p2p_unmap_peer(
        accessor: *mut c_void,
        map_type: c_int,
        address: u64,
        size: u64,
    );
    pub(crate) fn hsa_p2p_vma_pfnmap_wc(vma: *mut c_void);
    pub(crate) fn hsa_p2p_fatal_signal_pending() -> bool;
    pub(crate) fn hsa_p2p_task_fatal_signal_pending(task: *mut c_void) -> bool;
    pub(crate) fn hsa_p2p_online_cpus() -> c_uint;
    pub(crate) fn hsa_p2p_zap_file_range(file: *mut c_void, offset: u64, len: u64);
    pub(crate) fn hsa_p2p_copy_io(
        dst: *mut c_void,
        src: *const c_void,
        len: usize,
        bounce: *mut u8,
        bounce_len: usize,
    );
    pub(crate) fn hsa_p2p_eventfd_get(fd: c_int, ctx: *mut *mut c_void) -> c_int;
    pub(crate) fn hsa_p2p_eventfd_signal(ctx: *mut c_void);
    pub(crate) fn hsa_p2p_eventfd_put(ctx: *mut c_void);
    pub(crate) fn hsa_p2p_unbound_wq_alloc(name: *const c_char) -> *mut c_void;
    pub(crate) fn hsa_p2p_wq_destroy(wq: *mut c_void);
}

/// The `struct pci_dev *` behind `pdev`, for the shims.
///
/// 7.3's `pci::Device::as_raw` is private to the `kernel` crate and `pci::Device` has no
/// `AsRef<bindings::pci_dev>`, so the pointer is taken from the reference itself.
pub(crate) fn raw_pci_dev(pdev: &pci::Device) -> *mut c_void {
    // CAST: `pci::Device` is `#[repr(transparent)]` over `Opaque<bindings::pci_dev>`, itself
    // transparent over the C struct, so the reference's address is the C device's.
    core::ptr::from_ref(pdev).cast::<c_void>().cast_mut()
}
