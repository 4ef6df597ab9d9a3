// SPDX-License-Identifier: GPL-2.0

//! Asynchronous copies (`COPY_SUBMIT`, `COPY_WAIT`): the copies one open file has submitted
//! and not yet reaped, each identified by a ticket.
//!
//! A submitted copy is a work item of the module's copies queue ([`crate::copy_queues`]) that
//! runs it on the copy engines ([`copy_engine::run`]) and then records its end (status, time),
//! wakes its waiters and signals its eventfd. Every end is recorded, whatever ended the copy:
//! all its bytes, an error, an unbind of one of its GPUs (its next chunk's
//! [`crate::buffer::Buffer::copy_access`] fails `ENODEV`) or the file's cancel flag. Closing
//! the file ([`FileCopies`]'s drop) sets that flag and waits for every copy it still has: each
//! stops at its next chunk with `ECANCELED`, so the wait is bounded by one `COPY_CHUNK` (plus
//! the `delay_copy_chunk_ms` fault point) per engine.
//! At most `max_async_copies_per_file` copies are submitted and not reaped (`EBUSY` beyond).

use kernel::alloc::KVec;
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::sync::{Arc, CondVar, CondVarTimeoutResult, Mutex};
use kernel::time::{msecs_to_jiffies, Instant, Jiffies, Monotonic};

use crate::abi::{self, AbiError};
use crate::copy_engine::{self, CopyPart, StopWhen};
use crate::copy_queues;
use crate::eventfd::EventFd;
use crate::limits::GFP_USER_TRIGGERED;
use crate::peer::abi_error;

/// How a copy ended.
#[derive(Clone, Copy, Default)]
pub(crate) struct CopyEnd {
    /// 0 or a positive errno (`CopyWaitArgs::status`).
    pub(crate) status: u32,
    /// `abi::PATH_*`.
    pub(crate) path: u32,
    pub(crate) nanoseconds: u64,
}

/// One submitted copy, shared by its file's table and its work item.
#[pin_data]
struct AsyncCopy {
    ticket: u64,
    /// `Some` once the copy has ended.
    #[pin]
    end: Mutex<Option<CopyEnd>>,
    /// Notified when `end` is set.
    #[pin]
    ended: CondVar,
    eventfd: Option<EventFd>,
}

impl AsyncCopy {
    /// Runs `part` (unless the file is already closing) and records how it ended.
    fn run(&self, part: CopyPart, stop: StopWhen) {
        let path = if part.staged {
            abi::PATH_STAGED
        } else {
            abi::PATH_DIRECT
        };
        let started = Instant::<Monotonic>::now();
        let result = match stop.reason() {
            Some(reason) => Err(reason),
            None => copy_engine::run(part, stop),
        };
        let end = CopyEnd {
            status: result.map_or_else(|error| (-error.to_errno()) as u32, |()| 0),
            path,
            nanoseconds: u64::try_from(started.elapsed().as_nanos()).unwrap_or(0),
        };
        {
            // The eventfd is signalled under the lock, so whoever sees the end (COPY_WAIT, the
            // file's release) also sees the signal, and whoever sees the signal sees the end.
            let mut recorded = self.end.lock();
            *recorded = Some(end);
            if let Some(eventfd) = &self.eventfd {
                eventfd.signal();
            }
        }
        self.ended.notify_all();
    }

    /// Waits until the copy has ended, however long (it ends within a chunk once cancelled).
    fn wait_for_end(&self) {
        let mut end = self.end.lock();
        while end.is_none() {
            self.ended.wait(&mut end);
        }
    }
}

/// The copies of one file not yet reaped.
struct CopyTable {
    copies: KVec<Arc<AsyncCopy>>,
    /// The next ticket (from 1; 2^64 tickets are never reached).
    next_ticket: u64,
}

impl CopyTable {
    fn find(&self, ticket: u64) -> Option<&Arc<AsyncCopy>> {
        self.copies.iter().find(|copy| copy.ticket == ticket)
    }
}

