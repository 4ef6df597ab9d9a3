//! An owned KFD topology (host side, `alloc` feature): what a sysfs tree holds, as values.
//!
//! It is filled either by [`crate::builder::build_topology`] (it is a [`TopologySink`]) or by a
//! sysfs reader, and can be rendered back to the files of a sysfs tree.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::convert::Infallible;
use core::fmt::Write;

use crate::builder::{NodeKind, NodeRecord, TopologySink};
use crate::facts::PciAddress;
use crate::gate::PeerDenial;
use crate::gpu_id::GfxName;
use crate::link::LinkProperties;
use crate::node::{MemBankProperties, NodeCounts, NodeProperties, SystemProperties};
use crate::properties::{
    write_link_properties, write_mem_bank_properties, write_node_properties, write_peer_denial,
    write_system_properties,
};

/// One node of the topology with everything below its directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Node id (directory name).
    pub id: u32,
    /// `gpu_id` (0 for CPU nodes).
    pub gpu_id: u32,
    /// Content of the `name` file (without the newline).
    pub name: String,
    /// The node's properties.
    pub properties: NodeProperties,
    /// Whether the `properties` file has `p2p_links_count` (kernels without p2p links lack it).
    /// The writer then emits the actual number of p2p links.
    pub reports_p2p_links: bool,
    /// `mem_banks/*`.
    pub mem_banks: Vec<MemBankProperties>,
    /// `io_links/*`, in directory order.
    pub io_links: Vec<LinkProperties>,
    /// `p2p_links/*`, in directory order.
    pub p2p_links: Vec<LinkProperties>,
    /// `p2p_denials/*` (hsa-p2p extension; empty on real KFD trees).
    pub p2p_denials: Vec<PeerDenial>,
}

impl Node {
    /// Whether this is a GPU node.
    pub fn is_gpu(&self) -> bool {
        self.gpu_id != 0
    }

    /// The PCI function the node's `domain` and `location_id` name (`0000:00:00.0` for CPU
    /// nodes, whose location is 0).
    pub fn pci_address(&self) -> PciAddress {
        PciAddress::from_location_id(self.properties.domain, self.properties.location_id)
    }

    /// The counts the node's `properties` file reports.
    pub fn counts(&self) -> NodeCounts {
        NodeCounts {
            mem_banks: self.mem_banks.len() as u32,
            caches: 0,
            io_links: self.io_links.len() as u32,
            p2p_links: self
                .reports_p2p_links
                .then_some(self.p2p_links.len() as u32),
        }
    }

    /// Every link of the node, io_links first.
    pub fn links(&self) -> impl Iterator<Item = &LinkProperties> {
        self.io_links.iter().chain(self.p2p_links.iter())
    }
}

/// A whole KFD topology.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    /// `generation_id`.
    pub generation_id: u64,
    /// `system_properties`.
    pub system: SystemProperties,
    /// `nodes/*`, by id.
    pub nodes: Vec<Node>,
}

/// A dangling reference found by [`Topology::dangling_links`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DanglingLink {
    /// The node whose directory holds the link.
    pub node: u32,
    /// The link.
    pub link: LinkProperties,
}

impl Topology {
    /// The node with id `id`.
    pub fn node(&self, id: u32) -> Option<&Node> {
        self.nodes.iter().find(|node| node.id == id)
    }

    /// Links (io or p2p) that name a node that does not exist or that sit in another node's
    /// directory than their `node_from`.
    pub fn dangling_links(&self) -> Vec<DanglingLink> {
        let exists = |id: u32| self.nodes.iter().any(|node| node.id == id);
        self.nodes
            .iter()
            .flat_map(|node| node.links().map(move |link| (node.id, link)))
            .filter(|(node, link)| link.node_from != *node || !exists(link.node_to))
            .map(|(node, link)| DanglingLink { node, link: *link })
            .collect()
    }

    /// Removes node `id` the way amdkfd removes a GPU: its directory goes, every link and denial
    /// to it is dropped, and higher node ids (and references to them) move down by one.
    pub fn remove_node(&mut self, id: u32) {
        self.nodes.retain(|node| node.id != id);
        let renumber = |node: u32| if node > id { node - 1 } else { node };
        for node in &mut self.nodes {
            node.id = renumber(node.id);
            for links in [&mut node.io_links, &mut node.p2p_links] {
                links.retain(|link| link.node_to != id);
                for link in links.iter_mut() {
                    link.node_from = renumber(link.node_from);
                    link.node_to = renumber(link.node_to);
                }
            }
            node.p2p_denials.retain(|denial| denial.node_to != id);
            for denial in &mut node.p2p_denials {
                denial.node_from = renumber(denial.node_from);
                denial.node_to = renumber(denial.node_to);
            }
        }
        self.generation_id = self.generation_id.wrapping_add(1);
    }

