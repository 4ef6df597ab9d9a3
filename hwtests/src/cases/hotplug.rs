//! GPUs leaving and coming back through their PCIe slot (`hotplug`): the orderly removal
//! (attention button, the kernel's pciehp removes the driver and powers the slot off), the
//! same with a copy, a peer mapping and a user mapping of the GPU's VRAM in flight, the
//! surprise removal (the slot's power cut behind pciehp's back: the card is gone before its
//! driver hears of it), and the hot-add of the GPU again.
//!
//! Only the host of an emulated machine can pull a card, so the cases ask it over the host
//! channel (`--host-channel`, [`crate::guest::host_channel`]) and are skipped where there is
//! none, or where no GPU of the module sits in a hot-plug slot. Each case starts and ends with
//! the GPU bound, in its original bind order, so that the cases after it see the machine as
//! it was. These cases need the real device and real slots: there is no fake for them.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hsa_p2p_core::abi::AbiError;
use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::device::{checksum, fill_random, Device, DeviceError, Mapping, PathChoice};
use hsa_p2p_runtime::sysfs::read_topology;

use crate::context::{Context, ModuleState};
use crate::device::probe::{self, Probe, MAPPED, SIGBUS};
use crate::guest::host_channel::{HostChannel, HostRequest};
use crate::guest::{pci_bind, slots};
use crate::kfd_validation::{validate, TreeKind};
use crate::machine_facts::Inventory;
use crate::report::Outcome;
use crate::runner::{Test, TestOutput};

/// The `hotplug` suite.
pub const TESTS: &[Test] = &[
    Test {
        suite: "hotplug",
        name: "unplug_idle_gpu",
        description: "device_del of an idle GPU removes its node; the rest renumber as the rules predict for the remaining GPUs, generation_id moves, gpu_ids and the other GPUs' data stay",
        run: unplug_idle_gpu,
    },
    Test {
        suite: "hotplug",
        name: "hot_add_restores_the_gpu",
        description: "device_add of the removed GPU binds it with its own gpu_id; in bind order again the topology is the one before",
        run: hot_add_restores_the_gpu,
    },
    Test {
        suite: "hotplug",
        name: "unplug_with_work_in_flight",
        description: "device_del while copies run, a peer mapping is held and a process reads a user mapping of the GPU's VRAM: the copies end with ENODEV, the reader dies of SIGBUS, MAP_PEER answers ENODEV, the other GPUs' data stay",
        run: unplug_with_work_in_flight,
    },
    Test {
        suite: "hotplug",
        name: "surprise_removal_with_work_in_flight",
        description: "the card pulled from its powered slot under the same work (gone before pciehp hears of it): the same documented errors, the other GPUs' data stay",
        run: surprise_removal_with_work_in_flight,
    },
];

/// How long the host may take to answer (an orderly unplug waits for the guest's pciehp).
const HOST_ANSWER: Duration = Duration::from_secs(600);
/// How long the kernel may take to bind or remove a GPU after its slot changed.
const SETTLE: Duration = Duration::from_secs(60);
/// How long copies and user mappings may outlive the removal.
const REVOCATION: Duration = Duration::from_secs(30);
/// Bytes of each buffer of the in-flight work and of the witnesses.
const BUFFER: u64 = 1 << 20;

/// The machine a case works on: the channel to its host, the GPU in a hot-plug slot and the
/// topology before the case.
struct Machine<'a> {
    context: &'a Context,
    channel: HostChannel,
    /// The GPU's PCI address.
    target: String,
    before: Topology,
    /// What the case saw, for the report.
    notes: Vec<String>,
}

fn gpu_addresses(tree: &Topology) -> Vec<String> {
    tree.nodes
        .iter()
        .filter(|node| node.is_gpu())
        .map(|node| node.pci_address().to_string())
        .collect()
}

