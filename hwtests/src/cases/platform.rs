//! The platform under the module: peers mapped the way the PCI P2PDMA core decides
//! (`calc_map_type_and_dist`), and host-bridge mappings that reach the owner's BAR, through the
//! IOMMU when it remaps.
//!
//! The expected map type is the kernel's walk recomputed from sysfs
//! ([`hsa_p2p_runtime::machine_facts`]: the bridges' ACS control registers, the host bridge),
//! independently of the module's own reading of the devices; the translation of an IOVA is
//! read from the IOMMU's page tables in debugfs ([`crate::guest::iommu_pages`]). Both need the
//! real device and machine, like `isolation`.

use hsa_p2p_core::abi::{MAP_TYPE_BUS_ADDR, MAP_TYPE_THRU_HOST_BRIDGE};
use hsa_p2p_core::facts::IommuMode;
use hsa_p2p_runtime::device::transfer::GpuRef;
use hsa_p2p_runtime::device::PeerMapping;
use hsa_p2p_runtime::machine_facts::{Inventory, PciDevice};

use crate::context::Context;
use crate::device::{Reply, Request, Session};
use crate::guest::iommu_pages;
use crate::report::Outcome;
use crate::runner::{Test, TestOutput};

/// The `platform` suite.
pub const TESTS: &[Test] = &[
    Test {
        suite: "platform",
        name: "map_type_is_the_kernels_p2pdma_decision",
        description: "for every p2p link, MAP_PEER gives a bus address exactly where the P2PDMA core's walk (recomputed from sysfs) says PCI_P2PDMA_MAP_BUS_ADDR, else a host-bridge mapping",
        run: map_type_is_the_kernels_p2pdma_decision,
    },
    Test {
        suite: "platform",
        name: "host_bridge_mapping_reaches_the_owner_bar",
        description: "for every p2p link through the host bridge, the accessor's address translates to the buffer's BAR address: by the IOMMU's page tables under remap, identically otherwise",
        run: host_bridge_mapping_reaches_the_owner_bar,
    },
];

/// One peer mapping of a fresh one-page buffer: the owner's physical address of the buffer and
/// the accessor's mapping of it.
struct Mapped {
    phys_address: u64,
    mapping: PeerMapping,
}

/// Allocates a page on `owner`, maps it for `accessor`, notes what `inspect` says while the
/// mapping exists, and frees everything.
fn with_mapping<T>(
    session: &Session,
    accessor: GpuRef,
    owner: GpuRef,
    inspect: impl FnOnce(&Mapped) -> T,
) -> Result<T, String> {
    let backend = session.backend.as_ref();
    let buffer = backend.alloc(owner, 4096)?;
    let result = (|| {
        let phys_address = match backend.submit(&Request::Info {
            handle: buffer.handle,
        }) {
            Ok(Reply::Info(info)) => info.phys_address,
            other => return Err(format!("INFO answered {other:?}")),
        };
        let mapping = match backend.submit(&Request::MapPeer {
            handle: buffer.handle,
            peer_gpu_id: accessor.gpu_id,
        }) {
            Ok(Reply::Mapped(mapping)) => mapping,
            other => return Err(format!("MAP_PEER answered {other:?}")),
        };
        let seen = inspect(&Mapped {
            phys_address,
            mapping,
        });
        backend
            .submit(&Request::UnmapPeer {
                handle: buffer.handle,
                peer_gpu_id: accessor.gpu_id,
            })
            .map_err(|errno| format!("UNMAP_PEER: {errno}"))?;
        Ok(seen)
    })();
    backend.free(buffer.handle)?;
    result
}

/// The session, the machine's PCI facts and the p2p-linked pairs as (accessor, owner) devices.
struct Linked<'a> {
    session: Session,
    inventory: &'a Inventory,
    pairs: Vec<(GpuRef, GpuRef, &'a PciDevice, &'a PciDevice)>,
}

