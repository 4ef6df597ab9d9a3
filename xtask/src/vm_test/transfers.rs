//! The peer-memory machines of vm-test: `/dev/hsa_p2p` on a 3-GPU and a 4-GPU spec.
//!
//! In the guest: two `p2pctl copy` runs, then hwtests' `abi` and `device` suites (bad input,
//! handles, mapping faults, unbinding, and copies between every ordered GPU pair, verified by
//! reading them back). On the host, after the guest powered off, what only the host can see:
//! for every pair, the destination and source ranges in the /dev/shm backing files hold the
//! bytes of the copy's seed; and what only the host knows: the pairs that went direct, and
//! their map type, are those the shared rules predict for the emulated spec.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::Result;
use hsa_p2p_core::abi;
use hsa_p2p_hwtests::report::{Case, CopyPath, CopyRecord, Outcome};
use hsa_p2p_runtime::peers::peer_pair;
use hsa_p2p_runtime::predict::{predict_in_bind_order, Prediction};
use hsa_p2p_runtime::spec::IommuSetting;

use super::guest_script::transfer_script;
use super::{boot, boot_problems, hwtests_in_guest};
use crate::emulation::emulate;
use crate::util::phase;
use crate::vm::guests::{shipped_spec, Boot, Guests};
use crate::vm::{self, protocol, ShmFile};

/// A transfer machine.
struct TransferSpec {
    /// The spec file under `topologies/`.
    file: &'static str,
    /// Bytes per pair copy.
    size: u64,
    /// The `MAP_PEER` map type every linked pair must get.
    map_type: u32,
}

/// Two GPUs behind a switch and one on its own root port (bus-address peers and refused
/// pairs), and four GPUs on the root ports of two whitelisted host bridges under IOMMU remapping
/// (every pair through the host bridge: peers get IOVAs). Four GPUs hold one source and three destinations each in
/// their 64 MiB BARs, hence 12 MiB.
const TRANSFER_SPECS: &[TransferSpec] = &[
    TransferSpec {
        file: "mixed-three-gpus.toml",
        size: 16 << 20,
        map_type: abi::MAP_TYPE_BUS_ADDR,
    },
    TransferSpec {
        file: "two-socket.toml",
        size: 12 << 20,
        map_type: abi::MAP_TYPE_THRU_HOST_BRIDGE,
    },
];

/// Boots the transfer machines and turns what they did into cases.
pub(super) fn run_transfers(guests: &Guests) -> Result<Vec<Case>> {
    let mut cases = Vec::new();
    for transfer in TRANSFER_SPECS {
        cases.extend(run_one(guests, transfer)?);
    }
    Ok(cases)
}

fn run_one(guests: &Guests, transfer: &TransferSpec) -> Result<Vec<Case>> {
    let spec = shipped_spec(transfer.file)?;
    let suite = format!("transfers-{}", spec.name);
    let shm_prefix = format!("hsa-p2p-vmtest-{}-xfer-{}", std::process::id(), spec.name);
    let machine = emulate(&spec, &shm_prefix)?;
    let all: Vec<usize> = (0..machine.gpus.len()).collect();
    let prediction = predict_in_bind_order(&machine.spec, &all)?;
    let node = |gpu: usize| {
        prediction
            .node_of(&machine.gpus[gpu].label)
            .expect("every emulated GPU is in the prediction")
    };
    let linked =
        |a: usize, b: usize| peer_pair(&prediction.topology, node(a), node(b)).has_access();
    let pairs: Vec<(usize, usize)> = all
        .iter()
        .flat_map(|&a| all.iter().map(move |&b| (a, b)))
        .filter(|(a, b)| a != b)
        .collect();
    let script = transfer_script(
        transfer.size,
        pairs.iter().copied().find(|&(a, b)| linked(a, b)),
        pairs.iter().copied().find(|&(a, b)| !linked(a, b)),
    );
    let config = guests.vm_config(Boot {
        // Read by the host after the run, then removed here.
        keep_shm_files: true,
        ..boot(&format!("transfers-{}", spec.name), &machine, script)
    });
    phase(format!(
        "{}: peer transfers between {} GPUs",
        spec.name,
        machine.gpus.len()
    ));
    let started = Instant::now();
    let run = vm::run(&config);
    let cleanup = || {
        for file in &config.shm_files {
            let _ = fs::remove_file(&file.path);
        }
    };
    let run = match run {
        Ok(run) => run,
        Err(error) => {
            cleanup();
            return Err(error);
        }
    };
    let console = &run.console_log;
    let case = |name: &str, problems: Vec<String>, duration: Duration| {
        Case::new(&suite, name, Outcome::from_problems(problems), duration)
    };
    let mut cases = vec![case("boot_and_run", boot_problems(&run), started.elapsed())];
    let report = hwtests_in_guest::read(console);
    cases.extend(hwtests_in_guest::cases_of(&report, &suite));

    let copies = report.map(|run| run.copies).unwrap_or_default();
    let host = HostView {
        prediction: &prediction,
        iommu_remaps: machine.spec.platform.iommu == IommuSetting::Remap,
        shm: &config.shm_files,
        transfer,
    };
    for &(accessor, owner) in &pairs {
        let name = format!(
            "copy_{}MiB_{}_to_{}",
            transfer.size >> 20,
            machine.gpus[accessor].label,
            machine.gpus[owner].label
        );
        let (from, to) = (node(accessor), node(owner));
        let problems = match copies.iter().find(|c| (c.from, c.to) == (from, to)) {
            Some(copy) => host.check(copy, accessor, owner),
            None => vec![format!(
                "the guest reported no copy from node {from} to {to}"
            )],
        };
        cases.push(case(&name, problems, Duration::ZERO));
    }
    let dirty: Vec<String> = protocol::warnings(console)
        .into_iter()
        .map(|line| format!("kernel warning: {line}"))
        .collect();
    cases.push(case("kernel_log_stays_clean", dirty, Duration::ZERO));
    cleanup();
    Ok(cases)
}

