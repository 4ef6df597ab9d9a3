//! A model of the module's device for host tests: buffers per open file in a bounded VRAM per
//! GPU, the documented refusals of `hsa_p2p_core::abi`, peer mappings allowed by the published
//! topology, copies that carry their source's bytes, asynchronous copies held in flight by the
//! `delay_copy_chunk_ms` fault point (they end when waited for long enough, or cancelled when
//! their file is closed) and eventfds signalled when they end. A [`Defect`] makes it deviate the way a
//! broken module would, so that tests show which case catches what.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use hsa_p2p_core::abi::{self, cmd, AbiError, CopyArgs, CopySubmitArgs, CopyWaitArgs, InfoArgs};
use hsa_p2p_runtime::device::transfer::{gpus, GpuRef};
use hsa_p2p_runtime::device::{checksum, fill_random, Buffer, CopyOutcome, CopyPath, PeerMapping};

use super::{Backend, Errno, NodeMode, Probe, ProbeOutcome, Refusal, Reply, Request};
use crate::context::{Context, ModuleState};

/// VRAM of each fake GPU.
pub const VRAM: u64 = 64 << 20;

/// A way the fake deviates from the module's contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Defect {
    /// Copies with undefined flag bits go through.
    AcceptsUnknownCopyFlags,
    /// Ranges that overflow are reported as merely out of range.
    MissesOverflow,
    /// `FREE` ignores its reserved field.
    IgnoresReservedFields,
    /// Any open file may use any handle.
    SharesHandlesBetweenFiles,
    /// User mappings survive `FREE`.
    KeepsFreedMappings,
    /// User mappings and copies survive unbinding the GPU.
    IgnoresUnbind,
    /// Closing a file leaks its buffers.
    LeaksBuffersOfClosedFiles,
    /// Every copy into a buffer of this node arrives corrupt.
    CorruptsCopiesTo(u32),
    /// Peers without a p2p link are mapped and copied to directly.
    MapsWithoutLink,
    /// The node is world-writable.
    WorldWritableNode,
    /// `MAP_PEER` refusals carry no denial reason.
    DeniesWithoutReason,
    /// Asynchronous copies never signal their eventfd.
    LosesEventfdSignals,
    /// `COPY_SUBMIT` never answers `EBUSY`.
    IgnoresAsyncCopyLimit,
    /// `COPY_WAIT` does not reap: a ticket stays valid after its copy was reported.
    KeepsReapedTickets,
}

/// The module's `COPY_CHUNK`: a copy held by the fault point sleeps between chunks of it.
const COPY_CHUNK: u64 = 1 << 20;

/// The reason bits of the fake's `MAP_PEER` refusals (any non-zero value will do).
const DENIAL_REASONS: u32 = 1;

#[derive(Clone, Copy, Debug)]
struct FakeBuffer {
    file: u32,
    buffer: Buffer,
    node: u32,
}

/// A submitted copy not yet reaped (its bytes moved at submission).
#[derive(Clone, Copy, Debug)]
struct FakeCopy {
    file: u32,
    ticket: u64,
    path: u32,
    /// How long it still runs, held by the fault point (0: it has ended).
    running_ns: u64,
    /// The caller's eventfd, or `abi::NO_EVENTFD`.
    eventfd: i32,
}

#[derive(Debug, Default)]
struct Model {
    next_handle: u32,
    next_file: u32,
    buffers: BTreeMap<u32, FakeBuffer>,
    /// Each buffer's bytes, by handle.
    bytes: BTreeMap<u32, Vec<u8>>,
    /// `(handle, peer gpu_id)`.
    peer_maps: BTreeSet<(u32, u32)>,
    copies: Vec<FakeCopy>,
    next_ticket: u64,
    /// The `delay_copy_chunk_ms` fault point.
    delay_copy_chunk_ms: u32,
}

