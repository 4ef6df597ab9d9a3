// SPDX-License-Identifier: GPL-2.0

//! Safe ownership of the read-only sysfs tree made by `sysfs_tree.c`.

use core::marker::PhantomData;
use core::ptr::NonNull;

use kernel::prelude::*;
use kernel::str::CStr;

use crate::shim::{
    hsa_p2p_sysfs_dir_clear, hsa_p2p_sysfs_dir_create, hsa_p2p_sysfs_dir_destroy,
    hsa_p2p_sysfs_file_create, hsa_p2p_sysfs_generation_create, hsa_p2p_sysfs_generation_destroy,
    hsa_p2p_sysfs_update_begin, hsa_p2p_sysfs_update_end, RawSysfsDir, RawSysfsGeneration,
};

/// `/sys/kernel/<name>/topology` laid out as amdkfd's: `generation_id` and
/// `system_properties` stay as long as the tree, `nodes/` is refilled by each update.
///
/// Readers that follow the `generation_id` protocol (read it, read the tree, read it again,
/// retry unless both reads agree) never accept a half-built tree: `generation_id` is created
/// after the first filling, and its readers wait while an update is in progress (see
/// `sysfs_tree.c`).
///
/// # Invariants
///
/// `root` points to a live top-level directory made by `hsa_p2p_sysfs_dir_create`, owned by
/// this value alone; `nodes` is a live directory below it and `generation` a live
/// `generation_id` file in its `topology` directory, both owned by this value. Directories
/// below `nodes` are reachable only through [`SubDir`] handles that borrow this value.
pub(crate) struct TopologyDir {
    root: NonNull<RawSysfsDir>,
    nodes: NonNull<RawSysfsDir>,
    generation: NonNull<RawSysfsGeneration>,
}

// SAFETY: the C side keeps no thread affinity; callers serialise mutation through `&mut self`.
unsafe impl Send for TopologyDir {}
// SAFETY: `&TopologyDir` offers no operation at all.
unsafe impl Sync for TopologyDir {}

/// A directory below `nodes/` of a [`TopologyDir`], valid while the tree is borrowed.
#[derive(Clone, Copy)]
pub(crate) struct SubDir<'tree> {
    raw: NonNull<RawSysfsDir>,
    _tree: PhantomData<&'tree mut TopologyDir>,
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

impl TopologyDir {
    /// Creates `/sys/kernel/<name>/topology` with `system_properties`, `nodes/` filled by
    /// `fill`, and last `generation_id` holding `generation`.
    pub(crate) fn new(
        name: &CStr,
        system_properties: &[u8],
        generation: u64,
        fill: impl FnOnce(SubDir<'_>) -> Result,
    ) -> Result<Self> {
        let root = create_dir(core::ptr::null_mut(), name)?;
        let below_root = || -> Result<(NonNull<RawSysfsDir>, NonNull<RawSysfsGeneration>)> {
            let topology = create_dir(root.as_ptr(), c"topology")?;
            create_file(topology, c"system_properties", system_properties)?;
            let nodes = create_dir(topology.as_ptr(), c"nodes")?;
            fill(SubDir {
                raw: nodes,
                _tree: PhantomData,
            })?;
            // SAFETY: `topology` is live (just made, below `root`, which we still own).
            let raw = unsafe { hsa_p2p_sysfs_generation_create(topology.as_ptr(), generation) };
            Ok((nodes, NonNull::new(raw).ok_or(ENOMEM)?))
        };
        match below_root() {
            // INVARIANT: a fresh tree, owned by the returned value only.
            Ok((nodes, generation)) => Ok(Self {
                root,
                nodes,
                generation,
            }),
            Err(error) => {
                // SAFETY: `root` is live and ours; `fill`'s handles are gone with the closure.
                unsafe { hsa_p2p_sysfs_dir_destroy(root.as_ptr()) };
                Err(error)
            }
        }
    }

    /// Replaces everything below `nodes/` with what `fill` creates, then sets `generation_id`
    /// to `generation`. When `fill` fails, `nodes/` is left empty (a tree of the new generation
    /// without nodes, never a half-filled one) and the error returned.
    pub(crate) fn update(
        &mut self,
        generation: u64,
        fill: impl FnOnce(SubDir<'_>) -> Result,
    ) -> Result {
        // SAFETY: `generation` and `nodes` are live by the type invariant; `&mut self` rules out
        // a concurrent update and any `SubDir` of an earlier one.
        unsafe {
            hsa_p2p_sysfs_update_begin(self.generation.as_ptr());
            hsa_p2p_sysfs_dir_clear(self.nodes.as_ptr());
        }
        let result = fill(SubDir {
            raw: self.nodes,
            _tree: PhantomData,
        });
        // SAFETY: as above; `fill`'s handles are gone with the closure.
        unsafe {
            if result.is_err() {
                hsa_p2p_sysfs_dir_clear(self.nodes.as_ptr());
            }
            hsa_p2p_sysfs_update_end(self.generation.as_ptr(), generation);
        }
        result
    }
}

impl<'tree> SubDir<'tree> {
    /// Creates sub-directory `name`.
    pub(crate) fn dir(self, name: &CStr) -> Result<SubDir<'tree>> {
        Ok(SubDir {
            raw: create_dir(self.raw.as_ptr(), name)?,
            _tree: PhantomData,
        })
    }

    /// Creates read-only file `name` holding `content` (less than a page).
    pub(crate) fn file(self, name: &CStr, content: &[u8]) -> Result {
        create_file(self.raw, name, content)
    }
}

impl Drop for TopologyDir {
    fn drop(&mut self) {
        // SAFETY: by the type invariant both are live and owned by us alone, and no update is
        // in progress (it would hold `&mut self`); no `SubDir` can outlive the borrow it came
        // from. `generation_id` goes first: its file lives in the tree.
        unsafe {
            hsa_p2p_sysfs_generation_destroy(self.generation.as_ptr());
            hsa_p2p_sysfs_dir_destroy(self.root.as_ptr());
        }
    }
}
