// SPDX-License-Identifier: GPL-2.0

//! The copy engines: how a copy moves, chunk by chunk, and how a large direct copy is split
//! across several engines that run at the same time on different CPUs.
//!
//! A copy of `len` bytes is cut into parts, one per engine (the `copy_engines` module parameter;
//! by default the SDMA engines the topology gives every GPU, at least 2; never more than the
//! online CPUs), each a multiple of [`DIRECT_BLOCK`] and at least [`MIN_PART`] bytes. The
//! calling thread runs the first part, kernel workers of the module's unbound parts queue
//! ([`crate::copy_queues`]) the others (the scheduler puts them on idle CPUs); the caller waits
//! for every part before the ioctl returns, so nothing of a copy outlives it. An asynchronous
//! copy ([`crate::async_copy`]) is itself a work item (of the module's copies queue), which
//! splits it the same way and waits for its parts. Staged copies stand for the path without
//! peer-to-peer (the CPU through system memory) and run in the caller only.
//!
//! Every part keeps the rules of a single copy: at most [`COPY_CHUNK`] bytes move while the
//! buffers are registered as in use ([`Buffer::copy_access`]: neither can be freed, reused or
//! unbound under a chunk), and between chunks a part stops when another part failed or the
//! copy is to stop ([`StopWhen`]: the submitting task of a synchronous copy has a fatal signal,
//! the file of an asynchronous one is being closed). The first error of any part is the copy's.
//! The `delay_copy_chunk_ms` fault point sleeps between chunks, to hold a copy in flight.

use kernel::alloc::KVVec;
use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::sync::{Arc, Completion};
use kernel::task::Task;
use kernel::time::{delay::fsleep, Delta};

use crate::buffer::Buffer;
use crate::copy_queues;
use crate::fault_points;
use crate::limits::GFP_USER_TRIGGERED;
use crate::shim::{hsa_p2p_copy_io, hsa_p2p_online_cpus, hsa_p2p_task_fatal_signal_pending};

/// The largest piece copied while the buffers are registered as in use and the BAR mappings
/// are held (an RCU read-side section); between pieces fatal signals are honoured.
pub(crate) const COPY_CHUNK: u64 = 1 << 20;

/// The block a direct copy reads from the source BAR whole before writing it to the
/// destination's (`hsa_p2p_copy_io`): large enough that the per-block switch between the two
/// mappings costs nothing measurable, small enough to stay in the CPU's L1 cache.
pub(crate) const DIRECT_BLOCK: usize = 16 << 10;

/// The smallest part given to an engine: smaller copies are not split (handing a part to a
/// worker costs more than moving it).
const MIN_PART: u64 = 1 << 20;

/// The most engines a copy is split across, whatever the parameter says.
const MAX_ENGINES: u32 = 16;

/// How many engines a direct copy may use: never more than there are CPUs to run them, since
/// on one CPU the parts would only take turns (measured: `docs/performance.md`).
fn engines() -> u32 {
    let configured = match crate::module_parameters::copy_engines.value() {
        0 => crate::link_finish::NUM_SDMA_ENGINES.max(2),
        chosen => chosen.min(MAX_ENGINES),
    };
    // SAFETY: no arguments; reads the online CPU mask's weight.
    configured.min(unsafe { hsa_p2p_online_cpus() }).max(1)
}

/// One copy, or one part of it: what it reads, what it writes, and how.
pub(crate) struct CopyPart {
    pub(crate) src: Arc<Buffer>,
    pub(crate) src_offset: u64,
    pub(crate) dst: Arc<Buffer>,
    pub(crate) dst_offset: u64,
    pub(crate) len: u64,
    /// Through system memory rather than BAR to BAR.
    pub(crate) staged: bool,
}

/// The task that submitted a copy, asked between chunks whether it was killed.
///
/// # Invariants
///
/// The task outlives every part of the copy: it waits for all of them before its ioctl
/// returns.
#[derive(Clone, Copy)]
pub(crate) struct Submitter(*mut bindings::task_struct);

// SAFETY: the pointer is only passed to `hsa_p2p_task_fatal_signal_pending`, which reads the
// task's signal state with the kernel's own synchronisation; the task is alive (invariant).
unsafe impl Send for Submitter {}
// SAFETY: as above.
unsafe impl Sync for Submitter {}

impl Submitter {
    fn killed(self) -> bool {
        // SAFETY: the task is alive (type invariant).
        unsafe { hsa_p2p_task_fatal_signal_pending(self.0.cast()) }
    }
}