/// One open file of the fake device.
pub struct FakeBackend {
    file: u32,
    gpus: Vec<GpuRef>,
    links: BTreeSet<(u32, u32)>,
    defects: Vec<Defect>,
    model: Rc<RefCell<Model>>,
}

/// A context over the VM machine's fixture root whose device is the fake with `defects`.
pub fn fake_context(defects: &[Defect]) -> Context {
    fake_context_at(&fixture_root(), defects)
}

/// The fixture root of the emulated 3-GPU machine (module loaded).
pub fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vm-mixed-three-gpus")
}

/// A context over `root` whose device is the fake with `defects`.
pub fn fake_context_at(root: &Path, defects: &[Defect]) -> Context {
    let defects = defects.to_vec();
    Context::new(root, ModuleState::Loaded).with_device(Arc::new(move |context: &Context| {
        let topology = match context.module_tree() {
            Some(Ok(topology)) => topology.clone(),
            other => return Err(format!("no module topology: {other:?}")),
        };
        let all = gpus(&topology);
        let links = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (a, b)))
            .filter(|(a, b)| topology.p2p_link(a.node, b.node).is_some())
            .map(|(a, b)| (a.gpu_id, b.gpu_id))
            .collect();
        Ok(Box::new(FakeBackend {
            file: 0,
            gpus: all,
            links,
            defects: defects.clone(),
            model: Rc::new(RefCell::new(Model {
                next_handle: 1,
                next_file: 1,
                next_ticket: 1,
                ..Model::default()
            })),
        }) as Box<dyn Backend>)
    }))
}

fn refuse<T>(error: AbiError) -> Result<T, Refusal> {
    Err(Errno::of(error).into())
}

/// What the module checks of `COPY_SUBMIT`'s `eventfd`: `EBADF` when it is not open, `EINVAL`
/// when it is no eventfd.
fn check_eventfd(fd: i32) -> Result<(), Errno> {
    let target =
        std::fs::read_link(format!("/proc/self/fd/{fd}")).map_err(|_| Errno(libc::EBADF))?;
    if target.to_string_lossy() == "anon_inode:[eventfd]" {
        Ok(())
    } else {
        Err(Errno(libc::EINVAL))
    }
}

/// Adds 1 to the eventfd `fd`.
fn signal_eventfd(fd: i32) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: `one` is readable for the 8 bytes written; `fd` is the case's open eventfd.
    let _ = unsafe { libc::write(fd, one.as_ptr().cast(), 8) };
}

impl FakeBackend {
    fn has(&self, defect: Defect) -> bool {
        self.defects.contains(&defect)
    }

    fn gpu(&self, gpu_id: u32) -> Result<GpuRef, Errno> {
        self.gpus
            .iter()
            .copied()
            .find(|gpu| gpu.gpu_id == gpu_id)
            .ok_or(Errno::of(AbiError::UnknownGpu))
    }

    fn buffer(&self, handle: u32) -> Result<FakeBuffer, Errno> {
        match self.model.borrow().buffers.get(&handle) {
            Some(found)
                if found.file == self.file || self.has(Defect::SharesHandlesBetweenFiles) =>
            {
                Ok(*found)
            }
            _ => Err(Errno::of(AbiError::UnknownHandle)),
        }
    }

    fn range(&self, offset: u64, len: u64, size: u64) -> Result<(), Errno> {
        match abi::check_range(offset, len, size) {
            Err(AbiError::Overflow) if self.has(Defect::MissesOverflow) => {
                Err(Errno::of(AbiError::OutOfRange))
            }
            other => other.map_err(Errno::of),
        }
    }

