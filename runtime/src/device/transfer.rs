//! Copies between GPUs the way the topology allows: direct (the source GPU writes into the
//! destination's BAR) when the published topology has a p2p link from the source to the
//! destination, staged through system memory otherwise; every copy is verified.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::Instant;

use hsa_p2p_core::topology::Topology;

use super::{
    checksum, fill_random, status_name, CopyOutcome, CopyPath, CopyRequest, Device, DeviceError,
    EventFd, PathChoice, WaitTimeout,
};
pub use crate::bench_report::gbps;
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
    /// How the asynchronous copy went (`p2pctl copy --async`; absent for `COPY`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asynchronous: Option<AsyncCopy>,
}

/// An asynchronous copy (`COPY_SUBMIT`, completion signalled on an eventfd, reaped with
/// `COPY_WAIT`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AsyncCopy {
    /// The ticket `COPY_SUBMIT` returned.
    pub ticket: u64,
    /// Wall time of the `COPY_SUBMIT` ioctl, in seconds (the copy's `seconds` run from before
    /// it until `poll` sees the eventfd signalled).
    pub submit_seconds: f64,
    /// How its end was seen: `eventfd` (`poll`) or `copy_wait` (`COPY_WAIT` without timeout,
    /// on a kernel without eventfds).
    pub completion: String,
    /// `COPY_WAIT`'s status: 0 when every byte was copied, else a positive errno.
    pub status: u32,
    /// The status by name.
    pub status_name: String,
}

/// A verified copy between two GPUs, as `p2pctl copy` asks for it.
#[derive(Clone, Copy, Debug)]
pub struct CopyJob {
    /// Source GPU.
    pub from: GpuRef,
    /// Destination GPU.
    pub to: GpuRef,
    /// Bytes to copy.
    pub size: u64,
    /// Which paths the copy may take.
    pub choice: PathChoice,
    /// Seed of the random source data.
    pub seed: u64,
    /// Submit the copy asynchronously and wait for its eventfd instead of `COPY`.
    pub asynchronous: bool,
}

/// What the kernel reported of one copy, synchronous or not.
struct Copied {
    outcome: CopyOutcome,
    seconds: f64,
    asynchronous: Option<AsyncCopy>,
}

fn os_error(op: &'static str) -> impl FnOnce(std::io::Error) -> DeviceError {
    move |source| DeviceError::Os { op, source }
}

/// `COPY_SUBMIT` with an eventfd, `poll` until it is signalled, then `COPY_WAIT`; a status
/// other than 0 is an error ([`DeviceError::CopyFailed`]). On a kernel without eventfds
/// (`ENOSYS`) `COPY_WAIT` alone waits for the end.
fn copy_async(device: &Device, request: &CopyRequest) -> Result<Copied, DeviceError> {
    let eventfd = match EventFd::new() {
        Ok(eventfd) => Some(eventfd),
        Err(error) if error.raw_os_error() == Some(libc::ENOSYS) => None,
        Err(error) => return Err(os_error("eventfd")(error)),
    };
    let started = Instant::now();
    let ticket = device.submit_copy(request, eventfd.as_ref().map(|eventfd| eventfd.as_fd()))?;
    let submit_seconds = started.elapsed().as_secs_f64();
    if let Some(eventfd) = &eventfd {
        while eventfd.take().map_err(os_error("read the eventfd"))? == 0 {
            eventfd
                .wait_readable(-1)
                .map_err(os_error("poll the eventfd"))?;
        }
    }
    let signalled = started.elapsed().as_secs_f64();
    let completion = device.wait_copy(ticket, WaitTimeout::Forever)?;
    let (seconds, seen_by) = match eventfd {
        Some(_) => (signalled, "eventfd"),
        None => (started.elapsed().as_secs_f64(), "copy_wait"),
    };
    let outcome = completion.outcome()?;
    Ok(Copied {
        outcome,
        seconds,
        asynchronous: Some(AsyncCopy {
            ticket: ticket.0,
            submit_seconds,
            completion: seen_by.to_owned(),
            status: completion.status,
            status_name: status_name(completion.status),
        }),
    })
}
/// Allocates `size` bytes on `from` and on `to`, fills the source with random bytes, copies
/// along the planned path and verifies the destination by reading it back; frees both.
pub fn copy_verified(
    device: &Device,
    topology: &Topology,
    job: &CopyJob,
) -> Result<TransferReport, TransferError> {
    let &CopyJob {
        from,
        to,
        size,
        choice,
        seed,
        asynchronous,
    } = job;
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
        let request = CopyRequest::whole(src.handle, dst.handle, size, kernel_choice);
        let Copied {
            outcome,
            seconds,
            asynchronous,
        } = if asynchronous {
            copy_async(device, &request)?
        } else {
            let started = Instant::now();
            let outcome = device.copy(src.handle, 0, dst.handle, 0, size, kernel_choice)?;
            Copied {
                outcome,
                seconds: started.elapsed().as_secs_f64(),
                asynchronous: None,
            }
        };
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
            asynchronous,
        })
    })();
    let freed = device.free(src.handle).and(device.free(dst.handle));
    let report = result?;
    freed?;
    Ok(report)
}

/// The report as `p2pctl copy` prints it.
pub fn render(report: &TransferReport) -> String {
    let asynchronous = report.asynchronous.as_ref().map_or(String::new(), |copy| {
        let seen_by = match copy.completion.as_str() {
            "eventfd" => "signalled on an eventfd",
            _ => "seen by COPY_WAIT (no eventfds in this kernel)",
        };
        format!(
            "  async:    ticket {}, submitted in {:.3} ms, completion {seen_by}, status {} ({})\n",
            copy.ticket,
            copy.submit_seconds * 1e3,
            copy.status,
            copy.status_name
        )
    });
    let text = format!(
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
    );
    text + &asynchronous
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
