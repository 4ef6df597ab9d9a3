// SPDX-License-Identifier: GPL-2.0

//! What one open file of `/dev/hsa_p2p` may take: the module parameters `max_buffers_per_file`
//! and `max_bytes_per_file` (documented in `docs/security.md`), and the allocation flags of
//! everything user space makes the module allocate (charged to the caller's memory cgroup).

use kernel::alloc::{flags::GFP_KERNEL_ACCOUNT, Flags};
use kernel::prelude::*;

use crate::abi::AbiError;

/// Allocations a user request causes: charged to the caller's memory cgroup.
pub(crate) const GFP_USER_TRIGGERED: Flags = GFP_KERNEL_ACCOUNT;

/// What one file holds now.
#[derive(Default)]
pub(crate) struct Usage {
    pub(crate) buffers: u64,
    pub(crate) bytes: u64,
}

impl Usage {
    /// Whether one more buffer of `size` bytes stays within the module parameters; `ENOSPC`
    /// (the ABI's "out of VRAM") when not.
    pub(crate) fn check_room_for(&self, size: u64) -> Result {
        let max_buffers = u64::from(crate::module_parameters::max_buffers_per_file.value());
        let max_bytes = crate::module_parameters::max_bytes_per_file.value();
        let bytes = self.bytes.checked_add(size);
        if self.buffers >= max_buffers || bytes.is_none_or(|bytes| bytes > max_bytes) {
            return Err(Error::from_errno(-AbiError::NoVram.errno()));
        }
        Ok(())
    }
}