    fn alloc(&self, gpu_id: u32, size: u64) -> Result<Reply, Refusal> {
        let gpu = self.gpu(gpu_id)?;
        let size = abi::buffer_size(size).map_err(Errno::of)?;
        let mut model = self.model.borrow_mut();
        let used: u64 = model
            .buffers
            .values()
            .filter(|b| b.buffer.gpu_id == gpu_id)
            .map(|b| b.buffer.size)
            .sum();
        if used + size > VRAM {
            return refuse(AbiError::NoVram);
        }
        let handle = model.next_handle;
        model.next_handle += 1;
        let buffer = Buffer {
            handle,
            gpu_id,
            size,
            vram_offset: used,
            mmap_offset: abi::mmap_offset(handle),
        };
        model.buffers.insert(
            handle,
            FakeBuffer {
                file: self.file,
                buffer,
                node: gpu.node,
            },
        );
        model.bytes.insert(handle, vec![0; size as usize]);
        Ok(Reply::Buffer(buffer))
    }

    /// Checks a copy as `COPY` does, moves its bytes and says which path it took.
    fn copy(&self, args: &CopyArgs) -> Result<CopyPath, Refusal> {
        if args.flags & !abi::COPY_FLAGS != 0 && !self.has(Defect::AcceptsUnknownCopyFlags) {
            return refuse(AbiError::InvalidArgument);
        }
        if args.flags & abi::COPY_FLAGS == abi::COPY_FLAGS {
            return refuse(AbiError::InvalidArgument);
        }
        let src = self.buffer(args.src_handle)?;
        let dst = self.buffer(args.dst_handle)?;
        self.range(args.src_offset, args.size, src.buffer.size)?;
        self.range(args.dst_offset, args.size, dst.buffer.size)?;
        let direct = args.flags & abi::COPY_STAGED == 0;
        let path = if direct && src.buffer.gpu_id != dst.buffer.gpu_id {
            let linked = self.links.contains(&(src.buffer.gpu_id, dst.buffer.gpu_id))
                || self.has(Defect::MapsWithoutLink);
            let mapped = self
                .model
                .borrow()
                .peer_maps
                .contains(&(dst.buffer.handle, src.buffer.gpu_id));
            match (linked, mapped, args.flags & abi::COPY_DIRECT != 0) {
                (true, true, _) => CopyPath::Direct,
                (true, false, true) => return refuse(AbiError::NotMappedForPeer),
                (false, _, true) => return refuse(AbiError::NoPeerLink),
                _ => CopyPath::Staged,
            }
        } else if direct {
            CopyPath::Direct
        } else {
            CopyPath::Staged
        };
        let (from, to, len) = (
            args.src_offset as usize,
            args.dst_offset as usize,
            args.size as usize,
        );
        let mut model = self.model.borrow_mut();
        let mut moved = model.bytes[&src.buffer.handle][from..from + len].to_vec();
        if self.has(Defect::CorruptsCopiesTo(dst.node)) {
            if let Some(first) = moved.first_mut() {
                *first = !*first;
            }
        }
        if let Some(target) = model.bytes.get_mut(&dst.buffer.handle) {
            target[to..to + len].copy_from_slice(&moved);
        }
        Ok(path)
    }

    fn copy_submit(&self, args: &CopySubmitArgs) -> Result<Reply, Refusal> {
        let path = self.copy(&args.copy_args())?;
        if args.eventfd != abi::NO_EVENTFD {
            check_eventfd(args.eventfd)?;
        }
        let mut model = self.model.borrow_mut();
        let unreaped = model.copies.iter().filter(|c| c.file == self.file).count();
        if unreaped >= abi::DEFAULT_MAX_ASYNC_COPIES_PER_FILE as usize
            && !self.has(Defect::IgnoresAsyncCopyLimit)
        {
            return refuse(AbiError::TooManyCopies);
        }
        let ticket = model.next_ticket;
        model.next_ticket += 1;
        let pauses = args.size.div_ceil(COPY_CHUNK).saturating_sub(1);
        let copy = FakeCopy {
            file: self.file,
            ticket,
            path: match path {
                CopyPath::Direct => abi::PATH_DIRECT,
                CopyPath::Staged => abi::PATH_STAGED,
            },
            running_ns: pauses * u64::from(model.delay_copy_chunk_ms) * 1_000_000,
            eventfd: args.eventfd,
        };
        if copy.running_ns == 0 {
            self.ended(&copy);
        }
        model.copies.push(copy);
        Ok(Reply::Submitted(ticket))
    }

