//! The module under attack: `/dev/hsa_p2p` is opened by unprivileged users, so no file may see
//! another's VRAM, no mapping may outlive the VRAM it shows (FREE, unbind), no peer mapping may
//! outlive either GPU, a long copy may not block other users, and one file may not take
//! everything. Races are run with several threads; unbinding tests rebind the GPU and put the
//! GPUs back in their bind order before they return.
//!
//! Every case starts with [`Session::open`] (which skips or fails for a missing module by
//! itself). The cases in [`THROUGH_BACKEND`] then talk to `session.backend` only, so the host
//! tests run them against the fake; the others need what the `Backend` trait does not model
//! (threads sharing one open file, `fork`, unaligned copies, protection flags, unbinding with
//! live peer mappings, the kernel log, fault points) and open the real device at
//! [`Context::device_path`]. They skip (with the reason) when the machine lacks what a case
//! needs (a p2p link), and never pass without having checked.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use hsa_p2p_core::abi::{self, AbiError};
use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::device::transfer::{gpus, GpuRef};
use hsa_p2p_runtime::device::{
    fill_random, random_bytes, Buffer, CopyRequest, Device, PathChoice, WaitTimeout,
};
use hsa_p2p_runtime::stats::median;
use hsa_p2p_runtime::sysfs::read_topology;

use crate::context::Context;
use crate::device::{Probe, Session};
use crate::guest::fault_point::FaultPoint;
use crate::guest::kernel_log;
use crate::guest::pci_bind::{self, restore_bind_order, Unbound};
use crate::report::Outcome;
use crate::runner::{Test, TestOutput};
use crate::stress::window::{Access, Window};

/// The cases that reach the device through `session.backend` only.
pub const THROUGH_BACKEND: &[&str] = &["mmap_racing_free_keeps_no_view"];

/// The `isolation` suite.
pub const TESTS: &[Test] = &[
    Test {
        suite: "isolation",
        name: "new_buffers_read_as_zeros",
        description: "VRAM another file wrote and freed reads as zeros in the next file's buffer",
        run: new_buffers_read_as_zeros,
    },
    Test {
        suite: "isolation",
        name: "mmap_racing_free_keeps_no_view",
        description: "a mapping made while another thread frees the buffer shows no VRAM afterwards",
        run: mmap_racing_free_keeps_no_view,
    },
    Test {
        suite: "isolation",
        name: "unbind_removes_every_peer_mapping",
        description: "unbinding the accessor or the owner of a peer mapping removes it and every view of the owner's VRAM",
        run: unbind_removes_every_peer_mapping,
    },
    Test {
        suite: "isolation",
        name: "unbind_ends_copies_in_flight_with_enodev",
        description: "unbinding the destination's GPU under an asynchronous copy held in flight (fault point) ends it with status ENODEV within a bound, and leaves the source GPU's data intact",
        run: unbind_ends_copies_in_flight_with_enodev,
    },
    Test {
        suite: "isolation",
        name: "map_peer_racing_owner_unbind_is_clean",
        description: "the owner unbinds while MAP_PEER holds its P2PDMA provider (fault point): MAP_PEER fails cleanly or its mapping goes with the unbind, no kernel report",
        run: map_peer_racing_owner_unbind_is_clean,
    },
    Test {
        suite: "isolation",
        name: "failed_bind_leaves_no_phantom",
        description: "a GPU whose probe fails after it joined the registry is gone: binding it again lists it once",
        run: failed_bind_leaves_no_phantom,
    },
    Test {
        suite: "isolation",
        name: "gpu_ids_survive_unbind_and_rebind",
        description: "unbinding a GPU changes no other GPU's gpu_id, and binding it again gives it its own back",
        run: gpu_ids_survive_unbind_and_rebind,
    },
    Test {
        suite: "isolation",
        name: "long_copy_does_not_block_mmap",
        description: "a long copy does not hold the file's lock: mmap of another buffer completes during it",
        run: long_copy_does_not_block_mmap,
    },
    Test {
        suite: "isolation",
        name: "killed_copy_stops_between_chunks",
        description: "a process killed during a long copy stops it at a chunk boundary instead of finishing it",
        run: killed_copy_stops_between_chunks,
    },
    Test {
        suite: "isolation",
        name: "killed_alloc_stops_zeroing",
        description: "a process killed while ALLOC zeroes a large buffer is reaped at once, not after the whole buffer is zeroed",
        run: killed_alloc_stops_zeroing,
    },
    Test {
        suite: "isolation",
        name: "one_file_cannot_take_every_buffer",
        description: "one file is refused more than max_buffers_per_file buffers (ENOSPC); another file still gets VRAM",
        run: one_file_cannot_take_every_buffer,
    },
    Test {
        suite: "isolation",
        name: "handles_stay_distinct_after_the_counter_wraps",
        description: "after the handle counter wraps (fault point), new handles are never 0 or a live handle of the file, and a FREE in one file leaves another file's buffer of the same handle mapped",
        run: handles_stay_distinct_after_the_counter_wraps,
    },
    Test {
        suite: "isolation",
        name: "copies_are_exact_at_any_offset",
        description: "direct and staged copies at unaligned offsets and sizes move exactly the bytes asked for",
        run: copies_are_exact_at_any_offset,
    },
    Test {
        suite: "isolation",
        name: "split_copies_are_exact_at_any_offset",
        description: "direct copies split across the copy engines, at unaligned offsets and sizes, move exactly the bytes asked for",
        run: split_copies_are_exact_at_any_offset,
    },
    Test {
        suite: "isolation",
        name: "vram_has_one_allocator",
        description: "no GPU's VRAM BAR is also offered to the kernel's P2PDMA memory pool (p2pmem)",
        run: vram_has_one_allocator,
    },
    Test {
        suite: "isolation",
        name: "read_only_files_map_read_only",
        description: "a file opened read-only maps its buffers shared and read-only, never writable",
        run: read_only_files_map_read_only,
    },
    Test {
        suite: "isolation",
        name: "mappings_are_never_executable",
        description: "an executable mapping is refused and a mapping cannot be made executable later",
        run: mappings_are_never_executable,
    },
];

/// What the cases work on: the machine's paths and the topology as published now.
struct Machine {
    root: PathBuf,
    tree: PathBuf,
    node: PathBuf,
    driver: PathBuf,
    topology: Topology,
}

impl Machine {
    /// The machine with its topology read again (after an unbind and rebind).
    fn reread(&self) -> Result<Machine, String> {
        Ok(Machine {
            root: self.root.clone(),
            tree: self.tree.clone(),
            node: self.node.clone(),
            driver: self.driver.clone(),
            topology: read_topology(&self.tree).map_err(|error| error.to_string())?,
        })
    }