/// The asynchronous copies of one open file; dropping it (the file's release) cancels them and
/// waits for their end.
#[pin_data(PinnedDrop)]
pub(crate) struct FileCopies {
    #[pin]
    table: Mutex<CopyTable>,
    /// Set when the file is released: its copies stop at their next chunk.
    cancel: Arc<Atomic<bool>>,
}

/// `COPY_WAIT`'s timeout in jiffies (beyond `u32` milliseconds: no limit).
fn timeout_jiffies(timeout_ns: u64) -> Jiffies {
    match u32::try_from(timeout_ns.div_ceil(1_000_000)) {
        Ok(msecs) if timeout_ns != abi::WAIT_FOREVER => msecs_to_jiffies(msecs),
        _ => Jiffies::MAX,
    }
}

impl FileCopies {
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            table <- kernel::new_mutex!(CopyTable {
                copies: KVec::new(),
                next_ticket: 1,
            }),
            cancel: Arc::new(Atomic::new(false), GFP_USER_TRIGGERED)?,
        })
    }

    /// Starts `part` on the copy engines; its ticket.
    pub(crate) fn submit(&self, part: CopyPart, eventfd: Option<EventFd>) -> Result<u64> {
        let mut table = self.table.lock();
        let limit = crate::module_parameters::max_async_copies_per_file.value();
        if table.copies.len() >= limit as usize {
            return Err(abi_error(AbiError::TooManyCopies));
        }
        table.copies.reserve(1, GFP_USER_TRIGGERED)?;
        let ticket = table.next_ticket;
        let copy = Arc::pin_init(
            try_pin_init!(AsyncCopy {
                ticket,
                end <- kernel::new_mutex!(None),
                ended <- kernel::new_condvar!(),
                eventfd,
            }),
            GFP_USER_TRIGGERED,
        )?;
        let worker = copy.clone();
        let stop = StopWhen::Canceled(self.cancel.clone());
        copy_queues::copies()
            .try_spawn(GFP_USER_TRIGGERED, move || worker.run(part, stop))
            .map_err(|_| ENOMEM)?;
        // Room was reserved above, under the same lock.
        table
            .copies
            .push_within_capacity(copy)
            .map_err(|_| ENOMEM)?;
        table.next_ticket += 1;
        Ok(ticket)
    }

    /// Waits up to `timeout_ns` for copy `ticket` to end, then reaps it.
    pub(crate) fn wait(&self, ticket: u64, timeout_ns: u64) -> Result<CopyEnd> {
        let copy = self
            .table
            .lock()
            .find(ticket)
            .cloned()
            .ok_or_else(|| abi_error(AbiError::UnknownHandle))?;
        let end = {
            let mut end = copy.end.lock();
            let mut left = timeout_jiffies(timeout_ns);
            while end.is_none() {
                if timeout_ns == 0 {
                    return Err(abi_error(AbiError::NotEnded));
                }
                match copy.ended.wait_interruptible_timeout(&mut end, left) {
                    CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
                    _ if end.is_some() => {}
                    CondVarTimeoutResult::Timeout => return Err(abi_error(AbiError::NotEnded)),
                    CondVarTimeoutResult::Signal { .. } => {
                        return Err(abi_error(AbiError::Interrupted))
                    }
                }
            }
            end.unwrap_or_default()
        };
        let reaped = {
            let mut table = self.table.lock();
            let position = table
                .copies
                .iter()
                .position(|other| Arc::ptr_eq(other, &copy));
            // Another COPY_WAIT of the same ticket may have reaped it meanwhile.
            let index = position.ok_or_else(|| abi_error(AbiError::UnknownHandle))?;
            table.copies.remove(index)?
        };
        drop(reaped);
        Ok(end)
    }
}

#[pinned_drop]
impl PinnedDrop for FileCopies {
    fn drop(self: Pin<&mut Self>) {
        self.cancel.store(true, Relaxed);
        let copies = core::mem::take(&mut self.table.lock().copies);
        for copy in copies.iter() {
            copy.wait_for_end();
        }
    }
}