    /// `copy` has just ended: its eventfd is signalled.
    fn ended(&self, copy: &FakeCopy) {
        if copy.eventfd != abi::NO_EVENTFD && !self.has(Defect::LosesEventfdSignals) {
            signal_eventfd(copy.eventfd);
        }
    }

    fn copy_wait(&self, args: &CopyWaitArgs) -> Result<Reply, Refusal> {
        let mut model = self.model.borrow_mut();
        let index = model
            .copies
            .iter()
            .position(|c| c.file == self.file && c.ticket == args.ticket)
            .ok_or(Errno::of(AbiError::UnknownHandle))?;
        let copy = model.copies[index];
        if copy.running_ns > 0 {
            if args.timeout_ns < copy.running_ns {
                return refuse(AbiError::NotEnded);
            }
            model.copies[index].running_ns = 0;
            self.ended(&copy);
        }
        if !self.has(Defect::KeepsReapedTickets) {
            model.copies.remove(index);
        }
        Ok(Reply::Waited(CopyWaitArgs {
            status: 0,
            path: copy.path,
            nanoseconds: 1,
            ..*args
        }))
    }
}

impl Backend for FakeBackend {
    fn submit(&self, request: &Request) -> Result<Reply, Refusal> {
        match *request {
            Request::Alloc { gpu_id, size } => self.alloc(gpu_id, size),
            Request::Free(args) => {
                if args.reserved != 0 && !self.has(Defect::IgnoresReservedFields) {
                    return refuse(AbiError::InvalidArgument);
                }
                self.buffer(args.handle)?;
                let mut model = self.model.borrow_mut();
                model.buffers.remove(&args.handle);
                model.bytes.remove(&args.handle);
                Ok(Reply::Done)
            }
            Request::Info { handle } => {
                let found = self.buffer(handle)?;
                Ok(Reply::Info(InfoArgs {
                    handle,
                    gpu_id: found.buffer.gpu_id,
                    size: found.buffer.size,
                    vram_offset: found.buffer.vram_offset,
                    mmap_offset: found.buffer.mmap_offset,
                    phys_address: 0xfe00_0000 + found.buffer.vram_offset,
                    ..InfoArgs::default()
                }))
            }
            Request::MapPeer {
                handle,
                peer_gpu_id,
            } => {
                let found = self.buffer(handle)?;
                self.gpu(peer_gpu_id)?;
                if !self.links.contains(&(peer_gpu_id, found.buffer.gpu_id))
                    && !self.has(Defect::MapsWithoutLink)
                {
                    return Err(Refusal {
                        errno: Errno::of(AbiError::NoPeerLink),
                        denial_reasons: if self.has(Defect::DeniesWithoutReason) {
                            0
                        } else {
                            DENIAL_REASONS
                        },
                    });
                }
                self.model
                    .borrow_mut()
                    .peer_maps
                    .insert((handle, peer_gpu_id));
                Ok(Reply::Mapped(PeerMapping {
                    bus_address: 0xfe00_0000 + found.buffer.vram_offset,
                    map_type: abi::MAP_TYPE_BUS_ADDR,
                }))
            }
            Request::UnmapPeer {
                handle,
                peer_gpu_id,
            } => {
                self.buffer(handle)?;
                self.model
                    .borrow_mut()
                    .peer_maps
                    .remove(&(handle, peer_gpu_id));
                Ok(Reply::Done)
            }
            Request::Copy(args) => self.copy(&args).map(|path| {
                Reply::Copied(CopyOutcome {
                    path,
                    nanoseconds: 1,
                })
            }),
            Request::CopySubmit(args) => self.copy_submit(&args),
            Request::CopyWait(args) => self.copy_wait(&args),
            Request::Mmap { mmap_offset, size } => {
                let (handle, _) = abi::split_mmap_offset(mmap_offset);
                let found = self.buffer(handle)?;
                if size > found.buffer.size {
                    return refuse(AbiError::OutOfRange);
                }
                Ok(Reply::Done)
            }
            Request::Ioctl { command } => {
                if cmd::ALL.contains(&command) {
                    Ok(Reply::Done)
                } else {
                    refuse(AbiError::UnknownCommand)
                }
            }
        }
    }

