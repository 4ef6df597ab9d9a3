//! One worker thread: a seeded sequence of valid and hostile uses of its own open file of
//! `/dev/hsa_p2p`, each checked by an oracle.
//!
//! The thread owns every buffer of its file, so it knows what each must hold (a shadow copy):
//! a fresh buffer must read as zeros (no previous owner's data), a buffer must hold what its
//! owner wrote and copied, a freed or unbound buffer must not be readable through an old
//! mapping, and another file's handle must be refused. Other threads, processes, the unbinder
//! and fault injection run at the same time; their effects are allowed only as documented
//! errors (`ENODEV` once a GPU is gone, `ENOMEM` under fault injection, ...).

use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;

use hsa_p2p_runtime::device::abi::{self, cmd, AbiError, AllocArgs};
use hsa_p2p_runtime::device::{
    fill_random, transfer, Buffer, Device, DeviceError, Mapping, PathChoice,
};
use hsa_p2p_runtime::sysfs::read_topology;

use super::failslab::FaultArm;
use super::tally::{Failure, Tally};
use super::window::{Access, Window};

/// Most buffers a thread holds at once.
const MAX_LIVE: usize = 6;
/// Largest buffer a thread allocates (rarely; most are a few pages).
const MAX_SIZE: u64 = 2 << 20;

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
}

const WEIGHTS: [(Op, u32); 14] = [
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
    };
    worker.refresh_gpus();
    for _ in 0..plan.ops {
        let op = choose(&mut worker.rng);
        worker.step(op);
    }
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

    /// Reads `range` of `live` through its mapping and counts a difference from the shadow as
    /// a corruption; `None` when there is no mapping or the window failed (counted).
    fn compare(
        &mut self,
        live: &Live,
        range: std::ops::Range<usize>,
        what: &str,
    ) -> Option<Access> {
        let mapping = live.mapping.as_ref()?;
        let mut seen = vec![0u8; range.len()];
        // SAFETY: `range` lies inside the live mapping.
        match unsafe {
            self.window
                .read(mapping.as_ptr().add(range.start), &mut seen)
        } {
            Ok(Access::Done) => {
                self.tally.bytes_verified += seen.len() as u64;
                if let Some(at) = seen
                    .iter()
                    .zip(&live.shadow[range.clone()])
                    .position(|(seen, expected)| seen != expected)
                {
                    self.tally.fail(
                        Failure::Corruption,
                        format!(
                            "{what}: buffer {} on GPU {} byte {} is {:#04x}, expected {:#04x}",
                            live.buffer.handle,
                            live.buffer.gpu_id,
                            range.start + at,
                            seen[at],
                            live.shadow[range.start + at]
                        ),
                    );
                }
                Some(Access::Done)
            }
            Ok(Access::Revoked) => Some(Access::Revoked),
            Err(error) => {
                self.tally
                    .fail(Failure::Contract, format!("memfd window: {error}"));
                None
            }
        }
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
                    self.raw_ioctl(cmd::ALLOC, &mut as_bytes(&args)),
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
        drop(old);
        for live in std::mem::take(&mut self.live) {
            // The old file is gone: its mappings show the old content or fault (both fine),
            // and there is no file left to ask which.
            let everything = 0..live.shadow.len();
            self.compare(&live, everything, "after close");
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

fn as_bytes(args: &AllocArgs) -> Vec<u8> {
    // SAFETY: `AllocArgs` is `#[repr(C)]`, made of integers with explicit padding fields (the
    // core's tests check its size), so all of its bytes are initialised.
    unsafe {
        std::slice::from_raw_parts(
            std::ptr::from_ref(args).cast::<u8>(),
            std::mem::size_of::<AllocArgs>(),
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