    fn open(&self) -> Result<Device, String> {
        Device::open_at(&self.node).map_err(|error| error.to_string())
    }

    fn gpus(&self) -> Vec<GpuRef> {
        gpus(&self.topology)
    }

    /// An (accessor, owner) pair with a p2p link, if the machine has one.
    fn linked_pair(&self) -> Option<(GpuRef, GpuRef)> {
        let gpus = self.gpus();
        gpus.iter()
            .flat_map(|a| gpus.iter().map(move |o| (*a, *o)))
            .find(|(a, o)| a.node != o.node && self.topology.p2p_link(a.node, o.node).is_some())
    }

    /// [`Self::linked_pair`], or why a case needing one cannot run.
    fn linked_pair_or_skip(&self) -> Result<(GpuRef, GpuRef), Skip> {
        self.linked_pair()
            .ok_or_else(|| Skip("the module's topology has no p2p link".into()))
    }

    /// The GPUs' PCI addresses in node order (= bind order).
    fn bind_order(&self) -> Vec<String> {
        self.gpus()
            .into_iter()
            .map(|gpu| self.pci_address(gpu))
            .collect()
    }

    /// Runs `body`, which unbinds and rebinds GPUs, then puts the GPUs back in this bind
    /// order; a failure to do so is a problem of the case.
    fn keeping_bind_order(
        &self,
        body: impl FnOnce(&Machine) -> Result<Vec<String>, Skip>,
    ) -> Result<Vec<String>, Skip> {
        let mut problems = body(self)?;
        let restored = self.reread().and_then(|now| {
            restore_bind_order(&self.driver, &self.bind_order(), &now.bind_order())
        });
        if let Err(error) = restored {
            problems.push(format!("bind order not restored: {error}"));
        }
        Ok(problems)
    }

    /// The PCI address of a GPU.
    fn pci_address(&self, gpu: GpuRef) -> String {
        self.topology
            .node(gpu.node)
            .map(|node| node.pci_address().to_string())
            .unwrap_or_default()
    }
}

/// The machine of a session on `context`, or the outcome of a case that cannot run.
fn machine(context: &Context) -> Result<Machine, TestOutput> {
    let (session, _) = Session::open_on_first_gpu(context)?;
    Ok(Machine {
        root: context.root().to_path_buf(),
        tree: context.module_topology_path(),
        node: context.device_path(),
        driver: context.driver_path(),
        topology: session.topology,
    })
}

/// Runs a case body on the machine: `Ok(problems)` (none = pass), `Err` for a skip reason.
fn case(context: &Context, body: impl FnOnce(&Machine) -> Result<Vec<String>, Skip>) -> TestOutput {
    match machine(context) {
        Err(output) => output,
        Ok(machine) => match body(&machine) {
            Ok(problems) => Outcome::from_problems(problems).into(),
            Err(Skip(reason)) => Outcome::skip(reason).into(),
        },
    }
}

/// Why a case could not run here.
struct Skip(String);

/// Turns an early failure into the case's single problem.
macro_rules! attempt {
    ($result:expr, $what:expr) => {
        match $result {
            Ok(value) => value,
            Err(error) => return Ok(vec![format!("{}: {error}", $what)]),
        }
    };
}

const PATTERN: u8 = 0xa5;

fn new_buffers_read_as_zeros(context: &Context) -> TestOutput {
    case(context, |machine| {
        const SIZE: u64 = 256 << 10;
        let gpu = machine.gpus()[0];
        let first = attempt!(machine.open(), "open");
        let buffer = attempt!(first.alloc(gpu.gpu_id, SIZE), "alloc (first file)");
        {
            let mut view = attempt!(first.mmap(&buffer), "mmap (first file)");
            view.as_mut_slice().fill(PATTERN);
        }
        attempt!(first.free(buffer.handle), "free (first file)");
        let second = attempt!(machine.open(), "open");
        let mut problems = Vec::new();
        // Same size, same GPU: first-fit hands out the range just freed, or one never used;
        // either way it must read as zeros.
        let reused = attempt!(second.alloc(gpu.gpu_id, SIZE), "alloc (second file)");
        let view = attempt!(second.mmap(&reused), "mmap (second file)");
        let dirty = view.as_slice().iter().filter(|byte| **byte != 0).count();
        if dirty != 0 {
            problems.push(format!(
                "a new buffer at VRAM offset {:#x} (the freed one was at {:#x}) has {dirty} non-zero bytes of {SIZE}",
                reused.vram_offset, buffer.vram_offset
            ));
        }
        Ok(problems)
    })
}

/// Rounds of the mmap/FREE race.
const RACE_ROUNDS: u32 = 400;

/// Runs the mmap/FREE race in probes (a mapping that is correctly gone kills its probe, so
/// the next one goes on from the following round); fails when any mapping that won the race
/// still showed VRAM.
fn mmap_racing_free_keeps_no_view(context: &Context) -> TestOutput {
    let (session, gpu) = match Session::open_on_first_gpu(context) {
        Ok(opened) => opened,
        Err(output) => return output,
    };
    let (mut raced, mut stale) = (0u32, 0u32);
    let mut next = 0;
    while next < RACE_ROUNDS {
        let outcome = session.backend.probe(&Probe::MmapRacingFree {
            gpu_id: gpu.gpu_id,
            first_round: next,
            rounds: RACE_ROUNDS,
        });
        let mut last = None;
        for line in outcome.output.lines() {
            if let Some(round) = line.strip_prefix("round ") {
                raced += 1;
                last = round.parse::<u32>().ok();
            } else if line.starts_with("stale ") {
                stale += 1;
            }
        }
        match last {
            Some(round) if outcome.died_of_sigbus() => next = round + 1,
            _ if outcome.succeeded() => break,
            _ => return Outcome::fail(format!("the race probe: {outcome:?}")).into(),
        }
    }
    if raced == 0 {
        return Outcome::skip(format!(
            "no mmap succeeded while racing FREE in {RACE_ROUNDS} rounds"
        ))
        .into();
    }
    let problems = if stale > 0 {
        vec![format!(
            "{stale} of {raced} mappings that raced a successful FREE still showed VRAM after it"
        )]
    } else {
        Vec::new()
    };
    TestOutput::with_notes(
        Outcome::from_problems(problems),
        vec![format!(
            "{raced} of {RACE_ROUNDS} mmaps succeeded while racing FREE"
        )],
    )
}

fn unbind_removes_every_peer_mapping(context: &Context) -> TestOutput {
    case(context, |machine| {
        machine.keeping_bind_order(unbind_removes_every_peer_mapping_on)
    })
}