    fn fill(&self, buffer: &Buffer, seed: u64) -> Result<u64, String> {
        let mut model = self.model.borrow_mut();
        let bytes = model
            .bytes
            .get_mut(&buffer.handle)
            .ok_or("fill of an unknown buffer")?;
        fill_random(bytes, seed);
        Ok(checksum(bytes))
    }

    fn checksum(&self, buffer: &Buffer) -> Result<u64, String> {
        self.model
            .borrow()
            .bytes
            .get(&buffer.handle)
            .map(|bytes| checksum(bytes))
            .ok_or_else(|| "checksum of an unknown buffer".into())
    }

    fn read(&self, buffer: &Buffer) -> Result<Vec<u8>, String> {
        self.model
            .borrow()
            .bytes
            .get(&buffer.handle)
            .cloned()
            .ok_or_else(|| "read of an unknown buffer".into())
    }

    fn delay_copy_chunks(&self, ms: u32) -> Result<(), String> {
        self.model.borrow_mut().delay_copy_chunk_ms = ms;
        Ok(())
    }

    fn reopen(&self) -> Result<Box<dyn Backend>, String> {
        let file = {
            let mut model = self.model.borrow_mut();
            model.next_file += 1;
            model.next_file
        };
        Ok(Box::new(FakeBackend {
            file,
            gpus: self.gpus.clone(),
            links: self.links.clone(),
            defects: self.defects.clone(),
            model: Rc::clone(&self.model),
        }))
    }

    fn probe(&self, probe: &Probe) -> ProbeOutcome {
        let died = ProbeOutcome {
            signal: Some(super::probe::SIGBUS),
            ..ProbeOutcome::default()
        };
        let survived = ProbeOutcome {
            code: Some(1),
            output: "read 0x5a through the mapping".into(),
            ..ProbeOutcome::default()
        };
        match probe {
            Probe::ForeignHandle { handle, .. } => {
                let other = self.reopen().ok();
                let usable = other
                    .is_some_and(|other| other.submit(&Request::Info { handle: *handle }).is_ok());
                ProbeOutcome {
                    code: Some(i32::from(usable)),
                    ..ProbeOutcome::default()
                }
            }
            Probe::TouchAfterFree { .. } if self.has(Defect::KeepsFreedMappings) => survived,
            Probe::TouchAfterFree { .. } => died,
            Probe::MmapRacingFree {
                first_round,
                rounds,
                ..
            } if self.has(Defect::KeepsFreedMappings) => ProbeOutcome {
                code: Some(0),
                output: (*first_round..*rounds)
                    .map(|round| format!("round {round}\nstale {round}\n"))
                    .collect(),
                ..ProbeOutcome::default()
            },
            Probe::MmapRacingFree { first_round, .. } => ProbeOutcome {
                output: format!("round {first_round}\n"),
                ..died
            },
            Probe::TouchAfterUnbind { .. } if self.has(Defect::IgnoresUnbind) => ProbeOutcome {
                output: "copy: expected ENODEV, got Ok(..)\n".into(),
                ..survived
            },
            Probe::TouchAfterUnbind { .. } => ProbeOutcome {
                output: "copy: ok\n".into(),
                ..died
            },
            // The fake's copies end at once unless held; a dying file cancels them at once.
            Probe::DieWithCopyInFlight { .. } => ProbeOutcome {
                signal: Some(super::probe::SIGKILL),
                ..ProbeOutcome::default()
            },
            // The campaign starts its workers, and the hotplug suite this probe, on the real
            // device only.
            Probe::StressWorker(_) | Probe::TouchUntilRevoked { .. } => ProbeOutcome {
                code: Some(2),
                output: "the fake device runs no long-lived probe".into(),
                ..ProbeOutcome::default()
            },
        }
    }

