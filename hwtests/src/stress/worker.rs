//! One worker thread: a seeded sequence of valid and hostile uses of its own open file of
//! `/dev/hsa_p2p`, each checked by an oracle.
//!
//! The thread owns every buffer of its file, so it knows what each must hold (a shadow copy):
//! a fresh buffer must read as zeros (no previous owner's data), a buffer must hold what its
//! owner wrote and copied, a freed or unbound buffer must not be readable through an old
//! mapping, and another file's handle must be refused. Other threads, processes, the unbinder
//! and fault injection run at the same time; their effects are allowed only as documented
//! errors (`ENODEV` once a GPU is gone, `ENOMEM` under fault injection, ...).
//!
//! Asynchronous copies (`COPY_SUBMIT`) run in batches whose destinations are distinct buffers
//! that no copy of the batch reads, so the shadow stays exact: a batch stays in flight while
//! the thread polls and waits for its copies (and while other threads unbind GPUs), or while it
//! closes its file; any other operation first reaps the batch. Completed copies are verified
//! byte for byte; a copy that ended with an error (`ENODEV` after an unbind) or whose file was
//! closed may have written part of its destination, whose bytes must each be old or new. Every
//! copy submitted with the thread's eventfd adds one signal when it ends, reaped or closed in
//! flight: counted, a missing or extra signal is a lost (or invented) completion.

use std::collections::BTreeSet;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hsa_p2p_runtime::device::abi::{self, cmd, AbiError, AllocArgs, CopySubmitArgs};
use hsa_p2p_runtime::device::{
    fill_random, transfer, Buffer, CopyCompletion, CopyRequest, Device, DeviceError, EventFd,
    Mapping, PathChoice, Ticket, WaitTimeout,
};
use hsa_p2p_runtime::sysfs::read_topology;

use super::failslab::FaultArm;
use super::tally::{Failure, Tally};
use super::window::{Access, Window};

/// Most buffers a thread holds at once.
const MAX_LIVE: usize = 6;
/// Largest buffer a thread allocates (rarely; most are a few pages).
const MAX_SIZE: u64 = 2 << 20;
/// Most asynchronous copies of one batch.
const MAX_BATCH: usize = 3;
/// How long the eventfd may lag behind the copies that ended before a signal counts as lost
/// (a closed file's copies end when the module releases it).
const SIGNAL_GRACE: Duration = Duration::from_secs(20);

/// What one worker thread does.
#[derive(Clone, Debug)]
pub struct ThreadPlan {
    /// Seed of this thread's sequence.
    pub seed: u64,
    /// Operations to issue.
    pub ops: u64,
    /// Distinguishes this thread's data from every other thread's (content seeds).
    pub tag: u64,
    /// The device node.
    pub device: PathBuf,
    /// The module's topology directory (GPU ids).
    pub topology: PathBuf,
    /// Percent of ioctls issued with slab fault injection armed (0: never).
    pub fault_percent: u32,
}

/// A buffer of this thread's file and what it must hold.
struct Live {
    buffer: Buffer,
    mapping: Option<Mapping>,
    shadow: Vec<u8>,
}

/// An asynchronous copy of this thread's file, not yet reaped.
struct InFlight {
    ticket: Ticket,
    /// Submitted with the thread's eventfd.
    signalled: bool,
    /// The destination buffer's handle.
    dst: u32,
    dst_offset: usize,
    /// What the destination range holds once the copy ended with status 0.
    moved: Vec<u8>,
}

/// The operations, with their weights in the random choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Alloc,
    Free,
    Write,
    Verify,
    Copy,
    MapPeer,
    UnmapPeer,
    Info,
    Remap,
    Hostile,
    StaleCheck,
    FreeRace,
    Fork,
    Reopen,
    AsyncSubmit,
    AsyncWait,
}

const WEIGHTS: [(Op, u32); 16] = [
    (Op::Alloc, 16),
    (Op::Free, 8),
    (Op::Write, 8),
    (Op::Verify, 6),
    (Op::Copy, 20),
    (Op::MapPeer, 8),
    (Op::UnmapPeer, 3),
    (Op::Info, 4),
    (Op::Remap, 3),
    (Op::Hostile, 10),
    (Op::StaleCheck, 4),
    (Op::FreeRace, 4),
    (Op::Fork, 1),
    (Op::Reopen, 1),
    (Op::AsyncSubmit, 8),
    (Op::AsyncWait, 6),
];

fn choose(rng: &mut fastrand::Rng) -> Op {
    let total: u32 = WEIGHTS.iter().map(|(_, weight)| weight).sum();
    let mut pick = rng.u32(0..total);
    for (op, weight) in WEIGHTS {
        if pick < weight {
            return op;
        }
        pick -= weight;
    }
    Op::Verify
}

struct Worker<'a> {
    plan: &'a ThreadPlan,
    rng: fastrand::Rng,
    device: Device,
    gpus: Vec<u32>,
    live: Vec<Live>,
    /// Mappings of buffers that were freed or whose GPU went: they must never show data again.
    stale: Vec<(Mapping, String)>,
    window: Window,
    faults: FaultArm,
    tally: Tally,
    serial: u64,
    /// Signalled by the asynchronous copies submitted with it (`None`: no eventfd here, all
    /// copies are submitted without one).
    eventfd: Option<Rc<EventFd>>,
    in_flight: Vec<InFlight>,
    /// Tickets this file returned (never 0, never twice).
    tickets: BTreeSet<u64>,
    /// Signals the eventfd owes: copies submitted with it that ended.
    signals_owed: u64,
}