/// When a copy stops between chunks (besides a failed part).
#[derive(Clone)]
pub(crate) enum StopWhen {
    /// A synchronous copy: its submitting task got a fatal signal (the copy fails `EINTR`).
    Killed(Submitter),
    /// An asynchronous copy: its file's cancel flag is set (the copy fails `ECANCELED`).
    Canceled(Arc<Atomic<bool>>),
}

impl StopWhen {
    /// A synchronous copy by the current task, which waits for it to end.
    pub(crate) fn current_task() -> Self {
        // INVARIANT: the synchronous COPY waits for every part before it returns.
        StopWhen::Killed(Submitter(Task::current_raw()))
    }

    /// Why to stop now, if the copy is to stop.
    pub(crate) fn reason(&self) -> Option<Error> {
        match self {
            StopWhen::Killed(submitter) => submitter.killed().then_some(EINTR),
            StopWhen::Canceled(flag) => flag.load(Relaxed).then_some(ECANCELED),
        }
    }
}

/// What the parts of one split copy share.
#[pin_data]
struct Shared {
    /// Completed when the last worker's part ends.
    #[pin]
    done: Completion,
    /// Worker parts not ended yet.
    pending: Atomic<u32>,
    /// The first error of any part, as a negative errno (0: none).
    error: Atomic<i32>,
    /// Set with the first error: the other parts stop at their next chunk.
    cancel: Atomic<bool>,
    stop: StopWhen,
}

impl Shared {
    fn record(&self, error: Error) {
        let _ = self.error.cmpxchg(0, error.to_errno(), Relaxed);
        self.cancel.store(true, Relaxed);
    }

    /// A worker's part ended with `result`.
    fn finish(&self, result: Result) {
        if let Err(error) = result {
            self.record(error);
        }
        if self.pending.fetch_sub(1, Relaxed) == 1 {
            self.done.complete_all();
        }
    }

    fn result(&self) -> Result {
        match self.error.load(Relaxed) {
            0 => Ok(()),
            errno => Err(Error::from_errno(errno)),
        }
    }
}

/// Why a part stops between chunks.
struct Stop<'a> {
    when: &'a StopWhen,
    /// Set when another part of the copy failed.
    cancel: Option<&'a Atomic<bool>>,
}

impl Stop<'_> {
    /// The error to stop with, if the part is to stop now.
    fn now(&self) -> Result {
        if self.cancel.is_some_and(|cancel| cancel.load(Relaxed)) {
            return Err(ECANCELED);
        }
        self.when.reason().map_or(Ok(()), Err)
    }
}

impl CopyPart {
    /// The bytes `[start, start + len)` of this copy.
    fn slice(&self, start: u64, len: u64) -> Self {
        Self {
            src: self.src.clone(),
            src_offset: self.src_offset + start,
            dst: self.dst.clone(),
            dst_offset: self.dst_offset + start,
            len,
            staged: self.staged,
        }
    }

    /// A buffer for one engine: the staging buffer of a staged copy, the block of a direct one.
    fn bounce(&self) -> Result<KVVec<u8>> {
        let len = if self.staged {
            self.len.min(COPY_CHUNK) as usize
        } else {
            (self.len as usize).min(DIRECT_BLOCK)
        };
        let mut bounce = KVVec::new();
        bounce.resize(len.max(1), 0, GFP_USER_TRIGGERED)?;
        Ok(bounce)
    }

    /// Copies chunk by chunk, each while both buffers are registered as in use, stopping
    /// between chunks when `stop` says so.
    fn run(&self, bounce: &mut KVVec<u8>, stop: &Stop<'_>) -> Result {
        let mut done = 0;
        while done < self.len {
            let chunk = (self.len - done).min(COPY_CHUNK);
            let src_access = self.src.copy_access()?;
            let dst_access = self.dst.copy_access()?;
            // Offsets inside the BARs: the buffers lie inside them (`Buffer` invariant) and
            // the ranges inside the buffers (checked by the ioctl), so these do not overflow.
            let from = self.src.offset + self.src_offset + done;
            let to = self.dst.offset + self.dst_offset + done;
            copy_chunk(&self.src, from, &self.dst, to, chunk, self.staged, bounce)?;
            drop((src_access, dst_access));
            done += chunk;
            if done < self.len {
                stop.now()?;
                let pause = fault_points::copy_chunk_delay_ms();
                if pause > 0 {
                    fsleep(Delta::from_millis(i64::from(pause)));
                    stop.now()?;
                }
            }
        }
        Ok(())
    }
}