/// Allocates a buffer on the owner of `pair` (accessor, owner), maps it for the accessor and
/// unbinds `gone` (one of the two).
fn peer_mapping_then_unbind(
    machine: &Machine,
    device: &Device,
    (accessor, owner): (GpuRef, GpuRef),
    gone: GpuRef,
) -> Result<(Buffer, Unbound), String> {
    let buffer = device
        .alloc(owner.gpu_id, 1 << 16)
        .map_err(|error| format!("alloc: {error}"))?;
    device
        .map_peer(buffer.handle, accessor.gpu_id)
        .map_err(|error| format!("map for peer: {error}"))?;
    let unbound = Unbound::unbind(&machine.driver, &machine.pci_address(gone))?;
    Ok((buffer, unbound))
}

fn unbind_removes_every_peer_mapping_on(machine: &Machine) -> Result<Vec<String>, Skip> {
    let (accessor, owner) = machine.linked_pair_or_skip()?;
    let mut problems = Vec::new();
    let device = attempt!(machine.open(), "open");
    // The accessor goes: the owner's buffer keeps no mapping for it.
    let (buffer, unbound) = attempt!(
        peer_mapping_then_unbind(machine, &device, (accessor, owner), accessor),
        "accessor"
    );
    let peers = device.info(buffer.handle).map(|info| info.peer_count);
    if peers.as_ref().ok() != Some(&0) {
        problems.push(format!(
            "after the accessor (node {}) was unbound, the owner's buffer has {peers:?} peer \
             mapping(s), expected none",
            accessor.node
        ));
    }
    attempt!(unbound.rebind(), "rebind accessor");
    // The owner goes: its buffer is revoked, its user mapping shows nothing any more.
    let again = attempt!(machine.reread(), "re-read topology");
    let (accessor, owner) = attempt!(
        again.linked_pair().ok_or("no p2p link after rebinding"),
        "topology"
    );
    let (buffer, unbound) = attempt!(
        peer_mapping_then_unbind(&again, &device, (accessor, owner), owner),
        "owner"
    );
    let info = device.info(buffer.handle);
    if !matches!(&info, Err(error) if error.abi_error() == Some(AbiError::UnknownGpu)) {
        problems.push(format!(
            "after the owner (node {}) was unbound, INFO of its buffer gave {info:?}, expected \
             ENODEV",
            owner.node
        ));
    }
    // That its user mappings are gone too is `device.unbound_gpu_buffer_mapping_faults`.
    attempt!(device.free(buffer.handle), "free after owner unbind");
    attempt!(unbound.rebind(), "rebind owner");
    Ok(problems)
}

fn unbind_ends_copies_in_flight_with_enodev(context: &Context) -> TestOutput {
    case(context, |machine| {
        machine.keeping_bind_order(unbind_ends_copies_in_flight_on)
    })
}

/// How long the fault point holds a copy between chunks while its destination is unbound, and
/// the longest the copy may take to end after the unbind.
const COPY_HOLD_MS: u64 = 500;
const COPY_END_BOUND: Duration = Duration::from_secs(10);

fn unbind_ends_copies_in_flight_on(machine: &Machine) -> Result<Vec<String>, Skip> {
    const SIZE: u64 = 8 << 20;
    const SEED: u64 = 0x0b5e_55ed;
    let gpus = machine.gpus();
    let (from, to, choice) = match machine.linked_pair() {
        Some((accessor, owner)) => (accessor, owner, PathChoice::Direct),
        None if gpus.len() >= 2 => (gpus[0], gpus[1], PathChoice::Staged),
        None => return Err(Skip("the machine has a single GPU".into())),
    };
    let hold = FaultPoint::find(&machine.root, "delay_copy_chunk_ms").map_err(Skip)?;
    let device = attempt!(machine.open(), "open");
    let src = attempt!(device.alloc(from.gpu_id, SIZE), "alloc source");
    let dst = attempt!(device.alloc(to.gpu_id, SIZE), "alloc destination");
    {
        let mut mapping = attempt!(device.mmap(&src), "map source");
        fill_random(mapping.as_mut_slice(), SEED);
    }
    if choice == PathChoice::Direct {
        attempt!(device.map_peer(dst.handle, from.gpu_id), "map for peer");
    }
    attempt!(hold.set(COPY_HOLD_MS), "arm the fault point");
    let request = CopyRequest::whole(src.handle, dst.handle, SIZE, choice);
    let ticket = attempt!(device.submit_copy(&request, None), "submit");
    std::thread::sleep(Duration::from_millis(COPY_HOLD_MS / 5));
    let unbound = attempt!(
        Unbound::unbind(&machine.driver, &machine.pci_address(to)),
        "unbind the destination's GPU"
    );
    let unbinding_done = Instant::now();
    let ended = device.wait_copy(ticket, WaitTimeout::For(COPY_END_BOUND));
    let took = unbinding_done.elapsed();
    drop(hold);
    let mut problems = Vec::new();
    match ended {
        Ok(end) if end.status == AbiError::UnknownGpu.errno() as u32 => {}
        other => problems.push(format!(
            "the copy into node {} unbound under it ended {other:?} after {took:?}, expected              status ENODEV",
            to.node
        )),
    }
    let intact = device
        .mmap(&src)
        .map(|mapping| mapping.as_slice() == random_bytes(SIZE as usize, SEED).as_slice());
    if !matches!(intact, Ok(true)) {
        problems.push(format!(
            "the source buffer on node {} (still bound) changed: {intact:?}",
            from.node
        ));
    }
    attempt!(device.free(src.handle), "free source");
    attempt!(device.free(dst.handle), "free destination");
    attempt!(unbound.rebind(), "rebind");
    Ok(problems)
}

fn map_peer_racing_owner_unbind_is_clean(context: &Context) -> TestOutput {
    case(context, |machine| {
        machine.keeping_bind_order(map_peer_racing_owner_unbind_on)
    })
}

/// How long `MAP_PEER` holds the owner's P2PDMA provider before using it (fault point
/// `delay_map_peer_ms`), and when, after `MAP_PEER` was issued, the owner is unbound.
const PROVIDER_HOLD: Duration = Duration::from_millis(3000);
const UNBIND_AFTER: Duration = Duration::from_millis(200);

/// Attempts at unbinding the owner while `MAP_PEER` holds its provider.
const RACE_ATTEMPTS: u32 = 3;

/// One `MAP_PEER` raced by an unbind of the buffer's owner: when each began and ended.
struct MapPeerRace {
    mapped: Result<hsa_p2p_runtime::device::PeerMapping, hsa_p2p_runtime::device::DeviceError>,
    /// How long `MAP_PEER` took.
    map_peer: Duration,
    /// When the unbind began and when it ended, after `MAP_PEER` was issued.
    unbind_began: Duration,
    unbind_ended: Duration,
}

