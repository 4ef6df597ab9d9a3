//! Copies between GPUs the way the topology allows: direct (the source GPU writes into the
//! destination's BAR) when the published topology has a p2p link from the source to the
//! destination, staged through system memory otherwise; every copy is verified.

use std::path::Path;
use std::time::Instant;

use hsa_p2p_core::topology::Topology;

use super::{checksum, fill_random, CopyPath, Device, DeviceError, PathChoice};
use crate::node_names::{resolve_node, UnknownNode};
use crate::peers::peer_pair;
use crate::report::json::COPY_SCHEMA;
use crate::report::Labels;
use crate::spec::ByteSize;
use crate::sysfs::{read_topology, ReadError};

/// A GPU of the published topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuRef {
    /// Node id.
    pub node: u32,
    /// `gpu_id` (the device names GPUs by it).
    pub gpu_id: u32,
}

/// What can go wrong in a transfer.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The device refused.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The topology could not be read.
    #[error("cannot read the topology: {0}")]
    Topology(#[from] ReadError),
    /// A GPU argument names no GPU node.
    #[error(transparent)]
    UnknownGpu(#[from] UnknownNode),
}

/// The GPU nodes of `topology`, in node order.
pub fn gpus(topology: &Topology) -> Vec<GpuRef> {
    topology
        .nodes
        .iter()
        .filter(|node| node.is_gpu())
        .map(|node| GpuRef {
            node: node.id,
            gpu_id: node.gpu_id,
        })
        .collect()
}

/// Reads the module's topology.
pub fn read_published(root: &Path) -> Result<Topology, TransferError> {
    Ok(read_topology(root)?)
}

/// A GPU argument, named as every command names nodes ([`resolve_node`]).
pub fn resolve_gpu(topology: &Topology, argument: &str) -> Result<GpuRef, TransferError> {
    let labels = Labels::from_topology(topology);
    let node = resolve_node(topology, &labels, argument)?;
    gpus(topology)
        .into_iter()
        .find(|gpu| gpu.node == node)
        .ok_or_else(|| UnknownNode::listing_gpus(topology, &labels, argument).into())
}

/// The path a copy from `from` to `to` will take, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The path.
    pub path: CopyPath,
    /// Why, in words.
    pub reason: String,
}

/// Whether the topology lets `from` write into `to`'s VRAM directly.
pub fn has_direct_path(topology: &Topology, from: GpuRef, to: GpuRef) -> bool {
    from == to || peer_pair(topology, from.node, to.node).has_access()
}

/// Chooses the path of a copy from `from` to `to`.
pub fn plan(topology: &Topology, from: GpuRef, to: GpuRef, choice: PathChoice) -> Plan {
    let direct = has_direct_path(topology, from, to);
    let (path, reason) = match choice {
        PathChoice::Staged => (CopyPath::Staged, "staged copy requested".to_owned()),
        _ if from == to => (CopyPath::Direct, "both buffers on one GPU".to_owned()),
        _ if direct => (
            CopyPath::Direct,
            format!(
                "p2p link node {} -> node {} in the published topology",
                from.node, to.node
            ),
        ),
        PathChoice::Direct => (
            CopyPath::Direct,
            format!(
                "direct copy requested, but node {} has no p2p link to node {}",
                from.node, to.node
            ),
        ),
        PathChoice::Auto => (
            CopyPath::Staged,
            format!(
                "node {} has no p2p link to node {}: staged through system memory",
                from.node, to.node
            ),
        ),
    };
    Plan { path, reason }
}

/// What a verified transfer did.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TransferReport {
    /// Always [`COPY_SCHEMA`].
    pub schema: &'static str,
    /// Source node.
    pub from: u32,
    /// Destination node.
    pub to: u32,
    /// Bytes copied.
    pub bytes: u64,
    /// The path the kernel took.
    pub path: CopyPath,
    /// Why this path.
    pub reason: String,
    /// Wall time of the copy ioctl, in seconds.
    pub seconds: f64,
    /// Time the kernel spent copying, in seconds.
    pub kernel_seconds: f64,
    /// Bytes per nanosecond of wall time (= GB/s).
    pub gbps: f64,
    /// Checksum of the source buffer.
    pub source_checksum: u64,
    /// Checksum of the destination buffer after the copy.
    pub destination_checksum: u64,
    /// Whether they match.
    pub verified: bool,
}