fn module_tree(context: &Context) -> Result<Topology, String> {
    read_topology(&context.module_topology_path())
        .map_err(|error| format!("reading the module's topology: {error}"))
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + SETTLE;
    while !done() {
        if Instant::now() >= deadline {
            return Err(format!("{what} within {SETTLE:?}"));
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

impl<'a> Machine<'a> {
    /// The machine, or the skip (no host, no hot-pluggable GPU) or failure that ends the case.
    fn open(context: &'a Context) -> Result<Self, TestOutput> {
        if let ModuleState::Unavailable(reason) = &context.module {
            return Err(Outcome::skip(reason.clone()).into());
        }
        let before = match module_tree(context) {
            Ok(tree) => tree,
            Err(problem) if context.module == ModuleState::Loaded => {
                return Err(Outcome::fail(problem).into())
            }
            Err(problem) => return Err(Outcome::skip(problem).into()),
        };
        let hot = slots::hotplug_addresses(context.root());
        let Some(target) = gpu_addresses(&before)
            .into_iter()
            .find(|address| hot.contains(address))
        else {
            return Err(Outcome::skip(format!(
                "no GPU of the module sits in a hot-plug slot (hot-plug slots: {hot:?})"
            ))
            .into());
        };
        let Some(channel) = &context.host_channel else {
            return Err(Outcome::skip(format!(
                "no host to pull the card of {target} (--host-channel not given): only an \
                 emulated machine's host removes and adds GPUs"
            ))
            .into());
        };
        let channel = HostChannel::open(channel).map_err(|e| TestOutput::from(Outcome::fail(e)))?;
        Ok(Machine {
            context,
            channel,
            target,
            before,
            notes: Vec::new(),
        })
    }

    fn bound(&self) -> bool {
        self.context.driver_path().join(&self.target).exists()
    }

    fn gpu_id(&self) -> u32 {
        self.before
            .nodes
            .iter()
            .find(|node| node.is_gpu() && node.pci_address().to_string() == self.target)
            .map_or(0, |node| node.gpu_id)
    }

    /// Asks the host; its answer's detail when it says yes.
    fn ask(&mut self, request: HostRequest) -> Result<String, String> {
        let reply = self.channel.ask(&request, HOST_ANSWER)?;
        if reply.ok {
            Ok(reply.detail)
        } else {
            Err(format!("{request:?}: the host answered {}", reply.detail))
        }
    }

    /// The orderly removal: `device_del`, answered once QEMU deleted the card.
    fn unplug(&mut self) -> Result<(), String> {
        self.ask(HostRequest::Unplug {
            address: self.target.clone(),
        })?;
        wait_until(&format!("{} did not leave the driver", self.target), || {
            !self.bound()
        })
    }

    /// The surprise removal: the card pulled from here ([`slots::pull_card`]); the host
    /// confirms it is gone, then pciehp removes the driver.
    fn pull(&mut self) -> Result<(), String> {
        let root = self.context.root();
        let port = slots::port_of(root, &self.target)?;
        slots::pull_card(root, &port)?;
        let address = self.target.clone();
        let reply = self
            .channel
            .ask(&HostRequest::Present { address }, HOST_ANSWER)?;
        if reply.ok {
            return Err(format!("after the card was pulled: {}", reply.detail));
        }
        wait_until(&format!("{} did not leave the driver", self.target), || {
            !self.bound()
        })?;
        wait_until(
            &format!("pciehp did not turn the slot of {port} off"),
            || slots::slot_is_off(root, &port).unwrap_or(false),
        )
    }

    /// `device_add` of the card again; once bound, the GPUs are put back in their bind order.
    /// The topology right after the bind.
    fn plug(&mut self) -> Result<Topology, String> {
        self.ask(HostRequest::Plug {
            address: self.target.clone(),
        })?;
        wait_until(&format!("{} was not bound again", self.target), || {
            self.bound()
        })?;
        let added = module_tree(self.context)?;
        pci_bind::restore_bind_order(
            &self.context.driver_path(),
            &gpu_addresses(&self.before),
            &gpu_addresses(&added),
        )?;
        Ok(added)
    }

    /// What is wrong with the topology now that the card is gone.
    fn removal_problems(&self) -> Vec<String> {
        let after = match module_tree(self.context) {
            Ok(tree) => tree,
            Err(problem) => return vec![problem],
        };
        let mut problems = Vec::new();
        if after.generation_id <= self.before.generation_id {
            problems.push(format!(
                "generation_id went from {} to {}",
                self.before.generation_id, after.generation_id
            ));
        }
        let mut remaining: Vec<u32> = gpu_ids(&self.before);
        remaining.retain(|&id| id != self.gpu_id());
        if gpu_ids(&after) != remaining {
            problems.push(format!(
                "gpu_ids {:?} after the removal, expected {remaining:?}",
                gpu_ids(&after)
            ));
        }
        problems.extend(prediction_problems(self.context, &after));
        problems
    }
}

fn gpu_ids(tree: &Topology) -> Vec<u32> {
    let mut ids: Vec<u32> = tree
        .nodes
        .iter()
        .filter(|node| node.is_gpu())
        .map(|node| node.gpu_id)
        .collect();
    ids.sort_unstable();
    ids
}

/// The tree against the rules applied to the machine's PCI facts as they are now.
fn prediction_problems(context: &Context, tree: &Topology) -> Vec<String> {
    let inventory = match Inventory::collect(context.root()) {
        Ok(inventory) => inventory,
        Err(error) => return vec![format!("PCI facts: {error}")],
    };
    let pcie_p2p = context
        .module_parameter("hsa_p2p", "pcie_p2p")
        .unwrap_or(true);
    match validate(&inventory, tree, TreeKind::HsaP2p, pcie_p2p) {
        Ok(validation) => {
            let mut problems = validation.presence_problems();
            problems.extend(validation.property_problems());
            problems.extend(validation.denial_problems());
            problems
        }
        Err(problems) => problems,
    }
}

/// Buffers of random bytes on the GPUs that stay, and their checksums.
struct Witnesses {
    _device: Device,
    mappings: Vec<(u32, Mapping, u64)>,
}

impl Witnesses {
    fn fill(context: &Context, gpus: &[u32]) -> Result<Self, String> {
        let device = Device::open_at(&context.device_path()).map_err(|e| e.to_string())?;
        let mut mappings = Vec::new();
        for (seed, &gpu_id) in gpus.iter().enumerate() {
            let buffer = device.alloc(gpu_id, BUFFER).map_err(|e| e.to_string())?;
            let mut mapping = device.mmap(&buffer).map_err(|e| e.to_string())?;
            fill_random(mapping.as_mut_slice(), 0x407_0000 + seed as u64);
            let sum = checksum(mapping.as_slice());
            mappings.push((gpu_id, mapping, sum));
        }
        Ok(Witnesses {
            _device: device,
            mappings,
        })
    }

    fn problems(&self) -> Vec<String> {
        self.mappings
            .iter()
            .filter(|(_, mapping, sum)| checksum(mapping.as_slice()) != *sum)
            .map(|(gpu_id, _, _)| format!("the buffer on GPU {gpu_id} changed"))
            .collect()
    }
}

/// Copies, a peer mapping and a user mapping of the GPU's VRAM, live while it goes.
struct Work {
    device: Device,
    /// A buffer of the leaving GPU.
    source: u32,
    /// The GPU that stays and receives the copies.
    peer: u32,
    toucher: Child,
}

/// What the copies did.
struct Copies {
    succeeded: u32,
    ended_with: Option<DeviceError>,
}

impl Work {
    fn start(context: &Context, gpu_id: u32, peer: u32, linked: bool) -> Result<Self, String> {
        let device = Device::open_at(&context.device_path()).map_err(|e| e.to_string())?;
        let source = device.alloc(gpu_id, BUFFER).map_err(|e| e.to_string())?;
        if linked {
            device
                .map_peer(source.handle, peer)
                .map_err(|error| format!("MAP_PEER before the removal: {error}"))?;
        }
        let mut toucher =
            probe::spawn_in_child(&context.device_path(), &Probe::TouchUntilRevoked { gpu_id })?;
        let mut line = String::new();
        let stdout = toucher.stdout.take().ok_or("the probe has no stdout")?;
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.trim() != MAPPED {
            let _ = toucher.kill();
            let _ = toucher.wait();
            return Err(format!("the mapping probe did not map: {line:?}"));
        }
        Ok(Work {
            device,
            source: source.handle,
            peer,
            toucher,
        })
    }

    /// Copies from the leaving GPU to the peer until one fails (or `stop` after the removal),
    /// counting them in `done`.
    fn copy_until_refused(&self, stop: &AtomicBool, done: &AtomicU32) -> Result<Copies, String> {
        let destination = self
            .device
            .alloc(self.peer, BUFFER)
            .map_err(|e| e.to_string())?;
        let mut succeeded = 0;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(Copies {
                    succeeded,
                    ended_with: None,
                });
            }
            match self.device.copy(
                self.source,
                0,
                destination.handle,
                0,
                BUFFER,
                PathChoice::Auto,
            ) {
                Ok(_) => {
                    succeeded += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    return Ok(Copies {
                        succeeded,
                        ended_with: Some(error),
                    })
                }
            }
        }
    }

    /// The problems of the work after the GPU left, and what it did.
    fn problems(mut self, copies: Result<Copies, String>) -> (Vec<String>, String) {
        let mut problems = Vec::new();
        let note = match &copies {
            Ok(copies) => format!(
                "{} copies of {BUFFER} bytes before the removal, then {:?}",
                copies.succeeded, copies.ended_with
            ),
            Err(problem) => problem.clone(),
        };
        if matches!(&copies, Ok(copies) if copies.succeeded == 0) {
            problems.push("no copy ran before the removal: nothing was in flight".into());
        }
        match copies {
            Ok(Copies {
                ended_with: Some(error),
                ..
            }) if error.abi_error() == Some(AbiError::UnknownGpu) => {}
            Ok(Copies {
                succeeded,
                ended_with,
            }) => problems.push(format!(
                "after {succeeded} copies the copies ended with {ended_with:?}, expected ENODEV"
            )),
            Err(problem) => problems.push(problem),
        }
        problems.extend(reader_problem(&mut self.toucher));
        match self.device.map_peer(self.source, self.peer) {
            Err(error) if error.abi_error() == Some(AbiError::UnknownGpu) => {}
            other => problems.push(format!(
                "MAP_PEER of the removed GPU's buffer: {other:?}, expected ENODEV"
            )),
        }
        (problems, note)
    }
}

/// The mapping probe must die of SIGBUS once its GPU is gone.
fn reader_problem(toucher: &mut Child) -> Option<String> {
    let deadline = Instant::now() + REVOCATION;
    loop {
        match toucher.try_wait() {
            Ok(Some(status)) => {
                let signal = std::os::unix::process::ExitStatusExt::signal(&status);
                return (signal != Some(SIGBUS))
                    .then(|| format!("the mapping reader ended with {status}, expected SIGBUS"));
            }
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            other => {
                let _ = toucher.kill();
                let _ = toucher.wait();
                return Some(format!(
                    "the mapping reader still read the removed GPU's VRAM after {REVOCATION:?} \
                     ({other:?})"
                ));
            }
        }
    }
}

/// Runs `case` on the machine; a failure of its own is the case's failure.
fn on_machine(
    context: &Context,
    case: impl FnOnce(&mut Machine<'_>) -> Result<Vec<String>, String>,
) -> TestOutput {
    let mut machine = match Machine::open(context) {
        Ok(machine) => machine,
        Err(output) => return output,
    };
    let mut problems = case(&mut machine).unwrap_or_else(|problem| vec![problem]);
    let notes = std::mem::take(&mut machine.notes);
    if !machine.bound() {
        problems.extend(machine.plug().err());
    }
    // The kernel's reports are judged whole by the host (vm-test's splat detector, which
    // fails the machine on any), since a removal also runs the kernel's own code, whose one
    // known lockdep report (pciehp, Linux 7.3) is not about the module.
    TestOutput::with_notes(Outcome::from_problems(problems), notes)
}

/// The GPUs other than the target.
fn others(machine: &Machine<'_>) -> Vec<u32> {
    let target = machine.gpu_id();
    let mut ids = gpu_ids(&machine.before);
    ids.retain(|&id| id != target);
    ids
}

fn unplug_idle_gpu(context: &Context) -> TestOutput {
    on_machine(context, |machine| {
        let witnesses = Witnesses::fill(context, &others(machine))?;
        machine.unplug()?;
        let mut problems = machine.removal_problems();
        problems.extend(witnesses.problems());
        machine.plug()?;
        Ok(problems)
    })
}

fn hot_add_restores_the_gpu(context: &Context) -> TestOutput {
    on_machine(context, |machine| {
        machine.unplug()?;
        let removed = module_tree(context)?;
        let added = machine.plug()?;
        let mut problems = Vec::new();
        if added.generation_id <= removed.generation_id {
            problems.push(format!(
                "generation_id went from {} to {} at the hot-add",
                removed.generation_id, added.generation_id
            ));
        }
        if gpu_ids(&added) != gpu_ids(&machine.before) {
            problems.push(format!(
                "gpu_ids {:?} after the hot-add, {:?} before",
                gpu_ids(&added),
                gpu_ids(&machine.before)
            ));
        }
        problems.extend(prediction_problems(context, &added));
        let mut restored = module_tree(context)?;
        restored.generation_id = machine.before.generation_id;
        if restored != machine.before {
            problems.push("in bind order again, the topology differs from the one before".into());
        }
        Ok(problems)
    })
}

/// Removes the target with `remove` while the work runs; the problems seen.
fn under_work<'a>(
    machine: &mut Machine<'a>,
    remove: fn(&mut Machine<'a>) -> Result<(), String>,
) -> Result<Vec<String>, String> {
    let context = machine.context;
    let others = others(machine);
    let gpu_id = machine.gpu_id();
    let Some(&peer) = others
        .iter()
        .find(|&&peer| linked(&machine.before, gpu_id, peer))
        .or(others.first())
    else {
        return Err("the machine has no other GPU to copy to".into());
    };
    let witnesses = Witnesses::fill(context, &others)?;
    let work = Work::start(context, gpu_id, peer, linked(&machine.before, peer, gpu_id))?;
    let stop = AtomicBool::new(false);
    let done = AtomicU32::new(0);
    let (removed, copies) = thread::scope(|scope| {
        let copier = scope.spawn(|| work.copy_until_refused(&stop, &done));
        // The removal must find the copies running.
        let started = Instant::now() + REVOCATION;
        while done.load(Ordering::Relaxed) == 0 && !copier.is_finished() && Instant::now() < started
        {
            thread::sleep(Duration::from_millis(1));
        }
        let removed = remove(machine);
        let deadline = Instant::now() + REVOCATION;
        while !copier.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        let copies = copier
            .join()
            .unwrap_or_else(|_| Err("the copy thread panicked".into()));
        (removed, copies)
    });
    removed?;
    let (mut problems, note) = work.problems(copies);
    machine.notes.push(note);
    problems.extend(machine.removal_problems());
    problems.extend(witnesses.problems());
    machine.plug()?;
    Ok(problems)
}

/// Whether `tree` has a p2p link from the GPU `from` to the GPU `to` (by gpu_id).
fn linked(tree: &Topology, from: u32, to: u32) -> bool {
    let node = |id: u32| tree.nodes.iter().position(|node| node.gpu_id == id);
    match (node(from), node(to)) {
        (Some(from), Some(to)) => tree.p2p_link(from as u32, to as u32).is_some(),
        _ => false,
    }
}

fn unplug_with_work_in_flight(context: &Context) -> TestOutput {
    on_machine(context, |machine| under_work(machine, Machine::unplug))
}

fn surprise_removal_with_work_in_flight(context: &Context) -> TestOutput {
    on_machine(context, |machine| under_work(machine, Machine::pull))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn copy_tree(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_tree(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }

    fn skip_reasons(context: &Context) -> Vec<String> {
        TESTS
            .iter()
            .map(|test| match (test.run)(context).outcome {
                Outcome::Skip(reason) => reason,
                other => panic!("{}: {other:?}", test.name),
            })
            .collect()
    }

    /// The module's topology of `mixed-three-gpus` under a fixture root (its gpu0 is
    /// 0000:03:00.0).
    fn machine_root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let predicted = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../runtime/tests/fixtures/predicted/mixed-three-gpus");
        copy_tree(&predicted, &root.path().join("sys/kernel/hsa_p2p/topology"));
        root
    }

    #[test]
    fn without_a_hot_plug_slot_every_case_is_skipped_with_the_reason() {
        let root = machine_root();
        let mut context = Context::new(root.path(), ModuleState::Loaded);
        context.host_channel = Some("/dev/null".into());
        for reason in skip_reasons(&context) {
            assert!(
                reason.contains("no GPU of the module sits in a hot-plug slot"),
                "{reason}"
            );
        }
    }

    #[test]
    fn without_a_host_every_case_is_skipped_with_the_reason() {
        let root = machine_root();
        let slot = root.path().join("sys/bus/pci/slots/2");
        std::fs::create_dir_all(&slot).unwrap();
        std::fs::write(slot.join("address"), "0000:03:00\n").unwrap();
        let context = Context::new(root.path(), ModuleState::Loaded);
        for reason in skip_reasons(&context) {
            assert!(
                reason.contains("no host to pull the card of 0000:03:00.0"),
                "{reason}"
            );
        }
    }

    #[test]
    fn a_loaded_module_without_a_topology_fails() {
        let root = tempfile::tempdir().unwrap();
        let context = Context::new(root.path(), ModuleState::Loaded);
        assert!(unplug_idle_gpu(&context).outcome.is_failure());
    }
}