/// Issues `MAP_PEER` of `buffer` for `accessor` on one thread and unbinds `owner` on another
/// [`UNBIND_AFTER`] later.
fn race_map_peer_with_unbind(
    machine: &Machine,
    device: &Device,
    buffer: &Buffer,
    accessor: GpuRef,
    owner: GpuRef,
) -> Result<(MapPeerRace, Unbound), String> {
    let issued = Instant::now();
    let (mapped, unbound) = std::thread::scope(|scope| {
        let mapper = scope.spawn(|| {
            let mapped = device.map_peer(buffer.handle, accessor.gpu_id);
            (mapped, issued.elapsed())
        });
        std::thread::sleep(UNBIND_AFTER);
        let began = issued.elapsed();
        let unbound = Unbound::unbind(&machine.driver, &machine.pci_address(owner));
        let ended = issued.elapsed();
        let mapped = mapper.join().expect("the mapping thread panicked");
        (mapped, unbound.map(|unbound| (unbound, began, ended)))
    });
    let (unbound, unbind_began, unbind_ended) = unbound?;
    let (mapped, map_peer) = mapped;
    Ok((
        MapPeerRace {
            mapped,
            map_peer,
            unbind_began,
            unbind_ended,
        },
        unbound,
    ))
}

/// `MAP_PEER` sleeps while it holds the owner's P2PDMA provider (fault point), and the owner
/// is unbound during that sleep: `MAP_PEER` must fail with the ABI's errno or succeed with a
/// mapping that the unbind then removes (so the unbind cannot end before the mapping was
/// made), and no checker may report anything.
fn map_peer_racing_owner_unbind_on(machine: &Machine) -> Result<Vec<String>, Skip> {
    machine.linked_pair_or_skip()?;
    let hold = FaultPoint::find(&machine.root, DELAY_MAP_PEER_MS).map_err(Skip)?;
    let log_before = kernel_log::read()
        .ok_or_else(|| Skip("the kernel log cannot be read (not root?)".into()))?;
    let mut problems = Vec::new();
    let mut raced = None;
    let mut missed = Vec::new();
    for _ in 0..RACE_ATTEMPTS {
        let now = attempt!(machine.reread(), "re-read topology");
        let (accessor, owner) = attempt!(
            now.linked_pair().ok_or("no p2p link after rebinding"),
            "topology"
        );
        let device = attempt!(now.open(), "open");
        let buffer = attempt!(device.alloc(owner.gpu_id, 1 << 16), "alloc");
        attempt!(
            hold.set(PROVIDER_HOLD.as_millis() as u64),
            "arm the fault point"
        );
        let race = race_map_peer_with_unbind(&now, &device, &buffer, accessor, owner);
        attempt!(hold.set(0), "disarm the fault point");
        let (race, unbound) = attempt!(race, "unbind owner");
        match device.map_peer(buffer.handle, accessor.gpu_id) {
            Err(error) if error.abi_error() == Some(AbiError::UnknownGpu) => {}
            other => problems.push(format!(
                "map for peer of an unbound owner's buffer: {other:?}, expected ENODEV"
            )),
        }
        attempt!(device.free(buffer.handle), "free");
        drop(device);
        attempt!(unbound.rebind(), "rebind owner");
        // The race was run when MAP_PEER slept in the fault point (only a mapping that got as
        // far as the owner's provider sleeps) and the unbind began before it returned.
        if race.map_peer >= PROVIDER_HOLD && race.unbind_began < race.map_peer {
            raced = Some(race);
            break;
        }
        missed.push(format!(
            "MAP_PEER took {:?} ({:?}), the unbind began after {:?}",
            race.map_peer, race.mapped, race.unbind_began
        ));
    }
    let Some(race) = raced else {
        problems.push(format!(
            "the unbind never fell inside MAP_PEER's hold of the owner's provider in \
             {RACE_ATTEMPTS} attempts: {missed:?}"
        ));
        return Ok(problems);
    };
    match &race.mapped {
        Ok(_) => {
            // The mapping was made at least PROVIDER_HOLD after MAP_PEER was issued: an unbind
            // that ended before then left the mapping behind for a device that is gone.
            if race.unbind_ended < PROVIDER_HOLD {
                problems.push(format!(
                    "MAP_PEER succeeded with a mapping made after the owner's unbind had \
                     completed (unbind {:?}..{:?} after MAP_PEER was issued; MAP_PEER held the \
                     provider until at least {PROVIDER_HOLD:?})",
                    race.unbind_began, race.unbind_ended
                ));
            }
        }
        Err(error) if error.abi_error().is_some() => {}
        Err(error) => problems.push(format!(
            "MAP_PEER racing the owner's unbind failed with an errno the ABI does not name: \
             {error}"
        )),
    }
    match kernel_log::new_reports(&log_before) {
        Some(reports) => problems.extend(
            reports
                .into_iter()
                .map(|line| format!("kernel report: {line}")),
        ),
        None => problems.push("the kernel log could not be read after the race".into()),
    }
    Ok(problems)
}

/// The module's fault points (debugfs): publications after a bind that fail, how long
/// `MAP_PEER` holds the owner's provider, the handle counter, and how long zeroing pauses
/// after each chunk.
const FAIL_PUBLISH: &str = "fail_publish";
const DELAY_MAP_PEER_MS: &str = "delay_map_peer_ms";
const NEXT_HANDLE: &str = "next_handle";
const DELAY_ZERO_CHUNK_MS: &str = "delay_zero_chunk_ms";

fn failed_bind_leaves_no_phantom(context: &Context) -> TestOutput {
    case(context, |machine| {
        machine.keeping_bind_order(failed_bind_leaves_no_phantom_on)
    })
}

fn failed_bind_leaves_no_phantom_on(machine: &Machine) -> Result<Vec<String>, Skip> {
    let fault_point = FaultPoint::find(&machine.root, FAIL_PUBLISH).map_err(Skip)?;
    let gpu = machine.gpus()[0];
    let address = machine.pci_address(gpu);
    let mut problems = Vec::new();
    let unbound = attempt!(Unbound::unbind(&machine.driver, &address), "unbind");
    attempt!(fault_point.set(1), "arm the fault point");
    if pci_bind::bind(&machine.driver, &address).is_ok() {
        problems.push(format!(
            "binding {address} succeeded although its publication failed"
        ));
    }
    drop(fault_point);
    let after_failure = attempt!(machine.reread(), "topology after the failed bind");
    let listed = |machine: &Machine| {
        machine
            .bind_order()
            .iter()
            .filter(|listed| **listed == address)
            .count()
    };
    if listed(&after_failure) != 0 {
        problems.push(format!("{address} is published although its bind failed"));
    }
    attempt!(unbound.rebind(), "bind again");
    let rebound = attempt!(machine.reread(), "topology after binding again");
    if listed(&rebound) != 1 || rebound.gpus().len() != machine.gpus().len() {
        problems.push(format!(
            "after binding {address} again, the topology lists it {} time(s) among {} GPUs (expected once among {})",
            listed(&rebound),
            rebound.gpus().len(),
            machine.gpus().len()
        ));
    }
    Ok(problems)
}