/// Runs one thread's plan; setup failures are contract violations of the campaign.
pub fn run_thread(plan: &ThreadPlan) -> Tally {
    let mut tally = Tally::default();
    let (device, window) = match (Device::open_at(&plan.device), Window::new()) {
        (Ok(device), Ok(window)) => (device, window),
        (Err(error), _) => {
            tally.fail(Failure::Contract, format!("open: {error}"));
            return tally;
        }
        (_, Err(error)) => {
            tally.fail(Failure::Contract, format!("memfd: {error}"));
            return tally;
        }
    };
    let eventfd = match EventFd::new() {
        Ok(eventfd) => Some(Rc::new(eventfd)),
        // A kernel without eventfds (`CONFIG_EVENTFD` unset): copies go without one.
        Err(error) if error.raw_os_error() == Some(libc::ENOSYS) => None,
        Err(error) => {
            tally.fail(Failure::Contract, format!("eventfd: {error}"));
            None
        }
    };
    let mut worker = Worker {
        plan,
        rng: fastrand::Rng::with_seed(plan.seed),
        device,
        gpus: Vec::new(),
        live: Vec::new(),
        stale: Vec::new(),
        window,
        faults: FaultArm::for_this_thread(),
        tally,
        serial: 0,
        eventfd,
        in_flight: Vec::new(),
        tickets: BTreeSet::new(),
        signals_owed: 0,
    };
    worker.refresh_gpus();
    for _ in 0..plan.ops {
        let op = choose(&mut worker.rng);
        worker.step(op);
    }
    worker.settle();
    worker.check_stale();
    worker.tally
}

