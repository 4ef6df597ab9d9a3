// SPDX-License-Identifier: GPL-2.0

//! Safe ownership of the read-only sysfs directories made by `sysfs_tree.c`.

use core::ptr::NonNull;

use kernel::prelude::*;
use kernel::str::CStr;

use crate::shim::{
    hsa_p2p_sysfs_dir_create, hsa_p2p_sysfs_dir_destroy, hsa_p2p_sysfs_file_create, RawSysfsDir,
};

/// A top-level sysfs directory under `/sys/kernel`, removed with everything below it on drop.
///
/// # Invariants
///
/// `raw` points to a live directory made by `hsa_p2p_sysfs_dir_create` with a `NULL` parent,
/// owned by this value alone; sub-directories are reachable only through [`SubDir`] handles
/// that borrow it.
pub(crate) struct SysfsDir {
    raw: NonNull<RawSysfsDir>,
}

// SAFETY: the C side keeps no thread affinity; callers serialise mutation through `&mut self`.
unsafe impl Send for SysfsDir {}
// SAFETY: `&SysfsDir` offers no operation at all.
unsafe impl Sync for SysfsDir {}

/// A directory below a [`SysfsDir`], valid while the root is borrowed.
#[derive(Clone, Copy)]
pub(crate) struct SubDir<'root> {
    raw: NonNull<RawSysfsDir>,
    _root: core::marker::PhantomData<&'root mut SysfsDir>,
}

fn create_dir(parent: *mut RawSysfsDir, name: &CStr) -> Result<NonNull<RawSysfsDir>> {
    // SAFETY: `parent` is NULL or a live directory (callers' invariants); `name` is
    // NUL-terminated and only read during the call.
    let raw = unsafe { hsa_p2p_sysfs_dir_create(parent, name.as_char_ptr()) };
    NonNull::new(raw).ok_or(ENOMEM)
}

fn create_file(dir: NonNull<RawSysfsDir>, name: &CStr, content: &[u8]) -> Result {
    // SAFETY: `dir` is live (callers' invariants); `name` is NUL-terminated; `content` is
    // valid for `content.len()` bytes and copied by the callee.
    let ret = unsafe {
        hsa_p2p_sysfs_file_create(
            dir.as_ptr(),
            name.as_char_ptr(),
            content.as_ptr().cast(),
            content.len(),
        )
    };
    kernel::error::to_result(ret)
}

impl SysfsDir {
    /// Creates `/sys/kernel/<name>`.
    pub(crate) fn new(name: &CStr) -> Result<Self> {
        // INVARIANT: a fresh top-level directory, owned by the returned value only.
        Ok(Self {
            raw: create_dir(core::ptr::null_mut(), name)?,
        })
    }

    /// The root as a directory handle to add files and sub-directories to.
    pub(crate) fn root(&mut self) -> SubDir<'_> {
        SubDir {
            raw: self.raw,
            _root: core::marker::PhantomData,
        }
    }
}

impl<'root> SubDir<'root> {
    /// Creates sub-directory `name`.
    pub(crate) fn dir(self, name: &CStr) -> Result<SubDir<'root>> {
        Ok(SubDir {
            raw: create_dir(self.raw.as_ptr(), name)?,
            _root: core::marker::PhantomData,
        })
    }

    /// Creates read-only file `name` holding `content` (less than a page).
    pub(crate) fn file(self, name: &CStr, content: &[u8]) -> Result {
        create_file(self.raw, name, content)
    }
}

impl Drop for SysfsDir {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `raw` is live and owned by us alone; no `SubDir` can
        // outlive the `&mut self` borrow it came from.
        unsafe { hsa_p2p_sysfs_dir_destroy(self.raw.as_ptr()) };
    }
}
