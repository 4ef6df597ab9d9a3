//! Peer access between GPU nodes as a topology states it: for each ordered pair, the link user
//! space would use (a direct io_link such as XGMI, or a p2p link) or the recorded denial.

use hsa_p2p_core::gate::PeerDenial;
use hsa_p2p_core::link::LinkProperties;
use hsa_p2p_core::topology::{Node, Topology};

/// Which directory the link of a pair comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// A direct io_link between the GPUs (XGMI).
    IoLink,
    /// A p2p link built by the kernel's peer rules (PCIe through BARs).
    P2pLink,
}

impl Via {
    /// The directory name.
    pub fn name(self) -> &'static str {
        match self {
            Via::IoLink => "io_links",
            Via::P2pLink => "p2p_links",
        }
    }
}

/// One ordered GPU pair: may `from` (the accessor) reach `to`'s (the owner's) VRAM?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerPair<'a> {
    /// Accessor node id.
    pub from: u32,
    /// Owner node id.
    pub to: u32,
    /// The link from accessor to owner, if the topology has one.
    pub link: Option<(Via, &'a LinkProperties)>,
    /// The hsa-p2p denial record, if the topology carries one.
    pub denial: Option<&'a PeerDenial>,
}

impl PeerPair<'_> {
    /// Whether user space (ROCr) would use the pair for peer DMA: a link whose flags are
    /// enabled and do not forbid peer DMA.
    pub fn has_access(&self) -> bool {
        self.link
            .is_some_and(|(_, link)| link.flags.allows_peer_dma())
    }
}

/// The GPU nodes of `topology`, by id.
pub fn gpu_nodes(topology: &Topology) -> Vec<&Node> {
    topology.nodes.iter().filter(|node| node.is_gpu()).collect()
}

/// The pair `from` -> `to` (both node ids).
pub fn peer_pair(topology: &Topology, from: u32, to: u32) -> PeerPair<'_> {
    let link = topology
        .io_link(from, to)
        .map(|link| (Via::IoLink, link))
        .or_else(|| topology.p2p_link(from, to).map(|link| (Via::P2pLink, link)));
    PeerPair {
        from,
        to,
        link,
        denial: topology.denial(from, to),
    }
}

/// Every ordered pair of distinct GPU nodes, accessor-major.
pub fn peer_pairs(topology: &Topology) -> Vec<PeerPair<'_>> {
    let gpus = gpu_nodes(topology);
    gpus.iter()
        .flat_map(|from| gpus.iter().map(move |to| (from.id, to.id)))
        .filter(|(from, to)| from != to)
        .map(|(from, to)| peer_pair(topology, from, to))
        .collect()
}