/// What the host knows about a transfer machine.
struct HostView<'a> {
    prediction: &'a Prediction,
    /// The machine's IOMMU remaps DMA: a host-bridge peer gets an IOVA.
    iommu_remaps: bool,
    shm: &'a [ShmFile],
    transfer: &'a TransferSpec,
}

impl HostView<'_> {
    /// The problems of one copy from GPU `accessor` into GPU `owner`.
    fn check(&self, copy: &CopyRecord, accessor: usize, owner: usize) -> Vec<String> {
        let mut problems = Vec::new();
        let linked = peer_pair(&self.prediction.topology, copy.from, copy.to).has_access();
        let expected = if linked {
            (CopyPath::Direct, false)
        } else {
            (CopyPath::Staged, true)
        };
        if (copy.path, copy.direct_refused) != expected {
            problems.push(format!(
                "path {} (direct refused: {}), but the prediction {} a p2p link",
                copy.path.name(),
                copy.direct_refused,
                if linked { "has" } else { "has no" }
            ));
        }
        if linked && copy.map_type != self.transfer.map_type {
            problems.push(format!(
                "MAP_PEER gave map type {}, expected {}",
                copy.map_type, self.transfer.map_type
            ));
        }
        // No bus offset on q35: the peer's address is the BAR's physical one, except for a
        // host-bridge mapping under IOMMU remapping, an IOVA (whose translation to the BAR the
        // guest's `platform` suite checks in the IOMMU's page tables).
        let iova = copy.map_type == abi::MAP_TYPE_THRU_HOST_BRIDGE && self.iommu_remaps;
        if linked && (copy.bus_address == 0 || (!iova && copy.bus_address != copy.phys_address)) {
            problems.push(format!(
                "peer address {:#x}, the buffer is at {:#x}",
                copy.bus_address, copy.phys_address
            ));
        }
        if copy.size != self.transfer.size {
            problems.push(format!("copied {} bytes", copy.size));
        }
        let expected = copy.source_bytes();
        for (what, gpu, offset) in [
            ("destination", owner, copy.dst_offset),
            ("source", accessor, copy.src_offset),
        ] {
            // The machine's GPUs and their backing files are in the same order.
            let file = &self.shm[gpu];
            match file.read(offset, expected.len()) {
                Ok(bytes) if bytes == expected => {}
                Ok(bytes) => {
                    let first = bytes.iter().zip(&expected).position(|(a, b)| a != b);
                    problems.push(format!(
                        "host: {what} in {} at {offset:#x} differs (first at +{first:?})",
                        file.path.display()
                    ));
                }
                Err(error) => problems.push(format!("host: cannot read {what}: {error:#}")),
            }
        }
        problems
    }
}