fn gpu_ids_survive_unbind_and_rebind(context: &Context) -> TestOutput {
    case(context, |machine| {
        machine.keeping_bind_order(gpu_ids_survive_unbind_and_rebind_on)
    })
}

fn gpu_ids_survive_unbind_and_rebind_on(machine: &Machine) -> Result<Vec<String>, Skip> {
    let ids = |machine: &Machine| -> Vec<(String, u32)> {
        let mut ids: Vec<(String, u32)> = machine
            .gpus()
            .into_iter()
            .map(|gpu| (machine.pci_address(gpu), gpu.gpu_id))
            .collect();
        ids.sort();
        ids
    };
    let before = ids(machine);
    let gpu = machine.gpus()[0];
    let address = machine.pci_address(gpu);
    let mut problems = Vec::new();
    let unbound = attempt!(Unbound::unbind(&machine.driver, &address), "unbind");
    let without = attempt!(machine.reread(), "topology after unbind");
    let expected: Vec<(String, u32)> = before
        .iter()
        .filter(|(listed, _)| *listed != address)
        .cloned()
        .collect();
    if ids(&without) != expected {
        problems.push(format!(
            "unbinding {address} changed the other GPUs' ids: {:?} -> {:?}",
            expected,
            ids(&without)
        ));
    }
    attempt!(unbound.rebind(), "bind again");
    let again = attempt!(machine.reread(), "topology after binding again");
    if ids(&again) != before {
        problems.push(format!(
            "binding {address} again changed gpu_ids: {:?} -> {:?}",
            before,
            ids(&again)
        ));
    }
    Ok(problems)
}

/// The largest pair of equal buffers, from `max` down to 1 MiB by halves, that `gpu` has room
/// for, or why a case needing one cannot run.
fn largest_buffer_pair(
    device: &Device,
    gpu: GpuRef,
    max: u64,
) -> Result<(Buffer, Buffer, u64), Skip> {
    std::iter::successors(Some(max), |size| Some(size / 2))
        .take_while(|size| *size >= 1 << 20)
        .find_map(|size| {
            let src = device.alloc(gpu.gpu_id, size).ok()?;
            match device.alloc(gpu.gpu_id, size) {
                Ok(dst) => Some((src, dst, size)),
                Err(_) => {
                    let _ = device.free(src.handle);
                    None
                }
            }
        })
        .ok_or_else(|| {
            Skip(format!(
                "GPU node {} has no room for two 1 MiB buffers",
                gpu.node
            ))
        })
}

fn long_copy_does_not_block_mmap(context: &Context) -> TestOutput {
    case(context, |machine| {
        const SAMPLES: usize = 8;
        // On one CPU the copying thread delays the other by whole time slices, lock or not.
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        if cpus < 2 {
            return Err(Skip(format!(
                "{cpus} CPU: waiting for a lock cannot be told from waiting for the CPU"
            )));
        }
        let gpu = machine.gpus()[0];
        let device = attempt!(machine.open(), "open");
        let (src, dst, copy_size) = largest_buffer_pair(&device, gpu, 16 << 20)?;
        let small = attempt!(device.alloc(gpu.gpu_id, 1 << 16), "alloc");
        // What an mmap costs with no copy running: on a debug kernel under a loaded host it is
        // a sizeable part of a copy, and must not be taken for waiting on a lock.
        let mut alone = Vec::new();
        for _ in 0..SAMPLES {
            let started = Instant::now();
            attempt!(device.mmap(&small).map(drop), "mmap");
            alone.push(started.elapsed());
        }
        let stop = AtomicBool::new(false);
        let (copies, waits) = std::thread::scope(|scope| {
            let copier = scope.spawn(|| {
                let mut durations = Vec::new();
                while !stop.load(Relaxed) {
                    let started = Instant::now();
                    // Staged: a direct copy is split across the copy engines, which may take
                    // every CPU, and then the mmap would wait for a CPU, lock or not.
                    match device.copy(src.handle, 0, dst.handle, 0, copy_size, PathChoice::Staged) {
                        Ok(_) => durations.push(started.elapsed()),
                        Err(error) => return Err(error.to_string()),
                    }
                }
                Ok(durations)
            });
            let mut waits = Vec::new();
            for sample in 0..SAMPLES {
                std::thread::sleep(Duration::from_millis(7 * (sample as u64 + 1)));
                let started = Instant::now();
                let mapped = device.mmap(&small).map(drop);
                waits.push((started.elapsed(), mapped));
            }
            stop.store(true, Relaxed);
            (copier.join().expect("the copy thread panicked"), waits)
        });
        let copies = attempt!(copies, "copy");
        let Some(shortest) = copies.iter().min().copied() else {
            return Ok(vec!["no copy completed".into()]);
        };
        let mut problems = Vec::new();
        let mut during = Vec::new();
        for (wait, mapped) in waits {
            match mapped {
                Err(error) => problems.push(format!("mmap during a copy: {error}")),
                Ok(()) => during.push(wait),
            }
        }
        // An mmap that waits for a copy holding the lock waits, on average, half a copy; one
        // that does not costs what it costs alone. Medians, so that one preempted sample
        // (two vCPUs on a shared host) is not a verdict. No median during copies: every mmap
        // then failed, and each failure is a problem already.
        let (Some(alone), Some(during)) = (median(&alone), median(&during)) else {
            return Ok(problems);
        };
        if during.saturating_sub(alone) * 4 > shortest {
            problems.push(format!(
                "mmap of another buffer took {during:?} (median) during {copy_size}-byte copies that take {shortest:?}, {alone:?} with no copy: the copy holds the file's lock"
            ));
        }
        Ok(problems)
    })
}

/// The module's copy chunk (a stopped copy ends at a multiple of it).
const COPY_CHUNK: usize = 1 << 20;

/// Kills attempted before a partial copy must have been seen.
const KILL_ATTEMPTS: u32 = 8;