    fn node_mode(&self) -> Result<NodeMode, String> {
        Ok(NodeMode {
            char_device: true,
            permissions: if self.has(Defect::WorldWritableNode) {
                0o666
            } else {
                0o660
            },
            uid: 0,
            gid: 0,
        })
    }
}

impl Drop for FakeBackend {
    fn drop(&mut self) {
        let file = self.file;
        // Closing cancels the copies still in flight: they end (ECANCELED) now.
        let copies = std::mem::take(&mut self.model.borrow_mut().copies);
        let (mine, others): (Vec<FakeCopy>, Vec<FakeCopy>) =
            copies.into_iter().partition(|c| c.file == file);
        for copy in mine.iter().filter(|c| c.running_ns > 0) {
            self.ended(copy);
        }
        self.model.borrow_mut().copies = others;
        if self.has(Defect::LeaksBuffersOfClosedFiles) {
            return;
        }
        let mut model = self.model.borrow_mut();
        model.buffers.retain(|_, found| found.file != file);
        let Model { buffers, bytes, .. } = &mut *model;
        bytes.retain(|handle, _| buffers.contains_key(handle));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::cases::{abi, async_copy, device, isolation, transfer};
    use crate::report::Outcome;
    use crate::runner::{run, Test};
    use crate::Filter;

    /// A root with the fixture machine's module topology and its last GPU bound to the
    /// driver (so the unbind cases run).
    fn root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys");
        std::fs::create_dir_all(&sys).unwrap();
        std::os::unix::fs::symlink(fixture_root().join("sys/kernel"), sys.join("kernel")).unwrap();
        let driver = sys.join("bus/pci/drivers/hsa_p2p");
        std::fs::create_dir_all(driver.join("0000:05:00.0")).unwrap();
        std::fs::write(driver.join("bind"), "").unwrap();
        dir
    }

    /// The device suites, and the `isolation` cases that go through the backend.
    fn device_tests() -> Vec<Test> {
        let isolation = isolation::TESTS
            .iter()
            .filter(|test| isolation::THROUGH_BACKEND.contains(&test.name));
        [
            transfer::TESTS,
            async_copy::TESTS,
            abi::TESTS,
            device::TESTS,
        ]
        .concat()
        .into_iter()
        .chain(isolation.copied())
        .collect()
    }

    /// The full names of the device cases that fail on a fake with `defects`; every other
    /// case must pass (none may skip on this machine).
    fn failing(defects: &[Defect]) -> BTreeSet<String> {
        let root = root();
        let context = fake_context_at(root.path(), defects);
        let run = run("fake", &device_tests(), &Filter::default(), &context);
        assert_eq!(run.cases.len(), device_tests().len());
        for case in &run.cases {
            assert!(
                !case.outcome.is_skip(),
                "{}: {:?}",
                case.full_name(),
                case.outcome
            );
        }
        assert_eq!(
            std::fs::read_to_string(root.path().join("sys/bus/pci/drivers/hsa_p2p/bind")).unwrap(),
            "0000:05:00.0",
            "the unbound GPU is bound again"
        );
        run.cases
            .iter()
            .filter(|case| case.outcome.is_failure())
            .map(Case::full_name)
            .collect()
    }

    use crate::report::Case;

    #[test]
    fn every_device_case_passes_on_a_device_that_keeps_the_contract() {
        assert_eq!(failing(&[]), BTreeSet::new());
    }

