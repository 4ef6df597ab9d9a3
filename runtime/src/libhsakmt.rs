//! What ROCm user space makes of a kernel without p2p_links: libhsakmt's `topology.c` sees no
//! `p2p_links_count` and, in `topology_take_snapshot`, calls `topology_create_indirect_gpu_links`,
//! which adds an io_link between every two nodes that `get_indirect_iolink_info` can join
//! through the CPUs. For GPU -> GPU:
//!
//! - none inside one XGMI hive (the kernel's XGMI io_links join them);
//! - none towards a GPU without a public (large-BAR) frame buffer heap;
//! - through one CPU: weight = GPU1 -> CPU + CPU -> GPU2, type of CPU -> GPU2;
//! - through two CPUs: weight = GPU1 -> CPU1 + CPU1 -> CPU2 + CPU2 -> GPU2, type of the
//!   CPU <-> CPU link; none when that is QPI with a weight above 20 (another socket);
//! - none when one of those io_links is missing.
//!
//! The synthesized links carry no flags, latency or bandwidth (libhsakmt fills in only type,
//! ends and weight).

use hsa_p2p_core::link::{LinkProperties, LinkType};
use hsa_p2p_core::node::HeapType;
use hsa_p2p_core::topology::{Node, Topology};

use crate::report::Labels;

/// A GPU -> GPU io_link libhsakmt synthesizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynthesizedLink {
    /// Accessing GPU node.
    pub from: u32,
    /// Owning GPU node.
    pub to: u32,
    /// `type` libhsakmt gives it.
    pub link_type: LinkType,
    /// Summed weight.
    pub weight: u32,
}

/// The CPU weight above which libhsakmt takes a QPI link for one to another socket.
const SAME_SOCKET_MAX_WEIGHT: u32 = 20;

fn io_link(node: &Node, to: u32) -> Result<&LinkProperties, String> {
    node.io_links
        .iter()
        .find(|link| link.node_to == to)
        .ok_or_else(|| format!("node {} has no io_link to node {to}", node.id))
}

/// The node's CPU: where its first io_link to a CPU node leads (`gpu_get_direct_link_cpu`).
fn direct_cpu(topology: &Topology, gpu: &Node) -> Result<u32, String> {
    gpu.io_links
        .iter()
        .map(|link| link.node_to)
        .find(|to| topology.node(*to).is_some_and(|n| !n.is_gpu()))
        .ok_or_else(|| format!("node {} has no io_link to a CPU", gpu.id))
}

/// The link libhsakmt synthesizes from GPU `from` to GPU `to`, or why it makes none.
pub fn indirect_gpu_link(
    topology: &Topology,
    from: u32,
    to: u32,
) -> Result<SynthesizedLink, String> {
    let node = |id| topology.node(id).ok_or_else(|| format!("no node {id}"));
    let (gpu1, gpu2) = (node(from)?, node(to)?);
    let hive = gpu1.properties.hive_id;
    if hive != 0 && hive == gpu2.properties.hive_id {
        return Err("both are in one XGMI hive, joined by the kernel's XGMI io_links".into());
    }
    if !gpu2
        .mem_banks
        .iter()
        .any(|bank| bank.heap_type == HeapType::FrameBufferPublic)
    {
        return Err(format!("node {to} has no public (large-BAR) frame buffer"));
    }
    let (cpu1, cpu2) = (direct_cpu(topology, gpu1)?, direct_cpu(topology, gpu2)?);
    let first = io_link(gpu1, cpu1)?.weight;
    let (middle, link_type) = if cpu1 == cpu2 {
        (0, io_link(node(cpu1)?, to)?.link_type)
    } else {
        let cpus = io_link(node(cpu1)?, cpu2)?;
        if cpus.link_type == LinkType::Qpi11 && cpus.weight > SAME_SOCKET_MAX_WEIGHT {
            return Err(format!(
                "the CPUs {cpu1} and {cpu2} are on different sockets (QPI weight {} > 20)",
                cpus.weight
            ));
        }
        (cpus.weight, cpus.link_type)
    };
    let last = io_link(node(cpu2)?, to)?.weight;
    Ok(SynthesizedLink {
        from,
        to,
        link_type,
        weight: first + middle + last,
    })
}

/// Whether the tree comes from a kernel without p2p_links (no node reports `p2p_links_count`).
pub fn predates_p2p_links(topology: &Topology) -> bool {
    topology.nodes.iter().all(|node| !node.reports_p2p_links)
}

/// One line for `p2pctl why` on such a kernel: what libhsakmt makes of the pair.
pub fn pair_hint(topology: &Topology, from: u32, to: u32) -> String {
    match indirect_gpu_link(topology, from, to) {
        Ok(link) => format!(
            "ROCm's libhsakmt synthesizes an indirect io_link node {from} -> node {to} itself \
             on such kernels ({}, weight {}, through the CPUs, no bandwidth): user space sees \
             the pair linked through system memory",
            link.link_type.name(),
            link.weight
        ),
        Err(why) => format!(
            "ROCm's libhsakmt synthesizes no io_link node {from} -> node {to} on such kernels: \
             {why}"
        ),
    }
}

/// The note `p2pctl matrix` adds for a kernel without p2p_links: the links libhsakmt
/// synthesizes, as a weight matrix (`-`: none).
pub fn render_synthesized(topology: &Topology, labels: &Labels) -> String {
    let gpus: Vec<u32> = (topology.nodes.iter())
        .filter(|node| node.is_gpu())
        .map(|node| node.id)
        .collect();
    let mut out = String::from(
        "\nThis kernel publishes no p2p_links (no p2p_links_count): the matrices above show only \
         what the kernel itself links. ROCm's libhsakmt synthesizes indirect GPU -> GPU \
         io_links through the CPUs on such kernels (topology_create_indirect_gpu_links); their \
         weights (- = none):\n",
    );
    let names: Vec<String> = gpus.iter().map(|&id| labels.name(id)).collect();
    let width = names.iter().map(String::len).max().unwrap_or(0).max(6);
    out += &format!("{:width$}", "");
    for name in &names {
        out += &format!("  {name:>width$}");
    }
    out += "\n";
    for (row, &from) in gpus.iter().enumerate() {
        out += &format!("{:width$}", names[row]);
        for &to in &gpus {
            let cell = match (from == to, indirect_gpu_link(topology, from, to)) {
                (true, _) => "-".to_string(),
                (false, Ok(link)) => format!("{} {}", link.link_type.name(), link.weight),
                (false, Err(_)) => "-".to_string(),
            };
            out += &format!("  {cell:>width$}");
        }
        out += "\n";
    }
    out
}
