//! Reading a KFD-style topology from sysfs (the real `/sys/class/kfd/kfd/topology`, the
//! `hsa_p2p` module's `/sys/kernel/hsa_p2p/topology`, or any copy of such a tree).
//!
//! Like libhsakmt, the reader takes a snapshot and re-reads it when `generation_id` changed
//! meanwhile (a GPU was added or removed during the read). It then checks the snapshot as a
//! whole: every link names an existing node, p2p links do not duplicate io_links, peer links
//! join GPUs. Old kernels (no `p2p_links_count`, no `recommended_sdma_engine_id_mask`) are
//! read as they are.

mod emitted;
mod error;
mod snapshot;
mod write;

use std::path::{Path, PathBuf};

use hsa_p2p_core::topology::Topology;

pub use emitted::{emit_tree, EmitError, EMITTED_MARKER};
pub use error::{FileParseError, ReadError};
pub use write::{write_tree, WriteError};

/// Where amdkfd publishes its topology.
pub const KFD_TOPOLOGY: &str = "/sys/class/kfd/kfd/topology";
/// Where the `hsa_p2p` module publishes its topology.
pub const HSA_P2P_TOPOLOGY: &str = "/sys/kernel/hsa_p2p/topology";

/// How many snapshots are tried before giving up on a topology that keeps changing.
pub const MAX_ATTEMPTS: u32 = 5;

/// Reads `Topology` values from a sysfs tree.
pub trait FromSysfs: Sized {
    /// Reads and checks the tree under `root`.
    fn from_sysfs(root: &Path) -> Result<Self, ReadError>;
}

impl FromSysfs for Topology {
    fn from_sysfs(root: &Path) -> Result<Self, ReadError> {
        read_topology(root)
    }
}

/// Reads and checks the topology under `root`, retrying while `generation_id` changes.
pub fn read_topology(root: &Path) -> Result<Topology, ReadError> {
    read_topology_with(root, || {})
}

/// [`read_topology`] with a hook run after each snapshot, before `generation_id` is read again
/// (lets tests change the tree mid-read the way a hot-unplug would).
pub fn read_topology_with(
    root: &Path,
    mut after_snapshot: impl FnMut(),
) -> Result<Topology, ReadError> {
    if !root.join("generation_id").is_file() || !root.join("nodes").is_dir() {
        return Err(ReadError::NotATopology {
            root: root.to_path_buf(),
        });
    }
    let generation = || {
        std::fs::read_to_string(root.join("generation_id"))
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
    };
    for _ in 0..MAX_ATTEMPTS {
        // A snapshot taken while the generation moved may be half-updated (files vanishing,
        // counts disagreeing): only a snapshot with a stable generation is trusted, be it a
        // topology or an error.
        let before = generation();
        let result = snapshot::read_snapshot(root);
        after_snapshot();
        let after = generation();
        if before != after {
            continue;
        }
        let topology = result?;
        if Some(topology.generation_id) != after {
            continue;
        }
        check_consistency(root, &topology)?;
        return Ok(topology);
    }
    Err(ReadError::Unstable {
        root: root.to_path_buf(),
        attempts: MAX_ATTEMPTS,
    })
}

/// The topology directory to read when the user names none: amdkfd's, else the module's.
pub fn default_root() -> PathBuf {
    [KFD_TOPOLOGY, HSA_P2P_TOPOLOGY]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.join("generation_id").is_file())
        .unwrap_or_else(|| PathBuf::from(KFD_TOPOLOGY))
}

/// Whole-tree checks: links name existing nodes, p2p links join a GPU to another node and do
/// not duplicate a direct io_link.
fn check_consistency(root: &Path, topology: &Topology) -> Result<(), ReadError> {
    let nodes = topology.nodes.len();
    for node in &topology.nodes {
        for (dir, links) in [("io_links", &node.io_links), ("p2p_links", &node.p2p_links)] {
            for (index, link) in links.iter().enumerate() {
                if topology.node(link.node_to).is_none() {
                    return Err(ReadError::DanglingLink {
                        path: snapshot::entry_file(root, node.id, dir, index),
                        node_to: link.node_to,
                        nodes,
                    });
                }
            }
        }
        for (index, link) in node.p2p_links.iter().enumerate() {
            let path = snapshot::entry_file(root, node.id, "p2p_links", index);
            if node.io_links.iter().any(|io| io.node_to == link.node_to) {
                return Err(ReadError::DuplicatesIoLink {
                    path,
                    node_from: link.node_from,
                    node_to: link.node_to,
                });
            }
            let to_is_gpu = topology.node(link.node_to).is_some_and(|n| n.is_gpu());
            if !node.is_gpu() && !to_is_gpu {
                return Err(ReadError::Inconsistent {
                    path,
                    message: "a p2p link between two CPU nodes (p2p links always involve a GPU)"
                        .to_string(),
                });
            }
        }
        for denial in &node.p2p_denials {
            if topology.node(denial.node_to).is_none() {
                return Err(ReadError::DanglingLink {
                    path: root.join(format!("nodes/{}/p2p_denials", node.id)),
                    node_to: denial.node_to,
                    nodes,
                });
            }
        }
    }
    Ok(())
}