/// Runs `copy` to its end (or its first error), split across the engines when it is direct
/// and large enough; returns once every part has ended. `stop` says when it stops early.
pub(crate) fn run(copy: CopyPart, stop: StopWhen) -> Result {
    let parts = if copy.staged {
        1
    } else {
        u64::from(engines()).min(copy.len.div_ceil(MIN_PART)).max(1)
    };
    let mut bounce = copy.bounce()?;
    if parts == 1 {
        let stop = Stop {
            when: &stop,
            cancel: None,
        };
        return copy.run(&mut bounce, &stop);
    }
    let shared = Arc::pin_init(
        pin_init!(Shared {
            done <- Completion::new(),
            pending: Atomic::new((parts - 1) as u32),
            error: Atomic::new(0),
            cancel: Atomic::new(false),
            stop,
        }),
        GFP_USER_TRIGGERED,
    )?;
    let part_len = copy
        .len
        .div_ceil(parts)
        .next_multiple_of(DIRECT_BLOCK as u64);
    for index in 1..parts {
        let start = (index * part_len).min(copy.len);
        let part = copy.slice(start, (copy.len - start).min(part_len));
        let started = part.bounce().and_then(|mut bounce| {
            let worker = shared.clone();
            copy_queues::parts()
                .try_spawn(GFP_USER_TRIGGERED, move || {
                    let stop = Stop {
                        when: &worker.stop,
                        cancel: Some(&worker.cancel),
                    };
                    worker.finish(part.run(&mut bounce, &stop));
                })
                .map_err(Error::from)
        });
        if let Err(error) = started {
            shared.finish(Err(error));
        }
    }
    let first = copy.slice(0, part_len.min(copy.len));
    let stop = Stop {
        when: &shared.stop,
        cancel: Some(&shared.cancel),
    };
    if let Err(error) = first.run(&mut bounce, &stop) {
        shared.record(error);
    }
    shared.done.wait_for_completion();
    shared.result()
}

/// Copies `chunk` bytes between the BARs of two buffers in use, directly in blocks of `bounce`
/// or staged through it.
fn copy_chunk(
    src: &Buffer,
    from: u64,
    dst: &Buffer,
    to: u64,
    chunk: u64,
    staged: bool,
    bounce: &mut KVVec<u8>,
) -> Result {
    let in_bar =
        |offset: u64, bar_len: u64| offset.checked_add(chunk).is_some_and(|end| end <= bar_len);
    if !staged {
        return src.vram.with_mapping(|src_base, src_len| {
            dst.vram.with_mapping(|dst_base, dst_len| {
                if !in_bar(from, src_len) || !in_bar(to, dst_len) {
                    return Err(ERANGE);
                }
                // SAFETY: both ranges lie inside their live BAR mappings (checked just above,
                // the mappings held by `with_mapping`); I/O memory has no Rust aliasing rules,
                // so overlapping ranges only give unspecified content. `bounce` is kernel
                // memory of `bounce.len()` bytes, borrowed exclusively.
                unsafe {
                    hsa_p2p_copy_io(
                        at(dst_base, to).cast(),
                        at(src_base, from).cast(),
                        chunk as usize,
                        bounce.as_mut_ptr(),
                        bounce.len(),
                    )
                };
                Ok(())
            })?
        })?;
    }
    if bounce.len() < chunk as usize {
        return Err(EINVAL);
    }
    let staging = bounce.as_mut_ptr();
    src.vram.with_mapping(|base, bar_len| {
        if !in_bar(from, bar_len) {
            return Err(ERANGE);
        }
        // SAFETY: the source range lies inside the live BAR mapping and the bounce buffer
        // holds at least `chunk` bytes (both checked above).
        unsafe { bindings::memcpy_fromio(staging.cast(), at(base, from).cast(), chunk as usize) };
        Ok(())
    })??;
    dst.vram.with_mapping(|base, bar_len| {
        if !in_bar(to, bar_len) {
            return Err(ERANGE);
        }
        // SAFETY: as above, for the destination.
        unsafe {
            bindings::memcpy_toio(
                at(base, to).cast(),
                staging.cast_const().cast(),
                chunk as usize,
            )
        };
        Ok(())
    })?
}

/// `base + offset` for an offset already checked to lie inside the mapping.
fn at(base: *mut u8, offset: u64) -> *mut u8 {
    base.wrapping_add(offset as usize)
}
