//! KFD's CPU nodes from the platform's NUMA nodes.
//!
//! KFD numbers its CPU nodes densely, one per online NUMA node in ascending node-id order
//! (`kfd_create_vcrat_image_cpu` walks `for_each_online_node`). The online ids need not be
//! `0..count`: a node can be offline between two online ones (hot-removed memory, a
//! memory-less node the firmware described but the kernel did not bring up), so the `k`-th
//! KFD CPU node is the `k`-th online id, not node `k`.

use crate::facts::CpuFacts;

/// What the platform says about its NUMA nodes, by Linux node id.
pub trait NumaPlatform {
    /// The first online node id after `after` (`None`: the first online node), ascending;
    /// `None` when there is none.
    fn next_online_node(&self, after: Option<u32>) -> Option<u32>;
    /// CPU cores of online node `node`.
    fn cpu_cores(&self, node: u32) -> u32;
    /// System memory of online node `node`, in bytes.
    fn memory_bytes(&self, node: u32) -> u64;
    /// SLIT distance from online node `from` to online node `to`.
    fn distance(&self, from: u32, to: u32) -> u32;
}

/// The online node ids of `platform`, ascending: KFD CPU node `k` is the `k`-th of them.
pub fn online_nodes<P: NumaPlatform>(platform: &P) -> impl Iterator<Item = u32> + '_ {
    let mut last = None;
    core::iter::from_fn(move || {
        let next = platform.next_online_node(last)?;
        // A platform that does not advance would loop forever: stop instead.
        if last.is_some_and(|last| next <= last) {
            return None;
        }
        last = Some(next);
        Some(next)
    })
}

/// Hands over KFD's CPU nodes of `platform` in order: `cpu` gets each node's facts, `distance`
/// the SLIT distances between them row by row (`count x count`, in KFD node order). Stops at
/// the first error either returns.
pub fn cpu_nodes<P: NumaPlatform, E>(
    platform: &P,
    mut cpu: impl FnMut(CpuFacts) -> Result<(), E>,
    mut distance: impl FnMut(u32) -> Result<(), E>,
) -> Result<(), E> {
    for node in online_nodes(platform) {
        cpu(CpuFacts {
            cpu_cores: platform.cpu_cores(node),
            memory_bytes: platform.memory_bytes(node),
        })?;
        for other in online_nodes(platform) {
            distance(platform.distance(node, other))?;
        }
    }
    Ok(())
}
