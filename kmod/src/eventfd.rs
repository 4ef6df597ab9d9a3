// SPDX-License-Identifier: GPL-2.0

//! A reference to a user's eventfd, signalled when an asynchronous copy ends.
//!
//! 7.3's kernel crate has no eventfd abstraction; the three calls are C shims
//! (`hsa_p2p_eventfd_*` in `peer_shim.c`) and this type owns the reference they take.

use core::ptr::NonNull;

use kernel::error::to_result;
use kernel::ffi::c_void;
use kernel::prelude::*;

use crate::shim::{hsa_p2p_eventfd_get, hsa_p2p_eventfd_put, hsa_p2p_eventfd_signal};

/// An eventfd context.
///
/// # Invariants
///
/// `ctx` is a reference to an eventfd context taken by `hsa_p2p_eventfd_get`, owned by this
/// value and put exactly once, on drop.
pub(crate) struct EventFd {
    ctx: NonNull<c_void>,
}

// SAFETY: an eventfd context is reference counted and its operations take its own lock, so the
// reference may be used and put from any thread (the copy's worker signals it).
unsafe impl Send for EventFd {}
// SAFETY: as above; `&EventFd` only signals, which takes the context's lock.
unsafe impl Sync for EventFd {}

impl EventFd {
    /// The eventfd behind the calling process's file descriptor `fd`: `EBADF` when `fd` is not
    /// open, `EINVAL` when it is no eventfd.
    pub(crate) fn from_fd(fd: i32) -> Result<Self> {
        let mut ctx = core::ptr::null_mut();
        // SAFETY: `ctx` is writable; the shim only resolves `fd` in the current task's table.
        to_result(unsafe { hsa_p2p_eventfd_get(fd, &mut ctx) })?;
        let ctx = NonNull::new(ctx).ok_or(EINVAL)?;
        // INVARIANT: the shim returned 0, so `ctx` is a reference it took for us.
        Ok(Self { ctx })
    }

    /// Adds 1 to the eventfd's counter.
    pub(crate) fn signal(&self) {
        // SAFETY: `ctx` is a live reference (type invariant).
        unsafe { hsa_p2p_eventfd_signal(self.ctx.as_ptr()) };
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: `ctx` is our reference (type invariant), put only here.
        unsafe { hsa_p2p_eventfd_put(self.ctx.as_ptr()) };
    }
}