    /// The p2p link from `from` to `to`, if any.
    pub fn p2p_link(&self, from: u32, to: u32) -> Option<&LinkProperties> {
        self.node(from)?.p2p_links.iter().find(|l| l.node_to == to)
    }

    /// The io link from `from` to `to`, if any.
    pub fn io_link(&self, from: u32, to: u32) -> Option<&LinkProperties> {
        self.node(from)?.io_links.iter().find(|l| l.node_to == to)
    }

    /// The denial recorded for accessor `from` and owner `to`, if any.
    pub fn denial(&self, from: u32, to: u32) -> Option<&PeerDenial> {
        self.node(from)?
            .p2p_denials
            .iter()
            .find(|d| d.node_to == to)
    }

    /// Renders the topology as the files of a sysfs tree: `(relative path, content)`, in a stable
    /// order: `generation_id`, `system_properties`, then node by node in id order its `gpu_id`,
    /// `name`, `properties`, `mem_banks/*`, `io_links/*`, `p2p_links/*` and `p2p_denials/*`, each
    /// numbered directory in numeric order.
    pub fn render_sysfs(&self) -> Vec<(String, String)> {
        let mut files = Vec::new();
        let mut text = String::new();
        let _ = writeln!(text, "{}", self.generation_id);
        files.push(("generation_id".to_string(), core::mem::take(&mut text)));
        let _ = write_system_properties(&mut text, &self.system);
        files.push(("system_properties".to_string(), core::mem::take(&mut text)));
        for node in &self.nodes {
            let dir = alloc::format!("nodes/{}", node.id);
            let _ = writeln!(text, "{}", node.gpu_id);
            files.push((alloc::format!("{dir}/gpu_id"), core::mem::take(&mut text)));
            let _ = writeln!(text, "{}", node.name);
            files.push((alloc::format!("{dir}/name"), core::mem::take(&mut text)));
            let _ = write_node_properties(&mut text, &node.properties, &node.counts());
            files.push((
                alloc::format!("{dir}/properties"),
                core::mem::take(&mut text),
            ));
            for (index, bank) in node.mem_banks.iter().enumerate() {
                let _ = write_mem_bank_properties(&mut text, bank);
                let path = alloc::format!("{dir}/mem_banks/{index}/properties");
                files.push((path, core::mem::take(&mut text)));
            }
            for (kind, links) in [("io_links", &node.io_links), ("p2p_links", &node.p2p_links)] {
                for (index, link) in links.iter().enumerate() {
                    let _ = write_link_properties(&mut text, link);
                    let path = alloc::format!("{dir}/{kind}/{index}/properties");
                    files.push((path, core::mem::take(&mut text)));
                }
            }
            for (index, denial) in node.p2p_denials.iter().enumerate() {
                let _ = write_peer_denial(&mut text, denial);
                let path = alloc::format!("{dir}/p2p_denials/{index}/properties");
                files.push((path, core::mem::take(&mut text)));
            }
        }
        files
    }
}

impl TopologySink for Topology {
    type Error = Infallible;

    fn add_node(&mut self, record: &NodeRecord) -> Result<(), Infallible> {
        let name = match record.kind {
            NodeKind::Cpu => String::new(),
            NodeKind::Gpu(_) => GfxName(record.properties.gfx_target_version).to_string(),
        };
        self.nodes.push(Node {
            id: record.id,
            gpu_id: record.gpu_id,
            name,
            properties: record.properties,
            reports_p2p_links: true,
            mem_banks: alloc::vec![record.mem_bank],
            io_links: Vec::new(),
            p2p_links: Vec::new(),
            p2p_denials: Vec::new(),
        });
        Ok(())
    }

    fn add_io_link(&mut self, link: &LinkProperties) -> Result<(), Infallible> {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.id == link.node_from) {
            node.io_links.push(*link);
        }
        Ok(())
    }

    fn add_p2p_link(&mut self, link: &LinkProperties) -> Result<(), Infallible> {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.id == link.node_from) {
            node.p2p_links.push(*link);
        }
        Ok(())
    }

    fn add_peer_denial(&mut self, denial: &PeerDenial) -> Result<(), Infallible> {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.id == denial.node_from) {
            node.p2p_denials.push(*denial);
        }
        Ok(())
    }
}
