// SPDX-License-Identifier: GPL-2.0

//! The module's own workqueues for copies, instead of the kernel's shared unbound one:
//! `hsa_p2p_copies` runs the asynchronous copies (each waits for its engine parts) and
//! `hsa_p2p_parts` the parts a split copy hands to other engines (which never wait).
//!
//! Two queues, so that copies waiting for their parts can never hold every active slot the
//! parts need: on one queue, `max_active` asynchronous copies waiting for parts queued behind
//! them would deadlock it — and on the kernel's shared queue, every other user of it too, at
//! the hands of a user with enough open files. Owned queues, so that module exit drains them
//! (`destroy_workqueue`): no work item still runs module code (its end, after it recorded the
//! copy's end) once the module is gone.

use core::ptr::null_mut;

use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::workqueue::Queue;

use crate::shim::{hsa_p2p_unbound_wq_alloc, hsa_p2p_wq_destroy};

/// The queue of asynchronous copies (null outside the module's lifetime).
static COPIES: Atomic<*mut bindings::workqueue_struct> = Atomic::new(null_mut());
/// The queue of engine parts (null outside the module's lifetime).
static PARTS: Atomic<*mut bindings::workqueue_struct> = Atomic::new(null_mut());

/// The two queues, from module init to module exit.
///
/// # Invariants
///
/// While this value lives, [`COPIES`] and [`PARTS`] hold workqueues allocated by it; it is
/// dropped after the misc device and the driver are gone, so no copy can be queued any more.
pub(crate) struct CopyQueues(());

/// A new unbound workqueue named `name`.
fn allocate(name: &CStr) -> Result<*mut bindings::workqueue_struct> {
    // SAFETY: `name` is a NUL-terminated string; the shim copies it into the queue's name.
    let queue = unsafe { hsa_p2p_unbound_wq_alloc(name.as_char_ptr()) };
    if queue.is_null() {
        return Err(ENOMEM);
    }
    Ok(queue.cast())
}

impl CopyQueues {
    pub(crate) fn create() -> Result<Self> {
        let copies = allocate(c"hsa_p2p_copies")?;
        let parts = allocate(c"hsa_p2p_parts").inspect_err(|_| {
            // SAFETY: allocated just above, never published.
            unsafe { hsa_p2p_wq_destroy(copies.cast()) };
        })?;
        COPIES.store(copies, Relaxed);
        PARTS.store(parts, Relaxed);
        // INVARIANT: both statics now hold queues allocated here.
        Ok(Self(()))
    }
}

impl Drop for CopyQueues {
    fn drop(&mut self) {
        for queue in [&COPIES, &PARTS] {
            let raw = queue.xchg(null_mut(), Relaxed);
            // SAFETY: allocated by `create` (type invariant) and no longer reachable through
            // the static; destroying drains the work items still running.
            unsafe { hsa_p2p_wq_destroy(raw.cast()) };
        }
    }
}

/// The queue `slot` holds.
fn queue(slot: &Atomic<*mut bindings::workqueue_struct>) -> &'static Queue {
    // SAFETY: copies are queued only through an open file of the device or its ioctls, which
    // exist only between module init and exit, while the queue is alive (invariant of
    // `CopyQueues`, which outlives the device); `Queue` is a transparent wrapper of the C
    // struct.
    unsafe { Queue::from_raw(slot.load(Relaxed)) }
}

/// The queue of asynchronous copies.
pub(crate) fn copies() -> &'static Queue {
    queue(&COPIES)
}

/// The queue of the parts a split copy hands to other engines.
pub(crate) fn parts() -> &'static Queue {
    queue(&PARTS)
}