/// What a copy into a zeroed destination wrote: the `[start, end)` runs of copied bytes, when
/// every other byte is untouched. A copy split across the module's copy engines writes one run
/// per engine, each from its part's start (a multiple of the chunk for these sizes).
fn copied_runs(destination: &[u8]) -> Option<Vec<(usize, usize)>> {
    if destination
        .iter()
        .any(|byte| *byte != PATTERN && *byte != 0)
    {
        return None;
    }
    let mut runs = Vec::new();
    let mut start = None;
    for (index, byte) in destination.iter().enumerate() {
        match (start, *byte == PATTERN) {
            (None, true) => start = Some(index),
            (Some(from), false) => {
                runs.push((from, index));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        runs.push((from, destination.len()));
    }
    Some(runs)
}

/// Forks a child that runs `op` (system calls only) right after telling us it is about to,
/// kills it `delay` after that and reaps it; returns how long the reaping took after the kill.
fn kill_child_during(delay: Duration, op: impl FnOnce()) -> Result<Duration, String> {
    let mut ends = [0 as libc::c_int; 2];
    // SAFETY: `ends` has room for the two descriptors.
    if unsafe { libc::pipe(ends.as_mut_ptr()) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: the runner is single-threaded between cases (every thread a case starts is
    // joined before it returns); the child only makes system calls and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: a one-byte write to our own pipe, then `op`, then exit without unwinding.
        unsafe {
            libc::write(ends[1], [1u8].as_ptr().cast(), 1);
            op();
            libc::_exit(0);
        }
    }
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    let mut byte = 0u8;
    // SAFETY: a one-byte read into `byte`, then closing our pipe ends, signalling and reaping
    // our own child.
    unsafe {
        libc::read(ends[0], std::ptr::from_mut(&mut byte).cast(), 1);
        libc::close(ends[0]);
        libc::close(ends[1]);
        std::thread::sleep(delay);
        libc::kill(pid, libc::SIGKILL);
        let killed = Instant::now();
        libc::waitpid(pid, std::ptr::null_mut(), 0);
        Ok(killed.elapsed())
    }
}

/// Forks a child that copies `src` to `dst` through the shared open file, kills it `delay`
/// after it said it was about to, and waits for it.
fn kill_during_copy(
    device: &Device,
    src: &Buffer,
    dst: &Buffer,
    delay: Duration,
) -> Result<(), String> {
    kill_child_during(delay, || {
        let _ = device.copy(src.handle, 0, dst.handle, 0, src.size, PathChoice::Auto);
    })
    .map(drop)
}

fn killed_copy_stops_between_chunks(context: &Context) -> TestOutput {
    case(context, |machine| {
        let gpu = machine.gpus()[0];
        let device = attempt!(machine.open(), "open");
        let (src, dst, size) = largest_buffer_pair(&device, gpu, 32 << 20)?;
        if size < 8 * COPY_CHUNK as u64 {
            return Err(Skip(format!(
                "GPU node {} has no room for two 8 MiB buffers",
                gpu.node
            )));
        }
        attempt!(device.mmap(&src), "mmap source")
            .as_mut_slice()
            .fill(PATTERN);
        let mut destination = attempt!(device.mmap(&dst), "mmap destination");
        let started = Instant::now();
        attempt!(
            device.copy(src.handle, 0, dst.handle, 0, size, PathChoice::Auto),
            "copy"
        );
        let copy_time = started.elapsed();
        let mut outcomes = Vec::new();
        for attempt in 0..KILL_ATTEMPTS {
            destination.as_mut_slice().fill(0);
            let delay = copy_time * (attempt + 1) / (KILL_ATTEMPTS + 2);
            attempt!(
                kill_during_copy(&device, &src, &dst, delay),
                "kill during a copy"
            );
            let Some(runs) = copied_runs(destination.as_slice()) else {
                return Ok(vec![
                    "a killed copy wrote bytes that are not the source's".into()
                ]);
            };
            let copied: usize = runs.iter().map(|(start, end)| end - start).sum();
            if copied > 0 && copied < size as usize {
                let unaligned: Vec<_> = runs
                    .iter()
                    .filter(|(start, end)| start % COPY_CHUNK != 0 || end % COPY_CHUNK != 0)
                    .collect();
                if !unaligned.is_empty() {
                    return Ok(vec![format!(
                        "a killed copy wrote {unaligned:?}, not whole chunks from a part's start"
                    )]);
                }
                return Ok(Vec::new());
            }
            outcomes.push(copied);
        }
        Ok(vec![format!(
            "{KILL_ATTEMPTS} copies of {size} bytes ({copy_time:?} each) killed part-way all ran to \
             the end or never started (bytes copied: {outcomes:?}): a fatal signal does not stop a copy"
        )])
    })
}

/// The size of the buffer a killed `ALLOC` zeroes, and how long zeroing sleeps after each of
/// its 1 MiB chunks (fault point `delay_zero_chunk_ms`), so that zeroing it takes 1.6 s
/// whatever the VRAM's speed, far longer than a killed process takes to exit.
const ZEROED_SIZE: u64 = 16 << 20;
const ZERO_CHUNK_PAUSE: Duration = Duration::from_millis(100);

/// Attempts at killing an `ALLOC` part-way through its zeroing.
const ALLOC_KILL_ATTEMPTS: u32 = 3;

fn killed_alloc_stops_zeroing(context: &Context) -> TestOutput {
    case(context, |machine| {
        let pause = FaultPoint::find(&machine.root, DELAY_ZERO_CHUNK_MS).map_err(Skip)?;
        let gpu = machine.gpus()[0];
        attempt!(
            pause.set(ZERO_CHUNK_PAUSE.as_millis() as u64),
            "arm the fault point"
        );
        let zeroing = {
            let device = attempt!(machine.open(), "open");
            let started = Instant::now();
            let buffer = device.alloc(gpu.gpu_id, ZEROED_SIZE).map_err(|error| {
                Skip(format!(
                    "GPU node {} has no room for {ZEROED_SIZE} bytes: {error}",
                    gpu.node
                ))
            })?;
            let zeroing = started.elapsed();
            attempt!(device.free(buffer.handle), "free");
            zeroing
        };
        let mut waits = Vec::new();
        for _ in 0..ALLOC_KILL_ATTEMPTS {
            let delay = zeroing / 5;
            // The child has its own open file: a buffer it got is freed when it dies.
            let waited = attempt!(
                kill_child_during(delay, || {
                    if let Ok(device) = machine.open() {
                        let _ = device.alloc(gpu.gpu_id, ZEROED_SIZE);
                    }
                }),
                "kill during an ALLOC"
            );
            // Zeroing that runs to its end keeps the killed child for the rest of it.
            if waited * 2 < zeroing.saturating_sub(delay) {
                return Ok(Vec::new());
            }
            waits.push(waited);
        }
        Ok(vec![format!(
            "{ALLOC_KILL_ATTEMPTS} ALLOCs of {ZEROED_SIZE} bytes (zeroed in {zeroing:?}) killed \
             after {:?} were reaped only {waits:?} after the kill: zeroing does not stop on a \
             fatal signal",
            zeroing / 5
        )])
    })
}

fn one_file_cannot_take_every_buffer(context: &Context) -> TestOutput {
    case(context, |machine| {
        let limit = u64::from(abi::DEFAULT_MAX_BUFFERS_PER_FILE);
        let gpu = machine.gpus()[0];
        let greedy = attempt!(machine.open(), "open");
        for index in 0..limit {
            if let Err(error) = greedy.alloc(gpu.gpu_id, abi::VRAM_PAGE) {
                return Err(Skip(format!(
                    "GPU node {} ran out after {index} one-page buffers ({error}), below the limit of {limit}",
                    gpu.node
                )));
            }
        }
        let mut problems = Vec::new();
        match greedy.alloc(gpu.gpu_id, abi::VRAM_PAGE) {
            Err(error) if error.abi_error() == Some(AbiError::NoVram) => {}
            other => problems.push(format!(
                "buffer {} of one file: {other:?}, expected ENOSPC (max_buffers_per_file = {limit})",
                limit + 1
            )),
        }
        let other = attempt!(machine.open(), "open");
        if let Err(error) = other.alloc(gpu.gpu_id, abi::VRAM_PAGE) {
            problems.push(format!("another file is refused VRAM: {error}"));
        }
        Ok(problems)
    })
}

/// Allocates `count` one-page-group buffers on `gpu` through `device`.
fn alloc_buffers(device: &Device, gpu: GpuRef, count: usize) -> Result<Vec<Buffer>, String> {
    (0..count)
        .map(|_| {
            device
                .alloc(gpu.gpu_id, 1 << 16)
                .map_err(|error| format!("alloc: {error}"))
        })
        .collect()
}

/// The handles of `buffers` that are 0 or repeat an earlier one.
fn invalid_or_repeated(buffers: &[Buffer]) -> Vec<u32> {
    let mut seen = std::collections::BTreeSet::new();
    buffers
        .iter()
        .map(|buffer| buffer.handle)
        .filter(|handle| *handle == 0 || !seen.insert(*handle))
        .collect()
}

/// Moves the handle counter (fault point `next_handle`) to the ends of its range: `first`
/// holds handle 1 from just after loading, then the counter wraps for `first` (its new handles
/// must skip 0 and its live handles) and again for `second` (which gets `first`'s handle 1,
/// as handles are per file). Both map their handle-1 buffer; `first` frees its own: `second`'s
/// mapping must keep showing `second`'s data (the mmap offset, derived from the handle, is the
/// same in both files).
fn handles_stay_distinct_after_the_counter_wraps(context: &Context) -> TestOutput {
    case(context, |machine| {
        let counter = FaultPoint::find(&machine.root, NEXT_HANDLE).map_err(Skip)?;
        let gpu = machine.gpus()[0];
        let (first, second) = (
            attempt!(machine.open(), "open"),
            attempt!(machine.open(), "open"),
        );
        let mut problems = Vec::new();
        attempt!(counter.set(1), "set the handle counter");
        let mut first_buffers = attempt!(alloc_buffers(&first, gpu, 1), "first file");
        attempt!(counter.set(u64::from(u32::MAX)), "set the handle counter");
        first_buffers.extend(attempt!(
            alloc_buffers(&first, gpu, 2),
            "first file, wrapping"
        ));
        let repeated = invalid_or_repeated(&first_buffers);
        if !repeated.is_empty() {
            problems.push(format!(
                "after the wrap one file got handle(s) {repeated:?}, 0 or one it holds (handles {:?})",
                first_buffers.iter().map(|buffer| buffer.handle).collect::<Vec<_>>()
            ));
        }
        attempt!(counter.set(u64::from(u32::MAX)), "set the handle counter");
        let second_buffers = attempt!(alloc_buffers(&second, gpu, 2), "second file, wrapping");
        let (Some(mine), Some(theirs)) = (
            first_buffers.iter().find(|buffer| buffer.handle == 1),
            second_buffers.iter().find(|buffer| buffer.handle == 1),
        ) else {
            problems.push(format!(
                "the counter did not come round to handle 1 in both files (first {:?}, second {:?})",
                first_buffers.iter().map(|buffer| buffer.handle).collect::<Vec<_>>(),
                second_buffers.iter().map(|buffer| buffer.handle).collect::<Vec<_>>()
            ));
            return Ok(problems);
        };
        attempt!(first.mmap(mine), "mmap (first file)")
            .as_mut_slice()
            .fill(0x11);
        let mut view = attempt!(second.mmap(theirs), "mmap (second file)");
        view.as_mut_slice().fill(0x22);
        attempt!(first.free(mine.handle), "free (first file)");
        let window = attempt!(Window::new(), "memfd");
        let mut seen = vec![0u8; view.len()];
        // SAFETY: `view` is this process's mapping and stays mapped during the read.
        match unsafe { window.read(view.as_ptr(), &mut seen) } {
            Ok(Access::Done) if seen.iter().all(|byte| *byte == 0x22) => {}
            Ok(Access::Done) => problems.push(
                "another file's buffer with the same handle changed when the first file freed its own"
                    .into(),
            ),
            Ok(Access::Revoked) => problems.push(format!(
                "a FREE of handle {} in one file took away another file's mapping of its own \
                 buffer {} (same mmap offset): reading it faults",
                mine.handle, theirs.handle
            )),
            Err(error) => problems.push(format!("read through the memfd: {error}")),
        }
        if let Err(error) = second.info(theirs.handle) {
            problems.push(format!(
                "the second file lost its buffer {}: {error}",
                theirs.handle
            ));
        }
        Ok(problems)
    })
}

/// (source offset, destination offset, size) of the unaligned copies. The last ones cross the
/// blocks (16 KiB) in which the direct path reads the source whole before writing it, with the
/// source and the destination misaligned differently.
const UNALIGNED_COPIES: &[(u64, u64, u64)] = &[
    (0, 1, 64),
    (3, 5, 1000),
    (7, 0, 129),
    (1, 1, 63),
    (5, 13, 1),
    (8, 3, 4096 + 17),
    (1, 2, 3 * 16384 + 77),
    (16383, 16385, 16386),
    (4093, 7, 40000),
    (0, 0, 1 << 16),
];

/// Unaligned copies large enough to be split across the copy engines (parts of at least 1 MiB,
/// on a machine with several CPUs).
const SPLIT_COPIES: &[(u64, u64, u64)] = &[(3, 4097, (2 << 20) + 12345), (0, 1, 3 << 20)];

/// Runs `copies` on both paths between two buffers of `size` bytes on the first GPU, and says
/// which moved other bytes than asked for.
fn check_exact_copies(
    machine: &Machine,
    size: u64,
    copies: &[(u64, u64, u64)],
) -> Result<Vec<String>, Skip> {
    let gpu = machine.gpus()[0];
    let device = attempt!(machine.open(), "open");
    let src = attempt!(device.alloc(gpu.gpu_id, size), "alloc source");
    let dst = attempt!(device.alloc(gpu.gpu_id, size), "alloc destination");
    let mut source = attempt!(device.mmap(&src), "mmap source");
    let destination = attempt!(device.mmap(&dst), "mmap destination");
    let pattern = hsa_p2p_runtime::device::random_bytes(size as usize, 0x10a);
    source.as_mut_slice().copy_from_slice(&pattern);
    let mut problems = Vec::new();
    for choice in [PathChoice::Direct, PathChoice::Staged] {
        for &(from, to, len) in copies {
            let before = destination.as_slice().to_vec();
            attempt!(
                device.copy(src.handle, from, dst.handle, to, len, choice),
                format!("{choice:?} copy {from} -> {to}, {len} bytes")
            );
            let mut expected = before;
            let (from, to, len) = (from as usize, to as usize, len as usize);
            expected[to..to + len].copy_from_slice(&pattern[from..from + len]);
            if destination.as_slice() != expected.as_slice() {
                problems.push(format!(
                    "{choice:?} copy of {len} bytes from offset {from} to offset {to} moved other bytes"
                ));
            }
        }
    }
    Ok(problems)
}

fn copies_are_exact_at_any_offset(context: &Context) -> TestOutput {
    case(context, |machine| {
        check_exact_copies(machine, 1 << 16, UNALIGNED_COPIES)
    })
}

fn split_copies_are_exact_at_any_offset(context: &Context) -> TestOutput {
    case(context, |machine| {
        const SIZE: u64 = 4 << 20;
        // The module never runs more engines than there are CPUs.
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        if cpus < 2 {
            return Err(Skip(format!(
                "{cpus} CPU: the module does not split copies"
            )));
        }
        let gpu = machine.gpus()[0];
        let probe = attempt!(machine.open(), "open");
        if largest_buffer_pair(&probe, gpu, SIZE)?.2 < SIZE {
            return Err(Skip(format!(
                "GPU node {} has no room for two 4 MiB buffers",
                gpu.node
            )));
        }
        drop(probe);
        check_exact_copies(machine, SIZE, SPLIT_COPIES)
    })
}

fn vram_has_one_allocator(context: &Context) -> TestOutput {
    case(context, |machine| {
        let mut problems = Vec::new();
        for gpu in machine.gpus() {
            let address = machine.pci_address(gpu);
            let device = machine.root.join("sys/bus/pci/devices").join(&address);
            if !device.is_dir() {
                problems.push(format!("GPU node {} has no PCI device {address}", gpu.node));
                continue;
            }
            // No pool: no `p2pmem` group at all (or an empty one).
            if let Ok(size) = std::fs::read_to_string(device.join("p2pmem/size")) {
                if size.trim() != "0" {
                    problems.push(format!(
                        "GPU {address} offers {} bytes of its VRAM BAR to the P2PDMA pool as well",
                        size.trim()
                    ));
                }
            }
        }
        Ok(problems)
    })
}

fn read_only_files_map_read_only(context: &Context) -> TestOutput {
    case(context, |machine| {
        let gpu = machine.gpus()[0];
        let device = attempt!(
            Device::open_read_only_at(&machine.node).map_err(|error| error.to_string()),
            "open read-only"
        );
        let buffer = attempt!(device.alloc(gpu.gpu_id, 1 << 16), "alloc");
        let mut problems = Vec::new();
        // MAP_SHARED of a read-only file: VM_MAYSHARE without VM_SHARED.
        match device.mmap_with(&buffer, libc::PROT_READ) {
            Ok(view) if view.as_slice().iter().all(|byte| *byte == 0) => {}
            Ok(_) => problems.push("a new buffer mapped read-only is not zeroed".into()),
            Err(error) => problems.push(format!("read-only shared mapping refused: {error}")),
        }
        if device
            .mmap_with(&buffer, libc::PROT_READ | libc::PROT_WRITE)
            .is_ok()
        {
            problems.push("a writable mapping through a read-only file was granted".into());
        }
        Ok(problems)
    })
}

fn mappings_are_never_executable(context: &Context) -> TestOutput {
    case(context, |machine| {
        let gpu = machine.gpus()[0];
        let device = attempt!(machine.open(), "open");
        let buffer = attempt!(device.alloc(gpu.gpu_id, 1 << 16), "alloc");
        let mut problems = Vec::new();
        if let Ok(view) = device.mmap_with(&buffer, libc::PROT_READ | libc::PROT_EXEC) {
            drop(view);
            problems.push("an executable mapping of VRAM was granted".to_string());
        }
        let view = attempt!(device.mmap(&buffer), "mmap");
        let address = view.as_slice().as_ptr().cast_mut().cast::<libc::c_void>();
        // SAFETY: changes the protection of this process's own mapping, unused meanwhile.
        let made_executable = unsafe {
            libc::mprotect(
                address,
                view.as_slice().len(),
                libc::PROT_READ | libc::PROT_EXEC,
            )
        } == 0;
        if made_executable {
            problems.push("a mapping of VRAM could be made executable with mprotect".to_string());
        }
        Ok(problems)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::ModuleState;

    #[test]
    fn without_the_module_every_case_skips() {
        let context = Context::new("/nonexistent", ModuleState::Unknown);
        for test in TESTS {
            let output = (test.run)(&context);
            assert!(output.outcome.is_skip(), "{}: {output:?}", test.name);
        }
    }

    #[test]
    fn when_the_module_could_not_load_the_reason_is_kept() {
        let context = Context::new("/nonexistent", ModuleState::Unavailable("no module".into()));
        for test in TESTS {
            assert_eq!((test.run)(&context).outcome, Outcome::skip("no module"));
        }
    }

    #[test]
    fn a_loaded_module_without_a_tree_fails() {
        let context = Context::new("/nonexistent", ModuleState::Loaded);
        let output = (TESTS[0].run)(&context);
        assert!(matches!(output.outcome, Outcome::Fail(_)), "{output:?}");
    }
}