    #[test]
    fn each_defect_fails_the_cases_that_exist_to_catch_it() {
        let table: &[(Defect, &[&str])] = &[
            (
                Defect::AcceptsUnknownCopyFlags,
                &["abi.copy_unknown_flags", "abi.submit_unknown_flags"],
            ),
            (
                Defect::MissesOverflow,
                &["abi.copy_length_overflow", "abi.copy_offset_overflow"],
            ),
            (
                Defect::IgnoresReservedFields,
                &["abi.free_reserved_field_set"],
            ),
            (
                Defect::SharesHandlesBetweenFiles,
                &["device.another_process_cannot_use_a_handle"],
            ),
            (
                Defect::KeepsFreedMappings,
                &[
                    "device.freed_buffer_mapping_faults",
                    "isolation.mmap_racing_free_keeps_no_view",
                ],
            ),
            (
                Defect::IgnoresUnbind,
                &[
                    "device.unbound_gpu_buffer_copy_fails",
                    "device.unbound_gpu_buffer_mapping_faults",
                ],
            ),
            (
                Defect::LeaksBuffersOfClosedFiles,
                &["device.closing_the_file_frees_its_buffers"],
            ),
            (
                Defect::CorruptsCopiesTo(2),
                &[
                    "transfer.direct_copy_over_every_p2p_link_is_verified",
                    "transfer.staged_copy_between_every_pair_is_verified",
                    "async_copy.direct_copies_in_flight_over_every_p2p_link_are_verified",
                    "async_copy.staged_copies_in_flight_between_every_pair_are_verified",
                    "device.copies_between_every_ordered_pair",
                ],
            ),
            (
                Defect::MapsWithoutLink,
                &[
                    "transfer.pairs_without_p2p_link_are_refused",
                    "abi.map_for_a_peer_without_p2p_link",
                    "device.copies_between_every_ordered_pair",
                ],
            ),
            (Defect::WorldWritableNode, &["device.node_is_0660"]),
            (
                Defect::DeniesWithoutReason,
                &["device.copies_between_every_ordered_pair"],
            ),
            (
                Defect::LosesEventfdSignals,
                &[
                    "async_copy.the_eventfd_counts_every_end",
                    "async_copy.a_cancelled_copy_signals_its_eventfd",
                ],
            ),
            (
                Defect::IgnoresAsyncCopyLimit,
                &["async_copy.submissions_beyond_the_limit_are_busy"],
            ),
            (
                Defect::KeepsReapedTickets,
                &[
                    "async_copy.a_reaped_ticket_is_unknown",
                    "async_copy.submissions_beyond_the_limit_are_busy",
                ],
            ),
        ];
        for (defect, expected) in table {
            let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
            assert_eq!(failing(&[*defect]), expected, "{defect:?}");
        }
    }

    #[test]
    fn the_pair_copies_describe_every_pair_for_the_host() {
        let root = root();
        let mut context = fake_context_at(root.path(), &[]);
        context.pair_copy_bytes = 4 << 20;
        let run = run(
            "fake",
            device::TESTS,
            &Filter::new(["device.copies_*"]),
            &context,
        );
        assert_eq!(run.cases[0].outcome, Outcome::Pass);
        let pairs: Vec<(u32, u32, &str, bool)> = run
            .copies
            .iter()
            .map(|c| (c.from, c.to, c.path.name(), c.direct_refused))
            .collect();
        assert_eq!(
            pairs,
            [
                (1, 2, "direct", false),
                (1, 3, "staged", true),
                (2, 1, "direct", false),
                (2, 3, "staged", true),
                (3, 1, "staged", true),
                (3, 2, "staged", true),
            ]
        );
        assert!(run.copies.iter().all(|c| c.size == 4 << 20));
        assert_eq!(run.copies[0].seed, device::source_seed(1));
    }
}