fn linked_pairs(context: &Context) -> Result<Linked<'_>, TestOutput> {
    let session = Session::open(context)?;
    let inventory = context
        .inventory()
        .map_err(|error| TestOutput::from(Outcome::fail(format!("no PCI facts: {error}"))))?;
    let device_of = |gpu: GpuRef| {
        let node = session.topology.nodes.iter().find(|n| n.id == gpu.node)?;
        inventory.device(node.pci_address())
    };
    let mut pairs = Vec::new();
    for (accessor, owner) in session.pairs() {
        if !session.linked(accessor, owner) {
            continue;
        }
        match (device_of(accessor), device_of(owner)) {
            (Some(a), Some(o)) => pairs.push((accessor, owner, a, o)),
            _ => {
                return Err(Outcome::fail(format!(
                    "node {} or {} is no PCI device of the machine",
                    accessor.node, owner.node
                ))
                .into())
            }
        }
    }
    if pairs.is_empty() {
        return Err(Outcome::skip("the module's topology has no p2p link").into());
    }
    Ok(Linked {
        session,
        inventory,
        pairs,
    })
}

fn map_type_is_the_kernels_p2pdma_decision(context: &Context) -> TestOutput {
    let linked = match linked_pairs(context) {
        Ok(linked) => linked,
        Err(output) => return output,
    };
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    for &(accessor, owner, accessor_device, owner_device) in &linked.pairs {
        let path = linked.inventory.p2pdma(owner_device, accessor_device);
        let pair = format!("node {} -> node {}", accessor.node, owner.node);
        let Some(expected) = path.map_type() else {
            problems.push(format!(
                "{pair}: linked, but the P2PDMA core refuses it ({path:?})"
            ));
            continue;
        };
        match with_mapping(&linked.session, accessor, owner, |m| m.mapping) {
            Ok(mapping) if mapping.map_type == expected => {
                notes.push(format!("{pair}: map type {expected} ({path:?})"));
            }
            Ok(mapping) => problems.push(format!(
                "{pair}: MAP_PEER gave map type {} at {:#x}, the kernel decides {expected} \
                 ({path:?})",
                mapping.map_type, mapping.bus_address
            )),
            Err(problem) => problems.push(format!("{pair}: {problem}")),
        }
    }
    TestOutput::with_notes(Outcome::from_problems(problems), notes)
}

fn host_bridge_mapping_reaches_the_owner_bar(context: &Context) -> TestOutput {
    let linked = match linked_pairs(context) {
        Ok(linked) => linked,
        Err(output) => return output,
    };
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    for &(accessor, owner, accessor_device, _) in &linked.pairs {
        let pair = format!("node {} -> node {}", accessor.node, owner.node);
        let remap = linked.inventory.iommu_mode(&[accessor_device]) == IommuMode::Remap;
        let dump = iommu_pages::dump_path(context.root(), accessor_device.address);
        let checked = with_mapping(&linked.session, accessor, owner, |m| {
            let address = m.mapping.bus_address;
            match m.mapping.map_type {
                MAP_TYPE_THRU_HOST_BRIDGE if remap => {
                    // Read while the mapping exists.
                    crate::guest::debugfs::mount(context.root());
                    let text = std::fs::read_to_string(&dump)
                        .map_err(|e| format!("{}: {e}", dump.display()))?;
                    match iommu_pages::translate(&text, address) {
                        Some(phys) if phys == m.phys_address => {
                            Ok(Some(format!("IOVA {address:#x} -> {phys:#x}")))
                        }
                        other => Err(format!(
                            "IOVA {address:#x} translates to {other:x?}, not the BAR at {:#x}",
                            m.phys_address
                        )),
                    }
                }
                MAP_TYPE_THRU_HOST_BRIDGE if address == m.phys_address => {
                    Ok(Some(format!("direct {address:#x}")))
                }
                MAP_TYPE_THRU_HOST_BRIDGE => Err(format!(
                    "without IOMMU remapping the address {address:#x} is not the BAR's {:#x}",
                    m.phys_address
                )),
                MAP_TYPE_BUS_ADDR => Ok(None),
                other => Err(format!("map type {other}")),
            }
        });
        match checked {
            Ok(Ok(Some(note))) => notes.push(format!("{pair}: {note}")),
            Ok(Ok(None)) => {}
            Ok(Err(problem)) | Err(problem) => problems.push(format!("{pair}: {problem}")),
        }
    }
    if problems.is_empty() && notes.is_empty() {
        return Outcome::skip("no p2p link maps through the host bridge").into();
    }
    TestOutput::with_notes(Outcome::from_problems(problems), notes)
}