/// Allocates `size` bytes on `from` and on `to`, fills the source with random bytes, copies
/// along the planned path and verifies the destination by reading it back; frees both.
pub fn copy_verified(
    device: &Device,
    topology: &Topology,
    from: GpuRef,
    to: GpuRef,
    size: u64,
    choice: PathChoice,
    seed: u64,
) -> Result<TransferReport, TransferError> {
    let src = device.alloc(from.gpu_id, size)?;
    let dst = match device.alloc(to.gpu_id, size) {
        Ok(dst) => dst,
        Err(error) => {
            let _ = device.free(src.handle);
            return Err(error.into());
        }
    };
    let result = (|| {
        let mut source = device.mmap(&src)?;
        fill_random(source.as_mut_slice(), seed);
        let source_checksum = checksum(source.as_slice());
        drop(source);
        let plan = plan(topology, from, to, choice);
        if plan.path == CopyPath::Direct && from != to {
            // The source GPU writes into the destination: map it for the source.
            device.map_peer(dst.handle, from.gpu_id)?;
        }
        let kernel_choice = match plan.path {
            CopyPath::Direct => PathChoice::Direct,
            CopyPath::Staged => PathChoice::Staged,
        };
        let started = Instant::now();
        let outcome = device.copy(src.handle, 0, dst.handle, 0, size, kernel_choice)?;
        let seconds = started.elapsed().as_secs_f64();
        let destination_checksum = checksum(device.mmap(&dst)?.as_slice());
        Ok::<_, TransferError>(TransferReport {
            schema: COPY_SCHEMA,
            from: from.node,
            to: to.node,
            bytes: size,
            path: outcome.path,
            reason: plan.reason,
            seconds,
            kernel_seconds: outcome.nanoseconds as f64 / 1e9,
            gbps: gbps(size, seconds),
            source_checksum,
            destination_checksum,
            verified: source_checksum == destination_checksum,
        })
    })();
    let freed = device.free(src.handle).and(device.free(dst.handle));
    let report = result?;
    freed?;
    Ok(report)
}

/// The report as `p2pctl copy` prints it.
pub fn render(report: &TransferReport) -> String {
    format!(
        "copy node {} -> node {}\n  path:     {} ({})\n  bytes:    {} ({})\n  \
         rate:     {:.3} GB/s ({:.3} ms; {:.3} ms in the kernel)\n  \
         verified: {} (source {:016x}, destination {:016x})\n",
        report.from,
        report.to,
        report.path.name(),
        report.reason,
        report.bytes,
        ByteSize(report.bytes),
        report.gbps,
        report.seconds * 1e3,
        report.kernel_seconds * 1e3,
        if report.verified { "ok" } else { "MISMATCH" },
        report.source_checksum,
        report.destination_checksum
    )
}

/// `bytes` in `seconds` as GB/s (10^9 bytes per second).
pub fn gbps(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 / seconds / 1e9
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::predict;
    use crate::spec::Spec;

    fn mixed() -> Topology {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../topologies/mixed-three-gpus.toml"
        );
        predict(&Spec::load(Path::new(path)).unwrap())
            .unwrap()
            .topology
    }

    #[test]
    fn gpus_resolve_by_node_and_index() {
        let topology = mixed();
        let all = gpus(&topology);
        assert_eq!(all.len(), 3);
        assert_eq!(resolve_gpu(&topology, "gpu1").unwrap(), all[1]);
        let node = all[2].node;
        assert_eq!(resolve_gpu(&topology, &node.to_string()).unwrap(), all[2]);
        assert_eq!(
            resolve_gpu(&topology, &format!("node{node}")).unwrap(),
            all[2]
        );
        assert!(resolve_gpu(&topology, "0").is_err(), "node 0 is the CPU");
        assert!(resolve_gpu(&topology, "gpu9").is_err());
    }

    #[test]
    fn plans_follow_the_p2p_links() {
        let topology = mixed();
        let all = gpus(&topology);
        // gpu0 and gpu1 share a switch; gpu2 is behind another root port.
        let linked = plan(&topology, all[0], all[1], PathChoice::Auto);
        assert_eq!(linked.path, CopyPath::Direct, "{}", linked.reason);
        let refused = plan(&topology, all[0], all[2], PathChoice::Auto);
        assert_eq!(refused.path, CopyPath::Staged, "{}", refused.reason);
        assert!(refused.reason.contains("no p2p link"));
        let forced = plan(&topology, all[0], all[1], PathChoice::Staged);
        assert_eq!(forced.path, CopyPath::Staged);
        let local = plan(&topology, all[2], all[2], PathChoice::Auto);
        assert_eq!(local.path, CopyPath::Direct);
    }

    #[test]
    fn rates_are_in_gigabytes_per_second() {
        assert_eq!(gbps(2_000_000_000, 2.0), 1.0);
        assert_eq!(gbps(1, 0.0), 0.0);
    }
}