impl Worker<'_> {
    fn refresh_gpus(&mut self) {
        // A topology that cannot be read right now (republish in progress) keeps the old list.
        if let Ok(topology) = read_topology(&self.plan.topology) {
            self.gpus = transfer::gpus(&topology)
                .into_iter()
                .map(|gpu| gpu.gpu_id)
                .collect();
        }
    }

    fn step(&mut self, op: Op) {
        self.tally.op(&format!("{op:?}").to_lowercase());
        if !matches!(op, Op::AsyncWait | Op::Reopen) {
            // Every other operation may touch the buffers of the batch in flight.
            self.settle();
        }
        match op {
            Op::Alloc if self.live.len() < MAX_LIVE => self.alloc(),
            Op::Alloc | Op::Free => self.free(),
            Op::Write => self.write(),
            Op::Verify => self.verify_one(),
            Op::Copy => self.copy(),
            Op::MapPeer => self.map_peer(),
            Op::UnmapPeer => self.unmap_peer(),
            Op::Info => self.info(),
            Op::Remap => self.remap(),
            Op::Hostile => self.hostile(),
            Op::StaleCheck => self.check_stale(),
            Op::FreeRace => self.free_race(),
            Op::Fork => self.fork(),
            Op::Reopen => self.reopen(),
            Op::AsyncSubmit => self.async_submit(),
            Op::AsyncWait => self.async_wait(),
        }
    }

    /// Runs an ioctl with fault injection armed for this thread, `fault_percent` of the time.
    fn maybe_faulty<T>(&mut self, call: impl FnOnce(&Device) -> T) -> T {
        let armed = self.plan.fault_percent > 0 && self.rng.u32(0..100) < self.plan.fault_percent;
        if armed {
            self.tally.fault_armed_ops += 1;
            self.faults.arm();
        }
        let result = call(&self.device);
        if armed {
            self.faults.disarm();
        }
        result
    }

    /// Counts a failed call; documented errors are fine, anything else is a violation.
    fn error(&mut self, op: &str, error: &DeviceError) {
        match os_errno(error) {
            Some(errno) => self.tally.error(op, errno),
            None => self.tally.fail(Failure::Contract, format!("{op}: {error}")),
        }
    }

    fn random_size(&mut self) -> u64 {
        match self.rng.u32(0..100) {
            0..=69 => self.rng.u64(1..=64 << 10),
            70..=96 => self.rng.u64((64 << 10) + 1..=512 << 10),
            _ => self.rng.u64((512 << 10) + 1..=MAX_SIZE),
        }
    }

    fn random_gpu(&mut self) -> u32 {
        if self.gpus.is_empty() || self.rng.u32(0..50) == 0 {
            return self.rng.u32(..);
        }
        self.gpus[self.rng.usize(0..self.gpus.len())]
    }

    fn alloc(&mut self) {
        let gpu = self.random_gpu();
        let size = self.random_size();
        let buffer = match self.maybe_faulty(|device| device.alloc(gpu, size)) {
            Ok(buffer) => buffer,
            Err(error) => {
                if error.abi_error() == Some(AbiError::UnknownGpu) {
                    self.refresh_gpus();
                }
                return self.error("alloc", &error);
            }
        };
        if buffer.size < size || buffer.size % abi::VRAM_PAGE != 0 || buffer.gpu_id != gpu {
            self.tally.fail(
                Failure::Contract,
                format!("alloc of {size} bytes on {gpu} gave {buffer:?}"),
            );
        }
        let mapping = match self.device.mmap(&buffer) {
            Ok(mapping) => mapping,
            Err(error) => {
                self.error("mmap", &error);
                return self.forget(buffer.handle);
            }
        };
        // A fresh buffer reads as zeros: anything else is a previous owner's data.
        let mut fresh = vec![0xa5u8; mapping.len()];
        // SAFETY: the mapping is alive for the call.
        match unsafe { self.window.read(mapping.as_ptr(), &mut fresh) } {
            Ok(Access::Done) => {
                if let Some(at) = fresh.iter().position(|byte| *byte != 0) {
                    self.tally.fail(
                        Failure::Isolation,
                        format!(
                            "fresh buffer {} on GPU {gpu} holds {:#04x} at byte {at}",
                            buffer.handle, fresh[at]
                        ),
                    );
                }
                self.tally.bytes_verified += fresh.len() as u64;
            }
            Ok(Access::Revoked) => {
                self.stale
                    .push((mapping, format!("buffer {}", buffer.handle)));
                return self.forget(buffer.handle);
            }
            Err(error) => {
                return self
                    .tally
                    .fail(Failure::Contract, format!("memfd window: {error}"))
            }
        }
        self.serial += 1;
        let mut shadow = vec![0u8; mapping.len()];
        fill_random(&mut shadow, self.plan.tag ^ (self.serial << 20));
        let mut live = Live {
            buffer,
            mapping: Some(mapping),
            shadow,
        };
        let everything = 0..live.shadow.len();
        if self.write_range(&mut live, everything) {
            self.live.push(live);
        }
    }

    /// Frees `handle` after its GPU went, without a record of its content.
    fn forget(&mut self, handle: u32) {
        if let Err(error) = self.device.free(handle) {
            self.tally.fail(
                Failure::Contract,
                format!("free of own buffer {handle}: {error}"),
            );
        }
    }

    fn pick_live(&mut self) -> Option<usize> {
        (!self.live.is_empty()).then(|| self.rng.usize(0..self.live.len()))
    }

    fn free(&mut self) {
        let Some(index) = self.pick_live() else {
            return;
        };
        let live = self.live.swap_remove(index);
        if let Err(error) = self.device.free(live.buffer.handle) {
            self.tally.fail(
                Failure::Contract,
                format!("free of own buffer {}: {error}", live.buffer.handle),
            );
        }
        if let Some(mapping) = live.mapping {
            self.stale
                .push((mapping, format!("freed buffer {}", live.buffer.handle)));
        }
    }

    /// Writes `shadow[range]` through the mapping. Returns false (and retires the buffer) when
    /// the mapping is revoked.
    fn write_range(&mut self, live: &mut Live, range: std::ops::Range<usize>) -> bool {
        let Some(mapping) = &live.mapping else {
            return false;
        };
        // SAFETY: `range` lies inside the live mapping.
        let access = unsafe {
            self.window
                .write(mapping.as_ptr().add(range.start), &live.shadow[range])
        };
        match access {
            Ok(Access::Done) => true,
            Ok(Access::Revoked) => {
                self.revoked(live);
                false
            }
            Err(error) => {
                self.tally
                    .fail(Failure::Contract, format!("memfd window: {error}"));
                false
            }
        }
    }

    /// A mapping of a buffer faulted: legitimate only when the buffer's GPU went.
    fn revoked(&mut self, live: &mut Live) {
        match self.device.info(live.buffer.handle) {
            Err(error) if error.abi_error() == Some(AbiError::UnknownGpu) => {}
            other => self.tally.fail(
                Failure::Contract,
                format!(
                    "mapping of buffer {} faulted while INFO says {other:?}",
                    live.buffer.handle
                ),
            ),
        }
        live.mapping = None;
    }

    fn write(&mut self) {
        let Some(index) = self.pick_live() else {
            return;
        };
        let mut live = self.live.swap_remove(index);
        let len = live.shadow.len();
        let start = self.rng.usize(0..len);
        let end = self.rng.usize(start + 1..=len);
        fill_random(
            &mut live.shadow[start..end],
            self.rng.u64(..) ^ self.plan.tag,
        );
        if self.write_range(&mut live, start..end) {
            self.live.push(live);
        } else {
            self.retire(live);
        }
    }

    /// Reads `range` of `live` back and compares it with the shadow. Returns false (and retires
    /// the buffer's mapping) when the mapping is revoked.
    fn verify_range(&mut self, live: &mut Live, range: std::ops::Range<usize>, what: &str) -> bool {
        match self.compare(live, range, what) {
            Some(Access::Done) => true,
            Some(Access::Revoked) => {
                self.revoked(live);
                false
            }
            None => false,
        }
    }

    /// Reads `range` of `live` through its mapping (the bytes count as verified); the bytes
    /// are empty when the mapping is revoked. `None` when there is no mapping or the window
    /// failed (counted).
    fn read_back(
        &mut self,
        live: &Live,
        range: std::ops::Range<usize>,
    ) -> Option<(Access, Vec<u8>)> {
        let mapping = live.mapping.as_ref()?;
        let mut seen = vec![0u8; range.len()];
        // SAFETY: `range` lies inside the live mapping.
        match unsafe {
            self.window
                .read(mapping.as_ptr().add(range.start), &mut seen)
        } {
            Ok(Access::Done) => {
                self.tally.bytes_verified += seen.len() as u64;
                Some((Access::Done, seen))
            }
            Ok(Access::Revoked) => Some((Access::Revoked, Vec::new())),
            Err(error) => {
                self.tally
                    .fail(Failure::Contract, format!("memfd window: {error}"));
                None
            }
        }
    }

    /// Reads `range` of `live` through its mapping and counts a difference from the shadow as
    /// a corruption; `None` when there is no mapping or the window failed (counted).
    fn compare(
        &mut self,
        live: &Live,
        range: std::ops::Range<usize>,
        what: &str,
    ) -> Option<Access> {
        let (access, seen) = self.read_back(live, range.clone())?;
        let expected = &live.shadow[range.clone()];
        if let Some(at) = (seen.iter().zip(expected)).position(|(seen, expected)| seen != expected)
        {
            self.tally.fail(
                Failure::Corruption,
                format!(
                    "{what}: buffer {} on GPU {} byte {} is {:#04x}, expected {:#04x}",
                    live.buffer.handle,
                    live.buffer.gpu_id,
                    range.start + at,
                    seen[at],
                    expected[at]
                ),
            );
        }
        Some(access)
    }

    fn verify_one(&mut self) {
        let Some(index) = self.pick_live() else {
            return;
        };
        let mut live = self.live.swap_remove(index);
        let everything = 0..live.shadow.len();
        if self.verify_range(&mut live, everything, "verify") {
            self.live.push(live);
        } else {
            self.retire(live);
        }
    }

    /// A buffer whose GPU went: free it (allowed after unbind) and forget its content.
    fn retire(&mut self, live: Live) {
        if let Some(mapping) = live.mapping {
            self.stale.push((
                mapping,
                format!("buffer {} of a gone GPU", live.buffer.handle),
            ));
        }
        self.forget(live.buffer.handle);
    }

    fn copy(&mut self) {
        if self.live.is_empty() {
            return;
        }
        let src = self.rng.usize(0..self.live.len());
        let dst = self.rng.usize(0..self.live.len());
        let (src_len, dst_len) = (self.live[src].shadow.len(), self.live[dst].shadow.len());
        let size = self.rng.usize(1..=src_len.min(dst_len));
        let src_offset = self.rng.usize(0..=src_len - size);
        let mut dst_offset = self.rng.usize(0..=dst_len - size);
        if src == dst && src_offset.abs_diff(dst_offset) < size {
            // Overlapping copies within one buffer have unspecified content: keep them apart
            // or copy onto itself.
            dst_offset = src_offset;
        }
        let out_of_range = self.rng.u32(0..10) == 0;
        let (src_handle, dst_handle) = (self.live[src].buffer.handle, self.live[dst].buffer.handle);
        let choice =
            [PathChoice::Auto, PathChoice::Direct, PathChoice::Staged][self.rng.usize(0..3)];
        let asked_size = if out_of_range {
            (dst_len - dst_offset + 1) as u64
        } else {
            size as u64
        };
        let result = self.maybe_faulty(|device| {
            device.copy(
                src_handle,
                src_offset as u64,
                dst_handle,
                dst_offset as u64,
                asked_size,
                choice,
            )
        });
        match result {
            Ok(_) if out_of_range => self.tally.fail(
                Failure::Contract,
                format!("copy past the end of buffer {dst_handle} succeeded"),
            ),
            Ok(_) => {
                let moved = self.live[src].shadow[src_offset..src_offset + size].to_vec();
                let mut target = self.live.swap_remove(dst);
                target.shadow[dst_offset..dst_offset + size].copy_from_slice(&moved);
                if self.verify_range(&mut target, dst_offset..dst_offset + size, "copy") {
                    self.tally.copies_verified += 1;
                    self.live.push(target);
                } else {
                    self.retire(target);
                }
            }
            Err(error) => {
                if out_of_range
                    && !matches!(
                        error.abi_error(),
                        Some(AbiError::OutOfRange | AbiError::UnknownGpu | AbiError::OutOfMemory)
                    )
                {
                    self.tally.fail(
                        Failure::Contract,
                        format!("copy past the end: {error} instead of ERANGE"),
                    );
                }
                self.error("copy", &error);
                if error.abi_error() == Some(AbiError::UnknownGpu) {
                    self.retire_gone();
                }
            }
        }
    }

    /// Retires every buffer whose GPU is gone (INFO says `ENODEV`).
    fn retire_gone(&mut self) {
        let mut index = 0;
        while index < self.live.len() {
            match self.device.info(self.live[index].buffer.handle) {
                Err(error) if error.abi_error() == Some(AbiError::UnknownGpu) => {
                    let live = self.live.swap_remove(index);
                    self.retire(live);
                }
                _ => index += 1,
            }
        }
        self.refresh_gpus();
    }

    fn map_peer(&mut self) {
        let Some(index) = self.pick_live() else {
            return;
        };
        let handle = self.live[index].buffer.handle;
        let peer = self.random_gpu();
        if let Err(error) = self.maybe_faulty(|device| device.map_peer(handle, peer)) {
            self.error("map_peer", &error);
        }
    }

    fn unmap_peer(&mut self) {
        let Some(index) = self.pick_live() else {
            return;
        };
        let handle = self.live[index].buffer.handle;
        let peer = self.random_gpu();
        if let Err(error) = self.device.unmap_peer(handle, peer) {
            self.error("unmap_peer", &error);
        }
    }

    fn info(&mut self) {
        let Some(index) = self.pick_live() else {
            return;
        };
        let buffer = self.live[index].buffer;
        match self.device.info(buffer.handle) {
            Ok(info) => {
                if (info.handle, info.size, info.mmap_offset)
                    != (buffer.handle, buffer.size, buffer.mmap_offset)
                {
                    self.tally.fail(
                        Failure::Contract,
                        format!("INFO of {buffer:?} says {info:?}"),
                    );
                }
            }
            Err(error) => self.error("info", &error),
        }
    }

    fn remap(&mut self) {
        let Some(index) = self.pick_live() else {
            return;
        };
        let mut live = self.live.swap_remove(index);
        live.mapping = None;
        match self.device.mmap(&live.buffer) {
            Ok(mapping) => {
                live.mapping = Some(mapping);
                let everything = 0..live.shadow.len();
                if self.verify_range(&mut live, everything, "remap") {
                    return self.live.push(live);
                }
                self.retire(live);
            }
            Err(error) => {
                self.error("mmap", &error);
                self.retire(live);
            }
        }
    }

    /// A handle this file does not hold: a guess at another file's (handles are unique across
    /// files) or a random number.
    fn foreign_handle(&mut self) -> u32 {
        let owned = |handle: u32, live: &[Live]| live.iter().any(|l| l.buffer.handle == handle);
        loop {
            let base = self.live.first().map_or(1, |live| live.buffer.handle);
            let guess = if self.rng.bool() {
                base.wrapping_add(self.rng.u32(1..64))
            } else {
                self.rng.u32(..)
            };
            if !owned(guess, &self.live) {
                return guess;
            }
        }
    }

    /// Hostile input: other files' handles, bad commands, flags, pointers, offsets.
    fn hostile(&mut self) {
        let foreign = self.foreign_handle();
        let own = self.pick_live().map(|index| self.live[index].buffer);
        let case = self.rng.u32(0..8);
        let (what, result): (String, Result<(), i32>) = match case {
            0 => (
                format!("FREE of foreign handle {foreign}"),
                self.device.free(foreign).map_err(errno_of),
            ),
            1 => (
                format!("INFO of foreign handle {foreign}"),
                self.device.info(foreign).map(drop).map_err(errno_of),
            ),
            2 => match own {
                Some(own) => (
                    format!("COPY from foreign handle {foreign}"),
                    self.device
                        .copy(foreign, 0, own.handle, 0, 1, PathChoice::Auto)
                        .map(drop)
                        .map_err(errno_of),
                ),
                None => return,
            },
            3 => (
                format!("mmap of foreign handle {foreign}"),
                self.raw_mmap(abi::mmap_offset(foreign), abi::VRAM_PAGE as usize),
            ),
            4 => (
                "unknown command".to_owned(),
                self.raw_ioctl(
                    abi::iowr::<AllocArgs>(abi::IOCTL_TYPE, 0x7f),
                    &mut [0u8; 48],
                ),
            ),
            5 => {
                let mut args = AllocArgs {
                    gpu_id: self.random_gpu(),
                    size: 4096,
                    flags: 1 << self.rng.u32(0..32),
                    ..AllocArgs::default()
                };
                if self.rng.bool() {
                    args = AllocArgs {
                        flags: 0,
                        reserved: self.rng.u32(1..),
                        ..args
                    };
                }
                (
                    format!(
                        "ALLOC with flags {:#x} reserved {:#x}",
                        args.flags, args.reserved
                    ),
                    // SAFETY: `AllocArgs` is one of the ABI's argument blocks (no padding bytes).
                    self.raw_ioctl(cmd::ALLOC, &mut unsafe { as_bytes(&args) }),
                )
            }
            6 => (
                "ALLOC with an unmapped argument pointer".to_owned(),
                // SAFETY: the kernel must refuse the pointer (page 1 is never mapped).
                errno_result(unsafe {
                    libc::ioctl(
                        self.device.as_fd().as_raw_fd(),
                        cmd::ALLOC as _,
                        0x1000usize,
                    )
                }),
            ),
            _ => match own {
                Some(own) => {
                    let offset = self.rng.u64(own.size..);
                    (
                        format!("mmap past the end of buffer {} at {offset:#x}", own.handle),
                        self.raw_mmap(
                            own.mmap_offset.wrapping_add(offset & !(abi::VRAM_PAGE - 1)),
                            own.size as usize,
                        ),
                    )
                }
                None => return,
            },
        };
        match result {
            Ok(()) if matches!(case, 0..=3) => self.tally.fail(
                Failure::Isolation,
                format!("{what} succeeded: another file's buffer is reachable"),
            ),
            Ok(()) => self
                .tally
                .fail(Failure::Contract, format!("{what} succeeded")),
            Err(errno) => self.tally.error(&what, errno),
        }
    }

    fn raw_ioctl(&self, command: u32, bytes: &mut [u8]) -> Result<(), i32> {
        self.device
            .raw_ioctl(command, bytes)
            .map_err(|error| error.raw_os_error().unwrap_or(0))
    }

    /// `mmap` of `len` bytes at `offset`; a success is unmapped at once (and reported).
    fn raw_mmap(&self, offset: u64, len: usize) -> Result<(), i32> {
        // SAFETY: a fresh shared mapping chosen by the kernel; unmapped below.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.device.as_fd().as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if address == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        // SAFETY: the mapping was just made and nothing refers to it.
        unsafe { libc::munmap(address, len) };
        Ok(())
    }

    /// Every old mapping of a freed or gone buffer must fault; one that reads is a view of
    /// VRAM that may now be someone else's.
    fn check_stale(&mut self) {
        for (mapping, what) in std::mem::take(&mut self.stale) {
            let mut seen = vec![0u8; mapping.len().min(abi::VRAM_PAGE as usize)];
            // SAFETY: the mapping is still mapped (dropped after the access).
            match unsafe { self.window.read(mapping.as_ptr(), &mut seen) } {
                Ok(Access::Revoked) => {}
                Ok(Access::Done) => self.tally.fail(
                    Failure::Isolation,
                    format!("{what}: still readable through its old mapping"),
                ),
                Err(error) => self
                    .tally
                    .fail(Failure::Contract, format!("memfd window: {error}")),
            }
        }
    }

    /// `FREE` on another thread while this one maps the same buffer: whichever wins, no
    /// mapping of the freed range may survive, not even once the range has a new owner.
    fn free_race(&mut self) {
        let gpu = self.random_gpu();
        let buffer = match self.device.alloc(gpu, 64 << 10) {
            Ok(buffer) => buffer,
            Err(error) => return self.error("alloc", &error),
        };
        let spin = self.rng.u32(0..2000);
        let device = &self.device;
        let (freed, mapped) = std::thread::scope(|scope| {
            let freer = scope.spawn(move || {
                for _ in 0..spin {
                    std::hint::spin_loop();
                }
                device.free(buffer.handle)
            });
            let mapped = device.mmap(&buffer);
            (
                freer.join().expect("the freeing thread does not panic"),
                mapped,
            )
        });
        if let Err(error) = &freed {
            self.tally.fail(
                Failure::Contract,
                format!("FREE of own buffer {} during mmap: {error}", buffer.handle),
            );
        }
        let Ok(mapping) = mapped else {
            return;
        };
        // The range goes to a new owner, who writes a canary.
        if let Ok(next) = self.device.alloc(gpu, 64 << 10) {
            if let Ok(view) = self.device.mmap(&next) {
                let canary = vec![0x5au8; 64];
                // SAFETY: the new mapping is alive.
                let _ = unsafe { self.window.write(view.as_ptr(), &canary) };
            }
            self.stale.push((
                mapping,
                format!("buffer {} freed during mmap", buffer.handle),
            ));
            self.check_stale();
            let _ = self.device.free(next.handle);
        } else {
            self.stale.push((
                mapping,
                format!("buffer {} freed during mmap", buffer.handle),
            ));
        }
    }

    /// A child process reads a buffer through the mapping it inherited (or finds none: the
    /// module may refuse to copy mappings into children); it must never see other data.
    fn fork(&mut self) {
        let Some(index) = self.pick_live() else {
            return;
        };
        let live = &self.live[index];
        let Some(mapping) = &live.mapping else {
            return;
        };
        let len = live.shadow.len().min(64 << 10);
        let expected = live.shadow[..len].to_vec();
        let mut seen = vec![0u8; len];
        let address = mapping.as_ptr();
        // SAFETY: the child only makes system calls and compares preallocated memory before
        // `_exit`, all async-signal-safe, as a child of a multi-threaded process must.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: see above; the mapping was alive at fork.
            let code = match unsafe { self.window.read(address, &mut seen) } {
                Ok(Access::Done) if seen == expected => 0,
                Ok(Access::Done) => 3,
                Ok(Access::Revoked) => 2,
                Err(_) => 4,
            };
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        if pid < 0 {
            return self.tally.error(
                "fork",
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            );
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let exited = libc::WIFEXITED(status);
        match (exited, libc::WEXITSTATUS(status)) {
            (true, 0 | 2) => {}
            (true, 3) => self.tally.fail(
                Failure::Isolation,
                format!(
                    "a child saw other data in buffer {}",
                    self.live[index].buffer.handle
                ),
            ),
            _ => self.tally.fail(
                Failure::Contract,
                format!("forked reader ended with status {status:#x}"),
            ),
        }
    }

    /// Closes the file with mappings still live and opens a new one: the old mappings show
    /// the old content or fault, never anything else; the old handles mean nothing to the new
    /// file.
    fn reopen(&mut self) {
        let device = match Device::open_at(&self.plan.device) {
            Ok(device) => device,
            Err(error) => return self.error("open", &error),
        };
        let old = std::mem::replace(&mut self.device, device);
        // Closed with its batch in flight: the module cancels or completes those copies and
        // signals their eventfd either way.
        let closed = std::mem::take(&mut self.in_flight);
        self.tally.async_closed_in_flight += closed.len() as u64;
        self.signals_owed += closed.iter().filter(|copy| copy.signalled).count() as u64;
        self.tickets.clear();
        drop(old);
        for mut live in std::mem::take(&mut self.live) {
            // The old file is gone: its mappings show the old content or fault (both fine),
            // and there is no file left to ask which. A destination of a copy in flight may be
            // written while it is read: each byte of that range old or new.
            let len = live.shadow.len();
            match closed.iter().find(|copy| copy.dst == live.buffer.handle) {
                Some(copy) => {
                    let range = copy.dst_offset..copy.dst_offset + copy.moved.len();
                    self.compare(&live, 0..range.start, "after close");
                    self.compare(&live, range.end..len, "after close");
                    self.compare_partial(&mut live, range, &copy.moved, "in flight at close");
                }
                None => {
                    self.compare(&live, 0..len, "after close");
                }
            }
            if self.device.info(live.buffer.handle).is_ok() {
                self.tally.fail(
                    Failure::Isolation,
                    format!(
                        "handle {} of the closed file is valid in a new one",
                        live.buffer.handle
                    ),
                );
            }
        }
        self.check_signals();
    }

    /// Submits a batch of asynchronous copies (after reaping the previous one); now and then
    /// one with a bad eventfd instead.
    fn async_submit(&mut self) {
        if self.live.len() < 2 {
            return;
        }
        if self.rng.u32(0..10) == 0 {
            return self.async_submit_bad_eventfd();
        }
        // Destinations: distinct buffers; sources: the others, only read while in flight.
        let mut order: Vec<usize> = (0..self.live.len()).collect();
        self.rng.shuffle(&mut order);
        let batch = self.rng.usize(1..=(self.live.len() / 2).min(MAX_BATCH));
        let (destinations, sources) = order.split_at(batch);
        let (destinations, sources) = (destinations.to_vec(), sources.to_vec());
        for dst in destinations {
            let src = sources[self.rng.usize(0..sources.len())];
            let (src_len, dst_len) = (self.live[src].shadow.len(), self.live[dst].shadow.len());
            let size = self.rng.usize(1..=src_len.min(dst_len));
            let src_offset = self.rng.usize(0..=src_len - size);
            let dst_offset = self.rng.usize(0..=dst_len - size);
            let request = CopyRequest {
                src: self.live[src].buffer.handle,
                src_offset: src_offset as u64,
                dst: self.live[dst].buffer.handle,
                dst_offset: dst_offset as u64,
                size: size as u64,
                choice: [PathChoice::Auto, PathChoice::Direct, PathChoice::Staged]
                    [self.rng.usize(0..3)],
            };
            let eventfd = self.eventfd.clone().filter(|_| self.rng.u32(0..3) != 0);
            let result = self.maybe_faulty(|device| {
                device.submit_copy(&request, eventfd.as_ref().map(|eventfd| eventfd.as_fd()))
            });
            match result {
                Ok(ticket) => {
                    if ticket.0 == 0 || !self.tickets.insert(ticket.0) {
                        self.tally.fail(
                            Failure::Contract,
                            format!("COPY_SUBMIT returned ticket {} again (or 0)", ticket.0),
                        );
                    }
                    self.tally.async_submitted += 1;
                    let moved = self.live[src].shadow[src_offset..src_offset + size].to_vec();
                    self.in_flight.push(InFlight {
                        ticket,
                        signalled: eventfd.is_some(),
                        dst: request.dst,
                        dst_offset,
                        moved,
                    });
                }
                Err(error) => {
                    self.error("copy_submit", &error);
                    if error.abi_error() == Some(AbiError::UnknownGpu) {
                        self.settle();
                        return self.retire_gone();
                    }
                }
            }
        }
        if self.rng.u32(0..4) == 0 {
            self.settle();
        }
    }

    /// `COPY_SUBMIT` naming as its eventfd an open file that is not one (`EINVAL`) or no open
    /// file (`EBADF`); a copy of 0 bytes of an own buffer, so nothing else can be wrong.
    fn async_submit_bad_eventfd(&mut self) {
        let own = self.live[self.rng.usize(0..self.live.len())].buffer.handle;
        let (what, eventfd, expected) = if self.rng.bool() {
            (
                "COPY_SUBMIT with the device file as eventfd",
                self.device.as_fd().as_raw_fd(),
                AbiError::InvalidArgument,
            )
        } else {
            // Far above any descriptor this process opens (RLIMIT_NOFILE).
            (
                "COPY_SUBMIT with a descriptor that is not open",
                1 << 24,
                AbiError::BadFileDescriptor,
            )
        };
        let args = CopySubmitArgs {
            src_handle: own,
            dst_handle: own,
            eventfd,
            ..CopySubmitArgs::default()
        };
        // SAFETY: `CopySubmitArgs` is one of the ABI's argument blocks (no padding bytes).
        let mut bytes = unsafe { as_bytes(&args) };
        match self.raw_ioctl(cmd::COPY_SUBMIT, &mut bytes) {
            Ok(()) => self
                .tally
                .fail(Failure::Contract, format!("{what} succeeded")),
            Err(errno) if errno == expected.errno() || errno == AbiError::UnknownGpu.errno() => {
                self.tally.error(what, errno)
            }
            Err(errno) => self.tally.fail(
                Failure::Contract,
                format!("{what}: errno {errno} instead of {}", expected.name()),
            ),
        }
    }

    /// Polls or waits for one copy of the batch in flight.
    fn async_wait(&mut self) {
        if self.in_flight.is_empty() {
            return;
        }
        let copy = self
            .in_flight
            .swap_remove(self.rng.usize(0..self.in_flight.len()));
        let timeout = match self.rng.u32(0..3) {
            0 => WaitTimeout::Poll,
            1 => WaitTimeout::For(Duration::from_millis(1)),
            _ => WaitTimeout::Forever,
        };
        match self.device.wait_copy(copy.ticket, timeout) {
            Err(error)
                if error.abi_error() == Some(AbiError::NotEnded)
                    && timeout != WaitTimeout::Forever =>
            {
                self.error("copy_wait", &error);
                self.in_flight.push(copy);
            }
            result => self.finish(copy, result),
        }
        if self.in_flight.is_empty() {
            self.check_signals();
        }
    }

    /// Reaps every copy in flight and checks the eventfd's count.
    fn settle(&mut self) {
        if self.in_flight.is_empty() {
            return;
        }
        while let Some(copy) = self.in_flight.pop() {
            let result = self.device.wait_copy(copy.ticket, WaitTimeout::Forever);
            self.finish(copy, result);
        }
        self.check_signals();
    }

    /// The oracles of a reaped copy: status 0 verifies the destination byte for byte; an
    /// error is a documented one and leaves each destination byte old or new; the ticket is
    /// forgotten.
    fn finish(&mut self, copy: InFlight, result: Result<CopyCompletion, DeviceError>) {
        let position = self
            .live
            .iter()
            .position(|live| live.buffer.handle == copy.dst);
        let range = copy.dst_offset..copy.dst_offset + copy.moved.len();
        let completion = match result {
            Ok(completion) => completion,
            Err(error) => {
                // The ticket is lost: its copy's end cannot be known (nor its signal counted).
                self.tally.fail(
                    Failure::Contract,
                    format!("COPY_WAIT of ticket {}: {error}", copy.ticket.0),
                );
                if let Some(index) = position {
                    let mut live = self.live.swap_remove(index);
                    if self.verify_partial(&mut live, range, &copy.moved, "copy not reaped") {
                        self.live.push(live);
                    } else {
                        self.retire(live);
                    }
                }
                return;
            }
        };
        self.tally.async_reaped += 1;
        if copy.signalled {
            self.signals_owed += 1;
        }
        if self.rng.u32(0..4) == 0 {
            match self.device.wait_copy(copy.ticket, WaitTimeout::Poll) {
                Err(error) if error.abi_error() == Some(AbiError::UnknownHandle) => {}
                other => self.tally.fail(
                    Failure::Contract,
                    format!(
                        "COPY_WAIT of reaped ticket {}: {other:?} instead of ENOENT",
                        copy.ticket.0
                    ),
                ),
            }
        }
        // A destination retired meanwhile (its GPU went) has nothing left to check.
        let Some(index) = position else {
            return;
        };
        let mut live = self.live.swap_remove(index);
        let kept = match completion.status {
            0 => {
                live.shadow[range.clone()].copy_from_slice(&copy.moved);
                let verified = self.verify_range(&mut live, range, "asynchronous copy");
                self.tally.copies_verified += u64::from(verified);
                verified
            }
            status => {
                self.copy_status(status);
                self.verify_partial(&mut live, range, &copy.moved, "failed asynchronous copy")
            }
        };
        if kept {
            self.live.push(live);
        } else {
            self.retire(live);
        }
        if completion.status == AbiError::UnknownGpu.errno() as u32 {
            self.retire_gone();
        }
    }

    /// Counts the status of a copy that ended with an error: a documented errno, or
    /// `ECANCELED`.
    fn copy_status(&mut self, status: u32) {
        if status == abi::COPY_STATUS_CANCELED {
            *self.tally.errors.entry("ECANCELED".to_owned()).or_default() += 1;
        } else {
            self.tally
                .error("asynchronous copy", i32::try_from(status).unwrap_or(-1));
        }
    }

    /// Reads `range` of `live` while a copy of `moved` into it may be running or was cut
    /// short: each byte must be the old one (the shadow) or the copied one; the shadow then
    /// takes what was read. `None` when there is no mapping or the window failed (counted).
    fn compare_partial(
        &mut self,
        live: &mut Live,
        range: std::ops::Range<usize>,
        moved: &[u8],
        what: &str,
    ) -> Option<Access> {
        let (access, seen) = self.read_back(live, range.clone())?;
        if access == Access::Revoked {
            return Some(access);
        }
        let old = &live.shadow[range.clone()];
        let stray = (0..seen.len()).find(|&at| seen[at] != old[at] && seen[at] != moved[at]);
        if let Some(at) = stray {
            self.tally.fail(
                Failure::Corruption,
                format!(
                    "{what}: buffer {} byte {} is {:#04x}, neither the old {:#04x} nor the \
                     copied {:#04x}",
                    live.buffer.handle,
                    range.start + at,
                    seen[at],
                    old[at],
                    moved[at]
                ),
            );
        }
        live.shadow[range].copy_from_slice(&seen);
        Some(access)
    }

    /// [`Self::compare_partial`] of a buffer this file still holds: false (and the mapping
    /// retired) when it is revoked or gone.
    fn verify_partial(
        &mut self,
        live: &mut Live,
        range: std::ops::Range<usize>,
        moved: &[u8],
        what: &str,
    ) -> bool {
        match self.compare_partial(live, range, moved, what) {
            Some(Access::Done) => true,
            Some(Access::Revoked) => {
                self.revoked(live);
                false
            }
            None => false,
        }
    }

    /// With no copy in flight, the eventfd must have counted one signal per copy submitted
    /// with it that ended (waiting [`SIGNAL_GRACE`] for late ones).
    fn check_signals(&mut self) {
        let Some(eventfd) = self.eventfd.clone() else {
            return;
        };
        let deadline = Instant::now() + SIGNAL_GRACE;
        let mut seen = 0;
        loop {
            match eventfd.take() {
                Ok(count) => seen += count,
                Err(error) => {
                    return self
                        .tally
                        .fail(Failure::Contract, format!("eventfd read: {error}"))
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if seen >= self.signals_owed || left.is_zero() {
                break;
            }
            let wait_ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
            if let Err(error) = eventfd.wait_readable(wait_ms) {
                return self
                    .tally
                    .fail(Failure::Contract, format!("eventfd poll: {error}"));
            }
        }
        self.tally.eventfd_signals += seen;
        if seen != self.signals_owed {
            self.tally.fail(
                Failure::Contract,
                format!(
                    "eventfd: {seen} signals for {} asynchronous copies that ended (a lost or \
                     invented completion)",
                    self.signals_owed
                ),
            );
        }
        self.signals_owed = 0;
    }
}

/// The errno of a device error, when it came from the kernel.
fn os_errno(error: &DeviceError) -> Option<i32> {
    match error {
        DeviceError::Abi { error, .. } => Some(error.errno()),
        DeviceError::NoPeerLink { .. } => Some(AbiError::NoPeerLink.errno()),
        DeviceError::Os { source, .. } => source.raw_os_error(),
        DeviceError::Open { source, .. } => source.raw_os_error(),
        DeviceError::CopyFailed { status, .. } => i32::try_from(*status).ok(),
        DeviceError::Version { .. } => None,
    }
}

fn errno_of(error: DeviceError) -> i32 {
    os_errno(&error).unwrap_or(0)
}

fn errno_result(ret: i32) -> Result<(), i32> {
    if ret < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(())
    }
}

/// The bytes of an argument block, for raw ioctls.
///
/// # Safety
///
/// `T` must have no padding bytes: the ABI's argument blocks are `#[repr(C)]`, made of
/// integers with explicit padding fields (the core's tests check their sizes).
unsafe fn as_bytes<T>(args: &T) -> Vec<u8> {
    // SAFETY: every byte of `*args` is initialised (no padding, the caller's promise) and
    // readable for `size_of::<T>()` bytes behind the reference.
    unsafe {
        std::slice::from_raw_parts(
            std::ptr::from_ref(args).cast::<u8>(),
            std::mem::size_of::<T>(),
        )
    }
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_reproducible_from_the_seed_and_covers_every_op() {
        let ops = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (0..2000).map(|_| choose(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(ops(7), ops(7));
        assert_ne!(ops(7), ops(8));
        for (op, _) in WEIGHTS {
            assert!(ops(7).contains(&op), "{op:?} never chosen");
        }
    }
}
